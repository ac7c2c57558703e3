/**
 * Issue 13 item 2, XML part: no parser work for unauthenticated callers that grows faster than the
 * input. The floods that froze the proxies are refused with a coded error (XmlLimitError naming
 * its bound; InvalidSoap, as the reference answers unparseable SOAP, in the proxies), every bound
 * is exact, a SOAP payload of any size is checked but not kept, and the well-formedness rules the
 * reference's Xerces applies (names, comments, references, characters, reserved namespaces) hold.
 * How long the floods take, and that the cost grows linearly, is measured by
 * scripts/bench-flood.ts (docs/benchmarks.md), not here.
 */
import { describe, expect, it } from 'vitest';
import { readSoapFault, soapFault } from '../../src/protocol/faults.ts';
import { readMessageHeader } from '../../src/protocol/message-header.ts';
import { SOAP_ENVELOPE, parseSoapHeader, withRequestHash } from '../../src/protocol/soap-message.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { canonicalize } from '../../src/xml/c14n.ts';
import { XML_LIMITS, XmlError, XmlLimitError, child, childElements, parseXml, parseXmlDocument, textOf, type XmlElement, type XmlLimits } from '../../src/xml/xml-tree.ts';

const ENVELOPE_NS = 'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd"';
const HEADER =
  '<SOAP-ENV:Header><xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode><id:subsystemCode>client</id:subsystemCode></xrd:client>' +
  '<xrd:service id:objectType="SERVICE"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode><id:subsystemCode>provider</id:subsystemCode><id:serviceCode>helloService</id:serviceCode></xrd:service>' +
  '<xrd:id>flood</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header>';
