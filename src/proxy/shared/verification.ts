/**
 * Verifying a signed message received from another security server (MESS_11) at the time it
 * arrives: the sender is the client for a request and the service's provider for a response.
 * Failures are reported as the reference does, under `SignatureVerification` with the verifying
 * proxy's prefix, e.g. `Server.ServerProxy.SignatureVerification.InvalidSignatureValue`.
 */
import type { GlobalConf } from '../../globalconf/global-conf.ts';
import { toXrdError, type FaultPrefix } from '../../platform/errors.ts';
import type { ClientId } from '../../protocol/identifiers.ts';
import { signedPartsOf, type ProxyContent, type ProxySignature } from '../../protocol/proxy-message.ts';
import { verifySignature, type VerifiedSignature } from '../../signature/verifier.ts';

export function verifyMessage(content: ProxyContent, signature: ProxySignature, conf: GlobalConf, sender: ClientId, prefix: FaultPrefix, at = new Date()): VerifiedSignature {
  try {
    return verifySignature(signature.signatureXml, signedPartsOf(content, signature), { conf, signer: sender, at });
  } catch (err) {
    throw toXrdError(err).within('SignatureVerification').withPrefix(prefix);
  }
}
