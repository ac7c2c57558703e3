/**
 * The signature XML layer: the parser refuses what could expand or reach out (DTDs, entities) and
 * normalises as XML 1.0 requires; canonical XML matches the W3C rules X-Road signatures depend on;
 * the XAdES builder's pre-canonical text equals the canonicaliser's output; ZIP round trips.
 */
import { describe, expect, it } from 'vitest';
import { readZip, writeZip } from '../../src/platform/zip.ts';
import { C14N_WITH_COMMENTS, c14nMethodOf, canonicalize, canonicalizeDocument, parsePrefixList } from '../../src/xml/c14n.ts';
import { MAX_DEPTH, XmlError, child, childElements, parseXml, parseXmlDocument, textOf } from '../../src/xml/xml-tree.ts';
import { DIGEST_URIS, signatureMethodForId } from '../../src/signature/algorithms.ts';
import { parseSignature } from '../../src/signature/verifier.ts';
import { prepareSignature } from '../../src/signature/xades.ts';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { fromContainer } from '../support/vectors.ts';

describe('XML parser', () => {
  it('refuses DTDs, unknown entities and unbound prefixes with a line number', () => {
    expect(() => parseXml('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')).toThrow(/DTDs .* not accepted \(line 2\)/);
    expect(() => parseXml('<x>&nbsp;</x>')).toThrow(/unknown entity/);
    expect(() => parseXml('<p:x/>')).toThrow(/prefix .* not declared/);
    expect(() => parseXml('<x><y></x>')).toThrow(/expected <\/y>/);
  });

  it('keeps comments as nodes that textOf and childElements skip, and what stands around the root', () => {
    const doc = parseXmlDocument('<?xml version="1.0"?>\n<!-- a --><?p d?>\n<x>t<!-- c -->u<y/></x>\n<!-- z -->');
    expect(doc.prolog).toEqual([{ kind: 'comment', value: ' a ' }, { kind: 'pi', target: 'p', data: 'd' }]);
    expect(doc.epilog).toEqual([{ kind: 'comment', value: ' z ' }]);
    expect(doc.root.children.map((n) => n.kind)).toEqual(['text', 'comment', 'text', 'element']);
    expect(textOf(doc.root)).toBe('tu');
    expect(childElements(doc.root)).toHaveLength(1);
  });

  it(`refuses elements nested deeper than ${MAX_DEPTH} with an XmlError, not a stack overflow`, () => {
    expect(parseXml('<a>'.repeat(MAX_DEPTH) + '</a>'.repeat(MAX_DEPTH)).localName).toBe('a');
    expect(() => parseXml('<a>'.repeat(MAX_DEPTH + 1) + '</a>'.repeat(MAX_DEPTH + 1))).toThrow(XmlError);
    expect(() => parseXml('<a>'.repeat(100_000))).toThrow(XmlError);
  });

  it('normalises line ends and attribute whitespace, keeps character references', () => {
    const root = parseXml('<x a="1\t2\n3" b="&#9;&#10;">l1\r\nl2&#13;</x>');
    expect(root.attributes.map((a) => a.value)).toEqual(['1 2 3', '\t\n']);
    expect(canonicalize(root)).toBe('<x a="1 2 3" b="&#x9;&#xA;">l1\nl2&#xD;</x>');
  });
});

describe('C14N 1.0, inclusive and exclusive (each also checked against xmlsec1 in test/signature/c14n-oracle.test.ts)', () => {
  it('exclusive C14N writes only the namespaces an element uses, plus the PrefixList; #WithComments keeps comments', () => {
    const doc = parseXml('<r xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b"><a:e z="1" b:y="2"><!-- c --><i/><j xmlns=""/></a:e></r>');
    const e = child(doc, 'urn:a', 'e')!;
    expect(canonicalize(e, { exclusive: true, comments: false })).toBe('<a:e xmlns:a="urn:a" xmlns:b="urn:b" z="1" b:y="2"><i xmlns="urn:d"></i><j></j></a:e>');
    expect(canonicalize(e, { exclusive: true, comments: true, inclusivePrefixes: parsePrefixList('#default') })).toBe('<a:e xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" z="1" b:y="2"><!-- c --><i></i><j xmlns=""></j></a:e>');
    expect(canonicalize(e, c14nMethodOf(C14N_WITH_COMMENTS)!)).toBe('<a:e xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" z="1" b:y="2"><!-- c --><i></i><j xmlns=""></j></a:e>');
  });

  it('a whole document puts comments and PIs around the root on their own lines', () => {
    const doc = parseXmlDocument('<?xml version="1.0"?>\n<!-- a -->\n<x/>\n<?p?>');
    expect(canonicalizeDocument(doc)).toBe('<x></x>\n<?p?>');
    expect(canonicalizeDocument(doc, { exclusive: false, comments: true })).toBe('<!-- a -->\n<x></x>\n<?p?>');
  });
});

