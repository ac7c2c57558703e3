/**
 * A quick reader for documents written the way X-Road signature documents are (ours, and the
 * reference's when it writes no character references): ASCII, no references, comments, processing
 * instructions, CDATA or DTD, attributes unprefixed, in canonical order and without repeats. For
 * such a document it builds the same tree `parseXml` builds (test/signature/canonical-source.test.ts
 * compares them), for a fraction of the cost, and remembers where each element stands in the
 * source, so that an element whose subtree is written as canonical XML writes it (`canonicalize`
 * here) can be canonicalised by copying its source text with a rewritten start tag.
 *
 * Anything outside that form — including everything `parseXml` would refuse — makes it answer
 * undefined, and the caller parses with `parseXml`, whose verdict and error then stand as before.
 * So this reader never refuses a document and never has to match the general parser's errors;
 * it only has to build the same tree when it answers, which is what the differential tests check.
 * Written here rather than taken from a library: it exists for speed (bench:signature (b)), and
 * its output must be exactly `parseXml`'s.
 */
import { isAscii } from 'node:buffer';
import { escapeAttribute, type C14nMethod } from './c14n.ts';
import { ASCII_NAME_START as START, ASCII_NAME_TABLE as NAME_TABLE, MAX_DEPTH, XML_LIMITS, type XmlAttribute, type XmlElement, type XmlNode } from './xml-tree.ts';

/** Longer documents go to the general parser, whose node and value bounds cannot then be reached here. */
const MAX_LENGTH = 1024 * 1024;
/**
 * Bytes outside the form besides non-ASCII ones (which UTF-8 decoding could alter): control
 * characters (XML refuses most; tab and CR would be normalised) but the line feed, DEL, and `&`
 * (no references).
 */
const OUTSIDE = [...Array.from({ length: 0x20 }, (_, b) => b).filter((b) => b !== 0x0a), 0x26, 0x7f];
const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';
const XML_DECLARATION = /^<\?xml[ \n]+version[ \n]*=[ \n]*(["'])1\.[0-9]+\1(?:[ \n]+encoding[ \n]*=[ \n]*(["'])[A-Za-z][\w.-]*\2)?(?:[ \n]+standalone[ \n]*=[ \n]*(["'])(?:yes|no)\3)?[ \n]*\?>/;
const NO_NODES: readonly XmlNode[] = Object.freeze([]);
const NO_ATTRIBUTES: readonly XmlAttribute[] = Object.freeze([]);
const NO_DECLARATIONS: ReadonlyMap<string, string> = new Map();

/** An element as this reader builds it: the tree's fields (writable while it is read), then where it stands in the source. */
type Building = { -readonly [K in keyof XmlElement]: XmlElement[K] } & {
  /** Just past its start tag. */
  readonly contentStart: number;
  /** Where its end tag starts (contentStart for an element that closes itself; -1 until read). */
  contentEnd: number;
  /** Whether everything inside it is written as canonical XML writes it (see `canonicalize`). */
  canonicalContent: boolean;
  /** Entries it pushed on the bindings, taken off at its end. */
  bound: number;
};

export class SourceDocument {
  private constructor(
    private readonly text: string,
    readonly root: XmlElement,
    /** Elements by their `Id` attribute, the first in document order for each. */
    readonly ids: ReadonlyMap<string, XmlElement>,
  ) {}

  /** The document's tree, or undefined when the document is not in the form this reader takes. */
  static read(input: string | Buffer): SourceDocument | undefined {
    if (input.length > MAX_LENGTH) return undefined;
    const bytes = typeof input === 'string' ? Buffer.from(input) : input;
    // ASCII reads the same as UTF-8 and as Latin-1. A regular expression over the text costs ten
    // times as much as these searches (isAscii and memchr, measured with callgrind).
    if (!isAscii(bytes)) return undefined;
    for (const b of OUTSIDE) if (bytes.indexOf(b) >= 0) return undefined;
    const text = bytes.toString('latin1');
    const ids = new Map<string, XmlElement>();
    const root = readTree(text, ids);
    return root && new SourceDocument(text, root, ids);
  }

