/**
 * A small non-validating XML parser for signature documents and SOAP messages. It builds only what
 * XML signatures need (elements with their namespace declarations and attributes, text, comments,
 * processing instructions), applies the XML 1.0 normalisations that canonicalisation depends on
 * (line ends, attribute-value whitespace, character and predefined entity references), and refuses
 * DTDs, so no entity can be expanded and no external resource is ever read.
 *
 * What reaches it is mostly unauthenticated, so its cost is linear in the input and bounded
 * (XmlLimits, refused with XmlLimitError): duplicate attributes are found with a set, namespaces
 * are resolved from one stack per prefix rather than a copied map per element, and a caller that
 * needs only the outer part of a document (a SOAP envelope's header, not its payload) can have the
 * content of chosen elements checked but not kept (`skipContent`), so the tree stays small however
 * large the payload. Elements without attributes, declarations or children share empty
 * collections, and the names of a large document are interned. Every message carries a signature, so the
 * common path stays quick (see bench:signature).
 *
 * Comments are kept as nodes because canonicalisation "with comments" writes them; `textOf` and
 * `child`/`childElements` skip them, so they never change what a document says.
 */

export class XmlError extends Error {
  override readonly name: string = 'XmlError';
}

/** A document over one of the parser's bounds: `limit` names which, `bound` is its value. */
export class XmlLimitError extends XmlError {
  override readonly name = 'XmlLimitError';

  constructor(
    readonly limit: keyof XmlLimits,
    readonly bound: number,
    message: string,
  ) {
    super(message);
  }
}

export interface XmlAttribute {
  /** Qualified name as written, e.g. `Id` or `xml:lang`. */
  readonly name: string;
  readonly prefix: string;
  readonly localName: string;
  /** Namespace URI ('' for unprefixed attributes). */
  namespace: string;
  readonly value: string;
}

export interface XmlElement {
  readonly kind: 'element';
  readonly name: string;
  readonly prefix: string;
  readonly localName: string;
  /** Namespace URI of the element ('' when none). */
  namespace: string;
  /** Declarations on this element: prefix ('' for the default namespace) → URI. */
  readonly namespaceDeclarations: ReadonlyMap<string, string>;
  readonly attributes: readonly XmlAttribute[];
  /** Empty for an element whose content the caller chose to skip (XmlParseOptions.skipContent). */
  readonly children: readonly XmlNode[];
  readonly parent: XmlElement | undefined;
}

export interface XmlText {
  readonly kind: 'text';
  readonly value: string;
}

export interface XmlProcessingInstruction {
  readonly kind: 'pi';
  readonly target: string;
  readonly data: string;
}

export interface XmlComment {
  readonly kind: 'comment';
  /** The text between `<!--` and `-->`. */
  readonly value: string;
}

export type XmlNode = XmlElement | XmlText | XmlComment | XmlProcessingInstruction;

/** A whole document: the root element and the comments and processing instructions around it. */
export interface XmlDocument {
  readonly root: XmlElement;
  /** Comments and processing instructions before the root element (not the XML declaration). */
  readonly prolog: readonly (XmlComment | XmlProcessingInstruction)[];
  /** Comments and processing instructions after the root element. */
  readonly epilog: readonly (XmlComment | XmlProcessingInstruction)[];
}

/** What one document may hold; docs/security.md "Parser bounds" gives the reasons for each value. */
export interface XmlLimits {
  /** Length of the whole document: characters (UTF-16 code units) of a string, bytes of a Buffer. */
  readonly maxLength: number;
  /** Element nesting. */
  readonly maxDepth: number;
  /** Attributes on one element, namespace declarations included. */
  readonly maxAttributes: number;
  /** Nodes kept in the tree: elements, text runs, comments, processing instructions (skipped content is not kept). */
  readonly maxNodes: number;
  /** Characters in one attribute value or one text run, after references are replaced. */
  readonly maxValueLength: number;
}

/** Deepest element nesting accepted: far beyond any signature or SOAP message, far below the stack's limit. */
export const MAX_DEPTH = 512;

export const XML_LIMITS: XmlLimits = {
  maxLength: 256 * 1024 * 1024,
  maxDepth: MAX_DEPTH,
  maxAttributes: 10_000,
  maxNodes: 1_000_000,
  maxValueLength: 64 * 1024 * 1024,
};

