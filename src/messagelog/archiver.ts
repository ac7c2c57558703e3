/**
 * Message-log archiving as the reference's LogArchiver and LogArchiveWriter do it: every stamped
 * record not archived yet becomes an ASiC-E container in a ZIP archive file of the archive folder,
 * with the `linkinginfo` that chains the containers and the archives (archive-format.ts), then is
 * marked archived. Grouping by member or subsystem gives each its own archives and chain;
 * encryption pipes each archive through GnuPG (`--encrypt --sign`, as the reference's
 * GPGOutputStream) into one `.zip.gpg` file.
 *
 * Nothing is lost or chained twice on a crash: an archive is written to a temporary file and
 * fsynced; then its row, naming its records, is committed; then the file is renamed to its final
 * name and the folder fsynced; then its records are marked and the row completed. A round first
 * finishes what a crash left: a row whose file has its final name has its records marked, one
 * whose file does not is dropped (its records are archived again, continuing the chain from the
 * same last digest), and temporary files are removed. One archiver works at a time (a lease in the
 * log file), so the proxy's schedule and `xrd messagelog archive` never fork a chain.
 *
 * Records are read one at a time through `readRecord` (the storage interface's), containers built
 * in memory, or streamed through a temporary file for records with attachments in files.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { chmod, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import type { SqlDatabase } from '../storage/database.ts';
import { fileSource, zipChunks, type ZipStreamEntry } from '../platform/zip.ts';
import { ArchiveBook, type ArchiveCandidate } from './archive-store.ts';
import { archiveFileName, CHAIN_START, containerDigest, DEFAULT_ARCHIVE_DIGEST, LINKING_INFO, LinkingInfoBuilder, type ArchiveDigestAlgorithm, type ArchiveLink } from './archive-format.ts';
import { flush } from './attachment-files.ts';
import { asicFileName, containerOf, writeContainer, type LoggedRecord } from './store.ts';

export type ArchiveGrouping = 'none' | 'member' | 'subsystem';

/** The reference's `archive-*` settings of the message log (docs/messagelog.md "Archiving"). */
export interface ArchiveSettings {
  /** The archive folder (`archive-path`); made (0700) when missing. */
  readonly dir: string;
  /** Records read per step of a round (`archive-transaction-batch`). Default 10,000. */
  readonly batchSize?: number;
  /** An archive is closed once its containers pass this many bytes (`archive-max-filesize`). Default 33,554,432. */
  readonly maxFileBytes?: number;
  /** `archive-grouping`: one chain for all (default), per member, or per subsystem. */
  readonly grouping?: ArchiveGrouping;
  /** `hash-algo-id` of the linking info. Default SHA-512. */
  readonly digestAlgorithm?: ArchiveDigestAlgorithm;
  /** `archive-encryption-enabled` and its keys; absent: plain `.zip` files. */
  readonly encryption?: ArchiveEncryption;
}

export interface ArchiveEncryption {
  /** GnuPG home with this server's signing key and the recipients' public keys (`archive-gpg-home-directory`). */
  readonly gpgHome: string;
  /** Recipients when no member mapping applies (`archive-default-encryption-key`); none: the home's own key. */
  readonly defaultKeys?: readonly string[];
  /** Member `INSTANCE/CLASS/CODE` → recipients, with member or subsystem grouping (`archive-encryption-keys-config`). */
  readonly memberKeys?: Readonly<Record<string, readonly string[]>>;
  /** Default /usr/bin/gpg, as the reference. */
  readonly gpgPath?: string;
}

export interface ArchiveRoundResult {
  /** Records archived in this round. */
  readonly records: number;
  /** Archive files written, in order. */
  readonly files: readonly string[];
  /** Archives a crash had left half done that this round finished (records marked). */
  readonly recovered: number;
}

