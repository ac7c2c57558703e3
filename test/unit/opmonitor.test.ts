/**
 * Operational monitoring on a real SQLite file: records stored as the proxies would store them,
 * read back by time, client and service in the reference's JSON form, read independently with the
 * sqlite3 command-line tool, and counted by the metrics a Prometheus server would scrape.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from '../../src/opmonitor/metrics.ts';
import { OpMonitor } from '../../src/opmonitor/op-monitor.ts';
import { ProxyMetrics } from '../../src/opmonitor/proxy-metrics.ts';
import { clientFields, serviceFields, type OpMonitoringRecord } from '../../src/opmonitor/record.ts';
import { CLIENT, PROVIDER, soapRecord } from '../support/op-records.ts';
import { parsePrometheusText, valueOf } from '../support/prometheus.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-opmon-'));
let n = 0;
const dbFile = () => join(dir, `op-${++n}.db`);
const open: OpMonitor[] = [];
afterEach(() => {
  for (const m of open.splice(0)) m.close();
});
function openMonitor(file: string, options: Parameters<typeof OpMonitor.open>[1] = {}): OpMonitor {
  const m = OpMonitor.open(file, options);
  open.push(m);
  return m;
}

const OTHER_CLIENT = parseClientId('LOCAL/COM/2222/BATCH');
const THIRD_CLIENT = parseClientId('LOCAL/GOV/3333/APP');
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

function restRecord(at: number, overrides: Partial<OpMonitoringRecord> = {}): OpMonitoringRecord {
  return {
    securityServerType: 'Producer',
    requestInTs: at,
    requestOutTs: at + 2,
    responseInTs: at + 12,
    responseOutTs: at + 14,
    ...clientFields(OTHER_CLIENT),
    ...serviceFields(PROVIDER, 'rest-test'),
    restMethod: 'GET',
    restPath: '/random',
    messageId: `rest-${at}`,
    requestSize: 0,
    responseSize: 19,
    succeeded: true,
    serviceType: 'REST',
    statusCode: 200,
    ...overrides,
  };
}

function sqlite(file: string, sql: string): string {
  return execFileSync('sqlite3', ['-readonly', file, sql]).toString().trim();
}

describe('storing and querying', () => {
  it('gives back a stored record as the reference JSON record, with nothing added or lost', () => {
    const m = openMonitor(dbFile(), { now: () => T0 + 60_000 });
    const record = soapRecord(T0);
    m.store(record);
    const [got, ...more] = m.query();
    expect(more).toEqual([]);
    expect(got).toEqual({ ...record, monitoringDataTs: Math.floor((T0 + 60_000) / 1000) });
    // Field names and types as in the reference's getSecurityServerOperationalData payload.
    const json = JSON.parse(JSON.stringify({ records: [got] })) as { records: Record<string, unknown>[] };
    expect(json.records[0]).toMatchObject({ securityServerType: 'Client', clientSubsystemCode: 'CLIENT', serviceCode: 'getRandom', succeeded: true, requestSize: 1629, representedPartyCode: '0000000-0' });
    expect(Object.keys(json.records[0]!)).not.toContain('faultCode');
  });

  it('selects by time, client (subsystem or whole member) and service, oldest first', () => {
    const m = openMonitor(dbFile());
    const records = [
      soapRecord(T0 + 5000),
      soapRecord(T0 + 1000, { ...clientFields(OTHER_CLIENT) }),
      restRecord(T0 + 2000),
      soapRecord(T0 + 3000, { ...clientFields(THIRD_CLIENT), ...serviceFields(PROVIDER, 'helloService', 'v1'), succeeded: false, faultCode: 'Server.ServerProxy.AccessDenied', faultString: 'Request is not allowed' }),
      restRecord(T0 + 9000, { ...clientFields(CLIENT), statusCode: 500, succeeded: false }),
    ];
    for (const r of records) m.store(r);
    const times = (rs: OpMonitoringRecord[]) => rs.map((r) => r.requestInTs - T0);

    expect(times(m.query())).toEqual([1000, 2000, 3000, 5000, 9000]);
    expect(times(m.query({ from: T0 + 2000, to: new Date(T0 + 5000) }))).toEqual([2000, 3000, 5000]);
    expect(times(m.query({ client: 'LOCAL/COM/2222/CLIENT' }))).toEqual([5000, 9000]);
    expect(times(m.query({ client: 'LOCAL/COM/2222' }))).toEqual([1000, 2000, 5000, 9000]);
    expect(times(m.query({ client: THIRD_CLIENT }))).toEqual([3000]);
    expect(times(m.query({ service: 'LOCAL/COM/1111/PROVIDER/getRandom' }))).toEqual([1000, 5000]);
    expect(times(m.query({ service: 'LOCAL/COM/1111/PROVIDER/helloService/v1' }))).toEqual([3000]);
    expect(times(m.query({ service: 'LOCAL/COM/1111/PROVIDER' }))).toHaveLength(5);
    expect(times(m.query({ service: 'LOCAL/COM/1111/PROVIDER/rest-test', client: 'LOCAL/COM/2222/BATCH' }))).toEqual([2000]);
    expect(times(m.query({ succeeded: false }))).toEqual([3000, 9000]);
    expect(times(m.query({ securityServerType: 'Producer' }))).toEqual([2000, 9000]);
    expect(times(m.query({ limit: 2 }))).toEqual([1000, 2000]);
    expect(m.query({ from: T0 + 9001 })).toEqual([]);
    const fault = m.query({ client: THIRD_CLIENT })[0]!;
    expect(fault).toMatchObject({ succeeded: false, faultCode: 'Server.ServerProxy.AccessDenied', faultString: 'Request is not allowed' });
  });

  it('refuses bad records and bad queries with coded errors', () => {
    const m = openMonitor(dbFile());
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(XrdError);
        return (err as XrdError).code;
      }
      return 'no error';
    };
    expect(code(() => m.store({ ...soapRecord(T0), securityServerType: 'Server' as never }))).toBe('InvalidRequest');
    expect(code(() => m.store({ ...soapRecord(T0), requestInTs: Number.NaN }))).toBe('InvalidRequest');
    expect(code(() => m.query({ client: 'LOCAL/COM' }))).toBe('InvalidIdentifier');
    expect(code(() => m.query({ service: 'LOCAL/COM/1111' }))).toBe('InvalidIdentifier');
    expect(code(() => m.query({ from: T0 + 1, to: T0 }))).toBe('InvalidRequest');
    expect(code(() => m.query({ limit: 0 }))).toBe('InvalidRequest');
    expect(code(() => m.query({ limit: 10_001 }))).toBe('InvalidRequest');
    const notDb = join(dir, 'not-a-db');
    writeFileSync(notDb, 'this is not SQLite, it is a text file of some length so SQLite reads a header'.repeat(20));
    expect(code(() => OpMonitor.open(notDb))).toBe('IOError');
  });

  it('cuts strings to the reference limits (255, faultString 2048)', () => {
    const m = openMonitor(dbFile());
    m.store(soapRecord(T0, { restPath: `/${'p'.repeat(400)}`, faultString: 'f'.repeat(5000), succeeded: false }));
    const [r] = m.query();
    expect(r!.restPath).toHaveLength(255);
    expect(r!.faultString).toHaveLength(2048);
  });
});

describe('writing', () => {
  it('batches writes: queued records reach the file within the interval, in WAL mode', async () => {
    const file = dbFile();
    const m = openMonitor(file, { flushIntervalMs: 100, batchSize: 10_000 });
    for (let i = 0; i < 250; i++) m.store(soapRecord(T0 + i));
    expect(m.stats()).toMatchObject({ queued: 250, written: 0 });
    expect(sqlite(file, 'SELECT count(*) FROM operational_data')).toBe('0');
    await new Promise((r) => setTimeout(r, 300));
    expect(m.stats()).toMatchObject({ queued: 0, written: 250 });
    expect(sqlite(file, 'SELECT count(*), min("requestInTs"), max("requestInTs") FROM operational_data')).toBe(`250|${T0}|${T0 + 249}`);
    expect(sqlite(file, 'PRAGMA journal_mode')).toBe('wal');
  });

  it('writes a full batch at once, and loses nothing queued on a clean close', () => {
    const file = dbFile();
    const m = OpMonitor.open(file, { flushIntervalMs: 60_000, batchSize: 100 });
    for (let i = 0; i < 1234; i++) m.store(restRecord(T0 + i));
    expect(m.stats()).toMatchObject({ written: 1200, queued: 34 });
    m.close();
    expect(sqlite(file, 'SELECT count(*) FROM operational_data')).toBe('1234');
    // A record arriving after close (a message finishing during shutdown) is dropped, not thrown.
    m.store(restRecord(T0 + 5000));
    expect(m.stats()).toMatchObject({ written: 1234, queued: 0, dropped: 1 });
    const again = openMonitor(file, { now: () => T0 });
    expect(again.query({ limit: 10_000 })).toHaveLength(1234);
  });

  it('deletes records past the retention period on open', () => {
    const file = dbFile();
    const day = 86_400_000;
    const m = OpMonitor.open(file, { now: () => T0 });
    m.store(soapRecord(T0 - 10 * day));
    m.store(soapRecord(T0 - 6 * day));
    m.store(soapRecord(T0 - 1000));
    m.close();
    const later = openMonitor(file, { retentionDays: 7, now: () => T0 });
    expect(later.query().map((r) => Math.round((T0 - r.requestInTs) / day))).toEqual([6, 0]);
    const shorter = (later.close(), openMonitor(file, { retentionDays: 1, now: () => T0 }));
    expect(shorter.query()).toHaveLength(1);
  });
});

describe('Prometheus metrics', () => {
  it('counts what was stored, in text a Prometheus server reads', () => {
    const registry = new MetricsRegistry();
    const metrics = new ProxyMetrics(registry);
    const m = openMonitor(dbFile(), { onStore: (r) => metrics.observe(r) });
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
    expect(total).toBe(m.query().length);
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
