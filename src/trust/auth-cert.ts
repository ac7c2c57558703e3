/**
 * The peer's authentication certificate after a TLS handshake between security servers (MESS_05–07):
 * the client proxy checks the provider's server, the server proxy the client's. The certificate must
 * be an authentication certificate, issued by a CA the global configuration approves, with a valid
 * path and a good OCSP response for every certificate of the path but the CA's top one, and
 * registered in the global configuration for a security server that serves the party the peer acts
 * for (the service provider, or the request's client). Errors are SslAuthenticationFailed, with the
 * reference's texts, or the path's and OCSP's own codes reported under it.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { parseCertificate, x509Of } from '../certificates/certificate.ts';
import type { GlobalConf, SecurityServer } from '../globalconf/global-conf.ts';
import { XrdError, type ErrorCode, type ErrorDetails, type FaultPrefix } from '../platform/errors.ts';
import { formatSecurityServerId, javaClientId, javaServerId, sameClientId, type ClientId, type SecurityServerId } from '../protocol/identifiers.ts';
import { buildCertPath, type CertPath } from './cert-path.ts';
import { certIdOf, parseOcspResponse, sameCertId, type BasicOcspResponse } from './ocsp.ts';
import { ocspPolicyFor, verifyOcspResponse } from './ocsp-verifier.ts';

export interface AuthCertCheck {
  readonly conf: GlobalConf;
  /**
   * The peer's certificates, its own first (`peerCertificateChain` of the TLS socket); undefined
   * when the session has none to give.
   */
  readonly chain: readonly Buffer[] | undefined;
  /** Client side (MESS_05): the service provider the request goes to. */
  readonly serviceProvider?: ClientId;
  /** Server side (MESS_06): the client the request names. */
  readonly client?: ClientId;
  /** When the peer must be one particular security server (optional). */
  readonly expectedServer?: SecurityServerId;
  /** OCSP responses (DER) for the certificates of the path below the CA's top certificate, any order. */
  readonly ocspResponses: readonly Buffer[];
  /** When the path and OCSP responses must be valid; now by default. */
  readonly at?: Date;
}

export interface AuthenticatedPeer {
  /** The registered security server the certificate belongs to. */
  readonly serverId: SecurityServerId;
  readonly server: SecurityServer;
  /** DER of the peer's authentication certificate. */
  readonly authCert: Buffer;
  readonly path: CertPath;
  /** The earliest time anything checked stops being valid (a certificate's notAfter, an OCSP nextUpdate). */
  readonly validUntil: Date;
}

const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export const AUTH_TEXTS = {
  noUsableCert: 'Service provider did not send correct authentication certificate',
  noClientCert: 'Client security server did not send correct authentication certificate',
  noPeerCerts: 'Could not get peer certificates from context',
  notApprovedCa: 'Certificate is not issued by approved certification service provider',
  notAuthCert: 'Peer certificate is not an authentication certificate',
  clientOcspMissing: 'Cannot verify TLS certificate, corresponding OCSP response is missing',
} as const;

/**
 * MESS_07 for a peer whose OCSP responses are at hand (the client side gathers missing ones first:
 * `PeerAuthenticator`).
 * @throws SslAuthenticationFailed (texts above, and "Client 'X' is not registered at security server
 *   Y", "Authentication certificate X is not associated with any security server"); path errors as
 *   SslAuthenticationFailed.{CannotCreateCertPath|InvalidCertPath|CertValidityTime}; OCSP errors as
 *   SslAuthenticationFailed.InvalidCertPath.{CertValidation|IncorrectValidationInfo}
 */
export function verifyAuthCertificate(check: AuthCertCheck): AuthenticatedPeer {
  const side = sideOf(check);
  const at = check.at ?? new Date();
  const fail = failer(side);
  // The server side first wants the OCSP responses the client sends with its request (MESS_06).
  if (side.server && check.chain?.length && check.ocspResponses.length === 0) throw fail(AUTH_TEXTS.clientOcspMissing);
  const { leaf, path } = approvedPath(check, at);

  if (!isAuthCertificate(leaf.raw)) throw fail(AUTH_TEXTS.notAuthCert);
  const ocspUntil = checkPathOcsp(path, check.conf, check.ocspResponses, at, side.prefix);

  const registered = registeredServer(check.conf, leaf.raw);
  if (!registered) throw fail(`Authentication certificate ${javaName(leaf)} is not associated with any security server`);
  const { server, serverId } = registered;
  if (check.expectedServer && formatSecurityServerId(check.expectedServer) !== formatSecurityServerId(serverId)) {
    throw fail(`Authentication certificate belongs to security server ${javaServerId(serverId)}, not to ${javaServerId(check.expectedServer)}`);
  }
  if (!servesClient(server, side.member)) throw fail(`Client '${javaClientId(side.member)}' is not registered at security server ${javaServerId(serverId)}`);

  const notAfter = Math.min(...path.certs.map((c) => new Date(x509Of(c).validTo).getTime()));
  return { serverId, server, authCert: leaf.raw, path, validUntil: new Date(Math.min(notAfter, ocspUntil)) };
}

