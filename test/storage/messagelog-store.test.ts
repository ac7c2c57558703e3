/**
 * The message log on both engines (SQLite and PostgreSQL, src/storage), with real signatures and
 * the local TSA: records written by the proxies' group commit read back byte for byte by another
 * reader and by the engine's own command-line tool; one batch timestamp whose containers verify;
 * archives our verifier accepts, then retention; one archiver at a time; a writer killed with
 * SIGKILL under load loses no record it reported committed; a database that goes away fails
 * logging with a code and logging resumes when it is back.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyArchive } from '../../src/messagelog/archive-format.ts';
import { ArchiveBook } from '../../src/messagelog/archive-store.ts';
import { attachmentDirOf } from '../../src/messagelog/attachment-files.ts';
import { MessageLog, type MessageLogOptions } from '../../src/messagelog/message-log.ts';
import { MessageLogReader, messageLogLocation, openLogDatabase, refuseFileLeftBehind, type MessageLogLocation } from '../../src/messagelog/store.ts';
import { restRequestHeaderPart } from '../../src/protocol/rest-message.ts';
import { verifyAsic } from '../../src/signature/asic.ts';
import type { DatabaseConfig } from '../../src/storage/database.ts';
import { createFixture, killWriterAfter, logOptions, pseudoRandom, soap, toLog, type Fixture } from '../messagelog/fixture.ts';
import { startTestPostgres, stopEngines, storageEngines, type TestPostgres } from '../support/postgres.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-mlog-store-'));
let f: Fixture;
let n = 0;

beforeAll(async () => {
  f = await createFixture();
});
afterAll(async () => {
  stopEngines();
  await f?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the engine's own client reads (read-only for SQLite). */
function readRaw(config: DatabaseConfig, sql: string): string {
  return config.engine === 'sqlite'
    ? execFileSync('sqlite3', ['-readonly', config.file, sql]).toString().trim()
    : execFileSync('psql', ['-X', '-q', '-A', '-t', '-d', config.url, '-c', sql]).toString().trim();
}

