/**
 * The operational monitoring store on both engines (SQLite and PostgreSQL, src/storage): records
 * stored as the proxies would store them, read back by time, client and service in the reference's
 * JSON form, and read independently with the engine's own command-line tool (sqlite3, psql).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { OpMonitor, type OpMonitorOptions } from '../../src/opmonitor/op-monitor.ts';
import { clientFields, serviceFields, type OpMonitoringRecord } from '../../src/opmonitor/record.ts';
import type { DatabaseConfig } from '../../src/storage/database.ts';
import { CLIENT, OTHER_CLIENT, PROVIDER, restRecord, soapRecord } from '../support/op-records.ts';
import { startTestPostgres, stopEngines, storageEngines } from '../support/postgres.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-opmon-'));
let n = 0;
const open: OpMonitor[] = [];
afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});
afterAll(() => {
  stopEngines();
  rmSync(dir, { recursive: true, force: true });
});

const THIRD_CLIENT = parseClientId('LOCAL/GOV/3333/APP');
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

/** What the engine's own client reads (read-only for SQLite), as `a|b` lines. */
function readRaw(config: DatabaseConfig, sql: string): string {
  return config.engine === 'sqlite'
    ? execFileSync('sqlite3', ['-readonly', config.file, sql]).toString().trim()
    : execFileSync('psql', ['-X', '-q', '-A', '-t', '-d', config.url, '-c', sql]).toString().trim();
}

async function code(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (err) {
    expect(err).toBeInstanceOf(XrdError);
    return (err as XrdError).code;
  }
  return 'no error';
}

