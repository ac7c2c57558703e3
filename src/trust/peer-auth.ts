/**
 * Authenticating the peer security server after a TLS handshake, as the proxies need it:
 *
 * - client side (MESS_05): the provider's server. OCSP responses for its path come from the local
 *   cache, and those missing from the peer's own OCSP endpoint, at the address the global
 *   configuration registers for the server the certificate belongs to; what arrives is verified and
 *   cached for the next time.
 * - server side (MESS_06): the client's server. Its OCSP responses travel in the request's OCSP
 *   parts (the client proxy puts them there: `ownAuthOcspResponses`).
 *
 * A verified peer is kept for a short time (60 s by default, as the reference keeps OCSP results)
 * per configuration object, so a pooled connection, or the next one from the same server, is not
 * checked again for every message; a new configuration is checked afresh.
 */
import { createHash } from 'node:crypto';
import { oneLineName, x509Of } from '../certificates/certificate.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError, type ErrorDetails } from '../platform/errors.ts';
import { formatClientId, formatSecurityServerId, javaClientId, type ClientId, type SecurityServerId } from '../protocol/identifiers.ts';
import { admitClientServer, approvedPath, decimalSerial, registeredServer, verifyAuthCertificate, type AuthenticatedPeer } from './auth-cert.ts';
import { buildCertPath } from './cert-path.ts';
import { certSha1, type OcspCache } from './ocsp-cache.ts';
import { certIdOf, parseOcspResponse, sameCertId } from './ocsp.ts';
import { ocspPolicyFor, verifyOcspResponse } from './ocsp-verifier.ts';
import { fetchPeerOcspResponses, type PeerOcspFetchOptions } from './peer-ocsp.ts';

/** Where OCSP responses are cached: the signer's cache (over its socket) or an OcspCache in process. */
export interface OcspResponseStore {
  /** The cached responses for certificates by SHA-1 (hex), undefined where there is none. */
  get(certSha1s: readonly string[]): Promise<readonly (Buffer | undefined)[]>;
  /** Stores verified responses. */
  set(entries: readonly { certSha1: string; der: Buffer }[]): Promise<void>;
}

/** An OcspCache (SQLite, in this process) as an OcspResponseStore. */
export function ocspCacheStore(cache: OcspCache): OcspResponseStore {
  return {
    get: async (hashes) => hashes.map((h) => cache.get(h)?.der),
    set: async (entries) => cache.set(entries),
  };
}

export interface PeerAuthenticatorOptions {
  readonly conf: () => GlobalConf;
  readonly ocsp: OcspResponseStore;
  /** How long a verified peer is trusted without checking again (default 60 s). */
  readonly ttlMs?: number;
  /** Verified peers kept per configuration (default 1024). */
  readonly maxEntries?: number;
  /** For asking peers for OCSP responses (port 5577, 10 s by default). */
  readonly fetch?: PeerOcspFetchOptions;
  readonly now?: () => Date;
}

/** What is kept of a check: an admitted server, or an authenticated peer (keys tell them apart). */
interface Verified {
  readonly serverId: SecurityServerId;
  readonly validUntil: Date;
}

interface Entry {
  readonly peer: Verified;
  readonly until: number;
}

export class PeerAuthenticator {
  private readonly verified = new WeakMap<GlobalConf, Map<string, Entry>>();
  private readonly pending = new WeakMap<GlobalConf, Map<string, Promise<AuthenticatedPeer>>>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => Date;