/**
 * What the server proxy asks of a connection before it reads a byte of a request (the reference's
 * AuthTrustManager, at the handshake): a certificate, registered in the global configuration as a
 * security server's authentication certificate, on a path to a CA the server's instance approves,
 * valid now. Whom the server may speak for, and OCSP, are checked per request (verifyAuthCertificate).
 * @throws SslAuthenticationFailed[.…] as verifyAuthCertificate
 */
export function admitClientServer(conf: GlobalConf, chain: readonly Buffer[] | undefined, at: Date): { serverId: SecurityServerId; validUntil: Date } {
  const fail = failer({ prefix: 'Server.ServerProxy' });
  if (!chain || chain.length === 0) throw fail(AUTH_TEXTS.noClientCert);
  const registered = registeredServer(conf, chain[0]!);
  if (!registered) throw fail('Authentication certificate is not associated with any security server');
  const { serverId } = registered;
  const { leaf, path } = approvedPath({ conf, chain, client: { instance: serverId.instance, memberClass: serverId.memberClass, memberCode: serverId.memberCode } }, at);
  if (!isAuthCertificate(leaf.raw)) throw fail(AUTH_TEXTS.notAuthCert);
  return { serverId, validUntil: new Date(Math.min(...path.certs.map((c) => new Date(x509Of(c).validTo).getTime()))) };
}

interface Side {
  readonly server: boolean;
  readonly member: ClientId;
  readonly prefix: FaultPrefix;
}

function sideOf(check: Pick<AuthCertCheck, 'serviceProvider' | 'client'>): Side {
  if (check.serviceProvider && !check.client) return { server: false, member: check.serviceProvider, prefix: 'Server.ClientProxy' };
  if (check.client && !check.serviceProvider) return { server: true, member: check.client, prefix: 'Server.ServerProxy' };
  throw new XrdError('InternalError', { reason: 'an authentication check names either the service provider (client side) or the client (server side)' });
}

const failer = (side: Pick<Side, 'prefix'>) => (reason: string, cause?: unknown) => new XrdError('SslAuthenticationFailed', { reason }, { prefix: side.prefix, cause });

/**
 * MESS_05 steps 3–4: the peer's certificate, and its path up to an approved CA of the party's instance.
 * @throws SslAuthenticationFailed[.CannotCreateCertPath|.InvalidCertPath|.CertValidityTime]
 */
export function approvedPath(check: Pick<AuthCertCheck, 'conf' | 'chain' | 'serviceProvider' | 'client'>, at: Date): { leaf: X509Certificate; path: CertPath } {
  const side = sideOf(check);
  const fail = failer(side);
  if (!check.chain) throw fail(AUTH_TEXTS.noPeerCerts);
  const noCert = side.server ? AUTH_TEXTS.noClientCert : AUTH_TEXTS.noUsableCert;
  if (check.chain.length === 0) throw fail(noCert);
  let leaf: X509Certificate;
  try {
    leaf = x509Of(check.chain[0]!);
  } catch (err) {
    throw fail(noCert, err);
  }
  let path: CertPath;
  try {
    path = buildCertPath(leaf.raw, check.conf, check.chain.slice(1), at);
  } catch (err) {
    if (err instanceof XrdError && err.code === 'CannotCreateCertPath') throw fail(AUTH_TEXTS.notApprovedCa, err);
    throw reported(err, side.prefix);
  }
  // Only the CAs the party's own instance approves count (the reference asks that instance's parameters).
  const own = check.conf.shared.get(side.member.instance)?.approvedCas ?? [];
  if (!own.includes(path.ca)) throw fail(AUTH_TEXTS.notApprovedCa);
  return { leaf, path };
}

/**
 * Every certificate of the path below the top one needs a good OCSP response among `responses`.
 * @returns the earliest nextUpdate of the responses used (Infinity when none has one)
 */
