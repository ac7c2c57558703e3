/**
 * The web interface on the admin API's port (src/admin/web-ui.ts, docs/admin-ui.md): the built files
 * at `/` with a strict Content-Security-Policy and the other security headers, the page's own paths
 * answered with index.html, `/api/` left to the API (unknown API paths still 401 without a key),
 * and a clear coded error when the interface was never built. The build here is a small stand-in
 * directory with the shape Vite writes; the real build is loaded by test/browser/admin-ui.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/serverconf/api-keys.ts';
import { buildAdminApi } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { UI_CONTENT_SECURITY_POLICY } from '../../src/admin/web-ui.ts';
import { silentLogger } from '../../src/platform/logger.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-web-ui-'));
const uiDir = join(dir, 'dist');
const INDEX = '<!doctype html><title>x</title><script type="module" src="/assets/index-abc123.js"></script>';
const SCRIPT = 'console.log("page")';
const keys = new ApiKeyStore(join(dir, 'api-keys.json'));
const key = keys.create(['XROAD_SECURESERVER_OBSERVER'], 'reader');
let app: FastifyInstance;
let unbuilt: FastifyInstance;

async function api(ui: string): Promise<FastifyInstance> {
  // Nothing here calls the signer or global configuration: the socket is never connected.
  const admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  return buildAdminApi({ admin, keys, logger: silentLogger(), uiDir: ui });
}

beforeAll(async () => {
  mkdirSync(join(uiDir, 'assets'), { recursive: true });
  writeFileSync(join(uiDir, 'index.html'), INDEX);
  writeFileSync(join(uiDir, 'assets', 'index-abc123.js'), SCRIPT);
  writeFileSync(join(dir, 'secret.txt'), 'outside the build');
  app = await api(uiDir);
  unbuilt = await api(join(dir, 'missing'));
});
afterAll(async () => {
  await app.close();
  await unbuilt.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the web interface on the admin port', () => {
  it('serves index.html at / without a login, with a Content-Security-Policy that allows only its own files and no framing', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toBe(INDEX);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toBe(UI_CONTENT_SECURITY_POLICY);
    const directives = new Map(csp.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
    expect(directives.get('default-src')).toBe("'self'");
    expect(directives.get('script-src')).toBe("'self'");
    expect(directives.get('style-src')).toBe("'self'");
    expect(directives.get('frame-ancestors')).toBe("'none'");
    expect(directives.get('object-src')).toBe("'none'");
    expect(directives.get('base-uri')).toBe("'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|data:|\*/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it('serves the hashed bundles as immutable scripts, and a missing bundle is 404, never the page', async () => {
    const res = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect([res.statusCode, res.headers['content-type'], res.body]).toEqual([200, 'text/javascript; charset=utf-8', SCRIPT]);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const missing = await app.inject({ method: 'GET', url: '/assets/index-old999.js' });
    expect([missing.statusCode, missing.json().error.code]).toEqual([404, 'RouteNotFound']);
  });

  it("answers the page's own paths (/clients, /login?next=…) with index.html so a reload or a bookmark works", async () => {
    for (const url of ['/clients', '/login?next=%2Fclients', '/clients/LOCAL:GOV:1111']) {
      const res = await app.inject({ method: 'GET', url });
      expect([url, res.statusCode, res.body]).toEqual([url, 200, INDEX]);
    }
  });

  it('never reads a file outside the build, whatever the path says', async () => {
    for (const url of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/assets/..%2f..%2fsecret.txt', '/%E0%A4%A']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.body).not.toContain('outside the build');
    }
  });

  it('leaves /api/ to the API: an unknown API path is 401 without a key and RouteNotFound with one, and API answers carry the strict JSON policy', async () => {
    const anonymous = await app.inject({ method: 'GET', url: '/api/v1/no-such-route' });
    expect([anonymous.statusCode, anonymous.json().error.code]).toEqual([401, 'ApiKeyMissing']);
    const keyed = await app.inject({ method: 'GET', url: '/api/v1/no-such-route', headers: { authorization: `X-Road-ApiKey token=${key.key}` } });
    expect([keyed.statusCode, keyed.json().error.code]).toEqual([404, 'RouteNotFound']);
    const post = await app.inject({ method: 'POST', url: '/clients' });
    expect([post.statusCode, post.json().error.code]).toEqual([401, 'ApiKeyMissing']);
    const document = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    expect(document.statusCode).toBe(200);
    expect(document.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(document.headers['x-content-type-options']).toBe('nosniff');
  });

  it('without a build, the page answers AdminUiNotBuilt (503) naming the command that builds it', async () => {
    const res = await unbuilt.inject({ method: 'GET', url: '/' });
    expect([res.statusCode, res.json().error.code]).toEqual([503, 'AdminUiNotBuilt']);
    expect(res.json().error.message).toContain('npm run build:ui');
  });
});
