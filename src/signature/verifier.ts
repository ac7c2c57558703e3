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
import { SourceDocument, type SourceElement } from '../xml/canonical-source.ts';
import { EXC_C14N_NS, INCLUSIVE, c14nMethodOf, canonicalize, canonicalizeDocument, parsePrefixList, type C14nMethod } from '../xml/c14n.ts';
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

/** A reference to an element of the signature document (`#id`). */
export interface DocumentReference extends DataReference {
  /** The element it names, canonicalised by its first transform (inclusive C14N when it has none). */
  readonly octets: string;
}

/** A signature document read and checked against the structure X-Road signatures have. */
export interface ParsedSignature {
  /** SignedInfo canonicalised (by `c14n`): what the signature value signs. */
  readonly signedInfo: string;
  /** How SignedInfo is canonicalised. */
  readonly c14n: C14nMethod;
  readonly method: SignatureMethod;
  readonly signatureValue: Buffer;
  /** References to the message's parts (`/message.xml`, `/attachmentN`, `/sig-hashchainresult.xml`). */
  readonly dataReferences: readonly DataReference[];
  /** References to elements of the signature document, the signed properties among them. */
  readonly documentReferences: readonly DocumentReference[];
  /** The reference to the signed properties (one of documentReferences). */
  readonly signedPropertiesReference: DocumentReference;
  readonly signingCert: Buffer;
  readonly signingTime: Date;
  /** The Certs of SigningCertificate(V2), which must name the signing certificate; undefined when there is neither. */
  readonly signingCertificate: readonly SigningCertRef[] | undefined;
  readonly timestamp: Buffer | undefined;
  readonly extraCerts: readonly Buffer[];
  readonly ocspResponses: readonly Buffer[];
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
 * the documents kept add up to PARSED_SIGNATURES_BYTES; a parsed document took about six times its
 * size in memory when it kept its tree (measured: 35 KB of tree and strings for a 6.4 KB
 * signature); it keeps only canonical texts and decoded values now, less. Real signatures,
 * with their certificates, OCSP responses and timestamp, weigh 6–12 KB (the reference's in
 * ../shared/xroad-vectors); one over PARSED_SIGNATURE_MAX_BYTES is verified all the same, as the
 * reference would, but parsed for each use and not kept, so padded documents cannot fill the
 * cache or push the real ones out. (What a message may carry at all is the proxies' maxSoapBytes.)
 * The checks that depend only on the document (same-document references, signature value, the
 * signed properties naming the KeyInfo certificate) are done once per parsed document: a batch's
 * messages share one.
 */
const parsedSignatures = new Map<string, { readonly sig: ParsedSignature; readonly bytes: number }>();
let parsedSignatureBytes = 0;
export const PARSED_SIGNATURES_BYTES = 4 * 1024 * 1024;
export const PARSED_SIGNATURE_MAX_BYTES = 256 * 1024;
const valueVerified = new WeakSet<ParsedSignature>();
const signingCertBound = new WeakSet<ParsedSignature>();
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
 * reference's too where it writes no character references) are read by the quick reader, which
 * builds no tree but answers the same questions about the document from a flat table, and gives
 * SignedInfo and the referenced elements their canonical form by copying their source text; any
 * other document goes to the general parser. What is read from the document, and in what order,
 * is the same code either way (`signatureOf` over a DocumentView), so the verdicts and error codes
 * cannot differ.
 * @throws MalformedSignature
 */
export function parseSignature(xml: Buffer | string, options: ParseOptions = {}): ParsedSignature {
  const quick = options.generalParser ? undefined : parseQuickly(xml);
  if (quick) return quick;
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (err) {
    throw new XrdError('MalformedSignature', { reason: (err as XmlError).message }, { cause: err });
  }
  return signatureOf<XmlElement>(TREE, root, indexById(root), (e) => generalBase64(textOf(e), e.localName), canonicalize);
}

/**
 * The quick path of parseSignature alone: undefined where the document is outside its form (then
 * parseSignature reads it with the general parser).
 * @throws MalformedSignature, InvalidReference as parseSignature would
 */
export function parseQuickly(xml: Buffer | string): ParsedSignature | undefined {
  const source = SourceDocument.read(xml);
  if (!source) return undefined;
  let sig: ParsedSignature;
  try {
    sig = signatureOf<SourceElement>(source, source.root, source.ids, (e) => sourceBase64(source, e), (e, m) => sourceCanonical(source, e, m));
  } catch (err) {
    // A document with characters outside the form is the general parser's to refuse, with its reason.
    if (err !== OUTSIDE_FORM && source.charactersInForm()) throw err;
    return undefined;
  }
  return source.charactersInForm() ? sig : undefined;
}

/**
 * Thrown where a quickly read document turns out to be outside the form after all (a base64 value
 * with white space, an element to canonicalise that is not written canonically): the general path reads it.
 */
const OUTSIDE_FORM = Symbol('outside the quick form');

/** What `signatureOf` asks of a document: the questions xml-tree.ts answers of a tree, and SourceDocument of its table. */
interface DocumentView<E> {
  child(parent: E, namespace: string, localName: string): E | undefined;
  childElements(parent: E): E[];
  attribute(e: E, name: string): string | undefined;
  textOf(e: E): string;
  localName(e: E): string;
  namespace(e: E): string;
  parent(e: E): E | undefined;
}

const TREE: DocumentView<XmlElement> = {
  child,
  childElements,
  attribute,
  textOf,
  localName: (e) => e.localName,
  namespace: (e) => e.namespace,
  parent: (e) => e.parent,
};

function sourceBase64(doc: SourceDocument, e: SourceElement): Buffer {
  const bytes = doc.base64(e);
  if (!bytes) throw OUTSIDE_FORM;
  return bytes;
}

function sourceCanonical(doc: SourceDocument, e: SourceElement, method: C14nMethod): string {
  const text = doc.canonicalize(e, method);
  if (text === undefined) throw OUTSIDE_FORM;
  return text;
}

function malformed(reason: string): XrdError {
  return new XrdError('MalformedSignature', { reason });
}

function need<E>(doc: DocumentView<E>, parent: E, ns: string, name: string): E {
  const e = doc.child(parent, ns, name);
  if (!e) throw malformed(`${doc.localName(parent)} has no ${name}`);
  return e;
}

/** The canonicalisation a ds:CanonicalizationMethod or ds:Transform names (c14nMethodOfElement of c14n.ts, over a DocumentView). */
function c14nOf<E>(doc: DocumentView<E>, e: E): C14nMethod {
  const method = c14nMethodOf(doc.attribute(e, 'Algorithm') ?? '');
  if (!method) throw malformed(`unsupported ${doc.localName(e) === 'Transform' ? 'transform' : 'canonicalization method'} ${doc.attribute(e, 'Algorithm') ?? '(none)'}`);
  if (!method.exclusive) return method;
  const prefixes = doc.child(e, EXC_C14N_NS, 'InclusiveNamespaces');
  return prefixes ? { ...method, inclusivePrefixes: parsePrefixList(doc.attribute(prefixes, 'PrefixList') ?? '') } : method;
}

function digestReference<E>(doc: DocumentView<E>, e: E, base64: (e: E) => Buffer): { digestMethod: string; digestValue: Buffer } {
  const method = doc.attribute(need(doc, e, DS, 'DigestMethod'), 'Algorithm');
  if (!method) throw malformed('DigestMethod without Algorithm');
  return { digestMethod: method, digestValue: base64(need(doc, e, DS, 'DigestValue')) };
}

/** The signature in a document: its tree (TREE) or the quick reader's table (a SourceDocument). */
function signatureOf<E>(doc: DocumentView<E>, root: E, byId: ReadonlyMap<string, E>, base64: (e: E) => Buffer, canonical: (e: E, method: C14nMethod) => string): ParsedSignature {
  // The reference takes the first ds:Signature of the document, whatever the root is.
  const signature = firstSignature(doc, root);
  if (!signature) throw malformed('Could not find element "ds:Signature"');

  const signedInfo = need(doc, signature, DS, 'SignedInfo');
  const c14n = c14nOf(doc, need(doc, signedInfo, DS, 'CanonicalizationMethod'));
  const method = signatureMethodForUri(doc.attribute(need(doc, signedInfo, DS, 'SignatureMethod'), 'Algorithm') ?? '');
  const dataReferences: DataReference[] = [];
  const documentReferences: { ref: DataReference; target: E }[] = [];
  for (const e of doc.childElements(signedInfo)) {
    if (doc.localName(e) !== 'Reference' || doc.namespace(e) !== DS) continue;
    // Each reference, and each transform, is canonicalised before the signature value is checked:
    // bounded as the reference's Santuario (secure validation) bounds them.
    if (dataReferences.length + documentReferences.length >= MAX_REFERENCES) throw malformed(`more than ${MAX_REFERENCES} references`);
    const transforms = doc.child(e, DS, 'Transforms');
    if (transforms && doc.childElements(transforms).length > MAX_TRANSFORMS) throw malformed(`more than ${MAX_TRANSFORMS} transforms in a reference`);
    const { digestMethod, digestValue } = digestReference(doc, e, base64);
    digestForUri(digestMethod); // an unknown digest method is MalformedSignature already here
    const ref: DataReference = {
      uri: doc.attribute(e, 'URI') ?? '',
      transforms: transforms ? doc.childElements(transforms).map((t) => c14nOf(doc, t)) : [],
      digestMethod,
      digestValue,
    };
    if (!ref.uri.startsWith('#')) {
      dataReferences.push(ref);
      continue;
    }
    const target = byId.get(ref.uri.slice(1));
    if (!target) throw new XrdError('InvalidReference', { uri: ref.uri, reason: 'no element has this Id' });
    documentReferences.push({ ref, target });
  }

  const keyInfo = doc.child(signature, DS, 'KeyInfo');
  const certElement = keyInfo && doc.child(doc.child(keyInfo, DS, 'X509Data') ?? keyInfo, DS, 'X509Certificate');
  if (!certElement) throw malformed('Signature does not contain signing certificate');

  // XAdES: SignedInfo must reference the SignedProperties of the signature's QualifyingProperties.
  const spIndex = documentReferences.findIndex((r) => doc.namespace(r.target) === XADES && doc.localName(r.target) === 'SignedProperties');
  if (spIndex < 0) throw malformed('no reference to the signed properties');
  const signedProperties = documentReferences[spIndex]!.target;
  const qualifying = doc.parent(signedProperties);
  if (!qualifying || doc.namespace(qualifying) !== XADES || doc.localName(qualifying) !== 'QualifyingProperties') throw malformed('SignedProperties is not in xades:QualifyingProperties');
  const sigProps = need(doc, signedProperties, XADES, 'SignedSignatureProperties');
  const signingTime = new Date(doc.textOf(need(doc, sigProps, XADES, 'SigningTime')).trim());
  if (Number.isNaN(signingTime.getTime())) throw malformed('SigningTime is not a date');
  const certRef = doc.child(sigProps, XADES, 'SigningCertificate') ?? doc.child(sigProps, XADES, 'SigningCertificateV2');
  const signingCertificate =
    certRef &&
    doc
      .childElements(certRef)
      .filter((c) => doc.localName(c) === 'Cert' && doc.namespace(c) === XADES)
      .map((c): SigningCertRef => {
        const v1 = doc.child(c, XADES, 'IssuerSerial');
        const v2 = doc.child(c, XADES, 'IssuerSerialV2');
        const issuerSerial = v1 ? { issuerName: doc.textOf(need(doc, v1, DS, 'X509IssuerName')), serialNumber: doc.textOf(need(doc, v1, DS, 'X509SerialNumber')) } : v2 && { der: base64(v2) };
        return { ...digestReference(doc, need(doc, c, XADES, 'CertDigest'), base64), issuerSerial };
      });

  let timestamp: Buffer | undefined;
  const extraCerts: Buffer[] = [];
  const ocspResponses: Buffer[] = [];
  const unsigned = doc.child(qualifying, XADES, 'UnsignedProperties');
  const unsignedSig = unsigned && doc.child(unsigned, XADES, 'UnsignedSignatureProperties');
  if (unsignedSig) {
    const stamp = doc.child(unsignedSig, XADES, 'SignatureTimeStamp');
    if (stamp) timestamp = base64(doc.child(stamp, XADES, 'EncapsulatedTimeStamp') ?? stamp);
    const values = doc.child(unsignedSig, XADES, 'CertificateValues');
    const decoded = new Map<E, Buffer>();
    if (values) {
      for (const c of doc.childElements(values)) {
        const der = base64(c);
        extraCerts.push(der);
        decoded.set(c, der);
      }
    }
    checkCertificateRefs(doc, byId, unsignedSig, decoded, base64);
    const revocation = doc.child(unsignedSig, XADES, 'RevocationValues');
    const ocspValues = revocation && doc.child(revocation, XADES, 'OCSPValues');
    if (ocspValues) for (const o of doc.childElements(ocspValues)) ocspResponses.push(base64(o));
  }
  const signatureValue = base64(need(doc, signature, DS, 'SignatureValue'));
  const signingCert = base64(certElement);
  // Canonical forms last: on the quick path an element not written canonically sends the document to the general path.
  const references = documentReferences.map(({ ref, target }): DocumentReference => ({ ...ref, octets: canonical(target, ref.transforms[0] ?? INCLUSIVE) }));
  return {
    signedInfo: canonical(signedInfo, c14n),
    c14n,
    method,
    signatureValue,
    dataReferences,
    documentReferences: references,
    signedPropertiesReference: references[spIndex]!,
    signingCert,
    signingTime,
    signingCertificate,
    timestamp,
    extraCerts,
    ocspResponses,
  };
}

/**
 * CompleteCertificateRefs: each Cert names (by URI) an encapsulated certificate whose digest it
 * gives, as the reference checks (`decoded`: the CertificateValues already read).
 */
function checkCertificateRefs<E>(doc: DocumentView<E>, byId: ReadonlyMap<string, E>, unsignedSig: E, decoded: ReadonlyMap<E, Buffer>, base64: (e: E) => Buffer): void {
  const refs = doc.child(unsignedSig, XADES, 'CompleteCertificateRefs');
  const certRefs = refs && doc.child(refs, XADES, 'CertRefs');
  if (!certRefs) return;
  for (const cert of doc.childElements(certRefs)) {
    const uri = doc.attribute(cert, 'URI');
    if (!uri) throw new XrdError('MalformedSignature', { reason: 'Missing certificate id attribute' });
    const element = byId.get(uri.startsWith('#') ? uri.slice(1) : uri);
    if (!element) throw new XrdError('MalformedSignature', { reason: `Could not find certificate with id ${uri}` });
    const certDigest = doc.child(cert, XADES, 'CertDigest');
    const method = certDigest && doc.child(certDigest, DS, 'DigestMethod');
    const value = certDigest && doc.child(certDigest, DS, 'DigestValue');
    const algorithm = method && CERT_DIGESTS[doc.attribute(method, 'Algorithm') ?? ''];
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

/** The first ds:Signature in document order (the element itself first). */
function firstSignature<E>(doc: DocumentView<E>, from: E): E | undefined {
  if (doc.namespace(from) === DS && doc.localName(from) === 'Signature') return from;
  for (const c of doc.childElements(from)) {
    const found = firstSignature(doc, c);
    if (found) return found;
  }
  return undefined;
}

/** Base64 text (whitespace allowed, which Buffer.from skips) of the element `name`. */
function generalBase64(text: string, name: string): Buffer {
  if (!BASE64.test(text)) throw new XrdError('MalformedSignature', { reason: `${name} is not base64` });
  return Buffer.from(text, 'base64');
}
const BASE64 = /^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$/;

/** Santuario's secure-validation limits, which the reference's verifier (XMLSignature) applies. */
const MAX_REFERENCES = 30;
const MAX_TRANSFORMS = 5;

/**
 * The octets a reference's digest is over: a part of the message (`data`) through the reference's
 * transforms, or for a same-document reference its target, canonicalised by the first when parsed,
 * through the rest.
 */
function referencedOctets(ref: DataReference | DocumentReference, data?: Buffer): Buffer | string {
  const [first, ...rest] = ref.transforms;
  // A same-document reference without transforms was canonicalised as inclusive C14N without comments (XML-DSig §4.3.3.2).
  let octets: Buffer | string = 'octets' in ref ? ref.octets : first ? canonicalizeDocument(parseReferenced(ref, data!), first) : data!;
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
      if (!hash(digestForUri(ref.digestMethod), referencedOctets(ref), 'buffer').equals(ref.digestValue)) throw invalid(`digest of ${ref.uri} does not match`);
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
  if (!signingCertBound.has(sig)) {
    checkSigningCertificate(sig.signingCertificate, cert.der);
    signingCertBound.add(sig);
  }

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

/**
 * Public keys of the last signing certificates seen, found by comparing the certificate's bytes:
 * a proxy verifies the same few peers' signatures again and again, and taking the key out of a
 * certificate (x509Of digests it to find it, and `publicKey` builds a new KeyObject) cost a tenth
 * of a verification past the RSA operation (callgrind). libxmlsec1, as bench:signature runs it,
 * is given the key once.
 */
const recentKeys: { readonly cert: Buffer; readonly key: KeyObject }[] = [];
const RECENT_KEYS = 8;

function publicKeyOf(cert: Buffer): KeyObject {
  for (const recent of recentKeys) if (recent.cert.equals(cert)) return recent.key;
  const key = x509Of(cert).publicKey;
  if (recentKeys.length >= RECENT_KEYS) recentKeys.shift();
  // A copy, so that a caller changing its buffer afterwards cannot put another certificate under this key.
  recentKeys.push({ cert: Buffer.from(cert), key });
  return key;
}

function verifySignedInfo(sig: ParsedSignature): boolean {
  const key = publicKeyOf(sig.signingCert);
  const data = Buffer.from(sig.signedInfo);
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
