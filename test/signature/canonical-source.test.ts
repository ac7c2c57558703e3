/**
 * The quick reader (src/xml/canonical-source.ts) and the verifier's quick path against the general
 * parser, canonicaliser and path: on every signature document of ../shared/xroad-vectors, on ours
 * (single and batch signatures), on mutated copies of ours and on generated documents, the reader
 * either declines or builds the tree parseXml builds, its canonical text from the source equals
 * canonicalize's, and parseSignature + verifySignatureCore give the same result or the same error
 * either way. Then the attacks a signature reader must refuse, on documents the quick path reads.
 */
import { execFileSync } from 'node:child_process';
import { constants, createHash, generateKeyPairSync, privateEncrypt, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readZip } from '../../src/platform/zip.ts';
import { readAsic } from '../../src/signature/asic.ts';
import { signatureMethodForId } from '../../src/signature/algorithms.ts';
import { BatchSigner, type SigningKey } from '../../src/signature/message-signer.ts';
import { parseQuickly, parseSignature, verifySignatureCore, type ParsedSignature, type SignedParts } from '../../src/signature/verifier.ts';
import { prepareSignature } from '../../src/signature/xades.ts';
import { SourceDocument, compactBase64, type SourceElement } from '../../src/xml/canonical-source.ts';
import { canonicalize, type C14nMethod } from '../../src/xml/c14n.ts';
import { attribute, child, childElements, parseXml, textOf, type XmlElement, type XmlNode } from '../../src/xml/xml-tree.ts';
import { VECTORS } from '../support/vectors.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-canonical-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A signing key and its self-signed nonRepudiation certificate (OpenSSL). */
function signingKey(): { privateKey: KeyObject; cert: Buffer } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'key.pem'), '-subj', '/O=Test/CN=signer', '-days', '2', '-addext', 'keyUsage=critical,nonRepudiation', '-outform', 'DER', '-out', join(dir, 'cert.der')]);
  return { privateKey, cert: readFileSync(join(dir, 'cert.der')) };
}
const key = signingKey();
const SHA512_DIGEST_INFO = Buffer.from('3051300d060960864801650304020305000440', 'hex');
const rsaSign = (digest: Buffer) => privateEncrypt({ key: key.privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA512_DIGEST_INFO, digest]));

const message = Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>hello</SOAP-ENV:Body></SOAP-ENV:Envelope>\n');
/** One of ours: a single message, the signing certificate, a CA certificate and two OCSP values. */
function ourSignature(signingTime = new Date('2026-12-07T00:00:00Z')): string {
  const prepared = prepareSignature({
    references: [{ uri: '/message.xml', digest: createHash('sha512').update(message).digest() }],
    mimeType: 'text/xml',
    method: signatureMethodForId('SHA512withRSA'),
    signingCert: key.cert,
    intermediateCerts: [key.cert],
    ocspResponses: [Buffer.alloc(1700, 1), Buffer.alloc(1500, 2)],
    signingTime,
  });
  return prepared.finish(rsaSign(prepared.signedInfoDigest));
}
const ours = ourSignature();
const ourParts: SignedParts = { message };

/** Projection of a tree without the quick reader's own fields. */
function shape(node: XmlNode): unknown {
  if (node.kind !== 'element') return node;
  return {
    name: node.name,
    prefix: node.prefix,
    localName: node.localName,
    namespace: node.namespace,
    declarations: [...node.namespaceDeclarations],
    attributes: node.attributes.map((a) => ({ ...a })),
    children: node.children.map(shape),
  };
}

/** The same projection of an element of the quick reader's table. */
function sourceShape(doc: SourceDocument, e: SourceElement): unknown {
  return {
    name: doc.name(e),
    prefix: doc.prefix(e),
    localName: doc.localName(e),
    namespace: doc.namespace(e),
    declarations: [...doc.namespaceDeclarations(e)],
    attributes: doc.attributes(e).map((a) => ({ name: a.name, prefix: '', localName: a.name, namespace: '', value: a.value })),
    children: doc.content(e).map((c) => (typeof c === 'string' ? { kind: 'text', value: c } : sourceShape(doc, c))),
  };
}

