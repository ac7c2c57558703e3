/**
 * The client proxy's side of the link between security servers (MESS_05): finds the provider's
 * security servers in global configuration, picks the fastest address (all tried in parallel, the
 * winner kept for an hour, as the reference does), keeps TLS connections to it pooled and alive,
 * checks the peer's authentication certificate once per connection and provider, and exchanges
 * the signed messages. Our own side of the handshake is signed with the authentication key on the
 * HSM through the signer (src/tls); the process never sees that key or its PIN.
 */
import { connect } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { ReceivedSoapFault } from '../protocol/faults.ts';
import { formatClientId, type ClientId } from '../protocol/identifiers.ts';
import type { PeerVerifier } from './peer-verifier.ts';
import { readBody } from './body.ts';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './transport.ts';

/** A fault the provider's security server answered with; passed on to the information system as it is. */
export class RemoteFault extends Error {
  constructor(readonly fault: ReceivedSoapFault) {
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
  readonly maxMessageBytes: number;
}

const ADDRESS_CACHE_MS = 3600_000;

export class ProviderLink {
  private readonly agents = new Map<string, { agent: https.Agent; cert: SecureContextOptions['cert'] }>();
  private readonly chosen = new Map<string, { address: string; until: number }>();
  private readonly handshakes = new WeakMap<TLSSocket, Promise<void>>();

  constructor(private readonly options: ProviderLinkOptions) {}

  /**
   * @throws UnknownMember (no server hosts the provider), NetworkError, SslAuthenticationFailed,
   *   RemoteFault (the provider's server answered with a fault)
   */
  async send(provider: ClientId, request: Envelope): Promise<Envelope> {
    const address = await this.addressOf(provider);
    const agent = await this.agentFor(address);
    const ocspResponses = await this.options.ownAuthOcsp();
    const encoded = encodeEnvelope({ ...request, ocspResponses });
    let response: { contentType: string; body: Buffer; headers: IncomingHttpHeaders };
    try {
      response = await this.post(agent, address, provider, encoded);
    } catch (err) {
      // A broken connection may mean the address went away: choose again next time.
      this.chosen.delete(formatClientId(provider));
      throw err;
    }
    const decoded = decodeEnvelope(response.contentType, response.body, response.headers, 'response');
    if ('faultCode' in decoded) throw new RemoteFault(decoded);
    return decoded;
  }

  close(): void {
    for (const address of [...this.agents.keys()]) this.dropAgent(address);
  }

  /** Security servers whose clients include the provider, per global configuration. */
  private addressesOf(provider: ClientId): string[] {
    const id = formatClientId(provider);
    const servers = this.options.globalConf().shared.get(provider.instance)?.securityServers ?? [];
    return servers.filter((s) => s.clients.some((c) => formatClientId(c) === id)).map((s) => s.address);
  }

  private async addressOf(provider: ClientId): Promise<string> {
    const key = formatClientId(provider);
    const cached = this.chosen.get(key);
    if (cached && cached.until > Date.now()) return cached.address;
    const addresses = this.addressesOf(provider);
    if (addresses.length === 0) throw new XrdError('UnknownMember', { reason: `Could not find addresses for service provider "${key}"` }, { prefix: 'Server.ClientProxy' });
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
    // carries no certificate chain to check.
    const agent = new https.Agent({ ...tls, keepAlive: true, maxSockets: 128, maxCachedSessions: 0, rejectUnauthorized: false, checkServerIdentity: () => undefined } as https.AgentOptions);
    this.agents.set(address, { agent, cert: tls.cert });
    return agent;
  }

  private dropAgent(address: string): void {
    this.agents.get(address)?.agent.destroy();
    this.agents.delete(address);
  }

  private post(agent: https.Agent, address: string, provider: ClientId, encoded: { contentType: string; body: Buffer; headers: Record<string, string> }): Promise<{ contentType: string; body: Buffer; headers: IncomingHttpHeaders }> {
    const target = `${address}:${this.options.remotePort}`;
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: address,
        port: this.options.remotePort,
        method: 'POST',
        path: '/',
        agent,
        headers: { ...encoded.headers, 'content-type': encoded.contentType, 'content-length': String(encoded.body.length) },
      });
      const timer = setTimeout(() => req.destroy(new XrdError('NetworkError', { target, reason: `no answer within ${this.options.responseTimeoutMs} ms` }, { prefix: 'Server.ClientProxy' })), this.options.responseTimeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        if (err instanceof XrdError) reject(err);
        else if (/^ERR_(SSL|OSSL)_/.test((err as NodeJS.ErrnoException).code ?? '') || engineFailed(err)) {
          this.dropAgent(address);
          const failed = new XrdError('SslAuthenticationFailed', { reason: `TLS handshake with ${target} failed: ${err.message}` }, { prefix: 'Server.ClientProxy', cause: err });
          // When our own handshake signature failed, the signer tells why (token logged out, signer down, …).
          this.options.explainHandshakeFailure(err).then(
            (why) => reject(why ? why.within('SslAuthenticationFailed').withPrefix('Server.ClientProxy') : failed),
            () => reject(failed),
          );
        } else reject(new XrdError('NetworkError', { target, reason: err.message }, { prefix: 'Server.ClientProxy', cause: err }));
      });
      req.on('socket', (socket) => {
        this.checkPeer(socket as TLSSocket, provider).then(
          () => req.end(encoded.body),
          (err: unknown) => req.destroy(err as Error),
        );
      });
      req.on('response', (res) => {
        const limit = this.options.maxMessageBytes;
        readBody(res, limit, () => new XrdError('MessageTooLarge', { limit }, { prefix: 'Server.ClientProxy' })).then(
          (body) => {
            clearTimeout(timer);
            resolve({ contentType: res.headers['content-type'] ?? '', body, headers: res.headers });
          },
          (err: Error) => {
            clearTimeout(timer);
            req.destroy();
            reject(err instanceof XrdError ? err : new XrdError('NetworkError', { target, reason: err.message }, { prefix: 'Server.ClientProxy', cause: err }));
          },
        );
      });
    });
  }

  /**
   * The provider's authentication certificate, checked for every message: the check's own cache
   * (PeerAuthenticator, 60 s, never past the certificate's or OCSP response's validity) keeps it
   * cheap, and a revoked or de-registered certificate is noticed on a kept-alive connection too.
   */
  private checkPeer(socket: TLSSocket, provider: ClientId): Promise<void> {
    let handshake = this.handshakes.get(socket);
    if (!handshake) {
      const done = Object.keys(socket.getPeerCertificate?.() ?? {}).length > 0;
      handshake = done ? Promise.resolve() : new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('error', reject);
      });
      this.handshakes.set(socket, handshake);
    }
    return handshake.then(() => this.options.peers.verifyProvider(socket, provider));
  }
}

/** Whether a TLS error came from our engine's handshake signature (docs/tls.md). */
const engineFailed = (err: Error) => err.message.includes('xrd signer engine');
