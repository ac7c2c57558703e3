/**
 * The client proxy's side of the link between security servers (MESS_05): finds the provider's
 * security servers in global configuration (a server's owner counts as its client, as in the
 * reference), or the one server the request names (`xrd:securityServer`, `X-Road-Security-Server`),
 * picks the fastest address (all tried in parallel, the winner kept for an hour, as the reference
 * does), keeps TLS connections to it pooled and alive, checks the peer's authentication certificate
 * once per connection and provider, and exchanges the signed messages as streams. Our own side of
 * the handshake is signed with the authentication key on the HSM through the signer (src/tls); the
 * process never sees that key or its PIN.
 */
import { connect } from 'node:net';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { GlobalConf, SecurityServer } from '../../globalconf/global-conf.ts';
import { XrdError, toXrdError } from '../../platform/errors.ts';
import { sendPieces, type SpoolFolder } from '../../platform/spool.ts';
import type { SoapFault } from '../../protocol/faults.ts';
import { formatClientId, formatSecurityServerId, javaClientId, javaServerId, type ClientId, type SecurityServerId } from '../../protocol/identifiers.ts';
import { bodiesOf, decodeProxyMessage, encodeProxyMessage, type DecodedProxyMessage, type ProxyMessage } from '../../protocol/proxy-message.ts';
import type { PeerVerifier } from '../shared/peer-verifier.ts';

/** A fault the provider's security server answered with; passed on to the information system as it is. */
export class RemoteFault extends Error {
  /** `xml`, when there, is what the information system gets, unchanged. */
  constructor(readonly fault: SoapFault & { readonly xml?: Buffer }) {
    super(`${fault.faultCode}: ${fault.faultString}`);
  }
}

export interface ProviderLinkOptions {
  readonly globalConf: () => GlobalConf;
  /** TLS options presenting our authentication certificate (key on the HSM via the signer engine). */
  readonly authTls: () => Promise<SecureContextOptions>;
  /** OCSP responses for our authentication certificate's chain, sent with each request for the peer's check. */
  readonly ownAuthOcsp: () => Promise<Buffer[]>;
  readonly peers: PeerVerifier;
  /** Why a handshake failed on our side (the signer engine's signature), or undefined when it was not ours. */
  readonly explainHandshakeFailure: (err: Error) => Promise<XrdError | undefined>;
  /** The port security servers accept messages on (5500 in the reference). */
  readonly remotePort: number;
  readonly connectTimeoutMs: number;
  /** How long to wait for the provider's answer (the service's own timeout applies on its side). */
  readonly responseTimeoutMs: number;
  /** Where the answer's attachments and REST bodies go. */
  readonly spool: SpoolFolder;
  /** Most bytes of an answer; unlimited when not given. */
  readonly maxMessageBytes?: number;
}

/** Whom a request is for: the service's provider, and maybe one server of it. */
export interface ProviderTarget {
  readonly provider: ClientId;
  readonly server?: SecurityServerId;
}

const ADDRESS_CACHE_MS = 3600_000;

/** Codes the reference reports after decoding (checkResponse), not as a decoding failure. */
const UNWRAPPED = new Set(['MissingSoap', 'MissingRest', 'MissingSignature', 'MessageTooLarge']);

export class ProviderLink {
  private readonly agents = new Map<string, { agent: https.Agent; cert: SecureContextOptions['cert'] }>();
  private readonly chosen = new Map<string, { address: string; until: number }>();
  private readonly handshakes = new WeakMap<TLSSocket, Promise<void>>();

  constructor(private readonly options: ProviderLinkOptions) {}

  /**
   * Sends a signed request; the answer's bodies are the caller's to dispose of.
   * @throws UnknownMember (no server hosts the provider), InvalidSecurityServer, NetworkError,
   *   SslAuthenticationFailed, HttpError, ServiceFailed.… (an answer that cannot be read),
   *   MissingSoap, MissingRest, MissingSignature, RemoteFault (the provider's server answered with a fault)
   */
  async send(target: ProviderTarget, request: ProxyMessage, kind: 'soap' | 'rest'): Promise<DecodedProxyMessage> {
    const address = await this.addressOf(target);
    const agent = await this.agentFor(address);
    const ocspResponses = await this.options.ownAuthOcsp();
    const encoded = encodeProxyMessage({ ...request, ocspResponses });
    let response: IncomingMessage;
    try {
      response = await this.post(agent, address, target, encoded);
    } catch (err) {
      // A broken connection may mean the address went away: choose again next time.
      this.chosen.delete(cacheKey(target));
      throw err;
    }
    const target5500 = `${address}:${this.options.remotePort}`;
    const timer = setTimeout(() => response.destroy(new XrdError('NetworkError', { target: target5500, reason: `no answer within ${this.options.responseTimeoutMs} ms` })), this.options.responseTimeoutMs);
    let decoded: DecodedProxyMessage;
    try {
      if (response.statusCode !== 200) {
        response.resume();
        throw new XrdError('HttpError', { status: response.statusCode ?? 0, reason: response.statusMessage ?? '' });
      }
      decoded = await decodeProxyMessage(response.headers['content-type'] ?? '', readStream(response), response.headers, {
        direction: 'response',
        kind,
        spool: this.options.spool,
        maxBytes: this.options.maxMessageBytes,
      });
    } catch (err) {
      response.destroy();
      const e = toXrdError(err);
      // As the reference's client proxy: what the decoder finds wrong is a failure of the other side.
      throw (UNWRAPPED.has(e.code) || e.code === 'HttpError' || e.code === 'NetworkError' ? e : e.within('ServiceFailed')).withPrefix('Server.ClientProxy');
    } finally {
      clearTimeout(timer);
    }
    if (decoded.fault) {
      // A fault in place of the signature comes with content we do not pass on.
      for (const body of bodiesOf(decoded.content)) body.dispose();
      throw new RemoteFault(decoded.fault);
    }
    return decoded;
  }