function elementsOf(e: XmlElement, out: XmlElement[] = []): XmlElement[] {
  out.push(e);
  for (const c of e.children) if (c.kind === 'element') elementsOf(c, out);
  return out;
}

const METHODS: C14nMethod[] = [
  { exclusive: false, comments: false },
  { exclusive: false, comments: true },
  { exclusive: true, comments: false },
  { exclusive: true, comments: false, inclusivePrefixes: ['ds', ''] },
];

/**
 * The reader declines or agrees with parseXml and canonicalize: the same elements (numbered in
 * document order), the same answers to what the verifier asks (child, childElements, attribute,
 * textOf, parent), the same first element for each Id; says which.
 */
function readerAgrees(xml: string | Buffer): 'quick' | 'general' {
  let tree: XmlElement | undefined;
  try {
    tree = parseXml(xml);
  } catch {
    tree = undefined;
  }
  // Read with the shapes of documents read before (the reader's default), and read tag by tag: the same verdict.
  const read = SourceDocument.read(xml);
  const full = SourceDocument.read(xml, { shapes: false });
  // Long text is checked for characters outside the form when it is used, or at the end.
  const inForm = full?.charactersInForm() ?? false;
  expect(read?.charactersInForm() ?? false).toBe(inForm);
  if (!inForm) return 'general';
  expect(tree, 'the quick reader read what parseXml refuses').toBeDefined();
  for (const quick of [read!, full!]) tableAgrees(quick, tree!);
  if (read!.fromShape) shapedReads++;
  return 'quick';
}
/** How many documents the differential tests read by a shape. */
let shapedReads = 0;
/** How many elements each of METHODS canonicalised from the source (compared with the tree's). */
const canonicalFromSource = METHODS.map(() => 0);

/** The table's answers are the tree's, for every element. */
function tableAgrees(quick: SourceDocument, tree: XmlElement): void {
  expect(sourceShape(quick, quick.root)).toEqual(shape(tree));
  const treeElements = elementsOf(tree);
  expect(quick.count).toBe(treeElements.length);
  const numberOf = new Map(treeElements.map((e, i) => [e, i + 1]));
  const firstById = new Map<string, number>();
  treeElements.forEach((e, i) => e.attributes.forEach((a) => a.name === 'Id' && !firstById.has(a.value) && firstById.set(a.value, i + 1)));
  expect([...quick.ids]).toEqual([...firstById]);
  treeElements.forEach((t, i) => {
    const e = i + 1;
    expect(quick.parent(e)).toBe(t.parent && numberOf.get(t.parent));
    expect(quick.textOf(e)).toBe(textOf(t));
    expect(quick.childElements(e)).toEqual(childElements(t).map((c) => numberOf.get(c)));
    for (const c of [...childElements(t), { namespace: 'urn:none', localName: t.localName }]) {
      const found = child(t, c.namespace, c.localName);
      expect(quick.child(e, c.namespace, c.localName)).toBe(found && numberOf.get(found));
    }
    for (const name of [...t.attributes.map((a) => a.name), 'Id', 'missing']) expect(quick.attribute(e, name)).toBe(attribute(t, name));
    METHODS.forEach((method, m) => {
      const fromSource = quick.canonicalize(e, method);
      if (fromSource === undefined) return;
      expect(fromSource).toBe(canonicalize(t, method));
      canonicalFromSource[m]!++;
    });
  });
}

type Outcome = { verified: unknown; fields: ParsedSignature } | { code: string; message: string };

/** What parsing and verifying give: every field of the parsed signature (canonical texts and decoded values among them), or the error. */
function outcome(xml: string | Buffer, parts: SignedParts, generalParser: boolean): Outcome {
  try {
    const sig = parseSignature(xml, { generalParser });
    return { verified: verifySignatureCore(sig, parts, { allowMissingParts: true }), fields: sig };
  } catch (err) {
    const e = err as { fullCode?: string; message: string };
    return { code: e.fullCode ?? 'not coded', message: e.message };
  }
}

/**
 * parseSignature and verifySignatureCore agree on both paths; the reader agrees with parseXml.
 * Says which path parseSignature took: 'quick' when the quick path parsed the document or refused
 * it with a coded error, 'general' when it handed it on.
 */
