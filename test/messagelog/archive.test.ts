/**
 * Archiving and retention as the reference's LogArchiver, LogArchiveWriter and LogCleaner do them,
 * with a real log file, real signatures and the local TSA: stamped records only, archives our
 * verifier accepts and chains across, containers byte for byte their exports, encryption with a
 * throw-away GnuPG home, grouping, the crash windows between writing a file and marking its
 * records, one archiver at a time, and removal after the retention period.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyArchive } from '../../src/messagelog/archive-format.ts';
import { ArchiveBook } from '../../src/messagelog/archive-store.ts';
import { archiveRound } from '../../src/messagelog/archiver.ts';
import { attachmentDirOf } from '../../src/messagelog/attachment-files.ts';
import { MessageLog, type ArchiveOptions } from '../../src/messagelog/message-log.ts';
import { MessageLogReader, messageLogLocation, openLogDatabase } from '../../src/messagelog/store.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { readZip } from '../../src/platform/zip.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { readKeyMappings } from '../../src/cli/messagelog-commands.ts';
import { VECTORS } from '../support/vectors.ts';
import { createFixture, logOptions, soap, toLog, xrd, type Fixture } from './fixture.ts';

let f: Fixture;
let n = 0;

beforeAll(async () => {
  f = await createFixture();
});
afterAll(async () => {
  await f?.close();
});

interface Setup {
  readonly file: string;
  readonly dir: string;
  readonly log: MessageLog;
}

async function open(archive: Partial<ArchiveOptions> = {}): Promise<Setup> {
  const base = join(f.dir, `archive-${++n}`);
  mkdirSync(base);
  const file = join(base, 'messagelog.db');
  const dir = join(base, 'archives');
  // Attachments above 1 kB are files beside the log: archived from a streamed container.
  const log = await MessageLog.open(file, logOptions(f, { attachmentFileThresholdBytes: 1024, archive: { dir, ...archive } }));
  return { file, dir, log };
}

/** Logs a request (with `attachment`, if given) and its response under `queryId`. */
async function exchange(log: MessageLog, queryId: string, attachment?: Buffer, client = toLog('', Buffer.alloc(0), { signatureXml: '' }, false).client): Promise<number[]> {
  return (await signedExchange(log, queryId, attachment, client)).ids;
}

async function signedExchange(log: MessageLog, queryId: string, attachment?: Buffer, client = toLog('', Buffer.alloc(0), { signatureXml: '' }, false).client) {
  const request = soap(queryId);
  const response = soap(queryId, true);
  const attachments = attachment ? [attachment] : [];
  const signedRequest = await f.signer.sign(f.keys.client, { message: request, attachments });
  const signedResponse = await f.signer.sign(f.keys.provider, { message: response });
  const messages = [{ ...toLog(queryId, request, signedRequest, false, attachments), client }, toLog(queryId, response, signedResponse, true)];
  const ids: number[] = [];
  for (const m of messages) ids.push(await log.log(m));
  return { messages, ids };
}

/** The containers of an archive by name. */
function containersOf(file: string): Map<string, Buffer> {
  return new Map(readZip(readFileSync(file)).map((e) => [e.name, e.data]));
}

async function exportsOf(file: string, queryIds: readonly string[]): Promise<Map<string, Buffer>> {
  const reader = await MessageLogReader.openExisting(file);
  try {
    const exported = await Promise.all(queryIds.map((q) => reader.exportAsic(q)));
    return new Map(exported.flat().map((c) => [c.name, c.data] as const));
  } finally {
    await reader.close();
  }
}

/** Puts the log's one archive back in the state a crash before its marking leaves: row pending, records not marked. */
function leavePending(file: string): void {
  const db = new Database(file);
  const ids = db.prepare('SELECT record_id FROM archived_record').all().map((r) => (r as { record_id: number }).record_id);
  db.prepare('UPDATE archive_file SET pending_records = ?').run(JSON.stringify(ids));
  db.prepare('DELETE FROM archived_record').run();
  db.close();
}

