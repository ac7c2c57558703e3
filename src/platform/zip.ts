/**
 * ZIP archives for ASiC-E containers: writing (stored or deflated entries, the first entry
 * `mimetype` stored as ASiC requires) and reading (stored and deflated, CRC-checked, bounded so a
 * crafted archive cannot expand without limit, and strict: an archive is exactly what its central
 * directory says, so that no two readers see different entries). No ZIP64, encryption or
 * multi-disk archives: an archive past 4 GiB is refused. Our own rather than a library's: the
 * container layout must stay byte for byte what it is (tests and exported evidence compare it),
 * the two forms below share their headers, and the reader's strictness is ours to state and test.
 *
 * Two writers: `writeZip` builds an archive in memory; `zipChunks` makes one chunk by chunk, its
 * large entries read from sources (logged attachments in files) into one reused buffer, so memory
 * stays small and makes no garbage whatever their size. For the same Buffer entries both give
 * the same bytes.
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { crc32, createInflateRaw, deflateRawSync, inflateRawSync, type ZlibOptions } from 'node:zlib';
import { XrdError, type ErrorCode, type ErrorDetails } from './errors.ts';

/** ZIP errors carry the Zip* codes of the registry; a container reports them under MalformedContainer. */
export class ZipError extends XrdError {
  constructor(code: ZipErrorCode, details: ErrorDetails, options: { cause?: unknown } = {}) {
    super(code, details, options);
  }
}

type ZipErrorCode = Extract<ErrorCode, `Zip${string}`>;

/** An archive (or an entry) larger than this needs ZIP64 fields, which are not written. */
export class ZipTooLargeError extends ZipError {
  constructor(
    readonly size: number,
    what: string,
  ) {
    super('ZipTooLarge', { what: `${what} of ${size} bytes`, limit: `${ZIP_LIMIT} bytes` });
  }
}

export interface ZipEntry {
  readonly name: string;
  readonly data: Buffer;
  /** Store without compression (ASiC's `mimetype` must be stored). */
  readonly stored?: boolean;
}

/** Bytes streamed into an archive instead of held: read twice, once for the CRC and once to write. */
export interface ZipSource {
  readonly size: number;
  /**
   * The bytes from the start, at each call: a Readable will do, or `fileSource`'s chunks, which
   * reuse one buffer (a chunk is valid until the next one is asked for).
   */
  chunks(): AsyncIterable<Buffer>;
}

const READ_CHUNK = 1024 * 1024;

/** `size` bytes of a file from `start`, read into one buffer reused from chunk to chunk. */
export function fileSource(file: string, size: number, start = 0): ZipSource {
  return {
    size,
    async *chunks() {
      const handle = await open(file, 'r');
      try {
        const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(size, 1)));
        for (let at = 0; at < size; ) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - at), start + at);
          if (bytesRead === 0) break; // shorter than size: chunksOf says so
          at += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
      } finally {
        await handle.close();
      }
    },
  };
}

export interface ZipStreamEntry {
  readonly name: string;
  /** A Buffer is written as `writeZip` writes it; a source is always stored (deflating hundreds of MiB costs seconds of CPU and gains little on PDFs and images). */
  readonly data: Buffer | ZipSource;
  readonly stored?: boolean;
}

/** Sizes and offsets of 0xFFFFFFFF mean "see the ZIP64 fields": the largest usable is one less. */
export const ZIP_LIMIT = 0xfffffffe;
const MAX_ENTRIES = 0xfffe;

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const DATA_DESCRIPTOR = 0x08074b50;
// General purpose flags
const ENCRYPTED = 0x0001;
/** CRC and sizes follow the data in a data descriptor (the local header may carry zeros instead). */
const HAS_DESCRIPTOR = 0x0008;
const STRONG_ENCRYPTION = 0x0040;
const UTF8_NAMES = 0x0800;
const MASKED_HEADERS = 0x2000;
const STORED = 0;
const DEFLATED = 8;

/**
 * DOS date/time fields for a fixed moment (entries carry no meaningful time). DOS dates hold the
 * years 1980–2107 only; a clock outside them is clamped to their ends rather than overflowing the field.
 */
