/**
 * The reference's ASiC containers (../shared/xroad-vectors) through our verifier and `xrd asic
 * verify`: the valid ones verify with their timestamp and OCSP; the broken ones fail with the
 * reference's codes.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { readAsic, verifyAsic } from '../../src/signature/asic.ts';
import { verifySignature } from '../../src/signature/verifier.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { VECTORS } from '../support/vectors.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const CONF = join(VECTORS, 'globalconf');
const container = (name: string) => readFileSync(join(VECTORS, 'asic', `${name}.asice`));

async function cli(name: string): Promise<{ code: number; json: Record<string, any> }> {
  try {
    const { stdout } = await promisify(execFile)('node', [XRD, 'asic', 'verify', join(VECTORS, 'asic', `${name}.asice`), '--conf', CONF, '--json']);
    return { code: 0, json: JSON.parse(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, json: JSON.parse(e.stdout) };
  }
}

describe('shared X-Road vectors', () => {
  const conf = loadGlobalConf(CONF);

  it('valid-signed-message verifies: signer, timestamp, OCSP as of the timestamp', async () => {
    const v = verifyAsic(container('valid-signed-message'), conf);
    expect(v.signer).toEqual(parseClientId('DEV/COM/4321/TestClient'));
    expect(v.hashChain).toBe(false);
    expect(v.timestamp?.tsaSubject).toBe('O=Test, CN=Test TSA');
    expect(v.validatedAt).toEqual(v.timestamp!.genTime);
    expect(v.ocsp).toHaveLength(1);
    const { code, json } = await cli('valid-signed-message');
    expect(code).toBe(0);
    expect(json).toMatchObject({ valid: true, signer: { id: 'DEV/COM/4321/TestClient' }, timestamp: { tsa: 'O=Test, CN=Test TSA', batch: false }, verifiedParts: ['/message.xml'] });
  });

  it('valid-signed-hashchain verifies; the attachment it does not carry is reported, not trusted silently', async () => {
    const v = verifyAsic(container('valid-signed-hashchain'), conf);
    expect(v.hashChain).toBe(true);
    expect(v.verifiedParts).toEqual(['/message.xml']);
    expect(v.unverifiedParts).toEqual(['/attachment1']);
    const { code, json } = await cli('valid-signed-hashchain');
    expect(code).toBe(0);
    expect(json.unverifiedParts).toEqual(['/attachment1']);
  });

  it('wrong-message fails with InvalidSignatureValue', async () => {
    expect(() => verifyAsic(container('wrong-message'), conf)).toThrow(expect.objectContaining({ fullCode: 'InvalidSignatureValue' }));
    const { code, json } = await cli('wrong-message');
    expect(code).toBe(1);
    expect(json).toMatchObject({ valid: false, error: { code: 'InvalidSignatureValue' } });
  });

  it('invalid-signed-hashchain fails with MalformedSignature.InvalidHashChainRef', async () => {
    expect(() => verifyAsic(container('invalid-signed-hashchain'), conf)).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChainRef' }));
    const { code, json } = await cli('invalid-signed-hashchain');
    expect(code).toBe(1);
    expect(json.error.code).toBe('MalformedSignature.InvalidHashChainRef');
  });

  it('a signature checked for another member fails the signer-name check', () => {
    const c = readAsic(container('valid-signed-message'));
    expect(() => verifySignature(c.signatureXml, { message: c.message }, { conf, signer: parseClientId('DEV/COM/1234/TestService') })).toThrow(
      expect.objectContaining({ code: 'IncorrectCertificate', message: expect.stringContaining('Name in certificate (DEV/COM/4321) does not match name in message (DEV/COM/1234/TestService)') }),
    );
  });

  it('a live message (checked now, all parts required) with the hash chain needs its attachment', () => {
    const c = readAsic(container('valid-signed-hashchain'));
    const parts = { message: c.message, hashChainResult: c.hashChainResult, hashChain: c.hashChain };
    expect(() => verifySignature(c.signatureXml, parts, { conf, signer: parseClientId('DEV/COM/4321') })).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidReference' }));
    expect(() => verifySignature(c.signatureXml, { ...parts, attachments: [Buffer.from('not the attachment')] }, { conf, signer: parseClientId('DEV/COM/4321') })).toThrow(
      expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChainRef' }),
    );
  });

  it('a container that is not an ASiC container is MalformedContainer', async () => {
    expect(() => verifyAsic(Buffer.from('PK\x05\x06 but nothing else'), conf)).toThrow(expect.objectContaining({ code: 'MalformedContainer' }));
  });
});