function tableCount(file: string, sql: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('LogArchiver', () => {
  it('archives stamped records only, into a reference-format archive that verifies; every container is its export, byte for byte', async () => {
    const { file, dir, log } = await open();
    const big = Buffer.alloc(5000, 'attachment in a file ');
    await exchange(log, 'q-a', big);
    await exchange(log, 'q-b');
    await log.timestampNow();
    const [unstamped] = await exchange(log, 'q-late');

    const first = await log.archiveNow();
    expect(first).toMatchObject({ records: 4, recovered: 0 });
    expect(first.files).toHaveLength(1);
    const name = first.files[0]!;
    // LogArchiveWriter.getArchiveFilename: mlog-<first>-<last>-<16 hex of the last digest>.zip
    expect(name).toMatch(/^mlog-\d{14}-\d{14}-[0-9a-f]{16}\.zip$/);
    expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    const v1 = await verifyArchive(join(dir, name));
    expect(v1.previous).toEqual({ digest: '', fileName: '' });
    expect(name).toContain(`-${v1.lastDigest.slice(0, 16)}.zip`);
    // Round trip: the archive holds exactly the exports of the stamped records.
    const exported = await exportsOf(file, ['q-a', 'q-b']);
    const archived = containersOf(join(dir, name));
    expect([...archived.keys()].sort()).toEqual([...exported.keys(), 'linkinginfo'].sort());
    for (const [entry, data] of exported) expect(archived.get(entry)!.equals(data), entry).toBe(true);
    // Archived records still export (they stay in the log until retention removes them).
    expect((await exportsOf(file, ['q-a'])).size).toBe(2);

    // Nothing new stamped: nothing archived, no empty archive.
    expect(await log.archiveNow()).toMatchObject({ records: 0, files: [] });

    // The late ones, once stamped, go into the next archive, chained to the first.
    await log.timestampNow();
    const second = await log.archiveNow();
    expect(second.records).toBe(2);
    const v2 = await verifyArchive(join(dir, second.files[0]!), { previousDigest: v1.lastDigest });
    expect(v2.previous).toEqual({ digest: v1.lastDigest, fileName: name });
    expect(v2.containers).toContain(`q-late-request-${unstamped!.toString(32)}.asice`);
    await expect(verifyArchive(join(dir, second.files[0]!))).rejects.toMatchObject({ code: 'LogArchivePreviousDigestMismatch' });
    await log.close();
  });

  it('LogArchiveTest writeAndRotate, LogArchiveCacheTest rotateImmediatelyWhenOneEntryIsTooLarge: rotates when an archive passes archive-max-filesize, the chain running on through the files', async () => {
    const { dir, log } = await open({ maxFileBytes: 1 });
    await exchange(log, 'q-r1');
    await exchange(log, 'q-r2');
    await log.timestampNow();
    const { files } = await log.archiveNow();
    expect(files).toHaveLength(4);
    let previous: string | undefined;
    for (const name of files) previous = (await verifyArchive(join(dir, name), { previousDigest: previous })).lastDigest;
    await log.close();
  });

  it('archive-grouping member: one chain per member of this server, named after it', async () => {
    const { dir, log } = await open({ grouping: 'member' });
    await exchange(log, 'q-g1');
    await exchange(log, 'q-g2', undefined, parseClientId('LOCAL/GOV/3333/OTHER'));
    await log.timestampNow();
    const { files } = await log.archiveNow();
    // Requests belong to their clients (LOCAL/COM/2222, LOCAL/GOV/3333), responses to the provider LOCAL/COM/1111.
    expect(files.map((name) => name.replace(/-\d{14}-\d{14}-[0-9a-f]{16}\.zip$/, '')).sort()).toEqual(['mlog-LOCAL_COM_1111', 'mlog-LOCAL_COM_2222', 'mlog-LOCAL_GOV_3333']);
    for (const name of files) expect((await verifyArchive(join(dir, name))).previous.digest).toBe('');
    await log.close();
  });

  it('a crash after the file got its name but before its records were marked: the next round marks them, nothing archived twice', async () => {
    const { file, dir, log } = await open();
    await exchange(log, 'q-c1');
    await log.timestampNow();
    const { files } = await log.archiveNow();
    await log.close();
    // The state such a crash leaves: the archive's row pending, its records not marked.
    leavePending(file);
    writeFileSync(join(dir, 'tmp-mlog-0123456789abcdef.tmp'), 'half an archive');

    const again = await MessageLog.open(file, logOptions(f, { archive: { dir } }));
    await exchange(again, 'q-c2');
    await again.timestampNow();
    const round = await again.archiveNow();
    expect(round).toMatchObject({ recovered: 1, records: 2 });
    expect(readdirSync(dir).filter((name) => name.startsWith('tmp-'))).toEqual([]);
    const v1 = await verifyArchive(join(dir, files[0]!));
    const v2 = await verifyArchive(join(dir, round.files[0]!), { previousDigest: v1.lastDigest });
    expect(v2.containers.every((c) => c.startsWith('q-c2-'))).toBe(true);
    await again.close();
  });

  it('a crash before the file got its name: the records are archived again from the same place in the chain, into the same bytes (LogArchiveCacheTest archivingShouldBeDeterministic)', async () => {
    const { file, dir, log } = await open();
    await exchange(log, 'q-d1');
    await log.timestampNow();
    const { files } = await log.archiveNow();
    const original = readFileSync(join(dir, files[0]!));
    await log.close();
    leavePending(file);
    rmSync(join(dir, files[0]!));

    const again = await MessageLog.open(file, logOptions(f, { archive: { dir } }));
    const round = await again.archiveNow();
    expect(round).toMatchObject({ recovered: 0, records: 2, files });
    expect(readFileSync(join(dir, files[0]!)).equals(original)).toBe(true);
    expect(tableCount(file, 'SELECT count(*) AS n FROM archive_file')).toBe(1);
    await again.close();
  });

  it('kill -9 during archiving, again and again: the rounds after lose no record, archive none twice, and the chain runs unbroken through every file', async () => {
    const { file, dir, log } = await open();
    const signed = await signedExchange(log, 'q-k0');
    for (let i = 1; i < 150; i++) for (const m of signed.messages) await log.log({ ...m, queryId: `q-k${i}` });
    await log.timestampNow();
    await log.close();
    const writer = (killAfterFiles?: number) =>
      new Promise<string>((done, fail) => {
        const child = spawn('node', ['--import', 'tsx', resolve(import.meta.dirname, 'archive-writer.ts'), file, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        const watch =
          killAfterFiles === undefined
            ? undefined
            : setInterval(() => {
                if (existsSync(dir) && readdirSync(dir).filter((name) => name.startsWith('mlog-')).length >= killAfterFiles) child.kill('SIGKILL');
              }, 2);
        child.once('exit', (code, signal) => {
          clearInterval(watch);
          if (killAfterFiles === undefined && code !== 0) fail(new Error(`archive writer exited with ${code}`));
          else done(signal ?? out);
        });
      });
    // Each kill lands wherever the writer is: building, writing, renaming or marking.
    for (const files of [20, 60, 120]) expect(await writer(files)).toBe('SIGKILL');
    const last = JSON.parse(await writer()) as { records: number; files: string[] };
    expect(last.records).toBeGreaterThan(0);

    // The chain as the log records it, oldest first: every file there, each verifying after the one before.
    const db = new Database(file, { readonly: true });
    const rows = db.prepare('SELECT name, last_digest, pending_records FROM archive_file ORDER BY id').all() as { name: string; last_digest: string; pending_records: string | null }[];
    const marked = (db.prepare('SELECT count(*) AS n FROM archived_record').get() as { n: number }).n;
    db.close();
    expect(rows.every((r) => r.pending_records === null)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(rows.map((r) => r.name).sort());
    let previous: string | undefined;
    const containers: string[] = [];
    for (const row of rows) {
      const v = await verifyArchive(join(dir, row.name), { previousDigest: previous });
      expect(v.lastDigest).toBe(row.last_digest);
      containers.push(...v.containers);
      previous = v.lastDigest;
    }
    // 300 records: each in exactly one archive, and marked.
    expect(containers).toHaveLength(300);
    expect(new Set(containers).size).toBe(300);
    expect(marked).toBe(300);
  });

  it('closing the log during a long round ends it after the archive being written; the next round goes on from there', async () => {
    const { file, dir, log } = await open({ maxFileBytes: 1 });
    const signed = await signedExchange(log, 'q-stop0');
    for (let i = 1; i < 100; i++) for (const m of signed.messages) await log.log({ ...m, queryId: `q-stop${i}` });
    await log.timestampNow();
    const round = log.archiveNow();
    while (!existsSync(dir) || readdirSync(dir).filter((name) => name.startsWith('mlog-')).length < 3) await new Promise((r) => setTimeout(r, 5));
    await log.close();
    const first = await round;
    expect(first.records).toBeLessThan(200);
    expect(first.files).toHaveLength(first.records);

    const again = await MessageLog.open(file, logOptions(f, { archive: { dir, maxFileBytes: 1 } }));
    const rest = await again.archiveNow();
    expect(first.records + rest.records).toBe(200);
    let previous: string | undefined;
    for (const name of [...first.files, ...rest.files]) previous = (await verifyArchive(join(dir, name), { previousDigest: previous })).lastDigest;
    await again.close();
  });

  it('one archiver at a time: while another holds the lease, a round is refused with LogArchiverBusy', async () => {
    const { file, dir, log } = await open();
    const db = await openLogDatabase(messageLogLocation(file).database, { create: false });
    const other = new ArchiveBook(db);
    await other.lease(Date.now(), Date.now() + 60_000);
    const err = await log.archiveNow().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XrdError);
    expect((err as XrdError).code).toBe('LogArchiverBusy');
    await other.releaseLease();
    await expect(archiveRound(db, async () => undefined, { dir })).resolves.toMatchObject({ records: 0 });
    await db.close();
    await log.close();
  });

  it('GPGOutputStreamTest shouldEncrypt / shouldFailIfInvalidRecipient: with encryption each archive is one .zip.gpg file, signed and encrypted to the recipient, which decrypts to an archive that verifies', async () => {
    const home = join(f.dir, `gpg-${++n}`);
    mkdirSync(home, { mode: 0o700 });
    const gpg = (...args: string[]) => execFileSync('gpg', ['--homedir', home, '--batch', '--no-tty', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      gpg('--passphrase', '', '--quick-gen-key', 'xrd archive test <archive@example.test>', 'rsa2048', 'sign,encrypt', 'never');
      const { file, dir, log } = await open({ encryption: { gpgHome: home, defaultKeys: ['archive@example.test'], gpgPath: 'gpg' } });
      await exchange(log, 'q-e1');
      await log.timestampNow();
      const { files } = await log.archiveNow();
      expect(files[0]).toMatch(/^mlog-\d{14}-\d{14}-[0-9a-f]{16}\.zip\.gpg$/);
      const encrypted = join(dir, files[0]!);
      expect(statSync(encrypted).mode & 0o777).toBe(0o600);
      expect(readFileSync(encrypted).subarray(0, 2).toString()).not.toBe('PK');
      const plain = join(f.dir, `decrypted-${n}.zip`);
      const status = execFileSync('gpg', ['--homedir', home, '--batch', '--status-fd', '1', '--output', plain, '--decrypt', encrypted], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(status).toMatch(/GOODSIG/);
      expect(status).toMatch(/DECRYPTION_OKAY/);
      const v = await verifyArchive(plain);
      const exported = await exportsOf(file, ['q-e1']);
      expect([...v.containers].sort()).toEqual([...exported.keys()].sort());
      for (const [name, data] of containersOf(plain)) if (name !== 'linkinginfo') expect(data.equals(exported.get(name)!)).toBe(true);
      await log.close();

      // MemberEncryptionConfigProvider: with grouping, a member's archives go to its mapped key,
      // the others to the default key.
      gpg('--passphrase', '', '--quick-gen-key', 'member 2222 <m2222@example.test>', 'rsa2048', 'sign,encrypt', 'never');
      const keyIdOf = (uid: string) => /^pub:[^:]*:[^:]*:[^:]*:([0-9A-F]{16}):/m.exec(gpg('--with-colons', '--list-keys', uid).toString())![1]!;
      const grouped = await open({ grouping: 'member', encryption: { gpgHome: home, defaultKeys: ['archive@example.test'], memberKeys: { 'LOCAL/COM/2222': ['m2222@example.test'] }, gpgPath: 'gpg' } });
      await exchange(grouped.log, 'q-e3');
      await grouped.log.timestampNow();
      const groupedFiles = (await grouped.log.archiveNow()).files;
      const recipientOf = (name: string) => /keyid ([0-9A-F]{16})/.exec(gpg('--list-packets', '--list-only', join(grouped.dir, name)).toString())![1];
      const byMember = Object.fromEntries(groupedFiles.map((name) => [name.split('-')[1], recipientOf(name)]));
      expect(byMember).toEqual({ LOCAL_COM_2222: keyIdOf('m2222@example.test'), LOCAL_COM_1111: keyIdOf('archive@example.test') });
      await grouped.log.close();

      // A recipient gpg does not know: the round fails with gpg's words and leaves nothing behind.
      const bad = await open({ encryption: { gpgHome: home, defaultKeys: ['nobody@example.test'], gpgPath: 'gpg' } });
      await exchange(bad.log, 'q-e2');
      await bad.log.timestampNow();
      await expect(bad.log.archiveNow()).rejects.toMatchObject({ code: 'LogArchiveEncryptionFailed' });
      expect(readdirSync(bad.dir)).toEqual([]);
      expect(tableCount(bad.file, 'SELECT count(*) AS n FROM archived_record')).toBe(0);
      await bad.log.close();
    } finally {
      execFileSync('gpgconf', ['--homedir', home, '--kill', 'all']);
    }
  });
});

describe('the schedule (archive-interval, clean-interval)', () => {
  it('an open log archives and then removes its stamped records by itself', async () => {
    const { dir, log } = await open({ intervalSeconds: 0.1, cleanIntervalSeconds: 0.1, keepRecordsForDays: 0 });
    await exchange(log, 'q-s');
    await log.timestampNow();
    const end = Date.now() + 20_000;
    while ((await log.records('q-s')).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect((await log.records('q-s'))).toEqual([]);
    const [name] = readdirSync(dir);
    expect((await verifyArchive(join(dir, name!))).containers).toHaveLength(2);
    await log.close();
  });
});

describe('MemberEncryptionConfigProviderTest', () => {
  it('shouldParseMappings: comments, blanks and malformed lines skipped, keys merged per member, \\= and \\# escapes', () => {
    const keysFile = join(f.dir, 'keys.ini');
    writeFileSync(
      keysFile,
      [
        '# comment',
        '',
        '   LOCAL/COM/2222 =  AAAA1111  ',
        '=',
        'lonely=',
        '=orphan',
        'no separator here',
        'has\\=equals = =Ünïcode <u@example.test>',
        'has\\=equals==Ünïcode <u@example.test>',
        'twice=first#1',
        'twice = second#2',
        '\\#hash\\#=#7',
        'slash\\\\=x = 1',
      ].join('\n'),
    );
    expect(readKeyMappings(keysFile)).toEqual({
      keys: { 'LOCAL/COM/2222': ['AAAA1111'], 'has=equals': ['=Ünïcode <u@example.test>'], twice: ['first#1', 'second#2'], '#hash#': ['#7'], 'slash\\=x': ['1'] },
      ignored: [4, 5, 6, 7],
    });
  });
});

describe('LogCleaner', () => {
  it('removes archived records past keep-records-for with their attachment files and unused signatures, never unarchived ones; logging goes on', async () => {
    const { file, log } = await open({ keepRecordsForDays: 0 });
    const old = await signedExchange(log, 'q-old', Buffer.alloc(4000, 'x'));
    await log.timestampNow();
    await log.archiveNow();
    const [unarchived] = await exchange(log, 'q-new');
    const attachmentDir = attachmentDirOf(file);
    expect(readdirSync(attachmentDir)).toHaveLength(1);

    expect(await log.cleanNow()).toBe(2);
    expect((await log.records('q-old'))).toEqual([]);
    expect(readdirSync(attachmentDir)).toEqual([]);
    expect((await log.records('q-new')).map((r) => r.id)[0]).toBe(unarchived);
    // Only the unarchived records' signatures are left; the timestamp went with its records.
    expect(tableCount(file, 'SELECT count(*) AS n FROM signature')).toBe(2);
    expect(tableCount(file, 'SELECT count(*) AS n FROM timestamp_record')).toBe(0);
    // The writer forgot the removed signatures: the same signed messages logged again get their
    // signatures stored again (a remembered row number would name a removed row: no record read back).
    for (const m of old.messages) await log.log({ ...m, queryId: 'q-again' });
    await log.timestampNow();
    expect((await log.exportAsic('q-again'))).toHaveLength(2);
    await log.close();
  });

  it('keeps archived records younger than keep-records-for', async () => {
    const { log } = await open({ keepRecordsForDays: 30 });
    await exchange(log, 'q-young');
    await log.timestampNow();
    await log.archiveNow();
    expect(await log.cleanNow()).toBe(0);
    expect((await log.records('q-young'))).toHaveLength(2);
    await log.close();
  });
});

describe('xrd messagelog', () => {
  it('archive runs a round on a log no proxy has open; verify checks it, and the reference archive 1 after archive 0', async () => {
    const { file, dir, log } = await open();
    await exchange(log, 'q-cli');
    await log.timestampNow();
    await log.close();
    const archived = await xrd(['messagelog', 'archive', '--db', file, '--archive-dir', dir]);
    expect(archived.code, archived.stderr).toBe(0);
    expect(archived.json).toMatchObject({ records: 2, dir });
    const files = archived.json.files as string[];
    const verified = await xrd(['messagelog', 'verify', join(dir, files[0]!)]);
    expect(verified).toMatchObject({ code: 0, json: { valid: true, containers: 2, previousDigest: null } });
    expect(existsSync(join(dir, files[0]!))).toBe(true);

    const reference = join(VECTORS, 'messagelog-archive', 'message-archive-1.zip');
    const last0 = '9011ab557706b5050584d6888af7b390e5350f4edad296bd7a582aa51732aac7f49a4ec44dd361027945ade0de8b8cf607fb7b7d11f17b0560d44b965c358eaa';
    expect(await xrd(['messagelog', 'verify', reference, '--previous-digest', last0])).toMatchObject({ code: 0, json: { valid: true, containers: 20, previousArchive: 'mlog-20231023121255-20231023121255-9011ab557706b505.zip.gpg' } });
    const usage = spawnSync('node', [resolve(import.meta.dirname, '../../scripts/xrd.mjs'), 'messagelog', 'archive', '--db', file, '--archive-grouping', 'owner'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--archive-grouping must be one of none, member, subsystem');
    const refused = await xrd(['messagelog', 'verify', reference]);
    expect(refused).toMatchObject({ code: 1, json: { valid: false, error: { code: 'LogArchivePreviousDigestMismatch' } } });
  });
});
