/**
 * Large attachments in the message log: a spooled attachment above the threshold becomes a file
 * beside the log (hard-linked from the spool, or copied from another file system), durable before
 * the record naming it commits; a commit that fails or a crash before it leaves no record naming a
 * missing file, and what it leaves is removed at the next start; the container streams into its
 * file with the attachment stored, and unzip, readZip and `xrd asic verify` accept it; a log of
 * the previous schema keeps working; a record past 4 GiB is refused by export before anything is
 * written (ZIP64 is not written).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentDirOf } from '../../src/messagelog/attachment-files.ts';
import { MessageLog } from '../../src/messagelog/message-log.ts';
import { MessageLogReader } from '../../src/messagelog/store.ts';
import { SpoolFolder, fileBody } from '../../src/platform/spool.ts';
import { fileSource, readZip, writeZip, zipChunks, ZipError, ZipTooLargeError } from '../../src/platform/zip.ts';
import { ASIC_MIME_TYPE, asicChunks, writeAsic } from '../../src/signature/asic.ts';
import { createFixture, logOptions, pseudoRandom, soap, toLog, xrd, type Fixture } from './fixture.ts';

const MiB = 1024 * 1024;
const sha512 = (data: Buffer) => createHash('sha512').update(data).digest('hex');
/** The chunks, each copied as it comes: a source may reuse its buffer for the next. */
async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const copies: Buffer[] = [];
  for await (const chunk of chunks) copies.push(Buffer.from(chunk));
  return Buffer.concat(copies);
}

let f: Fixture;
let spool: SpoolFolder;
let n = 0;
const dbFile = () => join(f.dir, `large-${++n}`, 'messagelog.db');
const open = (file: string) => {
  mkdirSync(dirname(file), { recursive: true });
  return MessageLog.open(file, logOptions(f));
};

beforeAll(async () => {
  f = await createFixture();
  spool = new SpoolFolder(join(f.dir, 'spool'), { thresholdBytes: 64 * 1024 });
  spool.purge();
});

afterAll(async () => {
  await f?.close();
});

describe('streamed ZIP and ASiC writing', () => {
  const at = new Date('2024-05-06T07:08:09Z');

  it('containers keep the bytes they had before streaming (pinned), in memory and streamed alike', async () => {
    const contents = {
      message: Buffer.from('<m>hello</m>'.repeat(50)),
      signatureXml: Buffer.from('<sig/>'.repeat(80)),
      attachments: [Buffer.from('%PDF attachment'.repeat(100)), Buffer.from([0, 1, 2, 3])],
      hashChainResult: Buffer.from('<hcr/>'),
      hashChain: Buffer.from('<hc/>'),
      timestampToken: Buffer.from('token'),
      tsHashChainResult: Buffer.from('<tshcr/>'),
      tsHashChain: Buffer.from('<tshc/>'),
    };
    const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    // What writeAsic gave for these contents before the streaming writer existed.
    const before = 'fc59c6fd6b2db496564b7464f60826fc18041e1a5444dd744657359327f02a31';
    expect(sha256(writeAsic(contents, at))).toBe(before);
    expect(sha256(await collect(asicChunks(contents, at)))).toBe(before);
  });

  it('stores a source entry read in chunks, which unzip and readZip accept, with the bytes of writeZip storing the same data', async () => {
    const data = pseudoRandom(3 * MiB + 17);
    const file = join(f.dir, 'source.bin');
    writeFileSync(file, data);
    const head = [
      { name: 'mimetype', data: Buffer.from(ASIC_MIME_TYPE), stored: true },
      { name: 'message.xml', data: Buffer.from('<a/>'.repeat(100)) },
    ];
    const zip = await collect(zipChunks([...head, { name: 'attachment1', data: fileSource(file, data.length) }], at));
    expect(zip.equals(writeZip([...head, { name: 'attachment1', data, stored: true }], at))).toBe(true);
    const zipFile = join(f.dir, 'source.zip');
    writeFileSync(zipFile, zip);
    execFileSync('unzip', ['-tq', zipFile]);
    expect(sha512(execFileSync('unzip', ['-p', zipFile, 'attachment1'], { maxBuffer: 8 * MiB }))).toBe(sha512(data));
    const entries = readZip(zip);
    expect(entries.map((e) => [e.name, e.stored])).toEqual([['mimetype', true], ['message.xml', false], ['attachment1', true]]);
    expect(entries[2]!.data.equals(data)).toBe(true);
  });

  it('fails the stream when a source does not have its stated size or changes between its two reads, and refuses 4 GiB before reading', async () => {
    // A Readable is a source too.
    const short = { size: 10, chunks: () => Readable.from([Buffer.alloc(5)]) };
    await expect(collect(zipChunks([{ name: 'short', data: short }]))).rejects.toBeInstanceOf(ZipError);
    let reads = 0;
    const changing = { size: 4, chunks: () => Readable.from([Buffer.from(reads++ === 0 ? 'aaaa' : 'bbbb')]) };
    await expect(collect(zipChunks([{ name: 'changing', data: changing }]))).rejects.toBeInstanceOf(ZipError);
    const huge = {
      size: 2 ** 32,
      chunks: (): AsyncIterable<Buffer> => {
        throw new Error('a source past the limit must not be read');
      },
    };
    expect(() => zipChunks([{ name: 'huge', data: huge }])).toThrow(ZipTooLargeError);
    expect(() => zipChunks([{ name: 'a', data: Buffer.alloc(10) }, { name: 'b', data: { ...huge, size: 2 ** 32 - 20 } }])).toThrow(ZipTooLargeError);
  });
});