describe.each(storageEngines(() => dir))('operational monitoring on $engine', ({ engine, config: configOf }) => {
  const config = () => configOf(`op-${++n}`);
  async function openMonitor(c: DatabaseConfig, options: OpMonitorOptions = {}): Promise<OpMonitor> {
    const m = await OpMonitor.open(c, options);
    open.push(m);
    return m;
  }

  describe('storing and querying', () => {
    it('gives back a stored record as the reference JSON record, with nothing added or lost', async () => {
      const m = await openMonitor(config(), { now: () => T0 + 60_000 });
      const record = soapRecord(T0);
      m.store(record);
      const [got, ...more] = await m.query();
      expect(more).toEqual([]);
      expect(got).toEqual({ ...record, monitoringDataTs: Math.floor((T0 + 60_000) / 1000) });
      // Field names and types as in the reference's getSecurityServerOperationalData payload.
      const json = JSON.parse(JSON.stringify({ records: [got] })) as { records: Record<string, unknown>[] };
      expect(json.records[0]).toMatchObject({ securityServerType: 'Client', clientSubsystemCode: 'CLIENT', serviceCode: 'getRandom', succeeded: true, requestSize: 1629, representedPartyCode: '0000000-0' });
      expect(Object.keys(json.records[0]!)).not.toContain('faultCode');
    });

    it('selects by time, client (subsystem or whole member) and service, oldest first', async () => {
      const m = await openMonitor(config());
      const records = [
        soapRecord(T0 + 5000),
        soapRecord(T0 + 1000, { ...clientFields(OTHER_CLIENT) }),
        restRecord(T0 + 2000),
        soapRecord(T0 + 3000, { ...clientFields(THIRD_CLIENT), ...serviceFields(PROVIDER, 'helloService', 'v1'), succeeded: false, faultCode: 'Server.ServerProxy.AccessDenied', faultString: 'Request is not allowed' }),
        restRecord(T0 + 9000, { ...clientFields(CLIENT), statusCode: 500, succeeded: false }),
      ];
      for (const r of records) m.store(r);
      const times = (rs: OpMonitoringRecord[]) => rs.map((r) => r.requestInTs - T0);

      expect(times(await m.query())).toEqual([1000, 2000, 3000, 5000, 9000]);
      expect(times(await m.query({ from: T0 + 2000, to: new Date(T0 + 5000) }))).toEqual([2000, 3000, 5000]);
      expect(times(await m.query({ client: 'LOCAL/COM/2222/CLIENT' }))).toEqual([5000, 9000]);
      expect(times(await m.query({ client: 'LOCAL/COM/2222' }))).toEqual([1000, 2000, 5000, 9000]);
      expect(times(await m.query({ client: THIRD_CLIENT }))).toEqual([3000]);
      expect(times(await m.query({ service: 'LOCAL/COM/1111/PROVIDER/getRandom' }))).toEqual([1000, 5000]);
      expect(times(await m.query({ service: 'LOCAL/COM/1111/PROVIDER/helloService/v1' }))).toEqual([3000]);
      expect(times(await m.query({ service: 'LOCAL/COM/1111/PROVIDER' }))).toHaveLength(5);
      expect(times(await m.query({ service: 'LOCAL/COM/1111/PROVIDER/rest-test', client: 'LOCAL/COM/2222/BATCH' }))).toEqual([2000]);
      expect(times(await m.query({ succeeded: false }))).toEqual([3000, 9000]);
      expect(times(await m.query({ securityServerType: 'Producer' }))).toEqual([2000, 9000]);
      expect(times(await m.query({ limit: 2 }))).toEqual([1000, 2000]);
      expect(await m.query({ from: T0 + 9001 })).toEqual([]);
      const fault = (await m.query({ client: THIRD_CLIENT }))[0]!;
      expect(fault).toMatchObject({ succeeded: false, faultCode: 'Server.ServerProxy.AccessDenied', faultString: 'Request is not allowed' });
    });

    it('refuses bad records and bad queries with coded errors', async () => {
      const m = await openMonitor(config());
      expect(await code(() => m.store({ ...soapRecord(T0), securityServerType: 'Server' as never }))).toBe('InvalidRequest');
      expect(await code(() => m.store({ ...soapRecord(T0), requestInTs: Number.NaN }))).toBe('InvalidRequest');
      expect(await code(() => m.query({ client: 'LOCAL/COM' }))).toBe('InvalidIdentifier');
      expect(await code(() => m.query({ service: 'LOCAL/COM/1111' }))).toBe('InvalidIdentifier');
      expect(await code(() => m.query({ from: T0 + 1, to: T0 }))).toBe('InvalidRequest');
      expect(await code(() => m.query({ limit: 0 }))).toBe('InvalidRequest');
      expect(await code(() => m.query({ limit: 10_001 }))).toBe('InvalidRequest');
      if (engine === 'sqlite') {
        const notDb = join(dir, 'not-a-db');
        writeFileSync(notDb, 'this is not SQLite, it is a text file of some length so SQLite reads a header'.repeat(20));
        expect(await code(() => OpMonitor.open({ engine: 'sqlite', file: notDb }))).toBe('DatabaseUnavailable');
      } else {
        expect(await code(() => OpMonitor.open({ engine: 'postgres', url: 'postgresql://xrd@localhost/none?host=/nonexistent' }))).toBe('DatabaseUnavailable');
      }
    });

    it('cuts strings to the reference limits (255, faultString 2048)', async () => {
      const m = await openMonitor(config());
      m.store(soapRecord(T0, { restPath: `/${'p'.repeat(400)}`, faultString: 'f'.repeat(5000), succeeded: false }));
      const [r] = await m.query();
      expect(r!.restPath).toHaveLength(255);
      expect(r!.faultString).toHaveLength(2048);
    });
  });

  describe('writing', () => {
    it('batches writes: queued records reach the database within the interval', async () => {
      const c = config();
      const m = await openMonitor(c, { flushIntervalMs: 100, batchSize: 10_000 });
      for (let i = 0; i < 250; i++) m.store(soapRecord(T0 + i));
      expect(m.stats()).toMatchObject({ queued: 250, written: 0 });
      expect(readRaw(c, 'SELECT count(*) FROM operational_data')).toBe('0');
      await vi.waitFor(() => expect(m.stats()).toMatchObject({ queued: 0, written: 250 }), { timeout: 5000 });
      expect(readRaw(c, 'SELECT count(*), min("requestInTs"), max("requestInTs") FROM operational_data')).toBe(`250|${T0}|${T0 + 249}`);
      if (c.engine === 'sqlite') expect(readRaw(c, 'PRAGMA journal_mode')).toBe('wal');
    });

    it('writes as soon as a batch is full, and loses nothing queued on a clean close', async () => {
      const c = config();
      const m = await OpMonitor.open(c, { flushIntervalMs: 60_000, batchSize: 100 });
      for (let i = 0; i < 1234; i++) m.store(restRecord(T0 + i));
      // Long before the interval: the full batches started a write.
      await vi.waitFor(() => expect(m.stats()).toMatchObject({ written: 1234, queued: 0 }), { timeout: 5000 });
      for (let i = 0; i < 34; i++) m.store(restRecord(T0 + 2000 + i));
      await new Promise((r) => setTimeout(r, 50));
      expect(m.stats()).toMatchObject({ written: 1234, queued: 34 });
      await m.close();
      expect(readRaw(c, 'SELECT count(*) FROM operational_data')).toBe('1268');
      // A record arriving after close (a message finishing during shutdown) is dropped, not thrown.
      m.store(restRecord(T0 + 5000));
      expect(m.stats()).toMatchObject({ written: 1268, queued: 0, dropped: 1 });
      const again = await openMonitor(c, { now: () => T0 });
      expect(await again.query({ limit: 10_000 })).toHaveLength(1268);
    });

    it('deletes records past the retention period on open', async () => {
      const c = config();
      const day = 86_400_000;
      const m = await OpMonitor.open(c, { now: () => T0 });
      m.store(soapRecord(T0 - 10 * day));
      m.store(soapRecord(T0 - 6 * day));
      m.store(soapRecord(T0 - 1000));
      await m.close();
      const later = await OpMonitor.open(c, { retentionDays: 7, now: () => T0 });
      expect((await later.query()).map((r) => Math.round((T0 - r.requestInTs) / day))).toEqual([6, 0]);
      await later.close();
      const shorter = await openMonitor(c, { retentionDays: 1, now: () => T0 });
      expect(await shorter.query()).toHaveLength(1);
    });
  });
});

