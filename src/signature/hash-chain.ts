/**
 * Hash chains (namespace `http://cyber.ee/hashchain`): how one signature or one timestamp covers
 * many messages. A Merkle tree is built over the messages; each message gets its own chain — the
 * steps from its leaf (DataRefs to its parts) up to the root, each step holding the sibling's digest
 * — and all share one HashChainResult with the root digest, which is what gets signed or stamped.
 *
 * A step's digest is H(DER SEQUENCE OF SingleDigest), SingleDigest = SEQUENCE { OCTET STRING
 * digest, UTF8String digest method URI, SEQUENCE OF transforms (empty) } — the reference's format,
 * checked against its vectors. Verification follows the reference's HashChainVerifier: the
 * documents must have the structure hashchain.xsd gives them (checked here in code), a StepRef
 * contributes the digest of the step it names, a HashValue its value, a DataRef the digest of its
 * data (after its c14n transforms) — or, when the caller gives that part's digest with the same
 * algorithm, that digest as it is — and the last step's digest must be the result's.
 */
import { hash } from 'node:crypto';
import { TAG, derHeaderLength, encodeTlv, writeDerHeader } from '../certificates/der.ts';
import { XrdError } from '../platform/errors.ts';
import { c14nMethodOfElement, canonicalizeDocument } from '../xml/c14n.ts';
import { compactBase64 } from '../xml/canonical-source.ts';
import { XmlError, attribute, child, parseXmlDocument, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { DIGEST_URIS, type DigestName } from './algorithms.ts';
import { digestOf, isDigestSource, type DigestSource } from './digest-source.ts';

export const HASH_CHAIN_NS = 'http://cyber.ee/hashchain';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const UTF8_STRING = 0x0c;
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';
/** Most hash steps one verification computes: a batch of 10,000 messages needs 15; sharing steps cannot multiply the work past this. */
const MAX_STEPS = 10_000;

/** One part of a message to build a chain over: its data, or (as the reference's builder takes them) its digest with the chain's algorithm. */
export type HashChainInput = { readonly uri: string; readonly data: Buffer | DigestSource } | { readonly uri: string; readonly digest: Buffer };

export interface BuiltHashChains {
  /** `sig-hashchainresult.xml` (or `ts-hashchainresult.xml`): the root digest, shared by all. */
  readonly result: string;
  /** One hash chain document per message, in the order given. */
  readonly chains: readonly string[];
}

type Digest = { readonly value: Buffer; readonly method: string };

const DIGEST_BY_URI = new Map(Object.entries(DIGEST_URIS).map(([name, uri]) => [uri, name as DigestName]));

/** The UTF8String TLV of each digest method URI, encoded once. */
const METHOD_TLVS = new Map<string, Buffer>();

function methodTlv(method: string): Buffer {
  let tlv = METHOD_TLVS.get(method);
  if (!tlv) {
    tlv = encodeTlv(UTF8_STRING, Buffer.from(method, 'utf8'));
    // Only the digest methods X-Road uses are kept (a chain document may name others before it is refused).
    if (DIGEST_BY_URI.has(method)) METHOD_TLVS.set(method, tlv);
  }
  return tlv;
}

/**
 * A step's DER, SEQUENCE OF SingleDigest, written into one buffer: every message of a batch adds
 * steps, so the step is not built as a tree of small buffers concatenated level by level.
 */
function stepDer(items: readonly Digest[]): Buffer {
  let body = 0;
  const singles = items.map((d) => {
    const method = methodTlv(d.method);
    const inner = derHeaderLength(d.value.length) + d.value.length + method.length + EMPTY_SEQUENCE.length;
    body += derHeaderLength(inner) + inner;
    return { d, method, inner };
  });
  const out = Buffer.allocUnsafe(derHeaderLength(body) + body);
  let at = writeDerHeader(out, 0, TAG.SEQUENCE, body);
  for (const { d, method, inner } of singles) {
    at = writeDerHeader(out, at, TAG.SEQUENCE, inner);
    at = writeDerHeader(out, at, TAG.OCTET_STRING, d.value.length);
    at += d.value.copy(out, at);
    at += method.copy(out, at);
    at += EMPTY_SEQUENCE.copy(out, at);
  }
  return out;
}
const EMPTY_SEQUENCE = Buffer.from([TAG.SEQUENCE, 0]);

function stepDigest(items: readonly Digest[], digest: DigestName): Buffer {
  return hash(digest, stepDer(items), 'buffer');
}

/**
 * Builds the hash chains for messages (each a list of its parts) and their shared result, as the
 * reference's HashChainBuilder does: a message with one part is a leaf by that part's digest, a
 * message with several parts by the digest of a step over them; leaves are paired left to right
 * level by level, a node without a right neighbour is carried up unchanged. `chainUri` is how the
 * result names the chain document (`/sig-hashchain.xml`, `/ts-hashchain.xml`). A StepRef carries no
 * DigestValue: hashchain.xsd has none, and the reference's verifier refuses one.
 * @throws InternalError for no messages or a lone message of one part (nothing to chain)
 */
export function buildHashChains(messages: readonly (readonly HashChainInput[])[], chainUri: string, digest: DigestName = 'sha512'): BuiltHashChains {
  if (messages.length === 0 || (messages.length === 1 && messages[0]!.length < 2)) {
    throw new XrdError('InternalError', { reason: 'a hash chain needs several messages or a message with several parts' });
  }
  const method = DIGEST_URIS[digest];
  const parts = messages.map((m) => m.map((p) => ({ uri: p.uri, value: 'digest' in p ? p.digest : digestOf(p.data, digest), method })));
  const levels: Buffer[][] = [parts.map((items) => (items.length === 1 ? items[0]!.value : stepDigest(items, digest)))];
  while (levels[levels.length - 1]!.length > 1) {
    const below = levels[levels.length - 1]!;
    const above: Buffer[] = [];
    for (let i = 0; i < below.length; i += 2) above.push(i + 1 < below.length ? stepDigest([{ value: below[i]!, method }, { value: below[i + 1]!, method }], digest) : below[i]!);
    levels.push(above);
  }
  const result =
    `${XML_DECLARATION}<ns2:HashChainResult URI="${chainUri}#STEP0" xmlns="${DS}" xmlns:ns2="${HASH_CHAIN_NS}">\n` +
    `    <DigestMethod Algorithm="${method}"/>\n    <DigestValue>${levels[levels.length - 1]![0]!.toString('base64')}</DigestValue>\n</ns2:HashChainResult>\n`;

  // Each node is in the chains of many messages: its base64 is written once.
  const encoded = levels.map((level) => level.map((node) => node.toString('base64')));
  const value = (tag: string, attrs: string, digestValue: string) => `        <ns2:${tag}${attrs}>\n            <DigestValue>${digestValue}</DigestValue>\n        </ns2:${tag}>\n`;
  const chains = parts.map((items, index) => {
    // The pairs this message's leaf takes part in, bottom-up; a level where it has no neighbour adds no step.
    const pairs: { level: number; sibling: string; ownFirst: boolean }[] = [];
    for (let level = 0; level < levels.length - 1; level++) {
      const i = index >> level;
      if ((i ^ 1) < levels[level]!.length) pairs.push({ level, sibling: encoded[level]![i ^ 1]!, ownFirst: i % 2 === 0 });
    }
    // Written from the root down: STEP0 is the root's pair; each step names the next by StepRef; at
    // the bottom the leaf is a DataRef, or, for a message of several parts, a StepRef to a last step
    // with a DataRef per part.
    pairs.reverse();
    const leafStep = items.length > 1 ? pairs.length : undefined;
    let steps = '';
    pairs.forEach((pair, n) => {
      const own = n + 1 < pairs.length || leafStep !== undefined ? `        <ns2:StepRef URI="#STEP${n + 1}"/>\n` : value('DataRef', ` URI="${items[0]!.uri}"`, encoded[0]![index]!);
      const sibling = value('HashValue', '', pair.sibling);
      steps += `    <ns2:HashStep id="STEP${n}">\n${pair.ownFirst ? own + sibling : sibling + own}    </ns2:HashStep>\n`;
    });
    if (leafStep !== undefined) steps += `    <ns2:HashStep id="STEP${leafStep}">\n${items.map((d) => value('DataRef', ` URI="${d.uri}"`, d.value.toString('base64'))).join('')}    </ns2:HashStep>\n`;
    return `${XML_DECLARATION}<ns2:HashChain xmlns="${DS}" xmlns:ns2="${HASH_CHAIN_NS}">\n    <ns2:DefaultDigestMethod Algorithm="${method}"/>\n${steps}</ns2:HashChain>\n`;
  });
  return { result, chains };
}

/**
 * A part given by its digest, as the reference's callers give parts (its proxies pass each part's
 * digest): a DataRef with the same digest method takes it as it is, without comparing its own
 * DigestValue, so a changed part shows only in the result (InvalidHashChain).
 */
export interface InputDigest {
  /** The part's digest with this algorithm, or undefined when the caller has none with it. */
  inputDigest(algorithm: DigestName): Buffer | undefined;
}

export function inputDigest(algorithm: DigestName, value: Buffer): InputDigest {
  return { inputDigest: (a) => (a === algorithm ? value : undefined) };
}

/**
 * What a caller gives for a part the chain must reference: the part itself (digested after the
 * DataRef's transforms and compared with its DigestValue), its digest, or null (the part is to be
 * found among the resources, as the reference's `null` input is resolved).
 */
export type ChainInput = Buffer | DigestSource | InputDigest | null;

export interface HashChainVerification {
  /** DataRef URIs whose digest was checked against the data or taken from an input digest. */
  readonly verified: readonly string[];
  /** DataRef URIs whose data was not available and whose DigestValue was trusted (only with `trustUnresolved`). */
  readonly unresolved: readonly string[];
}

export interface HashChainOptions {
  /**
   * A DataRef whose data is neither an input nor a resource contributes its own DigestValue and is
   * reported as unresolved (the reference's container verifier, for parts a container leaves out);
   * otherwise it is InvalidReference (the reference's proxies).
   */
  readonly trustUnresolved?: boolean;
}

interface ChainDocument {
  readonly uri: string;
  readonly steps: ReadonlyMap<string, XmlElement>;
  readonly defaultMethod: string | undefined;
}

/**
 * Verifies a HashChainResult against the chain documents and data it names (`resources`, by URI:
 * `/sig-hashchain.xml`, `/message.xml`, …) and the inputs: every input must be referenced by a
 * DataRef, and the steps must combine to the result's digest. Checked, as the reference does: the
 * result's digest first, unused inputs after it.
 * @throws MalformedHashChain (not as hashchain.xsd describes, a step URI naming no step, a cycle),
 *   InvalidHashChain (the steps do not combine to the result), InvalidHashChainRef (a DataRef's
 *   digest does not match its data), HashChainUnusedInputs, InvalidReference (data or a chain
 *   document that cannot be resolved)
 */
export function verifyHashChain(
  resultXml: Buffer | string,
  resources: ReadonlyMap<string, Buffer | string | DigestSource>,
  inputs: ReadonlyMap<string, ChainInput>,
  options: HashChainOptions = {},
): HashChainVerification {
  const result = readResult(resultXml);
  const verified = new Set<string>();
  const unresolved = new Set<string>();
  const documents = new Map<string, ChainDocument>();
  const resolving = new Set<string>();
  let stepsComputed = 0;

  const documentOf = (uri: string): ChainDocument => {
    let doc = documents.get(uri);
    if (!doc) {
      const text = resources.get(uri);
      if (text === undefined || isDigestSource(text)) throw new XrdError('InvalidReference', { uri, reason: 'Cannot resolve URI' });
      doc = readChain(uri, text);
      documents.set(uri, doc);
    }
    return doc;
  };

  const dataRefDigest = (item: XmlElement, digest: DigestName): Buffer => {
    const uri = attribute(item, 'URI')!;
    const stated = digestValue(item);
    const input = inputs.get(uri);
    const given = isInputDigest(input) ? input.inputDigest(digest) : undefined;
    if (given) {
      verified.add(uri);
      return given;
    }
    // As the reference's resolver: the part given, else the resource of that URI.
    const data = input === undefined || input === null || isInputDigest(input) ? resources.get(uri) : input;
    if (data === undefined) {
      if (!options.trustUnresolved) throw new XrdError('InvalidReference', { uri, reason: 'Cannot resolve URI' });
      unresolved.add(uri);
      return stated;
    }
    const transforms = child(item, DS, 'Transforms');
    const computed = transforms ? digestOfTransformed(uri, data, transforms, digest) : digestOf(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, digest);
    if (!computed.equals(stated)) throw new XrdError('InvalidHashChainRef', { uri, reason: `Invalid digest value in hash chain reference to ${uri}` });
    verified.add(uri);
    return computed;
  };

  /** The DER of the step `uri` names, relative to the chain document `base`. */
  const stepData = (uri: string, base: ChainDocument | undefined): Buffer => {
    const hashAt = uri.indexOf('#');
    const fragment = hashAt < 0 ? '' : uri.slice(hashAt + 1);
    if (fragment === '') throw new XrdError('MalformedHashChain', { reason: `Invalid hash step URI: ${uri}` });
    const docUri = uri.slice(0, hashAt);
    const doc = docUri === '' ? base : documentOf(docUri);
    if (!doc) throw new XrdError('MalformedHashChain', { reason: `Invalid hash step URI: ${uri} (no chain document to look in)` });
    const step = doc.steps.get(fragment);
    if (!step) throw new XrdError('MalformedHashChain', { reason: `Invalid hash step URI: ${uri}` });
    const key = `${doc.uri}#${fragment}`;
    if (resolving.has(key)) throw new XrdError('MalformedHashChain', { reason: `hash step ${key} refers to itself` });
    if (++stepsComputed > MAX_STEPS) throw new XrdError('MalformedHashChain', { reason: `more than ${MAX_STEPS} hash steps` });
    resolving.add(key);
    const items: Digest[] = [];
    for (const item of elements(step)) {
      const method = methodOf(item, doc.defaultMethod);
      const digest = DIGEST_BY_URI.get(method)!;
      let value: Buffer;
      if (item.localName === 'DataRef') value = dataRefDigest(item, digest);
      else if (item.localName === 'StepRef') {
        value = hash(digest, stepData(attribute(item, 'URI')!, doc), 'buffer');
        // hashchain.xsd gives StepRef no DigestValue; chains written by xrd before 0.2 carry one, checked here.
        const stated = child(item, DS, 'DigestValue');
        if (stated && !base64Of(stated).equals(value)) throw new XrdError('InvalidHashChainRef', { uri: attribute(item, 'URI')!, reason: 'digest does not match the step' });
      } else value = digestValue(item);
      items.push({ value, method });
    }
    resolving.delete(key);
    return stepDer(items);
  };

  const resultDigest = DIGEST_BY_URI.get(result.method)!;
  if (!hash(resultDigest, stepData(result.uri, undefined), 'buffer').equals(result.value)) {
    throw new XrdError('InvalidHashChain', { reason: 'Hash chain result does not match hash chain calculation' });
  }
  const unused = [...inputs.keys()].filter((u) => !verified.has(u) && !unresolved.has(u));
  if (unused.length > 0) throw new XrdError('HashChainUnusedInputs', { inputs: unused.join(', ') });
  return { verified: [...verified], unresolved: [...unresolved] };
}

function isInputDigest(value: unknown): value is InputDigest {
  return typeof value === 'object' && value !== null && typeof (value as InputDigest).inputDigest === 'function';
}

/** The digest of a DataRef's data after its transforms, each of which must be a C14N 1.0 method. */
function digestOfTransformed(uri: string, data: Buffer | string | DigestSource, transforms: XmlElement, digest: DigestName): Buffer {
  if (isDigestSource(data)) throw new XrdError('InvalidReference', { uri, reason: 'transforms need the data itself, not only its digest' });
  let bytes: Buffer | string = data;
  for (const transform of elements(transforms)) {
    const method = c14nMethodOfElement(transform);
    if (!method) throw malformed(`unsupported transform ${attribute(transform, 'Algorithm')}`);
    try {
      bytes = canonicalizeDocument(parseXmlDocument(bytes), method);
    } catch (err) {
      if (!(err instanceof XmlError)) throw err;
      throw new XrdError('InvalidHashChainRef', { uri, reason: `cannot canonicalise: ${err.message}` }, { cause: err });
    }
  }
  return hash(digest, bytes, 'buffer');
}


// ---- hashchain.xsd, as code ------------------------------------------------------------------

const malformed = (reason: string) => new XrdError('MalformedHashChain', { reason });

function parseRoot(text: Buffer | string, rootName: string): XmlElement {
  let root: XmlElement;
  try {
    root = parseXmlDocument(text).root;
  } catch (err) {
    throw new XrdError('MalformedHashChain', { reason: `Parsing hash chain failed: ${(err as XmlError).message}` }, { cause: err });
  }
  if (root.namespace !== HASH_CHAIN_NS || root.localName !== rootName) throw malformed(`expected ${rootName}, found ${root.name}`);
  return root;
}

/**
 * Hash chain results read lately, by their text. Every message of a batch carries the same result
 * document (one signature over the batch), so under load most are read once for many messages.
 * Bounded: the oldest is forgotten first. What is kept is only read (compared), never changed.
 */
const RECENT_RESULTS = 64;
const recentResults = new Map<string, { uri: string; method: string; value: Buffer }>();

function readResult(text: Buffer | string): { uri: string; method: string; value: Buffer } {
  // Text and bytes keyed apart: a string and the latin1 reading of different bytes may be equal.
  const key = typeof text === 'string' ? `s${text}` : `b${text.toString('latin1')}`;
  let result = recentResults.get(key);
  if (!result) {
    result = parseResult(text);
    if (recentResults.size >= RECENT_RESULTS) recentResults.delete(recentResults.keys().next().value!);
    recentResults.set(key, result);
  }
  return result;
}

function parseResult(text: Buffer | string): { uri: string; method: string; value: Buffer } {
  const root = parseRoot(text, 'HashChainResult');
  checkAttributes(root, ['URI'], ['URI']);
  const [method, value] = sequence(root, [
    [DS, 'DigestMethod', false],
    [DS, 'DigestValue', true],
  ]);
  if (!method) throw malformed('HashChainResult has no DigestMethod');
  return { uri: attribute(root, 'URI')!, method: digestMethod(method), value: base64Of(value!) };
}

function readChain(uri: string, text: Buffer | string): ChainDocument {
  const root = parseRoot(text, 'HashChain');
  checkAttributes(root, [], []);
  const children = elements(root);
  let at = 0;
  let defaultMethod: string | undefined;
  if (children[0]?.namespace === HASH_CHAIN_NS && children[0].localName === 'DefaultDigestMethod') {
    defaultMethod = digestMethod(children[0]);
    at = 1;
  }
  const steps = new Map<string, XmlElement>();
  for (const step of children.slice(at)) {
    if (step.namespace !== HASH_CHAIN_NS || step.localName !== 'HashStep') throw malformed(`unexpected element ${step.name} in HashChain`);
    checkAttributes(step, ['id'], []);
    const id = attribute(step, 'id');
    if (id !== undefined) {
      if (!/^[A-Za-z_][\w.\-]*$/.test(id)) throw malformed(`HashStep id "${id}" is not an NCName`);
      if (steps.has(id)) throw malformed(`HashStep id "${id}" is not unique`);
      steps.set(id, step);
    }
    for (const item of elements(step)) {
      if (item.namespace !== HASH_CHAIN_NS) throw malformed(`unexpected element ${item.name} in HashStep`);
      if (item.localName === 'HashValue') {
        checkAttributes(item, [], []);
        sequence(item, [[DS, 'DigestMethod', false], [DS, 'Transforms', false], [DS, 'DigestValue', true]]);
      } else if (item.localName === 'DataRef') {
        checkAttributes(item, ['URI'], ['URI']);
        sequence(item, [[DS, 'DigestMethod', false], [DS, 'Transforms', false], [DS, 'DigestValue', true]]);
      } else if (item.localName === 'StepRef') {
        checkAttributes(item, ['URI'], ['URI']);
        sequence(item, [[DS, 'DigestMethod', false], [DS, 'DigestValue', false]]);
      } else throw malformed(`unexpected element ${item.name} in HashStep`);
      const method = child(item, DS, 'DigestMethod');
      if (method) digestMethod(method);
      else if (!defaultMethod) throw malformed(`${item.localName} has no digest method and the chain no DefaultDigestMethod`);
      const transforms = child(item, DS, 'Transforms');
      if (transforms) checkTransforms(transforms);
    }
  }
  return { uri, steps, defaultMethod };
}

/** Child elements, with text other than whitespace refused (the schema's types have element-only content). */
function elements(parent: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const node of parent.children) {
    if (node.kind === 'element') out.push(node);
    else if (node.kind === 'text' && /[^ \t\n\r]/.test(node.value)) throw malformed(`text in ${parent.localName}`);
  }
  return out;
}

