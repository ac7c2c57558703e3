/**
 * The reference's message-log archive format (LogArchiveWriter, LinkingInfoBuilder and the
 * messagelog-archive-verifier): a ZIP of one ASiC-E container per record plus `linkinginfo`,
 * which chains the containers, and the archives, together.
 *
 * `linkinginfo` is UTF-8 text, LF-ended lines. The first is `<previous archive's last digest>
 * <previous archive's file name> <algorithm>` (`-` for an absent digest or name: the first archive
 * of a chain); then one line `<digest> <container name>` per container, in archive order. A
 * container's digest is the hex digest of the UTF-8 text `<previous digest in hex><hex digest of
 * the container's bytes>`, the previous digest being the one before it (the previous archive's
 * last, or the empty string at the very start), so removing, reordering or altering any container
 * changes every digest after it. The last digest of an archive is carried into the next one.
 *
 * Archive files are named `mlog-[<group>-]<first record time>-<last record time>-<the last
 * digest's first 16 hex digits>.zip` (`.zip.gpg` when encrypted), times as yyyyMMddHHmmss.
 *
 * Zip reading and writing is ours (platform/zip.ts): bounded, strict, and streaming for large
 * containers; no library is needed here.
 */
import { createHash } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { readZipFile, ZipError, type ZipFileEntry } from '../platform/zip.ts';

export const LINKING_INFO = 'linkinginfo';
export const CONTAINER_SUFFIX = '.asice';

/** The digest algorithms the reference's verifier accepts, by the names `linkinginfo` uses. */
const ALGORITHMS = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' } as const;
export type ArchiveDigestAlgorithm = keyof typeof ALGORITHMS;
/** The reference's default (`hash-algo-id`). */
export const DEFAULT_ARCHIVE_DIGEST: ArchiveDigestAlgorithm = 'SHA-512';

/** The last archive of a chain: its last digest and file name ('' for none: the chain's start). */
export interface ArchiveLink {
  readonly digest: string;
  readonly fileName: string;
}

export const CHAIN_START: ArchiveLink = { digest: '', fileName: '' };

/** The next digest of the chain: hex digest of `<previous hex><hex digest of the container>`. */
export function chainDigest(algorithm: ArchiveDigestAlgorithm, previous: string, containerDigest: Buffer): string {
  return createHash(ALGORITHMS[algorithm])
    .update(previous + containerDigest.toString('hex'), 'utf8')
    .digest('hex');
}

export function containerDigest(algorithm: ArchiveDigestAlgorithm): ReturnType<typeof createHash> {
  return createHash(ALGORITHMS[algorithm]);
}

/** Builds `linkinginfo` for the containers of one archive, as LinkingInfoBuilder does. */
export class LinkingInfoBuilder {
  private readonly lines: string[] = [];
  private last: string;

  constructor(
    readonly algorithm: ArchiveDigestAlgorithm,
    private readonly previous: ArchiveLink,
  ) {
    this.last = previous.digest;
  }

  /** Adds the next container. @returns its chain digest */
  add(name: string, digest: Buffer): string {
    this.last = chainDigest(this.algorithm, this.last, digest);
    this.lines.push(`${this.last} ${name}`);
    return this.last;
  }

  get lastDigest(): string {
    return this.last;
  }

  get count(): number {
    return this.lines.length;
  }

  build(): Buffer {
    const first = `${this.previous.digest || '-'} ${this.previous.fileName || '-'} ${this.algorithm}`;
    return Buffer.from([first, ...this.lines].map((l) => `${l}\n`).join(''), 'utf8');
  }
}

/** yyyyMMddHHmmss in UTC (the reference formats in the JVM's time zone). */
function stamp(t: Date): string {
  return t.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * The reference's archive file name. The group name has the characters a file name cannot hold
 * (`\ < > / : | * ?` and control characters, NUL among them) replaced by `_`, and at most 200 of
 * them are kept.
 */
export function archiveFileName(group: string | undefined, first: Date, last: Date, lastDigest: string, encrypted: boolean): string {
  const prefix = group ? `${group.replace(/[\\<>/:|*?\p{Cc}]/gu, '_').slice(0, 200)}-` : '';
  return `mlog-${prefix}${stamp(first)}-${stamp(last)}-${lastDigest.slice(0, 16)}.${encrypted ? 'zip.gpg' : 'zip'}`;
}

export interface LinkingInfo {
  readonly previous: ArchiveLink;
  readonly algorithm: ArchiveDigestAlgorithm;
  /** Container name → its chain digest, in the file's order. */
  readonly digests: ReadonlyMap<string, string>;
}

/** Bounds on what verifying reads: the linking info is held, containers are streamed. */
const MAX_LINKING_INFO_BYTES = 16 * 1024 * 1024;

function invalid(file: string, reason: string, cause?: unknown): XrdError {
  return new XrdError('LogArchiveInvalid', { file, reason }, { cause });
}

/** Parses `linkinginfo` as the reference's LinkingInfo does (whitespace-separated fields). @throws LogArchiveInvalid */
export function parseLinkingInfo(text: string, file: string): LinkingInfo {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const head = (lines[0] ?? '').trim().split(/\s+/);
  if (head.length !== 3) throw invalid(file, `the first line of linkinginfo must be "<previous digest> <previous archive> <algorithm>", not "${lines[0] ?? ''}"`);
  const algorithm = head[2]!.toUpperCase();
  if (!(algorithm in ALGORITHMS)) throw invalid(file, `digest algorithm ${head[2]} is not one of ${Object.keys(ALGORITHMS).join(', ')}`);
  const digests = new Map<string, string>();
  for (const [i, line] of lines.slice(1).entries()) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) throw invalid(file, `linkinginfo line ${i + 2} is not "<digest> <container name>"`);
    if (digests.has(parts[1]!)) throw invalid(file, `linkinginfo names ${parts[1]} twice`);
    digests.set(parts[1]!, parts[0]!.toLowerCase());
  }
  const orEmpty = (s: string) => (s === '-' ? '' : s);
  return { previous: { digest: orEmpty(head[0]!).toLowerCase(), fileName: orEmpty(head[1]!) }, algorithm: algorithm as ArchiveDigestAlgorithm, digests };
}

