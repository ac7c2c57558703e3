/**
 * OCSP messages (RFC 6960) as X-Road uses them (facts §5): requests with a SHA-1 CertID and no
 * nonce, and basic responses parsed in place with the DER reader, so that the signed
 * tbsResponseData is checked byte for byte with Node's crypto.
 */
import { createHash } from 'node:crypto';
import { certificateDerParts } from '../certificates/certificate.ts';
import { DerError, TAG, childrenOf, content, contextTag, encodeOid, encodeTlv, expectTag, readOid, readTime, readTlv, whole, type Tlv } from '../certificates/der.ts';
import { XrdError } from '../platform/errors.ts';

const OID_SHA1 = '1.3.14.3.2.26';
const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
const OID_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const HASH_OF_OID: Record<string, 'sha1' | 'sha256'> = { [OID_SHA1]: 'sha1', [OID_SHA256]: 'sha256' };

export type CertStatus = { status: 'good' } | { status: 'revoked'; revokedAt: Date } | { status: 'unknown' };

export interface CertId {
  readonly hashAlgorithm: 'sha1' | 'sha256';
  readonly issuerNameHash: Buffer;
  readonly issuerKeyHash: Buffer;
  /** DER of the serialNumber INTEGER. */
  readonly serialNumber: Buffer;
}

export interface SingleResponse {
  readonly certId: CertId;
  readonly certStatus: CertStatus;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
}

export interface BasicOcspResponse {
  /** The DER the signature covers. */
  readonly tbsResponseData: Buffer;
  readonly responderId: { byName: Buffer } | { byKey: Buffer };
  readonly producedAt: Date;
  readonly responses: readonly SingleResponse[];
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
  /** DER certificates the responder included. */
  readonly certs: readonly Buffer[];
}

/** The CertID of `subject` as issued by `issuer` (both DER). */
export function certIdOf(subject: Buffer, issuer: Buffer, hashAlgorithm: 'sha1' | 'sha256' = 'sha1'): CertId {
  const issuerParts = certificateDerParts(issuer);
  return {
    hashAlgorithm,
    issuerNameHash: createHash(hashAlgorithm).update(issuerParts.subjectName).digest(),
    issuerKeyHash: createHash(hashAlgorithm).update(issuerParts.publicKeyBits).digest(),
    serialNumber: certificateDerParts(subject).serialNumber,
  };
}

export function sameCertId(a: CertId, b: CertId): boolean {
  return a.hashAlgorithm === b.hashAlgorithm && a.issuerNameHash.equals(b.issuerNameHash) && a.issuerKeyHash.equals(b.issuerKeyHash) && a.serialNumber.equals(b.serialNumber);
}

/** An OCSP request for these certificates: SHA-1 CertIDs, unsigned, no nonce (as X-Road sends). */
export function encodeOcspRequest(certIds: readonly CertId[]): Buffer {
  const requests = certIds.map((id) =>
    encodeTlv(
      TAG.SEQUENCE,
      encodeTlv(
        TAG.SEQUENCE,
        encodeTlv(TAG.SEQUENCE, encodeOid(id.hashAlgorithm === 'sha1' ? OID_SHA1 : OID_SHA256), encodeTlv(TAG.NULL, Buffer.alloc(0))),
        encodeTlv(TAG.OCTET_STRING, id.issuerNameHash),
        encodeTlv(TAG.OCTET_STRING, id.issuerKeyHash),
        id.serialNumber,
      ),
    ),
  );
  return encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.SEQUENCE, ...requests)));
}

/**
 * Parses an OCSPResponse whose status is `successful` and type basic.
 * @throws IncorrectValidationInfo for anything else or for malformed DER
 */
export function parseOcspResponse(der: Buffer): BasicOcspResponse {
  try {
    const top = childrenOf(der, expectTag(readTlv(der, 0), TAG.SEQUENCE, 'OCSPResponse'));
    const status = content(der, expectTag(top[0], TAG.ENUMERATED, 'responseStatus'))[0];
    if (status !== 0) throw new XrdError('IncorrectValidationInfo', { reason: `OCSP responder answered with status ${OCSP_STATUS[status ?? -1] ?? status}` });
    const responseBytes = childrenOf(der, expectTag(childrenOf(der, expectTag(top[1], contextTag(0), 'responseBytes'))[0], TAG.SEQUENCE, 'ResponseBytes'));
    const type = readOid(der, responseBytes[0]!);
    if (type !== OID_OCSP_BASIC) throw new XrdError('IncorrectValidationInfo', { reason: `OCSP response type ${type} is not basic` });
    const basicDer = content(der, expectTag(responseBytes[1], TAG.OCTET_STRING, 'response'));
    return parseBasic(basicDer);
  } catch (err) {
    if (err instanceof XrdError) throw err;
    throw new XrdError('IncorrectValidationInfo', { reason: `Malformed OCSP response: ${(err as Error).message}` }, { cause: err });
  }
}