  constructor(private readonly options: PeerAuthenticatorOptions) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.maxEntries = options.maxEntries ?? 1024;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Client side (MESS_05): the provider's security server, from its certificate chain (its own
   * first, `peerCertificateChain(socket)`).
   * @throws SslAuthenticationFailed[.…] as verifyAuthCertificate, and SslAuthenticationFailed with
   *   "Could not get all OCSP responses from server (expected X, but got Y)",
   *   SslAuthenticationFailed.UnknownMember "Unable to find provider address for authentication
   *   certificate X (service provider: Y)", SslAuthenticationFailed.NetworkError (the peer's OCSP
   *   endpoint did not answer)
   */
  verifyProvider(chain: readonly Buffer[] | undefined, serviceProvider: ClientId, options: { expectedServer?: SecurityServerId } = {}): Promise<AuthenticatedPeer> {
    const conf = this.options.conf();
    const key = cacheKey('provider', chain, serviceProvider, options.expectedServer);
    const known = key && this.known(conf, key);
    if (known) return Promise.resolve(known);
    if (!key) return this.checkProvider(conf, chain, serviceProvider, options.expectedServer);
    // Connections opened together to the same server are checked once.
    let inFlight = this.pending.get(conf);
    if (!inFlight) this.pending.set(conf, (inFlight = new Map()));
    let check = inFlight.get(key);
    if (!check) {
      check = this.checkProvider(conf, chain, serviceProvider, options.expectedServer).then(
        (peer) => this.remember(conf, key, peer),
      );
      const settled = () => inFlight.delete(key);
      check.then(settled, settled);
      inFlight.set(key, check);
    }
    return check;
  }

  /**
   * Server side (MESS_06): the client's security server, once the request's client and its OCSP
   * parts have been read.
   * @throws SslAuthenticationFailed[.…] as verifyAuthCertificate
   */
  verifyClient(chain: readonly Buffer[] | undefined, client: ClientId, ocspResponses: readonly Buffer[]): AuthenticatedPeer {
    const conf = this.options.conf();
    const key = cacheKey('client', chain, client);
    const known = key && this.known(conf, key);
    if (known) return known;
    const peer = verifyAuthCertificate({ conf, chain, client, ocspResponses, at: this.now() });
    return key ? this.remember(conf, key, peer) : peer;
  }

  /**
   * Before a request is read (the reference's AuthTrustManager): the connecting server's certificate
   * is a registered authentication certificate on an approved path. Kept like verified peers, so a
   * server's next connections cost a hash.
   * @throws SslAuthenticationFailed[.…] as admitClientServer
   */
  admitClientServer(chain: readonly Buffer[] | undefined): SecurityServerId {
    const conf = this.options.conf();
    const key = cacheKey('admit', chain);
    const known = key && this.known<Verified>(conf, key);
    if (known) return known.serverId;
    const admitted = admitClientServer(conf, chain, this.now());
    if (key) this.remember(conf, key, admitted);
    return admitted.serverId;
  }

  /** Forgets every verified peer (e.g. after an administrator revoked trust by hand). */
  clear(): void {
    this.verified.delete(this.options.conf());
  }

  private known<T extends Verified = AuthenticatedPeer>(conf: GlobalConf, key: string): T | undefined {
    const entry = this.verified.get(conf)?.get(key);
    if (!entry) return undefined;
    if (entry.until > this.now().getTime()) return entry.peer as T;
    this.verified.get(conf)!.delete(key);
    return undefined;
  }

  private remember<T extends Verified>(conf: GlobalConf, key: string, peer: T): T {
    let entries = this.verified.get(conf);
    if (!entries) this.verified.set(conf, (entries = new Map()));
    if (entries.size >= this.maxEntries) entries.delete(entries.keys().next().value!);
    entries.set(key, { peer, until: Math.min(this.now().getTime() + this.ttlMs, peer.validUntil.getTime()) });
    return peer;
  }

  private async checkProvider(conf: GlobalConf, chain: readonly Buffer[] | undefined, serviceProvider: ClientId, expectedServer: SecurityServerId | undefined): Promise<AuthenticatedPeer> {
    const at = this.now();
    const { leaf, path } = approvedPath({ conf, chain, serviceProvider }, at);
    const below = path.certs.slice(0, -1);
    // The cache is a help, not a condition: when it cannot be read, the peer is asked for everything.
    const cached = await this.options.ocsp.get(below.map(certSha1)).catch(() => []);
    const responses: Buffer[] = [];
    const missing: number[] = [];
    below.forEach((subject, i) => {
      const response = cached[i];
      if (response && usable(response, subject, path.certs[i + 1]!, conf, at)) responses.push(response);
      else missing.push(i);
    });

    if (missing.length > 0) {
      const fail = (code: 'SslAuthenticationFailed' | 'UnknownMember' | 'NetworkError', details: ErrorDetails, cause?: unknown) =>
        new XrdError(code, details, { prefix: 'Server.ClientProxy', cause, outerCodes: code === 'SslAuthenticationFailed' ? [] : ['SslAuthenticationFailed'] });
      const address = registeredServer(conf, leaf.raw)?.server.address;
      if (!address) {
        throw fail('UnknownMember', { reason: `Unable to find provider address for authentication certificate ${decimalSerial(leaf)} (service provider: ${javaClientId(serviceProvider)})` });
      }
      let received: Buffer[];
      try {
        received = await fetchPeerOcspResponses(address, missing.map((i) => below[i]!), this.options.fetch);
      } catch (err) {
        const e = err as XrdError;
        throw fail('NetworkError', e.details ?? { target: address, reason: (err as Error).message }, err);
      }
      if (received.length !== missing.length) {
        throw fail('SslAuthenticationFailed', { reason: `Could not get all OCSP responses from server (expected ${missing.length}, but got ${received.length})` });
      }
      responses.push(...received);
      const keep = worthKeeping(received, missing.map((i) => [below[i]!, path.certs[i + 1]!] as const), conf, at);
      // Not keeping them costs a request to the peer next time, nothing more.
      if (keep.length > 0) await this.options.ocsp.set(keep).catch(() => undefined);
    }
    return verifyAuthCertificate({ conf, chain, serviceProvider, expectedServer, ocspResponses: responses, at });
  }
}

