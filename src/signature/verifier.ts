/**
 * Verifying an X-Road message signature (MESS_11) in the reference's order: structure → hash chain
 * → signing certificate (nonRepudiation) → signer name per the CA's certificate profile →
 * signature value (every reference, then SignedInfo) → timestamp → certificate path and OCSP as of
 * the verification time. Errors are the reference's codes; hash-chain errors are reported under
 * MalformedSignature (e.g. MalformedSignature.InvalidHashChainRef).
 *
 * What the reference's verifier (Apache Santuario behind its SignatureVerifier) accepts is accepted
 * here: the `ds:Signature` as the document root (EU DSS, the X-Road 8 form) or inside
 * `asic:XAdESSignatures` (any version of its namespace); any Id values; SignedInfo and references
 * canonicalised with inclusive or exclusive C14N 1.0, with or without comments; transforms made of
 * those on any reference; SigningCertificate or SigningCertificateV2. Same-document references
 * (`#id`) name the first element with that `Id`, as the reference's IdResolver finds it, and keep
 * that element's comments for a #WithComments transform as it does. Both message forms are
 * accepted: 7.x, where the signature references `/message.xml` or, for batches and attachments,
 * `/sig-hashchainresult.xml`; and 8.x, where it references `/message.xml` and each `/attachmentN`
 * directly. Unlike the reference, every part the message carries must be covered, and the signed
 * properties must name the certificate in KeyInfo (signing-certificate.ts).
 */
