/**
 * ZIP archives for ASiC-E containers: writing (stored or deflated entries, the first entry
 * `mimetype` stored as ASiC requires) and reading (stored and deflated, CRC-checked, bounded so a
 * crafted archive cannot expand without limit). No ZIP64, encryption or multi-disk archives —
 * containers of logged messages never need them.
 */
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

export class ZipError extends Error {
  override readonly name = 'ZipError';
}

export interface ZipEntry {
  readonly name: string;
  readonly data: Buffer;
  /** Store without compression (ASiC's `mimetype` must be stored). */
  readonly stored?: boolean;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const UTF8_NAMES = 0x0800;

/** DOS date/time fields for a fixed moment (entries carry no meaningful time). */
function dosDateTime(d: Date): { time: number; date: number } {
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

export function writeZip(entries: readonly ZipEntry[], modified = new Date()): Buffer {
  const { time, date } = dosDateTime(modified);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const method = entry.stored ? 0 : 8;
    const body = entry.stored ? entry.data : deflateRawSync(entry.data);
    const crc = crc32(entry.data);
    // The local header and the central directory entry repeat the same fields, the latter two bytes on.
    const writeFields = (header: Buffer, at: number) => {
      header.writeUInt16LE(20, at); // version needed to extract
      header.writeUInt16LE(UTF8_NAMES, at + 2);
      header.writeUInt16LE(method, at + 4);
      header.writeUInt16LE(time, at + 6);
      header.writeUInt16LE(date, at + 8);
      header.writeUInt32LE(crc, at + 10);
      header.writeUInt32LE(body.length, at + 14);
      header.writeUInt32LE(entry.data.length, at + 18);
      header.writeUInt16LE(name.length, at + 22);
      return header;
    };
    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL_HEADER, 0);
    locals.push(writeFields(local, 4), name, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(CENTRAL_HEADER, 0);
    central.writeUInt16LE(20, 4); // version made by
    writeFields(central, 6);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

/**
 * Reads every entry, in archive order.
 * @throws ZipError when the archive is malformed, uses what is not supported, fails its CRC or
 *   would expand past `maxTotalBytes`
 */
export function readZip(zip: Buffer, maxTotalBytes = 256 * 1024 * 1024): ZipEntry[] {
  const endAt = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endAt < 0 || endAt + 22 > zip.length) throw new ZipError('not a ZIP archive (no end of central directory)');
  const count = zip.readUInt16LE(endAt + 10);
  let pos = zip.readUInt32LE(endAt + 16);
  const entries: ZipEntry[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (pos + 46 > zip.length || zip.readUInt32LE(pos) !== CENTRAL_HEADER) throw new ZipError('malformed central directory');
    const flags = zip.readUInt16LE(pos + 8);
    const method = zip.readUInt16LE(pos + 10);
    const crc = zip.readUInt32LE(pos + 16);
    const compressedSize = zip.readUInt32LE(pos + 20);
    const size = zip.readUInt32LE(pos + 24);
    const nameLength = zip.readUInt16LE(pos + 28);
    const extraLength = zip.readUInt16LE(pos + 30);
    const commentLength = zip.readUInt16LE(pos + 32);
    const localAt = zip.readUInt32LE(pos + 42);
    const name = zip.toString('utf8', pos + 46, pos + 46 + nameLength);
    pos += 46 + nameLength + extraLength + commentLength;
    if (flags & 0x1) throw new ZipError(`${name}: encrypted entries are not supported`);
    if (localAt + 30 > zip.length || zip.readUInt32LE(localAt) !== LOCAL_HEADER) throw new ZipError(`${name}: malformed local header`);
    const dataAt = localAt + 30 + zip.readUInt16LE(localAt + 26) + zip.readUInt16LE(localAt + 28);
    if (dataAt + compressedSize > zip.length) throw new ZipError(`${name}: entry runs past the archive`);
    total += size;
    if (total > maxTotalBytes) throw new ZipError(`archive expands past ${maxTotalBytes} bytes`);
    const raw = zip.subarray(dataAt, dataAt + compressedSize);
    let data: Buffer;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(size, 1) });
      } catch (err) {
        throw new ZipError(`${name}: cannot inflate: ${(err as Error).message}`);
      }
    } else throw new ZipError(`${name}: compression method ${method} is not supported`);
    if (data.length !== size || crc32(data) !== crc) throw new ZipError(`${name}: CRC or size mismatch`);
    entries.push({ name, data, stored: method === 0 });
  }
  return entries;
}
