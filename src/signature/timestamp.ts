/**
 * RFC 3161 timestamps (MESS_10): the request we send to a TSA the global configuration approves,
 * reading its response, and verifying a token against data and the approved TSA certificates —
 * the CMS signature over the signed attributes, the messageDigest attribute over the TSTInfo, and
 * the message imprint over the data.
 */
import { createHash, randomBytes, verify } from 'node:crypto';
import { certificateDerParts, oneLineName, x509Of } from '../certificates/certificate.ts';
import {
  DerError,
  TAG,
  childrenOf,
  content,
  contextTag,
  encodeOid,
  encodeTlv,
  encodeUnsignedInteger,
  expectTag,
  readOid,
  readTime,
  readTlv,
  whole,
  type Tlv,
} from '../certificates/der.ts';
import { XrdError } from '../platform/errors.ts';
import { fetchBounded } from '../platform/http-client.ts';

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  tstInfo: '1.2.840.113549.1.9.16.1.4',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
} as const;

export type DigestAlgorithm = 'sha256' | 'sha384' | 'sha512';

const DIGEST_OIDS: Record<string, DigestAlgorithm | 'sha1'> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const OID_OF_DIGEST: Record<DigestAlgorithm, string> = { sha256: '2.16.840.1.101.3.4.2.1', sha384: '2.16.840.1.101.3.4.2.2', sha512: '2.16.840.1.101.3.4.2.3' };

/** Signature algorithms a TSA may sign with: RSA PKCS#1 v1.5 and ECDSA. */
const SIGNATURE_OIDS: Record<string, { digest?: string }> = {
  '1.2.840.113549.1.1.1': {},
  '1.2.840.113549.1.1.5': { digest: 'sha1' },
  '1.2.840.113549.1.1.11': { digest: 'sha256' },
  '1.2.840.113549.1.1.12': { digest: 'sha384' },
  '1.2.840.113549.1.1.13': { digest: 'sha512' },
  '1.2.840.10045.4.3.2': { digest: 'sha256' },
  '1.2.840.10045.4.3.3': { digest: 'sha384' },
  '1.2.840.10045.4.3.4': { digest: 'sha512' },
};

/** A TimeStampReq for SHA-512 (or `digest`) of `data`, asking for the TSA's certificate. */
export function timestampRequest(data: Buffer, digest: DigestAlgorithm = 'sha512', nonce = randomBytes(8)): Buffer {
  const imprint = encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.SEQUENCE, encodeOid(OID_OF_DIGEST[digest]), encodeTlv(TAG.NULL, Buffer.alloc(0))), encodeTlv(TAG.OCTET_STRING, createHash(digest).update(data).digest()));
  return encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.INTEGER, Buffer.from([1])), imprint, encodeUnsignedInteger(nonce), encodeTlv(TAG.BOOLEAN, Buffer.from([0xff])));
}

/**
 * The timestamp token (CMS ContentInfo) of a TimeStampResp.
 * @throws TimestampingFailed when the TSA refused or the response cannot be read
 */
export function tokenOfResponse(response: Buffer): Buffer {
  try {
    const [status, token] = childrenOf(response, expectTag(readTlv(response, 0), TAG.SEQUENCE, 'TimeStampResp'));
    const fields = childrenOf(response, expectTag(status, TAG.SEQUENCE, 'PKIStatusInfo'));
    const code = content(response, expectTag(fields[0], TAG.INTEGER, 'PKIStatus'))[0];
    if (code !== 0 && code !== 1) {
      const text = fields.find((f) => f.tag === TAG.SEQUENCE);
      const reason = text ? childrenOf(response, text).map((t) => content(response, t).toString('utf8')).join('; ') : '';
      throw new XrdError('TimestampingFailed', { reason: `TSA refused the request (status ${code}${reason ? `: ${reason}` : ''})` });
    }
    if (!token) throw new DerError('granted response without a token');
    return Buffer.from(whole(response, token));
  } catch (err) {
    if (err instanceof XrdError) throw err;
    throw new XrdError('TimestampingFailed', { reason: `malformed TSA response: ${(err as Error).message}` }, { cause: err });
  }
}

export interface TimestampToken {
  readonly genTime: Date;
  readonly imprintAlgorithm: DigestAlgorithm | 'sha1';
  readonly imprint: Buffer;
  /** DER of the TSTInfo (the signed content). */
  readonly tstInfo: Buffer;
  readonly digestAlgorithm: string;
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
  /** DER of the signed attributes re-tagged as a SET (what the signature covers), or the TSTInfo. */
  readonly signedBytes: Buffer;
  /** The messageDigest attribute, when the token has signed attributes. */
  readonly messageDigest: Buffer | undefined;
  readonly contentType: string | undefined;
  /** DER of the signer's issuer Name and serialNumber INTEGER, when it is identified that way. */
  readonly signerIssuer: Buffer | undefined;
  readonly signerSerial: Buffer | undefined;
  readonly certificates: readonly Buffer[];
}

