/**
 * Gzipped tar archives (POSIX ustar) of regular files, for configuration backups: small archives
 * written and read whole in memory, readable by the system `tar`. Reading accepts only what writing
 * produces — regular files with plain relative names — and is bounded, so a crafted archive can
 * neither expand without limit (bytes after gunzip, number of entries) nor name a path outside the
 * folder it would be unpacked into (absolute names, `..`, links and devices are refused). Entries
 * are views of the one unpacked buffer, not copies, so memory stays within the byte bound.
 * Our own ~120 lines rather than node-tar: that one is built to unpack to disk, with defences
 * against links and traversal that needed several CVE fixes (2021); reading a handful of regular
 * files in memory needs none of that, and a reader that cannot write a file or make a link at all
 * leaves nothing to defend.
 */
import { gunzipSync, gzipSync } from 'node:zlib';

export class TarError extends Error {
  override readonly name = 'TarError';
}

export interface TarEntry {
  /** Relative, `/`-separated, at most 100 bytes (the ustar name field without its prefix). */
  readonly name: string;
  readonly data: Buffer;
  /** Permission bits (0o777 at most). */
  readonly mode: number;
  readonly mtime?: Date;
}

const BLOCK = 512;

function octal(header: Buffer, at: number, width: number, value: number): void {
  // width - 1 digits and a NUL, as GNU and BSD tar write them.
  const text = value.toString(8).padStart(width - 1, '0');
  if (text.length > width - 1) throw new TarError(`value ${value} does not fit a ${width}-byte field`);
  header.write(`${text}\0`, at, width, 'latin1');
}

function checkName(name: string): void {
  const parts = name.split('/');
  if (name === '' || Buffer.byteLength(name) > 100 || name.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..') || name.includes('\0')) {
    throw new TarError(`unsafe or unsupported entry name ${JSON.stringify(name)}`);
  }
}

function checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum;
}

export function writeTarGz(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    checkName(entry.name);
    const header = Buffer.alloc(BLOCK);
    header.write(entry.name, 0, 100, 'utf8');
    octal(header, 100, 8, entry.mode & 0o777);
    octal(header, 108, 8, 0);
    octal(header, 116, 8, 0);
    octal(header, 124, 12, entry.data.length);
    octal(header, 136, 12, Math.floor((entry.mtime ?? new Date()).getTime() / 1000));
    header.write('0', 156, 1, 'latin1');
    header.write('ustar\0' + '00', 257, 8, 'latin1');
    header.write('root', 265, 32, 'latin1');
    header.write('root', 297, 32, 'latin1');
    header.write(`${checksum(header).toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    blocks.push(header, entry.data);
    const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(2 * BLOCK));
  return gzipSync(Buffer.concat(blocks));
}

function field(header: Buffer, at: number, width: number): string {
  const raw = header.subarray(at, at + width);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? width : nul).toString('utf8');
}

function readOctal(header: Buffer, at: number, width: number, what: string): number {
  const text = field(header, at, width).trim();
  if (!/^[0-7]+$/.test(text)) throw new TarError(`malformed ${what} field`);
  return parseInt(text, 8);
}

export interface TarLimits {
  /** Most bytes the archive may unpack to (headers included). Default 256 MiB. */
  readonly maxBytes?: number;
  /** Most entries. Default 1000. */
  readonly maxEntries?: number;
}

/**
 * Every entry, in archive order.
 * @throws TarError when the data is not gzip, the archive is malformed or holds anything but
 *   regular files with safe names, or it would expand past `maxBytes` or hold more than `maxEntries`
 */
export function readTarGz(gz: Buffer, limits: TarLimits = {}): TarEntry[] {
  const { maxBytes = 256 * 1024 * 1024, maxEntries = 1000 } = limits;
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: maxBytes });
  } catch (err) {
    // zlib's own words for the bound ("Cannot create a Buffer larger than …") read as a fault of ours.
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new TarError(`expands past ${maxBytes} bytes`);
    throw new TarError(`not a readable gzip stream: ${(err as Error).message}`);
  }
  const entries: TarEntry[] = [];
  let pos = 0;
  for (;;) {
    if (pos + BLOCK > tar.length) throw new TarError('archive ends without its end-of-archive blocks');
    const header = tar.subarray(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) return entries;
    if (entries.length === maxEntries) throw new TarError(`more than ${maxEntries} entries`);
    if (readOctal(header, 148, 8, 'checksum') !== checksum(header)) throw new TarError(`header checksum mismatch at offset ${pos}`);
    if (field(header, 257, 6) !== 'ustar') throw new TarError('not a ustar archive');
    const prefix = field(header, 345, 155);
    const name = prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100);
    const type = String.fromCharCode(header[156]!);
    if (type !== '0' && type !== '\0') throw new TarError(`${name}: only regular files are supported (type ${JSON.stringify(type)})`);
    checkName(name);
    const size = readOctal(header, 124, 12, 'size');
    const dataAt = pos + BLOCK;
    if (dataAt + size > tar.length) throw new TarError(`${name}: entry runs past the archive`);
    entries.push({
      name,
      data: tar.subarray(dataAt, dataAt + size),
      mode: readOctal(header, 100, 8, 'mode') & 0o777,
      mtime: new Date(readOctal(header, 136, 12, 'mtime') * 1000),
    });
    pos = dataAt + Math.ceil(size / BLOCK) * BLOCK;
  }
}