function dosDateTime(moment: Date): { time: number; date: number } {
  const d = new Date(Math.min(Math.max(moment.getTime(), Date.UTC(1980, 0, 1)), Date.UTC(2107, 11, 31, 23, 59, 58)));
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

/** The headers of an archive written front to back: each entry's local header, then the central directory. */
class ZipLayout {
  private readonly time: number;
  private readonly date: number;
  private offset = 0;
  private readonly central: Buffer[] = [];

  constructor(modified: Date) {
    ({ time: this.time, date: this.date } = dosDateTime(modified));
  }

  /**
   * The local header (with the name) of the next entry, whose `compressedSize` bytes follow it.
   * @throws ZipTooLargeError when the entry or the archive would pass 4 GiB
   */
  local(name: string, method: number, crc: number, compressedSize: number, size: number): Buffer {
    if (this.central.length >= MAX_ENTRIES) throw new ZipError('ZipTooLarge', { what: `an archive of more than ${MAX_ENTRIES} entries`, limit: `${MAX_ENTRIES} entries` });
    const nameBytes = Buffer.from(name, 'utf8');
    const end = this.offset + 30 + nameBytes.length + compressedSize;
    if (size > ZIP_LIMIT) throw new ZipTooLargeError(size, `entry ${name}`);
    if (end > ZIP_LIMIT) throw new ZipTooLargeError(end, 'archive');
    // The local header and the central directory entry repeat the same fields, the latter two bytes on.
    const writeFields = (header: Buffer, at: number) => {
      header.writeUInt16LE(20, at); // version needed to extract
      header.writeUInt16LE(UTF8_NAMES, at + 2);
      header.writeUInt16LE(method, at + 4);
      header.writeUInt16LE(this.time, at + 6);
      header.writeUInt16LE(this.date, at + 8);
      header.writeUInt32LE(crc, at + 10);
      header.writeUInt32LE(compressedSize, at + 14);
      header.writeUInt32LE(size, at + 18);
      header.writeUInt16LE(nameBytes.length, at + 22);
    };
    const local = Buffer.alloc(30 + nameBytes.length);
    local.writeUInt32LE(LOCAL_HEADER, 0);
    writeFields(local, 4);
    nameBytes.copy(local, 30);

    const central = Buffer.alloc(46 + nameBytes.length);
    central.writeUInt32LE(CENTRAL_HEADER, 0);
    central.writeUInt16LE(20, 4); // version made by
    writeFields(central, 6);
    central.writeUInt32LE(this.offset, 42);
    nameBytes.copy(central, 46);
    this.central.push(central);
    this.offset = end;
    return local;
  }

  /** The central directory and its end record. */
  end(): Buffer {
    const centralSize = this.central.reduce((n, b) => n + b.length, 0);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
    end.writeUInt16LE(this.central.length, 8);
    end.writeUInt16LE(this.central.length, 10);
    end.writeUInt32LE(centralSize, 12);
    end.writeUInt32LE(this.offset, 16);
    return Buffer.concat([...this.central, end]);
  }
}

/** A Buffer entry's bytes as written: deflated unless it is to be stored. */
interface Encoded {
  readonly method: number;
  readonly crc: number;
  readonly body: Buffer;
  readonly size: number;
}

function encode(data: Buffer, stored: boolean | undefined): Encoded {
  return { method: stored ? STORED : DEFLATED, crc: crc32(data), body: stored ? data : deflateRawSync(data), size: data.length };
}

/** @throws ZipTooLargeError past 4 GiB */
export function writeZip(entries: readonly ZipEntry[], modified = new Date()): Buffer {
  const layout = new ZipLayout(modified);
  const parts = entries.flatMap(({ name, data, stored }) => {
    const e = encode(data, stored);
    return [layout.local(name, e.method, e.crc, e.body.length, e.size), e.body];
  });
  return Buffer.concat([...parts, layout.end()]);
}

/**
 * The archive in chunks; write each before asking for the next, since a source's chunk may be
 * overwritten then. Each source is read twice: once for its CRC, which a stored entry's local
 * header must carry (a data descriptor after the bytes is refused with stored entries by Java's
 * ZipInputStream, among others), then to write it; a source that changes in between fails.
 * @throws ZipTooLargeError at once when the archive would pass 4 GiB: Buffer entries are encoded
 *   first, so its length is known before a source is read; while iterating, a ZipError when a
 *   source does not have its stated size or changes, and the source's errors
 */
export function zipChunks(entries: readonly ZipStreamEntry[], modified = new Date()): AsyncIterable<Buffer> {
  const prepared = entries.map(({ name, data, stored }): Prepared => (Buffer.isBuffer(data) ? { name, encoded: encode(data, stored) } : { name, source: data }));
  // Per entry a local header (30 bytes) and a central one (46), each with the name; then the end (22).
  const length = prepared.reduce((n, e) => n + 76 + 2 * Buffer.byteLength(e.name) + ('encoded' in e ? e.encoded.body.length : e.source.size), 22);
  if (length > ZIP_LIMIT) throw new ZipTooLargeError(length, 'archive');
  return streamEntries(prepared, modified);
}

type Prepared = { readonly name: string; readonly encoded: Encoded } | { readonly name: string; readonly source: ZipSource };

async function* streamEntries(entries: readonly Prepared[], modified: Date): AsyncGenerator<Buffer> {
  const layout = new ZipLayout(modified);
  for (const entry of entries) {
    const name = entry.name;
    if ('encoded' in entry) {
      const e = entry.encoded;
      yield layout.local(name, e.method, e.crc, e.body.length, e.size);
      yield e.body;
      continue;
    }
    const data = entry.source;
    let crc = 0;
    for await (const chunk of chunksOf(data, name)) crc = crc32(chunk, crc);
    yield layout.local(name, STORED, crc, data.size, data.size);
    let again = 0;
    for await (const chunk of chunksOf(data, name)) {
      again = crc32(chunk, again);
      yield chunk;
    }
    if (again !== crc) throw new ZipError('ZipSourceChanged', { entry: name, reason: 'its CRC differs between the two readings' });
  }
  yield layout.end();
}

/** The bytes of a source, which must be exactly its stated size. */
async function* chunksOf(source: ZipSource, name: string): AsyncGenerator<Buffer> {
  let read = 0;
  for await (const chunk of source.chunks()) {
    read += chunk.length;
    if (read > source.size) break;
    yield chunk;
  }
  if (read !== source.size) throw new ZipError('ZipSourceChanged', { entry: name, reason: `it has ${read > source.size ? 'more' : 'fewer'} than its ${source.size} bytes` });
}



// ---- reading --------------------------------------------------------------------------------------

/**
 * Bounds on what an archive can make the reader hold or inflate, checked on the central directory
 * before any entry is inflated.
 */
export interface ZipReadLimits {
  /** Entries in the central directory (default 65534, all an archive without ZIP64 can have). */
  readonly maxEntries?: number;
  /** Bytes in an entry's name (default 1024). */
  readonly maxNameBytes?: number;
  /** The entries' declared sizes added up (default 256 MiB in memory, 8 GiB from a file). */
  readonly maxTotalBytes?: number;
}

const MiB = 1024 * 1024;
const DEFAULT_LIMITS: Required<ZipReadLimits> = { maxEntries: MAX_ENTRIES, maxNameBytes: 1024, maxTotalBytes: 256 * MiB };
/** Deflate expands at most 1032 times (one 2-bit code for a 258-byte match): an entry claiming more lies about its size. */
const MAX_DEFLATE_RATIO = 1032;

const malformed = (reason: string) => new ZipError('ZipMalformed', { reason });
const unsupported = (feature: string) => new ZipError('ZipUnsupported', { feature });
const limitExceeded = (reason: string) => new ZipError('ZipLimitExceeded', { reason });
const unexpectedData = (from: number, to: number, reason: string) => new ZipError('ZipUnexpectedData', { offset: from, length: to - from, reason });

/**
 * Reads every entry, in central-directory order, after `catalog` has checked that the archive is
 * exactly what its central directory says.
 * @throws ZipError: ZipMalformed (not an archive, truncated, CRC or size mismatch), ZipUnsupported,
 *   ZipDuplicateEntry, ZipHeaderMismatch, ZipOverlappingEntries, ZipUnexpectedData, ZipLimitExceeded
 */
export function readZip(zip: Buffer, limits: ZipReadLimits = {}): ZipEntry[] {
  const reads = catalog(zip.length, { ...DEFAULT_LIMITS, ...limits });
  let step = reads.next();
  while (!step.done) step = reads.next(slice(zip, step.value));
  return step.value.map((e) => ({ name: e.name, data: entryData(e, zip.subarray(e.dataAt, e.dataAt + e.compressedSize)), stored: e.method === STORED }));
}

function slice(zip: Buffer, { at, length }: ReadRequest): Buffer {
  if (at + length > zip.length) throw malformed('archive ends early');
  return zip.subarray(at, at + length);
}

/** Bytes `catalog` needs next; it is resumed with them (read from memory or from a file). */
interface ReadRequest {
  readonly at: number;
  readonly length: number;
}

interface DirectoryEntry {
  readonly name: string;
  readonly nameBytes: Buffer;
  readonly flags: number;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localAt: number;
}

interface CatalogedEntry extends DirectoryEntry {
  readonly dataAt: number;
}

/**
 * The entries of an archive of `archiveSize` bytes, read through the bytes it asks for. Two
 * readers must not see two archives: Java's ZipInputStream (the reference's) walks the local
 * headers from the start, unzip and we read the central directory. So every central directory
 * entry's local header must agree with it (name, flags, method, CRC and sizes, or a data
 * descriptor that does), and the entries must tile the archive from its first byte to the central
 * directory, which runs to its end record, which ends the file: nothing hidden before, between or
 * after them, nothing overlapping. Names must be unique, also ignoring case and Unicode forms (a
 * case-insensitive lookup or file system would take one for the other).
 */
function* catalog(archiveSize: number, limits: Required<ZipReadLimits>): Generator<ReadRequest, CatalogedEntry[], Buffer> {
  const tailAt = Math.max(0, archiveSize - 22 - 0xffff);
  const end = endRecord(yield { at: tailAt, length: archiveSize - tailAt }, tailAt);
  if (end.count > limits.maxEntries) throw limitExceeded(`${end.count} entries, more than ${limits.maxEntries}`);
  const directoryEnd = end.directoryAt + end.directorySize;
  if (directoryEnd > end.at) throw malformed('the central directory runs into its end record');
  if (directoryEnd < end.at) throw unexpectedData(directoryEnd, end.at, 'between the central directory and its end record');
  const entries = centralDirectory(yield { at: end.directoryAt, length: end.directorySize }, end, limits);
  const cataloged: CatalogedEntry[] = [];
  const spans: Span[] = [];
  for (const e of entries) {
    if (e.localAt + 30 > end.directoryAt) throw malformed(`${e.name}: its local header is not before the central directory`);
    const header = yield { at: e.localAt, length: 30 };
    if (header.readUInt32LE(0) !== LOCAL_HEADER) throw malformed(`${e.name}: no local header where the central directory says`);
    const nameLength = header.readUInt16LE(26);
    const dataAt = e.localAt + 30 + nameLength + header.readUInt16LE(28);
    const dataEnd = dataAt + e.compressedSize;
    if (dataEnd > end.directoryAt) throw malformed(`${e.name}: its data runs into the central directory`);
    checkLocalHeader(e, header, yield { at: e.localAt + 30, length: nameLength });
    const descriptor = e.flags & HAS_DESCRIPTOR ? descriptorLength(e, yield { at: dataEnd, length: Math.min(16, end.directoryAt - dataEnd) }) : 0;
    spans.push({ name: e.name, start: e.localAt, end: dataEnd + descriptor });
    cataloged.push({ ...e, dataAt });
  }
  checkTiling(spans, end.directoryAt);
  return cataloged;
}

interface EndRecord {
  readonly at: number;
  readonly count: number;
  readonly directorySize: number;
  readonly directoryAt: number;
}

/**
 * The end record: the 22 bytes and the comment (of the length they state) that end the archive.
 * @param tail the archive's last bytes (up to 22 + 64 KiB), which start at `tailAt`
 */
function endRecord(tail: Buffer, tailAt: number): EndRecord {
  let at: number | undefined;
  let trailing: number | undefined;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== END_OF_CENTRAL_DIRECTORY) continue;
    const recordEnd = i + 22 + tail.readUInt16LE(i + 20);
    if (recordEnd === tail.length) {
      // A second one inside the comment would let two readers pick different directories.
      if (at !== undefined) throw malformed('more than one end of central directory record');
      at = i;
    } else if (recordEnd < tail.length) trailing ??= recordEnd;
  }
  if (at === undefined) {
    if (trailing !== undefined) throw unexpectedData(tailAt + trailing, tailAt + tail.length, 'after the end of central directory record');
    throw malformed('not a ZIP archive (no end of central directory record)');
  }
  if (tail.readUInt16LE(at + 4) !== 0 || tail.readUInt16LE(at + 6) !== 0 || tail.readUInt16LE(at + 8) !== tail.readUInt16LE(at + 10)) throw unsupported('several disks');
  const record = { at: tailAt + at, count: tail.readUInt16LE(at + 10), directorySize: tail.readUInt32LE(at + 12), directoryAt: tail.readUInt32LE(at + 16) };
  if (record.count === 0xffff || record.directorySize === 0xffffffff || record.directoryAt === 0xffffffff) throw unsupported('ZIP64');
  return record;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The entries the central directory lists, each checked on its own and against the others' names. */