function pathsAgree(xml: string | Buffer, parts: SignedParts = ourParts): 'quick' | 'general' {
  const reader = readerAgrees(xml);
  expect(outcome(xml, parts, false)).toEqual(outcome(xml, parts, true));
  let quick: boolean;
  try {
    quick = parseQuickly(xml) !== undefined;
  } catch {
    quick = true;
  }
  if (quick) expect(reader).toBe('quick');
  return quick ? 'quick' : 'general';
}

/** Signature documents of the vectors: every container's, and those in the message-log archives. */
function vectorSignatures(): { name: string; asic: ReturnType<typeof readAsic> }[] {
  const out: { name: string; asic: ReturnType<typeof readAsic> }[] = [];
  for (const folder of ['asic', 'asic-core']) {
    for (const name of readdirSync(join(VECTORS, folder)).filter((n) => n.endsWith('.asice'))) {
      try {
        out.push({ name, asic: readAsic(readFileSync(join(VECTORS, folder, name))) });
      } catch {
        // Containers the reference refuses to load carry no signature to compare.
      }
    }
  }
  for (const name of readdirSync(join(VECTORS, 'messagelog-archive'))) {
    for (const entry of readZip(readFileSync(join(VECTORS, 'messagelog-archive', name)))) {
      if (entry.name.endsWith('.asice')) out.push({ name: entry.name, asic: readAsic(entry.data) });
    }
  }
  return out;
}

