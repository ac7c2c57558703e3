/**
 * Issue 13 item 10, XML: our parser against @xmldom/xmldom as a differential oracle, on documents
 * generated from a grammar and on mutations of the shared vectors' messages and signatures.
 * - It throws nothing but XmlError, whatever the input.
 * - It is never more lenient than xmldom: what we accept xmldom accepts, with the same tree
 *   (elements, namespaces, attributes, text); on the generated documents, which avoid xmldom's
 *   known leniencies (README.md), both accept and refuse exactly the same.
 * - What we accept canonicalises to a fixed point: C14N of the parse of C14N is C14N again.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DOMParser, type Element as DomElement, type Node as DomNode } from '@xmldom/xmldom';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readZip } from '../../src/platform/zip.ts';
import { canonicalizeDocument, type C14nMethod } from '../../src/xml/c14n.ts';
import { XmlError, parseXmlDocument, type XmlDocument, type XmlElement } from '../../src/xml/xml-tree.ts';
import { VECTORS } from '../support/vectors.ts';
import { FUZZ_TIMEOUT, fuzzRuns, mutated, vector } from './fuzz.ts';

const XMLNS = 'http://www.w3.org/2000/xmlns/';
const METHODS: C14nMethod[] = [
  { exclusive: false, comments: true },
  { exclusive: true, comments: false },
];

function ours(doc: string | Buffer): XmlDocument | undefined {
  try {
    return parseXmlDocument(doc);
  } catch (err) {
    if (err instanceof XmlError) return undefined;
    throw err;
  }
}

function theirs(doc: string): DomElement | undefined {
  try {
    const parsed = new DOMParser({
      onError: (level, message) => {
        if (level !== 'warning') throw new Error(message);
      },
    }).parseFromString(doc, 'text/xml');
    return parsed.documentElement ?? undefined;
  } catch {
    return undefined;
  }
}

/** Elements, namespaces, attributes (sorted) and text (CDATA joined in; comments and PIs left out), as one string. */
function shapeOfOurs(e: XmlElement): string {
  const attributes = e.attributes.map((a) => `{${a.namespace}}${a.localName}=${JSON.stringify(a.value)}`).sort();
  let content = '';
  let text = '';
  for (const node of e.children) {
    if (node.kind === 'text') text += node.value;
    else if (node.kind === 'element') {
      content += (text ? JSON.stringify(text) : '') + shapeOfOurs(node);
      text = '';
    }
  }
  return `<{${e.namespace}}${e.localName} ${attributes.join(' ')}>${content}${text ? JSON.stringify(text) : ''}</>`;
}

function shapeOfTheirs(e: DomElement): string {
  const attributes: string[] = [];
  for (let i = 0; i < e.attributes.length; i++) {
    const a = e.attributes.item(i)!;
    if (a.namespaceURI !== XMLNS) attributes.push(`{${a.namespaceURI ?? ''}}${a.localName}=${JSON.stringify(a.value)}`);
  }
  let content = '';
  let text = '';
  for (let n: DomNode | null = e.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 3 || n.nodeType === 4) text += n.nodeValue;
    else if (n.nodeType === 1) {
      content += (text ? JSON.stringify(text) : '') + shapeOfTheirs(n as DomElement);
      text = '';
    }
  }
  return `<{${e.namespaceURI ?? ''}}${e.localName} ${attributes.sort().join(' ')}>${content}${text ? JSON.stringify(text) : ''}</>`;
}

function expectFixedPoint(doc: XmlDocument): void {
  for (const method of METHODS) {
    const once = canonicalizeDocument(doc, method);
    expect(canonicalizeDocument(parseXmlDocument(once), method)).toBe(once);
  }
}

// ---- a grammar of documents, with the errors both parsers refuse, none of xmldom's leniencies ----

/** Each prefix has URIs of its own, so two prefixes never name one attribute (a leniency of xmldom). */
const NAMESPACES: Record<string, string[]> = { '': ['urn:d', ''], p: ['urn:p1', 'urn:p2'], q: ['urn:q1', 'http://x-road.eu/xsd/xroad.xsd'] };
const LOCAL_NAMES = ['a', 'b', 'Body', 'x-1', 'é', '_z', 'ns.v'];
const TEXT = ['t', ' ', '\n', '\r\n', '\t', 'ä€', '&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#65;', '&#x1F600;', '>', '"', "'", '] ', '<![CDATA[<x>&]]>', '&bogus;'];
const VALUES = ['', 'v', 'a b', '\t\n', '&amp;&#x9;', '&lt;', "'", '&bogus;', '<'];

