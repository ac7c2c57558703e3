/**
 * Verifying an X-Road message signature (MESS_11) in the reference's order: structure → hash chain
 * → signing certificate (nonRepudiation) → signer name per the CA's certificate profile →
 * signature value (every reference, then SignedInfo) → timestamp → certificate path and OCSP as of
 * the verification time. Errors are the reference's codes; hash-chain errors are reported under
 * MalformedSignature (e.g. MalformedSignature.InvalidHashChainRef).
 *
 * Both forms are accepted: 7.x, where the signature references `/message.xml` or, for batches and
 * attachments, `/sig-hashchainresult.xml`; and 8.x, where it references `/message.xml` and each
 * `/attachmentN` directly. Unlike the reference, a direct-form signature must cover every
 * attachment the message carries.
 */
import { constants, createHash, verify, type KeyObject } from 'node:crypto';
import { memberOfSigningCert } from '../certificates/certificate-profile.ts';
import { oneLineName, parseCertificate, x509Of, type CertificateFacts } from '../certificates/certificate.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, type ClientId } from '../protocol/identifiers.ts';
import { buildCertPath, type CertPath } from '../trust/cert-path.ts';
import { certIdOf, parseOcspResponse, sameCertId, type BasicOcspResponse } from '../trust/ocsp.ts';
import { ocspPolicyFor, verifyOcspResponse } from '../trust/ocsp-verifier.ts';
import { C14N_ALGORITHM, canonicalize } from '../xml/c14n.ts';
import { XmlError, attribute, child, childElements, parseXml, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { digestForUri, digestOf, signatureMethodForUri, type DigestSource, type SignatureMethod } from './algorithms.ts';
import { verifyHashChain } from './hash-chain.ts';
import { parseTimestampToken, verifyTimestamp, type TimestampToken, type VerifiedTimestamp } from './timestamp.ts';
import { NS, SIGNED_PROPERTIES_TYPE } from './xades.ts';

export const MESSAGE_URI = '/message.xml';
export const HASH_CHAIN_RESULT_URI = '/sig-hashchainresult.xml';
export const HASH_CHAIN_URI = '/sig-hashchain.xml';

/** What a signature covers: the message (SOAP, or REST header part), attachments, batch hash chain. */
export interface SignedParts {
  readonly message: Buffer;
  /** `/attachment1`, `/attachment2`, … (a REST body is `/attachment1`); large ones as digest sources. */
  readonly attachments?: readonly (Buffer | DigestSource)[];
  readonly hashChainResult?: Buffer;
  readonly hashChain?: Buffer;
}

export interface DataReference {
  readonly uri: string;
  readonly digestMethod: string;
  readonly digestValue: Buffer;
}

/** A signature document read and checked against the structure X-Road signatures have. */
export interface ParsedSignature {
  readonly signedInfo: XmlElement;
  readonly method: SignatureMethod;
  readonly signatureValue: Buffer;
  readonly dataReferences: readonly DataReference[];
  readonly signedProperties: XmlElement;
  readonly signedPropertiesReference: DataReference;
  readonly signingCert: Buffer;
  readonly signingTime: Date;
  readonly signingCertDigest: DataReference | undefined;
  readonly timestamp: Buffer | undefined;
  readonly extraCerts: readonly Buffer[];
  readonly ocspResponses: readonly Buffer[];
}

const DS = NS.ds;
const XADES = NS.xades;

/**
 * Messages signed in one batch carry the same signature document: the proxies see it once per
 * message. Parsed documents are kept by their SHA-256, and the checks that depend only on the
 * document (signed properties digest, signature value) are done once per parsed document.
 */
const parsedSignatures = new Map<string, ParsedSignature>();
const PARSED_SIGNATURES_LIMIT = 256;
const valueVerified = new WeakSet<ParsedSignature>();
/**
 * OCSP outcomes for one configuration, reused for a second: a signer's messages all carry the same
 * responses for its certificate path (until the signer's next refresh), and freshness is counted
 * in minutes (the reference keeps verification results 60 s). Keyed by the signing certificate and
 * the responses themselves, so every signature of that signer shares them.
 */
const ocspChecked = new Map<string, { conf: GlobalConf; at: number; facts: OcspFacts[] }>();
const OCSP_REUSE_MS = 1000;
const OCSP_CHECKED_LIMIT = 256;

function parseSignatureCached(xml: Buffer | string): ParsedSignature {
  // The document itself is the key: comparing it costs less than hashing it.
  const key = typeof xml === 'string' ? xml : xml.toString('latin1');
  let sig = parsedSignatures.get(key);
  if (!sig) {
    sig = parseSignature(xml);
    if (parsedSignatures.size >= PARSED_SIGNATURES_LIMIT) parsedSignatures.delete(parsedSignatures.keys().next().value!);
    parsedSignatures.set(key, sig);
  }
  return sig;
}

/** @throws MalformedSignature */
export function parseSignature(xml: Buffer | string): ParsedSignature {
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (err) {
    throw new XrdError('MalformedSignature', { reason: (err as XmlError).message }, { cause: err });
  }
  const malformed = (reason: string) => new XrdError('MalformedSignature', { reason });
  let signature = root;
  if (root.namespace === NS.asic && root.localName === 'XAdESSignatures') {
    const signatures = childElements(root);
    if (signatures.length !== 1 || signatures[0]!.namespace !== DS || signatures[0]!.localName !== 'Signature') throw malformed('XAdESSignatures must hold exactly one ds:Signature');
    signature = signatures[0]!;
  } else if (root.namespace !== DS || root.localName !== 'Signature') throw malformed(`unexpected root element ${root.name}`);

  const need = (parent: XmlElement, ns: string, name: string): XmlElement => {
    const e = child(parent, ns, name);
    if (!e) throw malformed(`${parent.localName} has no ${name}`);
    return e;
  };
  const base64 = (e: XmlElement): Buffer => {
    const text = textOf(e).replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw malformed(`${e.localName} is not base64`);
    return Buffer.from(text, 'base64');
  };
  const reference = (e: XmlElement): DataReference => {
    const method = attribute(need(e, DS, 'DigestMethod'), 'Algorithm');
    if (!method) throw malformed('DigestMethod without Algorithm');
    return { uri: attribute(e, 'URI') ?? '', digestMethod: method, digestValue: base64(need(e, DS, 'DigestValue')) };
  };

  const signedInfo = need(signature, DS, 'SignedInfo');
  if (attribute(need(signedInfo, DS, 'CanonicalizationMethod'), 'Algorithm') !== C14N_ALGORITHM) throw malformed('canonicalization must be inclusive C14N 1.0');
  const method = signatureMethodForUri(attribute(need(signedInfo, DS, 'SignatureMethod'), 'Algorithm') ?? '');
  const dataReferences: DataReference[] = [];
  let signedPropertiesReference: DataReference | undefined;
  for (const e of childElements(signedInfo)) {
    if (e.localName !== 'Reference' || e.namespace !== DS) continue;
    if (child(e, DS, 'Transforms')) throw malformed('references with transforms are not used by X-Road');
    const ref = reference(e);
    if (attribute(e, 'Type') === SIGNED_PROPERTIES_TYPE) signedPropertiesReference = ref;
    else dataReferences.push(ref);
  }
  if (!signedPropertiesReference) throw malformed('no reference to the signed properties');
  if (dataReferences.length === 0) throw malformed('the signature references no data');

  const keyInfo = child(signature, DS, 'KeyInfo');
  const certElement = keyInfo && child(child(keyInfo, DS, 'X509Data') ?? keyInfo, DS, 'X509Certificate');
  if (!certElement) throw malformed('Signature does not contain signing certificate');

  const spId = signedPropertiesReference.uri.startsWith('#') ? signedPropertiesReference.uri.slice(1) : '';
  let qualifying: XmlElement | undefined;
  for (const object of childElements(signature)) if (object.localName === 'Object') qualifying ??= child(object, XADES, 'QualifyingProperties');
  if (!qualifying) throw malformed('no xades:QualifyingProperties');
  const signedProperties = need(qualifying, XADES, 'SignedProperties');
  if (attribute(signedProperties, 'Id') !== spId) throw malformed(`signed properties reference ${signedPropertiesReference.uri} does not name the SignedProperties`);
  const sigProps = need(signedProperties, XADES, 'SignedSignatureProperties');
  const signingTime = new Date(textOf(need(sigProps, XADES, 'SigningTime')).trim());
  if (Number.isNaN(signingTime.getTime())) throw malformed('SigningTime is not a date');
  const certRef = child(sigProps, XADES, 'SigningCertificate') ?? child(sigProps, XADES, 'SigningCertificateV2');
  const certDigest = certRef && child(child(certRef, XADES, 'Cert') ?? certRef, XADES, 'CertDigest');

  let timestamp: Buffer | undefined;
  const extraCerts: Buffer[] = [];
  const ocspResponses: Buffer[] = [];
  const unsigned = child(qualifying, XADES, 'UnsignedProperties');
  const unsignedSig = unsigned && child(unsigned, XADES, 'UnsignedSignatureProperties');
  if (unsignedSig) {
    const stamp = child(unsignedSig, XADES, 'SignatureTimeStamp');
    if (stamp) timestamp = base64(child(stamp, XADES, 'EncapsulatedTimeStamp') ?? stamp);
    const values = child(unsignedSig, XADES, 'CertificateValues');
    if (values) for (const c of childElements(values)) extraCerts.push(base64(c));
    const revocation = child(unsignedSig, XADES, 'RevocationValues');
    const ocspValues = revocation && child(revocation, XADES, 'OCSPValues');
    if (ocspValues) for (const o of childElements(ocspValues)) ocspResponses.push(base64(o));
  }
  return {
    signedInfo,
    method,
    signatureValue: base64(need(signature, DS, 'SignatureValue')),
    dataReferences,
    signedProperties,
    signedPropertiesReference,
    signingCert: base64(certElement),
    signingTime,
    signingCertDigest: certDigest ? reference(certDigest) : undefined,
    timestamp,
    extraCerts,
    ocspResponses,
  };
}

export interface CoreVerification {
  /** Parts whose digests were checked. */
  readonly verifiedParts: readonly string[];
  /** Parts a hash chain names that the caller did not have (only with `allowMissingParts`). */
  readonly unverifiedParts: readonly string[];
}

/**
 * The cryptographic core: hash chain, every reference, the signature value. What libxmlsec1 checks,
 * plus the hash chain and the coverage of every attachment.
 * @throws MalformedSignature[.…] (hash chain), InvalidReference, InvalidSignatureValue
 */
export function verifySignatureCore(sig: ParsedSignature, parts: SignedParts, options: { allowMissingParts?: boolean } = {}): CoreVerification {
  const attachments = parts.attachments ?? [];
  const inputs = new Map<string, Buffer | DigestSource>([[MESSAGE_URI, parts.message]]);
  attachments.forEach((a, i) => inputs.set(`/attachment${i + 1}`, a));
  const usesHashChain = sig.dataReferences.some((r) => r.uri === HASH_CHAIN_RESULT_URI);

  let verifiedParts: string[] = [];
  let unverifiedParts: string[] = [];
  if (usesHashChain) {
    if (!parts.hashChainResult || !parts.hashChain) throw new XrdError('InvalidReference', { uri: HASH_CHAIN_RESULT_URI, reason: 'cannot resolve URI: the message has no hash chain' });
    try {
      const chain = verifyHashChain(parts.hashChainResult, new Map([[HASH_CHAIN_URI, parts.hashChain]]), inputs, { requireAllInputs: !options.allowMissingParts });
      verifiedParts = [...chain.verifiedInputs];
      unverifiedParts = [...chain.missingInputs];
    } catch (err) {
      throw err instanceof XrdError ? err.within('MalformedSignature') : err;
    }
  }

  const invalid = (reason: string) => new XrdError('InvalidSignatureValue', { reason });
  for (const ref of sig.dataReferences) {
    const data = ref.uri === HASH_CHAIN_RESULT_URI ? parts.hashChainResult : inputs.get(ref.uri);
    if (!data) throw new XrdError('InvalidReference', { uri: ref.uri, reason: 'cannot resolve URI' });
    if (!digestOf(data, digestForUri(ref.digestMethod)).equals(ref.digestValue)) throw invalid(`digest of ${ref.uri} does not match`);
    if (!usesHashChain) verifiedParts.push(ref.uri);
  }
  if (!usesHashChain) {
    const uncovered = [...inputs.keys()].filter((uri) => !verifiedParts.includes(uri));
    if (uncovered.length > 0) throw new XrdError('InvalidReference', { uri: uncovered.join(', '), reason: 'the signature does not cover this part of the message' });
  }
  if (!valueVerified.has(sig)) {
    const sp = sig.signedPropertiesReference;
    if (!createHash(digestForUri(sp.digestMethod)).update(canonicalize(sig.signedProperties)).digest().equals(sp.digestValue)) throw invalid('digest of the signed properties does not match');
    if (!verifySignedInfo(sig)) throw invalid('the signature value does not verify with the signing certificate');
    valueVerified.add(sig);
  }
  return { verifiedParts, unverifiedParts };
}

export interface VerifyOptions {
  readonly conf: GlobalConf;
  /** Who must have signed: the message's client (requests) or service provider (responses). */
  readonly signer: ClientId;
  /**
   * When the certificate path and OCSP responses must be valid: now for messages in flight (the
   * proxies); by default the timestamp's time, or the signing time when there is no timestamp.
   */
  readonly at?: Date;
  /** Report, rather than fail, hash-chain parts the caller does not have (containers without attachments). */
  readonly allowMissingParts?: boolean;
}

export interface OcspFacts {
  readonly subject: string;
  readonly producedAt: Date;
  readonly thisUpdate: Date;
}

export interface VerifiedSignature extends CoreVerification {
  readonly signer: ClientId;
  readonly signingCert: CertificateFacts;
  readonly signingTime: Date;
  readonly timestamp: VerifiedTimestamp | undefined;
  /** The time the certificate path and OCSP responses were checked for. */
  readonly validatedAt: Date;
  readonly ocsp: readonly OcspFacts[];
  readonly hashChain: boolean;
}

/**
 * Verifies a signature (MESS_11).
 * @throws MalformedSignature[.InvalidHashChainRef|.InvalidHashChain|.HashChainUnusedInputs|…],
 *   InvalidReference, IncorrectCertificate, InvalidSignatureValue, TimestampValidation,
 *   CannotCreateCertPath, InvalidCertPath, CertValidityTime, CertValidation, IncorrectValidationInfo
 */
export function verifySignature(xml: Buffer | string | ParsedSignature, parts: SignedParts, options: VerifyOptions): VerifiedSignature {
  const sig = typeof xml === 'string' || Buffer.isBuffer(xml) ? parseSignatureCached(xml) : xml;
  const core = () => verifySignatureCore(sig, parts, options);
  // The hash chain comes before the certificate checks, the other references after them.
  const hashChain = sig.dataReferences.some((r) => r.uri === HASH_CHAIN_RESULT_URI);
  let coreResult = hashChain ? core() : undefined;

  const cert = parseCertificate(sig.signingCert);
  if (!cert.keyUsage?.includes('nonRepudiation')) throw new XrdError('MalformedSignature', { reason: `Certificate ${cert.subject} is not a signing certificate` });
  if (sig.signingCertDigest && !createHash(digestForUri(sig.signingCertDigest.digestMethod)).update(cert.der).digest().equals(sig.signingCertDigest.digestValue)) {
    throw new XrdError('MalformedSignature', { reason: 'SigningCertificate does not match the certificate in KeyInfo' });
  }

  let token: TimestampToken | undefined;
  if (sig.timestamp) token = parseTimestampToken(sig.timestamp);
  const at = options.at ?? token?.genTime ?? sig.signingTime;
  let path: CertPath | undefined;
  let pathError: unknown;
  try {
    path = buildCertPath(cert.der, options.conf, sig.extraCerts, at);
  } catch (err) {
    pathError = err;
  }
  if (path) {
    const named = memberOfSigningCert(cert.der, path.ca.certificateProfileInfo, options.signer.instance);
    const s = options.signer;
    if (named.instance !== s.instance || named.memberClass !== s.memberClass || named.memberCode !== s.memberCode) {
      throw new XrdError('IncorrectCertificate', { reason: `Name in certificate (${formatClientId(named)}) does not match name in message (${formatClientId(s)})` });
    }
  }

  coreResult ??= core();

  let timestamp: VerifiedTimestamp | undefined;
  if (token) timestamp = verifyTimestamp(token, sig.signatureValue, options.conf.tsaCertificates());

  if (!path) throw pathError;
  const ocsp = checkOcsp(sig, path, options.conf, at);
  return { ...coreResult, signer: options.signer, signingCert: cert, signingTime: sig.signingTime, timestamp, validatedAt: at, ocsp, hashChain };
}

/** Every certificate of the path below the CA's top certificate needs a good OCSP response in the signature. */
function checkOcsp(sig: ParsedSignature, path: CertPath, conf: GlobalConf, at: Date): OcspFacts[] {
  const key = [sig.signingCert, ...sig.ocspResponses].map((b) => b.toString('base64')).join('|');
  const known = ocspChecked.get(key);
  if (known && known.conf === conf && Math.abs(at.getTime() - known.at) < OCSP_REUSE_MS) return known.facts;
  const facts = checkOcspNow(sig, path, conf, at);
  if (ocspChecked.size >= OCSP_CHECKED_LIMIT) ocspChecked.delete(ocspChecked.keys().next().value!);
  ocspChecked.set(key, { conf, at: at.getTime(), facts });
  return facts;
}

function checkOcspNow(sig: ParsedSignature, path: CertPath, conf: GlobalConf, at: Date): OcspFacts[] {
  if (sig.ocspResponses.length === 0) throw new XrdError('MalformedSignature', { reason: 'Could not get any OCSP elements from signature' });
  let responses: BasicOcspResponse[];
  try {
    responses = sig.ocspResponses.map((r) => parseOcspResponse(r));
  } catch (err) {
    throw new XrdError('MalformedSignature', { reason: `an OCSP response in the signature cannot be read: ${(err as Error).message}` }, { cause: err });
  }
  const facts: OcspFacts[] = [];
  for (let i = 0; i + 1 < path.certs.length; i++) {
    const subject = path.certs[i]!;
    const issuer = path.certs[i + 1]!;
    const response = responses.find((r) => r.responses.some((s) => sameCertId(s.certId, certIdOf(subject, issuer, s.certId.hashAlgorithm))));
    const name = oneLineName(x509Of(subject).subject);
    if (!response) throw new XrdError('CertValidation', { reason: `Unable to find OCSP response for certificate ${name}` });
    const single = verifyOcspResponse(response, subject, issuer, at, ocspPolicyFor(conf, issuer));
    facts.push({ subject: name, producedAt: response.producedAt, thisUpdate: single.thisUpdate });
  }
  return facts;
}

function verifySignedInfo(sig: ParsedSignature): boolean {
  const key = x509Of(sig.signingCert).publicKey;
  const data = Buffer.from(canonicalize(sig.signedInfo));
  const m = sig.method;
  if (m.keyAlgorithm !== key.asymmetricKeyType?.toUpperCase()) return false;
  if (m.keyAlgorithm === 'EC') return verify(m.digest, data, { key, dsaEncoding: 'ieee-p1363' }, ecdsaRaw(sig.signatureValue, key));
  if (m.pss) return verify(m.digest, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig.signatureValue);
  return verify(m.digest, data, key, sig.signatureValue);
}

/** r‖s with each half padded to the curve size (the reference pads only to the longer half). */
function ecdsaRaw(value: Buffer, key: KeyObject): Buffer {
  const size = Math.ceil(Number(key.asymmetricKeyDetails?.namedCurve?.match(/\d+/)?.[0] ?? 256) / 8);
  if (value.length === 2 * size || value.length % 2 !== 0) return value;
  const half = value.length / 2;
  const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, size - b.length)), b]);
  return Buffer.concat([pad(value.subarray(0, half)), pad(value.subarray(half))]);
}
