/**
 * The XML Signature algorithm URIs X-Road uses, looked up in the signer's one algorithm table
 * (signerapi/algorithms.ts: SHA512withRSA, SHA512withRSAandMGF1, SHA512withECDSA, …), and the digest
 * URIs; SHA-512 is the default digest.
 */
import { XrdError } from '../platform/errors.ts';
import { DIGEST_URIS, SIGN_ALGORITHMS, SIGN_ALGORITHMS_BY_URI, type DigestName, type SignAlgorithm } from '../signerapi/algorithms.ts';

export { DIGEST_URIS, type DigestName };

const DIGEST_BY_URI = new Map(Object.entries(DIGEST_URIS).map(([name, uri]) => [uri, name as DigestName]));

/** Digests a certificate reference (XAdES CertDigest) may use: SHA-1 too, which EN 319 132 signers still write for certificates. */
export const CERT_DIGESTS: Readonly<Record<string, DigestName | 'sha1'>> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': 'sha1',
  ...Object.fromEntries(DIGEST_BY_URI),
};

/** A row of the signer's algorithm table (signerapi/algorithms.ts): its `uri` is the SignatureMethod, `id` the signer's id. */
export type SignatureMethod = SignAlgorithm;

/** @throws CannotCreateSignature for an algorithm id X-Road signatures do not use */
export function signatureMethodForId(id: string): SignatureMethod {
  const method = SIGN_ALGORITHMS.get(id);
  if (!method) throw new XrdError('CannotCreateSignature', { reason: `unsupported signature algorithm ${id}` });
  return method;
}

/** @throws MalformedSignature for an unknown signature method URI */
export function signatureMethodForUri(uri: string): SignatureMethod {
  const method = SIGN_ALGORITHMS_BY_URI.get(uri);
  if (!method) throw new XrdError('MalformedSignature', { reason: `unsupported signature method ${uri}` });
  return method;
}

/** @throws MalformedSignature for an unknown digest method URI */
export function digestForUri(uri: string): DigestName {
  const digest = DIGEST_BY_URI.get(uri);
  if (!digest) throw new XrdError('MalformedSignature', { reason: `unsupported digest method ${uri}` });
  return digest;
}