/** @throws TimestampValidation when the token is not a CMS SignedData over a TSTInfo */
export function parseTimestampToken(token: Buffer): TimestampToken {
  try {
    const [type, wrapped] = childrenOf(token, expectTag(readTlv(token, 0), TAG.SEQUENCE, 'ContentInfo'));
    if (readOid(token, type!) !== OID.signedData) throw new DerError('not a CMS SignedData');
    const signedData = childrenOf(token, expectTag(childrenOf(token, expectTag(wrapped, contextTag(0), '[0] content'))[0], TAG.SEQUENCE, 'SignedData'));
    const [, , encap, ...rest] = signedData;
    const [eType, eContent] = childrenOf(token, expectTag(encap, TAG.SEQUENCE, 'EncapsulatedContentInfo'));
    if (readOid(token, eType!) !== OID.tstInfo) throw new DerError('content is not a TSTInfo');
    const tstInfoTlv = expectTag(childrenOf(token, expectTag(eContent, contextTag(0), '[0] eContent'))[0], TAG.OCTET_STRING, 'eContent');
    const tstInfo = Buffer.from(content(token, tstInfoTlv));

    const certificates: Buffer[] = [];
    const certSet = rest.find((t) => t.tag === contextTag(0));
    if (certSet) for (const c of childrenOf(token, certSet)) if (c.tag === TAG.SEQUENCE) certificates.push(Buffer.from(whole(token, c)));
    const signerInfos = childrenOf(token, expectTag(rest[rest.length - 1], TAG.SET, 'SignerInfos'));
    if (signerInfos.length !== 1) throw new DerError(`expected one SignerInfo, found ${signerInfos.length}`);
    const si = childrenOf(token, signerInfos[0]!);
    const [, sid, digestAlg, maybeAttrs] = si;
    let i = 3;
    let signedAttrs: Tlv | undefined;
    if (maybeAttrs?.tag === contextTag(0)) {
      signedAttrs = maybeAttrs;
      i++;
    }
    const signatureAlg = si[i]!;
    const signature = content(token, expectTag(si[i + 1], TAG.OCTET_STRING, 'signature'));
    let signerIssuer: Buffer | undefined;
    let signerSerial: Buffer | undefined;
    if (sid?.tag === TAG.SEQUENCE) {
      const [issuer, serial] = childrenOf(token, sid);
      signerIssuer = Buffer.from(whole(token, issuer!));
      signerSerial = Buffer.from(whole(token, expectTag(serial, TAG.INTEGER, 'serialNumber')));
    }

    let messageDigest: Buffer | undefined;
    let contentType: string | undefined;
    let signedBytes = tstInfo;
    if (signedAttrs) {
      // The signature covers the attributes DER-encoded with the SET tag (RFC 5652 §5.4).
      signedBytes = Buffer.concat([Buffer.from([TAG.SET]), token.subarray(signedAttrs.start + 1, signedAttrs.end)]);
      for (const attr of childrenOf(token, signedAttrs)) {
        const [oid, values] = childrenOf(token, attr);
        const first = childrenOf(token, values!)[0]!;
        const id = readOid(token, oid!);
        if (id === OID.messageDigest) messageDigest = Buffer.from(content(token, first));
        else if (id === OID.contentType) contentType = readOid(token, first);
      }
    }

    const info = childrenOf(tstInfo, expectTag(readTlv(tstInfo, 0), TAG.SEQUENCE, 'TSTInfo'));
    const [imprintAlg, imprint] = childrenOf(tstInfo, expectTag(info[2], TAG.SEQUENCE, 'messageImprint'));
    const imprintAlgorithm = DIGEST_OIDS[readOid(tstInfo, childrenOf(tstInfo, imprintAlg!)[0]!)];
    if (!imprintAlgorithm) throw new DerError('unknown message imprint algorithm');
    return {
      genTime: readTime(tstInfo, expectTag(info[4], TAG.GENERALIZED_TIME, 'genTime')),
      imprintAlgorithm,
      imprint: Buffer.from(content(tstInfo, expectTag(imprint, TAG.OCTET_STRING, 'hashedMessage'))),
      tstInfo,
      digestAlgorithm: readOid(token, childrenOf(token, expectTag(digestAlg, TAG.SEQUENCE, 'digestAlgorithm'))[0]!),
      signatureAlgorithm: readOid(token, childrenOf(token, expectTag(signatureAlg, TAG.SEQUENCE, 'signatureAlgorithm'))[0]!),
      signature: Buffer.from(signature),
      signedBytes,
      messageDigest,
      contentType,
      signerIssuer,
      signerSerial,
      certificates,
    };
  } catch (err) {
    if (err instanceof XrdError) throw err;
    throw new XrdError('TimestampValidation', { reason: `malformed timestamp token: ${(err as Error).message}` }, { cause: err });
  }
}

