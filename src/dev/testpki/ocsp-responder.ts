/**
 * The test PKI's OCSP responder: answers RFC 6960 requests for the certificates of its CAs with good,
 * revoked or unknown, signed by the CA or a responder certificate it delegated (id-kp-OCSPSigning).
 * A nonce in the request is echoed, so that clients such as `openssl ocsp` are content.
 */
import { createHash, sign } from 'node:crypto';
import type { Server } from 'node:http';
import { certificateDerParts } from '../../certificates/certificate.ts';
import { TAG, childrenOf, content, contextTag, encodeGeneralizedTime, encodeOid, encodeTlv, expectTag, readOid, readTlv, whole } from '../../certificates/der.ts';
import type { Authority } from './certificate-authority.ts';
import { startPostServer } from './post-server.ts';

export type CertificateState = { status: 'good' } | { status: 'revoked'; revokedAt: Date };

export interface OcspResponderOptions {
  /**
   * The CAs this responder speaks for, each with what signs its responses: the CA itself or a
   * delegate with id-kp-OCSPSigning. A request is answered by the CA of its first certificate.
   */
  readonly authorities: readonly { readonly ca: Buffer; readonly signer: Authority }[];
  /** State by certificate serial number (lower-case hex, no leading zeros); others are unknown. */
  readonly states: (serialHex: string) => CertificateState | undefined;
  /** nextUpdate = thisUpdate + this; none when unset. */
  readonly validitySeconds?: number;
  readonly now?: () => Date;
}

const SHA256_WITH_RSA = encodeTlv(TAG.SEQUENCE, encodeOid('1.2.840.113549.1.1.11'), encodeTlv(TAG.NULL, Buffer.alloc(0)));
const HASHES: Record<string, string> = { '1.3.14.3.2.26': 'sha1', '2.16.840.1.101.3.4.2.1': 'sha256' };

/** The DER OCSPResponse for a DER OCSPRequest; malformed requests get status malformedRequest. */
export function answerOcspRequest(request: Buffer, options: OcspResponderOptions): Buffer {
  let certIds: Buffer[];
  let extensions: Buffer | undefined;
  try {
    const tbs = childrenOf(request, expectTag(childrenOf(request, expectTag(readTlv(request, 0), TAG.SEQUENCE, 'OCSPRequest'))[0], TAG.SEQUENCE, 'TBSRequest'));
    const list = tbs.find((t) => t.tag === TAG.SEQUENCE)!;
    certIds = childrenOf(request, list).map((r) => whole(request, expectTag(childrenOf(request, r)[0], TAG.SEQUENCE, 'CertID')));
    const ext = tbs.find((t) => t.tag === contextTag(2));
    extensions = ext && whole(request, childrenOf(request, ext)[0]!);
  } catch {
    return encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.ENUMERATED, Buffer.from([1])));
  }
  const now = options.now?.() ?? new Date();
  const authorities = options.authorities.map((a) => ({ ...a, parts: certificateDerParts(a.ca) }));
  const authority = authorities.find((a) => certIds[0] !== undefined && issuedBy(certIds[0], a.parts)) ?? authorities[0]!;
  const responses = certIds.map((certId) => singleResponse(certId, authority.parts, options, now));
  const responseData = encodeTlv(
    TAG.SEQUENCE,
    encodeTlv(contextTag(1), certificateDerParts(authority.signer.cert).subjectName),
    encodeGeneralizedTime(now),
    encodeTlv(TAG.SEQUENCE, ...responses),
    ...(extensions ? [encodeTlv(contextTag(1), extensions)] : []),
  );
  const basic = encodeTlv(
    TAG.SEQUENCE,
    responseData,
    SHA256_WITH_RSA,
    encodeTlv(TAG.BIT_STRING, Buffer.from([0]), sign('sha256', responseData, authority.signer.privateKey)),
    encodeTlv(contextTag(0), encodeTlv(TAG.SEQUENCE, authority.signer.cert)),
  );
  return encodeTlv(
    TAG.SEQUENCE,
    encodeTlv(TAG.ENUMERATED, Buffer.from([0])),
    encodeTlv(contextTag(0), encodeTlv(TAG.SEQUENCE, encodeOid('1.3.6.1.5.5.7.48.1.1'), encodeTlv(TAG.OCTET_STRING, basic))),
  );
}

/** Whether the CertID names a certificate issued by this CA (by the hashes of its name and key). */
function issuedBy(certId: Buffer, ca: ReturnType<typeof certificateDerParts>): boolean {
  const [alg, nameHash, keyHash] = childrenOf(certId, readTlv(certId, 0));
  const hash = HASHES[readOid(certId, childrenOf(certId, alg!)[0]!)];
  return (
    hash !== undefined &&
    content(certId, nameHash!).equals(createHash(hash).update(ca.subjectName).digest()) &&
    content(certId, keyHash!).equals(createHash(hash).update(ca.publicKeyBits).digest())
  );
}

function singleResponse(certId: Buffer, ca: ReturnType<typeof certificateDerParts>, options: OcspResponderOptions, now: Date): Buffer {
  const serial = childrenOf(certId, readTlv(certId, 0))[3]!;
  const serialHex = content(certId, serial).toString('hex').replace(/^0+(?=.)/, '');
  const state = issuedBy(certId, ca) ? options.states(serialHex) : undefined;
  const status =
    state?.status === 'good'
      ? encodeTlv(0x80, Buffer.alloc(0))
      : state?.status === 'revoked'
        ? encodeTlv(contextTag(1), encodeGeneralizedTime(state.revokedAt))
        : encodeTlv(0x82, Buffer.alloc(0));
  const next = options.validitySeconds === undefined ? [] : [encodeTlv(contextTag(0), encodeGeneralizedTime(new Date(now.getTime() + options.validitySeconds * 1000)))];
  return encodeTlv(TAG.SEQUENCE, certId, status, encodeGeneralizedTime(now), ...next);
}

/** Serves `answerOcspRequest` over HTTP POST on host:port (127.0.0.1 in tests and local instances). */
export function startOcspResponder(options: OcspResponderOptions, host: string, port: number): Promise<Server> {
  return startPostServer((body) => answerOcspRequest(body, options), 'application/ocsp-response', host, port);
}