import { constants, createHash, hash, verify, type KeyObject } from 'node:crypto';
import { memberOfSigningCert } from '../certificates/certificate-profile.ts';
import { oneLineName, parseCertificate, x509Of, type CertificateFacts } from '../certificates/certificate.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, type ClientId } from '../protocol/identifiers.ts';
import { buildCertPath, type CertPath } from '../trust/cert-path.ts';
import { certIdOf, parseOcspResponse, sameCertId, type BasicOcspResponse } from '../trust/ocsp.ts';
import { ocspPolicyFor, verifyOcspResponse } from '../trust/ocsp-verifier.ts';
import { SourceDocument } from '../xml/canonical-source.ts';
import { INCLUSIVE, c14nMethodOfElement, canonicalize, canonicalizeDocument, type C14nMethod } from '../xml/c14n.ts';
import { XmlError, attribute, child, childElements, parseXml, parseXmlDocument, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { CERT_DIGESTS, digestForUri, signatureMethodForUri, type SignatureMethod } from './algorithms.ts';
import { digestOf, type DigestSource } from './digest-source.ts';
import { verifyHashChain, type ChainInput } from './hash-chain.ts';
import { parseTimestampToken, verifyTimestamp, type TimestampToken, type VerifiedTimestamp } from './timestamp.ts';
import { checkSigningCertificate, type SigningCertRef } from './signing-certificate.ts';
import { NS } from './xades.ts';

export const MESSAGE_URI = '/message.xml';
export const HASH_CHAIN_RESULT_URI = '/sig-hashchainresult.xml';
export const HASH_CHAIN_URI = '/sig-hashchain.xml';

/** What a signature covers: the message (SOAP, or REST header part), attachments, batch hash chain. */
export interface SignedParts {
  readonly message: Buffer | DigestSource;
  /** `/attachment1`, `/attachment2`, … (a REST body is `/attachment1`). */
  readonly attachments?: readonly (Buffer | DigestSource)[];
  readonly hashChainResult?: Buffer;
  readonly hashChain?: Buffer;
}

/** A ds:Reference of SignedInfo. */
export interface DataReference {
  readonly uri: string;
  /** C14N transforms, applied in order (any other transform is refused when parsing). */
  readonly transforms: readonly C14nMethod[];
  readonly digestMethod: string;
  readonly digestValue: Buffer;
}

/** A reference to an element of the signature document (`#id`) and that element. */
export interface DocumentReference extends DataReference {
  readonly target: XmlElement;
}

/** A signature document read and checked against the structure X-Road signatures have. */
export interface ParsedSignature {
  readonly signedInfo: XmlElement;
  /** How SignedInfo is canonicalised. */
  readonly c14n: C14nMethod;
  readonly method: SignatureMethod;
  readonly signatureValue: Buffer;
  /** References to the message's parts (`/message.xml`, `/attachmentN`, `/sig-hashchainresult.xml`). */
  readonly dataReferences: readonly DataReference[];
  /** References to elements of the signature document, the signed properties among them. */
  readonly documentReferences: readonly DocumentReference[];
  readonly signedProperties: XmlElement;
  readonly signedPropertiesReference: DataReference;
  readonly signingCert: Buffer;
  readonly signingTime: Date;
  /** The Certs of SigningCertificate(V2), which must name the signing certificate; undefined when there is neither. */
  readonly signingCertificate: readonly SigningCertRef[] | undefined;
  readonly timestamp: Buffer | undefined;
  readonly extraCerts: readonly Buffer[];
  readonly ocspResponses: readonly Buffer[];
  /** Canonicalises an element of this document (from its source text where that is written canonically). */
  readonly canonicalize: (element: XmlElement, method: C14nMethod) => string;
}

export interface ParseOptions {
  /** Always build the tree with the general parser (`parseXml`), as the differential tests compare. */
  readonly generalParser?: boolean;
}

const DS = NS.ds;
const XADES = NS.xades;

/**
 * Messages signed in one batch carry the same signature document: the proxies see it once per
 * message. Parsed documents are kept by their SHA-256, the least recently used leaving first once
 * the documents kept add up to PARSED_SIGNATURES_BYTES; a parsed document takes about six times its
 * size in memory (measured: 35 KB of tree and strings for a 6.4 KB signature). Real signatures,
 * with their certificates, OCSP responses and timestamp, weigh 6–12 KB (the reference's in
 * ../shared/xroad-vectors); one over PARSED_SIGNATURE_MAX_BYTES is verified all the same, as the
 * reference would, but parsed for each use and not kept, so padded documents cannot fill the
 * cache or push the real ones out. (What a message may carry at all is the proxies' maxSoapBytes.)
 * The checks that depend only on the document (same-document references, signature value) are done
 * once per parsed document.
 */
const parsedSignatures = new Map<string, { readonly sig: ParsedSignature; readonly bytes: number }>();
let parsedSignatureBytes = 0;
export const PARSED_SIGNATURES_BYTES = 4 * 1024 * 1024;
export const PARSED_SIGNATURE_MAX_BYTES = 256 * 1024;
const valueVerified = new WeakSet<ParsedSignature>();
/**
 * OCSP outcomes for one configuration, reused for a second: a signer's messages all carry the same
 * responses for its certificate path (until the signer's next refresh), and freshness is counted
 * in minutes (the reference keeps verification results 60 s). Keyed by the SHA-256 of the signing
 * certificate and the responses themselves, so every signature of that signer shares them.
 */
const ocspChecked = new Map<string, { conf: GlobalConf; at: number; facts: OcspFacts[] }>();
const OCSP_REUSE_MS = 1000;
const OCSP_CHECKED_LIMIT = 256;

/** What the parsed-signature cache holds now (for tests and monitoring). */
export function parsedSignatureCacheUsage(): { readonly documents: number; readonly bytes: number } {
  return { documents: parsedSignatures.size, bytes: parsedSignatureBytes };
}

function parseSignatureCached(xml: Buffer | string): ParsedSignature {
  const bytes = typeof xml === 'string' ? Buffer.byteLength(xml) : xml.length;
  if (bytes > PARSED_SIGNATURE_MAX_BYTES) return parseSignature(xml);
  const key = createHash('sha256').update(xml).digest('base64');
  const known = parsedSignatures.get(key);
  if (known) {
    // Most recently used last: the first entries are the ones to go.
    parsedSignatures.delete(key);
    parsedSignatures.set(key, known);
    return known.sig;
  }
  const sig = parseSignature(xml);
  parsedSignatures.set(key, { sig, bytes });
  parsedSignatureBytes += bytes;
  for (const [oldest, entry] of parsedSignatures) {
    if (parsedSignatureBytes <= PARSED_SIGNATURES_BYTES) break;
    parsedSignatures.delete(oldest);
    parsedSignatureBytes -= entry.bytes;
  }
  return sig;
}

/**
 * Reads a signature document. Documents written as ours are (SourceDocument's form; the
 * reference's too where it writes no character references) are read by the quick reader, which builds the same tree as the general parser and lets
 * SignedInfo and the referenced elements be canonicalised by copying their source text; any other
 * document goes to the general parser. Everything after the tree is the same code either way.
 * @throws MalformedSignature
 */
export function parseSignature(xml: Buffer | string, options: ParseOptions = {}): ParsedSignature {
  const source = options.generalParser ? undefined : SourceDocument.read(xml);
  if (source) {
    try {
      return signatureOf(source.root, source);
    } catch (err) {
      if (err !== OUTSIDE_FORM) throw err;
    }
  }
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (err) {
    throw new XrdError('MalformedSignature', { reason: (err as XmlError).message }, { cause: err });
  }
  return signatureOf(root, undefined);
}

/** Thrown where a quickly read document turns out to be outside the form after all (a base64 value with white space): the general path reads it. */
const OUTSIDE_FORM = Symbol('outside the quick form');

/** The signature in a document's tree; `source` when the quick reader built it. */
function signatureOf(root: XmlElement, source: SourceDocument | undefined): ParsedSignature {
  const base64 = source ? compactBase64 : generalBase64;
  const malformed = (reason: string) => new XrdError('MalformedSignature', { reason });
  // The reference takes the first ds:Signature of the document, whatever the root is.
  const signature = firstElement(root, (e) => e.namespace === DS && e.localName === 'Signature');
  if (!signature) throw malformed('Could not find element "ds:Signature"');

  const need = (parent: XmlElement, ns: string, name: string): XmlElement => {
    const e = child(parent, ns, name);
    if (!e) throw malformed(`${parent.localName} has no ${name}`);
    return e;
  };
  const c14nOf = (e: XmlElement): C14nMethod => {
    const method = c14nMethodOfElement(e);
    if (!method) throw malformed(`unsupported ${e.localName === 'Transform' ? 'transform' : 'canonicalization method'} ${attribute(e, 'Algorithm') ?? '(none)'}`);
    return method;
  };
  const digestReference = (e: XmlElement) => {
    const method = attribute(need(e, DS, 'DigestMethod'), 'Algorithm');
    if (!method) throw malformed('DigestMethod without Algorithm');
    return { digestMethod: method, digestValue: base64(need(e, DS, 'DigestValue')) };
  };

  const signedInfo = need(signature, DS, 'SignedInfo');
  const c14n = c14nOf(need(signedInfo, DS, 'CanonicalizationMethod'));
  const method = signatureMethodForUri(attribute(need(signedInfo, DS, 'SignatureMethod'), 'Algorithm') ?? '');
  const dataReferences: DataReference[] = [];
  const documentReferences: DocumentReference[] = [];
  const byId = source ? source.ids : indexById(root);
  for (const e of childElements(signedInfo)) {
    if (e.localName !== 'Reference' || e.namespace !== DS) continue;
    const transforms = child(e, DS, 'Transforms');
    const { digestMethod, digestValue } = digestReference(e);
    digestForUri(digestMethod); // an unknown digest method is MalformedSignature already here
    const ref: DataReference = {
      uri: attribute(e, 'URI') ?? '',
      transforms: transforms ? childElements(transforms).map(c14nOf) : [],
      digestMethod,
      digestValue,
    };
    if (!ref.uri.startsWith('#')) {
      dataReferences.push(ref);
      continue;
    }
    const target = byId.get(ref.uri.slice(1));
    if (!target) throw new XrdError('InvalidReference', { uri: ref.uri, reason: 'no element has this Id' });
    documentReferences.push({ ...ref, target });
  }

  const keyInfo = child(signature, DS, 'KeyInfo');
  const certElement = keyInfo && child(child(keyInfo, DS, 'X509Data') ?? keyInfo, DS, 'X509Certificate');
  if (!certElement) throw malformed('Signature does not contain signing certificate');

  // XAdES: SignedInfo must reference the SignedProperties of the signature's QualifyingProperties.
  const spReference = documentReferences.find((r) => r.target.namespace === XADES && r.target.localName === 'SignedProperties');
  if (!spReference) throw malformed('no reference to the signed properties');
  const signedProperties = spReference.target;
  const qualifying = signedProperties.parent;
  if (qualifying?.namespace !== XADES || qualifying.localName !== 'QualifyingProperties') throw malformed('SignedProperties is not in xades:QualifyingProperties');
  const sigProps = need(signedProperties, XADES, 'SignedSignatureProperties');
  const signingTime = new Date(textOf(need(sigProps, XADES, 'SigningTime')).trim());
  if (Number.isNaN(signingTime.getTime())) throw malformed('SigningTime is not a date');
  const certRef = child(sigProps, XADES, 'SigningCertificate') ?? child(sigProps, XADES, 'SigningCertificateV2');
  const signingCertificate = certRef && childElements(certRef).filter((c) => c.localName === 'Cert' && c.namespace === XADES).map((c): SigningCertRef => {
    const v1 = child(c, XADES, 'IssuerSerial');
    const v2 = child(c, XADES, 'IssuerSerialV2');
    const issuerSerial = v1 ? { issuerName: textOf(need(v1, DS, 'X509IssuerName')), serialNumber: textOf(need(v1, DS, 'X509SerialNumber')) } : v2 && { der: base64(v2) };
    return { ...digestReference(need(c, XADES, 'CertDigest')), issuerSerial };
  });

  let timestamp: Buffer | undefined;
  const extraCerts: Buffer[] = [];
  const ocspResponses: Buffer[] = [];
  const unsigned = child(qualifying, XADES, 'UnsignedProperties');
  const unsignedSig = unsigned && child(unsigned, XADES, 'UnsignedSignatureProperties');
  if (unsignedSig) {
    const stamp = child(unsignedSig, XADES, 'SignatureTimeStamp');
    if (stamp) timestamp = base64(child(stamp, XADES, 'EncapsulatedTimeStamp') ?? stamp);
    const values = child(unsignedSig, XADES, 'CertificateValues');
    const decoded = new Map<XmlElement, Buffer>();
    if (values) {
      for (const c of childElements(values)) {
        const der = base64(c);
        extraCerts.push(der);
        decoded.set(c, der);
      }
    }
    checkCertificateRefs(byId, unsignedSig, decoded, base64);
    const revocation = child(unsignedSig, XADES, 'RevocationValues');
    const ocspValues = revocation && child(revocation, XADES, 'OCSPValues');
    if (ocspValues) for (const o of childElements(ocspValues)) ocspResponses.push(base64(o));
  }
  return {
    signedInfo,
    c14n,
    method,
    signatureValue: base64(need(signature, DS, 'SignatureValue')),
    dataReferences,
    documentReferences,
    signedProperties,
    signedPropertiesReference: spReference,
    signingCert: base64(certElement),
    signingTime,
    signingCertificate,
    timestamp,
    extraCerts,
    ocspResponses,
    canonicalize: source ? (e, m) => source.canonicalize(e, m) ?? canonicalize(e, m) : canonicalize,
  };
}

/**
 * CompleteCertificateRefs: each Cert names (by URI) an encapsulated certificate whose digest it
 * gives, as the reference checks (`decoded`: the CertificateValues already read).
 */
function checkCertificateRefs(byId: ReadonlyMap<string, XmlElement>, unsignedSig: XmlElement, decoded: ReadonlyMap<XmlElement, Buffer>, base64: (e: XmlElement) => Buffer): void {
  const refs = child(unsignedSig, XADES, 'CompleteCertificateRefs');
  const certRefs = refs && child(refs, XADES, 'CertRefs');
  if (!certRefs) return;
  for (const cert of childElements(certRefs)) {
    const uri = attribute(cert, 'URI');
    if (!uri) throw new XrdError('MalformedSignature', { reason: 'Missing certificate id attribute' });
    const element = byId.get(uri.startsWith('#') ? uri.slice(1) : uri);
    if (!element) throw new XrdError('MalformedSignature', { reason: `Could not find certificate with id ${uri}` });
    const certDigest = child(cert, XADES, 'CertDigest');
    const method = certDigest && child(certDigest, DS, 'DigestMethod');
    const value = certDigest && child(certDigest, DS, 'DigestValue');
    const algorithm = method && CERT_DIGESTS[attribute(method, 'Algorithm') ?? ''];
    if (!algorithm || !value) throw new XrdError('MalformedSignature', { reason: `Certificate ${uri} has no digest` });
    // A signer sends the same CA certificates with every message: each pair is digested once.
    const digest = base64(value);
    const der = decoded.get(element) ?? base64(element);
    const key = `${algorithm} ${digest.toString('base64')}`;
    if (certRefsChecked.get(key)?.equals(der)) continue;
    if (!createHash(algorithm).update(der).digest().equals(digest)) {
      throw new XrdError('MalformedSignature', { reason: `Certificate ${uri} digest does not match` });
    }
    // Kept as decoded bytes, not as the document's text (a slice of it would keep the whole
    // document alive), and only what is certificate-sized.
    if (der.length > CERT_REF_MAX_BYTES) continue;
    if (certRefsChecked.size >= CERT_REFS_CHECKED_LIMIT) certRefsChecked.delete(certRefsChecked.keys().next().value!);
    certRefsChecked.set(key, der);
  }
}
const certRefsChecked = new Map<string, Buffer>();
const CERT_REFS_CHECKED_LIMIT = 256;
const CERT_REF_MAX_BYTES = 16 * 1024;

/** Elements by Id, the first in document order for each, as the reference's IdResolver finds them. */
function indexById(root: XmlElement): Map<string, XmlElement> {
  const index = new Map<string, XmlElement>();
  const visit = (e: XmlElement) => {
    for (const a of e.attributes) if (a.name === 'Id' && !index.has(a.value)) index.set(a.value, e);
    for (const node of e.children) if (node.kind === 'element') visit(node);
  };
  visit(root);
  return index;
}

/** The first element in document order (the element itself first) that satisfies `test`. */
function firstElement(from: XmlElement, test: (e: XmlElement) => boolean): XmlElement | undefined {
  if (test(from)) return from;
  for (const node of from.children) {
    if (node.kind !== 'element') continue;
    const found = firstElement(node, test);
    if (found) return found;
  }
  return undefined;
}

/** The element's base64 text (whitespace allowed, which Buffer.from skips). */
function generalBase64(e: XmlElement): Buffer {
  const text = textOf(e);
  if (!BASE64.test(text)) throw new XrdError('MalformedSignature', { reason: `${e.localName} is not base64` });
  return Buffer.from(text, 'base64');
}
const BASE64 = /^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$/;

/**
 * The element's base64 text when it is written without white space, as we write it: then decoding
 * alone proves it is base64 (Buffer.from skips any other character and stops at `=`, so the bytes
 * come out short; it takes base64url's letters too, which are looked for apart), for the cost of
 * decoding, where the regular expression costs more again. Any other text, invalid or not, is the
 * general path's to judge.
 */
export function compactBase64(e: XmlElement): Buffer {
  const text = textOf(e);
  const bytes = Buffer.from(text, 'base64');
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  // Buffer.from also takes base64url's `-` and `_`, which the general path refuses.
  if (text.length % 4 !== 0 || bytes.length !== (text.length / 4) * 3 - padding || text.includes('-') || text.includes('_')) throw OUTSIDE_FORM;
  return bytes;
}

/** The octets a reference's digest is over: its target (canonicalised) or data, through its transforms. */
function referencedOctets(ref: DataReference, data: XmlElement | Buffer, c14n: ParsedSignature['canonicalize'] = canonicalize): Buffer | string {
  const [first, ...rest] = ref.transforms;
  // A same-document reference without transforms is canonicalised as inclusive C14N without comments (XML-DSig §4.3.3.2).
  let octets: Buffer | string = Buffer.isBuffer(data) ? (first ? canonicalizeDocument(parseReferenced(ref, data), first) : data) : c14n(data, first ?? INCLUSIVE);
  for (const method of rest) octets = canonicalizeDocument(parseReferenced(ref, octets), method);
  return octets;
}

function parseReferenced(ref: DataReference, data: Buffer | string) {
  try {
    return parseXmlDocument(data);
  } catch (err) {
    throw new XrdError('InvalidSignatureValue', { reason: `cannot canonicalise ${ref.uri}: ${(err as XmlError).message}` }, { cause: err });
  }
}

export interface CoreVerification {
  /** Parts whose digests were checked. */
  readonly verifiedParts: readonly string[];
  /** Parts a hash chain names that the caller did not have (only with `allowMissingParts`). */
  readonly unverifiedParts: readonly string[];
}

export interface CoreOptions {
  /**
   * Verify as the reference's container verifier does: the message is read for the hash chain,
   * attachments the container holds are checked against it, and parts it names that the container
   * leaves out are reported (unverifiedParts) rather than refused.
   */
  readonly allowMissingParts?: boolean;
}

/**
 * The cryptographic core: hash chain, every reference, the signature value. What libxmlsec1 checks,
 * plus the hash chain and the coverage of every part.
 * @throws MalformedSignature[.…] (hash chain), InvalidReference, InvalidSignatureValue
 */
export function verifySignatureCore(sig: ParsedSignature, parts: SignedParts, options: CoreOptions = {}): CoreVerification {
  const byUri = new Map<string, Buffer | DigestSource>([[MESSAGE_URI, parts.message]]);
  (parts.attachments ?? []).forEach((a, i) => byUri.set(`/attachment${i + 1}`, a));
  const usesHashChain = sig.dataReferences.some((r) => r.uri === HASH_CHAIN_RESULT_URI);

  const verified = new Set<string>();
  let unverifiedParts: readonly string[] = [];
  if (usesHashChain) {
    if (!parts.hashChainResult || !parts.hashChain) throw new XrdError('InvalidReference', { uri: HASH_CHAIN_RESULT_URI, reason: 'Cannot resolve URI: the message has no hash chain' });
    // The proxies give every part as an input the chain must use; a container gives the message as
    // an input to look up and the rest as what the chain may name.
    const resources = new Map<string, Buffer | DigestSource>([[HASH_CHAIN_URI, parts.hashChain]]);
    const inputs = new Map<string, ChainInput>();
    if (options.allowMissingParts) {
      for (const [uri, part] of byUri) resources.set(uri, part);
      inputs.set(MESSAGE_URI, null);
    } else for (const [uri, part] of byUri) inputs.set(uri, part);
    try {
      const chain = verifyHashChain(parts.hashChainResult, resources, inputs, { trustUnresolved: options.allowMissingParts });
      for (const uri of chain.verified) verified.add(uri);
      unverifiedParts = chain.unresolved;
    } catch (err) {
      throw err instanceof XrdError ? err.within('MalformedSignature') : err;
    }
  }

  const invalid = (reason: string) => new XrdError('InvalidSignatureValue', { reason });
  for (const ref of sig.dataReferences) {
    const data = ref.uri === HASH_CHAIN_RESULT_URI ? parts.hashChainResult : byUri.get(ref.uri);
    if (!data) throw new XrdError('InvalidReference', { uri: ref.uri, reason: 'Cannot resolve URI' });
    const digest = digestForUri(ref.digestMethod);
    let value: Buffer;
    if (ref.transforms.length === 0) value = digestOf(data, digest);
    else if (Buffer.isBuffer(data)) value = hash(digest, referencedOctets(ref, data), 'buffer');
    else throw new XrdError('InvalidReference', { uri: ref.uri, reason: 'transforms need the part itself, not only its digest' });
    if (!value.equals(ref.digestValue)) throw invalid(`digest of ${ref.uri} does not match`);
    if (ref.uri !== HASH_CHAIN_RESULT_URI) verified.add(ref.uri);
  }
  const uncovered = [...byUri.keys()].filter((uri) => !verified.has(uri));
  if (uncovered.length > 0) throw new XrdError('InvalidReference', { uri: uncovered.join(', '), reason: 'the signature does not cover this part of the message' });
  if (!valueVerified.has(sig)) {
    for (const ref of sig.documentReferences) {
      if (!hash(digestForUri(ref.digestMethod), referencedOctets(ref, ref.target, sig.canonicalize), 'buffer').equals(ref.digestValue)) throw invalid(`digest of ${ref.uri} does not match`);
    }
    if (!verifySignedInfo(sig)) throw invalid('the signature value does not verify with the signing certificate');
    valueVerified.add(sig);
  }
  return { verifiedParts: [...verified], unverifiedParts };
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
 * @throws MalformedSignature[.InvalidHashChainRef|.InvalidHashChain|.HashChainUnusedInputs|
 *   .SigningCertificateNotBound|…],
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
  // XAdES (the reference does not check it): once they are known to be signed, the signed properties must name the KeyInfo certificate.
  checkSigningCertificate(sig.signingCertificate, cert.der);

  let timestamp: VerifiedTimestamp | undefined;
  if (token) timestamp = verifyTimestamp(token, sig.signatureValue, options.conf.tsaCertificates());

  if (!path) throw pathError;
  const ocsp = checkOcsp(sig, path, options.conf, at);
  return { ...coreResult, signer: options.signer, signingCert: cert, signingTime: sig.signingTime, timestamp, validatedAt: at, ocsp, hashChain };
}

/** Every certificate of the path below the CA's top certificate needs a good OCSP response in the signature. */
function checkOcsp(sig: ParsedSignature, path: CertPath, conf: GlobalConf, at: Date): OcspFacts[] {
  const hash = createHash('sha256');
  // Each part with its length first, so no two lists of parts hash alike.
  for (const part of [sig.signingCert, ...sig.ocspResponses]) hash.update(uint32(part.length)).update(part);
  const key = hash.digest('base64');
  const known = ocspChecked.get(key);
  if (known && known.conf === conf && Math.abs(at.getTime() - known.at) < OCSP_REUSE_MS) return known.facts;
  const facts = checkOcspNow(sig, path, conf, at);
  if (ocspChecked.size >= OCSP_CHECKED_LIMIT) ocspChecked.delete(ocspChecked.keys().next().value!);
  ocspChecked.set(key, { conf, at: at.getTime(), facts });
  return facts;
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
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
  const data = Buffer.from(sig.canonicalize(sig.signedInfo, sig.c14n));
  const m = sig.method;
  if (m.keyAlgorithm !== key.asymmetricKeyType?.toUpperCase()) return false;
  if (m.keyAlgorithm === 'EC') return verify(m.digest, data, { key, dsaEncoding: 'ieee-p1363' }, ecdsaRaw(sig.signatureValue, key));
  if (m.padding === 'PSS') return verify(m.digest, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig.signatureValue);
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
