/**
 * Canonical XML 1.0 and Exclusive XML Canonicalization 1.0, with and without comments, checked
 * against implementations we did not write: every element of each document (as a document subset)
 * and each whole document must canonicalise to exactly what xmlsec1 (libxml2) writes — on the
 * shared vectors' XML, on hand-made documents that exercise the rules (namespaces rebound and
 * undeclared, comments in and around the root, processing instructions, attributes in other
 * namespaces, inherited xml:* attributes, escapes, CDATA, line ends, PrefixLists) and on generated
 * ones. xml-crypto 6 (xmldom) is a second oracle where it implements the rules (it misses some
 * namespace cases: a rebound prefix, xmlns="" in a subset, PrefixList prefixes an element does
 * not use), here the signature elements of the shared containers.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DOMParser } from '@xmldom/xmldom';
import { C14nCanonicalization, C14nCanonicalizationWithComments, ExclusiveCanonicalization, ExclusiveCanonicalizationWithComments } from 'xml-crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { readZip } from '../../src/platform/zip.ts';
import { C14N_ALGORITHM, C14N_WITH_COMMENTS, EXC_C14N_ALGORITHM, EXC_C14N_WITH_COMMENTS, c14nMethodOf, canonicalize, canonicalizeDocument, parsePrefixList, type C14nMethod } from '../../src/xml/c14n.ts';
import { parseXmlDocument, type XmlElement } from '../../src/xml/xml-tree.ts';
import { VECTORS } from '../support/vectors.ts';
import { XmlsecOracle, type OracleMethod } from './xmlsec-oracle.ts';

const oracle = new XmlsecOracle();
afterAll(() => oracle.close());

const ALGORITHMS = [C14N_ALGORITHM, C14N_WITH_COMMENTS, EXC_C14N_ALGORITHM, EXC_C14N_WITH_COMMENTS];

function elementsOf(root: XmlElement): XmlElement[] {
  const out: XmlElement[] = [root];
  for (const node of root.children) if (node.kind === 'element') out.push(...elementsOf(node));
  return out;
}

function methodOf(m: OracleMethod): C14nMethod {
  const method = c14nMethodOf(m.algorithm)!;
  return m.prefixList === undefined ? method : { ...method, inclusivePrefixes: parsePrefixList(m.prefixList) };
}

/** Our canonical forms of every element and of the document equal xmlsec1's, for each method. */
function expectAsXmlsec(doc: string | Buffer, methods: readonly OracleMethod[] = ALGORITHMS.map((algorithm) => ({ algorithm }))): number {
  const parsed = parseXmlDocument(doc);
  const elements = elementsOf(parsed.root);
  const theirs = oracle.canonical(doc, elements.length, methods);
  const ours = { elements: elements.map((e) => methods.map((m) => canonicalize(e, methodOf(m)))), document: methods.map((m) => canonicalizeDocument(parsed, methodOf(m))) };
  expect(ours).toEqual(theirs);
  return elements.length;
}