  /**
   * `element` (of this document) canonicalised as `canonicalize` in c14n.ts would, copied from the
   * source; undefined where the source is not written that way below the element (then use
   * `canonicalize`). The element's own start tag is written anew: inclusive C14N puts every
   * namespace in scope on it, exclusive C14N those it and its attributes use (and the PrefixList's).
   * Below it nothing is rewritten, which is right when every start tag there is
   * `<name a="v" b="w">` with single spaces, no declarations and the attributes in order (they
   * always are: the reader takes no other order), every end tag `</name>`, no element closes
   * itself, text holds no `>`, and, for exclusive C14N, every prefix used below is rendered on the
   * element already.
   */
  canonicalize(element: XmlElement, method: C14nMethod): string | undefined {
    const e = element as Building;
    if (!e.canonicalContent) return undefined;
    let top: XmlElement = e;
    while (top.parent) top = top.parent;
    if (top !== this.root) return undefined;
    let tag = '<' + e.name;
    const scope = namespacesInScope(e);
    if (method.exclusive) {
      const rendered = new Map<string, string>();
      const render = (prefix: string) => {
        const uri = scope.get(prefix) ?? (prefix === '' ? '' : undefined);
        if (uri !== undefined && uri !== '') rendered.set(prefix, uri);
      };
      render(e.prefix);
      for (const prefix of method.inclusivePrefixes ?? []) if (prefix === '' || scope.has(prefix)) render(prefix);
      // Below the element, a prefix not rendered here would be declared where it is first used.
      if (!usesOnly(e, rendered, scope)) return undefined;
      for (const prefix of [...rendered.keys()].sort()) tag += declaration(prefix, rendered.get(prefix)!);
    } else {
      for (const prefix of [...scope.keys()].sort()) {
        const uri = scope.get(prefix)!;
        if (prefix !== '' || uri !== '') tag += declaration(prefix, uri);
      }
    }
    for (const a of e.attributes) tag += ' ' + a.name + '="' + escapeAttribute(a.value) + '"';
    return tag + '>' + this.text.slice(e.contentStart, e.contentEnd) + '</' + e.name + '>';
  }
}

function declaration(prefix: string, uri: string): string {
  return (prefix === '' ? ' xmlns="' : ` xmlns:${prefix}="`) + escapeAttribute(uri) + '"';
}

function namespacesInScope(e: XmlElement): Map<string, string> {
  const scope = new Map<string, string>();
  for (let at: XmlElement | undefined = e; at; at = at.parent) {
    for (const [prefix, uri] of at.namespaceDeclarations) if (!scope.has(prefix)) scope.set(prefix, uri);
  }
  return scope;
}

/** Whether every element below `e` has a prefix rendered on `e`, or none with an empty default namespace. */
function usesOnly(e: XmlElement, rendered: ReadonlyMap<string, string>, scope: ReadonlyMap<string, string>): boolean {
  for (const node of e.children) {
    if (node.kind !== 'element') continue;
    const ok = rendered.has(node.prefix) || (node.prefix === '' && (scope.get('') ?? '') === '');
    if (!ok || !usesOnly(node, rendered, scope)) return false;
  }
  return true;
}

/** Namespace bindings in force, innermost last: prefix, URI, prefix, URI, … */
type Bindings = string[];

function resolve(bindings: Bindings, prefix: string): string | undefined {
  for (let i = bindings.length - 2; i >= 0; i -= 2) if (bindings[i] === prefix) return bindings[i + 1];
  return prefix === '' ? '' : undefined;
}

/** Where the last name nameEnd read has its colon (-1 for none). */
let nameColon = -1;

