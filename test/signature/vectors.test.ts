/**
 * The reference's vectors in ../shared/xroad-vectors/{asic,asic-core,hashchain}, each giving the
 * README's result through the library and, for containers, through `xrd asic verify --json` run as
 * a process. Tests are named after the reference test they mirror.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { readAsic, verifyAsic } from '../../src/signature/asic.ts';
import { buildHashChains, inputDigest, verifyHashChain, type ChainInput } from '../../src/signature/hash-chain.ts';
import { verifySignature } from '../../src/signature/verifier.ts';
import { VECTORS } from '../support/vectors.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const CONF = join(VECTORS, 'globalconf');
const container = (folder: string, name: string) => readFileSync(join(VECTORS, folder, name));

/** `xrd asic verify <file> --json` (with the vectors' configuration, or `--load-only`). */
async function cli(folder: string, name: string, ...args: string[]): Promise<{ code: number; json: Record<string, any> }> {
  const file = join(VECTORS, folder, name);
  try {
    const { stdout } = await promisify(execFile)('node', [XRD, 'asic', 'verify', file, ...(args.length > 0 ? args : ['--conf', CONF]), '--json']);
    return { code: 0, json: JSON.parse(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, json: JSON.parse(e.stdout) };
  }
}

describe('asic/ (AsicContainerVerifierTest): full verification', () => {
  const conf = loadGlobalConf(CONF);

  it('valid-signed-message.asice verifies: signer, timestamp, OCSP as of the timestamp', async () => {
    const v = verifyAsic(container('asic', 'valid-signed-message.asice'), conf);
    expect(v.signer).toEqual(parseClientId('DEV/COM/4321/TestClient'));
    expect(v.hashChain).toBe(false);
    expect(v.timestamp?.tsaSubject).toBe('O=Test, CN=Test TSA');
    expect(v.validatedAt).toEqual(v.timestamp!.genTime);
    expect(v.ocsp).toHaveLength(1);
    const { code, json } = await cli('asic', 'valid-signed-message.asice');
    expect(code).toBe(0);
    expect(json).toMatchObject({ valid: true, signer: { id: 'DEV/COM/4321/TestClient' }, timestamp: { tsa: 'O=Test, CN=Test TSA', batch: false }, verifiedParts: ['/message.xml'] });
  });

  it('valid-signed-hashchain.asice verifies; /attachment1, which the container does not carry, is reported, not trusted silently', async () => {
    const v = verifyAsic(container('asic', 'valid-signed-hashchain.asice'), conf);
    expect(v.hashChain).toBe(true);
    expect(v.verifiedParts).toEqual(['/message.xml']);
    expect(v.unverifiedParts).toEqual(['/attachment1']);
    const { code, json } = await cli('asic', 'valid-signed-hashchain.asice');
    expect(code).toBe(0);
    expect(json).toMatchObject({ valid: true, hashChain: true, verifiedParts: ['/message.xml'], unverifiedParts: ['/attachment1'] });
  });

  it('wrong-message.asice → InvalidSignatureValue', async () => {
    expect(() => verifyAsic(container('asic', 'wrong-message.asice'), conf)).toThrow(expect.objectContaining({ fullCode: 'InvalidSignatureValue' }));
    const { code, json } = await cli('asic', 'wrong-message.asice');
    expect(code).toBe(1);
    expect(json).toMatchObject({ valid: false, error: { code: 'InvalidSignatureValue' } });
  });

  it('invalid-signed-hashchain.asice → MalformedSignature.InvalidHashChainRef', async () => {
    expect(() => verifyAsic(container('asic', 'invalid-signed-hashchain.asice'), conf)).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChainRef' }));
    const { code, json } = await cli('asic', 'invalid-signed-hashchain.asice');
    expect(code).toBe(1);
    expect(json).toMatchObject({ valid: false, error: { code: 'MalformedSignature.InvalidHashChainRef' } });
  });

  it('SignatureVerifierTest: a signature checked for another member fails the signer-name check', () => {
    const c = readAsic(container('asic', 'valid-signed-message.asice'));
    expect(() => verifySignature(c.signatureXml, { message: c.message }, { conf, signer: parseClientId('DEV/COM/1234/TestService') })).toThrow(
      expect.objectContaining({ code: 'IncorrectCertificate', message: expect.stringContaining('Name in certificate (DEV/COM/4321) does not match name in message (DEV/COM/1234/TestService)') }),
    );
  });

  it('SignatureVerifier (proxies): a live message with a hash chain needs every part the chain names, and the right ones', () => {
    const c = readAsic(container('asic', 'valid-signed-hashchain.asice'));
    const parts = { message: c.message, hashChainResult: c.hashChainResult, hashChain: c.hashChain };
    expect(() => verifySignature(c.signatureXml, parts, { conf, signer: parseClientId('DEV/COM/4321') })).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidReference' }));
    expect(() => verifySignature(c.signatureXml, { ...parts, attachments: [Buffer.from('not the attachment')] }, { conf, signer: parseClientId('DEV/COM/4321') })).toThrow(
      expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChainRef' }),
    );
  });
});

describe('asic-core/ (AsicContainerTest): loading, structure only', () => {
  const refusals: [string, string][] = [
    ['no-mimetype.asice', 'AsicMimeTypeNotFound'],
    ['no-message.asice', 'AsicMessageNotFound'],
    ['no-signature.asice', 'AsicSignatureNotFound'],
    ['not-asic.asice', 'AsicMimeTypeNotFound'],
  ];
  for (const [name, code] of refusals) {
    it(`AsicContainerTest: ${name} → ${code}`, async () => {
      expect(() => readAsic(container('asic-core', name))).toThrow(expect.objectContaining({ fullCode: code }));
      expect(await cli('asic-core', name, '--load-only')).toMatchObject({ code: 1, json: { valid: false, error: { code } } });
      // Full verification stops at loading with the same code.
      expect(await cli('asic-core', name)).toMatchObject({ code: 1, json: { valid: false, error: { code } } });
    });
  }

  it('AsicContainerTest: valid-signed-message.asice (2014, legacy sdsb namespace, mimetype last) loads', async () => {
    const c = readAsic(container('asic-core', 'valid-signed-message.asice'));
    expect(c.message.toString()).toContain('xmlns:sdsb="http://x-road.eu/xsd/sdsb.xsd"');
    expect(c.attachments).toHaveLength(0);
    expect(await cli('asic-core', 'valid-signed-message.asice', '--load-only')).toMatchObject({ code: 0, json: { valid: true, loadOnly: true, attachments: 0, hashChain: false } });
  });

  it('AsicContainerTest: valid-signed-message-with-attachments.asice loads with attachment1 (100 B) and attachment2 (50 B)', async () => {
    const c = readAsic(container('asic-core', 'valid-signed-message-with-attachments.asice'));
    expect(c.attachments.map((a) => a.length)).toEqual([100, 50]);
    expect(await cli('asic-core', 'valid-signed-message-with-attachments.asice', '--load-only')).toMatchObject({ code: 0, json: { valid: true, loadOnly: true, attachments: 2 } });
  });

  it('AsicContainerVerifierTest (valid-non-batch-soap-attachments): valid-signed-message-with-attachments.asice also verifies fully — X-Road 8 form, /attachmentN referenced directly', async () => {
    const v = verifyAsic(container('asic-core', 'valid-signed-message-with-attachments.asice'), loadGlobalConf(CONF));
    expect(v.hashChain).toBe(false);
    expect(v.verifiedParts).toEqual(['/message.xml', '/attachment1', '/attachment2']);
    expect(await cli('asic-core', 'valid-signed-message-with-attachments.asice')).toMatchObject({ code: 0, json: { valid: true, verifiedParts: ['/message.xml', '/attachment1', '/attachment2'] } });
  });
});

describe('hashchain/ (HashChainVerifierTest, HashChainBuilderTest)', () => {
  const file = (name: string) => readFileSync(join(VECTORS, 'hashchain', name));
  const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest();
  const verify = (prefix: string, resources: Record<string, string>, inputs: Record<string, ChainInput>, trustUnresolved = false) =>
    verifyHashChain(file(`${prefix}-hashchainresult.xml`), new Map(Object.entries(resources).map(([uri, name]) => [uri, file(name)])), new Map(Object.entries(inputs)), { trustUnresolved });
  const fails = (code: string, run: () => unknown) => expect(run).toThrow(expect.objectContaining({ fullCode: code }));

  it('HashChainVerifierTest.simpleCorrect: the message resolved from the resolver (no input digest) → OK', () => {
    expect(verify('hc-verifier1', { '/hashchain.xml': 'hc-verifier1-hashchain.xml', '/message.xml': 'hc-verifier1-message.xml' }, { '/message.xml': null })).toEqual({ verified: ['/message.xml'], unresolved: [] });
  });

  it('HashChainVerifierTest.simpleAttachedInput: input digest SHA-256("two") → OK; the message itself as input → OK', () => {
    expect(verify('hc-verifier1', { '/hashchain.xml': 'hc-verifier1-hashchain.xml' }, { '/message.xml': inputDigest('sha256', sha256('two')) }).verified).toEqual(['/message.xml']);
    expect(verify('hc-verifier1', { '/hashchain.xml': 'hc-verifier1-hashchain.xml' }, { '/message.xml': file('hc-verifier1-message.xml') }).verified).toEqual(['/message.xml']);
  });

  it('HashChainVerifierTest.simpleUnusedInputs: extra inputs /unused1, /unused2 → HashChainUnusedInputs (after the result is checked)', () => {
    fails('HashChainUnusedInputs', () => verify('hc-verifier1', { '/hashchain.xml': 'hc-verifier1-hashchain.xml' }, { '/message.xml': inputDigest('sha256', sha256('two')), '/unused1': null, '/unused2': null }));
  });

  it('HashChainVerifierTest.simpleDigestMismatch: input digest of the chain file itself, used as given → InvalidHashChain', () => {
    fails('InvalidHashChain', () => verify('hc-verifier1', { '/hashchain.xml': 'hc-verifier1-hashchain.xml' }, { '/message.xml': inputDigest('sha256', sha256(file('hc-verifier1-hashchain.xml'))) }));
    // Given as data instead, the DataRef's own digest is compared first.
    fails('InvalidHashChainRef', () => verify('hc-verifier1', { '/hashchain.xml': 'hc-verifier1-hashchain.xml' }, { '/message.xml': file('hc-verifier1-hashchain.xml') }));
    // An input digest of another algorithm is not used: the data is resolved instead.
    expect(verify('hc-verifier1', { '/hashchain.xml': 'hc-verifier1-hashchain.xml', '/message.xml': 'hc-verifier1-message.xml' }, { '/message.xml': inputDigest('sha512', Buffer.alloc(64)) }).verified).toEqual(['/message.xml']);
  });

  it('HashChainVerifierTest.attachments: message 0x0B and attachment1..3 0x0C..0x0E as SHA-256 input digests → OK', () => {
    const inputs = Object.fromEntries(['/message.xml', '/attachment1', '/attachment2', '/attachment3'].map((uri, i) => [uri, inputDigest('sha256', Buffer.from([11 + i]))]));
    expect(verify('hc-verifier2', { '/hashchain.xml': 'hc-verifier2-hashchain.xml' }, inputs).verified).toHaveLength(4);
  });

  it('HashChainVerifierTest.attachmentsCannotResolve: only the message given, the attachments trusted from the chain → OK; the proxies refuse the same', () => {
    const inputs = { '/message.xml': inputDigest('sha256', Buffer.from([11])) };
    expect(verify('hc-verifier2', { '/hashchain.xml': 'hc-verifier2-hashchain.xml' }, inputs, true)).toEqual({ verified: ['/message.xml'], unresolved: ['/attachment1', '/attachment2', '/attachment3'] });
    fails('InvalidReference', () => verify('hc-verifier2', { '/hashchain.xml': 'hc-verifier2-hashchain.xml' }, inputs));
  });

  it('HashChainVerifierTest.transforms: a DataRef with a C14N 1.0 transform digests the canonicalised message (comment removed) → OK', () => {
    expect(verify('hc-verifier3', { '/hashchain.xml': 'hc-verifier3-hashchain.xml', '/message.xml': 'hc-verifier3-message.xml' }, { '/message.xml': null }).verified).toEqual(['/message.xml']);
    expect(sha256('<foo>\n    \n    <bar>Hello, world!</bar>\n</foo>').toString('base64')).toBe('0UFU9VC0kgGH7pA7r6YSssn5/0rOdDuvqlbWfXxm/Do=');
  });

  it('HashChainVerifierTest.transformsError: the same digest without the transform → InvalidHashChainRef', () => {
    fails('InvalidHashChainRef', () => verify('hc-verifier3', { '/hashchain.xml': 'hc-verifier3-hashchain-invalid.xml', '/message.xml': 'hc-verifier3-message.xml' }, { '/message.xml': null }));
  });

  it('HashChainVerifierTest.simpleTwoHashChains: STEP0 names /hashchain2.xml#STEP1, resolved from the second file → OK', () => {
    const resources = { '/hashchain.xml': 'hc-verifier4-hashchain1.xml', '/hashchain2.xml': 'hc-verifier4-hashchain2.xml', '/message.xml': 'hc-verifier4-message.xml' };
    expect(verify('hc-verifier4', resources, { '/message.xml': null }).verified).toEqual(['/message.xml']);
    fails('InvalidReference', () => verify('hc-verifier4', { '/hashchain.xml': 'hc-verifier4-hashchain1.xml', '/message.xml': 'hc-verifier4-message.xml' }, { '/message.xml': null }));
  });

  it('HashChainVerifierTest.invalidSchema: <FooBar/> inside HashValue (hashchain.xsd) → exactly MalformedHashChain', () => {
    fails('MalformedHashChain', () => verify('hc-verifier3', { '/hashchain.xml': 'hc-verifier5-hashchain-invalid-schema.xml', '/message.xml': 'hc-verifier3-message.xml' }, { '/message.xml': null }));
  });

  it('hashchain.xsd rules, in code: each breach → MalformedHashChain', () => {
    const good = file('hc-verifier1-hashchain.xml').toString();
    const result = file('hc-verifier1-hashchainresult.xml');
    const check = (chain: string) => verifyHashChain(result, new Map<string, string | Buffer>([['/hashchain.xml', chain], ['/message.xml', file('hc-verifier1-message.xml')]]), new Map([['/message.xml', null]]));
    expect(check(good).verified).toEqual(['/message.xml']);
    // xs:base64Binary allows white space inside a value.
    expect(check(good.replace('P8TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM=', 'P8TM/nRYcOLA2Z9x\n  8w/wZWyN7dQcwdfT03aw2+aF4vM=')).verified).toEqual(['/message.xml']);
    const breaches = [
      good.replace('<ns2:HashStep id="STEP1">', '<ns2:HashStep id="STEP0">'), // xs:ID not unique
      good.replace('<ns2:HashStep id="STEP1">', '<ns2:HashStep id="1STEP">').replace('#STEP1', '#1STEP'), // not an NCName
      good.replace('<ns2:DataRef URI="/message.xml">', '<ns2:DataRef>'), // URI required
      good.replace('<ns2:DataRef URI="/message.xml">', '<ns2:DataRef URI="/message.xml" Extra="1">'), // no such attribute
      good.replace('<ns2:StepRef URI="#STEP1"/>', '<ns2:StepRef URI="#STEP1"><Transforms><Transform Algorithm="x"/></Transforms></ns2:StepRef>'), // StepRef has DigestMethod only
      good.replace('aF4vM=</DigestValue>', 'aF4vM=</DigestValue><DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'), // DigestMethod after DigestValue
      good.replace('P8TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM=', 'not base64!'), // xs:base64Binary
      good.replace('P8TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM=', 'P8TM-nRYcOLA2Z9x8w_wZWyN7dQcwdfT03aw2+aF4vM='), // base64url's letters
      good.replace('P8TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM=', 'P8TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM'), // padding left out
      good.replace('P8TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM=', 'P8TM\u202fnRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM='), // a character Buffer.from reads as '/'
      good.replace('P8TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM=', 'P8TM&#x202F;nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM='), // the same as a reference
      good.replace('P8TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM=', '\u01508TM/nRYcOLA2Z9x8w/wZWyN7dQcwdfT03aw2+aF4vM='), // Ő, read as 'P'
      good.replace('<ns2:DefaultDigestMethod', '<ns2:HashValue><DigestValue>AA==</DigestValue></ns2:HashValue><ns2:DefaultDigestMethod'), // order
      good.replace('</ns2:HashStep>', 'text</ns2:HashStep>'), // element-only content
      good.replace('<ns2:HashChain ', '<ns2:HashChainResult ').replace('</ns2:HashChain>', '</ns2:HashChainResult>'), // wrong root
      good.replace('#STEP1', '#STEP9'), // a step URI naming no step (the reference: Invalid hash step URI)
      good.replace('#STEP1', '#'), // no fragment
      good.replace('<ns2:HashValue>\n            <DigestValue>dpLD', '<ns2:StepRef URI="#STEP0"/><ns2:HashValue>\n            <DigestValue>dpLD'), // a cycle
    ];
    for (const chain of breaches) fails('MalformedHashChain', () => check(chain));
  });

  it('StepRef with or without a DigestValue (xrd before 0.2 wrote one): a stated digest must match the step', () => {
    const result = file('hc-verifier1-hashchainresult.xml');
    const resources = (chain: string) => new Map<string, string | Buffer>([['/hashchain.xml', chain], ['/message.xml', file('hc-verifier1-message.xml')]]);
    const withDigest = (value: string) => file('hc-verifier1-hashchain.xml').toString().replace('<ns2:StepRef URI="#STEP1"/>', `<ns2:StepRef URI="#STEP1"><DigestValue>${value}</DigestValue></ns2:StepRef>`);
    const step1 = file('hc-verifier1-hashchain.xml').toString();
    // The step's digest: SHA-256 of the DER of STEP1 ("one", then the message "two").
    const der = buildHashChains([[{ uri: '/a', digest: sha256('one') }, { uri: '/message.xml', digest: sha256('two') }]], '/x.xml', 'sha256');
    const stepDigest = /<DigestValue>([^<]+)<\/DigestValue>/.exec(der.result)![1]!;
    expect(verifyHashChain(result, resources(withDigest(stepDigest)), new Map([['/message.xml', null]])).verified).toEqual(['/message.xml']);
    expect(() => verifyHashChain(result, resources(withDigest(sha256('x').toString('base64'))), new Map([['/message.xml', null]]))).toThrow(expect.objectContaining({ fullCode: 'InvalidHashChainRef' }));
    expect(verifyHashChain(result, resources(step1), new Map([['/message.xml', null]])).verified).toEqual(['/message.xml']);
  });

  it('HashChainBuilderTest.hashValues: SHA-256 inputs one, two, three, four → top D7oIIfhf…; each chain verifies with its input', () => {
    const inputs = ['one', 'two', 'three', 'four'].map((s) => Buffer.from(s));
    const built = buildHashChains(inputs.map((data) => [{ uri: '/message.xml', data }]), '/hashchain.xml', 'sha256');
    expect(built.result).toContain('<DigestValue>D7oIIfhfp4ToT729xyx991PvstI5XvpW+d7oeWvXw8E=</DigestValue>');
    built.chains.forEach((chain, i) => {
      expect(verifyHashChain(built.result, new Map([['/hashchain.xml', chain]]), new Map([['/message.xml', inputs[i]!]])).verified).toEqual(['/message.xml']);
      // The reference writes StepRef without a DigestValue (hashchain.xsd has none).
      expect(chain).not.toMatch(/<ns2:StepRef[^/]*>\s*<DigestValue>/);
    });
    // hc-verifier1 is chain 1 of this tree: "two" next to SHA-256("one"), then the digest of the three/four step.
    expect(verify('hc-verifier1', { '/hashchain.xml': 'hc-verifier1-hashchain.xml' }, { '/message.xml': inputs[1]! }).verified).toEqual(['/message.xml']);
  });

  it('HashChainBuilderTest.singleInputAttachment: one input of 4 parts [0x0B, 0x0C, 0x0D, 0x0E] → top v3CBVgjK…', () => {
    const built = buildHashChains([[11, 12, 13, 14].map((b, i) => ({ uri: i === 0 ? '/message.xml' : `/attachment${i}`, digest: Buffer.from([b]) }))], '/hashchain.xml', 'sha256');
    expect(built.result).toContain('<DigestValue>v3CBVgjKmzZT5hnJ6vj6waqBazZe334tdEoNiL2oM5E=</DigestValue>');
    const inputs = new Map(['/message.xml', '/attachment1', '/attachment2', '/attachment3'].map((uri, i) => [uri, inputDigest('sha256', Buffer.from([11 + i]))]));
    expect(verifyHashChain(built.result, new Map([['/hashchain.xml', built.chains[0]!]]), inputs).verified).toHaveLength(4);
  });

  it('HashChainBuilderTest.noInputs / largeTreeBuilding: no inputs → no chain; for 2…40 messages every chain differs and verifies', () => {
    expect(() => buildHashChains([], '/hashchain.xml', 'sha256')).toThrow(expect.objectContaining({ code: 'InternalError' }));
    for (let n = 2; n <= 40; n++) {
      const inputs = Array.from({ length: n }, (_, i) => Buffer.from(String(i)));
      const built = buildHashChains(inputs.map((data, i) => (i % 3 === 0 ? [{ uri: '/message.xml', data }, { uri: '/attachment1', data: Buffer.from(`a${i}`) }] : [{ uri: '/message.xml', data }])), '/hashchain.xml', 'sha256');
      expect(new Set(built.chains).size).toBe(n);
      built.chains.forEach((chain, i) => {
        const parts = new Map<string, ChainInput>([['/message.xml', inputs[i]!]]);
        if (i % 3 === 0) parts.set('/attachment1', Buffer.from(`a${i}`));
        expect(verifyHashChain(built.result, new Map([['/hashchain.xml', chain]]), parts).verified).toHaveLength(parts.size);
      });
    }
  });
});
