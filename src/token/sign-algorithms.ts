/**
 * Signature algorithms the signer accepts, and the pure transformations between what callers send
 * (a digest) and what PKCS#11 mechanisms take or return. No PKCS#11 calls here.
 */
import { XrdError } from '../platform/errors.ts';

export type KeyAlgorithm = 'RSA' | 'EC';
export type DigestName = 'SHA-256' | 'SHA-384' | 'SHA-512';
export type Padding = 'PKCS1' | 'PSS' | 'ECDSA';

export interface SignAlgorithm {
  /** Java/X-Road style identifier, e.g. SHA512withRSA. */
  readonly id: string;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly digest: DigestName;
  readonly digestLength: number;
  readonly padding: Padding;
}

const DIGEST_LENGTHS: Record<DigestName, number> = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

function algorithm(id: string, keyAlgorithm: KeyAlgorithm, digest: DigestName, padding: Padding): SignAlgorithm {
  return { id, keyAlgorithm, digest, digestLength: DIGEST_LENGTHS[digest], padding };
}

export const SIGN_ALGORITHMS: ReadonlyMap<string, SignAlgorithm> = new Map(
  [
    algorithm('SHA256withRSA', 'RSA', 'SHA-256', 'PKCS1'),
    algorithm('SHA384withRSA', 'RSA', 'SHA-384', 'PKCS1'),
    algorithm('SHA512withRSA', 'RSA', 'SHA-512', 'PKCS1'),
    algorithm('SHA256withRSAandMGF1', 'RSA', 'SHA-256', 'PSS'),
    algorithm('SHA384withRSAandMGF1', 'RSA', 'SHA-384', 'PSS'),
    algorithm('SHA512withRSAandMGF1', 'RSA', 'SHA-512', 'PSS'),
    algorithm('SHA256withECDSA', 'EC', 'SHA-256', 'ECDSA'),
    algorithm('SHA384withECDSA', 'EC', 'SHA-384', 'ECDSA'),
    algorithm('SHA512withECDSA', 'EC', 'SHA-512', 'ECDSA'),
  ].map((a) => [a.id, a]),
);

/**
 * Looks up an algorithm id and checks that the digest fits it.
 * @throws UnsupportedSignAlgorithm, InvalidDigestLength
 */
export function resolveSignAlgorithm(id: string, digest: Buffer, keyId = ''): SignAlgorithm {
  const alg = SIGN_ALGORITHMS.get(id);
  if (!alg) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: id, keyId });
  if (digest.length !== alg.digestLength) {
    throw new XrdError('InvalidDigestLength', { algorithm: id, expected: alg.digestLength, actual: digest.length });
  }
  return alg;
}

// DER prefixes of DigestInfo { AlgorithmIdentifier { oid, NULL }, OCTET STRING digest } (RFC 8017 §9.2 note 1).
const DIGEST_INFO_PREFIX: Record<DigestName, Buffer> = {
  'SHA-256': Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  'SHA-384': Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  'SHA-512': Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** CKM_RSA_PKCS signs exactly what it is given, so the DigestInfo wrapper is ours to add. */
export function digestInfo(digest: DigestName, value: Buffer): Buffer {
  return Buffer.concat([DIGEST_INFO_PREFIX[digest], value]);
}

/** PKCS#11 returns ECDSA signatures as raw r‖s; X.509/CMS/OpenSSL want DER SEQUENCE { r, s }. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new XrdError('UnreadableTokenObject', { what: 'an ECDSA signature', reason: `raw signature of odd length ${raw.length}` });
  const half = raw.length / 2;
  const r = integerBounds(raw, 0, half);
  const s = integerBounds(raw, half, raw.length);
  const body = 2 + r.length + 2 + s.length;
  // On the signing hot path: one allocation, no intermediate buffers. Curves up to P-384 keep the
  // sequence under 128 bytes; P-521 needs the long length form.
  const header = body < 0x80 ? 2 : 3;
  const der = Buffer.allocUnsafe(header + body);
  der[0] = 0x30;
  if (header === 2) der[1] = body;
  else (der[1] = 0x81), (der[2] = body);
  let pos = header;
  for (const int of [r, s]) {
    der[pos++] = 0x02;
    der[pos++] = int.length;
    if (int.pad) der[pos++] = 0;
    pos += raw.copy(der, pos, int.start, int.end);
  }
  return der;
}

/** Where the minimal big-endian magnitude of raw[start, end) lies, and whether it needs a 0x00 sign pad. */
function integerBounds(raw: Buffer, start: number, end: number): { start: number; end: number; pad: boolean; length: number } {
  while (start < end - 1 && raw[start] === 0) start++;
  const pad = (raw[start]! & 0x80) !== 0;
  return { start, end, pad, length: end - start + (pad ? 1 : 0) };
}

/** The inverse, for XML signatures, which carry r‖s with each half padded to the curve size. */
export function ecdsaDerToRaw(der: Buffer, coordinateLength: number): Buffer {
  let pos = 0;
  const readTag = (tag: number): Buffer => {
    if (der[pos++] !== tag) throw new XrdError('InvalidSignatureValue', { reason: 'malformed ECDSA DER signature' });
    let len = der[pos++];
    if (len === undefined) throw new XrdError('InvalidSignatureValue', { reason: 'malformed ECDSA DER signature' });
    if (len & 0x80) {
      const n = len & 0x7f;
      len = der.readUIntBE(pos, n);
      pos += n;
    }
    const value = der.subarray(pos, pos + len);
    pos += len;
    return value;
  };
  const seq = readTag(0x30);
  der = seq;
  pos = 0;
  const r = stripLeadingZeros(readTag(0x02));
  const s = stripLeadingZeros(readTag(0x02));
  if (r.length > coordinateLength || s.length > coordinateLength) throw new XrdError('InvalidSignatureValue', { reason: 'ECDSA integer too long for the curve' });
  const out = Buffer.alloc(coordinateLength * 2);
  r.copy(out, coordinateLength - r.length);
  s.copy(out, 2 * coordinateLength - s.length);
  return out;
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}