function centralDirectory(directory: Buffer, end: EndRecord, limits: Required<ZipReadLimits>): DirectoryEntry[] {
  const entries: DirectoryEntry[] = [];
  const folded = new Map<string, string>();
  let total = 0;
  let pos = 0;
  for (let i = 0; i < end.count; i++) {
    if (pos + 46 > directory.length || directory.readUInt32LE(pos) !== CENTRAL_HEADER) throw malformed('malformed central directory');
    const nameLength = directory.readUInt16LE(pos + 28);
    const next = pos + 46 + nameLength + directory.readUInt16LE(pos + 30) + directory.readUInt16LE(pos + 32);
    if (next > directory.length) throw malformed('malformed central directory');
    if (nameLength > limits.maxNameBytes) throw limitExceeded(`an entry name of ${nameLength} bytes, more than ${limits.maxNameBytes}`);
    const nameBytes = directory.subarray(pos + 46, pos + 46 + nameLength);
    let name: string;
    try {
      name = UTF8.decode(nameBytes);
    } catch (err) {
      throw new ZipError('ZipMalformed', { reason: `entry name ${nameBytes.toString('hex')} is not UTF-8` }, { cause: err });
    }
    const e: DirectoryEntry = {
      name,
      nameBytes,
      flags: directory.readUInt16LE(pos + 8),
      method: directory.readUInt16LE(pos + 10),
      crc: directory.readUInt32LE(pos + 16),
      compressedSize: directory.readUInt32LE(pos + 20),
      size: directory.readUInt32LE(pos + 24),
      localAt: directory.readUInt32LE(pos + 42),
    };
    if (e.flags & (ENCRYPTED | STRONG_ENCRYPTION | MASKED_HEADERS)) throw unsupported(`encryption (entry ${name})`);
    if (e.method !== STORED && e.method !== DEFLATED) throw unsupported(`compression method ${e.method} (entry ${name})`);
    if (e.compressedSize === 0xffffffff || e.size === 0xffffffff || e.localAt === 0xffffffff) throw unsupported(`ZIP64 (entry ${name})`);
    if (directory.readUInt16LE(pos + 34) !== 0) throw unsupported('several disks');
    if (e.method === STORED && e.compressedSize !== e.size) throw malformed(`${name}: stored, but its compressed size is not its size`);
    // Nothing but the sizes says where a stored entry ends: a streaming reader without them would
    // have to guess from the bytes (Java's ZipInputStream refuses it: "only DEFLATED entries can
    // have EXT descriptor").
    if (e.method === STORED && e.flags & HAS_DESCRIPTOR) throw unsupported(`a data descriptor after a stored entry (entry ${name})`);
    if (e.size > e.compressedSize * MAX_DEFLATE_RATIO + 1024) throw limitExceeded(`${name} claims to inflate ${e.compressedSize} bytes to ${e.size}, more than deflate can`);
    total += e.size;
    if (total > limits.maxTotalBytes) throw limitExceeded(`entries of more than ${limits.maxTotalBytes} bytes in all`);
    const key = name.normalize('NFKC').toLowerCase();
    const other = folded.get(key);
    if (other !== undefined) throw new ZipError('ZipDuplicateEntry', { entry: other, other: name });
    folded.set(key, name);
    entries.push(e);
    pos = next;
  }
  if (pos !== directory.length) throw unexpectedData(end.directoryAt + pos, end.directoryAt + directory.length, `in the central directory after its ${end.count} entries`);
  return entries;
}

