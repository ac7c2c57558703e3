/**
 * Signatures we did not make: xmlsec1 signs XAdES templates in the forms the reference's verifier
 * (Santuario) accepts but no shared vector shows — a `ds:Signature` root as EU DSS writes it (the
 * X-Road 8 form), exclusive C14N, transforms on the SignedProperties reference, other ids,
 * SigningCertificateV2, comments in SignedInfo, PrefixLists, ECDSA — with a key certified by the
 * test CA. Our verifier must accept them (library and `xrd asic verify`, with single and batch
 * timestamps) and refuse their altered copies for the reference's reasons. The OCSP responses and
 * timestamps come from the test PKI's responder and TSA, called in-process.
 */
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateDerParts } from '../../src/certificates/certificate.ts';
import { encodeTlv } from '../../src/certificates/der.ts';
import { loadGlobalConf, type GlobalConf } from '../../src/globalconf/global-conf.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { restRequestHeaderPart } from '../../src/protocol/rest-message.ts';
import { writeAsic, type AsicContents } from '../../src/signature/asic.ts';
import { fileDigestSource } from '../../src/signature/digest-source.ts';
import { buildHashChains } from '../../src/signature/hash-chain.ts';
import { timestampRequest, tokenOfResponse } from '../../src/signature/timestamp.ts';
import { verifySignature, type SignedParts } from '../../src/signature/verifier.ts';
import type { Authority } from '../../src/dev/testpki/certificate-authority.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { answerOcspRequest } from '../../src/dev/testpki/ocsp-responder.ts';
import { answerTimestampRequest } from '../../src/dev/testpki/timestamp-authority.ts';
import { certIdOf, encodeOcspRequest } from '../../src/trust/ocsp.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const CLIENT = parseClientId('LOCAL/COM/1111/client');
const NS = { ds: 'http://www.w3.org/2000/09/xmldsig#', xades: 'http://uri.etsi.org/01903/v1.3.2#' };
const C14N = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const SHA512 = 'http://www.w3.org/2001/04/xmlenc#sha512';

let dir: string;
let pki: LocalPki;
let conf: GlobalConf;
const authority = (role: 'ca' | 'ocsp' | 'root' | 'tsa'): Authority => ({
  cert: Buffer.from(new X509Certificate(readFileSync(join(pki.dir, 'pki', `${role}.cert.pem`))).raw),
  privateKey: createPrivateKey(readFileSync(join(pki.dir, 'pki', `${role}.key.pem`))),
});

interface Signer {
  readonly keyFile: string;
  readonly certFile: string;
  readonly cert: Buffer;
  readonly method: string;
  /** Good OCSP responses for the certificate and the CA, from the test responder. */
  readonly ocsp: Buffer[];
}
const signers: Record<'RSA' | 'EC', Signer> = {} as never;