describe('message log with attachments in files', () => {
  it('links a spooled attachment above the threshold into the attachment folder (0600 in 0700), keeps small ones in SQLite, and exports a container that streams, unzips and verifies', async () => {
    const file = dbFile();
    const log = await open(file);
    // Above the default threshold (1 MiB), and a small one beside it.
    const large = pseudoRandom(3 * MiB);
    const small = Buffer.from('{"small":true}');
    const body = await spool.fromBuffer(large);
    expect(body.file).toBeDefined();
    const message = soap('q-large');
    const signed = await f.signer.sign(f.keys.client, { message, attachments: [large, small] });
    const id = await log.log(toLog('q-large', message, signed, false, [body, small]));
    const spooled = statSync(body.file!);
    body.dispose();

    const [a1, a2] = (await log.record(id))!.attachments;
    expect(dirname(a1!.file!)).toBe(attachmentDirOf(file));
    expect(attachmentDirOf(file)).toBe(join(dirname(file), 'messagelog-attachments'));
    // The spool's file itself, linked: not a byte was copied.
    expect(statSync(a1!.file!).ino).toBe(spooled.ino);
    expect(statSync(a1!.file!).mode & 0o777).toBe(0o600);
    expect(statSync(attachmentDirOf(file)).mode & 0o777).toBe(0o700);
    expect(sha512(readFileSync(a1!.file!))).toBe(sha512(large));
    expect(a2!.file).toBeUndefined();
    expect(a2!.bytes().equals(small)).toBe(true);
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT n, length(data) AS bytes, file, size FROM message_attachment WHERE record_id = ? ORDER BY n').all(id)).toEqual([
      { n: 1, bytes: 0, file: basename(a1!.file!), size: large.length },
      { n: 2, bytes: small.length, file: null, size: null },
    ]);
    db.close();

    expect(await log.timestampNow()).toBe(1);
    const [container] = (await log.exportAsic('q-large'));
    const out = join(f.dir, 'large-export');
    mkdirSync(out);
    const exported = join(out, container!.name);
    // A .part a crashed export left behind, readable by all: the export must not inherit its mode.
    writeFileSync(`${exported}.part`, 'left over', { mode: 0o644 });
    const bytes = await container!.writeTo(exported);
    const zip = readFileSync(exported);
    expect(bytes).toBe(zip.length);
    expect(zip.equals(container!.data)).toBe(true);
    expect(readdirSync(out)).toEqual([container!.name]);
    // The exported message is as private as the log it came from.
    expect(statSync(exported).mode & 0o777).toBe(0o600);
    await log.close();

    execFileSync('unzip', ['-tq', exported]);
    expect(sha512(execFileSync('unzip', ['-p', exported, 'attachment1'], { maxBuffer: 8 * MiB }))).toBe(sha512(large));
    expect(readZip(zip).map((e) => [e.name, e.stored])).toContainEqual(['attachment1', true]);
    const cli = await xrd(['asic', 'export', 'q-large', '--db', file, '--out', join(f.dir, 'large-cli')]);
    expect(cli).toMatchObject({ code: 0, json: { containers: [{ bytes: zip.length }] } });
    expect(readFileSync(join(f.dir, 'large-cli', container!.name)).equals(zip)).toBe(true);
    expect(await xrd(['asic', 'verify', exported, '--conf', f.pki.globalConfDir])).toMatchObject({
      code: 0,
      json: { valid: true, verifiedParts: ['/message.xml', '/attachment1', '/attachment2'], timestamp: { batch: false } },
    });
  });

  const shm = '/dev/shm';
  const otherFileSystem = (() => {
    try {
      // The fixture's folder is made in tmpdir().
      return statSync(shm).dev !== statSync(tmpdir()).dev;
    } catch {
      return false;
    }
  })();

  it.skipIf(!otherFileSystem)('copies an attachment spooled on another file system', async () => {
    const dir = mkdtempSync(join(shm, 'xrd-spool-'));
    try {
      const body = await new SpoolFolder(dir, { thresholdBytes: 1024 }).fromBuffer(pseudoRandom(2 * MiB));
      expect(statSync(body.file!).dev).not.toBe(statSync(f.dir).dev);
      const file = dbFile();
      const log = await open(file);
      const message = soap('q-copied');
      const id = await log.log(toLog('q-copied', message, await f.signer.sign(f.keys.client, { message }), false, [body]));
      const [a] = (await log.record(id))!.attachments;
      expect(statSync(a!.file!).dev).toBe(statSync(file).dev);
      expect(statSync(a!.file!).mode & 0o777).toBe(0o600);
      expect(sha512(readFileSync(a!.file!))).toBe(sha512(body.bytes()));
      body.dispose();
      expect(a!.bytes().length).toBe(2 * MiB);
      await log.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failed commit removes the files it placed; files a crash left unnamed, and temporary ones, are removed when the log opens', async () => {
    const file = dbFile();
    const log = await open(file);
    const message = soap('q-kept');
    const signed = await f.signer.sign(f.keys.client, { message });
    const kept = await log.log(toLog('q-kept', message, signed, false, [pseudoRandom(MiB + 1)]));
    const folder = attachmentDirOf(file);
    const keptFile = (await log.record(kept))!.attachments[0]!.file!;
    expect(readdirSync(folder)).toEqual([basename(keptFile)]);

    // The disk "fills up" when q-fail is written: its transaction rolls back, its file goes.
    const other = new Database(file);
    other.exec(`CREATE TRIGGER fail BEFORE INSERT ON message_record WHEN NEW.query_id = 'q-fail' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`);
    other.close();
    await expect(log.log(toLog('q-fail', soap('q-fail'), signed, false, [await spool.fromBuffer(pseudoRandom(2 * MiB))]))).rejects.toMatchObject({ fullCode: 'LoggingFailed.IOError' });
    await expect(log.log(toLog('q-fail', soap('q-fail'), signed, false, [pseudoRandom(2 * MiB)]))).rejects.toMatchObject({ fullCode: 'LoggingFailed.IOError' });
    expect(readdirSync(folder)).toEqual([basename(keptFile)]);
    await log.close();

    // As a kill between placing a file and committing its row leaves them.
    writeFileSync(join(folder, 'lrx3k2-0123456789abcdef01234567'), 'placed, never committed', { mode: 0o600 });
    writeFileSync(join(folder, 'lrx3k3-0123456789abcdef01234567.tmp'), 'half written', { mode: 0o600 });
    const reopened = await open(file);
    expect(readdirSync(folder)).toEqual([basename(keptFile)]);
    expect((await reopened.record(kept))!.attachments[0]!.size).toBe(MiB + 1);
    await reopened.close();

    // A reader finding a named file missing says so with a code.
    rmSync(keptFile);
    const reader = await MessageLogReader.openExisting(file);
    await expect(reader.record(kept)).rejects.toMatchObject({ code: 'IOError' });
    await reader.close();
  });

  it('a log of schema version 1 (attachments only in SQLite) is migrated when opened: its containers keep their bytes, and new records put large attachments in files', async () => {
    const file = dbFile();
    const log = await open(file);
    const queries = ['q-v1-a', 'q-v1-b'];
    for (const q of queries) {
      const attachments = [Buffer.from(`attachment of ${q}`)];
      await log.log(toLog(q, soap(q), await f.signer.sign(f.keys.client, { message: soap(q), attachments }), false, attachments));
    }
    await log.timestampNow();
    const before = await Promise.all(queries.map(async (q) => (await log.exportAsic(q))[0]!.data));
    await log.close();
    // Back to version 1's tables, as a log written before this version has them.
    const db = new Database(file);
    db.exec('DROP INDEX message_attachment_file; ALTER TABLE message_attachment DROP COLUMN file; ALTER TABLE message_attachment DROP COLUMN size; PRAGMA user_version = 1');
    expect(db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('message_attachment')).toEqual(['record_id', 'n', 'data']);
    db.close();

    const reader = await MessageLogReader.openExisting(file);
    expect(await Promise.all(queries.map(async (q) => (await reader.exportAsic(q))[0]!.data))).toEqual(before);
    await reader.close();
    const migrated = new Database(file, { readonly: true });
    expect(migrated.pragma('user_version', { simple: true })).toBe(3);
    migrated.close();
    const next = await open(file);
    const message = soap('q-v2');
    const id = await next.log(toLog('q-v2', message, await f.signer.sign(f.keys.client, { message }), false, [pseudoRandom(2 * MiB)]));
    expect((await next.record(id))!.attachments[0]!.file).toBeDefined();
    await next.close();
  });

  it('export refuses a record past 4 GiB with MessageTooLarge before writing anything (no ZIP64)', async () => {
    // A sparse file: 4 GiB long, no disk used.
    const huge = join(spool.dir, 'huge.spool');
    writeFileSync(huge, '');
    truncateSync(huge, 2 ** 32);
    const file = dbFile();
    const log = await open(file);
    const message = soap('q-huge');
    await log.log(toLog('q-huge', message, await f.signer.sign(f.keys.client, { message }), false, [fileBody(huge, 2 ** 32)]));
    rmSync(huge);
    const [container] = (await log.exportAsic('q-huge', { allowUnstamped: true }));
    const out = join(f.dir, 'huge-export');
    mkdirSync(out);
    await expect(container!.writeTo(join(out, container!.name))).rejects.toMatchObject({ code: 'MessageTooLarge' });
    await log.close();
    expect(await xrd(['asic', 'export', 'q-huge', '--db', file, '--out', out, '--allow-unstamped'])).toMatchObject({ code: 1, json: { error: { code: 'MessageTooLarge' } } });
    expect(readdirSync(out)).toEqual([]);
  });
});
