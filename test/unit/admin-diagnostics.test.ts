/**
 * The diagnostics routes of the admin API (the reference's DiagnosticsApi): the global
 * configuration's last download as the signer's configuration client wrote it (a real client
 * failing against a closed loopback port), WAITING while nothing has been recorded, the configured
 * timestamping services as the proxy's message log recorded them, and the reference's roles
 * (diagnostics: system administrator and observer). The OCSP responders' outcomes are checked in
 * test/trust/ocsp-status.test.ts, the message log's status file in test/messagelog, the whole page
 * against a real signer in test/browser/system.part.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, type Role } from '../../src/serverconf/api-keys.ts';
import { API_PREFIX, registerAdminRoutes } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { ConfigurationClient } from '../../src/globalconf/configuration-client.ts';
import { configurationAnchorXml } from '../../src/globalconf/writer.ts';
import { TIMESTAMPER_STATUS_FILE } from '../../src/messagelog/message-log.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';
import { openssl } from '../support/openssl.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-diagnostics-'));
const globalConfDir = join(dir, 'globalconf');
const keys = new ApiKeyStore(join(dir, 'admin', 'api-keys.json'));
const keyOf = (role: Role) => keys.create([role], role).key;
let app: FastifyInstance;

beforeAll(async () => {
  app = Fastify();
  const admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger(), globalConfDir });
  registerAdminRoutes(app, { admin, keys, logger: silentLogger(), rateLimit: { perSecond: 1000, perMinute: 10_000 } });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, role: Role = 'XROAD_SECURESERVER_OBSERVER') => app.inject({ method: 'GET', url: `${API_PREFIX}${path}`, headers: { authorization: `X-Road-ApiKey token=${keyOf(role)}` } });

/** A loopback port nothing listens on (taken from the kernel and closed: connecting to it fails). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('GET /diagnostics/*', () => {
  it('globalconf: WAITING before any download attempt, then the failure the configuration client recorded, with its code and the next attempt', async () => {
    expect((await get('/diagnostics/globalconf')).json()).toEqual({ status_class: 'WAITING', prev_update_at: null, next_update_at: null });
    const cert = Buffer.from(openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=conf', '-days', '1']).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const anchor = join(dir, 'anchor.xml');
    writeFileSync(anchor, configurationAnchorXml({ instanceIdentifier: 'LOCAL', sources: [{ downloadUrl: `http://127.0.0.1:${await closedPort()}/internalconf`, verificationCerts: [cert] }] }));
    expect(await new ConfigurationClient(anchor, globalConfDir, silentLogger()).runOnce()).toBe(false);
    const res = (await get('/diagnostics/globalconf')).json();
    expect(res).toMatchObject({ status_class: 'FAIL', error: { code: 'GlobalConfGetVersionFailed', message: expect.any(String) } });
    expect(Date.parse(res.next_update_at) - Date.parse(res.prev_update_at)).toBe(60_000);
  });

  it('timestamping-services: each configured service in order, WAITING until the message log recorded an outcome for it', async () => {
    await changeServerConfIn(dir, { kind: 'system', name: 'test' }, 'SEED', () => ({
      serverId: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', serverCode: 'ss1' },
      clients: [],
      timestampingServices: [{ name: 'TSA 1', url: 'http://tsa1.example.org/' }, { name: 'TSA 2', url: 'http://tsa2.example.org/' }],
    }));
    expect((await get('/diagnostics/timestamping-services')).json()).toEqual([
      { name: 'TSA 1', url: 'http://tsa1.example.org/', status_class: 'WAITING', prev_update_at: null },
      { name: 'TSA 2', url: 'http://tsa2.example.org/', status_class: 'WAITING', prev_update_at: null },
    ]);
    // The file a running proxy's message log writes (its writing: test/messagelog/message-log.test.ts).
    writeFileSync(join(dir, TIMESTAMPER_STATUS_FILE), JSON.stringify({ tsas: [{ url: 'http://tsa2.example.org/', at: '2026-12-06T10:00:00.000Z', status: 'FAIL', code: 'TimestampingFailed', message: 'refused' }], nextAt: '2026-12-06T10:01:00.000Z' }));
    expect((await get('/diagnostics/timestamping-services')).json()[1]).toEqual({ name: 'TSA 2', url: 'http://tsa2.example.org/', status_class: 'FAIL', prev_update_at: '2026-12-06T10:00:00.000Z', error: { code: 'TimestampingFailed', message: 'refused' } });
  });

  it("is for the system administrator and the observer only (the reference's diagnostics permission)", async () => {
    for (const path of ['/diagnostics/globalconf', '/diagnostics/timestamping-services', '/diagnostics/ocsp-responders', '/diagnostics/certificate-expiry']) {
      for (const role of ['XROAD_SECURITY_OFFICER', 'XROAD_SERVICE_ADMINISTRATOR', 'XROAD_REGISTRATION_OFFICER'] as const) expect((await get(path, role)).statusCode).toBe(403);
    }
    expect((await get('/diagnostics/globalconf', 'XROAD_SYSTEM_ADMINISTRATOR')).statusCode).toBe(200);
  });
});
