/**
 * The signer's health as Prometheus metrics, from a real signer daemon on a SoftHSM token: what a
 * scrape of the proxy's /metrics shows as the token is logged in and out, as keys sign (and fail to),
 * as OCSP responses are cached, and as the daemon stops.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsRegistry } from '../../src/opmonitor/metrics.ts';
import { SignerMetrics } from '../../src/opmonitor/proxy-metrics.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { SignerConnection } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { certSha1 } from '../../src/trust/ocsp-cache.ts';
import { certIdOf, encodeOcspRequest, parseOcspResponse } from '../../src/trust/ocsp.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { createTestCa, newKeyAndCsr, opensslOcspRespond, pemToDer } from '../support/openssl.ts';
import { parsePrometheusText, valueOf, type Family } from '../support/prometheus.ts';

const PIN = '135791';
let testbed: Testbed;
let daemon: SignerDaemon;
let signer: SignerConnection;
let tokenId: string;
const registry = new MetricsRegistry();
const metrics = new SignerMetrics(registry);

/** One scrape: ask the signer, write the registry, read it back as Prometheus would. */
async function scrape(): Promise<Map<string, Family>> {
  await metrics.refresh(() => signer.call('health', {}, { timeoutMs: 2000 }));
  const text = registry.text();
  if (spawnSync('promtool', ['--version']).status === 0) {
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text });
    expect(check.status, check.stdout.toString() + check.stderr.toString()).toBe(0);
  }
  return parsePrometheusText(text);
}
const gauge = (f: Map<string, Family>, name: string, labels: Record<string, string> = {}) => valueOf(f, name, name, labels);
const sample = (f: Map<string, Family>, family: string, name: string, labels: Record<string, string>) => valueOf(f, family, name, labels);

beforeAll(async () => {
  testbed = createTestbed();
  daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni }, silentLogger());
  signer = new SignerConnection(daemon.socketPath);
  tokenId = (await signer.call('initToken', { label: 'metrics', soPin: '0000', userPin: PIN })).tokenId;
});

afterAll(async () => {
  signer?.close();
  await daemon?.close();
  testbed?.cleanup();
});

