/**
 * ZIP archives for ASiC-E containers: writing (stored or deflated entries, the first entry
 * `mimetype` stored as ASiC requires) and reading (stored and deflated, CRC-checked, bounded so a
 * crafted archive cannot expand without limit). No ZIP64, encryption or multi-disk archives: an
 * archive past 4 GiB is refused. Our own rather than a library's: the container layout must stay
 * byte for byte what it is (tests and exported evidence compare it), and the two forms below share
 * their headers.
 *
 * Two writers: `writeZip` builds an archive in memory; `zipChunks` makes one chunk by chunk, its
 * large entries read from sources (logged attachments in files) into one reused buffer, so memory
 * stays small and makes no garbage whatever their size. For the same Buffer entries both give
 * the same bytes.
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { crc32, createInflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';

export class ZipError extends Error {
  override readonly name = 'ZipError';
}

/** An archive (or an entry) larger than this needs ZIP64 fields, which are not written. */
export class ZipTooLargeError extends ZipError {
  constructor(
    readonly size: number,
    what: string,
  ) {
    super(`${what} of ${size} bytes needs ZIP64, which is not supported (limit ${ZIP_LIMIT} bytes)`);
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
const UTF8_NAMES = 0x0800;
const STORED = 0;
const DEFLATED = 8;

/** DOS date/time fields for a fixed moment (entries carry no meaningful time). */
function dosDateTime(d: Date): { time: number; date: number } {
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
    if (this.central.length >= MAX_ENTRIES) throw new ZipError(`more than ${MAX_ENTRIES} entries need ZIP64, which is not supported`);
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
    if (again !== crc) throw new ZipError(`${name} changed while it was written`);
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
  if (read !== source.size) throw new ZipError(`${name} has ${read > source.size ? 'more' : 'fewer'} than its ${source.size} bytes`);
}

/**
 * Reads every entry, in archive order.
 * @throws ZipError when the archive is malformed, uses what is not supported, fails its CRC or
 *   would expand past `maxTotalBytes`
 */
export function readZip(zip: Buffer, maxTotalBytes = 256 * 1024 * 1024): ZipEntry[] {
  const end = endRecord(zip);
  if (end.directoryAt + end.directorySize > zip.length) throw new ZipError('malformed central directory');
  const entries: ZipEntry[] = [];
  let total = 0;
  for (const e of centralDirectory(zip.subarray(end.directoryAt, end.directoryAt + end.directorySize), end.count)) {
    if (e.localAt + 30 > zip.length || zip.readUInt32LE(e.localAt) !== LOCAL_HEADER) throw new ZipError(`${e.name}: malformed local header`);
    const dataAt = e.localAt + 30 + zip.readUInt16LE(e.localAt + 26) + zip.readUInt16LE(e.localAt + 28);
    if (dataAt + e.compressedSize > zip.length) throw new ZipError(`${e.name}: entry runs past the archive`);
    total += e.size;
    if (total > maxTotalBytes) throw new ZipError(`archive expands past ${maxTotalBytes} bytes`);
    entries.push({ name: e.name, data: entryData(e, zip.subarray(dataAt, dataAt + e.compressedSize)), stored: e.method === STORED });
  }
  return entries;
}

interface DirectoryEntry {
  readonly name: string;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localAt: number;
}

/** Where the central directory is, from the end record (the last 22 bytes before a comment). */
function endRecord(tail: Buffer): { count: number; directorySize: number; directoryAt: number } {
  const endAt = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endAt < 0 || endAt + 22 > tail.length) throw new ZipError('not a ZIP archive (no end of central directory)');
  return { count: tail.readUInt16LE(endAt + 10), directorySize: tail.readUInt32LE(endAt + 12), directoryAt: tail.readUInt32LE(endAt + 16) };
}

/** The entries the central directory lists. @throws ZipError (malformed, encrypted or an unsupported method) */
function centralDirectory(directory: Buffer, count: number): DirectoryEntry[] {
  const entries: DirectoryEntry[] = [];
  for (let i = 0, pos = 0; i < count; i++) {
    if (pos + 46 > directory.length || directory.readUInt32LE(pos) !== CENTRAL_HEADER) throw new ZipError('malformed central directory');
    const nameLength = directory.readUInt16LE(pos + 28);
    const name = directory.toString('utf8', pos + 46, pos + 46 + nameLength);
    const method = directory.readUInt16LE(pos + 10);
    if (directory.readUInt16LE(pos + 8) & 0x1) throw new ZipError(`${name}: encrypted entries are not supported`);
    if (method !== STORED && method !== DEFLATED) throw new ZipError(`${name}: compression method ${method} is not supported`);
    entries.push({ name, method, crc: directory.readUInt32LE(pos + 16), compressedSize: directory.readUInt32LE(pos + 20), size: directory.readUInt32LE(pos + 24), localAt: directory.readUInt32LE(pos + 42) });
    pos += 46 + nameLength + directory.readUInt16LE(pos + 30) + directory.readUInt16LE(pos + 32);
  }
  return entries;
}

/** An entry's bytes from its stored or deflated data, size and CRC checked. */
function entryData(e: DirectoryEntry, raw: Buffer): Buffer {
  let data: Buffer;
  try {
    data = e.method === STORED ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(e.size, 1) });
  } catch (err) {
    throw new ZipError(`${e.name}: cannot inflate: ${(err as Error).message}`);
  }
  if (data.length !== e.size || crc32(data) !== e.crc) throw new ZipError(`${e.name}: CRC or size mismatch`);
  return data;
}