describe('operational monitoring on postgres: a database that goes away', () => {
  it('keeps records queued while the database is down, and writes them once it is back', async () => {
    const pg = startTestPostgres();
    const url = pg.createDatabase();
    const m = await OpMonitor.open({ engine: 'postgres', url }, { flushIntervalMs: 20, batchSize: 10_000 });
    try {
      m.store(soapRecord(T0));
      await vi.waitFor(() => expect(m.stats().written).toBe(1), { timeout: 5000 });
      pg.stopServer();
      for (let i = 1; i <= 5; i++) m.store(soapRecord(T0 + i));
      expect(await m.flush()).toBe(0);
      expect(m.stats()).toMatchObject({ written: 1, queued: 5, dropped: 0 });
      pg.restart();
      // Retried on the failure's timer (at least a second), on a new connection.
      await vi.waitFor(() => expect(m.stats()).toMatchObject({ written: 6, queued: 0 }), { timeout: 10_000, interval: 100 });
      expect(readRaw({ engine: 'postgres', url }, 'SELECT count(*) FROM operational_data')).toBe('6');
    } finally {
      await m.close();
      pg.stop();
    }
  });

  it('a database that hangs: records past maxQueued are dropped, the ones being written count as queued', async () => {
    const pg = startTestPostgres();
    const url = pg.createDatabase();
    const m = await OpMonitor.open({ engine: 'postgres', url }, { flushIntervalMs: 20, batchSize: 100, maxQueued: 1000 });
    try {
      m.store(soapRecord(T0));
      await vi.waitFor(() => expect(m.stats().written).toBe(1), { timeout: 5000 });
      pg.freeze(true);
      for (let i = 1; i <= 5000; i++) m.store(soapRecord(T0 + i));
      await new Promise((r) => setTimeout(r, 200));
      // One batch hangs in its write; the rest waits behind it, never more than maxQueued together.
      expect(m.stats().queued).toBe(1000);
      expect(m.stats().dropped).toBe(4000);
      pg.freeze(false);
      await vi.waitFor(() => expect(m.stats()).toMatchObject({ written: 1001, queued: 0 }), { timeout: 10_000, interval: 100 });
    } finally {
      pg.freeze(false);
      await m.close();
      pg.stop();
    }
  });
});
