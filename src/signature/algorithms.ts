/**
 * The XML Signature algorithm URIs X-Road uses and the signer's algorithm ids they stand for
 * (SHA512withRSA, SHA512withRSAandMGF1, SHA512withECDSA, …); SHA-512 is the default digest.
 */
import { XrdError } from '../platform/errors.ts';

export type DigestName = 'sha256' | 'sha384' | 'sha512';

export const DIGEST_URIS: Record<DigestName, string> = {
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha384: 'http://www.w3.org/2001/04/xmldsig-more#sha384',
  sha512: 'http://www.w3.org/2001/04/xmlenc#sha512',
};

const DIGEST_BY_URI = new Map(Object.entries(DIGEST_URIS).map(([name, uri]) => [uri, name as DigestName]));

/** Digests a certificate reference (XAdES CertDigest) may use: SHA-1 too, which EN 319 132 signers still write for certificates. */
export const CERT_DIGESTS: Readonly<Record<string, DigestName | 'sha1'>> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': 'sha1',
  ...Object.fromEntries(DIGEST_BY_URI),
};

export interface SignatureMethod {
  readonly uri: string;
  /** The signer's algorithm id. */
  readonly id: string;
  readonly digest: DigestName;
  readonly keyAlgorithm: 'RSA' | 'EC';
  readonly pss: boolean;
}

const methods: SignatureMethod[] = [];
for (const [digest, bits] of [['sha256', 256], ['sha384', 384], ['sha512', 512]] as const) {
  methods.push(
    { uri: `http://www.w3.org/2001/04/xmldsig-more#rsa-sha${bits}`, id: `SHA${bits}withRSA`, digest, keyAlgorithm: 'RSA', pss: false },
    { uri: `http://www.w3.org/2007/05/xmldsig-more#sha${bits}-rsa-MGF1`, id: `SHA${bits}withRSAandMGF1`, digest, keyAlgorithm: 'RSA', pss: true },
    { uri: `http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha${bits}`, id: `SHA${bits}withECDSA`, digest, keyAlgorithm: 'EC', pss: false },
  );
}
const METHOD_BY_URI = new Map(methods.map((m) => [m.uri, m]));
const METHOD_BY_ID = new Map(methods.map((m) => [m.id, m]));

/** @throws CannotCreateSignature for an algorithm id X-Road signatures do not use */
export function signatureMethodForId(id: string): SignatureMethod {
  const method = METHOD_BY_ID.get(id);
  if (!method) throw new XrdError('CannotCreateSignature', { reason: `unsupported signature algorithm ${id}` });
  return method;
}

/** @throws MalformedSignature for an unknown signature method URI */
export function signatureMethodForUri(uri: string): SignatureMethod {
  const method = METHOD_BY_URI.get(uri);
  if (!method) throw new XrdError('MalformedSignature', { reason: `unsupported signature method ${uri}` });
  return method;
}

/** @throws MalformedSignature for an unknown digest method URI */
export function digestForUri(uri: string): DigestName {
  const digest = DIGEST_BY_URI.get(uri);
  if (!digest) throw new XrdError('MalformedSignature', { reason: `unsupported digest method ${uri}` });
  return digest;
}