describe('inclusive C14N 1.0', () => {
  it('puts every namespace in scope on the apex, sorts namespaces and attributes, expands empty elements', () => {
    const doc = parseXml('<r xmlns="urn:d" xmlns:b="urn:b" xmlns:a="urn:a"><a:e z="1" b:y="2" a:x="3" xmlns:c="urn:c"><i/><b:j xmlns:b="urn:b"/></a:e></r>');
    const e = child(doc, 'urn:a', 'e')!;
    expect(canonicalize(e)).toBe('<a:e xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" xmlns:c="urn:c" z="1" a:x="3" b:y="2"><i></i><b:j></b:j></a:e>');
  });

  it('undeclares a default namespace only where one was in force', () => {
    expect(canonicalize(parseXml('<r xmlns="urn:d"><x xmlns=""><y xmlns=""/></x></r>'))).toBe('<r xmlns="urn:d"><x xmlns=""><y></y></x></r>');
    expect(canonicalize(parseXml('<r><x xmlns=""/></r>'))).toBe('<r><x></x></r>');
  });

  it('escapes text and attribute values as the rules say', () => {
    expect(canonicalize(parseXml('<x a="&lt;&amp;&quot;&gt;">&lt;&amp;&gt;"\'<![CDATA[<c>]]></x>'))).toBe('<x a="&lt;&amp;&quot;>">&lt;&amp;&gt;"\'&lt;c&gt;</x>');
  });
});

describe('XAdES builder', () => {
  it('writes SignedInfo and SignedProperties so their digests equal those of the canonicalised document', () => {
    const { cert, ocsp } = fromContainer('valid-signed-message.asice');
    const method = signatureMethodForId('SHA512withRSA');
    const prepared = prepareSignature({ references: [{ uri: '/message.xml', digest: Buffer.alloc(64, 7) }], mimeType: 'text/xml', method, signingCert: cert, intermediateCerts: [cert], ocspResponses: [ocsp], signingTime: new Date('2026-01-02T03:04:05.678Z') });
    const xml = prepared.finish(Buffer.alloc(256, 1));
    const sig = parseSignature(xml);
    expect(createHash('sha512').update(sig.signedInfo).digest()).toEqual(prepared.signedInfoDigest);
    expect(createHash('sha512').update(sig.signedPropertiesReference.octets).digest()).toEqual(sig.signedPropertiesReference.digestValue);
    expect(sig.signingCertificate?.[0]).toEqual({ digestMethod: DIGEST_URIS.sha512, digestValue: createHash('sha512').update(cert).digest(), issuerSerial: { issuerName: 'CN=Test CA,O=Test', serialNumber: '18' } });
    expect(xml).toContain('<ds:X509IssuerName>CN=Test CA,O=Test</ds:X509IssuerName><ds:X509SerialNumber>18</ds:X509SerialNumber>');
    expect(xml).toContain('Id="encapsulated-cert-1"');
    expect(xml).toContain('<xades:EncapsulatedOCSPValue Id="ocsp-response-1">');
  });

  it("spells out each certificate's own xades:Cert for each digest, whichever it spelt out before (they are remembered)", () => {
    const { cert, ocsp } = fromContainer('valid-signed-message.asice');
    const other = execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', '/dev/null', '-subj', '/O=Other/CN=Other CA', '-days', '1', '-outform', 'DER'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const cases = [
      { signingCert: cert, algorithm: 'SHA512withRSA', digest: 'sha512', issuerName: 'CN=Test CA,O=Test', serialNumber: '18' },
      { signingCert: other, algorithm: 'SHA512withRSA', digest: 'sha512', issuerName: 'CN=Other CA,O=Other', serialNumber: BigInt(`0x${new X509Certificate(other).serialNumber}`).toString() },
      { signingCert: cert, algorithm: 'SHA256withRSA', digest: 'sha256', issuerName: 'CN=Test CA,O=Test', serialNumber: '18' },
    ] as const;
    for (const c of [...cases, ...cases]) {
      const method = signatureMethodForId(c.algorithm);
      const xml = prepareSignature({ references: [{ uri: '/message.xml', digest: Buffer.alloc(64, 7) }], mimeType: 'text/xml', method, signingCert: c.signingCert, intermediateCerts: [], ocspResponses: [ocsp], signingTime: new Date() }).finish(Buffer.alloc(256, 1));
      expect(parseSignature(xml).signingCertificate?.[0]).toEqual({ digestMethod: DIGEST_URIS[c.digest], digestValue: createHash(c.digest).update(c.signingCert).digest(), issuerSerial: { issuerName: c.issuerName, serialNumber: c.serialNumber } });
      expect(xml).toContain(`<ds:X509Certificate>${c.signingCert.toString('base64')}</ds:X509Certificate>`);
    }
  });
});

describe('ZIP', () => {
  it('round trips stored and deflated entries and refuses a corrupted one', () => {
    const zip = writeZip([{ name: 'mimetype', data: Buffer.from('application/vnd.etsi.asic-e+zip'), stored: true }, { name: 'a/b.xml', data: Buffer.from('<x/>'.repeat(100)) }]);
    expect(readZip(zip).map((e) => [e.name, e.data.length])).toEqual([['mimetype', 31], ['a/b.xml', 400]]);
    const broken = Buffer.from(zip);
    broken[110] = broken[110]! ^ 0xff; // inside the deflated entry
    expect(() => readZip(broken)).toThrow(/CRC|inflate|malformed/);
  });
});