export interface VerifiedArchive {
  readonly file: string;
  readonly algorithm: ArchiveDigestAlgorithm;
  /** The previous archive this one follows, as its linking info says ('' for the first). */
  readonly previous: ArchiveLink;
  /** The digest to give when verifying the next archive. */
  readonly lastDigest: string;
  /** The containers in archive order. */
  readonly containers: readonly string[];
}

/**
 * Verifies an archive as the reference's ArchiveHashChainVerifier does: the linking info's
 * previous digest must be `previousDigest` (the empty string, the default, for the first archive
 * of a chain), it must name exactly the containers of the archive, and each container's chain
 * digest, computed in archive order, must be the one it gives. Stricter than the reference in
 * one thing: an entry that is neither a container nor `linkinginfo` is refused, not ignored.
 * @throws LogArchiveInvalid (not a readable archive, no or malformed linking info, no containers,
 *   names differ), LogArchivePreviousDigestMismatch, LogArchiveDigestMismatch
 */
export async function verifyArchive(file: string, options: { previousDigest?: string } = {}): Promise<VerifiedArchive> {
  let entries: ZipFileEntry[];
  try {
    entries = await readZipFile(file, { inMemoryBytes: 1024 * 1024, inMemoryTotalBytes: 64 * 1024 * 1024 });
  } catch (err) {
    const reason = err instanceof ZipError ? `not a readable ZIP archive (${err.fullCode}: ${err.message})` : `cannot be read: ${(err as Error).message}`;
    throw invalid(file, reason, err);
  }
  const linkingEntry = entries.find((e) => e.name === LINKING_INFO);
  if (!linkingEntry) throw invalid(file, 'it has no linkinginfo');
  if (linkingEntry.size > MAX_LINKING_INFO_BYTES) throw invalid(file, `its linkinginfo is larger than ${MAX_LINKING_INFO_BYTES} bytes`);
  const linking = parseLinkingInfo((await bytesOf(linkingEntry)).toString('utf8'), file);
  const containers = entries.filter((e) => e !== linkingEntry);
  const stray = containers.find((e) => !e.name.endsWith(CONTAINER_SUFFIX));
  if (stray) throw invalid(file, `entry ${stray.name} is neither an ASiC container nor linkinginfo`);
  if (containers.length === 0) throw invalid(file, 'it holds no ASiC containers; at least one is expected');

  const given = (options.previousDigest ?? '').toLowerCase();
  if (given !== linking.previous.digest) {
    throw new XrdError('LogArchivePreviousDigestMismatch', { file, given: given || '(none: first archive)', inArchive: linking.previous.digest || '(none: first archive)' });
  }
  const names = new Set(containers.map((e) => e.name));
  const missing = [...names].filter((n) => !linking.digests.has(n));
  const extra = [...linking.digests.keys()].filter((n) => !names.has(n));
  if (missing.length > 0 || extra.length > 0) {
    throw invalid(file, `the containers and linkinginfo differ: ${[...missing.map((n) => `${n} not in linkinginfo`), ...extra.map((n) => `${n} not in the archive`)].join(', ')}`);
  }
  let previous = linking.previous.digest;
  for (const entry of containers) {
    const hash = containerDigest(linking.algorithm);
    if (entry.data) hash.update(entry.data);
    else for await (const chunk of entry.chunks!()) hash.update(chunk);
    previous = chainDigest(linking.algorithm, previous, hash.digest());
    if (previous !== linking.digests.get(entry.name)) {
      throw new XrdError('LogArchiveDigestMismatch', { file, entry: entry.name, expected: linking.digests.get(entry.name)!, actual: previous });
    }
  }
  return { file, algorithm: linking.algorithm, previous: linking.previous, lastDigest: previous, containers: containers.map((e) => e.name) };
}

async function bytesOf(entry: ZipFileEntry): Promise<Buffer> {
  if (entry.data) return entry.data;
  const chunks: Buffer[] = [];
  for await (const chunk of entry.chunks!()) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}