/** The local header must say what the central directory says (the time and versions aside). */
function checkLocalHeader(e: DirectoryEntry, header: Buffer, nameBytes: Buffer): void {
  const mismatch = (field: string) => new ZipError('ZipHeaderMismatch', { entry: e.name, field });
  if (!nameBytes.equals(e.nameBytes)) throw mismatch('the name');
  if (header.readUInt16LE(6) !== e.flags) throw mismatch('the flags');
  if (header.readUInt16LE(8) !== e.method) throw mismatch('the compression method');
  const fields = [
    ['the CRC', 14, e.crc],
    ['the compressed size', 18, e.compressedSize],
    ['the size', 22, e.size],
  ] as const;
  for (const [field, at, value] of fields) {
    const local = header.readUInt32LE(at);
    if (local !== value && !(e.flags & HAS_DESCRIPTOR && local === 0)) throw mismatch(field);
  }
}

/** The length of the data descriptor after an entry's data (with or without its signature), which must repeat the central directory. */
function descriptorLength(e: DirectoryEntry, bytes: Buffer): number {
  const repeats = (at: number) => bytes.length >= at + 12 && bytes.readUInt32LE(at) === e.crc && bytes.readUInt32LE(at + 4) === e.compressedSize && bytes.readUInt32LE(at + 8) === e.size;
  if (bytes.length >= 16 && bytes.readUInt32LE(0) === DATA_DESCRIPTOR && repeats(4)) return 16;
  if (repeats(0)) return 12;
  throw new ZipError('ZipHeaderMismatch', { entry: e.name, field: 'the data descriptor' });
}

