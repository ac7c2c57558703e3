/**
 * The test PKI's RFC 3161 timestamping authority: answers a TimeStampReq with a TimeStampResp whose
 * token is a CMS SignedData over a TSTInfo, signed (SHA-256 with RSA) with the ESS
 * signingCertificateV2 attribute that `openssl ts -verify` and the X-Road verifier look for.
 */
import { createHash, randomBytes, sign } from 'node:crypto';
import type { Server } from 'node:http';
import { certificateDerParts } from '../../certificates/certificate.ts';
import { TAG, childrenOf, contextTag, encodeGeneralizedTime, encodeOid, encodeTlv, encodeUnsignedInteger, expectTag, readTlv, whole } from '../../certificates/der.ts';
import type { Authority } from './certificate-authority.ts';
import { startPostServer } from './post-server.ts';

export interface TimestampAuthorityOptions {
  /** Its certificate must carry a critical extendedKeyUsage of id-kp-timeStamping only. */
  readonly tsa: Authority;
  /** Policy OID put into tokens when the request names none. */
  readonly policy?: string;
  readonly now?: () => Date;
}

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  tstInfo: '1.2.840.113549.1.9.16.1.4',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
} as const;

const DEFAULT_POLICY = '1.3.6.1.4.1.18.1.1';
const algorithm = (oid: string): Buffer => encodeTlv(TAG.SEQUENCE, encodeOid(oid), encodeTlv(TAG.NULL, Buffer.alloc(0)));
const attribute = (oid: string, value: Buffer): Buffer => encodeTlv(TAG.SEQUENCE, encodeOid(oid), encodeTlv(TAG.SET, value));

/** PKIStatus rejection (2) with failInfo badDataFormat, for requests that cannot be read. */
const REJECTION = encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.INTEGER, Buffer.from([2])), encodeTlv(TAG.BIT_STRING, Buffer.from([2, 0x20]))));

/** The DER TimeStampResp for a DER TimeStampReq. */
export function answerTimestampRequest(request: Buffer, options: TimestampAuthorityOptions): Buffer {
  let imprint: Buffer;
  let policy: Buffer | undefined;
  let nonce: Buffer | undefined;
  let certReq = false;
  try {
    const [version, messageImprint, ...rest] = childrenOf(request, expectTag(readTlv(request, 0), TAG.SEQUENCE, 'TimeStampReq'));
    expectTag(version, TAG.INTEGER, 'version');
    imprint = whole(request, expectTag(messageImprint, TAG.SEQUENCE, 'messageImprint'));
    for (const field of rest) {
      if (field.tag === TAG.OID) policy = whole(request, field);
      else if (field.tag === TAG.INTEGER) nonce = whole(request, field);
      else if (field.tag === TAG.BOOLEAN) certReq = request[field.contentStart] !== 0;
    }
  } catch {
    return REJECTION;
  }
  const tsaCert = options.tsa.cert;
  const tstInfo = encodeTlv(
    TAG.SEQUENCE,
    encodeTlv(TAG.INTEGER, Buffer.from([1])),
    policy ?? encodeOid(options.policy ?? DEFAULT_POLICY),
    imprint,
    encodeUnsignedInteger(randomBytes(12)),
    encodeGeneralizedTime(options.now?.() ?? new Date()),
    ...(nonce ? [nonce] : []),
  );
  // DER orders the members of a SET by their encodings.
  const attributes = [
    attribute(OID.contentType, encodeOid(OID.tstInfo)),
    attribute(OID.messageDigest, encodeTlv(TAG.OCTET_STRING, createHash('sha256').update(tstInfo).digest())),
    attribute(OID.signingCertificateV2, encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.OCTET_STRING, createHash('sha256').update(tsaCert).digest()))))),
  ].sort(Buffer.compare);
  const signature = sign('sha256', encodeTlv(TAG.SET, ...attributes), options.tsa.privateKey);
  const parts = certificateDerParts(tsaCert);
  const signerInfo = encodeTlv(
    TAG.SEQUENCE,
    encodeTlv(TAG.INTEGER, Buffer.from([1])),
    encodeTlv(TAG.SEQUENCE, parts.issuerName, parts.serialNumber),
    algorithm(OID.sha256),
    encodeTlv(contextTag(0), ...attributes),
    algorithm(OID.rsaEncryption),
    encodeTlv(TAG.OCTET_STRING, signature),
  );
  const signedData = encodeTlv(
    TAG.SEQUENCE,
    encodeTlv(TAG.INTEGER, Buffer.from([3])),
    encodeTlv(TAG.SET, algorithm(OID.sha256)),
    encodeTlv(TAG.SEQUENCE, encodeOid(OID.tstInfo), encodeTlv(contextTag(0), encodeTlv(TAG.OCTET_STRING, tstInfo))),
    ...(certReq ? [encodeTlv(contextTag(0), tsaCert)] : []),
    encodeTlv(TAG.SET, signerInfo),
  );
  const token = encodeTlv(TAG.SEQUENCE, encodeOid(OID.signedData), encodeTlv(contextTag(0), signedData));
  return encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.INTEGER, Buffer.from([0]))), token);
}

/** Serves `answerTimestampRequest` over HTTP POST (application/timestamp-query → -reply). */
export function startTimestampAuthority(options: TimestampAuthorityOptions, host: string, port: number): Promise<Server> {
  return startPostServer((body) => answerTimestampRequest(body, options), 'application/timestamp-reply', host, port);
}
