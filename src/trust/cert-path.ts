/**
 * Certificate paths (MESS_12): from a certificate up to the top certificate of a CA the global
 * configuration approves, through intermediates from the configuration or supplied with a message;
 * then every link is checked: signature, validity at the given time, CA flag and keyCertSign of each
 * issuer, path length constraints.
 */
import { X509Certificate } from 'node:crypto';
import { basicConstraints, oneLineName, parseCertificate } from '../certificates/certificate.ts';
import type { ApprovedCa, GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';

export interface CertPath {
  /** From the certificate itself up to and including the approved CA's top certificate. */
  readonly certs: readonly Buffer[];
  readonly ca: ApprovedCa;
}

/** Longer chains than this are not built (X-Road deployments use one or two intermediates). */
const MAX_PATH_LENGTH = 8;

/**
 * @throws CannotCreateCertPath (no way up to an approved CA), InvalidCertPath (a broken link, an
 *   issuer that may not issue, a path length exceeded), CertValidityTime (a certificate outside its
 *   validity at `at`), IncorrectCertificate (not a certificate)
 */
export function buildCertPath(cert: Buffer, conf: GlobalConf, extra: readonly Buffer[] = [], at = new Date()): CertPath {
  const approved = [...conf.shared.values()].flatMap((p) => p.approvedCas);
  const intermediates = [...approved.flatMap((ca) => ca.intermediateCas.map((i) => i.cert)), ...extra];
  const leaf = parseCertificate(cert);
  const path: X509Certificate[] = [new X509Certificate(leaf.der)];
  const subject = leaf.subject;
  // An approved CA's own top certificate is its whole path (only its validity to check).
  const own = approved.find((c) => c.topCa.cert.equals(leaf.der));
  if (own) {
    checkPath(path, subject, at);
    return { certs: [leaf.der], ca: own };
  }

  for (;;) {
    const current = path[path.length - 1]!;
    const ca = approved.find((c) => current.checkIssued(new X509Certificate(c.topCa.cert)));
    if (ca) {
      path.push(new X509Certificate(ca.topCa.cert));
      checkPath(path, subject, at);
      return { certs: path.map((c) => c.raw), ca };
    }
    if (path.length >= MAX_PATH_LENGTH) throw new XrdError('CannotCreateCertPath', { subject, reason: `no approved CA within ${MAX_PATH_LENGTH} certificates` });
    const next = intermediates.map((i) => new X509Certificate(i)).find((i) => current.checkIssued(i) && !path.some((p) => p.raw.equals(i.raw)));
    if (!next) throw new XrdError('CannotCreateCertPath', { subject, reason: `no issuer found for "${oneLineName(current.subject)}" among the approved CAs and the certificates given` });
    path.push(next);
  }
}

function checkPath(path: readonly X509Certificate[], subject: string, at: Date): void {
  for (const cert of path) {
    if (at < new Date(cert.validFrom) || at > new Date(cert.validTo)) {
      throw new XrdError('CertValidityTime', { subject: oneLineName(cert.subject), at: at.toISOString(), notBefore: new Date(cert.validFrom).toISOString(), notAfter: new Date(cert.validTo).toISOString() });
    }
  }
  for (let i = 1; i < path.length; i++) {
    const child = path[i - 1]!;
    const issuer = path[i]!;
    if (!child.verify(issuer.publicKey)) throw new XrdError('InvalidCertPath', { subject, reason: `"${oneLineName(child.subject)}" is not signed by "${oneLineName(issuer.subject)}"` });
    const constraints = basicConstraints(issuer.raw);
    if (!constraints.ca) throw new XrdError('InvalidCertPath', { subject, reason: `"${oneLineName(issuer.subject)}" is not a CA certificate` });
    const usage = parseCertificate(issuer.raw).keyUsage;
    if (usage && !usage.includes('keyCertSign')) throw new XrdError('InvalidCertPath', { subject, reason: `"${oneLineName(issuer.subject)}" may not sign certificates (no keyCertSign)` });
    // Intermediate CA certificates below this issuer: path[1 .. i-1].
    if (constraints.pathLen !== undefined && i - 1 > constraints.pathLen) {
      throw new XrdError('InvalidCertPath', { subject, reason: `path length constraint ${constraints.pathLen} of "${oneLineName(issuer.subject)}" exceeded` });
    }
  }
}

