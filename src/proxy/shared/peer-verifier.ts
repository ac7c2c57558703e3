/**
 * The proxies' check of the other security server on a TLS connection (MESS_05–07), with the OCSP
 * responses cached in the signer (which owns the OCSP cache): the provider's server on the client
 * side, the client's server on the server side. The checks themselves are trust/peer-auth.ts.
 */
import type { TLSSocket } from 'node:tls';
import type { GlobalConf } from '../../globalconf/global-conf.ts';
import type { ClientId, SecurityServerId } from '../../protocol/identifiers.ts';
import type { SignerConnection } from '../../signerapi/signer-client.ts';
import { peerCertificateChain } from '../../trust/auth-cert.ts';
import { PeerAuthenticator, type OcspResponseStore } from '../../trust/peer-auth.ts';

/** The signer's OCSP cache as the store peer checks read and fill. */
export function signerOcspStore(signer: SignerConnection): OcspResponseStore {
  return {
    get: async (hashes) => (await signer.call('getOcspResponses', { certHashes: [...hashes] })).responses.map((r) => (r === null ? undefined : Buffer.from(r, 'base64'))),
    set: async (entries) => {
      await signer.call('setOcspResponses', { certHashes: entries.map((e) => e.certSha1), responses: entries.map((e) => e.der.toString('base64')) });
    },
  };
}

export class PeerVerifier {
  private readonly authenticator: PeerAuthenticator;
  /** A connection's peer chain does not change; reading it from OpenSSL costs more than the rest of the check. */
  private readonly chains = new WeakMap<TLSSocket, Buffer[] | undefined>();

  constructor(options: { globalConf: () => GlobalConf; ocsp: OcspResponseStore; remoteOcspPort: number }) {
    this.authenticator = new PeerAuthenticator({ conf: options.globalConf, ocsp: options.ocsp, fetch: { port: options.remoteOcspPort } });
  }

  /** @throws SslAuthenticationFailed[.…] with the reference's texts (seed 000) */
  /** `server`, when the request names one, is the server the peer must be. */
  async verifyProvider(socket: TLSSocket, provider: ClientId, server?: SecurityServerId): Promise<void> {
    await this.authenticator.verifyProvider(this.chainOf(socket), provider, server ? { expectedServer: server } : {});
  }

  /** @throws SslAuthenticationFailed[.…] */
  verifyClient(socket: TLSSocket, client: ClientId, ocspResponses: readonly Buffer[]): void {
    this.authenticator.verifyClient(this.chainOf(socket), client, ocspResponses);
  }

  /** Before a request is read: the connecting server is registered and its certificate approved. @throws SslAuthenticationFailed[.…] */
  admitClientServer(socket: TLSSocket): SecurityServerId {
    return this.authenticator.admitClientServer(this.chainOf(socket));
  }

  private chainOf(socket: TLSSocket): Buffer[] | undefined {
    if (!this.chains.has(socket)) this.chains.set(socket, peerCertificateChain(socket));
    return this.chains.get(socket);
  }
}
