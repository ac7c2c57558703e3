/**
 * The signed configuration directory (pr-gconf §2.3–2.4), parsed and checked in the order of the
 * reference's ConfigurationParser, so the same broken input gives the same coded error:
 *  1. the outer multipart/related: the signed data, then the signature part;
 *  2. the signature part's headers, the verification certificate found by its hash among the
 *     location's certificates, the signature over the signed data's bytes;
 *  3. only then the directory inside: its first part's Expire-date (checked against the clock)
 *     and Version, then each part's headers;
 *  4. at the end, no signed data or no expiry is refused.
 * A body cut short ends its last part at the end of the input, as the reference's MIME parser does
 * (a directory without its signature part then fails at step 4, not as outdated).
 */
import { X509Certificate, constants, createHash, verify } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { MultipartLimitError, boundaryOf, parseMultipart, type MimePart } from '../protocol/multipart.ts';

/** Node's digest name for each hash algorithm URI of XML Signature (pr-gconf §2.4). */
export const HASH_URIS: Readonly<Record<string, string>> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': 'sha1',
  'http://www.w3.org/2001/04/xmldsig-more#sha224': 'sha224',
  'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384': 'sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512',
};

interface SignatureAlgorithm {
  readonly digest: string;
  readonly pss: boolean;
}

/** The signature algorithms of the reference's SignAlgorithm (RSA, RSA-PSS, ECDSA). */
export const SIGNATURE_URIS: Readonly<Record<string, SignatureAlgorithm>> = Object.fromEntries(
  (['sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const).flatMap((d) => [
    [`http://www.w3.org/${d === 'sha1' ? '2000/09/xmldsig#rsa-sha1' : `2001/04/xmldsig-more#rsa-${d}`}`, { digest: d, pss: false }],
    [`http://www.w3.org/2001/04/xmldsig-more#ecdsa-${d}`, { digest: d, pss: false }],
    [`http://www.w3.org/2007/05/xmldsig-more#${d}-rsa-MGF1`, { digest: d, pss: true }],
  ]),
);

export const CONTENT_ID_PRIVATE_PARAMETERS = 'PRIVATE-PARAMETERS';
export const CONTENT_ID_SHARED_PARAMETERS = 'SHARED-PARAMETERS';

/** One configuration part the directory lists. */
export interface DirectoryPart {
  /** `PRIVATE-PARAMETERS`, `SHARED-PARAMETERS` or another kind; empty when the part names none. */
  readonly contentIdentifier: string;
  /** The instance the part describes; empty when the part names none. */
  readonly instance: string;
  readonly contentLocation: string;
  readonly contentFileName?: string;
  /** Node's digest name. */
  readonly hashAlgorithm: string;
  readonly hash: Buffer;
}

export interface SignedDirectory {
  readonly expiresAt: Date;
  /** The `Version` header, when the source sends one. */
  readonly version?: string;
  readonly parts: readonly DirectoryPart[];
}

export interface ParseOptions {
  /** The instance the location serves, for messages. */
  readonly instance: string;
  /** Where the directory came from, for messages. */
  readonly url: string;
  /** DER certificates of the location; the signer must be one of them. */
  readonly verificationCerts: readonly Buffer[];
  readonly now: Date;
  /** Only parts of these kinds are returned (all when absent). */
  readonly contentIdentifiers?: readonly string[];
}

/** Expire-date as Java's OffsetDateTime.parse takes it: the offset is required. */
const ISO_DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/;

/** More parts than any directory has: a bound on what an answer can make us parse. */
const MAX_PARTS = 1000;

/**
 * @throws GlobalConfParsingDownloadedConfDirectoryFailure, GlobalConfHeaderFieldMissing,
 *   GlobalConfHeaderFieldMissingParameter, GlobalConfHeaderFieldWrongValue,
 *   GlobalConfSignatureDecodeFailure, GlobalConfMissingVerificationCert,
 *   GlobalConfSignatureVerificationFailure, OutdatedGlobalConf, GlobalConfMissingSignedData,
 *   GlobalConfMissingSignedDataExpirationDate
 */
export function parseSignedDirectory(contentType: string, body: Buffer, options: ParseOptions): SignedDirectory {
  const { instance, url } = options;
  const outer = parts(contentType, body, url);
  const signedData = outer[0];
  if (!signedData) throw new XrdError('GlobalConfMissingSignedData', { instance });
  const signature = outer[1];
  // Without a signature part the directory is never read, so its expiry is never known.
  if (!signature) throw new XrdError('GlobalConfMissingSignedDataExpirationDate', { instance });
  verifySignature(signedData.body, signature, options);

  const inner = parts(signedData.headers.get('content-type') ?? '', signedData.body, url);
  const header = inner[0];
  if (!header) throw new XrdError('GlobalConfMissingSignedDataExpirationDate', { instance });
  const expireDate = header.headers.get('expire-date')?.trim();
  if (!expireDate) throw new XrdError('GlobalConfHeaderFieldMissing', { instance, field: 'Expire-date' });
  const expiresAt = new Date(expireDate);
  if (!ISO_DATE_TIME.test(expireDate) || Number.isNaN(expiresAt.getTime())) throw wrongValue(instance, 'Expire-date', expireDate, 'not an ISO 8601 date and time with an offset');
  if (options.now.getTime() > expiresAt.getTime()) throw new XrdError('OutdatedGlobalConf', { instance, expiredAt: expiresAt.toISOString() });
  const version = header.headers.get('version')?.trim() || undefined;

  const listed = inner.slice(1).map((p) => directoryPart(p, instance));
  const wanted = options.contentIdentifiers;
  return { expiresAt, version, parts: wanted ? listed.filter((p) => wanted.includes(p.contentIdentifier)) : listed };
}

/** @throws GlobalConfParsingDownloadedConfDirectoryFailure */
function parts(contentType: string, body: Buffer, url: string): MimePart[] {
  const boundary = boundaryOf(contentType);
  const failure = (reason: string, cause?: unknown) => new XrdError('GlobalConfParsingDownloadedConfDirectoryFailure', { url, reason }, { cause });
  if (!boundary) throw failure(`content type "${contentType}" is not multipart`);
  try {
    return parseMultipart(body, boundary, { maxParts: MAX_PARTS });
  } catch (err) {
    if (err instanceof MultipartLimitError) throw failure((err as Error).message, err);
    try {
      // A body cut short: its last part runs to the end of the input (mime4j reads it so).
      return parseMultipart(Buffer.concat([body, Buffer.from(`\r\n--${boundary}--\r\n`)]), boundary, { maxParts: MAX_PARTS });
    } catch (again) {
      throw failure((again as Error).message, again);
    }
  }
}

function verifySignature(signedData: Buffer, signature: MimePart, options: ParseOptions): void {
  const { instance } = options;
  // The reference decodes the signature before it looks at the headers.
  const signatureText = signature.body.toString('latin1').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(signatureText)) throw new XrdError('GlobalConfSignatureDecodeFailure', { instance });
  const value = Buffer.from(signatureText, 'base64');
  requireHeader(signature, 'Content-type', instance, 'application/octet-stream');
  requireHeader(signature, 'Content-transfer-encoding', instance, 'base64');
  const algorithmId = requireHeader(signature, 'Signature-algorithm-id', instance);
  const certHashHeader = requireHeader(signature, 'Verification-certificate-hash', instance);
  const [certHashText, ...params] = certHashHeader.split(';');
  const hashAlgorithmId = parameter(params, 'hash-algorithm-id');
  if (!hashAlgorithmId) throw new XrdError('GlobalConfHeaderFieldMissingParameter', { instance, field: 'Verification-certificate-hash', parameter: 'hash-algorithm-id' });
  const certHashAlgorithm = HASH_URIS[hashAlgorithmId];
  if (!certHashAlgorithm) throw wrongValue(instance, 'Verification-certificate-hash', hashAlgorithmId, 'unknown hash algorithm');
  const algorithm = SIGNATURE_URIS[algorithmId];
  if (!algorithm) throw wrongValue(instance, 'Signature-algorithm-id', algorithmId, 'unknown signature algorithm');

  const wanted = Buffer.from((certHashText ?? '').trim(), 'base64');
  const cert = options.verificationCerts.find((c) => createHash(certHashAlgorithm).update(c).digest().equals(wanted));
  if (!cert) throw new XrdError('GlobalConfMissingVerificationCert', { instance, hash: (certHashText ?? '').trim() });
  let valid = false;
  try {
    const key = new X509Certificate(cert).publicKey;
    valid = verify(algorithm.digest, signedData, algorithm.pss ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : key, value);
  } catch {
    // A certificate without a usable key, or a key of the wrong type: the signature is not valid either way.
    valid = false;
  }
  if (!valid) throw new XrdError('GlobalConfSignatureVerificationFailure', { instance });
}

