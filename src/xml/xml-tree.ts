/**
 * A small non-validating XML parser for signature documents. It builds only what XML signatures
 * need (elements with their namespace declarations and attributes, text, comments, processing
 * instructions), applies the XML 1.0 normalisations that canonicalisation depends on (line ends,
 * attribute-value whitespace, character and predefined entity references), and refuses DTDs, so no
 * entity can be expanded and no external resource is ever read. Elements may nest at most
 * MAX_DEPTH deep, so a crafted document cannot exhaust the stack. Every message carries a
 * signature, so it is kept small and quick (see bench:signature).
 *
 * Comments are kept as nodes because canonicalisation "with comments" writes them; `textOf` and
 * `child`/`childElements` skip them, so they never change what a document says.
 */

export class XmlError extends Error {
  override readonly name = 'XmlError';
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
  readonly namespaceDeclarations: Map<string, string>;
  readonly attributes: XmlAttribute[];
  readonly children: XmlNode[];
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

/** Deepest element nesting accepted: far beyond any signature or SOAP message, far below the stack's limit. */
export const MAX_DEPTH = 512;

const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
/** What is in scope before any declaration: the xml prefix, and no default namespace. */
const ROOT_SCOPE: ReadonlyMap<string, string> = new Map([
  ['xml', XML_NAMESPACE],
  ['', ''],
]);
const NAME = /[^\s/>=]+/y;
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Parses a document and returns its root element. @throws XmlError */
export function parseXml(input: string | Buffer): XmlElement {
  return parseXmlDocument(input).root;
}

/** Parses a document, keeping what stands around the root element (for whole-document canonicalisation). @throws XmlError */
export function parseXmlDocument(input: string | Buffer): XmlDocument {
  let text = typeof input === 'string' ? input : input.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
  return new Parser(text).document();
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

class Parser {
  private pos = 0;

  constructor(private readonly s: string) {}

  document(): XmlDocument {
    let root: XmlElement | undefined;
    const prolog: (XmlComment | XmlProcessingInstruction)[] = [];
    const epilog: (XmlComment | XmlProcessingInstruction)[] = [];
    // The XML declaration looks like a processing instruction but is none.
    this.skipWhitespace();
    if (this.s.startsWith('<?xml', this.pos) && /[\s?]/.test(this.s.charAt(this.pos + 5))) this.processingInstruction();
    for (;;) {
      this.skipWhitespace();
      if (this.pos >= this.s.length) break;
      const around = root ? epilog : prolog;
      if (this.s.startsWith('<?', this.pos)) around.push(this.processingInstruction());
      else if (this.s.startsWith('<!--', this.pos)) around.push(this.comment());
      else if (this.s.startsWith('<!', this.pos)) this.fail('DTDs and entity declarations are not accepted');
      else if (this.s[this.pos] === '<' && !root) root = this.element(undefined, 1, ROOT_SCOPE);
      else this.fail(root ? 'content after the root element' : 'expected the root element');
    }
    if (!root) this.fail('no root element');
    return { root, prolog, epilog };
  }

  /** @param scope the namespaces in scope at the parent: shared down the tree until an element declares one */
  private element(parent: XmlElement | undefined, depth: number, scope: ReadonlyMap<string, string>): XmlElement {
    if (depth > MAX_DEPTH) this.fail(`elements nested deeper than ${MAX_DEPTH}`);
    const s = this.s;
    this.pos++; // '<'
    const name = this.name();
    const rawAttributes: [string, string][] = [];
    const namespaceDeclarations = new Map<string, string>();
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
      this.skipWhitespace();
      if (s[this.pos] !== '=') this.fail(`attribute ${attrName} has no value`);
      this.pos++;
      this.skipWhitespace();
      const value = this.attributeValue();
      if (attrName === 'xmlns') namespaceDeclarations.set('', value);
      else if (attrName.startsWith('xmlns:')) {
        if (value === '') this.fail(`namespace prefix ${attrName.slice(6)} undeclared with an empty URI`);
        namespaceDeclarations.set(attrName.slice(6), value);
      } else {
        if (rawAttributes.some(([n]) => n === attrName)) this.fail(`attribute ${attrName} repeated`);
        rawAttributes.push([attrName, value]);
      }
    }
    const [prefix, localName] = splitName(name);
    const element: XmlElement = { kind: 'element', name, prefix, localName, namespace: '', namespaceDeclarations, attributes: [], children: [], parent };
    if (namespaceDeclarations.size > 0) {
      const inner = new Map(scope);
      for (const [p, uri] of namespaceDeclarations) inner.set(p, uri);
      scope = inner;
    }
    element.namespace = this.resolve(scope, prefix, name);
    for (const [attrName, value] of rawAttributes) {
      const [p, local] = splitName(attrName);
      element.attributes.push({ name: attrName, prefix: p, localName: local, namespace: p === '' ? '' : this.resolve(scope, p, attrName), value });
    }
    if (!selfClosing) this.content(element, depth, scope);
    return element;
  }

  private content(element: XmlElement, depth: number, scope: ReadonlyMap<string, string>): void {
    const s = this.s;
    let text = '';
    for (;;) {
      const lt = s.indexOf('<', this.pos);
      if (lt < 0) this.fail(`element <${element.name}> is not closed`);
      if (lt > this.pos) text += this.decode(s.slice(this.pos, lt));
      this.pos = lt;
      if (s.startsWith('</', lt)) {
        if (text) element.children.push({ kind: 'text', value: text });
        this.pos += 2;
        const name = this.name();
        this.skipWhitespace();
        if (name !== element.name || s[this.pos] !== '>') this.fail(`expected </${element.name}>`);
        this.pos++;
        return;
      }
      if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt + 9);
        if (end < 0) this.fail('unterminated CDATA section');
        text += s.slice(lt + 9, end);
        this.pos = end + 3;
        continue;
      }
      if (text) {
        element.children.push({ kind: 'text', value: text });
        text = '';
      }
      if (s.startsWith('<!--', lt)) element.children.push(this.comment());
      else if (s.startsWith('<?', lt)) element.children.push(this.processingInstruction());
      else if (s.startsWith('<!', lt)) this.fail('declarations are not accepted inside elements');
      else element.children.push(this.element(element, depth + 1, scope));
    }
  }

  private attributeValue(): string {
    const quote = this.s[this.pos];
    if (quote !== '"' && quote !== "'") this.fail('attribute value must be quoted');
    const end = this.s.indexOf(quote, this.pos + 1);
    if (end < 0) this.fail('unterminated attribute value');
    const raw = this.s.slice(this.pos + 1, end);
    if (raw.includes('<')) this.fail('"<" in an attribute value');
    this.pos = end + 1;
    // XML 1.0 §3.3.3: literal whitespace becomes a space; whitespace from character references stays.
    return this.decode(raw.replace(/[\t\n]/g, ' '));
  }

  private decode(raw: string): string {
    if (!raw.includes('&')) return raw;
    return raw.replace(/&([^;&\s]*);?/g, (match, ref: string) => {
      if (!match.endsWith(';')) this.fail(`unterminated reference "${match}"`);
      if (ref.startsWith('#')) {
        const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
        if (!Number.isInteger(code) || code <= 0 || code > 0x10ffff || !/^#(x[0-9a-fA-F]+|[0-9]+)$/.test(ref)) this.fail(`bad character reference &${ref};`);
        return String.fromCodePoint(code);
      }
      const value = ENTITIES[ref];
      if (value === undefined) this.fail(`unknown entity &${ref};`);
      return value;
    });
  }

  private processingInstruction(): XmlProcessingInstruction {
    const end = this.s.indexOf('?>', this.pos + 2);
    if (end < 0) this.fail('unterminated processing instruction');
    const body = this.s.slice(this.pos + 2, end);
    this.pos = end + 2;
    const space = body.search(/\s/);
    const target = space < 0 ? body : body.slice(0, space);
    return { kind: 'pi', target, data: space < 0 ? '' : body.slice(space).replace(/^\s+/, '') };
  }

  private comment(): XmlComment {
    const end = this.s.indexOf('-->', this.pos + 4);
    if (end < 0) this.fail('unterminated comment');
    const value = this.s.slice(this.pos + 4, end);
    this.pos = end + 3;
    return { kind: 'comment', value };
  }

  private name(): string {
    NAME.lastIndex = this.pos;
    const m = NAME.exec(this.s);
    if (!m) this.fail('expected a name');
    this.pos += m[0].length;
    return m[0];
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

  private resolve(scope: ReadonlyMap<string, string>, prefix: string, name: string): string {
    const uri = scope.get(prefix);
    if (uri === undefined) this.fail(`namespace prefix of ${name} is not declared`);
    return uri;
  }

  private fail(reason: string): never {
    const line = this.s.slice(0, this.pos).split('\n').length;
    throw new XmlError(`${reason} (line ${line})`);
  }
}

function splitName(name: string): [prefix: string, localName: string] {
  const colon = name.indexOf(':');
  return colon < 0 ? ['', name] : [name.slice(0, colon), name.slice(colon + 1)];
}
