/**
 * Canonical XML 1.0 (https://www.w3.org/TR/2001/REC-xml-c14n-20010315) and Exclusive XML
 * Canonicalization 1.0 (https://www.w3.org/TR/2002/REC-xml-exc-c14n-20020718), each with and
 * without comments: what X-Road signatures and their verifiers (Apache Santuario in the reference)
 * use for SignedInfo, for same-document references and for hash-chain transforms.
 *
 * `canonicalize` writes one element and its subtree as a document subset, the way a signature
 * references an element: inclusive C14N puts on the element every namespace in scope where it
 * stands and the xml:* attributes it inherits; exclusive C14N writes a namespace only where an
 * element or attribute uses its prefix (or the prefix is in the InclusiveNamespaces PrefixList).
 * Below the element, a declaration is written only where it changes what the output has in scope.
 * `canonicalizeDocument` writes a whole document, with the comments and processing instructions
 * around its root. Written here rather than taken from a library: the hot path (inclusive C14N of
 * SignedInfo on every message) is measured in bench:signature, and the differential tests check
 * the output against xmlsec1 and xml-crypto.
 */
import { attribute, child, type XmlAttribute, type XmlComment, type XmlDocument, type XmlElement, type XmlProcessingInstruction } from './xml-tree.ts';

export const C14N_ALGORITHM = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315';
export const C14N_WITH_COMMENTS = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments';
export const EXC_C14N_ALGORITHM = 'http://www.w3.org/2001/10/xml-exc-c14n#';
export const EXC_C14N_WITH_COMMENTS = 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments';

export interface C14nMethod {
  readonly exclusive: boolean;
  readonly comments: boolean;
  /** Exclusive C14N only: prefixes written as inclusive C14N would ('' stands for `#default`). */
  readonly inclusivePrefixes?: readonly string[];
}

export const INCLUSIVE: C14nMethod = { exclusive: false, comments: false };

const METHODS = new Map<string, C14nMethod>([
  [C14N_ALGORITHM, INCLUSIVE],
  [C14N_WITH_COMMENTS, { exclusive: false, comments: true }],
  [EXC_C14N_ALGORITHM, { exclusive: true, comments: false }],
  [EXC_C14N_WITH_COMMENTS, { exclusive: true, comments: true }],
]);

/** The canonicalisation an algorithm URI names, or undefined for any other URI. */
export function c14nMethodOf(uri: string): C14nMethod | undefined {
  return METHODS.get(uri);
}

/** Prefixes of an InclusiveNamespaces PrefixList: whitespace-separated, `#default` for the default namespace. */
export function parsePrefixList(list: string): string[] {
  return list
    .split(/[ \t\n\r]+/)
    .filter((p) => p !== '')
    .map((p) => (p === '#default' ? '' : p));
}

/** One element and its subtree as a document subset. */
export function canonicalize(element: XmlElement, method: C14nMethod = INCLUSIVE): string {
  const ancestors: XmlElement[] = [];
  for (let e = element.parent; e; e = e.parent) ancestors.unshift(e);
  const scope = new Map<string, string>();
  for (const a of ancestors) for (const [prefix, uri] of a.namespaceDeclarations) scope.set(prefix, uri);
  for (const [prefix, uri] of element.namespaceDeclarations) scope.set(prefix, uri);

  let attributes: readonly XmlAttribute[] = element.attributes;
  if (!method.exclusive) {
    // Inherited xml:* attributes (xml:lang, xml:space, …), nearest first, unless the apex has its own.
    const inherited: XmlAttribute[] = [];
    for (let i = ancestors.length - 1; i >= 0; i--) {
      for (const attr of ancestors[i]!.attributes) {
        if (attr.prefix === 'xml' && !element.attributes.some((x) => x.name === attr.name) && !inherited.some((x) => x.name === attr.name)) inherited.push(attr);
      }
    }
    if (inherited.length > 0) attributes = [...element.attributes, ...inherited];
  }

  const rendered = new Map<string, string>();
  const declarations = method.exclusive ? exclusiveDeclarations(element, scope, rendered, method) : [...scope].filter(([prefix, uri]) => !(prefix === '' && uri === ''));
  const writer = new Writer(method);
  writer.element(element, declarations, attributes, scope, rendered);
  return writer.out;
}

/** A whole document: comments (with comments) and processing instructions around the root on lines of their own. */
export function canonicalizeDocument(doc: XmlDocument, method: C14nMethod = INCLUSIVE): string {
  const writer = new Writer(method);
  const written = (node: XmlComment | XmlProcessingInstruction) => node.kind === 'pi' || method.comments;
  for (const node of doc.prolog.filter(written)) {
    writer.misc(node);
    writer.out += '\n';
  }
  writer.out += canonicalize(doc.root, method);
  for (const node of doc.epilog.filter(written)) {
    writer.out += '\n';
    writer.misc(node);
  }
  return writer.out;
}

/**
 * Writes canonical XML into one string: appending to a string (which V8 keeps as a rope and
 * flattens once, when the result is hashed) takes half the time of pushing the pieces into an
 * array and joining them (measured on SignedInfo and SignedProperties, which are written for every
 * message verified).
 */