describe('signer health in /metrics', () => {
  it('shows the module, the token and whether it is logged in', async () => {
    let f = await scrape();
    expect(gauge(f, 'xrd_signer_up')).toBe(1);
    expect(gauge(f, 'xrd_signer_healthy')).toBe(1);
    expect(gauge(f, 'xrd_signer_uptime_seconds')).toBeGreaterThanOrEqual(0);
    const modules = f.get('xrd_signer_module_loaded')!.samples;
    expect(modules).toHaveLength(1);
    expect(modules[0]!.labels.library).toBe(testbed.library);
    expect(modules[0]!.value).toBe(1);
    expect(gauge(f, 'xrd_signer_token_available', { token: tokenId })).toBe(1);
    expect(gauge(f, 'xrd_signer_token_active', { token: tokenId })).toBe(0);
    expect(gauge(f, 'xrd_signer_token_status', { token: tokenId, status: 'OK' })).toBe(1);
    expect(gauge(f, 'xrd_signer_event_loop_delay_p99_seconds')).toBeGreaterThanOrEqual(0);

    await signer.call('activateToken', { token: tokenId, pin: PIN });
    f = await scrape();
    expect(gauge(f, 'xrd_signer_token_active', { token: tokenId })).toBe(1);

    await signer.call('deactivateToken', { token: tokenId });
    f = await scrape();
    expect(gauge(f, 'xrd_signer_token_active', { token: tokenId })).toBe(0);
  });

  it('counts signatures by key and result, with their latency by key', async () => {
    await signer.call('activateToken', { token: tokenId, pin: PIN });
    const key = await signer.call('generateKey', { token: tokenId, algorithm: 'EC', usage: 'SIGNING' });
    const digest = createHash('sha256').update('metrics').digest('base64');
    for (let i = 0; i < 3; i++) await signer.call('sign', { keyId: key.keyId, algorithm: 'SHA256withECDSA', digest });
    await signer.call('deactivateToken', { token: tokenId });
    const refused = await signer.call('sign', { keyId: key.keyId, algorithm: 'SHA256withECDSA', digest }).catch((e: { code: string }) => e);
    const noSuchKey = await signer.call('sign', { keyId: 'ABCDEF', algorithm: 'SHA256withECDSA', digest }).catch((e: { code: string }) => e);
    expect(noSuchKey).toMatchObject({ code: 'KeyNotFound' });

    const f = await scrape();
    const total = 'xrd_signer_signatures_total';
    expect(sample(f, total, total, { key: key.keyId, result: 'success' })).toBe(3);
    expect(sample(f, total, total, { key: key.keyId, result: (refused as { code: string }).code })).toBe(1);
    // A key the signer does not have is not a label of its own.
    expect(sample(f, total, total, { key: 'unknown', result: 'KeyNotFound' })).toBe(1);
    expect(f.get(total)!.samples.some((s) => s.labels.key === 'ABCDEF')).toBe(false);

    const h = 'xrd_signer_signature_duration_seconds';
    expect(f.get(h)!.type).toBe('histogram');
    expect(sample(f, h, `${h}_count`, { key: key.keyId })).toBe(4);
    expect(sample(f, h, `${h}_bucket`, { key: key.keyId, le: '+Inf' })).toBe(4);
    expect(sample(f, h, `${h}_bucket`, { key: key.keyId, le: '10' })).toBe(4);
    expect(sample(f, h, `${h}_sum`, { key: key.keyId })).toBeGreaterThan(0);
  });

  it('shows the age and status of each cached OCSP response', async () => {
    const ca = createTestCa('Metrics OCSP CA');
    const caDer = pemToDer(ca.certPem);
    const issue = (name: string) => pemToDer(ca.issue(newKeyAndCsr(ca.dir, name, `/CN=${name}`).csrPem, 'digitalSignature'));
    const good = issue('good');
    const revoked = issue('revoked');
    const index = [{ serial: new X509Certificate(good).serialNumber }, { serial: new X509Certificate(revoked).serialNumber, revokedAt: new Date(Date.now() - 3_600_000) }];
    const respond = (cert: Buffer) => opensslOcspRespond({ dir: ca.dir, caCertPath: ca.certPath, responderCertPath: ca.certPath, responderKeyPath: ca.keyPath, index, request: encodeOcspRequest([certIdOf(cert, caDer)]) });
    const goodResponse = respond(good);
    await signer.call('setOcspResponses', { certHashes: [certSha1(good), certSha1(revoked)], responses: [goodResponse.toString('base64'), respond(revoked).toString('base64')] });

    const asked = Date.now();
    const f = await scrape();
    const answered = Date.now();
    expect(gauge(f, 'xrd_signer_ocsp_status', { cert: certSha1(good), status: 'good' })).toBe(1);
    expect(gauge(f, 'xrd_signer_ocsp_status', { cert: certSha1(revoked), status: 'revoked' })).toBe(1);
    expect(f.get('xrd_signer_ocsp_status')!.samples.filter((s) => s.labels.cert === certSha1(good))).toHaveLength(1);
    // Whole seconds since the response's thisUpdate, at the moment the signer answered the scrape.
    const thisUpdate = parseOcspResponse(goodResponse).responses[0]!.thisUpdate.getTime();
    const age = gauge(f, 'xrd_signer_ocsp_response_age_seconds', { cert: certSha1(good) });
    expect(age).toBeGreaterThanOrEqual(Math.max(0, Math.round((asked - thisUpdate) / 1000)));
    expect(age).toBeLessThanOrEqual(Math.round((answered - thisUpdate) / 1000));
  });

  it('shows a PIN lock as the token status', async () => {
    // Wrong PINs until SoftHSM locks the user PIN; the status series moves from OK to the lock.
    for (let i = 0; i < 12; i++) {
      try {
        await signer.call('activateToken', { token: tokenId, pin: '000000' });
      } catch {
        // expected: PinIncorrect, then PinLocked
      }
    }
    const f = await scrape();
    const statuses = f.get('xrd_signer_token_status')!.samples.filter((s) => s.labels.token === tokenId);
    expect(statuses).toHaveLength(1);
    expect(statuses[0]!.labels.status).not.toBe('OK');
    expect(statuses[0]!.labels.status).toMatch(/^USER_PIN_/);
  });

  it('measures the event-loop delay while it serves, and lets an idle daemon sleep: the sampler stops a second after the last request, and the pause does not count', async () => {
    // The daemon runs in this process: blocking this loop blocks its loop.
    const block = async (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until);
      await new Promise((r) => setTimeout(r, 30));
    };
    await signer.call('health', { resetStats: true }, { timeoutMs: 2000 });
    // A few of the sampler's ticks first: each measures the time since the one before.
    await new Promise((r) => setTimeout(r, 50));
    await block(300);
    expect((await signer.call('health', {}, { timeoutMs: 2000 })).eventLoopDelay.maxMs).toBeGreaterThanOrEqual(200);
    await signer.call('health', { resetStats: true }, { timeoutMs: 2000 });
    // No request for over a second: the sampler has stopped, so this block goes unseen; the next
    // request starts it again, and its first ticks do not count the pause (2.6 s) as delay.
    await new Promise((r) => setTimeout(r, 2300));
    await block(300);
    await signer.call('health', {}, { timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 50));
    expect((await signer.call('health', {}, { timeoutMs: 2000 })).eventLoopDelay.maxMs).toBeLessThan(200);
  });

  it('shows a signer of an older version (no event-loop, signature or OCSP sections in its answer) as up, with its tokens', async () => {
    await metrics.refresh(async () => {
      const { eventLoopDelay: _delay, signatures: _signatures, ocsp: _ocsp, ...older } = await signer.call('health', {}, { timeoutMs: 2000 });
      return older;
    });
    const f = parsePrometheusText(registry.text());
    expect(gauge(f, 'xrd_signer_up')).toBe(1);
    expect(gauge(f, 'xrd_signer_token_available', { token: tokenId })).toBe(1);
    expect(gauge(f, 'xrd_signer_event_loop_delay_p99_seconds')).toBeNaN();
    expect(f.get('xrd_signer_signatures_total')!.samples).toEqual([]);
    expect(f.get('xrd_signer_ocsp_status')!.samples).toEqual([]);
  });

  it('shows a stopped daemon as down with no token series, and comes back when it restarts', async () => {
    await daemon.close();
    let f = await scrape();
    expect(gauge(f, 'xrd_signer_up')).toBe(0);
    expect(gauge(f, 'xrd_signer_healthy')).toBe(0);
    expect(gauge(f, 'xrd_signer_uptime_seconds')).toBeNaN();
    expect(f.get('xrd_signer_token_active')!.samples).toEqual([]);

    expect(f.get('xrd_signer_signatures_total')!.samples).toEqual([]);
    expect(f.get('xrd_signer_ocsp_status')!.samples).toEqual([]);

    daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni }, silentLogger());
    f = await scrape();
    expect(gauge(f, 'xrd_signer_up')).toBe(1);
    expect(gauge(f, 'xrd_signer_token_available', { token: tokenId })).toBe(1);
    // Signature counts start again with the daemon (a counter reset); the OCSP cache is on disk.
    expect(f.get('xrd_signer_signatures_total')!.samples).toEqual([]);
    expect(f.get('xrd_signer_ocsp_status')!.samples).toHaveLength(2);
  });
});
