/**
 * The signer's health as Prometheus gauges, from a real signer daemon on a SoftHSM token: what a
 * scrape of the proxy's /metrics shows as the token is logged in and out and the daemon stops.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsRegistry } from '../../src/opmonitor/metrics.ts';
import { SignerMetrics } from '../../src/opmonitor/proxy-metrics.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { SignerConnection } from '../../src/signer/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
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

  it('shows a stopped daemon as down with no token series, and comes back when it restarts', async () => {
    await daemon.close();
    let f = await scrape();
    expect(gauge(f, 'xrd_signer_up')).toBe(0);
    expect(gauge(f, 'xrd_signer_healthy')).toBe(0);
    expect(gauge(f, 'xrd_signer_uptime_seconds')).toBeNaN();
    expect(f.get('xrd_signer_token_active')!.samples).toEqual([]);

    daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni }, silentLogger());
    f = await scrape();
    expect(gauge(f, 'xrd_signer_up')).toBe(1);
    expect(gauge(f, 'xrd_signer_token_available', { token: tokenId })).toBe(1);
  });
});
