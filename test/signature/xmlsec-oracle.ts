/**
 * xmlsec1 (libxml2's canonicaliser) as the independent oracle for C14N: it signs a template whose
 * references select elements of the document by XPointer and the document file itself, each
 * through one C14N transform, and prints what it digested (`--store-references`). XPointer results
 * are taken with their subtrees and comments, so each reference is the element's document subset.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OracleMethod {
  readonly algorithm: string;
  /** An ec:InclusiveNamespaces PrefixList for exclusive C14N. */
  readonly prefixList?: string;
}

export interface OracleResult {
  /** Per element (document order), per method. */
  readonly elements: string[][];
  /** The whole document, per method. */
  readonly document: string[];
}

export class XmlsecOracle {
  private readonly dir = mkdtempSync(join(tmpdir(), 'xrd-c14n-oracle-'));
  private readonly key = join(this.dir, 'key.pem');
  private n = 0;

  constructor() {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(this.key, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  }

  /** xmlsec1's canonical forms of the first `elementCount` elements of `doc` and of the whole of it. */
  canonical(doc: string | Buffer, elementCount: number, methods: readonly OracleMethod[]): OracleResult {
    const name = `doc-${this.n++}.xml`;
    writeFileSync(join(this.dir, name), doc);
    // The document's content inside wrappers that declare nothing: what is in scope stays the same.
    const body = doc.toString().replace(/^\uFEFF?\s*<\?xml[^?]*\?>/, '');
    const reference = (uri: string, m: OracleMethod) =>
      `<ds:Reference URI="${uri}"><ds:Transforms><ds:Transform Algorithm="${m.algorithm}">` +
      (m.prefixList === undefined ? '' : `<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="${m.prefixList}"/>`) +
      `</ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>`;
    let references = '';
    // Element k of the document is element k + 1 below the wrapper <v>.
    for (let k = 0; k < elementCount; k++) for (const m of methods) references += reference(`#xpointer((/w/v//*)[${k + 1}])`, m);
    for (const m of methods) references += reference(`/${name}`, m);
    // The template's signature comes first: xmlsec1 signs the first it finds, and the document may hold one.
    const template =
      `<w><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>` +
      `<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>${references}</ds:SignedInfo><ds:SignatureValue/></ds:Signature><v>${body}</v></w>`;
    const templateFile = join(this.dir, `template-${name}`);
    writeFileSync(templateFile, template);
    const out = execFileSync('xmlsec1', ['sign', '--privkey-pem', this.key, '--store-references', '--print-debug', `--url-map:/${name}`, join(this.dir, name), templateFile], { maxBuffer: 1 << 28 }).toString('utf8');
    const buffers = [...out.matchAll(/== PreDigest data - start buffer:\n([\s\S]*?)\n== PreDigest data - end buffer/g)].map((m) => m[1]!);
    if (buffers.length !== (elementCount + 1) * methods.length) throw new Error(`xmlsec1 printed ${buffers.length} buffers, expected ${(elementCount + 1) * methods.length}`);
    const elements: string[][] = [];
    for (let k = 0; k < elementCount; k++) elements.push(buffers.slice(k * methods.length, (k + 1) * methods.length));
    return { elements, document: buffers.slice(elementCount * methods.length) };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
