/**
 * The signature algorithms of the signer, in ONE table: the id callers and the JSON protocol use
 * (Java/X-Road style, `SHA512withRSA`), the number the binary `sign` body carries, the XML
 * Signature method URI X-Road messages name, the digest, and the PKCS#11 mechanism the token signs
 * with. Besides the table, the pure transformations between what callers send (a digest) and what
 * the mechanisms take or return. Loads no PKCS#11 code: the mechanism numbers are PKCS#11's own
 * constants (pkcs11t.h), which never change.
 */
import { XrdError } from '../platform/errors.ts';

export type KeyAlgorithm = 'RSA' | 'EC';
/** Node's digest names (crypto.createHash). */
export type DigestName = 'sha256' | 'sha384' | 'sha512';
export type Padding = 'PKCS1' | 'PSS' | 'ECDSA';

/** PKCS#11 mechanism and MGF numbers (pkcs11t.h). */
export const CKM = {
  RSA_PKCS: 0x1,
  RSA_PKCS_PSS: 0xd,
  ECDSA: 0x1041,
  SHA256: 0x250,
  SHA384: 0x260,
  SHA512: 0x270,
} as const;
export const CKG_MGF1 = { sha256: 0x2, sha384: 0x3, sha512: 0x4 } as const;

export interface SignAlgorithm {
  /** Java/X-Road style identifier, e.g. SHA512withRSA: what JSON requests and keyconf name. */
  readonly id: string;
  /** The algorithm's number in the binary `sign` body (docs/signer-protocol.md); fixed forever. */
  readonly wireId: number;
  /** XML Signature SignatureMethod URI. */
  readonly uri: string;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly digest: DigestName;
  readonly digestLength: number;
  readonly padding: Padding;
  /** The PKCS#11 mechanism the token signs with (CKM_RSA_PKCS takes a DigestInfo, the others the bare digest). */
  readonly mechanism: number;
}

/** XML Encryption/Signature digest method URIs. */
export const DIGEST_URIS: Record<DigestName, string> = {
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha384: 'http://www.w3.org/2001/04/xmldsig-more#sha384',
  sha512: 'http://www.w3.org/2001/04/xmlenc#sha512',
};

const DIGEST_LENGTHS: Record<DigestName, number> = { sha256: 32, sha384: 48, sha512: 64 };
const MECHANISM_OF: Record<Padding, number> = { PKCS1: CKM.RSA_PKCS, PSS: CKM.RSA_PKCS_PSS, ECDSA: CKM.ECDSA };

function row(wireId: number, id: string, uri: string, keyAlgorithm: KeyAlgorithm, digest: DigestName, padding: Padding): SignAlgorithm {
  return { id, wireId, uri, keyAlgorithm, digest, digestLength: DIGEST_LENGTHS[digest], padding, mechanism: MECHANISM_OF[padding] };
}

const DSIG_MORE = 'http://www.w3.org/2001/04/xmldsig-more';
const DSIG_MORE_2007 = 'http://www.w3.org/2007/05/xmldsig-more';

/** The table. A wire id, once released, never changes meaning. */
export const SIGN_ALGORITHM_TABLE: readonly SignAlgorithm[] = [
  row(1, 'SHA256withRSA', `${DSIG_MORE}#rsa-sha256`, 'RSA', 'sha256', 'PKCS1'),
  row(2, 'SHA384withRSA', `${DSIG_MORE}#rsa-sha384`, 'RSA', 'sha384', 'PKCS1'),
  row(3, 'SHA512withRSA', `${DSIG_MORE}#rsa-sha512`, 'RSA', 'sha512', 'PKCS1'),
  row(4, 'SHA256withRSAandMGF1', `${DSIG_MORE_2007}#sha256-rsa-MGF1`, 'RSA', 'sha256', 'PSS'),
  row(5, 'SHA384withRSAandMGF1', `${DSIG_MORE_2007}#sha384-rsa-MGF1`, 'RSA', 'sha384', 'PSS'),
  row(6, 'SHA512withRSAandMGF1', `${DSIG_MORE_2007}#sha512-rsa-MGF1`, 'RSA', 'sha512', 'PSS'),
  row(7, 'SHA256withECDSA', `${DSIG_MORE}#ecdsa-sha256`, 'EC', 'sha256', 'ECDSA'),
  row(8, 'SHA384withECDSA', `${DSIG_MORE}#ecdsa-sha384`, 'EC', 'sha384', 'ECDSA'),
  row(9, 'SHA512withECDSA', `${DSIG_MORE}#ecdsa-sha512`, 'EC', 'sha512', 'ECDSA'),
];

/** By id (`SHA512withRSA`). */
export const SIGN_ALGORITHMS: ReadonlyMap<string, SignAlgorithm> = new Map(SIGN_ALGORITHM_TABLE.map((a) => [a.id, a]));
/** By XML Signature method URI. */
export const SIGN_ALGORITHMS_BY_URI: ReadonlyMap<string, SignAlgorithm> = new Map(SIGN_ALGORITHM_TABLE.map((a) => [a.uri, a]));
/** By binary wire id. */
export const SIGN_ALGORITHMS_BY_WIRE_ID: ReadonlyMap<number, SignAlgorithm> = new Map(SIGN_ALGORITHM_TABLE.map((a) => [a.wireId, a]));

/**
 * Checks that the digest fits the algorithm.
 * @throws InvalidDigestLength
 */
export function checkDigest(alg: SignAlgorithm, digest: Buffer): SignAlgorithm {
  if (digest.length !== alg.digestLength) {
    throw new XrdError('InvalidDigestLength', { algorithm: alg.id, expected: alg.digestLength, actual: digest.length });
  }
  return alg;
}

/**
 * Looks up an algorithm id and checks that the digest fits it.
 * @throws UnsupportedSignAlgorithm, InvalidDigestLength
 */
export function resolveSignAlgorithm(id: string, digest: Buffer, keyId = ''): SignAlgorithm {
  const alg = SIGN_ALGORITHMS.get(id);
  if (!alg) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: id, keyId });
  return checkDigest(alg, digest);
}

// DER prefixes of DigestInfo { AlgorithmIdentifier { oid, NULL }, OCTET STRING digest } (RFC 8017 §9.2 note 1).
const DIGEST_INFO_PREFIX: Record<DigestName, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** CKM_RSA_PKCS signs exactly what it is given, so the DigestInfo wrapper is ours to add. */
export function digestInfo(digest: DigestName, value: Buffer): Buffer {
  return Buffer.concat([DIGEST_INFO_PREFIX[digest], value]);
}

/** PKCS#11 returns ECDSA signatures as raw r‖s; X.509/CMS/OpenSSL want DER SEQUENCE { r, s }. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new XrdError('InternalError', { reason: `the token's raw ECDSA signature has odd length ${raw.length}` });
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
    if (der[pos++] !== tag) throw new XrdError('MalformedSignature', { reason: 'ECDSA signature is not DER' });
    let len = der[pos++];
    if (len === undefined) throw new XrdError('MalformedSignature', { reason: 'ECDSA signature is not DER' });
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
  if (r.length > coordinateLength || s.length > coordinateLength) throw new XrdError('MalformedSignature', { reason: 'ECDSA integer too long for the curve' });
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
