/**
 * Canonical XML 1.0 without comments (http://www.w3.org/TR/2001/REC-xml-c14n-20010315), the
 * canonicalisation X-Road signatures use, for one element and its subtree as a document subset:
 * the element carries every namespace in scope where it stands (declared on it or on an ancestor)
 * and the xml:* attributes it inherits; below it a declaration is written only where it changes
 * what is in scope.
 */
import type { XmlAttribute, XmlElement } from './xml-tree.ts';

export const C14N_ALGORITHM = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315';

export function canonicalize(element: XmlElement): string {
  const inScope = new Map<string, string>();
  const ancestors: XmlElement[] = [];
  for (let e = element.parent; e; e = e.parent) ancestors.unshift(e);
  for (const a of ancestors) for (const [prefix, uri] of a.namespaceDeclarations) inScope.set(prefix, uri);
  for (const [prefix, uri] of element.namespaceDeclarations) inScope.set(prefix, uri);

  // Inherited xml:* attributes (xml:lang, xml:space, …), nearest first, unless the apex has its own.
  const inherited: XmlAttribute[] = [];
  for (const a of ancestors.reverse()) {
    for (const attr of a.attributes) {
      if (attr.prefix === 'xml' && !element.attributes.some((x) => x.name === attr.name) && !inherited.some((x) => x.name === attr.name)) inherited.push(attr);
    }
  }

  const out: string[] = [];
  const rendered = new Map<string, string>();
  const declarations = [...inScope].filter(([prefix, uri]) => !(prefix === '' && uri === ''));
  writeElement(element, declarations, [...element.attributes, ...inherited], rendered, out);
  return out.join('');
}

function writeElement(element: XmlElement, declarations: [string, string][], attributes: readonly XmlAttribute[], parentRendered: Map<string, string>, out: string[]): void {
  let rendered = parentRendered;
  out.push('<', element.name);
  if (declarations.length > 0) {
    declarations.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    rendered = new Map(parentRendered);
    for (const [prefix, uri] of declarations) {
      out.push(prefix === '' ? ' xmlns="' : ` xmlns:${prefix}="`, escapeAttribute(uri), '"');
      rendered.set(prefix, uri);
    }
  }
  if (attributes.length > 0) {
    const sorted = attributes.length === 1 ? attributes : [...attributes].sort(compareAttributes);
    for (const a of sorted) out.push(' ', a.name, '="', escapeAttribute(a.value), '"');
  }
  out.push('>');
  for (const node of element.children) {
    if (node.kind === 'text') out.push(escapeText(node.value));
    else if (node.kind === 'pi') out.push('<?', node.target, node.data ? ` ${node.data}` : '', '?>');
    else writeElement(node, changedDeclarations(node, rendered), node.attributes, rendered, out);
  }
  out.push('</', element.name, '>');
}

/** Declarations on `element` that change what its nearest rendered ancestor has in scope. */
function changedDeclarations(element: XmlElement, rendered: Map<string, string>): [string, string][] {
  if (element.namespaceDeclarations.size === 0) return [];
  const out: [string, string][] = [];
  for (const [prefix, uri] of element.namespaceDeclarations) {
    const current = rendered.get(prefix) ?? '';
    if (current !== uri) out.push([prefix, uri]);
  }
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