/** The element's children in the schema's order, each present at most once; returns them by position. */
function sequence(parent: XmlElement, expected: readonly [ns: string, name: string, required: boolean][]): (XmlElement | undefined)[] {
  const found: (XmlElement | undefined)[] = expected.map(() => undefined);
  let at = 0;
  for (const e of elements(parent)) {
    while (at < expected.length && (expected[at]![0] !== e.namespace || expected[at]![1] !== e.localName)) at++;
    if (at === expected.length) throw malformed(`unexpected element ${e.name} in ${parent.localName}`);
    found[at++] = e;
  }
  expected.forEach(([, name, required], i) => {
    if (required && !found[i]) throw malformed(`${parent.localName} has no ${name}`);
    if (name === 'DigestValue' && found[i]) base64Of(found[i]);
  });
  return found;
}

function checkAttributes(element: XmlElement, allowed: readonly string[], required: readonly string[]): void {
  for (const a of element.attributes) if (!allowed.includes(a.name)) throw malformed(`unexpected attribute ${a.name} on ${element.localName}`);
  for (const name of required) if (attribute(element, name) === undefined) throw malformed(`${element.localName} has no ${name}`);
}

/** ds:DigestMethodType: an Algorithm, here one of the digests X-Road uses. */
function digestMethod(element: XmlElement): string {
  const algorithm = attribute(element, 'Algorithm');
  if (algorithm === undefined) throw malformed(`${element.localName} has no Algorithm`);
  if (!DIGEST_BY_URI.has(algorithm)) throw malformed(`unsupported digest method ${algorithm}`);
  return algorithm;
}

/** ds:Transforms: one or more ds:Transform with an Algorithm. */
function checkTransforms(transforms: XmlElement): void {
  const list = elements(transforms);
  if (list.length === 0) throw malformed('Transforms without Transform');
  for (const t of list) {
    if (t.namespace !== DS || t.localName !== 'Transform' || attribute(t, 'Algorithm') === undefined) throw malformed(`unexpected element ${t.name} in Transforms`);
  }
}

function methodOf(item: XmlElement, fallback: string | undefined): string {
  const method = child(item, DS, 'DigestMethod');
  return method ? attribute(method, 'Algorithm')! : fallback!;
}

function digestValue(element: XmlElement): Buffer {
  return base64Of(child(element, DS, 'DigestValue')!);
}

/** xs:base64Binary: written without white space (as we and the reference write it) decoded at once, else checked by its pattern first. */
function base64Of(element: XmlElement): Buffer {
  const written = textOf(element);
  const compact = compactBase64(written);
  if (compact) return compact;
  const text = written.replace(/[ \t\n\r]+/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) throw malformed(`${element.localName} is not base64`);
  return Buffer.from(text, 'base64');
}
