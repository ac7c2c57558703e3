/**
 * Signing messages for the members this server hosts (MESS_08): the signing key, its certificate
 * path and the OCSP responses to embed come from the signer daemon (which owns the keys and the
 * OCSP cache); the signature itself is built here by the BatchSigner, and the signer turns only
 * SignedInfo digests into signature values. Before signing, the proxy checks its own certificate's
 * OCSP responses are there and fresh, since the peer will refuse a signature without them.
 */
import type { GlobalConf } from '../../globalconf/global-conf.ts';
import { XrdError, toXrdError, type FaultPrefix } from '../../platform/errors.ts';
import { TtlCache } from '../../platform/ttl-cache.ts';
import { formatClientId, memberOf, type ClientId } from '../../protocol/identifiers.ts';
import { BatchSigner, type MessageToSign, type SignedMessage, type SigningKey } from '../../signature/message-signer.ts';
import { ocspResponsesOf, type SignerConnection } from '../../signerapi/signer-client.ts';
import { buildCertPath } from '../../trust/cert-path.ts';
import { certSha1 } from '../../trust/ocsp-cache.ts';
import { parseOcspResponse } from '../../trust/ocsp.ts';

/** How long a member's key and OCSP responses are reused before asking the signer again. */
const KEY_CACHE_MS = 30_000;

/**
 * Least time from one signature of a key to the next while it signs batches (BatchSigner's
 * minIntervalMs). The proxies begin a few exchanges a turn (turn-admission.ts); without it a key
 * under load signed twice as often, half as many messages each (at 64 clients 5 a signature instead
 * of 11), and here SoftHSM's RSA-2048 costs the host about 2 ms of CPU a signature.
 */
const BATCH_SIGNATURE_INTERVAL_MS = 20;

/** What the proxies need of message signing: the narrow face of MemberSigning (tests fake it). */
export interface MessageSigning {
  /**
   * @throws CertValidation (OCSP missing or stale), UnknownMember, or the signer's error under
   *   CannotCreateSignature (e.g. CannotCreateSignature.TokenNotActive), all with `prefix`
   */
  sign(member: ClientId, message: MessageToSign, prefix: FaultPrefix): Promise<SignedMessage>;
}

export class MemberSigning implements MessageSigning {
  /** By member; at most TtlCache's 1024 members, the expired and then the oldest leaving first. */
  private readonly keys = new TtlCache<string, CachedKey>(KEY_CACHE_MS);
  private readonly signer: BatchSigner;

  constructor(
    private readonly client: SignerConnection,
    private readonly conf: () => GlobalConf,
  ) {
    this.signer = new BatchSigner((keyId, algorithm, digest) => this.client.call('signBinary', { keyId, algorithm, digest, raw: true }), { minIntervalMs: BATCH_SIGNATURE_INTERVAL_MS });
  }

  /**
   * @throws CertValidation (OCSP missing or stale), UnknownMember, or the signer's error under
   *   CannotCreateSignature (e.g. CannotCreateSignature.TokenNotActive), all with `prefix`
   */
  async sign(member: ClientId, message: MessageToSign, prefix: FaultPrefix): Promise<SignedMessage> {
    try {
      const { key, oldestThisUpdate } = await this.keyOf(memberOf(member));
      // Checked on every message, not only when the key is loaded: a responder that went away
      // must stop signing once the cached responses pass the configuration's freshness.
      const freshnessMs = this.conf().own.ocspFreshnessSeconds * 1000;
      if (Date.now() - oldestThisUpdate > freshnessMs) {
        this.keys.delete(formatClientId(memberOf(member)));
        throw new XrdError('CertValidation', { reason: `OCSP response is too old (thisUpdate: ${new Date(oldestThisUpdate).toISOString()}) for the signing certificate path of member ${formatClientId(memberOf(member))}` });
      }
      return await this.signer.sign(key, message);
    } catch (err) {
      // A key that stopped working (logout, removal) must not stay cached.
      this.keys.delete(formatClientId(memberOf(member)));
      const e = toXrdError(err);
      throw (e.code === 'CertValidation' || e.code === 'UnknownMember' ? e : e.within('CannotCreateSignature')).withPrefix(prefix);
    }
  }

  private keyOf(member: ClientId): Promise<CachedKey> {
    const name = formatClientId(member);
    return this.keys.get(name, () => this.loadKey(name));
  }

  private async loadKey(member: string): Promise<CachedKey> {
    const info = await this.client.call('memberSigningInfo', { memberId: member });
    const cert = Buffer.from(info.cert, 'base64');
    const path = buildCertPath(cert, this.conf(), info.chain.map((c) => Buffer.from(c, 'base64')));
    // OCSP responses for every certificate below the approved CA's top certificate.
    const needing = path.certs.slice(0, -1);
    const responses = await ocspResponsesOf(this.client, info, needing.map(certSha1));
    let oldestThisUpdate = Infinity;
    const ocspResponses = responses.map((der, i) => {
      if (!der) throw new XrdError('CertValidation', { reason: `No OCSP response for certificate ${i === 0 ? `of member ${member}` : 'of its CA'}` });
      oldestThisUpdate = Math.min(oldestThisUpdate, parseOcspResponse(der).responses[0]?.thisUpdate.getTime() ?? 0);
      return der;
    });
    return {
      key: { keyId: info.keyId, algorithm: info.algorithm, cert, intermediateCerts: path.certs.slice(1, -1), ocspResponses, batchSigningEnabled: info.batchSigningEnabled },
      oldestThisUpdate,
    };
  }
}

interface CachedKey {
  readonly key: SigningKey;
  /** Unix ms of the oldest embedded OCSP response's thisUpdate. */
  readonly oldestThisUpdate: number;
}