interface Span {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

/** The entries (local header, data, descriptor) must follow each other from byte 0 to the central directory. */
function checkTiling(spans: readonly Span[], directoryAt: number): void {
  let at = 0;
  let previous: Span | undefined;
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    if (span.start < at) throw new ZipError('ZipOverlappingEntries', { entry: previous!.name, other: span.name });
    if (span.start > at) throw unexpectedData(at, span.start, previous ? `after entry ${previous.name}` : 'before the first entry');
    at = span.end;
    previous = span;
  }
  if (at < directoryAt) throw unexpectedData(at, directoryAt, previous ? `after entry ${previous.name}` : 'before the central directory');
}

/**
 * An entry's bytes from its stored or deflated data, size and CRC checked, and its deflate stream
 * ending where its compressed size does.
 */
function entryData(e: CatalogedEntry, raw: Buffer): Buffer {
  if (e.method === STORED) return checked(e, raw);
  let inflated: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    // `info` also gives the engine, whose bytesWritten is the compressed bytes it consumed.
    inflated = inflateRawSync(raw, { maxOutputLength: Math.max(e.size, 1), info: true } as ZlibOptions) as unknown as typeof inflated;
  } catch (err) {
    throw new ZipError('ZipMalformed', { reason: `${e.name}: cannot inflate: ${(err as Error).message}` }, { cause: err });
  }
  checkDeflateEnd(e, inflated.engine.bytesWritten);
  return checked(e, inflated.buffer);
}