export interface XmlParseOptions {
  /** Bounds to use instead of XML_LIMITS. */
  readonly limits?: Partial<XmlLimits>;
  /**
   * Asked once for each kept element, right after its start tag (name, namespace, attributes and
   * parent are known): true skips its content, which is then checked as thoroughly (well-formed,
   * namespaces bound, within the limits) but not kept, so its `children` stay empty.
   */
  readonly skipContent?: (element: XmlElement, depth: number) => boolean;
}

const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const NO_NODES: readonly XmlNode[] = Object.freeze([]);
const NO_ATTRIBUTES: readonly XmlAttribute[] = Object.freeze([]);
const NO_DECLARATIONS: ReadonlyMap<string, string> = new Map();
const NO_PREFIXES: readonly string[] = Object.freeze([]);
/** Nodes from which names are interned. */
const INTERN_FROM = 1000;
/** Up to this many attributes are checked for repeats one by one, more with a set. */
const SMALL = 16;

// Names as XML 1.0 (fifth edition) §2.3 and Namespaces in XML 1.0 §3 define them: a QName is an
// NCName, or two joined by one colon. Characters past U+FFFF come as surrogate pairs (no `u` flag:
// the regular expression stays on V8's fast path for one-byte strings).
const NAME_START = 'A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD';
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F\\u2040`;
const PAIR = '[\\uD800-\\uDB7F][\\uDC00-\\uDFFF]';
const NCNAME = `(?:[${NAME_START}]|${PAIR})(?:[${NAME_CHAR}]|${PAIR})*`;
const QNAME = new RegExp(`${NCNAME}(?::${NCNAME})?`, 'y');
const WHOLE_NCNAME = new RegExp(`^${NCNAME}$`);
/** ASCII characters in names: START may begin one, CHAR only continue it (`:` is handled apart). */
const START = 2;
const CHAR = 1;
const NAME_TABLE = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  NAME_TABLE[c] = /[A-Za-z_]/.test(ch) ? START : /[-.0-9]/.test(ch) ? CHAR : 0;
}
/** For the quick reader of canonical-source.ts, which reads ASCII names the same way. */
export { NAME_TABLE as ASCII_NAME_TABLE, START as ASCII_NAME_START };
/** Characters XML 1.0 §2.2 excludes; lone surrogates only need looking for in text that did not come from UTF-8. */
const NOT_CHAR = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const NOT_CHAR_OR_LONE_SURROGATE = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const REFERENCE = /&([^;&\s<]*);?/g;
// XML's white space is space, tab and line ends (CR is gone by now), not everything \s matches.
const XML_DECLARATION = /^<\?xml[ \t\n]+version[ \t\n]*=[ \t\n]*(["'])1\.[0-9]+\1(?:[ \t\n]+encoding[ \t\n]*=[ \t\n]*(["'])[A-Za-z][\w.-]*\2)?(?:[ \t\n]+standalone[ \t\n]*=[ \t\n]*(["'])(?:yes|no)\3)?[ \t\n]*\?>/;

/** Parses a document and returns its root element. @throws XmlError, XmlLimitError */
export function parseXml(input: string | Buffer, options?: XmlParseOptions): XmlElement {
  return parseXmlDocument(input, options).root;
}

/** Parses a document, keeping what stands around the root element (for whole-document canonicalisation). @throws XmlError, XmlLimitError */
export function parseXmlDocument(input: string | Buffer, options: XmlParseOptions = {}): XmlDocument {
  const limits = options.limits ? { ...XML_LIMITS, ...options.limits } : XML_LIMITS;
  if (input.length > limits.maxLength) throw new XmlLimitError('maxLength', limits.maxLength, `document longer than ${limits.maxLength} ${typeof input === 'string' ? 'characters' : 'bytes'}`);
  let text = typeof input === 'string' ? input : input.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
  return new Parser(text, limits, options.skipContent, typeof input === 'string').document();
}

/** The first child element with this namespace and local name. */
export function child(parent: XmlElement, namespace: string, localName: string): XmlElement | undefined {
  for (const node of parent.children) {
    if (node.kind === 'element' && node.localName === localName && node.namespace === namespace) return node;
  }
  return undefined;
}

export function childElements(parent: XmlElement): XmlElement[] {
  return parent.children.filter((n): n is XmlElement => n.kind === 'element');
}

/** Concatenated text of an element's direct text children. */
export function textOf(element: XmlElement): string {
  let out = '';
  for (const node of element.children) if (node.kind === 'text') out += node.value;
  return out;
}

export function attribute(element: XmlElement, name: string): string | undefined {
  for (const a of element.attributes) if (a.name === name) return a.value;
  return undefined;
}

/** The namespace URI bound to `prefix` where `element` is. */
export function lookupNamespace(element: XmlElement | undefined, prefix: string): string | undefined {
  if (prefix === 'xml') return XML_NAMESPACE;
  for (let e = element; e; e = e.parent) {
    const uri = e.namespaceDeclarations.get(prefix);
    if (uri !== undefined) return uri;
  }
  return prefix === '' ? '' : undefined;
}

/** A qualified name split once per document and shared by every element and attribute that has it. */
interface QName {
  readonly name: string;
  readonly prefix: string;
  readonly localName: string;
}

/** An element built while its content is read (children are added, the namespace set once resolved). */
interface Building {
  kind: 'element';
  name: string;
  prefix: string;
  localName: string;
  namespace: string;
  namespaceDeclarations: ReadonlyMap<string, string>;
  attributes: readonly XmlAttribute[];
  children: XmlNode[] | readonly XmlNode[];
  parent: XmlElement | undefined;
}

/** An element whose end tag has not been read yet. */
interface Open {
  readonly name: string;
  /** The element as kept, or undefined when an ancestor's content is skipped. */
  readonly element: Building | undefined;
  /** Whether its content is kept. */
  readonly keep: boolean;
  /** Prefixes it declared, whose bindings end with it. */
  readonly declared: readonly string[];
}

class Parser {
  private pos = 0;
  private nodes = 0;
  /** Namespace bindings in force: prefix → URIs, innermost last (pushed and popped with elements). */
  private readonly bindings = new Map<string, string[]>([
    ['xml', [XML_NAMESPACE]],
    ['', ['']],
  ]);
  private readonly names = new Map<string, QName>();
  private readonly notChar: RegExp;

  constructor(
    private readonly s: string,
    private readonly limits: XmlLimits,
    private readonly skipContent: XmlParseOptions['skipContent'],
    fromString: boolean,
  ) {
    this.notChar = fromString ? NOT_CHAR_OR_LONE_SURROGATE : NOT_CHAR;
  }

  /**
   * Refuses characters XML excludes in `text`, read at `at`. Markup is made of names and white
   * space, which cannot hold them, so checking what stands between markup checks the document,
   * and only as far as it is read.
   */
  private checkChars(text: string, at: number): void {
    const bad = this.notChar.exec(text);
    if (!bad) return;
    this.pos = at + bad.index;
    this.fail(`character U+${text.charCodeAt(bad.index).toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`);
  }

  document(): XmlDocument {
    let root: XmlElement | undefined;
    const prolog: (XmlComment | XmlProcessingInstruction)[] = [];
    const epilog: (XmlComment | XmlProcessingInstruction)[] = [];
    // The XML declaration looks like a processing instruction but is none; it may only stand first.
    if (this.s.startsWith('<?xml') && /[ \t\n?]/.test(this.s.charAt(5))) {
      const declaration = XML_DECLARATION.exec(this.s);
      if (!declaration) this.fail('malformed XML declaration');
      this.pos = declaration[0].length;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.pos >= this.s.length) break;
      const around = root ? epilog : prolog;
      if (this.s.startsWith('<?', this.pos)) around.push(this.processingInstruction());
      else if (this.s.startsWith('<!--', this.pos)) around.push(this.comment());
      else if (this.s.startsWith('<!', this.pos)) this.fail('DTDs and entity declarations are not accepted');
      else if (this.s[this.pos] === '<' && !root) root = this.rootElement();
      else this.fail(root ? 'content after the root element' : 'expected the root element');
    }
    if (!root) this.fail('no root element');
    return { root, prolog, epilog };
  }

  /** The root element and everything in it, read with a stack of open elements rather than recursion. */
  private rootElement(): XmlElement {
    const s = this.s;
    const open: Open[] = [];
    const root = this.startTag(undefined, open)!;
    let text = '';
    while (open.length > 0) {
      const top = open[open.length - 1]!;
      const lt = s.indexOf('<', this.pos);
      if (lt < 0) this.fail(`element <${top.name}> is not closed`);
      if (lt > this.pos) {
        const raw = s.slice(this.pos, lt);
        this.checkChars(raw, this.pos);
        if (raw.includes(']]>')) this.fail('"]]>" in text');
        const value = this.decode(raw, top.keep);
        if (top.keep) text = this.textRun(text, value);
      }
      this.pos = lt;
      const next = s.charCodeAt(lt + 1);
      if (next === 0x21 /* ! */ && s.startsWith('[CDATA[', lt + 2)) {
        const end = s.indexOf(']]>', lt + 9);
        if (end < 0) this.fail('unterminated CDATA section');
        const cdata = s.slice(lt + 9, end);
        this.checkChars(cdata, lt + 9);
        if (top.keep) text = this.textRun(text, cdata);
        this.pos = end + 3;
        continue;
      }
      if (text) {
        this.keep(top.element!, { kind: 'text', value: text });
        text = '';
      }
      if (next === 0x2f /* / */) {
        this.pos += 2;
        const name = this.name();
        this.skipWhitespace();
        if (name !== top.name || s[this.pos] !== '>') this.fail(`expected </${top.name}>`);
        this.pos++;
        if (top.declared.length > 0) this.unbind(top.declared);
        open.pop();
      } else if (next === 0x21 /* ! */) {
        if (!s.startsWith('--', lt + 2)) this.fail('declarations are not accepted inside elements');
        const comment = this.comment();
        if (top.keep) this.keep(top.element!, comment);
      } else if (next === 0x3f /* ? */) {
        const pi = this.processingInstruction();
        if (top.keep) this.keep(top.element!, pi);
      } else this.startTag(top, open);
    }
    return root;
  }

  /**
   * Reads a start tag at `pos`: the element, kept under `parent` when the parent's content is kept,
   * and pushed on `open` unless it closes itself. Returns the element when kept.
   */
  private startTag(parent: Open | undefined, open: Open[]): Building | undefined {
    const depth = open.length + 1;
    if (depth > this.limits.maxDepth) this.limitFailure('maxDepth', `elements nested deeper than ${this.limits.maxDepth}`);
    const s = this.s;
    this.pos++; // '<'
    const name = this.name();
    const keep = parent === undefined || parent.keep;
    let rawAttributes: [string, string][] | undefined;
    let declarations: Map<string, string> | undefined;
    let attributeNames: Set<string> | undefined;
    let count = 0;
    let selfClosing = false;
    for (;;) {
      const hadSpace = this.skipWhitespace();
      const c = s[this.pos];
      if (c === '>') {
        this.pos++;
        break;
      }
      if (c === '/' && s[this.pos + 1] === '>') {
        this.pos += 2;
        selfClosing = true;
        break;
      }
      if (!hadSpace || c === undefined) this.fail(`malformed start tag <${name}>`);
      const attrName = this.name();
      if (++count > this.limits.maxAttributes) this.limitFailure('maxAttributes', `more than ${this.limits.maxAttributes} attributes on <${name}>`);
      this.skipWhitespace();
      if (s[this.pos] !== '=') this.fail(`attribute ${attrName} has no value`);
      this.pos++;
      this.skipWhitespace();
      const value = this.attributeValue();
      if (attrName === 'xmlns' || attrName.startsWith('xmlns:')) {
        const prefix = attrName === 'xmlns' ? '' : attrName.slice(6);
        this.checkDeclaration(prefix, value);
        if (declarations?.has(prefix)) this.fail(`attribute ${attrName} repeated`);
        (declarations ??= new Map()).set(prefix, value);
      } else {
        rawAttributes ??= [];
        // A few attributes are compared one by one; past SMALL a set keeps the check linear.
        if (!attributeNames && rawAttributes.length >= SMALL) attributeNames = new Set(rawAttributes.map(([n]) => n));
        if (attributeNames ? attributeNames.has(attrName) : rawAttributes.some(([n]) => n === attrName)) this.fail(`attribute ${attrName} repeated`);
        attributeNames?.add(attrName);
        rawAttributes.push([attrName, value]);
      }
    }
    let declared: readonly string[] = NO_PREFIXES;
    if (declarations) {
      for (const [prefix, uri] of declarations) {
        const uris = this.bindings.get(prefix);
        if (uris) uris.push(uri);
        else this.bindings.set(prefix, [uri]);
      }
      declared = [...declarations.keys()];
    }
    const qname = keep ? this.qname(name) : undefined;
    const namespace = this.resolve(qname ? qname.prefix : prefixOf(name), name);
    let attributes: readonly XmlAttribute[] = NO_ATTRIBUTES;
    if (rawAttributes) {
      const resolved: XmlAttribute[] = [];
      let prefixed: string[] | undefined;
      for (const [attrName, value] of rawAttributes) {
        const q = keep ? this.qname(attrName) : undefined;
        const prefix = q ? q.prefix : prefixOf(attrName);
        const attrNamespace = prefix === '' ? '' : this.resolve(prefix, attrName);
        if (prefix !== '') (prefixed ??= []).push(`{${attrNamespace}}${attrName.slice(prefix.length + 1)}`);
        if (q) resolved.push({ name: q.name, prefix: q.prefix, localName: q.localName, namespace: attrNamespace, value });
      }
      // Namespaces in XML §6.3: two prefixes bound to one URI must not name the same attribute.
      if (prefixed && prefixed.length > 1) {
        const unique = prefixed.length > SMALL ? new Set(prefixed).size === prefixed.length : prefixed.every((key, i) => prefixed.indexOf(key) === i);
        if (!unique) this.fail(`attribute repeated: ${prefixed.find((key, i) => prefixed.indexOf(key) !== i)}`);
      }
      attributes = resolved;
    }
    let element: Building | undefined;
    let keepContent = false;
    if (qname) {
      element = {
        kind: 'element',
        name: qname.name,
        prefix: qname.prefix,
        localName: qname.localName,
        namespace,
        namespaceDeclarations: declarations ?? NO_DECLARATIONS,
        attributes,
        children: NO_NODES,
        parent: parent?.element,
      };
      if (parent) this.keep(parent.element!, element);
      else this.count();
      keepContent = !this.skipContent?.(element, depth);
    }
    if (!selfClosing) open.push({ name, element, keep: keepContent, declared });
    else if (declared.length > 0) this.unbind(declared);
    return element;
  }

  /** Namespaces in XML §3: the xml and xmlns prefixes and namespaces are reserved; only the default namespace may be undeclared. */
  private checkDeclaration(prefix: string, uri: string): void {
    if (prefix === 'xmlns') this.fail('the xmlns prefix cannot be declared');
    if ((prefix === 'xml') !== (uri === XML_NAMESPACE) || uri === XMLNS_NAMESPACE) this.fail(`namespace ${uri} cannot be bound to ${prefix === '' ? 'the default namespace' : `prefix ${prefix}`}`);
    if (uri === '' && prefix !== '') this.fail(`namespace prefix ${prefix} undeclared with an empty URI`);
  }

  private unbind(declared: readonly string[]): void {
    for (const prefix of declared) this.bindings.get(prefix)!.pop();
  }

  /** Counts a node against maxNodes and adds it to `parent`. */
  private keep(parent: Building, node: XmlNode): void {
    this.count();
    if (parent.children === NO_NODES) parent.children = [node];
    else (parent.children as XmlNode[]).push(node);
  }

  private count(): void {
    if (++this.nodes > this.limits.maxNodes) this.limitFailure('maxNodes', `more than ${this.limits.maxNodes} nodes`);
  }

  /** Text kept so far plus `more`, within maxValueLength. */
  private textRun(text: string, more: string): string {
    if (text.length + more.length > this.limits.maxValueLength) this.limitFailure('maxValueLength', `text longer than ${this.limits.maxValueLength} characters`);
    return text + more;
  }

  private attributeValue(): string {
    const quote = this.s[this.pos];
    if (quote !== '"' && quote !== "'") this.fail('attribute value must be quoted');
    const end = this.s.indexOf(quote, this.pos + 1);
    if (end < 0) this.fail('unterminated attribute value');
    const raw = this.s.slice(this.pos + 1, end);
    this.checkChars(raw, this.pos + 1);
    if (raw.includes('<')) this.fail('"<" in an attribute value');
    this.pos = end + 1;
    // XML 1.0 §3.3.3: literal whitespace becomes a space; whitespace from character references stays.
    const value = this.decode(raw.includes('\t') || raw.includes('\n') ? raw.replace(/[\t\n]/g, ' ') : raw, true);
    if (value.length > this.limits.maxValueLength) this.limitFailure('maxValueLength', `attribute value longer than ${this.limits.maxValueLength} characters`);
    return value;
  }

  /** Replaces references; with `keep` false only checks them (content that is skipped). */
  private decode(raw: string, keep: boolean): string {
    if (!raw.includes('&')) return raw;
    if (!keep) {
      REFERENCE.lastIndex = 0;
      for (let m = REFERENCE.exec(raw); m; m = REFERENCE.exec(raw)) this.reference(m[0], m[1]!);
      return '';
    }
    return raw.replace(REFERENCE, (match, ref: string) => this.reference(match, ref));
  }

  private reference(match: string, ref: string): string {
    if (!match.endsWith(';')) this.fail(`unterminated reference "${match}"`);
    if (ref.startsWith('#')) {
      const code = /^#(x[0-9a-fA-F]{1,6}|[0-9]{1,7})$/.test(ref) ? (ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10)) : -1;
      if (!isChar(code)) this.fail(`bad character reference &${ref};`);
      return String.fromCodePoint(code);
    }
    const value = ENTITIES[ref];
    if (value === undefined) this.fail(`unknown entity &${ref};`);
    return value;
  }

  private processingInstruction(): XmlProcessingInstruction {
    const end = this.s.indexOf('?>', this.pos + 2);
    if (end < 0) this.fail('unterminated processing instruction');
    const body = this.s.slice(this.pos + 2, end);
    this.checkChars(body, this.pos + 2);
    const space = body.search(/[ \t\n]/);
    const target = space < 0 ? body : body.slice(0, space);
    if (!WHOLE_NCNAME.test(target) || target.toLowerCase() === 'xml') this.fail(`bad processing instruction target "${target}"`);
    this.pos = end + 2;
    return { kind: 'pi', target, data: space < 0 ? '' : body.slice(space).replace(/^[ \t\n]+/, '') };
  }

  private comment(): XmlComment {
    const end = this.s.indexOf('-->', this.pos + 4);
    if (end < 0) this.fail('unterminated comment');
    const value = this.s.slice(this.pos + 4, end);
    this.checkChars(value, this.pos + 4);
    if (value.includes('--') || value.endsWith('-')) this.fail('"--" in a comment');
    this.pos = end + 3;
    return { kind: 'comment', value };
  }

  /** A QName at `pos`: ASCII names by table, others by the full rule. */
  private name(): string {
    const s = this.s;
    const start = this.pos;
    let p = start;
    let c = s.charCodeAt(p);
    if (c < 0x80 && NAME_TABLE[c] === START) {
      let colon = false;
      for (p++; ; p++) {
        c = s.charCodeAt(p);
        if (c < 0x80) {
          const kind = NAME_TABLE[c]!;
          if (kind !== 0) continue;
          if (c !== 0x3a || colon) break;
          const after = s.charCodeAt(p + 1);
          if (after >= 0x80) return this.fullName();
          if (NAME_TABLE[after] !== START) break;
          colon = true;
        } else if (c >= 0x80) return this.fullName();
        else break;
      }
      this.pos = p;
      return s.slice(start, p);
    }
    return this.fullName();
  }

  private fullName(): string {
    QNAME.lastIndex = this.pos;
    const m = QNAME.exec(this.s);
    if (!m) this.fail('expected a name');
    this.pos += m[0].length;
    return m[0];
  }

  /**
   * The split of a name that is kept in the tree; interned once the tree is large (where it saves
   * a third of an element's memory), not before (where looking up costs more than splitting).
   */
  private qname(name: string): QName {
    if (this.nodes < INTERN_FROM) return splitName(name);
    let q = this.names.get(name);
    if (!q) this.names.set(name, (q = splitName(name)));
    return q;
  }

  private skipWhitespace(): boolean {
    const start = this.pos;
    const s = this.s;
    for (;;) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d) this.pos++;
      else return this.pos > start;
    }
  }

  private resolve(prefix: string, name: string): string {
    const uris = this.bindings.get(prefix);
    const uri = uris?.[uris.length - 1];
    if (uri === undefined || (uri === '' && prefix !== '')) this.fail(`namespace prefix of ${name} is not declared`);
    return uri;
  }

  private fail(reason: string): never {
    throw new XmlError(`${reason} (line ${this.line()})`);
  }

  private limitFailure(limit: keyof XmlLimits, reason: string): never {
    throw new XmlLimitError(limit, this.limits[limit], `${reason} (line ${this.line()})`);
  }

  private line(): number {
    let line = 1;
    for (let at = this.s.indexOf('\n'); at >= 0 && at < this.pos; at = this.s.indexOf('\n', at + 1)) line++;
    return line;
  }
}

function prefixOf(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? '' : name.slice(0, colon);
}

function splitName(name: string): QName {
  const colon = name.indexOf(':');
  return colon < 0 ? { name, prefix: '', localName: name } : { name, prefix: name.slice(0, colon), localName: name.slice(colon + 1) };
}

/** XML 1.0 §2.2 Char. */
function isChar(code: number): boolean {
  return code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
}
