/**
 * Operational monitoring's Prometheus metrics: records stored as the proxies would store them,
 * counted by the metrics a Prometheus server would scrape (the store itself on both engines:
 * test/storage/opmonitor-store.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from '../../src/opmonitor/metrics.ts';
import { OpMonitor, type OpMonitorOptions } from '../../src/opmonitor/op-monitor.ts';
import { ProxyMetrics } from '../../src/opmonitor/proxy-metrics.ts';
import type { OpMonitoringRecord } from '../../src/opmonitor/record.ts';
import { restRecord, soapRecord } from '../support/op-records.ts';
import { parsePrometheusText, valueOf } from '../support/prometheus.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-opmon-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbFile = () => join(dir, `op-${++n}.db`);
const open: OpMonitor[] = [];
afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});
async function openMonitor(file: string, options: OpMonitorOptions = {}): Promise<OpMonitor> {
  const m = await OpMonitor.open({ engine: 'sqlite', file }, options);
  open.push(m);
  return m;
}

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

describe('Prometheus metrics', () => {
  it('counts what was stored, in text a Prometheus server reads', async () => {
    const registry = new MetricsRegistry();
    const metrics = new ProxyMetrics(registry);
    const m = await openMonitor(dbFile(), { onStore: (r) => metrics.observe(r) });
    const stored: OpMonitoringRecord[] = [];
    for (let i = 0; i < 40; i++) stored.push(soapRecord(T0 + i * 10, { responseOutTs: T0 + i * 10 + 20 + i, requestSize: 500 + i * 100 }));
    for (let i = 0; i < 7; i++) stored.push(restRecord(T0 + 5000 + i));
    for (let i = 0; i < 3; i++) stored.push(soapRecord(T0 + 6000 + i, { succeeded: false, faultCode: 'Server.ServerProxy.ServiceFailed', faultString: 'Service LOCAL/COM/1111/PROVIDER/getRandom failed: "timeout"\nretry' }));
    for (const r of stored) m.store(r);

    const text = registry.text();
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
    const families = parsePrometheusText(text);
    // Prometheus' own linter, where it is installed (Debian's prometheus package).
    if (spawnSync('promtool', ['--version']).status === 0) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text });
      expect(check.status, check.stdout.toString() + check.stderr.toString()).toBe(0);
    }
    const soapService = 'LOCAL/COM/1111/PROVIDER/getRandom';
    expect(families.get('xrd_proxy_requests_total')!.type).toBe('counter');
    expect(valueOf(families, 'xrd_proxy_requests_total', 'xrd_proxy_requests_total', { direction: 'outbound', protocol: 'soap', service: soapService, result: 'success' })).toBe(40);
    expect(valueOf(families, 'xrd_proxy_requests_total', 'xrd_proxy_requests_total', { direction: 'outbound', protocol: 'soap', service: soapService, result: 'fault' })).toBe(3);
    expect(valueOf(families, 'xrd_proxy_requests_total', 'xrd_proxy_requests_total', { direction: 'inbound', protocol: 'rest', service: 'LOCAL/COM/1111/PROVIDER/rest-test', result: 'success' })).toBe(7);
    expect(valueOf(families, 'xrd_proxy_faults_total', 'xrd_proxy_faults_total', { direction: 'outbound', fault_code: 'Server.ServerProxy.ServiceFailed' })).toBe(3);
    // The counters add up to what the store holds.
    const total = families.get('xrd_proxy_requests_total')!.samples.reduce((s, x) => s + x.value, 0);
    expect(total).toBe((await m.query()).length);
    expect(total).toBe(50);

    // Durations: responseOutTs - requestInTs, in seconds.
    const durationLabels = { direction: 'outbound', service: soapService };
    const expectedDurations = stored.filter((r) => r.securityServerType === 'Client').map((r) => (r.responseOutTs! - r.requestInTs) / 1000);
    expect(valueOf(families, 'xrd_proxy_request_duration_seconds', 'xrd_proxy_request_duration_seconds_count', durationLabels)).toBe(43);
    expect(valueOf(families, 'xrd_proxy_request_duration_seconds', 'xrd_proxy_request_duration_seconds_sum', durationLabels)).toBeCloseTo(expectedDurations.reduce((a, b) => a + b, 0), 9);
    expect(valueOf(families, 'xrd_proxy_request_duration_seconds', 'xrd_proxy_request_duration_seconds_bucket', { ...durationLabels, le: '0.05' })).toBe(expectedDurations.filter((d) => d <= 0.05).length);
    expect(valueOf(families, 'xrd_proxy_service_duration_seconds', 'xrd_proxy_service_duration_seconds_sum', { direction: 'inbound', service: 'LOCAL/COM/1111/PROVIDER/rest-test' })).toBeCloseTo(0.07, 9);
    // Sizes: 40 SOAP requests of 500..4400 bytes, 3 faults of 1629.
    const sizes = stored.filter((r) => r.securityServerType === 'Client').map((r) => r.requestSize!);
    expect(valueOf(families, 'xrd_proxy_request_size_bytes', 'xrd_proxy_request_size_bytes_bucket', { direction: 'outbound', le: '1024' })).toBe(sizes.filter((s) => s <= 1024).length);
    expect(valueOf(families, 'xrd_proxy_request_size_bytes', 'xrd_proxy_request_size_bytes_sum', { direction: 'outbound' })).toBe(sizes.reduce((a, b) => a + b, 0));
  });

  it('escapes label values and help text so odd service codes cannot break the exposition', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('xrd_test_total', 'Help with a \\ backslash\nand a newline.', ['service']);
    c.inc({ service: 'LOCAL/COM/1/"quoted"\\back\nline' }, 2);
    const g = registry.gauge('xrd_test_gauge', 'A gauge.');
    g.set(undefined, Number.NaN);
    registry.histogram('xrd_test_seconds', 'Unused histogram.', ['x']);
    const families = parsePrometheusText(registry.text());
    expect(families.get('xrd_test_total')!.samples[0]).toEqual({ name: 'xrd_test_total', labels: { service: 'LOCAL/COM/1/"quoted"\\back\nline' }, value: 2 });
    expect(families.get('xrd_test_total')!.help).toBe('Help with a \\ backslash\nand a newline.');
    expect(families.get('xrd_test_gauge')!.samples[0]!.value).toBeNaN();
    expect(families.get('xrd_test_seconds')!.samples).toEqual([]);
    expect(() => c.inc({ service: 'x', other: 'y' })).toThrow(/takes labels service/);
    expect(() => c.inc({ service: 'x' }, -1)).toThrow(/only go up/);
    expect(() => registry.counter('xrd_test_total', 'again')).toThrow(/already registered/);
    expect(() => registry.counter('bad-name', 'x')).toThrow(/invalid metric name/);
  });
});