function checked(e: DirectoryEntry, data: Buffer): Buffer {
  if (data.length !== e.size || crc32(data) !== e.crc) throw malformed(`${e.name}: CRC or size mismatch`);
  return data;
}

/**
 * Inflate stops at the end of the deflate stream and ignores what follows: bytes after it, within
 * the entry's compressed size, would be hidden in the archive (Java's ZipInputStream refuses them:
 * "invalid entry compressed size").
 */
function checkDeflateEnd(e: CatalogedEntry, consumed: number): void {
  if (consumed !== e.compressedSize) throw unexpectedData(e.dataAt + consumed, e.dataAt + e.compressedSize, `after the deflate stream of entry ${e.name}, within its compressed size`);
}

/** An entry of an archive read from a file: small ones in memory, large ones to be streamed once. */
export interface ZipFileEntry {
  readonly name: string;
  readonly size: number;
  /** The bytes, for an entry held in memory (see readZipFile). */
  readonly data?: Buffer;
  /** The bytes of a larger entry, inflated and CRC-checked as they are read (ZipMalformed at the end when they do not match). */
  chunks?(): AsyncIterable<Buffer>;
}

export interface ZipFileOptions extends ZipReadLimits {
  /** Entries of at most this size are read into memory… */
  readonly inMemoryBytes: number;
  /** …while those held add up to at most this (default 256 MiB); the others are streamed. */
  readonly inMemoryTotalBytes?: number;
}

