/**
 * Certificate paths (MESS_12): from a certificate up to the top certificate of a CA the global
 * configuration approves, through intermediates from the configuration or supplied with a message;
 * then every link is checked: signature, validity at the given time, CA flag and keyCertSign of each
 * issuer, path length constraints.
 *
 * The proxies check the same few certificates against the same configuration for every message, and
 * parsing a certificate costs more than all the rest of a check. So the configuration's CA
 * certificates are parsed once per GlobalConf object (a new configuration is a new object, so it is
 * seen at once), and the path found for a certificate — with the outcome of its link checks, which do
 * not depend on time — is kept with that configuration. Validity at `at` is checked on every call.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { basicConstraints, oneLineName, parseCertificate, x509Of } from '../certificates/certificate.ts';
import type { ApprovedCa, GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError, type ErrorCode, type ErrorDetails } from '../platform/errors.ts';

export interface CertPath {
  /** From the certificate itself up to and including the approved CA's top certificate. */
  readonly certs: readonly Buffer[];
  readonly ca: ApprovedCa;
}

/** Longer chains than this are not built (X-Road deployments use one or two intermediates). */
const MAX_PATH_LENGTH = 8;
/** Paths kept per configuration; a security server sees few distinct certificates. */
const PATHS_PER_CONF = 1024;

/**
 * @throws CannotCreateCertPath (no way up to an approved CA), InvalidCertPath (a broken link, an
 *   issuer that may not issue, a path length exceeded), CertValidityTime (a certificate outside its
 *   validity at `at`), IncorrectCertificate (not a certificate)
 */
export function buildCertPath(cert: Buffer, conf: GlobalConf, extra: readonly Buffer[] = [], at = new Date()): CertPath {
  const index = indexOf(conf);
  const key = [cert, ...extra].map(digest).join(':');
  let found = index.paths.get(key);
  if (!found) {
    found = findPath(cert, index, extra);
    if (index.paths.size >= PATHS_PER_CONF) index.paths.delete(index.paths.keys().next().value!);
    index.paths.set(key, found);
  }
  // Validity first (as before a broken link); a certificate without a path has none to check.
  const time = at.getTime();
  for (const v of found.validity ?? []) {
    if (time < v.notBefore || time > v.notAfter) {
      throw new XrdError('CertValidityTime', { subject: v.subject, at: at.toISOString(), notBefore: new Date(v.notBefore).toISOString(), notAfter: new Date(v.notAfter).toISOString() });
    }
  }
  if ('failure' in found) throw failure(found.failure);
  return found.path;
}

interface Validity {
  readonly subject: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

interface Failure {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
}

/** What does not depend on time: the path and its links' outcome (a broken link, or none). */
type Found = { readonly path: CertPath; readonly validity: readonly Validity[] } | { readonly failure: Failure; readonly validity?: readonly Validity[] };

interface ConfIndex {
  readonly approved: readonly { readonly ca: ApprovedCa; readonly top: X509Certificate }[];
  readonly intermediates: readonly X509Certificate[];
  readonly paths: Map<string, Found>;
}

const indexes = new WeakMap<GlobalConf, ConfIndex>();

function indexOf(conf: GlobalConf): ConfIndex {
  let index = indexes.get(conf);
  if (!index) {
    const cas = [...conf.shared.values()].flatMap((p) => p.approvedCas);
    index = {
      approved: cas.map((ca) => ({ ca, top: new X509Certificate(ca.topCa.cert) })),
      intermediates: cas.flatMap((ca) => ca.intermediateCas.map((i) => new X509Certificate(i.cert))),
      paths: new Map(),
    };
    indexes.set(conf, index);
  }
  return index;
}

function findPath(cert: Buffer, index: ConfIndex, extra: readonly Buffer[]): Found {
  const leaf = parsed(cert);
  const subject = oneLineName(leaf.subject);
  const path: X509Certificate[] = [leaf];
  // An approved CA's own top certificate is its whole path (only its validity to check).
  const own = index.approved.find((c) => c.top.raw.equals(leaf.raw));
  if (own) return { path: { certs: [leaf.raw], ca: own.ca }, validity: path.map(validityOf) };

  const candidates = [...index.intermediates, ...extra.map(parsed)];
  for (;;) {
    const current = path[path.length - 1]!;
    const approved = index.approved.find((c) => current.checkIssued(c.top));
    if (approved) {
      path.push(approved.top);
      const validity = path.map(validityOf);
      const broken = brokenLink(path, subject);
      return broken ? { failure: broken, validity } : { path: { certs: path.map((c) => c.raw), ca: approved.ca }, validity };
    }
    if (path.length >= MAX_PATH_LENGTH) return { failure: { code: 'CannotCreateCertPath', details: { subject, reason: `no approved CA within ${MAX_PATH_LENGTH} certificates` } } };
    const next = candidates.find((i) => current.checkIssued(i) && !path.some((p) => p.raw.equals(i.raw)));
    if (!next) return { failure: { code: 'CannotCreateCertPath', details: { subject, reason: `no issuer found for "${oneLineName(current.subject)}" among the approved CAs and the certificates given` } } };
    path.push(next);
  }
}

/** @throws IncorrectCertificate */
function parsed(der: Buffer): X509Certificate {
  try {
    return x509Of(der);
  } catch (err) {
    throw new XrdError('IncorrectCertificate', { reason: `cannot parse certificate: ${(err as Error).message}` }, { cause: err });
  }
}

function validityOf(cert: X509Certificate): Validity {
  return { subject: oneLineName(cert.subject), notBefore: new Date(cert.validFrom).getTime(), notAfter: new Date(cert.validTo).getTime() };
}

/** The first broken link of a path, in the order the checks were always made; undefined when none. */
function brokenLink(path: readonly X509Certificate[], subject: string): Failure | undefined {
  const invalid = (reason: string): Failure => ({ code: 'InvalidCertPath', details: { subject, reason } });
  for (let i = 1; i < path.length; i++) {
    const child = path[i - 1]!;
    const issuer = path[i]!;
    if (!signedBy(child, issuer)) return invalid(`"${oneLineName(child.subject)}" is not signed by "${oneLineName(issuer.subject)}"`);
    const constraints = basicConstraints(issuer.raw);
    if (!constraints.ca) return invalid(`"${oneLineName(issuer.subject)}" is not a CA certificate`);
    const usage = parseCertificate(issuer.raw).keyUsage;
    if (usage && !usage.includes('keyCertSign')) return invalid(`"${oneLineName(issuer.subject)}" may not sign certificates (no keyCertSign)`);
    // Intermediate CA certificates below this issuer: path[1 .. i-1].
    if (constraints.pathLen !== undefined && i - 1 > constraints.pathLen) {
      return invalid(`path length constraint ${constraints.pathLen} of "${oneLineName(issuer.subject)}" exceeded`);
    }
  }
  return undefined;
}

// A link's signature holds or not whatever the configuration: kept across configurations (bounded,
// by both certificates' content hashes), so a new configuration does not verify every link again.
const LINKS_LIMIT = 1024;
const links = new Map<string, boolean>();

function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  const key = `${digest(child.raw)}:${digest(issuer.raw)}`;
  let valid = links.get(key);
  if (valid === undefined) {
    valid = child.verify(issuer.publicKey);
    if (links.size >= LINKS_LIMIT) links.delete(links.keys().next().value!);
    links.set(key, valid);
  }
  return valid;
}

const digest = (der: Buffer): string => createHash('sha256').update(der).digest('base64');

function failure(f: Failure): XrdError {
  return new XrdError(f.code, f.details);
}