  close(): void {
    for (const address of [...this.agents.keys()]) this.dropAgent(address);
  }

  /**
   * The addresses to try (AbstractClientMessageProcessor.getServiceAddresses): the provider's servers
   * (its owner counts as a client of its own server), or the one server the request names, which
   * must be one of them; servers in maintenance mode are left out, and if that leaves none, the
   * first one's maintenance fault is the answer.
   * @throws UnknownMember, InvalidSecurityServer, MaintenanceMode (the reference's texts)
   */
  private addressesOf(target: ProviderTarget): string[] {
    const { provider, server } = target;
    const conf = this.options.globalConf();
    const hosting = conf.securityServersOf(provider).filter((s) => s.address !== '');
    if (hosting.length === 0) throw new XrdError('UnknownMember', { reason: `Could not find addresses for service provider "${javaClientId(provider)}"` }, { prefix: 'Server.ClientProxy' });
    let candidates: SecurityServer[] = hosting;
    if (server) {
      const named = conf.securityServer(server);
      if (!named?.address) throw new XrdError('InvalidSecurityServer', { reason: `Could not find security server "${javaServerId(server)}"` }, { prefix: 'Server.ClientProxy' });
      if (!hosting.some((s) => s.address === named.address)) throw new XrdError('InvalidSecurityServer', { reason: `Invalid security server "${javaServerId(server)}"` }, { prefix: 'Server.ClientProxy' });
      candidates = [named];
    }
    const available = candidates.filter((s) => !s.maintenanceMode);
    if (available.length === 0) throw maintenanceFault(candidates[0]!, server);
    return [...new Set(available.map((s) => s.address))];
  }

  /** The fastest address kept for an hour, as long as configuration still lists it (and its server is not in maintenance). */
  private async addressOf(target: ProviderTarget): Promise<string> {
    const key = cacheKey(target);
    const addresses = this.addressesOf(target);
    const cached = this.chosen.get(key);
    if (cached && cached.until > Date.now() && addresses.includes(cached.address)) return cached.address;
    const address = addresses.length === 1 ? addresses[0]! : await this.fastest(addresses);
    this.chosen.set(key, { address, until: Date.now() + ADDRESS_CACHE_MS });
    return address;
  }