const OCSP_STATUS: Record<number, string> = { 1: 'malformedRequest', 2: 'internalError', 3: 'tryLater', 5: 'sigRequired', 6: 'unauthorized' };

function parseBasic(der: Buffer): BasicOcspResponse {
  const [tbs, sigAlg, sig, certsWrapper] = childrenOf(der, expectTag(readTlv(der, 0), TAG.SEQUENCE, 'BasicOCSPResponse'));
  let fields = childrenOf(der, expectTag(tbs, TAG.SEQUENCE, 'ResponseData'));
  if (fields[0]?.tag === contextTag(0)) fields = fields.slice(1);
  const [responder, producedAt, responses] = fields;
  let responderId: BasicOcspResponse['responderId'];
  if (responder?.tag === contextTag(1)) responderId = { byName: whole(der, childrenOf(der, responder)[0]!) };
  else if (responder?.tag === contextTag(2)) responderId = { byKey: content(der, expectTag(childrenOf(der, responder)[0], TAG.OCTET_STRING, 'KeyHash')) };
  else throw new DerError('expected ResponderID');
  const signatureBits = expectTag(sig, TAG.BIT_STRING, 'signature');
  const certs = certsWrapper?.tag === contextTag(0) ? childrenOf(der, expectTag(childrenOf(der, certsWrapper)[0], TAG.SEQUENCE, 'certs')).map((c) => whole(der, c)) : [];
  return {
    tbsResponseData: whole(der, tbs!),
    responderId,
    producedAt: readTime(der, expectTag(producedAt, TAG.GENERALIZED_TIME, 'producedAt')),
    responses: childrenOf(der, expectTag(responses, TAG.SEQUENCE, 'responses')).map((r) => parseSingle(der, r)),
    signatureAlgorithm: readOid(der, childrenOf(der, expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm'))[0]!),
    signature: der.subarray(signatureBits.contentStart + 1, signatureBits.end),
    certs,
  };
}

function parseSingle(der: Buffer, single: Tlv): SingleResponse {
  const [certId, status, thisUpdate, ...rest] = childrenOf(der, expectTag(single, TAG.SEQUENCE, 'SingleResponse'));
  const [alg, nameHash, keyHash, serial] = childrenOf(der, expectTag(certId, TAG.SEQUENCE, 'CertID'));
  const hashOid = readOid(der, childrenOf(der, expectTag(alg, TAG.SEQUENCE, 'hashAlgorithm'))[0]!);
  const hashAlgorithm = HASH_OF_OID[hashOid];
  if (!hashAlgorithm) throw new DerError(`CertID hash algorithm ${hashOid} is not supported`);
  let certStatus: CertStatus;
  if (status?.tag === 0x80) certStatus = { status: 'good' };
  else if (status?.tag === contextTag(1)) certStatus = { status: 'revoked', revokedAt: readTime(der, childrenOf(der, status)[0]!) };
  else if (status?.tag === 0x82) certStatus = { status: 'unknown' };
  else throw new DerError('expected CertStatus');
  const next = rest.find((t) => t.tag === contextTag(0));
  return {
    certId: {
      hashAlgorithm,
      issuerNameHash: content(der, expectTag(nameHash, TAG.OCTET_STRING, 'issuerNameHash')),
      issuerKeyHash: content(der, expectTag(keyHash, TAG.OCTET_STRING, 'issuerKeyHash')),
      serialNumber: whole(der, expectTag(serial, TAG.INTEGER, 'serialNumber')),
    },
    certStatus,
    thisUpdate: readTime(der, expectTag(thisUpdate, TAG.GENERALIZED_TIME, 'thisUpdate')),
    nextUpdate: next ? readTime(der, childrenOf(der, next)[0]!) : undefined,
  };
}