/** An entry of an archive read from a file: small ones in memory, large ones to be streamed once. */
export interface ZipFileEntry {
  readonly name: string;
  readonly size: number;
  /** The bytes, for an entry of at most `inMemoryBytes`. */
  readonly data?: Buffer;
  /** The bytes of a larger entry, inflated and CRC-checked as they are read (ZipError at the end when they do not match). */
  chunks?(): AsyncIterable<Buffer>;
}

/**
 * Reads an archive from a file without holding its large entries: the central directory and every
 * entry of at most `inMemoryBytes` are read in; larger ones are read when their `chunks` are.
 * @throws ZipError (not an archive, malformed, unsupported, CRC or size mismatch)
 */
export async function readZipFile(file: string, options: { inMemoryBytes: number; maxEntries?: number }): Promise<ZipFileEntry[]> {
  const handle = await open(file, 'r');
  try {
    const { size: fileSize } = await handle.stat();
    const read = async (at: number, length: number): Promise<Buffer> => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, at);
      if (bytesRead !== length) throw new ZipError('archive ends early');
      return buffer;
    };
    // The end record is the last 22 bytes, before a comment of at most 64 KiB.
    const tailAt = Math.max(0, fileSize - 22 - 0xffff);
    const end = endRecord(await read(tailAt, fileSize - tailAt));
    if (end.count > (options.maxEntries ?? MAX_ENTRIES)) throw new ZipError(`more than ${options.maxEntries ?? MAX_ENTRIES} entries`);
    if (end.directoryAt + end.directorySize > fileSize) throw new ZipError('malformed central directory');
    const entries: ZipFileEntry[] = [];
    for (const e of centralDirectory(await read(end.directoryAt, end.directorySize), end.count)) {
      const local = await read(e.localAt, 30);
      if (local.readUInt32LE(0) !== LOCAL_HEADER) throw new ZipError(`${e.name}: malformed local header`);
      const dataAt = e.localAt + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (dataAt + e.compressedSize > fileSize) throw new ZipError(`${e.name}: entry runs past the archive`);
      if (e.size <= options.inMemoryBytes) entries.push({ name: e.name, size: e.size, data: entryData(e, await read(dataAt, e.compressedSize)) });
      else entries.push({ name: e.name, size: e.size, chunks: () => entryChunks(file, { ...e, dataAt }) });
    }
    return entries;
  } finally {
    await handle.close();
  }
}

/** One large entry's bytes, inflated as they are read, its size bounded and its CRC checked at the end. */
async function* entryChunks(file: string, e: { name: string; method: number; dataAt: number; compressedSize: number; size: number; crc: number }): AsyncGenerator<Buffer> {
  const raw = fileSource(file, e.compressedSize, e.dataAt);
  let crc = 0;
  let seen = 0;
  const check = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > e.size) throw new ZipError(`${e.name}: expands past its declared ${e.size} bytes`);
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
      throw err instanceof ZipError ? err : new ZipError(`${e.name}: cannot inflate: ${(err as Error).message}`);
    }
  }
  if (seen !== e.size || crc !== e.crc) throw new ZipError(`${e.name}: CRC or size mismatch`);
}