  /** The first address to accept a TCP connection; the others are abandoned. */
  private fastest(addresses: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      let failures = 0;
      const sockets = addresses.map((address) => {
        const socket = connect({ host: address, port: this.options.remotePort, timeout: this.options.connectTimeoutMs });
        socket.once('connect', () => {
          for (const s of sockets) s.destroy();
          resolve(address);
        });
        const fail = () => {
          socket.destroy();
          if (++failures === addresses.length) reject(new XrdError('NetworkError', { target: addresses.map((a) => `${a}:${this.options.remotePort}`).join(', '), reason: 'no address accepted a connection' }, { prefix: 'Server.ClientProxy' }));
        };
        socket.once('error', fail);
        socket.once('timeout', fail);
        return socket;
      });
    });
  }

  /**
   * The pool for an address, presenting our current authentication certificate: when the signer
   * answers with another one (renewed, re-registered), the old pool is closed.
   * @throws SslAuthenticationFailed "Security server has no valid authentication certificate"
   */
  private async agentFor(address: string): Promise<https.Agent> {
    let tls: SecureContextOptions;
    try {
      tls = await this.options.authTls();
    } catch (err) {
      throw new XrdError('SslAuthenticationFailed', { reason: `Security server has no valid authentication certificate: ${toXrdError(err).message}` }, { prefix: 'Server.ClientProxy', cause: err });
    }
    const current = this.agents.get(address);
    if (current && current.cert === tls.cert) return current.agent;
    current?.agent.destroy();
    // Peer certificates are X-Road authentication certificates checked against global configuration
    // (PeerVerifier), not against a web PKI or host names. No session resumption: a resumed session
    // carries no certificate chain to check. One TLS context for the pool, built here: given the
    // options instead, every new connection would build its own (certificate parsing, the engine key
    // loaded again) — measurable while the pool grows to 128 connections under load.
    let secureContext: ReturnType<typeof createSecureContext>;
    try {
      secureContext = createSecureContext(tls);
    } catch (err) {
      // What a handshake with these options would have failed with, explained the same way.
      throw await this.tlsFailure(err as Error, address);
    }
    const agent = new https.Agent({
      // Protocol versions, ciphers and signature algorithms are the context's.
      secureContext,
      keepAlive: true,
      maxSockets: 128,
      maxCachedSessions: 0,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    this.agents.set(address, { agent, cert: tls.cert });
    return agent;
  }

  private dropAgent(address: string): void {
    this.agents.get(address)?.agent.destroy();
    this.agents.delete(address);
  }

  /** Sends the request and resolves with the answer's head; its body is read by the caller. */
  private post(agent: https.Agent, address: string, target: ProviderTarget, encoded: ReturnType<typeof encodeProxyMessage>): Promise<IncomingMessage> {
    const where = `${address}:${this.options.remotePort}`;
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: address,
        port: this.options.remotePort,
        method: 'POST',
        path: '/',
        agent,
        headers: { ...encoded.headers, 'content-type': encoded.contentType, 'content-length': String(encoded.length) },
      });
      const timer = setTimeout(() => req.destroy(new XrdError('NetworkError', { target: where, reason: `no answer within ${this.options.responseTimeoutMs} ms` }, { prefix: 'Server.ClientProxy' })), this.options.responseTimeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        if (err instanceof XrdError) reject(err);
        else if (/^ERR_(SSL|OSSL)_/.test((err as NodeJS.ErrnoException).code ?? '') || engineFailed(err)) {
          this.dropAgent(address);
          void this.tlsFailure(err, address).then(reject);
        } else reject(new XrdError('NetworkError', { target: where, reason: err.message }, { prefix: 'Server.ClientProxy', cause: err }));
      });
      req.on('socket', (socket) => {
        this.checkPeer(socket as TLSSocket, target).then(
          () => sendPieces(req, encoded.pieces, (err) => req.destroy(toXrdError(err))),
          (err: unknown) => req.destroy(err as Error),
        );
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        resolve(res);
      });
    });
  }

  /** A TLS failure as SslAuthenticationFailed; when our own handshake signature failed, the signer tells why (token logged out, signer down, …). */
  private async tlsFailure(err: Error, address: string): Promise<XrdError> {
    const failed = new XrdError('SslAuthenticationFailed', { reason: `TLS handshake with ${address}:${this.options.remotePort} failed: ${err.message}` }, { prefix: 'Server.ClientProxy', cause: err });
    const why = await this.options.explainHandshakeFailure(err).catch(() => undefined);
    return why ? why.within('SslAuthenticationFailed').withPrefix('Server.ClientProxy') : failed;
  }

  /**
   * The provider's authentication certificate, checked for every message: the check's own cache
   * (PeerAuthenticator, 60 s, never past the certificate's or OCSP response's validity) keeps it
   * cheap, and a revoked or de-registered certificate is noticed on a kept-alive connection too.
   */
  private checkPeer(socket: TLSSocket, target: ProviderTarget): Promise<void> {
    let handshake = this.handshakes.get(socket);
    if (!handshake) {
      const done = Object.keys(socket.getPeerCertificate?.() ?? {}).length > 0;
      handshake = done ? Promise.resolve() : new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('error', reject);
      });
      this.handshakes.set(socket, handshake);
    }
    return handshake.then(() => this.options.peers.verifyProvider(socket, target.provider, target.server));
  }
}

/** "Security server "X" with address "A" is in maintenance mode. Message from "X" administrator: …" */
function maintenanceFault(s: SecurityServer, named: SecurityServerId | undefined): XrdError {
  const id = named ? javaServerId(named) : undefined;
  let reason = `Security server${id ? ` "${id}"` : ''}${s.address ? ` with address "${s.address}"` : ''} is in maintenance mode`;
  if (s.maintenanceMode?.message) reason += `. Message from "${id ?? s.address}" administrator: ${s.maintenanceMode.message}`;
  return new XrdError('MaintenanceMode', { reason }, { prefix: 'Server.ClientProxy' });
}

const cacheKey = (t: ProviderTarget): string => (t.server ? `${formatClientId(t.provider)}@${formatSecurityServerId(t.server)}` : formatClientId(t.provider));

/** A response body as chunks; a connection that breaks off is the reference's IOError. */
async function* readStream(res: IncomingMessage): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of res) yield chunk as Buffer;
  } catch (err) {
    throw err instanceof XrdError ? err : new XrdError('IOError', { reason: `the answer broke off: ${(err as Error).message}` }, { cause: err });
  }
  if (!res.complete) throw new XrdError('IOError', { reason: 'the answer broke off before its end' });
}

/** Whether a TLS error came from our engine's handshake signature (docs/tls.md). */
const engineFailed = (err: Error) => err.message.includes('xrd signer engine');

