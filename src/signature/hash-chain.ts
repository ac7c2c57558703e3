/**
 * Hash chains (namespace `http://cyber.ee/hashchain`): how one signature or one timestamp covers
 * many messages. A Merkle tree is built over the messages; each message gets its own chain — the
 * steps from its leaf (DataRefs to its parts) up to the root, each step holding the sibling's digest
 * — and all share one HashChainResult with the root digest, which is what gets signed or stamped.
 *
 * A step's digest is H(DER SEQUENCE OF SingleDigest), SingleDigest = SEQUENCE { OCTET STRING
 * digest, UTF8String digest method URI, SEQUENCE OF transforms (empty) } — the reference's format,
 * checked against its vectors.
 */
import { createHash } from 'node:crypto';
import { TAG, encodeTlv } from '../certificates/der.ts';
import { XrdError } from '../platform/errors.ts';
import { XmlError, attribute, child, childElements, parseXml, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { DIGEST_URIS, digestForUri, digestOf, type DigestName, type DigestSource } from './algorithms.ts';

export const HASH_CHAIN_NS = 'http://cyber.ee/hashchain';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const UTF8_STRING = 0x0c;
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';

export interface HashChainInput {
  /** `/message.xml`, `/attachment1`, … */
  readonly uri: string;
  readonly data: Buffer | DigestSource;
}

export interface BuiltHashChains {
  /** `sig-hashchainresult.xml` (or `ts-hashchainresult.xml`): the root digest, shared by all. */
  readonly result: string;
  /** One hash chain document per message, in the order given. */
  readonly chains: readonly string[];
}

type Digest = { readonly value: Buffer; readonly method: string };

/** One SingleDigest of a step. */
function singleDigest(d: Digest): Buffer {
  return encodeTlv(TAG.SEQUENCE, encodeTlv(TAG.OCTET_STRING, d.value), encodeTlv(UTF8_STRING, Buffer.from(d.method, 'utf8')), encodeTlv(TAG.SEQUENCE, Buffer.alloc(0)));
}

function stepDigest(items: readonly Digest[], digest: DigestName): Buffer {
  return createHash(digest).update(encodeTlv(TAG.SEQUENCE, ...items.map(singleDigest))).digest();
}

/**
 * Builds the hash chains for messages (each a list of its parts) and their shared result, as the
 * reference's HashChainBuilder does: a message with one part is a leaf by that part's digest, a
 * message with several parts by the digest of a step over them; leaves are paired left to right
 * level by level, a node without a right neighbour is carried up unchanged. `chainUri` is how the
 * result names the chain document (`/sig-hashchain.xml`, `/ts-hashchain.xml`).
 */
export function buildHashChains(messages: readonly (readonly HashChainInput[])[], chainUri: string, digest: DigestName = 'sha512'): BuiltHashChains {
  if (messages.length === 0 || (messages.length === 1 && messages[0]!.length < 2)) {
    throw new XrdError('InternalError', { reason: 'a hash chain needs several messages or a message with several parts' });
  }
  const method = DIGEST_URIS[digest];
  const parts = messages.map((m) => m.map((p) => ({ uri: p.uri, value: digestOf(p.data, digest), method })));
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

  const value = (tag: string, attrs: string, digestValue: Buffer) => `        <ns2:${tag}${attrs}>\n            <DigestValue>${digestValue.toString('base64')}</DigestValue>\n        </ns2:${tag}>\n`;
  const chains = parts.map((items, index) => {
    // The pairs this message's leaf takes part in, bottom-up; a level where it has no neighbour adds no step.
    const pairs: { level: number; sibling: Buffer; ownFirst: boolean }[] = [];
    for (let level = 0; level < levels.length - 1; level++) {
      const i = index >> level;
      if ((i ^ 1) < levels[level]!.length) pairs.push({ level, sibling: levels[level]![i ^ 1]!, ownFirst: i % 2 === 0 });
    }
    // Written from the root down: STEP0 is the root's pair; each step names the next by StepRef; at
    // the bottom the leaf is a DataRef, or, for a message of several parts, a StepRef to a last step
    // with a DataRef per part.
    pairs.reverse();
    const leafStep = items.length > 1 ? pairs.length : undefined;
    let steps = '';
    pairs.forEach((pair, n) => {
      const own =
        n + 1 < pairs.length || leafStep !== undefined
          ? value('StepRef', ` URI="#STEP${n + 1}"`, levels[pair.level]![index >> pair.level]!)
          : value('DataRef', ` URI="${items[0]!.uri}"`, items[0]!.value);
      const sibling = value('HashValue', '', pair.sibling);
      steps += `    <ns2:HashStep id="STEP${n}">\n${pair.ownFirst ? own + sibling : sibling + own}    </ns2:HashStep>\n`;
    });
    if (leafStep !== undefined) steps += `    <ns2:HashStep id="STEP${leafStep}">\n${items.map((d) => value('DataRef', ` URI="${d.uri}"`, d.value)).join('')}    </ns2:HashStep>\n`;
    return `${XML_DECLARATION}<ns2:HashChain xmlns="${DS}" xmlns:ns2="${HASH_CHAIN_NS}">\n    <ns2:DefaultDigestMethod Algorithm="${method}"/>\n${steps}</ns2:HashChain>\n`;
  });
  return { result, chains };
}

export interface HashChainVerification {
  /** URIs of the inputs whose digests were checked. */
  readonly verifiedInputs: readonly string[];
  /** DataRef URIs for which no input was given (allowed only when not required). */
  readonly missingInputs: readonly string[];
}

/**
 * Verifies a HashChainResult against the chain documents it names and the given inputs: every
 * DataRef's digest must match its input, every StepRef the step it names, the steps must combine
 * to the result's digest, and every input must be used.
 * @throws MalformedHashChain, InvalidHashChain, InvalidHashChainRef, HashChainUnusedInputs,
 *   InvalidReference (a part the chain names is missing and `requireAllInputs` is set)
 */
export function verifyHashChain(
  resultXml: Buffer | string,
  chainDocuments: ReadonlyMap<string, Buffer | string>,
  inputs: ReadonlyMap<string, Buffer | DigestSource>,
  options: { requireAllInputs?: boolean } = {},
): HashChainVerification {
  const result = parse(resultXml, 'HashChainResult');
  const resultDigest = digestValue(result);
  const resultMethod = methodOf(result, undefined);
  const verifiedInputs: string[] = [];
  const missingInputs: string[] = [];
  const documents = new Map<string, { root: XmlElement; steps: Map<string, XmlElement>; defaultMethod: string | undefined }>();

  const documentOf = (uri: string) => {
    let doc = documents.get(uri);
    if (!doc) {
      const text = chainDocuments.get(uri);
      if (text === undefined) throw new XrdError('InvalidHashChainRef', { uri, reason: 'the hash chain document is missing' });
      const root = parse(text, 'HashChain');
      const steps = new Map<string, XmlElement>();
      for (const step of childElements(root)) if (step.localName === 'HashStep') steps.set(attribute(step, 'id') ?? '', step);
      const defaultElement = child(root, HASH_CHAIN_NS, 'DefaultDigestMethod');
      doc = { root, steps, defaultMethod: defaultElement ? attribute(defaultElement, 'Algorithm') : undefined };
      documents.set(uri, doc);
    }
    return doc;
  };

  const visited = new Set<string>();
  const digestOfStep = (reference: string, base: string, method: string): Buffer => {
    const hash = reference.indexOf('#');
    if (hash < 0) throw new XrdError('MalformedHashChain', { reason: `step reference ${reference} has no fragment` });
    const docUri = hash === 0 ? base : reference.slice(0, hash);
    const doc = documentOf(docUri);
    const key = `${docUri}#${reference.slice(hash + 1)}`;
    if (visited.has(key)) throw new XrdError('MalformedHashChain', { reason: `step ${key} is referenced twice` });
    visited.add(key);
    const step = doc.steps.get(reference.slice(hash + 1));
    if (!step) throw new XrdError('InvalidHashChainRef', { uri: key, reason: 'no such hash step' });
    const items: Digest[] = [];
    for (const item of childElements(step)) {
      const itemMethod = methodOf(item, doc.defaultMethod);
      const value = digestValue(item);
      if (item.localName === 'DataRef') {
        const uri = attribute(item, 'URI');
        if (!uri) throw new XrdError('MalformedHashChain', { reason: 'DataRef without URI' });
        if (child(item, DS, 'Transforms')) throw new XrdError('MalformedHashChain', { reason: `DataRef ${uri} has transforms, which X-Road does not use` });
        const input = inputs.get(uri);
        if (input === undefined) {
          if (options.requireAllInputs) throw new XrdError('InvalidReference', { uri, reason: 'cannot resolve URI: the message has no such part' });
          missingInputs.push(uri);
        } else {
          if (!digestOf(input, digestForUri(itemMethod)).equals(value)) throw new XrdError('InvalidHashChainRef', { uri, reason: 'digest does not match the data' });
          verifiedInputs.push(uri);
        }
      } else if (item.localName === 'StepRef') {
        const uri = attribute(item, 'URI');
        if (!uri) throw new XrdError('MalformedHashChain', { reason: 'StepRef without URI' });
        if (!digestOfStep(uri, docUri, itemMethod).equals(value)) throw new XrdError('InvalidHashChainRef', { uri, reason: 'digest does not match the step' });
      } else if (item.localName !== 'HashValue') {
        throw new XrdError('MalformedHashChain', { reason: `unexpected element ${item.name} in a hash step` });
      }
      items.push({ value, method: itemMethod });
    }
    if (items.length === 0) throw new XrdError('MalformedHashChain', { reason: `hash step ${key} is empty` });
    return stepDigest(items, digestForUri(method));
  };

  const uri = attribute(result, 'URI');
  if (!uri) throw new XrdError('MalformedHashChain', { reason: 'HashChainResult without URI' });
  if (!digestOfStep(uri, '', resultMethod).equals(resultDigest)) throw new XrdError('InvalidHashChain', { reason: 'the steps do not combine to the result digest' });
  const unused = [...inputs.keys()].filter((u) => !verifiedInputs.includes(u));
  if (unused.length > 0) throw new XrdError('HashChainUnusedInputs', { inputs: unused.join(', ') });
  return { verifiedInputs, missingInputs };
}

function parse(text: Buffer | string, rootName: string): XmlElement {
  let root: XmlElement;
  try {
    root = parseXml(text);
  } catch (err) {
    throw new XrdError('MalformedHashChain', { reason: (err as XmlError).message }, { cause: err });
  }
  if (root.namespace !== HASH_CHAIN_NS || root.localName !== rootName) throw new XrdError('MalformedHashChain', { reason: `expected ${rootName}, found ${root.name}` });
  return root;
}

function digestValue(element: XmlElement): Buffer {
  const value = child(element, DS, 'DigestValue');
  if (!value) throw new XrdError('MalformedHashChain', { reason: `${element.localName} has no DigestValue` });
  return Buffer.from(textOf(value).replace(/\s+/g, ''), 'base64');
}

function methodOf(element: XmlElement, fallback: string | undefined): string {
  const method = child(element, DS, 'DigestMethod');
  const uri = method ? attribute(method, 'Algorithm') : fallback;
  if (!uri) throw new XrdError('MalformedHashChain', { reason: `${element.localName} has no digest method` });
  digestForUri(uri);
  return uri;
}