describe('the quick reader and the general path agree', () => {
  it('on every signature document and hash chain of the vectors (where the reference writes &#13; in base64 values, the general path reads them)', () => {
    const signatures = vectorSignatures();
    expect(signatures.length).toBeGreaterThanOrEqual(6);
    const paths: string[] = [];
    for (const { asic } of signatures) {
      const parts: SignedParts = { message: asic.message, attachments: asic.attachments, hashChainResult: asic.hashChainResult, hashChain: asic.hashChain };
      paths.push(pathsAgree(asic.signatureXml, parts));
      // The same documents without the character references and with no element closing itself: the
      // quick reader's form (the verifier's quick path hands them on still: their base64 values have line breaks).
      const rewritten = asic.signatureXml.toString('utf8').replaceAll('&#13;', '').replace(/<([\w:]+)([^<>]*)\/>/g, '<$1$2></$1>');
      pathsAgree(rewritten, parts);
      expect(readerAgrees(rewritten)).toBe('quick');
      if (asic.hashChain) expect(readerAgrees(asic.hashChain)).toBe('quick');
      if (asic.hashChainResult) expect(readerAgrees(asic.hashChainResult)).toBe('quick');
    }
    expect(paths).toContain('general');
    for (const name of readdirSync(join(VECTORS, 'hashchain')).filter((n) => n.endsWith('.xml'))) readerAgrees(readFileSync(join(VECTORS, 'hashchain', name)));
  });

  it('on our single-message signature, which the quick path reads and verifies, canonicalising from the source', () => {
    expect(pathsAgree(ours)).toBe('quick');
    const doc = SourceDocument.read(ours)!;
    const sig = parseSignature(ours);
    expect(doc.canonicalize(doc.ids.get('signed-properties')!, METHODS[0]!)).toBeDefined();
    expect(verifySignatureCore(sig, ourParts).verifiedParts).toEqual(['/message.xml']);
    expect(pathsAgree(Buffer.from(ours))).toBe('quick');
  });

  it('on batch signatures (hash chain) built by BatchSigner', async () => {
    const signer = new BatchSigner(async (_keyId, _algorithm, digest) => rsaSign(digest));
    const signingKeyOf: SigningKey = { keyId: 'k', algorithm: 'SHA512withRSA', cert: key.cert, intermediateCerts: [key.cert], ocspResponses: [Buffer.alloc(1700, 3)], batchSigningEnabled: true };
    const messages = Array.from({ length: 5 }, (_, i) => Buffer.from(`<m>${i}</m>`));
    const signed = await Promise.all(messages.map((m) => signer.sign(signingKeyOf, { message: m, attachments: [Buffer.from(`attachment ${m}`)] })));
    for (const [i, s] of signed.entries()) {
      const parts: SignedParts = { message: messages[i]!, attachments: [Buffer.from(`attachment ${messages[i]}`)], hashChainResult: s.hashChainResult ? Buffer.from(s.hashChainResult) : undefined, hashChain: s.hashChain ? Buffer.from(s.hashChain) : undefined };
      expect(pathsAgree(s.signatureXml, parts)).toBe('quick');
      expect(verifySignatureCore(parseSignature(s.signatureXml), parts).verifiedParts).toContain('/attachment1');
    }
  });

  it('on mutated copies of ours, read quickly or handed to the general path', () => {
    const mutations: ((xml: string, at: number) => string)[] = [
      (x, at) => insertAt(x, x.indexOf('>', at), ' '), // white space before a tag's end
      (x, at) => insertAt(x, x.indexOf('>', at), '\n'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/><\/[\w:]+>/, '/>'), // an empty element closing itself
      (x, at) => insertAt(x, x.indexOf('<', at), '<!---->'),
      (x, at) => insertAt(x, x.indexOf('<', at), '<?pi x?>'),
      (x, at) => insertAt(x, x.indexOf('<', at), '&#65;'),
      (x, at) => insertAt(x, x.indexOf('<', at), '&gt;'),
      (x, at) => insertAt(x, x.indexOf('<', at), '>'),
      (x, at) => insertAt(x, x.indexOf('<', at), '\r\n'),
      (x, at) => insertAt(x, x.indexOf('<', at), '\t'),
      (x, at) => insertAt(x, x.indexOf('<', at), 'é'),
      (x, at) => insertAt(x, x.indexOf('<', at), '\x0b'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/<([\w:]+)/, `<$1 xmlns:ds="${DS}"`), // a redundant declaration
      (x, at) => x.slice(0, at) + x.slice(at).replace(/<([\w:]+)/, '<$1 xmlns:evil="urn:evil"'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/<([\w:]+)/, '<$1 xmlns="urn:default"'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/<([\w:]+)/, '<$1 Id="signed-properties"'), // a duplicate Id
      (x, at) => x.slice(0, at) + x.slice(at).replace(/ (\w+)="([^"]*)" (\w+)="([^"]*)"/, ' $3="$4" $1="$2"'), // attributes out of order
      (x, at) => x.slice(0, at) + x.slice(at).replace(/ (\w+)="([^"]*)"/, " $1='$2'"),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/ (\w+)="/, ' $1 = "'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/([A-Za-z0-9+/]{8})([A-Za-z0-9+/]{8})/, '$1\n$2'), // a line break in base64
      (x, at) => x.slice(0, at) + x.slice(at).replace(/[A-Za-z0-9+/]{4}</, '-_AB<'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/[A-Za-z0-9+/]{4}</, '*AB=<'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/<\/([\w:]+)>/, '</$1 >'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/<\/([\w:]+)>/, '</$1x>'),
      (x, at) => x.slice(0, at) + x.slice(at).replace(/ds:/, 'dz:'),
      (x, at) => x.slice(0, at) + String.fromCharCode(32 + (at % 95)) + x.slice(at + 1), // any character replaced
      (x, at) => x.slice(0, at) + x.slice(at + 1),
    ];
    const paths = new Set<string>();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(mutations.length - 1), fc.nat(ours.length - 1)), { minLength: 1, maxLength: 3 }), (steps) => {
        let xml = ours;
        for (const [m, at] of steps) xml = mutations[m]!(xml, Math.min(at, xml.length - 1));
        paths.add(pathsAgree(xml));
      }),
      { numRuns: 400, seed: 1612 },
    );
    expect([...paths].sort()).toEqual(['general', 'quick']);
  });

  it('on generated documents: prefixes, declarations, attributes, text and layout', () => {
    const before = [...canonicalFromSource];
    const name = fc.constantFrom('a', 'b', 'p:a', 'q:b', 'p:c');
    const attribute = fc.tuple(fc.constantFrom('Id', 'x', 'y', 'p:z', 'xmlns', 'xmlns:p', 'xmlns:q'), fc.constantFrom('1', 'urn:a', 'urn:b', '', 'a"b', "a'b", 'a>b', 'a\nb'));
    const text = fc.constantFrom('', 't', ' ', '\n', '>', '&amp;', 'x y');
    const space = fc.constantFrom(' ', ' ', '\n', '  ');
    type Node = { name: string; attributes: [string, string][]; children: (Node | string)[]; selfClose: boolean; gap: string };
    const { node } = fc.letrec<{ node: Node }>((tie) => ({
      node: fc.record({
        name,
        attributes: fc.array(attribute, { maxLength: 3 }),
        children: fc.array(fc.oneof({ depthSize: 'small', withCrossShrink: true }, text, tie('node')), { maxLength: 3 }),
        selfClose: fc.boolean(),
        gap: space,
      }),
    }));
    const write = (n: Node | string): string => {
      if (typeof n === 'string') return n;
      const attrs = n.attributes.map(([k, v]) => `${n.gap}${k}=${v.includes('"') ? `'${v}'` : `"${v}"`}`).join('');
      const open = `<${n.name}${n.name.startsWith('p:') ? ' xmlns:p="urn:p"' : n.name.startsWith('q:') ? ' xmlns:q="urn:q"' : ''}${attrs}`;
      return n.children.length === 0 && n.selfClose ? `${open}/>` : `${open}>${n.children.map(write).join('')}</${n.name}>`;
    };
    const paths = new Set<string>();
    fc.assert(
      fc.property(node, fc.boolean(), (root, declaration) => {
        paths.add(readerAgrees(`${declaration ? '<?xml version="1.0"?>\n' : ''}${write(root)}`));
      }),
      { numRuns: 1500, seed: 1613 },
    );
    expect([...paths].sort()).toEqual(['general', 'quick']);
    // Every canonicalisation method, the exclusive ones with their prefix lists too, was taken from the source somewhere.
    canonicalFromSource.forEach((n, m) => expect(n - before[m]!, JSON.stringify(METHODS[m])).toBeGreaterThan(0));
  });

  it('characters outside the form in long text are found where the text is decoded, or at the end: the general path judges those documents', () => {
    const signatureValue = /<ds:SignatureValue Id="signature-value">([^<]*)</.exec(ours)!;
    const ocspValue = /<xades:EncapsulatedOCSPValue Id="ocsp-response-1">([^<]*)</.exec(ours)!;
    const longText = 'x'.repeat(200);
    const places: ((xml: string, c: string) => string)[] = [
      (x, c) => x.replace(signatureValue[1]!, signatureValue[1]!.slice(0, 100) + c + signatureValue[1]!.slice(100)),
      (x, c) => x.replace(ocspValue[1]!, ocspValue[1]!.slice(0, 1000) + c + ocspValue[1]!.slice(1000)),
      (x, c) => x.replace('</ds:Signature>', `<ds:Object>${longText}${c}${longText}</ds:Object></ds:Signature>`),
      (x, c) => x.replace('<ds:KeyInfo>', `<ds:Object>${longText}${c}</ds:Object><ds:KeyInfo>`),
      (x, c) => x.replace(/(<xades:SigningTime>[^<]{4})/, `$1${c}`),
      (x, c) => x.replace('Id="signed-properties"', `Id="signed${c}properties"`),
    ];
    for (const place of places) {
      for (const c of ['\x00', '\x0b', '\t', '\r', '\r\n', '&amp;', '&#65;', '\x7f', '\x1f']) {
        const xml = place(ours, c);
        expect(xml).not.toBe(ours);
        expect(pathsAgree(xml), JSON.stringify(c)).toBe('general');
      }
      // The same places with characters of the form: the quick path reads them (or refuses them with a coded error).
      expect(pathsAgree(place(ours, 'AAAA'))).toBe('quick');
    }
    // A character of a base64 value replaced by one Buffer.from would read as a base64 letter: the length stays right.
    for (const value of [signatureValue[1]!, ocspValue[1]!]) {
      for (const c of ['Ł', '\u202f', 'Ĭ']) {
        const xml = ours.replace(value, value.slice(0, 100) + c + value.slice(101));
        expect(pathsAgree(xml), JSON.stringify(c)).toBe('general');
      }
    }
  });

  it('a document with the markup of one read before takes its table, its positions moved by what the text between tags gained or lost', () => {
    const other = prepareSignature({
      references: [{ uri: '/message.xml', digest: createHash('sha512').update('another message').digest() }],
      mimeType: 'text/xml',
      method: signatureMethodForId('SHA512withRSA'),
      signingCert: key.cert,
      intermediateCerts: [key.cert],
      // Longer and shorter values than ours: every position after them moves.
      ocspResponses: [Buffer.alloc(2100, 7), Buffer.alloc(900, 8)],
      signingTime: new Date('2026-12-08T11:22:33Z'),
    });
    const otherXml = other.finish(rsaSign(other.signedInfoDigest));
    expect(otherXml).not.toBe(ours);
    SourceDocument.read(ours);
    expect(SourceDocument.read(otherXml)!.fromShape).toBe(true);
    const before = shapedReads;
    expect(pathsAgree(otherXml, { message: Buffer.from('another message') })).toBe('quick');
    expect(shapedReads).toBe(before + 1);
    expect(verifySignatureCore(parseSignature(otherXml), { message: Buffer.from('another message') }).verifiedParts).toEqual(['/message.xml']);
    // Text changed around every tag, in every way the form allows and does not: the shape's verdict is the full read's.
    const runs = [...otherXml.matchAll(/>([^<]*)</g)].map((m) => m.index! + 1);
    for (const [i, at] of runs.entries()) {
      for (const text of ['', 'x', ' \n', '>', '\t', '&amp;', 'A'.repeat(100), `${'A'.repeat(70)}\x01`]) {
        const changed = otherXml.slice(0, at) + text + otherXml.slice(at);
        if (i % 7 === 0 || text.length < 2) readerAgrees(changed);
      }
    }
    expect(shapedReads).toBeGreaterThan(before + runs.length);
    // Anything after the root, which the shape's markup ends before: the general path judges it.
    for (const tail of ['<x/>', 'x', '<!---->', '<?pi?>']) {
      expect(SourceDocument.read(otherXml + tail), tail).toBeUndefined();
      expect(readerAgrees(otherXml + tail), tail).toBe('general');
    }
  });

  it('a document declaring more namespaces than a signature document ever does goes to the general parser, whose look-ups do not grow with them', () => {
    const declarations = (n: number) => Array.from({ length: n }, (_, i) => ` xmlns:p${i}="urn:p${i}"`).join('');
    expect(SourceDocument.read(`<a${declarations(10)}><b${declarations(10)}/></a>`)).toBeDefined();
    expect(SourceDocument.read(`<a${declarations(40)}><b${declarations(40)}/></a>`)).toBeUndefined();
    expect(readerAgrees(`<a${declarations(40)}><b${declarations(40)}/></a>`)).toBe('general');
  });

  it('compact base64 is read only where the general check would read the same bytes', () => {
    // With characters Buffer.from reads as others: Ł as A, ő as Q, U+202F as /, Ĭ and ş as base64url's - and _.
    const alphabet = fc.constantFrom(...'ABCDabcd0189+/=-_ \n*Łő\u202fĬş'.split(''));
    let decoded = 0;
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 16 }), (chars) => {
        const text = chars.join('');
        const quick = compactBase64(text);
        if (quick?.length) decoded++;
        if (quick) {
          expect(/^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$/.test(text)).toBe(true);
          expect(quick).toEqual(Buffer.from(text, 'base64'));
        }
      }),
      { numRuns: 3000, seed: 1614 },
    );
    expect(decoded, 'some generated texts are compact base64').toBeGreaterThan(0);
  });
});

