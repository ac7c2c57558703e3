/**
 * The proxy's monitoring port (2080) on loopback, with a real operational monitoring database and
 * a real admin API key file: records of two organisations are stored, and who may read what is
 * asked as an information system on the same host would ask (no key, a forged key, a revoked key,
 * a key without the diagnostics roles) and as the server's administrators and Prometheus would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, apiKeysFile } from '../../src/serverconf/api-keys.ts';
import { MetricsRegistry } from '../../src/opmonitor/metrics.ts';
import { OpMonitor } from '../../src/opmonitor/op-monitor.ts';
import { ProxyMetrics, SignerMetrics } from '../../src/opmonitor/proxy-metrics.ts';
import { clientFields, serviceFields } from '../../src/opmonitor/record.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { monitoringHandler } from '../../src/proxy/endpoints/monitoring-endpoint.ts';
import type { SignerConnection } from '../../src/signerapi/signer-client.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'xrd-monitoring-'));
let server: Server;
let base: string;
let opMonitor: OpMonitor;
let keys: ApiKeyStore;

const PROVIDER = parseClientId('LOCAL/COM/1111/PROVIDER');
const ORGANISATIONS = [parseClientId('LOCAL/COM/2222/CLIENT'), parseClientId('LOCAL/COM/3333/OTHER')];

beforeAll(async () => {
  const registry = new MetricsRegistry();
  const proxyMetrics = new ProxyMetrics(registry);
  opMonitor = await OpMonitor.open({ engine: 'sqlite', file: join(dataDir, 'opmonitor.db') }, { onStore: (r) => proxyMetrics.observe(r) });
  for (const [i, client] of ORGANISATIONS.entries()) {
    opMonitor.store({ securityServerType: 'Client', requestInTs: Date.now() - 1000 + i, ...clientFields(client), ...serviceFields(PROVIDER, 'getRandom'), messageId: `call-${i}`, succeeded: true });
  }
  // A signer that does not answer: /metrics still serves the proxy's series with xrd_signer_up 0.
  const signer = { call: () => Promise.reject(new XrdError('NetworkError', { target: 'signer', reason: 'not started' })) } as unknown as SignerConnection;
  keys = new ApiKeyStore(apiKeysFile(dataDir));
  server = createServer(monitoringHandler({ registry, signerMetrics: new SignerMetrics(registry), signer, opMonitor, apiKeysFile: apiKeysFile(dataDir) }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await opMonitor?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const get = (path: string, key?: string) => fetch(`${base}${path}`, key === undefined ? {} : { headers: { Authorization: `X-Road-ApiKey token=${key}` } });

describe('monitoring port access', () => {
  it('an information system on the host reading every organisation’s records without a key is refused (401), and learns nothing of them', async () => {
    for (const path of ['/opmonitor', '/opmonitor?client=LOCAL/COM/2222/CLIENT', '/metrics']) {
      const res = await get(path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('X-Road-ApiKey');
      const body = await res.text();
      expect(JSON.parse(body)).toEqual({ type: 'Client.ApiKeyMissing', message: expect.any(String) });
      expect(body).not.toContain('2222');
      expect(body).not.toContain('getRandom');
    }
    expect((await fetch(`${base}/opmonitor`, { headers: { Authorization: 'Bearer anything' } })).status).toBe(401);
  });

  it('a forged or revoked key is refused (401), a key without the diagnostics roles is refused (403)', async () => {
    expect((await get('/opmonitor', 'forged-key')).status).toBe(401);
    const revoked = keys.create(['XROAD_SYSTEM_ADMINISTRATOR']);
    expect((await get('/opmonitor', revoked.key)).status).toBe(200);
    keys.revoke(revoked.id);
    const afterRevoke = await get('/opmonitor', revoked.key);
    expect(afterRevoke.status).toBe(401);
    expect(((await afterRevoke.json()) as { type: string }).type).toBe('Client.ApiKeyInvalid');

    const officer = keys.create(['XROAD_SECURITY_OFFICER', 'XROAD_REGISTRATION_OFFICER', 'XROAD_SERVICE_ADMINISTRATOR']);
    for (const path of ['/opmonitor', '/metrics']) {
      const res = await get(path, officer.key);
      expect(res.status, path).toBe(403);
      expect(((await res.json()) as { type: string }).type).toBe('Client.PermissionDenied');
    }
  });

  it('the system administrator and the observer (the reference’s diagnostics roles) read every record and scrape the metrics', async () => {
    for (const role of ['XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SECURESERVER_OBSERVER'] as const) {
      const { key } = keys.create([role]);
      const res = await get('/opmonitor', key);
      expect(res.status).toBe(200);
      const { records } = (await res.json()) as { records: { clientMemberCode: string }[] };
      expect(records.map((r) => r.clientMemberCode).sort()).toEqual(['2222', '3333']);
      const metrics = await get('/metrics', key);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/xrd_proxy_requests_total\{direction="outbound",protocol="soap",service="LOCAL\/COM\/1111\/PROVIDER\/getRandom",result="success"\} 2/);
    }
  });

  it('a bad query from an administrator is a coded client error; other paths and methods are not served', async () => {
    const { key } = keys.create(['XROAD_SYSTEM_ADMINISTRATOR']);
    const bad = await get('/opmonitor?limit=0', key);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { type: string }).type).toBe('Client.InvalidRequest');
    expect((await get('/other', key)).status).toBe(404);
    expect((await fetch(`${base}/opmonitor`, { method: 'POST' })).status).toBe(405);
  });
});