const DEFAULT_BATCH = 10_000;
const DEFAULT_MAX_FILE_BYTES = 33_554_432;
/** A round renews the lease with every archive; a crashed archiver's lease blocks others this long at most. */
const LEASE_MS = 10 * 60_000;
/** An archive without ZIP64 holds at most 65,534 entries; one is the linking info. */
const MAX_CONTAINERS = 65_000;
/** Temporary files in the archive folder: archives being written, containers of records with attachment files. */
const TMP_PREFIX = 'tmp-mlog-';
/** The gpg process must finish this long after its input ended (the reference waits a minute). */
const GPG_EXIT_MS = 60_000;

/**
 * One archiving round: finishes what a crash left, then archives every record stamped when the
 * round started — or, once `stop()` says so (the log is closing), the archives written so far:
 * the records of an archive not written yet wait for the next round.
 * @throws LogArchiverBusy when another archiver holds the lease; LogArchiveEncryptionFailed; IOError
 */
export async function archiveRound(
  db: SqlDatabase,
  readRecord: (id: number) => Promise<LoggedRecord | undefined>,
  settings: ArchiveSettings,
  stop: () => boolean = () => false,
  now: () => number = Date.now,
): Promise<ArchiveRoundResult> {
  const book = new ArchiveBook(db);
  try {
    mkdirSync(settings.dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot make the archive folder ${settings.dir}: ${(err as Error).message}` }, { cause: err });
  }
  await book.lease(now(), now() + LEASE_MS);
  try {
    for (const name of readdirSync(settings.dir)) if (name.startsWith(TMP_PREFIX)) rmSync(join(settings.dir, name), { force: true });
    let recovered = 0;
    for (const p of await book.pendingArchives()) {
      if (existsSync(join(settings.dir, p.name))) {
        await book.completeArchive(p.id, p.pendingRecords!);
        recovered++;
      } else await book.dropArchive(p.id);
    }
    const upTo = await book.maxArchivableId();
    const files: string[] = [];
    let records = 0;
    const batchSize = settings.batchSize ?? DEFAULT_BATCH;
    for (let after = 0; upTo !== undefined; ) {
      const batch = await book.candidates(after, upTo, batchSize);
      if (batch.length === 0) break;
      after = batch.at(-1)!.id;
      for (const [group, members] of groups(batch, settings.grouping ?? 'none')) {
        const written = await (await GroupWriter.start(book, readRecord, settings, group, now)).write(members, stop);
        files.push(...written.files);
        records += written.records;
        if (stop()) return { records, files, recovered };
      }
      if (batch.length < batchSize) break;
    }
    return { records, files, recovered };
  } finally {
    await book.releaseLease();
  }
}

/** `[class, code, subsystem]` of an owner `INSTANCE/CLASS/CODE[/SUBSYSTEM]`. */
const ownerParts = (owner: string) => owner.split('/').slice(1);

/**
 * The records by group, in the reference's order: by member class, member code and subsystem
 * (records without one after those with), then by record number.
 */
function groups(batch: readonly ArchiveCandidate[], grouping: ArchiveGrouping): Map<string, ArchiveCandidate[]> {
  const key = (c: ArchiveCandidate) => (grouping === 'none' ? '' : grouping === 'member' ? c.owner.split('/').slice(0, 3).join('/') : c.owner);
  const compare = (a: ArchiveCandidate, b: ArchiveCandidate) => {
    const [pa, pb] = [ownerParts(a.owner), ownerParts(b.owner)];
    for (let i = 0; i < 3; i++) {
      if (pa[i] === pb[i]) continue;
      if (pa[i] === undefined) return 1;
      if (pb[i] === undefined) return -1;
      return pa[i]! < pb[i]! ? -1 : 1;
    }
    return a.id - b.id;
  };
  const result = new Map<string, ArchiveCandidate[]>();
  for (const c of [...batch].sort(compare)) {
    const k = key(c);
    const list = result.get(k) ?? [];
    if (list.length === 0) result.set(k, list);
    list.push(c);
  }
  return result;
}

interface Container {
  readonly id: number;
  readonly time: number;
  readonly entry: ZipStreamEntry;
  readonly size: number;
  /** The temporary file a large container was written to. */
  readonly tmp?: string;
}

/** Writes one group's records into as many archives as `maxFileBytes` asks for, continuing its chain. */
class GroupWriter {
  private readonly algorithm: ArchiveDigestAlgorithm;

  private constructor(
    private readonly book: ArchiveBook,
    private readonly readRecord: (id: number) => Promise<LoggedRecord | undefined>,
    private readonly settings: ArchiveSettings,
    private readonly group: string,
    private readonly now: () => number,
    private link: ArchiveLink,
  ) {
    this.algorithm = settings.digestAlgorithm ?? DEFAULT_ARCHIVE_DIGEST;
  }

  /** A writer continuing the group's chain from its last complete archive. */
  static async start(book: ArchiveBook, readRecord: (id: number) => Promise<LoggedRecord | undefined>, settings: ArchiveSettings, group: string, now: () => number): Promise<GroupWriter> {
    return new GroupWriter(book, readRecord, settings, group, now, (await book.lastArchive(group)) ?? CHAIN_START);
  }

  /** @returns the names of the archive files written and how many records they hold */
  async write(candidates: readonly ArchiveCandidate[], stop: () => boolean): Promise<{ files: string[]; records: number }> {
    const written: string[] = [];
    let records = 0;
    let containers: Container[] = [];
    let builder = new LinkingInfoBuilder(this.algorithm, this.link);
    let size = 0;
    try {
      for (const c of candidates) {
        if (stop()) return { files: written, records };
        const record = await this.readRecord(c.id);
        if (!record) throw new XrdError('IOError', { reason: `record ${c.id} to archive is no longer in the message log` });
        const container = await this.container(record);
        containers.push(container);
        size += container.size;
        builder.add(container.entry.name, container.digest);
        if (size > (this.settings.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES) || containers.length >= MAX_CONTAINERS) {
          written.push(await this.finish(containers, builder));
          records += containers.length;
          await removeTemporary(containers);
          containers = [];
          builder = new LinkingInfoBuilder(this.algorithm, this.link);
          size = 0;
        }
      }
      if (containers.length > 0) {
        written.push(await this.finish(containers, builder));
        records += containers.length;
      }
    } finally {
      await removeTemporary(containers);
    }
    return { files: written, records };
  }

  private async container(r: LoggedRecord): Promise<Container & { digest: Buffer }> {
    const name = asicFileName(r.queryId, r.isResponse, r.id);
    const hash = containerDigest(this.algorithm);
    if (r.attachments.every((a) => a.file === undefined)) {
      const data = containerOf(r);
      return { id: r.id, time: r.time.getTime(), entry: { name, data, stored: true }, size: data.length, digest: hash.update(data).digest() };
    }
    const tmp = join(this.settings.dir, `${TMP_PREFIX}${randomBytes(8).toString('hex')}.asice`);
    const size = await writeContainer(r, tmp);
    const source = fileSource(tmp, size);
    for await (const chunk of source.chunks()) hash.update(chunk);
    return { id: r.id, time: r.time.getTime(), entry: { name, data: source }, size, tmp, digest: hash.digest() };
  }

  /** Writes the archive durably, records it, gives it its name, marks its records. @returns its name */
  private async finish(containers: readonly Container[], builder: LinkingInfoBuilder): Promise<string> {
    const times = containers.map((c) => c.time);
    const [first, last] = [new Date(Math.min(...times)), new Date(Math.max(...times))];
    const encryption = this.settings.encryption;
    const name = archiveFileName(this.group || undefined, first, last, builder.lastDigest, encryption !== undefined);
    const entries: ZipStreamEntry[] = [...containers.map((c) => c.entry), { name: LINKING_INFO, data: builder.build(), stored: true }];
    const tmp = join(this.settings.dir, `${TMP_PREFIX}${randomBytes(8).toString('hex')}.tmp`);
    try {
      const chunks = zipChunks(entries, last);
      if (encryption) await writeEncrypted(chunks, tmp, encryption, recipients(encryption, this.group, this.settings.grouping ?? 'none'));
      else await writePlain(chunks, tmp);
      await flush(tmp);
      const ids = containers.map((c) => c.id);
      const archiveId = await this.book.beginArchive(this.now(), this.now() + LEASE_MS, this.group, name, builder.lastDigest, ids);
      await rename(tmp, join(this.settings.dir, name));
      await flush(this.settings.dir);
      await this.book.completeArchive(archiveId, ids);
    } catch (err) {
      await rm(tmp, { force: true });
      if (err instanceof XrdError) throw err;
      throw new XrdError('IOError', { reason: `cannot write archive ${name} in ${this.settings.dir}: ${(err as Error).message}` }, { cause: err });
    }
    this.link = { digest: builder.lastDigest, fileName: name };
    return name;
  }
}

async function removeTemporary(containers: readonly Container[]): Promise<void> {
  for (const c of containers) if (c.tmp) await rm(c.tmp, { force: true });
}

/** The recipients of a group's archives, as the reference's Server/MemberEncryptionConfigProvider choose them. */
function recipients(e: ArchiveEncryption, group: string, grouping: ArchiveGrouping): readonly string[] {
  const member = grouping === 'none' ? undefined : group.split('/').slice(0, 3).join('/');
  const mapped = member === undefined ? undefined : e.memberKeys?.[member];
  return mapped && mapped.length > 0 ? mapped : (e.defaultKeys ?? []);
}

async function writePlain(chunks: AsyncIterable<Buffer>, file: string): Promise<void> {
  const out = await open(file, 'wx', 0o600);
  try {
    for await (const chunk of chunks) {
      for (let at = 0; at < chunk.length; ) at += (await out.write(chunk, at, chunk.length - at)).bytesWritten;
    }
  } finally {
    await out.close();
  }
}

/**
 * The archive through `gpg --encrypt --sign` into `file`, with the reference's options: local
 * keyring only, keys trusted as they are (expired and revoked ones are not used), no compression,
 * AES-256 and SHA-256 fixed rather than negotiated per key.
 * @throws LogArchiveEncryptionFailed with gpg's own words
 */
async function writeEncrypted(chunks: AsyncIterable<Buffer>, file: string, e: ArchiveEncryption, keys: readonly string[]): Promise<void> {
  const args = ['--homedir', e.gpgHome, '--batch', '--no-tty', '--yes', '--encrypt', '--sign', '--no-auto-key-locate', '--trust-model', 'always', '--compress-algo', 'none', '--cipher-algo', 'AES256', '--digest-algo', 'SHA256', '--output', file];
  if (keys.length === 0) args.push('--default-recipient-self');
  for (const key of keys) args.push('--recipient', key);
  const gpg = spawn(e.gpgPath ?? '/usr/bin/gpg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
  // A gpg that dies early closes its input: the exit code says why, not an EPIPE.
  gpg.stdin.on('error', () => undefined);
  let stderr = '';
  gpg.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString('utf8');
  });
  const exited = new Promise<number | string>((resolve) => {
    gpg.once('error', (err) => resolve(err.message));
    gpg.once('close', (code, signal) => resolve(code ?? `killed by ${signal}`));
  });
  const failed = (reason: string) => new XrdError('LogArchiveEncryptionFailed', { file, reason });
  try {
    for await (const chunk of chunks) {
      if (!gpg.stdin.write(chunk)) {
        const drained = await Promise.race([new Promise((r) => gpg.stdin.once('drain', () => r(true))), exited.then(() => false)]);
        if (!drained) break;
      }
    }
    gpg.stdin.end();
  } catch (err) {
    gpg.kill('SIGKILL');
    throw err;
  }
  const timer = setTimeout(() => gpg.kill('SIGKILL'), GPG_EXIT_MS);
  const code = await exited.finally(() => clearTimeout(timer));
  if (code !== 0) throw failed(`gpg ${typeof code === 'number' ? `exited with ${code}` : code}: ${stderr.trim() || 'no message'}`);
  await chmod(file, 0o600);
}
