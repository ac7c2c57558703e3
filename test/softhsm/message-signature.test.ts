/**
 * MESS_08/MESS_11 end to end with keys on SoftHSM: signatures made through the signer daemon
 * verify with xmlsec1 and with our verifier; attachments and batches go through hash chains; 64
 * concurrent messages cost one HSM signature; timestamps come from the local TSA; containers verify
 * with `xrd asic verify`; tampering with any part is caught with the reference's code.
 */
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GlobalConf } from '../../src/globalconf/global-conf.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { restRequestHeaderPart } from '../../src/protocol/rest-message.ts';
import { writeAsic } from '../../src/signature/asic.ts';
import { buildHashChains } from '../../src/signature/hash-chain.ts';
import { BatchSigner, type SignedMessage, type SigningKey } from '../../src/signature/message-signer.ts';
import { requestTimestamp } from '../../src/signature/timestamp.ts';
import { parseSignature, verifySignature, type SignedParts } from '../../src/signature/verifier.ts';
import { addSignatureTimestamp } from '../../src/signature/xades.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import type { Testbed } from '../../softhsm/testbed.ts';
import { signingKeyOnToken, startSigningBed, type SigningBed } from '../support/signing.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const CLIENT = parseClientId('LOCAL/COM/1111/client');

let testbed: Testbed;
let pki: LocalPki;
let served: Awaited<ReturnType<LocalPki['serve']>>;
let bed: SigningBed;
let client: SignerClient;
let conf: GlobalConf;
let hsmSignatures = 0;
let signer: BatchSigner;
const keys: Record<'RSA' | 'EC' | 'PSS', SigningKey> = {} as never;

const soap = (id: string, body = '<prod:getRandom xmlns:prod="http://test.x-road.fi/producer"/>') =>
  Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd">` +
      `<SOAP-ENV:Header><xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode><id:subsystemCode>client</id:subsystemCode></xrd:client>` +
      `<xrd:service id:objectType="SERVICE"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode><id:subsystemCode>provider</id:subsystemCode><id:serviceCode>getRandom</id:serviceCode></xrd:service>` +
      `<xrd:id>${id}</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header><SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n`,
  );

/** A signing key for the client's member on the token. */
const signingKey = (algorithm: 'RSA' | 'EC', signAlgorithm: string): Promise<SigningKey> => signingKeyOnToken(bed, 'LOCAL/COM/1111', algorithm, signAlgorithm);

function verify(signed: SignedMessage, parts: Omit<SignedParts, 'hashChainResult' | 'hashChain'>) {
  return verifySignature(signed.signatureXml, { ...parts, hashChainResult: opt(signed.hashChainResult), hashChain: opt(signed.hashChain) }, { conf, signer: CLIENT, at: new Date() });
}
const opt = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s));