export interface VerifiedTimestamp {
  readonly genTime: Date;
  readonly tsaCert: Buffer;
  readonly tsaSubject: string;
}

/**
 * Verifies that `token` stamps `data` and was signed by one of `tsaCerts` (the approved TSAs of the
 * global configuration), valid at the token's time.
 * @throws TimestampValidation
 */
export function verifyTimestamp(token: Buffer | TimestampToken, data: Buffer, tsaCerts: readonly Buffer[]): VerifiedTimestamp {
  const t = Buffer.isBuffer(token) ? parseTimestampToken(token) : token;
  const invalid = (reason: string) => new XrdError('TimestampValidation', { reason });
  if (!createHash(t.imprintAlgorithm).update(data).digest().equals(t.imprint)) throw invalid('message imprint does not match the timestamped data');

  const tsaCert = tsaCerts.find((der) => {
    if (!t.signerIssuer || !t.signerSerial) return t.certificates.some((c) => c.equals(der));
    const parts = certificateDerParts(der);
    return parts.issuerName.equals(t.signerIssuer) && parts.serialNumber.equals(t.signerSerial);
  });
  if (!tsaCert) throw invalid('the timestamp was not signed by a TSA the global configuration approves');

  const digest = DIGEST_OIDS[t.digestAlgorithm];
  const algorithm = SIGNATURE_OIDS[t.signatureAlgorithm];
  if (!digest || !algorithm) throw invalid(`unsupported algorithm ${digest ? t.signatureAlgorithm : t.digestAlgorithm}`);
  if (t.messageDigest) {
    if (t.contentType !== undefined && t.contentType !== OID.tstInfo) throw invalid('signed contentType is not TSTInfo');
    if (!createHash(digest).update(t.tstInfo).digest().equals(t.messageDigest)) throw invalid('messageDigest attribute does not match the TSTInfo');
  }
  const x509 = x509Of(tsaCert);
  if (!verify(algorithm.digest ?? digest, t.signedBytes, x509.publicKey, t.signature)) throw invalid('the TSA signature is not valid');
  if (t.genTime < new Date(x509.validFrom) || t.genTime > new Date(x509.validTo)) throw invalid(`TSA certificate is not valid at ${t.genTime.toISOString()}`);
  return { genTime: t.genTime, tsaCert, tsaSubject: oneLineName(x509.subject) };
}

export interface TimestampingService {
  readonly url: string;
  readonly cert: Buffer;
}

/**
 * Largest TSA response read: a response is a token of a few KiB (with the TSA's certificates, under
 * 20 KiB); past this the TSA is answering something else.
 */
export const TSA_MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Gets a timestamp token over `data` from the first of the TSAs (global configuration order) that
 * answers with a token that verifies. Each TSA has `timeoutMs` from connecting to the answer's last
 * byte and `maxBytes` for its answer (platform/http-client.ts).
 * @throws TimestampingFailed with every TSA's reason; its `cause` is the last TSA's error
 *   (ResponseTimeout, ResponseTooLarge, NetworkError, TimestampValidation, …)
 */
export async function requestTimestamp(tsas: readonly TimestampingService[], data: Buffer, timeoutMs = 20_000, maxBytes = TSA_MAX_RESPONSE_BYTES): Promise<Buffer> {
  if (tsas.length === 0) throw new XrdError('TimestampingFailed', { reason: 'No TSP service providers are configured.' });
  const reasons: string[] = [];
  let last: unknown;
  for (const tsa of tsas) {
    try {
      const query = timestampRequest(data);
      const answer = await fetchBounded(tsa.url, { method: 'POST', headers: { 'content-type': 'application/timestamp-query', 'content-length': query.length }, body: query, deadlineMs: timeoutMs, maxBytes });
      if (answer.status !== 200) throw new XrdError('NetworkError', { target: tsa.url, reason: `HTTP ${answer.status}` });
      const token = tokenOfResponse(answer.body);
      verifyTimestamp(token, data, [tsa.cert]);
      return token;
    } catch (err) {
      reasons.push(`${tsa.url}: ${(err as Error).message}`);
      last = err;
    }
  }
  throw new XrdError('TimestampingFailed', { reason: reasons.join('; ') }, { cause: last });
}