/** The end of the name at `at`, or -1 when there is none (or it is not an ASCII QName); sets nameColon. */
function nameEnd(s: string, at: number): number {
  let c = s.charCodeAt(at);
  if (c >= 0x80 || NAME_TABLE[c] !== START) return -1;
  nameColon = -1;
  for (let p = at + 1; ; p++) {
    c = s.charCodeAt(p);
    if (c < 0x80 && NAME_TABLE[c] !== 0) continue;
    if (c !== 0x3a /* : */ || nameColon >= 0) return p;
    const after = s.charCodeAt(p + 1);
    if (after >= 0x80 || NAME_TABLE[after] !== START) return -1;
    nameColon = p;
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a;
}

/** The root element with everything in it, or undefined when the text is outside the form. */
function readTree(s: string, ids: Map<string, XmlElement>): XmlElement | undefined {
  let pos = 0;
  if (s.startsWith('<?')) {
    const declaration = XML_DECLARATION.exec(s);
    if (!declaration) return undefined;
    pos = declaration[0].length;
  }
  while (isSpace(s.charCodeAt(pos))) pos++;
  if (s.charCodeAt(pos) !== 0x3c /* < */) return undefined;

  const bindings: Bindings = ['xml', XML_NAMESPACE];
  /** Open elements, innermost last. */
  const open: Building[] = [];
  let root: Building | undefined;
  let lt = pos;
  // The next `>`: a tag must end exactly there, so neither text nor attribute values hold one.
  let gt = s.indexOf('>', lt);
  for (;;) {
    if (lt < 0 || gt < 0) return undefined;
    const c1 = s.charCodeAt(lt + 1);
    let tagEnd: number;
    if (c1 === 0x2f /* / */) {
      const top = open.pop();
      if (!top) return undefined;
      const name = top.name;
      // A slice compared whole costs less than startsWith with a position or a loop over the characters.
      const end = lt + 2 + name.length;
      if (s.slice(lt + 2, end) !== name) return undefined;
      let p = end;
      while (isSpace(s.charCodeAt(p))) p++;
      if (p !== gt) return undefined;
      if (p !== end) top.canonicalContent = false;
      top.contentEnd = lt;
      if (top.bound > 0) bindings.length -= top.bound;
      closed(top, open);
      tagEnd = gt + 1;
    } else {
      if (c1 === 0x21 /* ! */ || c1 === 0x3f /* ? */ || open.length >= MAX_DEPTH) return undefined;
      const element = startTag(s, lt, gt, open[open.length - 1], bindings, ids);
      if (!element) return undefined;
      root ??= element;
      tagEnd = gt + 1;
      if (element.contentEnd < 0) open.push(element);
      else closed(element, open);
    }
    if (open.length === 0) {
      // Only white space may follow the root.
      for (let p = tagEnd; p < s.length; p++) if (!isSpace(s.charCodeAt(p))) return undefined;
      return root;
    }
    lt = s.indexOf('<', tagEnd);
    gt = s.indexOf('>', tagEnd);
    if (lt < 0 || gt < lt) return undefined;
    if (lt > tagEnd) {
      const parent = open[open.length - 1]!;
      add(parent, { kind: 'text', value: s.slice(tagEnd, lt) });
    }
  }
}

/** An element whose end is read: its parent's content is canonical only if its own is and its tags were. */
function closed(element: Building, open: Building[]): void {
  const parent = open[open.length - 1];
  if (parent && !element.canonicalContent) parent.canonicalContent = false;
}

function add(parent: Building, node: XmlNode): void {
  if (parent.children === NO_NODES) parent.children = [node];
  else (parent.children as XmlNode[]).push(node);
}

/**
 * The start tag at `lt`, ending at `gt` (`>` or `/>`): the element, added to its parent, with its
 * declarations pushed on `bindings`, indexed in `ids` when it has an Id; undefined when outside the form.
 */
function startTag(s: string, lt: number, gt: number, parent: Building | undefined, bindings: Bindings, ids: Map<string, XmlElement>): Building | undefined {
  const end = nameEnd(s, lt + 1);
  if (end < 0) return undefined;
  const name = s.slice(lt + 1, end);
  const colon = nameColon < 0 ? -1 : nameColon - lt - 1;
  // Written as canonical XML writes a tag below the apex: one space before each attribute, `="`, no declaration.
  let canonicalTag = true;
  let attributes: XmlAttribute[] | undefined;
  let declarations: Map<string, string> | undefined;
  let lastAttribute = '';
  let p = end;
  let bound = 0;
  let count = 0;
  for (;;) {
    const spaceAt = p;
    while (isSpace(s.charCodeAt(p))) p++;
    if (p === gt) {
      if (p !== spaceAt) canonicalTag = false;
      break;
    }
    if (p === gt - 1 && s.charCodeAt(p) === 0x2f /* / */) {
      canonicalTag = false;
      break;
    }
    if (p === spaceAt || ++count > XML_LIMITS.maxAttributes) return undefined;
    if (p !== spaceAt + 1 || s.charCodeAt(spaceAt) !== 0x20) canonicalTag = false;
    const attrEnd = nameEnd(s, p);
    if (attrEnd < 0) return undefined;
    const attrName = s.slice(p, attrEnd);
    const attrColon = nameColon;
    p = attrEnd;
    if (s.charCodeAt(p) !== 0x3d /* = */) {
      canonicalTag = false;
      while (isSpace(s.charCodeAt(p))) p++;
      if (s.charCodeAt(p) !== 0x3d) return undefined;
    }
    p++;
    const quote = s.charCodeAt(p);
    if (quote !== 0x22 /* " */) {
      canonicalTag = false;
      while (isSpace(s.charCodeAt(p))) p++;
      if (s.charCodeAt(p) !== 0x22 && s.charCodeAt(p) !== 0x27 /* ' */) return undefined;
    }
    const close = s.indexOf(s[p]!, p + 1);
    // `<` anywhere before the tag's end would start markup: outside the form (the general parser decides).
    if (close < 0 || close > gt) return undefined;
    const value = s.slice(p + 1, close);
    // Line feeds in a value become spaces in the tree (XML 1.0 §3.3.3); `<` is not allowed.
    if (value.includes('\n') || value.includes('<')) return undefined;
    p = close + 1;
    if (attrName === 'xmlns' || attrName.startsWith('xmlns:')) {
      const prefix = attrName === 'xmlns' ? '' : attrName.slice(6);
      // A repeat, the reserved prefixes and namespaces, and undeclaring a prefix are outside.
      if (declarations?.has(prefix) || prefix === 'xml' || prefix === 'xmlns' || value === XML_NAMESPACE || value === XMLNS_NAMESPACE || (value === '' && prefix !== '')) return undefined;
      (declarations ??= new Map()).set(prefix, value);
      bindings.push(prefix, value);
      bound += 2;
      canonicalTag = false;
    } else {
      // Unprefixed and in canonical (code unit) order, so none repeats and none is ever reordered.
      if (attrColon >= 0 || attrName <= lastAttribute) return undefined;
      lastAttribute = attrName;
      (attributes ??= []).push({ name: attrName, prefix: '', localName: attrName, namespace: '', value });
    }
  }
  const prefix = colon < 0 ? '' : name.slice(0, colon);
  if (prefix === 'xml' || prefix === 'xmlns') return undefined;
  const namespace = resolve(bindings, prefix);
  if (namespace === undefined || (namespace === '' && prefix !== '')) return undefined;
  const selfClosing = s.charCodeAt(gt - 1) === 0x2f && p === gt - 1;
  const element: Building = {
    kind: 'element',
    name,
    prefix,
    localName: colon < 0 ? name : name.slice(colon + 1),
    namespace,
    namespaceDeclarations: declarations ?? NO_DECLARATIONS,
    attributes: attributes ?? NO_ATTRIBUTES,
    children: NO_NODES,
    parent,
    contentStart: gt + 1,
    contentEnd: selfClosing ? gt + 1 : -1,
    canonicalContent: true,
    bound,
  };
  if (selfClosing && bound > 0) bindings.length -= bound;
  if (attributes) for (const a of attributes) if (a.name === 'Id' && !ids.has(a.value)) ids.set(a.value, element);
  if (parent) {
    add(parent, element);
    if (!canonicalTag || selfClosing) parent.canonicalContent = false;
  }
  return element;
}