describe('C14N 1.0 and exclusive C14N 1.0, with and without comments, equal xmlsec1', () => {
  it('on the signatures and messages of the shared containers (asic/, asic-core/)', () => {
    let checked = 0;
    for (const folder of ['asic', 'asic-core']) {
      for (const name of readdirSync(join(VECTORS, folder)).filter((f) => f !== 'not-asic.asice')) {
        for (const entry of readZip(readFileSync(join(VECTORS, folder, name)))) {
          if (entry.name === 'message.xml' || /^META-INF\/.*signatures?\.xml$/.test(entry.name)) checked += expectAsXmlsec(entry.data);
        }
      }
    }
    expect(checked).toBeGreaterThan(300);
  });

  it('on the shared hash chains and the XML messages of proxy-queries/ and identifiers/', () => {
    const files = [
      ...readdirSync(join(VECTORS, 'hashchain')).filter((f) => f.endsWith('.xml')).map((f) => join(VECTORS, 'hashchain', f)),
      ...readdirSync(join(VECTORS, 'identifiers')).map((f) => join(VECTORS, 'identifiers', f)),
      ...readdirSync(join(VECTORS, 'proxy-queries'))
        .filter((f) => /\.(query|answer)$/.test(f))
        .map((f) => join(VECTORS, 'proxy-queries', f)),
    ];
    let checked = 0;
    for (const file of files) {
      const bytes = readFileSync(file);
      // Only XML documents in UTF-8 (our parser reads UTF-8 only; X-Road signs UTF-8): not MIME files, not ISO-8859-1.
      if (!bytes.toString('latin1').trimStart().startsWith('<') || /encoding="(?!utf-8)/i.test(bytes.subarray(0, 100).toString('latin1'))) continue;
      try {
        parseXmlDocument(bytes);
      } catch {
        continue; // the malformed messages of proxy-queries/
      }
      expectAsXmlsec(bytes);
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('on hand-made documents: rebound and undeclared namespaces, comments in and around the root, PIs, foreign attributes, xml:* inheritance, escapes', () => {
    const docs = [
      `<?xml version="1.0"?>\n<!-- before --><?pi before?>\n<r xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" xml:lang="fi" xml:space="preserve"><!-- c0 --><a:x b:q="1" z="2" a:p="3"><!-- c1 --><y xmlns="">t &amp; &lt; &gt; " '</y><b:w xmlns:b="urn:b2" xml:lang="sv"/><?pi inside?></a:x></r>\n<!-- after -->\n<?pi after ?>`,
      `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:x="http://x-road.eu/xsd/xroad.xsd"><s:Header><x:id>1</x:id></s:Header><s:Body><p:q xmlns:p="urn:p" a="&quot;&#9;&#10;&#13;x" b="l1\nl2\tl3"><!--c-->v<![CDATA[<&>]]>\r\nw\r</p:q></s:Body></s:Envelope>`,
      `<a:r xmlns:a="urn:a" xmlns="urn:d"><e xmlns="" xmlns:a="urn:a2"><a:f xmlns:a="urn:a"><g xmlns="urn:d"/></a:f></e><h xmlns:c="urn:c" c:at="1"/></a:r>`,
      `<r xmlns:z="urn:z" xmlns:y="urn:y" y:b="1" z:a="2" b="3" a="4"><e y:b="1" z:a="2"><z:f/></e></r>`,
    ];
    const methods: OracleMethod[] = [...ALGORITHMS.map((algorithm) => ({ algorithm })), { algorithm: EXC_C14N_ALGORITHM, prefixList: 'a #default' }, { algorithm: EXC_C14N_WITH_COMMENTS, prefixList: 'b z' }];
    for (const doc of docs) expectAsXmlsec(doc, methods);
  });

  it('on 40 generated documents (fixed seed), with PrefixLists', () => {
    let seed = 20260206;
    const random = (n: number) => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return Math.floor((seed / 2 ** 32) * n);
    };
    const generate = (depth: number, declared: string[]): string => {
      const scope = [...declared];
      const attributes: string[] = [];
      for (const p of ['', 'a', 'b', 'c']) {
        if (random(4) !== 0) continue;
        if (p === '') attributes.push(`xmlns="${random(4) === 0 ? '' : `urn:d${random(2)}`}"`);
        else {
          attributes.push(`xmlns:${p}="urn:${p}${random(2)}"`);
          scope.push(p);
        }
      }
      const prefix = scope.length > 0 && random(2) === 0 ? `${scope[random(scope.length)]}:` : '';
      if (random(2) === 0) attributes.push(`z="v&amp;&#9;${random(9)}"`);
      if (scope.length > 0 && random(2) === 0) attributes.push(`${scope[random(scope.length)]}:q="x"`);
      if (random(4) === 0) attributes.push(`xml:lang="l${random(3)}"`);
      let content = '';
      for (let i = depth < 4 ? random(4) : 0; i > 0; i--) {
        const kind = random(6);
        content += kind === 0 ? `<!-- c${random(9)} -->` : kind === 1 ? ` t&lt;${random(9)}&gt;\r\n` : kind === 2 ? `<?pi d${random(3)}?>` : kind === 3 ? '<![CDATA[<&>]]>' : generate(depth + 1, scope);
      }
      const name = `${prefix}e${depth}`;
      return `<${name}${attributes.map((a) => ` ${a}`).join('')}>${content}</${name}>`;
    };
    for (let i = 0; i < 40; i++) {
      const prefixList = ['a #default', 'b', 'c a', ''][i % 4]!;
      const methods: OracleMethod[] = ALGORITHMS.map((algorithm) => ({ algorithm, ...(algorithm.startsWith(EXC_C14N_ALGORITHM) ? { prefixList } : {}) }));
      expectAsXmlsec(`<!-- pre --><?p x?>\n${generate(0, [])}\n<!-- post -->`, methods);
    }
  });
});

describe('xml-crypto 6 as a second oracle', () => {
  it('SignedInfo and SignedProperties of the shared signatures, each C14N method, equal xml-crypto', () => {
    const implementations: Record<string, { process(node: Node, options: object): string }> = {
      [C14N_ALGORITHM]: new C14nCanonicalization(),
      [C14N_WITH_COMMENTS]: new C14nCanonicalizationWithComments(),
      [EXC_C14N_ALGORITHM]: new ExclusiveCanonicalization(),
      [EXC_C14N_WITH_COMMENTS]: new ExclusiveCanonicalizationWithComments(),
    };
    let checked = 0;
    for (const name of readdirSync(join(VECTORS, 'asic'))) {
      const xml = readZip(readFileSync(join(VECTORS, 'asic', name))).find((e) => e.name === 'META-INF/signatures.xml')!.data.toString('utf8');
      const dom = new DOMParser().parseFromString(xml, 'text/xml');
      const root = parseXmlDocument(xml).root;
      for (const [ns, local] of [['http://www.w3.org/2000/09/xmldsig#', 'SignedInfo'], ['http://uri.etsi.org/01903/v1.3.2#', 'SignedProperties']] as const) {
        const node = dom.getElementsByTagNameNS(ns, local)[0]!;
        const ours = elementsOf(root).find((e) => e.namespace === ns && e.localName === local)!;
        // xml-crypto takes the namespaces the element inherits from the caller.
        const ancestorNamespaces = [...root.namespaceDeclarations].map(([prefix, namespaceURI]) => ({ prefix, namespaceURI }));
        for (const [algorithm, implementation] of Object.entries(implementations)) {
          const exclusive = algorithm.startsWith(EXC_C14N_ALGORITHM);
          expect(canonicalize(ours, c14nMethodOf(algorithm)!)).toBe(implementation.process(node as unknown as Node, exclusive ? {} : { ancestorNamespaces }).toString());
          checked++;
        }
      }
    }
    expect(checked).toBe(32);
  });
});