/** xmlsec1 as an independent verifier, trusting the local root and given the CA. */
async function xmlsec1(signed: SignedMessage, files: Record<string, Buffer>): Promise<string> {
  const dir = join(testbed.dir, `xmlsec-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'signatures.xml'), signed.signatureXml);
  const args = ['--verify', '--trusted-pem', join(pki.dir, 'pki', 'root.cert.pem'), '--untrusted-pem', join(pki.dir, 'pki', 'ca.cert.pem'), '--id-attr:Id', 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties'];
  for (const [uri, data] of Object.entries(files)) {
    writeFileSync(join(dir, uri.slice(1)), data);
    args.push(`--url-map:${uri}`, join(dir, uri.slice(1)));
  }
  const { stderr } = await promisify(execFile)('xmlsec1', [...args, join(dir, 'signatures.xml')]);
  return stderr;
}

beforeAll(async () => {
  bed = await startSigningBed('sigs');
  ({ testbed, pki, served, conf, client } = bed);
  signer = new BatchSigner(async (keyId, algorithm, digest) => {
    hsmSignatures++;
    const r = await client.call('sign', { keyId, algorithm, digest: digest.toString('base64'), format: 'raw' });
    return Buffer.from(r.signature, 'base64');
  });
  keys.RSA = await signingKey('RSA', 'SHA512withRSA');
  keys.EC = await signingKey('EC', 'SHA512withECDSA');
  keys.PSS = { ...keys.RSA, algorithm: 'SHA512withRSAandMGF1' };
});

afterAll(async () => {
  await bed?.close();
});

describe('message signatures with keys on SoftHSM', () => {
  it('a SOAP message is signed directly; xmlsec1 and our verifier accept it, for RSA, RSA-PSS and ECDSA', async () => {
    for (const kind of ['RSA', 'PSS', 'EC'] as const) {
      const message = soap(`direct-${kind}`);
      const signed = await signer.sign(keys[kind], { message });
      expect(signed.hashChain).toBeUndefined();
      expect(parseSignature(signed.signatureXml).dataReferences.map((r) => r.uri)).toEqual(['/message.xml']);
      const v = verify(signed, { message });
      expect(v.signer).toEqual(CLIENT);
      expect(v.ocsp.map((o) => o.subject)).toEqual([expect.stringContaining('CN=1111'), expect.stringContaining('LOCAL Test CA')]);
      // xmlsec1 1.2 has no RSA-PSS; the others it checks on its own.
      if (kind !== 'PSS') expect(await xmlsec1(signed, { '/message.xml': message })).toContain('SignedInfo References (ok/all): 2/2');
    }
  });

  it('attachments and REST bodies go through a hash chain that xmlsec1 and our verifier accept', async () => {
    const message = soap('with-attachment');
    const attachments = [Buffer.from('%PDF-1.4 first attachment'), Buffer.from([0, 1, 2, 255])];
    const signed = await signer.sign(keys.RSA, { message, attachments });
    expect(signed.hashChainResult).toContain('URI="/sig-hashchain.xml#STEP0"');
    expect(verify(signed, { message, attachments }).verifiedParts).toEqual(['/message.xml', '/attachment1', '/attachment2']);
    expect(await xmlsec1(signed, { '/sig-hashchainresult.xml': Buffer.from(signed.hashChainResult!) })).toContain('2/2');

    const header = restRequestHeaderPart('GET', '/r1/LOCAL/COM/2222/provider/random?x=1', [['x-road-client', 'LOCAL/COM/1111/client'], ['x-road-id', 'rest-1']]);
    const body = Buffer.from('{"q":1}');
    const rest = await signer.sign(keys.EC, { message: header, attachments: [body] });
    expect(verify(rest, { message: header, attachments: [body] }).verifiedParts).toEqual(['/message.xml', '/attachment1']);
  });

  it('64 concurrent messages cost one HSM signature and each gets its own verifying hash chain', async () => {
    const before = hsmSignatures;
    const messages = Array.from({ length: 64 }, (_, i) => ({ message: soap(`batch-${i}`), attachments: i % 4 === 0 ? [Buffer.from(`attachment ${i}`)] : [] }));
    const signed = await Promise.all(messages.map((m) => signer.sign(keys.RSA, m)));
    expect(hsmSignatures - before).toBe(1);
    expect(new Set(signed.map((s) => s.signatureXml)).size).toBe(1);
    expect(new Set(signed.map((s) => s.hashChain)).size).toBe(64);
    signed.forEach((s, i) => expect(verify(s, messages[i]!).hashChain).toBe(true));
    // One message's hash chain does not vouch for another message.
    expect(() => verify({ ...signed[1]!, hashChain: signed[2]!.hashChain }, messages[1]!)).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChainRef' }));
  });

  it('tampering with any part is detected with the reference code', async () => {
    const message = soap('tamper');
    const attachments = [Buffer.from('attachment bytes')];
    const signed = await signer.sign(keys.RSA, { message, attachments });
    const flip = (b: Buffer, at: number) => {
      const c = Buffer.from(b);
      c[at] = c[at]! ^ 0x01;
      return c;
    };
    const parts = { message, attachments, hashChainResult: Buffer.from(signed.hashChainResult!), hashChain: Buffer.from(signed.hashChain!) };
    const check = (change: Partial<SignedParts> & { signatureXml?: string }) =>
      verifySignature(change.signatureXml ?? signed.signatureXml, { ...parts, ...change }, { conf, signer: CLIENT, at: new Date() });
    expect(() => check({ message: flip(message, 300) })).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChainRef' }));
    expect(() => check({ attachments: [flip(attachments[0]!, 3)] })).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChainRef' }));
    const chain = signed.hashChain!.replace(/(<DigestValue>)(.)/, (_, tag: string, c: string) => tag + (c === 'A' ? 'B' : 'A'));
    expect(() => check({ hashChain: Buffer.from(chain) })).toThrow(expect.objectContaining({ outerCodes: ['MalformedSignature'] }));
    const result = signed.hashChainResult!.replace(/(<DigestValue>)(.)/, (_, tag: string, c: string) => tag + (c === 'A' ? 'B' : 'A'));
    expect(() => check({ hashChainResult: Buffer.from(result) })).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChain' }));
    const value = signed.signatureXml.replace(/(<ds:SignatureValue Id="signature-value">)(.)/, (_, tag: string, c: string) => tag + (c === 'A' ? 'B' : 'A'));
    expect(() => check({ signatureXml: value })).toThrow(expect.objectContaining({ fullCode: 'InvalidSignatureValue' }));
    const time = signed.signatureXml.replace(/(<xades:SigningTime>\d)\d/, '$19');
    expect(() => check({ signatureXml: time })).toThrow(expect.objectContaining({ fullCode: 'InvalidSignatureValue' }));
    expect(() => check({ signatureXml: signed.signatureXml.replace('<ds:SignedInfo>', '<ds:SignedInfo >').replace('</ds:SignatureValue>', '') })).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature' }));
    // A signature that leaves an attachment uncovered (X-Road 8 form) is refused.
    const direct = await signer.sign({ ...keys.RSA, batchSigningEnabled: false }, { message });
    expect(() => verifySignature(direct.signatureXml, { message, attachments }, { conf, signer: CLIENT, at: new Date() })).toThrow(expect.objectContaining({ fullCode: 'InvalidReference' }));
  });

  it('a revoked signing certificate fails with CertValidation', async () => {
    const key = await signingKey('RSA', 'SHA512withRSA');
    pki.revoke(key.cert);
    const stale = await signer.sign(key, { message: soap('revoked') });
    // The signature still carries the good response from before: as of now it is still valid…
    expect(verify(stale, { message: soap('revoked') }).ocsp).toHaveLength(2);
    // …with the responder's fresh answer it is not.
    const ocspNow = await fetchOcsp(key.cert);
    const revoked = await signer.sign({ ...key, ocspResponses: [ocspNow, key.ocspResponses[1]!] }, { message: soap('revoked') });
    expect(() => verify(revoked, { message: soap('revoked') })).toThrow(expect.objectContaining({ code: 'CertValidation', message: expect.stringContaining('REVOKED') }));
  });

  it('single and batch timestamps from the TSA in configuration; containers verify with xrd asic verify', async () => {
    const tsas = conf.own.approvedTsas;
    const dir = join(testbed.dir, 'containers');
    mkdirSync(dir);
    const asicVerify = async (file: string, ...args: string[]) => {
      try {
        return { code: 0, json: JSON.parse((await promisify(execFile)('node', [XRD, 'asic', 'verify', file, '--conf', pki.globalConfDir, '--json', ...args])).stdout) };
      } catch (err) {
        const e = err as { code: number; stdout: string };
        return { code: e.code, json: JSON.parse(e.stdout) };
      }
    };

    // Single: the token stamps the raw signature value and is embedded in the signature.
    const message = soap('stamped');
    const signed = await signer.sign(keys.RSA, { message });
    const token = await requestTimestamp(tsas, parseSignature(signed.signatureXml).signatureValue);
    const stamped = addSignatureTimestamp(signed.signatureXml, token);
    writeFileSync(join(dir, 'single.asice'), writeAsic({ message, signatureXml: Buffer.from(stamped), attachments: [] }));
    const single = await asicVerify(join(dir, 'single.asice'));
    expect(single).toMatchObject({ code: 0, json: { valid: true, signer: { id: 'LOCAL/COM/1111/client' }, timestamp: { tsa: expect.stringContaining('LOCAL Test TSA'), batch: false } } });

    // Batch: one token over ts-hashchainresult.xml covers three logged signatures.
    const logged = [0, 1, 2].map((i) => ({ message: soap(`logged-${i}`), attachments: [Buffer.from(`file ${i}`)] }));
    const signatures = await Promise.all(logged.map((m) => signer.sign(keys.EC, m)));
    const ts = buildHashChains(signatures.map((s) => [{ uri: '/META-INF/signatures.xml', data: Buffer.from(s.signatureXml) }]), '/ts-hashchain.xml');
    const batchToken = await requestTimestamp(tsas, Buffer.from(ts.result));
    for (const [i, s] of signatures.entries()) {
      const file = join(dir, `batch-${i}.asice`);
      writeFileSync(
        file,
        writeAsic({ message: logged[i]!.message, attachments: logged[i]!.attachments, signatureXml: Buffer.from(s.signatureXml), hashChainResult: opt(s.hashChainResult), hashChain: opt(s.hashChain), timestampToken: batchToken, tsHashChainResult: Buffer.from(ts.result), tsHashChain: Buffer.from(ts.chains[i]!) }),
      );
      const r = await asicVerify(file);
      expect(r).toMatchObject({ code: 0, json: { valid: true, hashChain: true, timestamp: { batch: true }, verifiedParts: ['/message.xml', '/attachment1'] } });
    }
    // unzip sees a well-formed archive whose first entry is the mimetype.
    expect(execFileSync('unzip', ['-Z1', join(dir, 'batch-0.asice')]).toString().split('\n')[0]).toBe('mimetype');

    // A container whose attachment was changed fails, and says why (unstamped, so only when asked to verify such).
    const broken = writeAsic({ message: logged[0]!.message, attachments: [Buffer.from('file X')], signatureXml: Buffer.from(signatures[0]!.signatureXml), hashChainResult: opt(signatures[0]!.hashChainResult), hashChain: opt(signatures[0]!.hashChain) });
    writeFileSync(join(dir, 'broken.asice'), broken);
    expect(await asicVerify(join(dir, 'broken.asice'), '--allow-unstamped')).toMatchObject({ code: 1, json: { valid: false, error: { code: 'MalformedSignature.InvalidHashChainRef' } } });
  });
});

/** The local responder's current answer for a certificate issued by the local CA. */
async function fetchOcsp(cert: Buffer): Promise<Buffer> {
  const { encodeOcspRequest, certIdOf } = await import('../../src/trust/ocsp.ts');
  const ca = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw;
  const response = await fetch(served.ocspUrl, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array(encodeOcspRequest([certIdOf(cert, ca)])) });
  return Buffer.from(await response.arrayBuffer());
}