function directoryPart(part: MimePart, instance: string): DirectoryPart {
  requireHeader(part, 'Content-type', instance, 'application/octet-stream');
  requireHeader(part, 'Content-transfer-encoding', instance, 'base64');
  const contentLocation = requireHeader(part, 'Content-location', instance);
  const hashAlgorithmId = requireHeader(part, 'Hash-algorithm-id', instance);
  const hashAlgorithm = HASH_URIS[hashAlgorithmId];
  if (!hashAlgorithm) throw wrongValue(instance, 'Hash-algorithm-id', hashAlgorithmId, 'unknown hash algorithm');
  const [id = '', ...params] = (part.headers.get('content-identifier') ?? '').split(';');
  const contentIdentifier = id.trim();
  const partInstance = parameter(params, 'instance') ?? '';
  if ((contentIdentifier === CONTENT_ID_PRIVATE_PARAMETERS || contentIdentifier === CONTENT_ID_SHARED_PARAMETERS) && !partInstance) {
    throw new XrdError('GlobalConfHeaderFieldMissingParameter', { instance, field: 'Content-identifier', parameter: 'instance' });
  }
  const contentFileName = part.headers.get('content-file-name')?.trim() || undefined;
  return {
    contentIdentifier,
    instance: partInstance,
    contentLocation,
    ...(contentFileName ? { contentFileName } : {}),
    hashAlgorithm,
    hash: Buffer.from(part.body.toString('latin1').replace(/\s+/g, ''), 'base64'),
  };
}

/** A header the part must have, with the value it must have when `expected` is given. */
function requireHeader(part: MimePart, field: string, instance: string, expected?: string): string {
  const value = part.headers.get(field.toLowerCase())?.trim();
  if (!value) throw new XrdError('GlobalConfHeaderFieldMissing', { instance, field });
  if (expected !== undefined && value.toLowerCase() !== expected) throw wrongValue(instance, field, value, `must be ${expected}`);
  return value;
}

/** A `name=value` parameter of a header, quotes (double or single) removed. */
function parameter(params: readonly string[], name: string): string | undefined {
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === name) return p.slice(eq + 1).trim().replace(/^(["'])(.*)\1$/, '$2') || undefined;
  }
  return undefined;
}

function wrongValue(instance: string, field: string, value: string, reason: string): XrdError {
  return new XrdError('GlobalConfHeaderFieldWrongValue', { instance, field, value, reason });
}