class Writer {
  out = '';

  constructor(private readonly method: C14nMethod) {}

  /**
   * @param scope namespaces in scope at the element
   * @param parentRendered namespaces in scope in the output at the element's output parent
   */
  element(element: XmlElement, declarations: [string, string][], attributes: readonly XmlAttribute[], scope: Map<string, string>, parentRendered: Map<string, string>): void {
    let rendered = parentRendered;
    let out = '<' + element.name;
    if (declarations.length > 0) {
      if (declarations.length > 1) declarations.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      rendered = new Map(parentRendered);
      for (const [prefix, uri] of declarations) {
        out += (prefix === '' ? ' xmlns="' : ` xmlns:${prefix}="`) + escapeAttribute(uri) + '"';
        rendered.set(prefix, uri);
      }
    }
    if (attributes.length > 0) {
      const sorted = attributes.length === 1 ? attributes : [...attributes].sort(compareAttributes);
      for (const a of sorted) out += ' ' + a.name + '="' + escapeAttribute(a.value) + '"';
    }
    this.out += out + '>';
    const exclusive = this.method.exclusive;
    for (const node of element.children) {
      if (node.kind === 'text') this.out += escapeText(node.value);
      else if (node.kind === 'element') {
        let childScope = scope;
        // Only exclusive C14N looks up what is in scope; inclusive C14N needs just the changes.
        if (exclusive && node.namespaceDeclarations.size > 0) {
          childScope = new Map(scope);
          for (const [prefix, uri] of node.namespaceDeclarations) childScope.set(prefix, uri);
        }
        const childDeclarations = exclusive ? exclusiveDeclarations(node, childScope, rendered, this.method) : changedDeclarations(node, rendered);
        this.element(node, childDeclarations, node.attributes, childScope, rendered);
      } else this.misc(node);
    }
    this.out += '</' + element.name + '>';
  }

  /** A processing instruction, or a comment when comments are kept. */
  misc(node: XmlComment | XmlProcessingInstruction): void {
    if (node.kind === 'pi') this.out += '<?' + node.target + (node.data ? ` ${node.data}` : '') + '?>';
    else if (this.method.comments) this.out += '<!--' + node.value + '-->';
  }
}

const NO_DECLARATIONS: [string, string][] = [];

/** Inclusive C14N below the apex: the element's own declarations that change what the output has in scope. */
function changedDeclarations(element: XmlElement, rendered: Map<string, string>): [string, string][] {
  if (element.namespaceDeclarations.size === 0) return NO_DECLARATIONS;
  const out: [string, string][] = [];
  for (const [prefix, uri] of element.namespaceDeclarations) {
    if ((rendered.get(prefix) ?? '') !== uri) out.push([prefix, uri]);
  }
  return out;
}

/**
 * Exclusive C14N: the namespaces the element visibly uses (its own prefix, its attributes'
 * prefixes; the default namespace when it has no prefix), plus those of the PrefixList in scope,
 * each unless the output already has it in scope with the same value. An unprefixed element whose
 * default namespace is empty gets `xmlns=""` only where the output has a non-empty default.
 */
function exclusiveDeclarations(element: XmlElement, scope: Map<string, string>, rendered: Map<string, string>, method: C14nMethod): [string, string][] {
  const out: [string, string][] = [];
  const consider = (prefix: string) => {
    if (prefix === 'xml' || out.some(([p]) => p === prefix)) return;
    const uri = scope.get(prefix) ?? (prefix === '' ? '' : undefined);
    if (uri !== undefined && (rendered.get(prefix) ?? '') !== uri) out.push([prefix, uri]);
  };
  consider(element.prefix);
  for (const a of element.attributes) if (a.prefix !== '') consider(a.prefix);
  if (method.inclusivePrefixes) for (const prefix of method.inclusivePrefixes) if (prefix === '' || scope.has(prefix)) consider(prefix);
  return out;
}

function compareAttributes(a: XmlAttribute, b: XmlAttribute): number {
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.localName < b.localName ? -1 : a.localName > b.localName ? 1 : 0;
}

function escapeText(s: string): string {
  if (!/[&<>\r]/.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}

export function escapeAttribute(s: string): string {
  if (!/[&<"\t\n\r]/.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/\t/g, '&#x9;').replace(/\n/g, '&#xA;').replace(/\r/g, '&#xD;');
}

/** The namespace of ec:InclusiveNamespaces. */
export const EXC_C14N_NS = 'http://www.w3.org/2001/10/xml-exc-c14n#';

/**
 * The canonicalisation a ds:CanonicalizationMethod or ds:Transform element names, with the
 * PrefixList of its ec:InclusiveNamespaces child; undefined for any other algorithm.
 */
export function c14nMethodOfElement(element: XmlElement): C14nMethod | undefined {
  const method = c14nMethodOf(attribute(element, 'Algorithm') ?? '');
  if (!method?.exclusive) return method;
  const prefixes = child(element, EXC_C14N_NS, 'InclusiveNamespaces');
  return prefixes ? { ...method, inclusivePrefixes: parsePrefixList(attribute(prefixes, 'PrefixList') ?? '') } : method;
}