function checkPathOcsp(path: CertPath, conf: GlobalConf, responses: readonly Buffer[], at: Date, prefix: FaultPrefix): number {
  let parsed: BasicOcspResponse[];
  try {
    parsed = responses.map((r) => parseOcspResponse(r));
  } catch (err) {
    throw reported(err, prefix, ['SslAuthenticationFailed', 'InvalidCertPath']);
  }
  let until = Infinity;
  for (let i = 0; i + 1 < path.certs.length; i++) {
    const subject = path.certs[i]!;
    const issuer = path.certs[i + 1]!;
    const response = parsed.find((r) => r.responses.some((s) => sameCertId(s.certId, certIdOf(subject, issuer, s.certId.hashAlgorithm))));
    try {
      if (!response) throw new XrdError('CertValidation', { reason: `Unable to find OCSP response for certificate ${javaName(x509Of(subject))}` });
      const single = verifyOcspResponse(response, subject, issuer, at, ocspPolicyFor(conf, issuer));
      if (single.nextUpdate) until = Math.min(until, single.nextUpdate.getTime());
    } catch (err) {
      throw reported(err, prefix, ['SslAuthenticationFailed', 'InvalidCertPath']);
    }
  }
  return until;
}

/** An error of the path or OCSP checks as the reference reports it here: under SslAuthenticationFailed. */
function reported(err: unknown, prefix: FaultPrefix, outer: readonly ErrorCode[] = ['SslAuthenticationFailed']): XrdError {
  if (!(err instanceof XrdError)) return new XrdError('SslAuthenticationFailed', { reason: (err as Error).message }, { prefix, cause: err });
  return new XrdError(err.code, err.details as ErrorDetails, { prefix, cause: err, outerCodes: [...outer, ...err.outerCodes] });
}

/**
 * The reference's test (CertUtils.isAuthCert): extendedKeyUsage with clientAuth, or keyUsage with
 * digitalSignature, keyEncipherment or dataEncipherment.
 */
export function isAuthCertificate(der: Buffer): boolean {
  const facts = parseCertificate(der);
  if (facts.extendedKeyUsage?.includes(EKU_CLIENT_AUTH)) return true;
  return (facts.keyUsage ?? []).some((bit) => bit === 'digitalSignature' || bit === 'keyEncipherment' || bit === 'dataEncipherment');
}

/** The security server whose registered authentication certificates include `cert`, if any. */
export function registeredServer(conf: GlobalConf, cert: Buffer): { server: SecurityServer; serverId: SecurityServerId } | undefined {
  for (const params of conf.shared.values()) {
    const hash = createHash(params.authCertHashAlgorithm).update(cert).digest();
    const server = params.securityServers.find((s) => s.authCertHashes.some((h) => h.equals(hash)));
    if (server) return { server, serverId: { instance: params.instanceIdentifier, memberClass: server.owner.memberClass, memberCode: server.owner.memberCode, serverCode: server.serverCode } };
  }
  return undefined;
}

/** Whether the server may act for `member`: its owner (the member itself) or a registered client. */
function servesClient(server: SecurityServer, member: ClientId): boolean {
  return sameClientId(server.owner, member) || server.clients.some((c) => sameClientId(c, member));
}

/**
 * The peer's certificates, its own first, as DER; undefined when the socket has no TLS session to ask.
 * getPeerX509Certificate, not getPeerCertificate(true): the latter turns every certificate of the
 * chain into a JS object of parsed fields (names, extensions, fingerprints) only for `raw` to be read.
 */
export function peerCertificateChain(socket: TLSSocket): Buffer[] | undefined {
  if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
  let cert = socket.getPeerX509Certificate();
  // None: a session without a peer certificate (no chain) or no session at all (nothing to ask).
  if (!cert) return socket.getPeerCertificate() ? [] : undefined;
  const chain: Buffer[] = [];
  while (cert && !chain.some((c) => c.equals(cert!.raw))) {
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** A certificate's serial number as Java's BigInteger prints it (decimal), as the reference's texts show it. */
export function decimalSerial(cert: X509Certificate): string {
  return BigInt(`0x${cert.serialNumber}`).toString();
}

/** A subject name as Java's X500Principal prints it: most specific attribute first, `, ` between, Java's keywords. */
export function javaName(cert: X509Certificate): string {
  return cert.subject
    .split('\n')
    .filter(Boolean)
    .reverse()
    .map((field) => field.replace(/^(serialNumber|emailAddress)=/, (_, type: string) => `${type.toUpperCase()}=`))
    .join(', ');
}