/** A cached response that still proves something at `at` (good or revoked); a stale one is asked again. */
function usable(response: Buffer, subject: Buffer, issuer: Buffer, conf: GlobalConf, at: Date): boolean {
  try {
    verifyOcspResponse(response, subject, issuer, at, ocspPolicyFor(conf, issuer));
    return true;
  } catch (err) {
    return err instanceof XrdError && err.code === 'CertValidation';
  }
}

/** The received responses that verify for the certificate they name (good, or a revocation to show). */
function worthKeeping(received: readonly Buffer[], pairs: readonly (readonly [Buffer, Buffer])[], conf: GlobalConf, at: Date): { certSha1: string; der: Buffer }[] {
  const keep: { certSha1: string; der: Buffer }[] = [];
  for (const der of received) {
    let parsed;
    try {
      parsed = parseOcspResponse(der);
    } catch {
      continue;
    }
    const pair = pairs.find(([subject, issuer]) => parsed.responses.some((s) => sameCertId(s.certId, certIdOf(subject, issuer, s.certId.hashAlgorithm))));
    if (pair && usable(der, pair[0], pair[1], conf, at)) keep.push({ certSha1: certSha1(pair[0]), der });
  }
  return keep;
}

function cacheKey(side: string, chain: readonly Buffer[] | undefined, member?: ClientId, expectedServer?: SecurityServerId): string | undefined {
  if (!chain || chain.length === 0) return undefined;
  let digest = chainDigests.get(chain);
  if (digest === undefined) {
    const hash = createHash('sha256');
    for (const cert of chain) hash.update(cert);
    digest = hash.digest('base64');
    chainDigests.set(chain, digest);
  }
  return `${side}|${digest}|${member ? formatClientId(member) : ''}|${expectedServer ? formatSecurityServerId(expectedServer) : ''}`;
}

/**
 * A connection's peer chain is read once and then asked about for every message on it (the
 * proxies keep it per socket): its digest is kept with it, and goes when the connection does.
 * The chains are never changed after they are read.
 */
const chainDigests = new WeakMap<readonly Buffer[], string>();

/**
 * The OCSP responses our own authentication certificate's path needs (every certificate below the
 * CA's top one), for the OCSP parts of each request (the peer's MESS_06 check).
 * @throws CertValidation when one is not cached (the signer's refresher fetches them), path errors
 */
export async function ownAuthOcspResponses(conf: GlobalConf, authCert: Buffer, chain: readonly Buffer[], store: OcspResponseStore): Promise<Buffer[]> {
  const below = buildCertPath(authCert, conf, chain).certs.slice(0, -1);
  const responses = await store.get(below.map(certSha1));
  const absent = below.filter((_, i) => !responses[i]);
  if (absent.length > 0) {
    throw new XrdError('CertValidation', { reason: `Could not get OCSP responses for certificates (${absent.map((c) => oneLineName(x509Of(c).subject)).join('; ')})` });
  }
  return responses as Buffer[];
}
