/**
 * Verifying a signed message received from another security server (MESS_11) at the time it
 * arrives: the sender is the client for a request and the service's provider for a response. Failures are reported as the reference does, under
 * `SignatureVerification` with the verifying proxy's prefix, e.g.
 * `Server.ServerProxy.SignatureVerification.InvalidSignatureValue`.
 */
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { toXrdError, type FaultPrefix } from '../platform/errors.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import { verifySignature, type VerifiedSignature } from '../signature/verifier.ts';
import type { Envelope } from './transport.ts';

export function verifyEnvelope(envelope: Envelope, conf: GlobalConf, sender: ClientId, prefix: FaultPrefix): VerifiedSignature {
  try {
    const { signed } = envelope;
    return verifySignature(
      signed.signatureXml,
      {
        message: envelope.message,
        attachments: envelope.attachments.map((a) => a.body),
        hashChainResult: signed.hashChainResult === undefined ? undefined : Buffer.from(signed.hashChainResult),
        hashChain: signed.hashChain === undefined ? undefined : Buffer.from(signed.hashChain),
      },
      { conf, signer: sender, at: new Date() },
    );
  } catch (err) {
    throw toXrdError(err).within('SignatureVerification').withPrefix(prefix);
  }
}
