/**
 * Signing messages for the members this server hosts (MESS_08): the signing key, its certificate
 * path and the OCSP responses to embed come from the signer daemon (which owns the keys and the
 * OCSP cache); the signature itself is built here by the BatchSigner, and the signer turns only
 * SignedInfo digests into signature values. Before signing, the proxy checks its own certificate's
 * OCSP responses are there and fresh, since the peer will refuse a signature without them.
 */
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, memberOf, type ClientId } from '../protocol/identifiers.ts';
import { BatchSigner, type MessageToSign, type SignedMessage, type SigningKey } from '../signature/message-signer.ts';
import type { SignerConnection } from '../signer/signer-client.ts';
import { buildCertPath } from '../trust/cert-path.ts';
import { certSha1 } from '../trust/ocsp-cache.ts';
import { parseOcspResponse } from '../trust/ocsp.ts';

/** How long a member's key and OCSP responses are reused before asking the signer again. */
const KEY_CACHE_MS = 30_000;

export class MemberSigning {
  private readonly keys = new Map<string, { key: Promise<SigningKey>; until: number }>();
  private readonly signer: BatchSigner;

  constructor(
    private readonly client: SignerConnection,
    private readonly conf: () => GlobalConf,
  ) {
    this.signer = new BatchSigner(async (keyId, algorithm, digest) => {
      const r = await this.client.call('sign', { keyId, algorithm, digest: digest.toString('base64'), format: 'raw' });
      return Buffer.from(r.signature, 'base64');
    });
  }

  /** @throws UnknownMember, TokenNotActive, CertValidation (OCSP missing or stale), signer errors */
  async sign(member: ClientId, message: MessageToSign): Promise<SignedMessage> {
    const key = await this.keyOf(memberOf(member));
    try {
      return await this.signer.sign(key, message);
    } catch (err) {
      // A key that stopped working (logout, removal) must not stay cached.
      this.keys.delete(formatClientId(memberOf(member)));
      throw err;
    }
  }

  private keyOf(member: ClientId): Promise<SigningKey> {
    const name = formatClientId(member);
    const cached = this.keys.get(name);
    if (cached && cached.until > Date.now()) return cached.key;
    const key = this.loadKey(name);
    this.keys.set(name, { key, until: Date.now() + KEY_CACHE_MS });
    key.catch(() => this.keys.delete(name));
    return key;
  }

  private async loadKey(member: string): Promise<SigningKey> {
    const info = await this.client.call('memberSigningInfo', { memberId: member });
    const cert = Buffer.from(info.cert, 'base64');
    const conf = this.conf();
    const path = buildCertPath(cert, conf, info.chain.map((c) => Buffer.from(c, 'base64')));
    // OCSP responses for every certificate below the approved CA's top certificate.
    const needing = path.certs.slice(0, -1);
    const { responses } = await this.client.call('getOcspResponses', { certHashes: needing.map(certSha1) });
    const freshness = conf.own.ocspFreshnessSeconds * 1000;
    const ocspResponses = responses.map((r, i) => {
      if (!r) throw new XrdError('CertValidation', { reason: `No OCSP response for certificate ${i === 0 ? 'of member ' + member : 'of its CA'}` });
      const der = Buffer.from(r, 'base64');
      const thisUpdate = parseOcspResponse(der).responses[0]?.thisUpdate;
      if (!thisUpdate || Date.now() - thisUpdate.getTime() > freshness) {
        throw new XrdError('CertValidation', { reason: `OCSP response is too old (thisUpdate: ${thisUpdate?.toISOString()}) for the signing certificate path of member ${member}` });
      }
      return der;
    });
    return { keyId: info.keyId, algorithm: info.algorithm, cert, intermediateCerts: path.certs.slice(1, -1), ocspResponses, batchSigningEnabled: info.batchSigningEnabled };
  }
}