describe.each(storageEngines(() => dir))('the message log on $engine', ({ config: configOf }) => {
  /** A fresh log's location: its database, and its attachment folder on this node's disk. */
  const location = (): MessageLogLocation => {
    const name = `mlog-${++n}`;
    mkdirSync(join(dir, name));
    return { database: configOf(name), attachmentDir: join(dir, name, 'attachments') };
  };
  const open = (at: MessageLogLocation, extra: Partial<MessageLogOptions> = {}) => MessageLog.open(at, logOptions(f, { attachmentFileThresholdBytes: 64 * 1024, ...extra }));

  it('group commit: records logged at once, SOAP and REST, small attachments in the database and a large one in a file, read back byte for byte by another reader', async () => {
    const at = location();
    const log = await open(at);
    const queries = Array.from({ length: 20 }, (_, i) => `q-gc-${i}`);
    const attachment = pseudoRandom(100 * 1024);
    const signed = await Promise.all(queries.map((q, i) => f.signer.sign(f.keys.client, { message: soap(q), attachments: i === 0 ? [attachment] : [Buffer.from(q)] })));
    // One signing batch: the messages share one signature document, written once.
    expect(new Set(signed.map((s) => s.signatureXml)).size).toBe(1);
    const restHeader = restRequestHeaderPart('POST', '/r1/LOCAL/COM/1111/PROVIDER/rest-test/hello', [['x-road-client', 'LOCAL/COM/2222/CLIENT'], ['x-road-id', 'q-rest']]);
    const restBody = Buffer.from('{"name":"x"}');
    const signedRest = await f.signer.sign(f.keys.client, { message: restHeader, attachments: [restBody] });
    const ids = await Promise.all([
      ...queries.map((q, i) => log.log(toLog(q, soap(q), signed[i]!, false, i === 0 ? [attachment] : [Buffer.from(q)]))),
      log.log({ ...toLog('q-rest', restHeader, signedRest, false, [restBody]), serviceCode: 'rest-test', xRequestId: 'pair-1' }),
    ]);
    expect(new Set(ids).size).toBe(21);

    const reader = await MessageLogReader.openExisting(at);
    try {
      for (const [i, q] of queries.entries()) {
        const [r] = await reader.records(q);
        expect(r!.id).toBe(ids[i]);
        expect(r!.message.equals(soap(q))).toBe(true);
        expect(r!.signatureXml).toBe(signed[i]!.signatureXml);
        expect(r!.hashChain).toBe(signed[i]!.hashChain);
        expect(r!.attachments[0]!.file !== undefined).toBe(i === 0);
        expect(r!.attachments[0]!.bytes().equals(i === 0 ? attachment : Buffer.from(q))).toBe(true);
      }
      const [rest] = await reader.records('q-rest');
      expect(rest).toMatchObject({ service: 'LOCAL/COM/1111/PROVIDER/rest-test', xRequestId: 'pair-1', isResponse: false, side: 'client' });
      expect(rest!.message.equals(restHeader) && rest!.attachments[0]!.bytes().equals(restBody)).toBe(true);
      expect(await reader.records('unknown')).toEqual([]);
    } finally {
      await reader.close();
    }
    // What the engine itself holds: every record queued for its timestamp, the batch's signature
    // once, and the records that arrived while the first was being committed in one commit (its time).
    expect(readRaw(at.database, 'SELECT count(*) FROM message_record')).toBe('21');
    expect(readRaw(at.database, `SELECT count(DISTINCT time) FROM message_record WHERE id <> ${ids[0]}`)).toBe('1');
    expect(readRaw(at.database, 'SELECT count(*) FROM timestamp_queue')).toBe('21');
    expect(readRaw(at.database, 'SELECT count(*) FROM signature')).toBe('2');
    expect(readdirSync(at.attachmentDir)).toHaveLength(1);
    expect((await log.status()).pending).toBe(21);
    await log.close();
  });

  it('one batch timestamp for every waiting record; each container verifies, then archives that verify and retention removes the archived records', async () => {
    const at = location();
    const archives = join(dir, `archives-${n}`);
    const log = await open(at, { archive: { dir: archives, keepRecordsForDays: 0 } });
    const queries = Array.from({ length: 12 }, (_, i) => `q-ts-${i}`);
    const requests = await Promise.all(queries.map((q) => f.signer.sign(f.keys.client, { message: soap(q) })));
    const responses = await Promise.all(queries.map((q) => f.signer.sign(f.keys.provider, { message: soap(q, true) })));
    await Promise.all(queries.flatMap((q, i) => [log.log(toLog(q, soap(q), requests[i]!, false)), log.log(toLog(q, soap(q, true), responses[i]!, true))]));
    expect(await log.timestampNow()).toBe(24);
    expect(await log.status()).toMatchObject({ pending: 0, timestampsObtained: 1, recordsStamped: 24 });
    for (const q of queries) {
      for (const c of await log.exportAsic(q)) expect(verifyAsic(c.data, f.conf)).toMatchObject({ queryId: q, batchTimestamp: expect.anything() });
    }

    const round = await log.archiveNow();
    expect(round).toMatchObject({ records: 24, recovered: 0 });
    const v = await verifyArchive(join(archives, round.files[0]!));
    expect(v.containers).toHaveLength(24);
    expect(readRaw(at.database, 'SELECT count(*) FROM archived_record')).toBe('24');
    expect(await log.cleanNow()).toBe(24);
    for (const table of ['message_record', 'signature', 'timestamp_record', 'record_timestamp', 'archived_record']) expect(readRaw(at.database, `SELECT count(*) FROM ${table}`), table).toBe('0');
    await log.close();
  });

  it('one archiver at a time: while another holds the lease, a round is refused with LogArchiverBusy; a lease that ran out is taken over', async () => {
    const at = location();
    const log = await open(at, { archive: { dir: join(dir, `archives-${n}`) } });
    const db = await openLogDatabase(at.database, { create: false });
    const other = new ArchiveBook(db);
    const now = Date.now();
    await other.lease(now, now + 60_000);
    await expect(log.archiveNow()).rejects.toMatchObject({ code: 'LogArchiverBusy' });
    // Two archivers asking at once: exactly one gets the lease.
    const [a, b] = [new ArchiveBook(db), new ArchiveBook(db)];
    const later = now + 120_000;
    const outcomes = await Promise.allSettled([a.lease(later, later + 60_000), b.lease(later, later + 60_000)]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    await db.close();
    await log.close();
  });

  it('a writer killed with SIGKILL under load (16 callers, attachments in files) loses no record it reported committed; the next writer removes only the files of uncommitted records', async () => {
    const at = location();
    // The child process's log: the SQLite file, or this PostgreSQL database.
    const file = at.database.engine === 'sqlite' ? at.database.file : join(dir, `mlog-${n}`, 'messagelog.db');
    const where: MessageLogLocation = { database: at.database, attachmentDir: attachmentDirOf(file) };
    const message = soap('q-crash');
    const attachment = Buffer.alloc(64 * 1024, 7);
    const signed = await f.signer.sign(f.keys.client, { message, attachments: [attachment] });
    const input = join(dir, `crash-input-${n}.json`);
    writeFileSync(input, JSON.stringify({ message: message.toString('base64'), signature: signed, tsa: f.conf.own.approvedTsas[0]!.url }));
    const reported = await killWriterAfter(300, file, input, { threshold: 32 * 1024, databaseUrl: at.database.engine === 'postgres' ? at.database.url : undefined });
    const reader = await MessageLogReader.openExisting(where);
    try {
      for (const { id, queryId } of reported) {
        const r = await reader.record(id);
        expect(r?.queryId, `record ${id}`).toBe(queryId);
        expect(r!.message.equals(message)).toBe(true);
        expect(r!.attachments[0]!.file).toBeDefined();
        expect(r!.attachments[0]!.bytes().equals(attachment), `record ${id}`).toBe(true);
      }
    } finally {
      await reader.close();
    }
    // The next writer removes the files the killed one placed for records it did not commit:
    // afterwards the folder holds exactly the files rows name.
    await (await MessageLog.open(where, logOptions(f))).close();
    const named = readRaw(at.database, 'SELECT file FROM message_attachment WHERE file IS NOT NULL ORDER BY file').split('\n').filter(Boolean);
    expect(named.length).toBeGreaterThanOrEqual(300);
    expect(readdirSync(where.attachmentDir).sort()).toEqual(named.sort());
  }, 60_000);
});

describe('the message log when PostgreSQL goes away', () => {
  let pg: TestPostgres;
  beforeAll(() => {
    pg = startTestPostgres();
  });
  afterAll(() => pg?.stop());

  it('a reader (xrd asic export) refuses a database that holds no message log with IOError instead of creating one there', async () => {
    const database = { engine: 'postgres', url: pg.createDatabase() } as const;
    await expect(MessageLogReader.openExisting({ database, attachmentDir: join(dir, 'none') })).rejects.toMatchObject({ code: 'IOError' });
    expect(readRaw(database, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'message_record'")).toBe('0');
  });

  it('a proxy does not move its log to PostgreSQL while messagelog.db is still in its data folder (InvalidConfiguration): its records would be orphaned', () => {
    const file = join(dir, 'left-behind', 'messagelog.db');
    mkdirSync(join(dir, 'left-behind'));
    const onPostgres = messageLogLocation(file, pg.createDatabase());
    expect(() => refuseFileLeftBehind(file, onPostgres)).not.toThrow();
    writeFileSync(file, '');
    expect(() => refuseFileLeftBehind(file, onPostgres)).toThrow(expect.objectContaining({ code: 'InvalidConfiguration' }));
    expect(() => refuseFileLeftBehind(file, messageLogLocation(file))).not.toThrow();
  });

  it('logging fails with LoggingFailed.DatabaseUnavailable, the health ping says so, and logging, the ping and timestamping work again once the database is back; nothing committed is lost', async () => {
    const at: MessageLogLocation = { database: { engine: 'postgres', url: pg.createDatabase() }, attachmentDir: join(dir, 'gone-attachments') };
    const log = await MessageLog.open(at, logOptions(f));
    const message = soap('q-gone');
    const signed = await f.signer.sign(f.keys.client, { message });
    const before = await log.log(toLog('q-gone-1', message, signed, false));
    pg.stopServer();
    try {
      await expect(log.log(toLog('q-gone-2', message, signed, false))).rejects.toMatchObject({ fullCode: 'LoggingFailed.DatabaseUnavailable' });
      await expect(log.ping()).rejects.toMatchObject({ code: 'DatabaseUnavailable' });
    } finally {
      pg.restart();
    }
    const after = await log.log(toLog('q-gone-3', message, signed, false));
    await log.ping();
    expect(after).toBeGreaterThan(before);
    expect((await log.records('q-gone-1')).map((r) => r.id)).toEqual([before]);
    expect(await log.records('q-gone-2')).toEqual([]);
    // The timestamper thread's own connection is back too.
    expect(await log.timestampNow()).toBe(2);
    expect((await log.records('q-gone-3'))[0]!.timestamp).toBeDefined();
    await log.close();
  }, 60_000);
});
