/**
 * OCSP response validation in the reference's order (OcspVerifier, facts §5): the response applies
 * to the certificate → its responder certificate is found → the signature holds → the responder is
 * authorised for the CA → thisUpdate is fresh → nextUpdate has not passed → the status is good.
 * Each failure is a coded error carrying the reference's text.
 */
import { X509Certificate, createHash, verify } from 'node:crypto';
import { certificateDerParts, x509Of } from '../certificates/certificate.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { certIdOf, parseOcspResponse, sameCertId, type BasicOcspResponse, type SingleResponse } from './ocsp.ts';

export interface OcspPolicy {
  /** OCSP responders the configuration lists for the issuing CA, in order. */
  readonly responderUrls?: readonly string[];
  /** OCSP responder certificates the configuration lists for the issuing CA. */
  readonly responderCerts: readonly Buffer[];
  /** How old thisUpdate may be (shared parameters' ocspFreshnessSeconds). */
  readonly freshnessSeconds: number;
  /** Whether a passed nextUpdate fails the response (the reference's default: yes). */
  readonly verifyNextUpdate?: boolean;
}

const EKU_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';

/** Node's digest name for each signature algorithm OCSP responders use. */
const SIGNATURE_DIGESTS: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/** The policy the global configuration sets for certificates issued by `issuer`. */
export function ocspPolicyFor(conf: GlobalConf, issuer: Buffer): OcspPolicy {
  for (const params of conf.shared.values()) {
    for (const ca of params.approvedCas) {
      const entry = [ca.topCa, ...ca.intermediateCas].find((c) => c.cert.equals(issuer));
      if (entry) {
        return { responderUrls: entry.ocsp.map((o) => o.url), responderCerts: entry.ocsp.flatMap((o) => (o.cert ? [o.cert] : [])), freshnessSeconds: params.ocspFreshnessSeconds };
      }
    }
  }
  return { responderUrls: [], responderCerts: [], freshnessSeconds: conf.own.ocspFreshnessSeconds };
}

/**
 * Validates an OCSP response for `subject` issued by `issuer` (DER) at time `at`.
 * @returns the matching single response (status good)
 * @throws IncorrectValidationInfo (does not apply, responder not found, bad signature, not
 *   authorised, too old, malformed), CertValidation (status revoked or unknown)
 */
export function verifyOcspResponse(response: Buffer | BasicOcspResponse, subject: Buffer, issuer: Buffer, at: Date, policy: OcspPolicy): SingleResponse {
  const basic = Buffer.isBuffer(response) ? parseOcspResponse(response) : response;
  const invalid = (reason: string) => new XrdError('IncorrectValidationInfo', { reason });

  const single = basic.responses.find((r) => sameCertId(r.certId, certIdOf(subject, issuer, r.certId.hashAlgorithm)));
  if (!single) throw invalid(`OCSP response does not apply to certificate (sn = ${new X509Certificate(subject).serialNumber})`);

  const responder = findResponder(basic, [...policy.responderCerts, issuer, ...basic.certs]);
  if (!responder) throw invalid('Could not find OCSP responder certificate');

  if (!signatureHolds(basic, responder)) throw invalid('Signature on OCSP response is not valid');

  if (!isAuthorised(responder, issuer, policy)) throw invalid('OCSP responder is not authorized for given CA');

  if (at.getTime() - single.thisUpdate.getTime() > policy.freshnessSeconds * 1000) {
    throw invalid(`OCSP response is too old (thisUpdate: ${single.thisUpdate.toISOString()})`);
  }
  if ((policy.verifyNextUpdate ?? true) && single.nextUpdate && single.nextUpdate.getTime() < at.getTime()) {
    throw invalid(`OCSP response is too old (nextUpdate: ${single.nextUpdate.toISOString()})`);
  }

  if (single.certStatus.status === 'revoked') {
    throw new XrdError('CertValidation', { reason: `OCSP response indicates certificate status is REVOKED (date: ${single.certStatus.revokedAt.toISOString()})` });
  }
  if (single.certStatus.status === 'unknown') throw new XrdError('CertValidation', { reason: 'OCSP response indicates certificate status is UNKNOWN' });
  return single;
}

function findResponder(basic: BasicOcspResponse, candidates: readonly Buffer[]): Buffer | undefined {
  const id = basic.responderId;
  return candidates.find((cert) => {
    let parts;
    try {
      parts = certificateDerParts(cert);
    } catch {
      // A broken certificate inside the response cannot be the responder; the others may be.
      return false;
    }
    return 'byName' in id ? parts.subjectName.equals(id.byName) : createHash('sha1').update(parts.publicKeyBits).digest().equals(id.byKey);
  });
}

/**
 * Whether the responder's key made the response's signature. The same response travels with every
 * message its certificate signs, and the signature costs most of a validation, so outcomes are kept
 * (bounded, keyed by the content hash of everything the check reads); the checks that depend on time
 * are made every time.
 */
function signatureHolds(basic: BasicOcspResponse, responder: Buffer): boolean {
  const digest = SIGNATURE_DIGESTS[basic.signatureAlgorithm];
  if (!digest) return false;
  const key = createHash('sha256').update(basic.signatureAlgorithm).update('\0').update(basic.tbsResponseData).update(basic.signature).update(responder).digest('base64');
  let holds = signatures.get(key);
  if (holds === undefined) {
    holds = verify(digest, basic.tbsResponseData, x509Of(responder).publicKey, basic.signature);
    if (signatures.size >= CACHE_LIMIT) signatures.delete(signatures.keys().next().value!);
    signatures.set(key, holds);
  }
  return holds;
}

/** The CA itself, a responder the configuration names, or one the CA delegated with id-kp-OCSPSigning. */
function isAuthorised(responder: Buffer, issuer: Buffer, policy: OcspPolicy): boolean {
  if (responder.equals(issuer) || policy.responderCerts.some((c) => c.equals(responder))) return true;
  const key = `${certKey(responder)}:${certKey(issuer)}`;
  let delegated = delegations.get(key);
  if (delegated === undefined) {
    const delegate = x509Of(responder);
    const ca = x509Of(issuer);
    delegated = delegate.checkIssued(ca) && delegate.verify(ca.publicKey) && (delegate.keyUsage ?? []).includes(EKU_OCSP_SIGNING);
    remember(key, delegated);
  }
  return delegated;
}

// Responders and CAs repeat from one response to the next: checking a delegation costs more than
// the rest of a validation, so results are kept (bounded, by content hash), as parsed certificates are.
const CACHE_LIMIT = 256;
const delegations = new Map<string, boolean>();
const signatures = new Map<string, boolean>();

const certKey = (der: Buffer): string => createHash('sha256').update(der).digest('base64');

function remember(key: string, delegated: boolean): void {
  if (delegations.size >= CACHE_LIMIT) delegations.delete(delegations.keys().next().value!);
  delegations.set(key, delegated);
}
