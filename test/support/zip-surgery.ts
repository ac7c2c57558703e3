/**
 * Taking apart a ZIP archive our writer made (no data descriptors, extra fields or comment) and
 * putting its raw pieces back together in another order, with bytes between them or with fields
 * changed — the tampered archives the reader must refuse. Read here independently of the reader
 * under test.
 */
import { writeZip } from '../../src/platform/zip.ts';

/** One entry as its bytes: local header with name, (compressed) data, and central directory record. */
export interface RawEntry {
  readonly name: string;
  readonly local: Buffer;
  readonly data: Buffer;
  readonly central: Buffer;
}

/** Offsets of the fields both headers carry, in the local header and in the central record. */
export const FIELDS = {
  flags: { local: 6, central: 8, bytes: 2 },
  method: { local: 8, central: 10, bytes: 2 },
  crc: { local: 14, central: 16, bytes: 4 },
  compressedSize: { local: 18, central: 20, bytes: 4 },
  size: { local: 22, central: 24, bytes: 4 },
} as const;

export function takeApart(zip: Buffer): RawEntry[] {
  const end = zip.length - 22;
  if (zip.readUInt32LE(end) !== 0x06054b50) throw new Error('not an archive of our writer');
  const entries: RawEntry[] = [];
  for (let i = 0, pos = zip.readUInt32LE(end + 16); i < zip.readUInt16LE(end + 10); i++) {
    const nameLength = zip.readUInt16LE(pos + 28);
    const recordEnd = pos + 46 + nameLength + zip.readUInt16LE(pos + 30) + zip.readUInt16LE(pos + 32);
    const localAt = zip.readUInt32LE(pos + 42);
    const dataAt = localAt + 30 + zip.readUInt16LE(localAt + 26) + zip.readUInt16LE(localAt + 28);
    entries.push({
      name: zip.toString('utf8', pos + 46, pos + 46 + nameLength),
      local: Buffer.from(zip.subarray(localAt, dataAt)),
      data: Buffer.from(zip.subarray(dataAt, dataAt + zip.readUInt32LE(pos + 20))),
      central: Buffer.from(zip.subarray(pos, recordEnd)),
    });
    pos = recordEnd;
  }
  return entries;
}

/** A raw entry of `data` under `name`, stored or deflated as writeZip writes it. */
export function rawEntry(name: string, data: Buffer, stored = true): RawEntry {
  return takeApart(writeZip([{ name, data, stored }]))[0]!;
}

/**
 * The archive of these pieces in this order: entries, and raw bytes (a Buffer) written between
 * them. Each entry's central record points at where its local header went; `extraCentral` adds
 * records of its own (given where each entry went), `trailing` bytes follow the end record.
 */
export function putTogether(parts: readonly (RawEntry | Buffer)[], options: { extraCentral?: (at: ReadonlyMap<RawEntry, number>) => Buffer[]; trailing?: Buffer } = {}): Buffer {
  const out: Buffer[] = [];
  const at = new Map<RawEntry, number>();
  let offset = 0;
  for (const part of parts) {
    const bytes = Buffer.isBuffer(part) ? [part] : [part.local, part.data];
    if (!Buffer.isBuffer(part)) at.set(part, offset);
    out.push(...bytes);
    offset += bytes.reduce((n, b) => n + b.length, 0);
  }
  const central: Buffer[] = [...at].map(([entry, localAt]) => {
    const record = Buffer.from(entry.central);
    record.writeUInt32LE(localAt, 42);
    return record;
  });
  central.push(...(options.extraCentral?.(at) ?? []));
  const directorySize = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(central.length, 8);
  end.writeUInt16LE(central.length, 10);
  end.writeUInt32LE(directorySize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...out, ...central, end, options.trailing ?? Buffer.alloc(0)]);
}

/** The entry with a field changed in its local header, its central record, or both. */
export function withField(e: RawEntry, field: keyof typeof FIELDS, value: number, where: 'local' | 'central' | 'both'): RawEntry {
  const { local, central, bytes } = FIELDS[field];
  const write = (header: Buffer, at: number) => {
    const copy = Buffer.from(header);
    if (bytes === 2) copy.writeUInt16LE(value, at);
    else copy.writeUInt32LE(value >>> 0, at);
    return copy;
  };
  return { ...e, local: where === 'central' ? e.local : write(e.local, local), central: where === 'local' ? e.central : write(e.central, central) };
}

/** A field's value in the central record. */
export function fieldOf(e: RawEntry, field: keyof typeof FIELDS): number {
  const { central, bytes } = FIELDS[field];
  return bytes === 2 ? e.central.readUInt16LE(central) : e.central.readUInt32LE(central);
}

/** The entry under another name in both headers (lengths equal: the name is replaced byte for byte). */
export function renamed(e: RawEntry, name: string, where: 'local' | 'both' = 'both'): RawEntry {
  const bytes = Buffer.from(name);
  if (bytes.length !== Buffer.byteLength(e.name)) throw new Error('renamed keeps the name length');
  const local = Buffer.from(e.local);
  bytes.copy(local, 30);
  if (where === 'local') return { ...e, local };
  const central = Buffer.from(e.central);
  bytes.copy(central, 46);
  return { name, local, data: e.data, central };
}