/**
 * Reads an archive from a file without holding its large entries: the archive is checked as
 * `readZip` checks it, then entries are read in while `options` allow and the others are read
 * when their `chunks` are.
 * @throws as readZip, and ZipMalformed when the file ends early
 */
export async function readZipFile(file: string, options: ZipFileOptions): Promise<ZipFileEntry[]> {
  const handle = await open(file, 'r');
  try {
    const { size: fileSize } = await handle.stat();
    const read = async ({ at, length }: ReadRequest): Promise<Buffer> => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, at);
      if (bytesRead !== length) throw malformed('archive ends early');
      return buffer;
    };
    const reads = catalog(fileSize, { ...DEFAULT_LIMITS, maxTotalBytes: 2 * ZIP_LIMIT, ...options });
    let step = reads.next();
    while (!step.done) step = reads.next(await read(step.value));
    const entries: ZipFileEntry[] = [];
    let held = 0;
    for (const e of step.value) {
      if (e.size <= options.inMemoryBytes && held + e.size <= (options.inMemoryTotalBytes ?? 256 * MiB)) {
        held += e.size;
        entries.push({ name: e.name, size: e.size, data: entryData(e, await read({ at: e.dataAt, length: e.compressedSize })) });
      } else entries.push({ name: e.name, size: e.size, chunks: () => entryChunks(file, e) });
    }
    return entries;
  } finally {
    await handle.close();
  }
}

/** One large entry's bytes, inflated as they are read, its size bounded and its CRC checked at the end. */
async function* entryChunks(file: string, e: CatalogedEntry): AsyncGenerator<Buffer> {
  const raw = fileSource(file, e.compressedSize, e.dataAt);
  let crc = 0;
  let seen = 0;
  const check = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > e.size) throw malformed(`${e.name}: expands past its declared ${e.size} bytes`);
    crc = crc32(chunk, crc);
    return chunk;
  };
  // The source reuses its buffer: a chunk handed on is copied.
  const compressed = async function* () {
    for await (const chunk of raw.chunks()) yield Buffer.from(chunk);
  };
  if (e.method === STORED) {
    for await (const chunk of compressed()) yield check(chunk);
  } else {
    const inflate = createInflateRaw();
    const output = Readable.from(compressed()).pipe(inflate);
    try {
      for await (const chunk of output) yield check(chunk as Buffer);
    } catch (err) {
      throw err instanceof ZipError ? err : new ZipError('ZipMalformed', { reason: `${e.name}: cannot inflate: ${(err as Error).message}` }, { cause: err });
    }
    checkDeflateEnd(e, inflate.bytesWritten);
  }
  if (seen !== e.size || crc !== e.crc) throw malformed(`${e.name}: CRC or size mismatch`);
}