const DS = 'http://www.w3.org/2000/09/xmldsig#';
function insertAt(xml: string, at: number, text: string): string {
  return at < 0 ? xml : xml.slice(0, at) + text + xml.slice(at);
}

describe('attacks on documents the quick path reads are refused as on the general path', () => {
  const refused = (xml: string, code: string) => {
    expect(SourceDocument.read(xml), 'the quick reader takes this document').toBeDefined();
    expect(pathsAgree(xml)).toBe('quick');
    expect(() => verifySignatureCore(parseSignature(xml), ourParts)).toThrow(expect.objectContaining({ fullCode: code }));
  };
  const signedProperties = /<xades:SignedProperties Id="signed-properties">.*?<\/xades:SignedProperties>/s.exec(ours)![0];

  it('signature wrapping: a decoy SignedProperties with the same Id before the signed one is the one checked, and fails', () => {
    const decoy = `<ds:Object><xades:QualifyingProperties Target="#signature">${signedProperties.replace(/<xades:SigningTime>\d{4}/, '<xades:SigningTime>2099')}</xades:QualifyingProperties></ds:Object>\n`;
    refused(ours.replace('<ds:KeyInfo>', `${decoy}<ds:KeyInfo>`), 'InvalidSignatureValue');
  });

  it('a duplicate Id after the signed element does not move the reference (the first in document order is taken)', () => {
    const after = ours.replace('</ds:Signature>', `<ds:Object><xades:QualifyingProperties>${signedProperties.replace(/<xades:SigningTime>\d{4}/, '<xades:SigningTime>2099')}</xades:QualifyingProperties></ds:Object></ds:Signature>`);
    expect(pathsAgree(after)).toBe('quick');
    expect(verifySignatureCore(parseSignature(after), ourParts).verifiedParts).toEqual(['/message.xml']);
  });

  it('a reference to an element that is not there, or to one outside the signed properties, is refused', () => {
    refused(ours.replace('URI="#signed-properties"', 'URI="#elsewhere"'), 'InvalidReference');
    refused(ours.replace('URI="#signed-properties"', 'URI="#signature-value"'), 'MalformedSignature');
    refused(ours.replace('Id="signed-properties"', 'Id="renamed"'), 'InvalidReference');
  });

  it('namespace tricks: SignedInfo in another namespace, a declaration inclusive C14N must add, a redundant one it must drop', () => {
    refused(ours.replace('<ds:SignedInfo>', '<ds:SignedInfo xmlns:ds="urn:not-dsig">'), 'MalformedSignature');
    refused(ours.replace('<asic:XAdESSignatures ', '<asic:XAdESSignatures xmlns:evil="urn:evil" '), 'InvalidSignatureValue');
    refused(ours.replace('<ds:Signature Id="signature">', '<ds:Signature Id="signature" xmlns="urn:default">'), 'InvalidSignatureValue');
    // The same namespace declared again inside SignedInfo: C14N drops it, so the signature holds — from the tree, not the source.
    const redundant = ours.replace('<ds:Reference Id="signature-reference-0"', `<ds:Reference xmlns:ds="${DS}" Id="signature-reference-0"`);
    expect(readerAgrees(redundant)).toBe('quick');
    expect(pathsAgree(redundant)).toBe('general');
    expect(verifySignatureCore(parseSignature(redundant), ourParts).verifiedParts).toEqual(['/message.xml']);
    // Declarations moved from the root to ds:Signature: the same canonical form.
    const moved = ours.replace(/<asic:XAdESSignatures [^>]*>/, `<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#">`).replace('<ds:Signature Id="signature">', `<ds:Signature xmlns:ds="${DS}" xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" Id="signature">`);
    expect(pathsAgree(moved)).toBe('quick');
    expect(verifySignatureCore(parseSignature(moved), ourParts).verifiedParts).toEqual(['/message.xml']);
  });

  it('a tampered signed value is refused', () => {
    refused(ours.replace(/<xades:SigningTime>\d{4}/, '<xades:SigningTime>1999'), 'InvalidSignatureValue');
    refused(ours.replace(/(<ds:DigestValue>)[A-Za-z0-9+/]/, '$1A'), 'InvalidSignatureValue');
  });

  it('Santuario secure validation, as the reference applies it: more than 30 references, or more than 5 transforms in one, are MalformedSignature before anything is canonicalised', () => {
    const reference = /<ds:Reference Id="signature-reference-0".*?<\/ds:Reference>\n/s.exec(ours)![0];
    const malformed = (xml: string) => {
      expect(pathsAgree(xml)).toBe('quick');
      expect(() => parseSignature(xml)).toThrow(expect.objectContaining({ code: 'MalformedSignature' }));
    };
    // 30 in all still parse (and fail on their digests only when verified).
    expect(() => parseSignature(ours.replace(reference, reference.repeat(29)))).not.toThrow();
    malformed(ours.replace(reference, reference.repeat(30)));
    const transform = '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"></ds:Transform>';
    const withTransforms = (n: number) => ours.replace(reference, reference.replace('<ds:DigestMethod', `<ds:Transforms>${transform.repeat(n)}</ds:Transforms><ds:DigestMethod`));
    expect(() => parseSignature(withTransforms(5))).not.toThrow();
    malformed(withTransforms(6));
  });
});