const qname = fc.tuple(fc.constantFrom('', '', 'p', 'q', 'r'), fc.constantFrom(...LOCAL_NAMES)).map(([p, l]) => (p ? `${p}:${l}` : l));
const attribute = fc.tuple(qname, fc.constantFrom(...VALUES), fc.constantFrom('"', "'")).map(([n, v, q]) => `${n}=${q}${v.replaceAll(q, q === '"' ? '&quot;' : '&apos;')}${q}`);
const declaration = fc.constantFrom(...Object.entries(NAMESPACES).flatMap(([p, uris]) => uris.filter((u) => p === '' || u !== '').map((u) => `${p ? `xmlns:${p}` : 'xmlns'}="${u}"`)));
const misc = fc.constantFrom('<!-- c -->', '<!---->', '<?pi data?>', '<?pi?>', '<!-- a -- b -->', '<?xml x?>');

const element: fc.Arbitrary<string> = fc.letrec<{ element: string }>((tie) => ({
  element: fc
    .record({
      name: qname,
      declarations: fc.array(declaration, { maxLength: 2 }),
      attributes: fc.array(attribute, { maxLength: 3 }),
      content: fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...TEXT) }, { weight: 1, arbitrary: misc }, { weight: 2, arbitrary: tie('element') }), { maxLength: 4, depthIdentifier: 'content' }),
      endName: fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: qname }),
    })
    .map(({ name, declarations, attributes, content, endName }) => {
      const head = [name, ...declarations, ...attributes].join(' ');
      return content.length === 0 && endName === undefined ? `<${head}/>` : `<${head}>${content.join('')}</${endName ?? name}>`;
    }),
})).element;

const document = fc.tuple(fc.constantFrom('', '<?xml version="1.0" encoding="UTF-8"?>\n', '<!-- before -->'), element, fc.constantFrom('', '\n', '<!-- after -->', '<?pi?>')).map((parts) => parts.join(''));

// ---- seeds: the shared vectors' XML ----

function seeds(): Buffer[] {
  const out: Buffer[] = [];
  for (const name of ['valid-signed-message.asice', 'valid-signed-hashchain.asice']) {
    for (const entry of readZip(vector('asic', name))) if (entry.name.endsWith('.xml')) out.push(entry.data);
  }
  for (const name of readdirSync(join(VECTORS, 'hashchain')).filter((f) => f.endsWith('.xml'))) out.push(vector('hashchain', name));
  for (const name of ['getstate.query', 'getstate.answer', 'simple-comment.answer', 'getstate-defaultnamespace.query']) out.push(vector('proxy-queries', name));
  return out;
}

describe('XML parser fuzzing against @xmldom/xmldom (issue 13 item 10)', () => {
  it(
    'generated documents: accepted and refused exactly as xmldom does, with the same tree, and C14N a fixed point',
    () => {
      let accepted = 0;
      fc.assert(
        fc.property(document, (doc) => {
          const mine = ours(doc);
          const reference = theirs(doc);
          expect(mine !== undefined).toBe(reference !== undefined);
          if (mine && reference) {
            accepted++;
            expect(shapeOfOurs(mine.root)).toBe(shapeOfTheirs(reference));
            expectFixedPoint(mine);
          }
        }),
        fuzzRuns(1500),
      );
      // The grammar must reach both sides of the line, or the comparison says little.
      expect(accepted).toBeGreaterThan(100);
    },
    FUZZ_TIMEOUT,
  );

  it(
    'mutated vectors: only XmlError; never accepted where xmldom refuses; the same tree where both accept',
    () => {
      const alphabet = [...'<>&;"\'=/!?-[]:x \n'].map((c) => c.charCodeAt(0));
      fc.assert(
        fc.property(
          fc.constantFrom(...seeds()).chain((seed) => mutated(seed, alphabet)),
          (bytes) => {
            const mine = ours(bytes);
            if (!mine) return;
            const reference = theirs(bytes.toString('utf8'));
            expect(reference).toBeDefined();
            expect(shapeOfOurs(mine.root)).toBe(shapeOfTheirs(reference!));
            expectFixedPoint(mine);
          },
        ),
        fuzzRuns(1500),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'arbitrary text and bytes: only XmlError, with or without the SOAP payload skipped',
    () => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array({ maxLength: 256 }).map((a) => Buffer.from(a))), (input) => {
          ours(input);
          try {
            parseXmlDocument(input, { skipContent: (_, depth) => depth === 2, limits: { maxNodes: 8, maxDepth: 8, maxAttributes: 4 } });
          } catch (err) {
            expect(err).toBeInstanceOf(XmlError);
          }
        }),
        fuzzRuns(3000),
      );
    },
    FUZZ_TIMEOUT,
  );
});