const soap = (body: string) => `<SOAP-ENV:Envelope ${ENVELOPE_NS}>${HEADER}<SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;

/** The limit an XmlLimitError names, or what else was thrown. */
function limitOf(parse: () => unknown): keyof XmlLimits | 'accepted' | 'XmlError' {
  try {
    parse();
    return 'accepted';
  } catch (err) {
    if (err instanceof XmlLimitError) return err.limit;
    if (err instanceof XmlError) return 'XmlError';
    throw err;
  }
}

/** The code and bound of the XrdError a SOAP check throws. */
function soapRefusal(parse: () => unknown): { code: string; limit: unknown } {
  try {
    parse();
  } catch (err) {
    if (err instanceof XrdError) return { code: err.code, limit: err.details.limit };
    throw err;
  }
  throw new Error('accepted');
}

function nodesIn(element: XmlElement): number {
  let n = 1;
  for (const node of element.children) n += node.kind === 'element' ? nodesIn(node) : 1;
  return n;
}

describe('issue 13 floods, refused with a coded error before the work grows', () => {
  const attributes = Array.from({ length: 60_000 }, (_, i) => ` a${i}="x"`).join('');

  it('attribute flood: 60,000 attributes on one element (649 KB) → XmlLimitError maxAttributes; in a SOAP body, InvalidSoap', () => {
    const element = `<prod:helloService xmlns:prod="urn:p"${attributes}/>`;
    expect(element.length).toBeGreaterThan(640_000);
    expect(limitOf(() => parseXml(element))).toBe('maxAttributes');
    expect(soapRefusal(() => parseSoapHeader(soap(element)))).toEqual({ code: 'InvalidSoap', limit: 'maxAttributes' });
    // The same in the header, which the proxies keep whole, and deep in the payload, which they only check.
    expect(soapRefusal(() => parseSoapHeader(soap(`<prod:helloService xmlns:prod="urn:p"><x${attributes}/></prod:helloService>`)))).toEqual({ code: 'InvalidSoap', limit: 'maxAttributes' });
  });

  it('attribute flood within the bound: 10,000 attributes, as many as the JDK parser takes, are read', () => {
    const root = parseXml(`<e${attributes.slice(0, attributes.indexOf(' a10000='))}/>`);
    expect(root.attributes).toHaveLength(XML_LIMITS.maxAttributes);
    expect(root.attributes.at(-1)).toMatchObject({ name: 'a9999', value: 'x' });
  });

  it('element flood: 31 MB of empty elements in the SOAP body → InvalidSoap maxNodes; the same as a payload is checked but not kept', () => {
    const flood = '<a/>'.repeat(7_750_000);
    expect(flood.length).toBe(31_000_000);
    // Right in the Body: a body of millions of elements, which the envelope keeps one by one, is refused.
    expect(soapRefusal(() => parseSoapHeader(Buffer.from(soap(flood))))).toEqual({ code: 'InvalidSoap', limit: 'maxNodes' });
    // Inside the one payload element: a well-formed message; its header is read and the tree holds only the envelope.
    const message = Buffer.from(soap(`<prod:helloService xmlns:prod="urn:p">${flood}</prod:helloService>`));
    expect(parseSoapHeader(message).service.serviceCode).toBe('helloService');
    const envelope = parseXml(message, SOAP_ENVELOPE);
    expect(nodesIn(envelope)).toBeLessThan(40);
    expect(readMessageHeader(message).queryId).toBe('flood');
    expect(readSoapFault(message)).toBeUndefined();
    // Parsed whole, as for signatures and canonicalisation, the tree stops at maxNodes.
    expect(limitOf(() => parseXml(message))).toBe('maxNodes');
  });

  it('namespace flood: thousands of declarations in scope cost each nested element nothing (one binding stack per prefix)', () => {
    const declarations = Array.from({ length: 9_000 }, (_, i) => ` xmlns:p${i}="urn:${i}"`).join('');
    const nested = '<p1:e xmlns:p2="urn:other">'.repeat(500) + '</p1:e>'.repeat(500);
    const root = parseXml(`<r${declarations}>${nested}</r>`);
    let e = childElements(root)[0]!;
    for (let depth = 2; depth < 500; depth++) e = childElements(e)[0]!;
    expect(e.namespace).toBe('urn:1');
    expect(e.namespaceDeclarations.get('p2')).toBe('urn:other');
  });
});

describe('each bound is exact, and overridable per call', () => {
  const refused = (doc: string, limits: Partial<XmlLimits>) => limitOf(() => parseXml(doc, { limits }));

  it('maxDepth', () => {
    expect(refused('<a>'.repeat(3) + '</a>'.repeat(3), { maxDepth: 3 })).toBe('accepted');
    expect(refused('<a>'.repeat(4) + '</a>'.repeat(4), { maxDepth: 3 })).toBe('maxDepth');
    expect(limitOf(() => parseXml('<a>'.repeat(XML_LIMITS.maxDepth + 1)))).toBe('maxDepth');
  });

  it('maxAttributes counts namespace declarations too', () => {
    expect(refused('<a xmlns="u" b="1" c="2"/>', { maxAttributes: 3 })).toBe('accepted');
    expect(refused('<a xmlns="u" b="1" c="2" d="3"/>', { maxAttributes: 3 })).toBe('maxAttributes');
  });

  it('maxNodes counts elements, text runs, comments and processing instructions kept, and not what is skipped', () => {
    const doc = '<r>t<a/><!--c--><?p?></r>';
    expect(refused(doc, { maxNodes: 5 })).toBe('accepted');
    expect(refused(doc, { maxNodes: 4 })).toBe('maxNodes');
    expect(limitOf(() => parseXml(`<r><s>${'<a/>'.repeat(100)}</s></r>`, { limits: { maxNodes: 2 }, skipContent: (e) => e.localName === 's' }))).toBe('accepted');
  });

  it('maxValueLength bounds one text run (CDATA joined in) and one attribute value, after references are replaced', () => {
    expect(refused('<a b="&amp;&amp;&amp;&amp;">1234</a>', { maxValueLength: 4 })).toBe('accepted');
    expect(refused('<a>12<![CDATA[345]]></a>', { maxValueLength: 4 })).toBe('maxValueLength');
    expect(refused('<a>12<b/>345</a>', { maxValueLength: 4 })).toBe('accepted');
    expect(refused('<a b="12345"/>', { maxValueLength: 4 })).toBe('maxValueLength');
  });

  it('maxLength: characters of a string, bytes of a Buffer', () => {
    expect(refused('<abc/>', { maxLength: 6 })).toBe('accepted');
    expect(refused('<abcd/>', { maxLength: 6 })).toBe('maxLength');
    expect(limitOf(() => parseXml(Buffer.from('<é/>'), { limits: { maxLength: 4 } }))).toBe('maxLength');
  });

  it('the defaults are the documented ones (docs/security.md "Parser bounds")', () => {
    expect(XML_LIMITS).toEqual({ maxLength: 256 * 1024 * 1024, maxDepth: 512, maxAttributes: 10_000, maxNodes: 1_000_000, maxValueLength: 64 * 1024 * 1024 });
    expect(SOAP_ENVELOPE.limits).toEqual({ maxNodes: 100_000 });
  });
});

describe('content skipped (SOAP payloads) is checked as thoroughly as content kept', () => {
  const payload = (inner: string) => soap(`<prod:helloService xmlns:prod="urn:p">${inner}</prod:helloService>`);

  it('keeps the header, the body element and its attributes; a Fault keeps its content', () => {
    const envelope = parseXml(payload('<x a="1">text<y/></x>'), SOAP_ENVELOPE);
    const body = child(envelope, 'http://schemas.xmlsoap.org/soap/envelope/', 'Body')!;
    const [service] = childElements(body);
    expect(service).toMatchObject({ localName: 'helloService', namespace: 'urn:p', children: [] });
    expect(textOf(child(child(envelope, 'http://schemas.xmlsoap.org/soap/envelope/', 'Header')!, 'http://x-road.eu/xsd/xroad.xsd', 'id')!)).toBe('flood');
    expect(readSoapFault(soapFault('Server.ServerProxy.AccessDenied', 'no', 'id-1'))).toMatchObject({ faultCode: 'Server.ServerProxy.AccessDenied', faultString: 'no', detail: 'id-1' });
  });

  it.each([
    ['an unclosed element', '<x>'],
    ['a mismatched end tag', '<x></y>'],
    ['an unbound prefix', '<q:x/>'],
    ['a prefix bound only in a sibling', '<x xmlns:q="u"/><q:y/>'],
    ['an unknown entity', '<x>&nbsp;</x>'],
    ['a bad character reference', '<x a="&#0;"/>'],
    ['a repeated attribute', '<x a="1" a="2"/>'],
    ['"]]>" in text', '<x>]]></x>'],
    ['a DTD-like declaration', '<!ENTITY e "x">'],
    ['"--" in a comment', '<!-- a -- b -->'],
  ])('refuses %s inside the payload with InvalidSoap', (_, inner) => {
    expect(soapRefusal(() => parseSoapHeader(payload(inner))).code).toBe('InvalidSoap');
  });

  it('withRequestHash still finds the header of a response whose payload is large', () => {
    const response = Buffer.from(payload('<v>1</v>'.repeat(200_000)));
    const hashed = withRequestHash(response, Buffer.from('request'));
    expect(parseSoapHeader(hashed).requestHash).toBeDefined();
  });
});

describe('well-formedness as XML 1.0 and Namespaces in XML define it (and Xerces in the reference applies)', () => {
  it.each([
    ['a name starting with a digit', '<1a/>'],
    ['a QName with two colons', '<a:b:c xmlns:a="u"/>'],
    ['a quote inside a name', '<a"b/>'],
    ['"--" in a comment', '<a><!-- x -- y --></a>'],
    ['a comment ending in "--->"', '<a><!-- x ---></a>'],
    ['"]]>" in text', '<a>]]></a>'],
    ['a processing instruction named xml', '<a><?xml x?></a>'],
    ['an XML declaration after white space', ' <?xml version="1.0"?><a/>'],
    ['a malformed XML declaration', '<?xml version="2.0"?><a/>'],
    ['a reference to a character XML excludes', '<a>&#1;</a>'],
    ['a reference to a surrogate', '<a>&#xD800;</a>'],
    ['a control character', '<a>\u0001</a>'],
    ['U+FFFE', '<a>\uFFFE</a>'],
    ['a lone surrogate in a string', '<a>\uD800</a>'],
    ['a processing instruction target ended by a no-break space', '<a><?pi\u00A0x?></a>'],
    ['a form feed in the XML declaration', '<?xml\fversion="1.0"?><a/>'],
    ['a prefix undeclared', '<a xmlns:p=""/>'],
    ['the xml prefix bound elsewhere', '<a xmlns:xml="urn:x"/>'],
    ['the xmlns prefix declared', '<a xmlns:xmlns="urn:x"/>'],
    ['the xmlns namespace bound', '<a xmlns:p="http://www.w3.org/2000/xmlns/"/>'],
    ['a declaration repeated', '<a xmlns:p="u" xmlns:p="v"/>'],
    ['one attribute under two prefixes of one namespace', '<a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>'],
    ['an attribute repeated past the one-by-one check', `<a${Array.from({ length: 40 }, (_, i) => ` b${i}="1"`).join('')} b7="2"/>`],
  ])('refuses %s', (_, doc) => {
    expect(limitOf(() => parseXml(doc))).toBe('XmlError');
  });

  it('accepts names beyond ASCII, the xml prefix bound to its own namespace, and rebinding a prefix below', () => {
    const root = parseXml('<é·x xmlns:xml="http://www.w3.org/XML/1998/namespace" xmlns:p="u1" xml:lang="et"><p:c xmlns:p="u2"/><p:d/><𐀀/></é·x>');
    expect(childElements(root).map((e) => [e.localName, e.namespace])).toEqual([
      ['c', 'u2'],
      ['d', 'u1'],
      ['𐀀', ''],
    ]);
    expect(canonicalize(root)).toBe('<é·x xmlns:p="u1" xmlns:xml="http://www.w3.org/XML/1998/namespace" xml:lang="et"><p:c xmlns:p="u2"></p:c><p:d></p:d><𐀀></𐀀></é·x>');
  });

  it('keeps a large tree correct where names are interned (past the first thousand nodes)', () => {
    const doc = parseXmlDocument(`<r xmlns:p="u">${'<p:i a="1">t</p:i>'.repeat(3000)}</r>`);
    const items = childElements(doc.root);
    expect(items).toHaveLength(3000);
    expect(items[2999]).toMatchObject({ name: 'p:i', prefix: 'p', localName: 'i', namespace: 'u', attributes: [{ name: 'a', value: '1', namespace: '' }] });
    expect(textOf(items[2999]!)).toBe('t');
  });
});
