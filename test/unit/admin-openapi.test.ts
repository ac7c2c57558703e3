/**
 * docs/openapi.json is the admin API as it runs: the checked-in document is the one generated from
 * the route table, the server registers exactly its operations, and serves it without a key.
 */
import Fastify from 'fastify';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/serverconf/api-keys.ts';
import { API_PREFIX, openApiDocument, registerAdminRoutes } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { silentLogger } from '../../src/platform/logger.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-openapi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const checkedIn = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/openapi.json'), 'utf8')) as { paths: Record<string, Record<string, unknown>> };

async function app() {
  const registered: string[] = [];
  const server = Fastify();
  server.addHook('onRoute', (route) => {
    // The web interface's routes (`/*`, `/api/*`, web-ui.ts) are not the API's operations.
    if (!route.url.startsWith(API_PREFIX)) return;
    for (const method of [route.method].flat()) if (method !== 'HEAD') registered.push(`${method} ${route.url}`);
  });
  // Nothing here calls the signer: the socket is never connected.
  const admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  registerAdminRoutes(server, { admin, keys: new ApiKeyStore(join(dir, 'api-keys.json')), logger: silentLogger() });
  await server.ready();
  return { server, registered, admin };
}

describe('the admin API and docs/openapi.json', () => {
  it('docs/openapi.json is the document generated from the routes (regenerate: xrd admin openapi > docs/openapi.json)', () => {
    expect(checkedIn).toEqual(openApiDocument());
  });

  it('the server registers exactly the operations the document lists', async () => {
    const { server, registered, admin } = await app();
    const documented = Object.entries(checkedIn.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${API_PREFIX}${path.replace(/\{(\w+)\}/g, ':$1')}`));
    expect(registered.sort()).toEqual(documented.sort());
    expect(documented.length).toBeGreaterThan(25);
    await admin.close();
    await server.close();
  });

  it('serves the document without an API key, and refuses the documented routes without one', async () => {
    const { server, admin } = await app();
    const doc = await server.inject({ method: 'GET', url: `${API_PREFIX}/openapi.json` });
    expect(doc.statusCode).toBe(200);
    expect(doc.json()).toEqual(checkedIn);
    const tokens = await server.inject({ method: 'GET', url: `${API_PREFIX}/tokens` });
    expect(tokens.statusCode).toBe(401);
    expect(tokens.json().error.code).toBe('ApiKeyMissing');
    await admin.close();
    await server.close();
  });
});
