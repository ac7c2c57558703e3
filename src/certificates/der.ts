/**
 * A small DER reader for the structures we parse on hot paths (OCSP responses): it walks
 * tag-length-value triples in place, without building an object tree, so the bytes that are
 * signed (tbsResponseData) can be taken as they are.
 */

export interface Tlv {
  /** The identifier octet (class, constructed bit and tag number < 31). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

export class DerError extends Error {
  override readonly name = 'DerError';
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag `[n]`, constructed or primitive. */
export const contextTag = (n: number, constructed = true): number => 0x80 | (constructed ? 0x20 : 0) | n;

/** @throws DerError when the bytes at `pos` are not one complete TLV inside `limit` */
export function readTlv(buf: Buffer, pos: number, limit = buf.length): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated DER');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here');
  let len = buf[pos + 1]!;
  let contentStart = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || contentStart + n > limit) throw new DerError('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[contentStart + i]!;
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > limit) throw new DerError('DER value runs past its container');
  return { tag, start: pos, contentStart, end };
}

/** The TLVs directly inside a constructed value. */
export function childrenOf(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.contentStart; pos < parent.end; ) {
    const tlv = readTlv(buf, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

/** @throws DerError when the value does not have the expected tag */
export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) throw new DerError(`expected ${what}`);
  return tlv;
}

export const content = (buf: Buffer, tlv: Tlv): Buffer => buf.subarray(tlv.contentStart, tlv.end);
export const whole = (buf: Buffer, tlv: Tlv): Buffer => buf.subarray(tlv.start, tlv.end);

export function readOid(buf: Buffer, tlv: Tlv): string {
  const bytes = content(buf, expectTag(tlv, TAG.OID, 'OBJECT IDENTIFIER'));
  const parts: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/** GeneralizedTime or UTCTime (with seconds and Z, as DER requires). */
export function readTime(buf: Buffer, tlv: Tlv): Date {
  const text = content(buf, tlv).toString('latin1');
  let m: RegExpExecArray | null;
  if (tlv.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\.\d+)?Z$/.exec(text))) {
    return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, m[7] ? Math.round(parseFloat(m[7]) * 1000) : 0));
  }
  if (tlv.tag === TAG.UTC_TIME && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))) {
    const year = +m[1]! < 50 ? 2000 + +m[1]! : 1900 + +m[1]!;
    return new Date(Date.UTC(year, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  throw new DerError(`bad time "${text}"`);
}

/** An INTEGER's magnitude as lower-case hex without leading zeros (certificate serial numbers). */
export function readIntegerHex(buf: Buffer, tlv: Tlv): string {
  const hex = content(buf, expectTag(tlv, TAG.INTEGER, 'INTEGER')).toString('hex').replace(/^(00)+(?=.)/, '');
  return hex === '' ? '0' : hex;
}

/**
 * DER encoding of one value: tag, definite length, content. One allocation for the whole value:
 * hash chains build thousands of these per batch (a header buffer and a concatenation each cost more
 * than the copy itself).
 */
export function encodeTlv(tag: number, ...contents: Buffer[]): Buffer {
  let len = 0;
  for (const c of contents) len += c.length;
  const out = Buffer.allocUnsafe(derHeaderLength(len) + len);
  let at = writeDerHeader(out, 0, tag, len);
  for (const c of contents) at += c.copy(out, at);
  return out;
}

/** Octets of a tag and the definite length DER gives `length` content octets (as few as it needs). */
export function derHeaderLength(length: number): number {
  return length < 0x80 ? 2 : length < 0x100 ? 3 : length < 0x10000 ? 4 : length < 0x1000000 ? 5 : 6;
}

/** Writes a tag and the definite length of `length` content octets at `at`; returns where the content starts. */
export function writeDerHeader(out: Buffer, at: number, tag: number, length: number): number {
  const headerLength = derHeaderLength(length);
  out[at] = tag;
  if (headerLength === 2) out[at + 1] = length;
  else {
    out[at + 1] = 0x80 | (headerLength - 2);
    for (let i = at + headerLength - 1, v = length; i >= at + 2; i--, v >>>= 8) out[i] = v & 0xff;
  }
  return at + headerLength;
}

export function encodeOid(oid: string): Buffer {
  const parts = oid.split('.').map(Number);
  const bytes: number[] = [parts[0]! * 40 + parts[1]!];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [part & 0x7f];
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return encodeTlv(TAG.OID, Buffer.from(bytes));
}

/** GeneralizedTime with seconds, as DER and RFC 5280 want it. */
export function encodeGeneralizedTime(d: Date): Buffer {
  return encodeTlv(TAG.GENERALIZED_TIME, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z', 'latin1'));
}

/** A positive INTEGER from unsigned big-endian bytes (a 0x00 is prepended when the top bit is set). */
export function encodeUnsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return encodeTlv(TAG.INTEGER, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}