/** A key made by OpenSSL, certified by the test CA for LOCAL/COM/1111 (FiVRK profile). */
function newSigner(kind: 'RSA' | 'EC'): Signer {
  const keyFile = join(dir, `${kind}.key.pem`);
  const keyOptions = kind === 'RSA' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const csr = execFileSync('openssl', ['req', '-new', ...keyOptions, '-nodes', '-keyout', keyFile, '-subj', '/C=FI/O=1111/CN=1111/serialNumber=LOCAL\\/1111\\/COM', '-outform', 'DER'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const cert = pki.issue(csr, 'sign');
  const certFile = join(dir, `${kind}.cert.pem`);
  writeFileSync(certFile, new X509Certificate(cert).toString());
  const [ca, root] = [authority('ca'), authority('root')];
  const responder = { authorities: [{ ca: ca.cert, signer: authority('ocsp') }, { ca: root.cert, signer: root }], states: () => ({ status: 'good' as const }), validitySeconds: 3600 };
  const ocsp = [answerOcspRequest(encodeOcspRequest([certIdOf(cert, ca.cert)]), responder), answerOcspRequest(encodeOcspRequest([certIdOf(ca.cert, root.cert)]), responder)];
  const method = kind === 'RSA' ? 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512' : 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512';
  return { keyFile, certFile, cert, method, ocsp };
}

interface Template {
  /** `ds`: ds:Signature as the root (EU DSS); else asic:XAdESSignatures of that namespace. */
  readonly root: 'ds' | 'http://uri.etsi.org/02918/v1.2.1#' | 'http://uri.etsi.org/02918/v1.1.1#';
  readonly c14n: string;
  readonly prefixList?: string;
  /** A transform on the SignedProperties reference. */
  readonly spTransform?: string;
  readonly uris: readonly string[];
  readonly ids: { readonly signature: string; readonly signedProperties: string; readonly value: string; readonly reference: (i: number) => string };
  readonly certV2: boolean;
  readonly commentInSignedInfo?: boolean;
  /** The certificate SigningCertificate names (the signer's by default). */
  readonly namedCert?: Buffer;
  /** What follows CertDigest in the Cert (default: IssuerSerial of the signer's CA and the named certificate's serial; nothing for V2). */
  readonly issuerSerial?: string;
  /** The SigningCertificate(V2) element as written instead (`''`: none). */
  readonly signingCertificate?: string;
}

const DSS_IDS = { signature: 'id-66daf56f0485704a', signedProperties: 'xades-id-66daf56f0485704a', value: 'value-id-66daf56f0485704a', reference: (i: number) => `r-id-66daf56f0485704a-${i + 1}` };

/** The template xmlsec1 fills in: DigestValues, SignatureValue and the certificate in X509Data. */
function template(t: Template, signer: Signer, signingTime = new Date()): string {
  const inclusive = (prefixList: string | undefined) => (prefixList === undefined ? '' : `<ec:InclusiveNamespaces xmlns:ec="${EXC_C14N}" PrefixList="${prefixList}"/>`);
  const digest = `<ds:DigestMethod Algorithm="${SHA512}"/><ds:DigestValue/>`;
  const references =
    t.uris.map((uri, i) => `<ds:Reference Id="${t.ids.reference(i)}" URI="${uri}">${digest}</ds:Reference>`).join('') +
    `<ds:Reference Type="http://uri.etsi.org/01903#SignedProperties" URI="#${t.ids.signedProperties}">` +
    (t.spTransform ? `<ds:Transforms><ds:Transform Algorithm="${t.spTransform}">${t.spTransform.startsWith(EXC_C14N) ? inclusive(t.prefixList) : ''}</ds:Transform></ds:Transforms>` : '') +
    `${digest}</ds:Reference>`;
  const named = t.namedCert ?? signer.cert;
  const certDigest = `<xades:CertDigest><ds:DigestMethod Algorithm="${SHA512}"/><ds:DigestValue>${createHash('sha512').update(named).digest('base64')}</ds:DigestValue></xades:CertDigest>`;
  const serial = BigInt(`0x${new X509Certificate(named).serialNumber}`);
  const issuerSerial = t.issuerSerial ?? (t.certV2 ? '' : `<xades:IssuerSerial><ds:X509IssuerName>CN=LOCAL Test CA,O=LOCAL</ds:X509IssuerName><ds:X509SerialNumber>${serial}</ds:X509SerialNumber></xades:IssuerSerial>`);
  const signingCertificate =
    t.signingCertificate ??
    (t.certV2
      ? `<xades:SigningCertificateV2><xades:Cert>${certDigest}${issuerSerial}</xades:Cert></xades:SigningCertificateV2>`
      : `<xades:SigningCertificate><xades:Cert>${certDigest}${issuerSerial}</xades:Cert></xades:SigningCertificate>`);
  const signature =
    `<ds:Signature${t.root === 'ds' ? ` xmlns:ds="${NS.ds}"` : ''} Id="${t.ids.signature}"><ds:SignedInfo>${t.commentInSignedInfo ? '<!-- signed by xmlsec1 -->' : ''}` +
    `<ds:CanonicalizationMethod Algorithm="${t.c14n}">${t.c14n.startsWith(EXC_C14N) ? inclusive(t.prefixList) : ''}</ds:CanonicalizationMethod>` +
    `<ds:SignatureMethod Algorithm="${signer.method}"/>${references}</ds:SignedInfo>` +
    `<ds:SignatureValue Id="${t.ids.value}"/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo>` +
    `<ds:Object><xades:QualifyingProperties${t.root === 'ds' ? ` xmlns:xades="${NS.xades}"` : ''} Target="#${t.ids.signature}">` +
    `<xades:SignedProperties Id="${t.ids.signedProperties}"><xades:SignedSignatureProperties><xades:SigningTime>${signingTime.toISOString()}</xades:SigningTime>${signingCertificate}</xades:SignedSignatureProperties></xades:SignedProperties>` +
    `<xades:UnsignedProperties><xades:UnsignedSignatureProperties><xades:CertificateValues><xades:EncapsulatedX509Certificate>${authority('ca').cert.toString('base64')}</xades:EncapsulatedX509Certificate></xades:CertificateValues>` +
    `<xades:RevocationValues><xades:OCSPValues>${signer.ocsp.map((o) => `<xades:EncapsulatedOCSPValue>${o.toString('base64')}</xades:EncapsulatedOCSPValue>`).join('')}</xades:OCSPValues></xades:RevocationValues>` +
    `</xades:UnsignedSignatureProperties></xades:UnsignedProperties></xades:QualifyingProperties></ds:Object></ds:Signature>`;
  const body = t.root === 'ds' ? signature : `<asic:XAdESSignatures xmlns:asic="${t.root}" xmlns:ds="${NS.ds}" xmlns:xades="${NS.xades}">${signature}</asic:XAdESSignatures>`;
  return `<?xml version="1.0" encoding="UTF-8"?>${body}`;
}

/** xmlsec1 signs the template over the parts (by URL map). */
function xmlsecSign(xml: string, signer: Signer, files: Record<string, Buffer>): string {
  const work = mkdtempSync(join(dir, 'sign-'));
  writeFileSync(join(work, 'template.xml'), xml);
  const args = ['sign', '--privkey-pem', `${signer.keyFile},${signer.certFile}`, '--id-attr:Id', `${NS.xades}:SignedProperties`, '--output', join(work, 'signed.xml')];
  for (const [uri, data] of Object.entries(files)) {
    writeFileSync(join(work, uri.slice(1)), data);
    args.push(`--url-map:${uri}`, join(work, uri.slice(1)));
  }
  execFileSync('xmlsec1', [...args, join(work, 'template.xml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  return readFileSync(join(work, 'signed.xml'), 'utf8');
}

/** A token from the test TSA over SHA-512 of `data`. */
const timestamp = (data: Buffer) => tokenOfResponse(answerTimestampRequest(timestampRequest(data), { tsa: authority('tsa') }));
const signatureValueOf = (xml: string) => Buffer.from(/<ds:SignatureValue[^>]*>([^<]+)</.exec(xml)![1]!.replace(/\s|&#13;/g, ''), 'base64');

async function asicVerify(contents: AsicContents): Promise<{ code: number; json: Record<string, any> }> {
  const file = join(mkdtempSync(join(dir, 'asic-')), 'container.asice');
  writeFileSync(file, writeAsic(contents));
  try {
    const { stdout } = await promisify(execFile)('node', [XRD, 'asic', 'verify', file, '--conf', pki.globalConfDir, '--json']);
    return { code: 0, json: JSON.parse(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, json: JSON.parse(e.stdout) };
  }
}

const soap = (id: string) =>
  Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd">` +
      `<SOAP-ENV:Header><xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode><id:subsystemCode>client</id:subsystemCode></xrd:client>` +
      `<xrd:service id:objectType="SERVICE"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode><id:subsystemCode>provider</id:subsystemCode><id:serviceCode>getRandom</id:serviceCode></xrd:service>` +
      `<xrd:id>${id}</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header><SOAP-ENV:Body><prod:getRandom xmlns:prod="http://test.x-road.fi/producer"/></SOAP-ENV:Body></SOAP-ENV:Envelope>\n`,
  );
const verify = (xml: string, parts: SignedParts) => verifySignature(xml, parts, { conf, signer: CLIENT, at: new Date() });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xrd-independent-'));
  pki = LocalPki.init(join(dir, 'pki'));
  conf = loadGlobalConf(pki.globalConfDir);
  signers.RSA = newSigner('RSA');
  signers.EC = newSigner('EC');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('signatures made by xmlsec1 in forms the reference accepts', () => {
  const dss: Template = { root: 'ds', c14n: EXC_C14N, spTransform: EXC_C14N, uris: ['/message.xml', '/attachment1'], ids: DSS_IDS, certV2: true };

  for (const kind of ['RSA', 'EC'] as const) {
    it(`EU DSS form (X-Road 8, ${kind}): ds:Signature root, exclusive C14N, exc-c14n transform on SignedProperties, other ids, SigningCertificateV2, /attachment1 referenced directly → verifies; with a single timestamp, so does its container`, async () => {
      const message = soap(`dss-${kind}`);
      const attachment = Buffer.from('an attachment, referenced directly');
      const signed = xmlsecSign(template(dss, signers[kind]), signers[kind], { '/message.xml': message, '/attachment1': attachment });
      expect(signed.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<ds:Signature')).toBe(true);
      const v = verify(signed, { message, attachments: [attachment] });
      expect(v).toMatchObject({ hashChain: false, verifiedParts: ['/message.xml', '/attachment1'], signer: CLIENT });
      // A spooled attachment (a file) verifies the same.
      const spooled = join(dir, `attachment-${kind}`);
      writeFileSync(spooled, attachment);
      expect(verify(signed, { message, attachments: [fileDigestSource(spooled)] }).verifiedParts).toEqual(['/message.xml', '/attachment1']);

      // MESS_10 single form: the token over the SignatureValue, in SignatureTimeStamp.
      const stamped = signed.replace('<xades:UnsignedSignatureProperties>', `<xades:UnsignedSignatureProperties><xades:SignatureTimeStamp><xades:EncapsulatedTimeStamp>${timestamp(signatureValueOf(signed)).toString('base64')}</xades:EncapsulatedTimeStamp></xades:SignatureTimeStamp>`);
      const { code, json } = await asicVerify({ message, signatureXml: Buffer.from(stamped), attachments: [attachment] });
      expect({ code, json }).toMatchObject({ code: 0, json: { valid: true, hashChain: false, timestamp: { batch: false, tsa: expect.stringContaining('LOCAL Test TSA') }, verifiedParts: ['/message.xml', '/attachment1'] } });
    });
  }

  it('X-Road 7 form in asic:XAdESSignatures 1.1.1: C14N #WithComments with a comment in SignedInfo, a c14n#WithComments transform on SignedProperties, SigningCertificate, a batch hash chain → verifies; with a batch timestamp, so does its container', async () => {
    const message = soap('hash-chain');
    const attachment = Buffer.from('an attachment, in the hash chain');
    const other = soap('other-message-of-the-batch');
    const chains = buildHashChains([[{ uri: '/message.xml', data: message }, { uri: '/attachment1', data: attachment }], [{ uri: '/message.xml', data: other }]], '/sig-hashchain.xml');
    const t: Template = { root: 'http://uri.etsi.org/02918/v1.1.1#', c14n: `${C14N}#WithComments`, spTransform: `${C14N}#WithComments`, uris: ['/sig-hashchainresult.xml'], ids: { signature: 'sig', signedProperties: 'sp', value: 'sv', reference: (i) => `ref${i}` }, certV2: false, commentInSignedInfo: true };
    const signed = xmlsecSign(template(t, signers.RSA), signers.RSA, { '/sig-hashchainresult.xml': Buffer.from(chains.result) });
    expect(signed).toContain('<!-- signed by xmlsec1 -->');
    const parts = { message, attachments: [attachment], hashChainResult: Buffer.from(chains.result), hashChain: Buffer.from(chains.chains[0]!) };
    expect(verify(signed, parts)).toMatchObject({ hashChain: true, verifiedParts: ['/message.xml', '/attachment1'] });
    // The reference's IdResolver hands Santuario the element with its comments, so under #WithComments a comment counts.
    expect(() => verify(signed.replace('<xades:SignedSignatureProperties>', '<xades:SignedSignatureProperties><!-- added -->'), parts)).toThrow(expect.objectContaining({ fullCode: 'InvalidSignatureValue' }));

    // MESS_10 batch form: one token over ts-hashchainresult.xml for this signature and another.
    const ts = buildHashChains([[{ uri: '/META-INF/signatures.xml', data: Buffer.from(signed) }], [{ uri: '/META-INF/signatures.xml', data: Buffer.from('another record') }]], '/ts-hashchain.xml');
    const token = timestamp(Buffer.from(ts.result));
    const container = { message, signatureXml: Buffer.from(signed), attachments: [attachment], hashChainResult: parts.hashChainResult, hashChain: parts.hashChain, timestampToken: token, tsHashChainResult: Buffer.from(ts.result), tsHashChain: Buffer.from(ts.chains[0]!) };
    expect(await asicVerify(container)).toMatchObject({ code: 0, json: { valid: true, hashChain: true, timestamp: { batch: true }, verifiedParts: ['/message.xml', '/attachment1'], unverifiedParts: [] } });
    // The container may leave the attachment out: the chain's digest for it is then reported, not verified.
    expect(await asicVerify({ ...container, attachments: [] })).toMatchObject({ code: 0, json: { valid: true, verifiedParts: ['/message.xml'], unverifiedParts: ['/attachment1'] } });
  });

  it('exclusive C14N with InclusiveNamespaces PrefixLists on SignedInfo and on the SignedProperties transform; a REST request (/message.xml the header part, /attachment1 the body) → verifies', () => {
    const message = restRequestHeaderPart('POST', '/r1/LOCAL/COM/2222/provider/echo?x=1', [['X-Road-Client', 'LOCAL/COM/1111/client'], ['Content-Type', 'application/json']]);
    const body = Buffer.from('{"a":1}');
    const t: Template = { ...dss, root: 'http://uri.etsi.org/02918/v1.2.1#', c14n: `${EXC_C14N}WithComments`, spTransform: EXC_C14N, prefixList: 'ds xades #default', commentInSignedInfo: true };
    const signed = xmlsecSign(template(t, signers.EC), signers.EC, { '/message.xml': message, '/attachment1': body });
    expect(signed).toContain('PrefixList="ds xades #default"');
    expect(verify(signed, { message, attachments: [body] }).verifiedParts).toEqual(['/message.xml', '/attachment1']);
  });
});

describe('their altered copies are refused for the reference\'s reasons', () => {
  let signed: string;
  let message: Buffer;
  const attachment = Buffer.from('attachment');
  const refused = (code: string, xml: string, parts: SignedParts = { message, attachments: [attachment] }) => expect(() => verify(xml, parts)).toThrow(expect.objectContaining({ fullCode: code }));

  beforeAll(() => {
    message = soap('altered');
    const t: Template = { root: 'ds', c14n: EXC_C14N, spTransform: EXC_C14N, uris: ['/message.xml', '/attachment1'], ids: DSS_IDS, certV2: true };
    signed = xmlsecSign(template(t, signers.RSA), signers.RSA, { '/message.xml': message, '/attachment1': attachment });
    expect(verify(signed, { message, attachments: [attachment] }).verifiedParts).toHaveLength(2);
  });

  it('Santuario Reference.verify: a changed message or attachment → InvalidSignatureValue', () => {
    refused('InvalidSignatureValue', signed, { message: Buffer.concat([message, Buffer.from(' ')]), attachments: [attachment] });
    refused('InvalidSignatureValue', signed, { message, attachments: [Buffer.from('Attachment')] });
  });

  it('Santuario ResourceResolver: an attachment the message lacks → InvalidReference; one the signature does not cover → InvalidReference (xrd only: the reference does not check)', () => {
    refused('InvalidReference', signed, { message });
    refused('InvalidReference', signed, { message, attachments: [attachment, Buffer.from('smuggled')] });
  });

  it('signed properties: a changed SigningTime → InvalidSignatureValue; a SignedProperties Id no reference names → InvalidReference', () => {
    refused('InvalidSignatureValue', signed.replace(/<xades:SigningTime>\d{4}/, '<xades:SigningTime>1999'));
    refused('InvalidReference', signed.replace(`Id="${DSS_IDS.signedProperties}"`, 'Id="renamed"'));
  });

  it('IdResolver takes the first element with the Id: a copy placed before the signed one is what gets digested → InvalidSignatureValue', () => {
    const decoy =
      `<ds:Object><xades:QualifyingProperties xmlns:xades="${NS.xades}" Target="#${DSS_IDS.signature}"><xades:SignedProperties Id="${DSS_IDS.signedProperties}">` +
      `<xades:SignedSignatureProperties><xades:SigningTime>2000-01-01T00:00:00Z</xades:SigningTime></xades:SignedSignatureProperties></xades:SignedProperties></xades:QualifyingProperties></ds:Object>`;
    refused('InvalidSignatureValue', signed.replace('<ds:KeyInfo>', `${decoy}<ds:KeyInfo>`));
  });

  it('a comment added to SignedProperties under a C14N transform without comments changes nothing', () => {
    expect(verify(signed.replace('<xades:SignedSignatureProperties>', '<xades:SignedSignatureProperties><!-- added -->'), { message, attachments: [attachment] }).verifiedParts).toHaveLength(2);
  });

  it('transforms and canonicalisation other than C14N 1.0 → MalformedSignature', () => {
    refused('MalformedSignature', signed.replace(`<ds:Transform Algorithm="${EXC_C14N}"/>`, '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/>'));
    refused('MalformedSignature', signed.replace(`<ds:CanonicalizationMethod Algorithm="${EXC_C14N}"/>`, '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>'));
  });

  it('XAdES: SigningCertificateV2 changed → InvalidSignatureValue (it is signed); no ds:Signature → MalformedSignature', () => {
    const digest = createHash('sha512').update(signers.RSA.cert).digest('base64');
    refused('InvalidSignatureValue', signed.replace(digest, createHash('sha512').update(signers.EC.cert).digest('base64')));
    refused('MalformedSignature', '<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#"/>');
  });
});

describe('EN 319 132-1 §5.2.2 (xrd only, the reference does not check): the signed properties must bind the certificate in KeyInfo', () => {
  const message = soap('binding');
  const attachment = Buffer.from('attachment');
  const v1: Template = { root: 'http://uri.etsi.org/02918/v1.2.1#', c14n: C14N, uris: ['/message.xml', '/attachment1'], ids: DSS_IDS, certV2: false };
  const v2: Template = { ...v1, root: 'ds', c14n: EXC_C14N, spTransform: EXC_C14N, certV2: true };
  /** Signed by the RSA signer, its KeyInfo the RSA certificate, with the signed properties `t` says. */
  const signedWith = (t: Template) => xmlsecSign(template(t, signers.RSA), signers.RSA, { '/message.xml': message, '/attachment1': attachment });
  const check = (t: Template) => verifySignature(signedWith(t), { message, attachments: [attachment] }, { conf, signer: CLIENT, at: new Date() });
  const notBound = (t: Template) => expect(() => check(t)).toThrow(expect.objectContaining({ code: 'SigningCertificateNotBound', fullCode: 'MalformedSignature.SigningCertificateNotBound' }));
  const issuerSerial = (issuer: string, serial: bigint) => `<xades:IssuerSerial><ds:X509IssuerName>${issuer}</ds:X509IssuerName><ds:X509SerialNumber>${serial}</ds:X509SerialNumber></xades:IssuerSerial>`;
  const serialOf = (cert: Buffer) => BigInt(`0x${new X509Certificate(cert).serialNumber}`);
  /** IssuerSerialV2: the DER IssuerSerial { GeneralNames { [4] issuer }, serialNumber } (by default the RSA certificate's). */
  const rsa = () => certificateDerParts(signers.RSA.cert);
  const issuerSerialV2 = (issuerName = rsa().issuerName, serialNumber = rsa().serialNumber) =>
    `<xades:IssuerSerialV2>${encodeTlv(0x30, encodeTlv(0x30, encodeTlv(0xa4, issuerName)), serialNumber).toString('base64')}</xades:IssuerSerialV2>`;
  const certOf = (cert: Buffer, rest = '') => `<xades:Cert><xades:CertDigest><ds:DigestMethod Algorithm="${SHA512}"/><ds:DigestValue>${createHash('sha512').update(cert).digest('base64')}</ds:DigestValue></xades:CertDigest>${rest}</xades:Cert>`;

  it('a signature whose signed properties name another certificate (its digest) is refused', () => {
    notBound({ ...v2, namedCert: signers.EC.cert });
    notBound({ ...v1, namedCert: signers.EC.cert });
  });

  it('a signature whose signed properties name no certificate (no SigningCertificate, or one without a Cert) is refused', () => {
    notBound({ ...v1, signingCertificate: '' });
    notBound({ ...v1, signingCertificate: '<xades:SigningCertificate/>' });
  });

  it('a signature giving the KeyInfo certificate\'s digest with another certificate\'s issuer and serial number is refused', () => {
    notBound({ ...v1, issuerSerial: issuerSerial('CN=LOCAL Test CA,O=LOCAL', serialOf(signers.EC.cert)) });
    notBound({ ...v1, issuerSerial: issuerSerial('CN=LOCAL Root CA,O=LOCAL', serialOf(signers.RSA.cert)) });
    notBound({ ...v2, issuerSerial: issuerSerialV2(undefined, encodeTlv(0x02, Buffer.from([0x01]))) });
    notBound({ ...v2, issuerSerial: issuerSerialV2(certificateDerParts(authority('ca').cert).issuerName) });
    notBound({ ...v2, issuerSerial: '<xades:IssuerSerialV2>AAAA</xades:IssuerSerialV2>' });
  });

  it('a signature listing the KeyInfo certificate\'s issuer and serial number with another digest is refused, even beside a Cert that names it', () => {
    const own = issuerSerial('CN=LOCAL Test CA,O=LOCAL', serialOf(signers.RSA.cert));
    notBound({ ...v1, signingCertificate: `<xades:SigningCertificate>${certOf(signers.RSA.cert, own)}${certOf(signers.EC.cert, own)}</xades:SigningCertificate>` });
    // The signing certificate and its CA, as XAdES allows, verify.
    const ca = issuerSerial('CN=LOCAL Test Root CA,O=LOCAL', serialOf(authority('ca').cert));
    expect(check({ ...v1, signingCertificate: `<xades:SigningCertificate>${certOf(signers.RSA.cert, own)}${certOf(authority('ca').cert, ca)}</xades:SigningCertificate>` }).verifiedParts).toHaveLength(2);
  });

  it('the issuer and serial number of the KeyInfo certificate verify however the name is written: Java\'s form, spaces, OIDs, #hex, another case; IssuerSerialV2', () => {
    const serial = serialOf(signers.RSA.cert);
    const cn = Buffer.from('LOCAL Test CA');
    for (const issuer of ['CN=LOCAL Test CA,O=LOCAL', 'CN = LOCAL Test CA , O = LOCAL', 'cn=local test ca;o=LOCAL', `2.5.4.3=#0c${cn.length.toString(16).padStart(2, '0')}${cn.toString('hex')},OID.2.5.4.10=LOCAL`, 'CN="LOCAL Test CA",O=LOC\\41L']) {
      expect(check({ ...v1, issuerSerial: issuerSerial(issuer, serial) }).verifiedParts, issuer).toHaveLength(2);
    }
    expect(check({ ...v2, issuerSerial: issuerSerialV2() }).verifiedParts).toHaveLength(2);
    // Another order of the RDNs is another name.
    notBound({ ...v1, issuerSerial: issuerSerial('O=LOCAL,CN=LOCAL Test CA', serial) });
  });
});
