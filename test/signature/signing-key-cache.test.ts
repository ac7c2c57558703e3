/**
 * The verifier keeps the public keys of the last 8 signing certificates (verifier.ts, publicKeyOf),
 * found by comparing certificates byte for byte. Its verdicts must follow each signature's own
 * certificate whatever was verified before: ten signers whose certificates have the same length
 * and issuer, verified in turn and again after they pushed each other out of the cache, and each
 * signer's signature value checked against another's certificate.
 */
import { X509Certificate, constants, generateKeyPairSync, privateEncrypt, sign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchSigner, type SigningKey } from '../../src/signature/message-signer.ts';
import { parseSignature, verifySignatureCore } from '../../src/signature/verifier.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-key-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHA512_DIGEST_INFO = Buffer.from('3051300d060960864801650304020305000440', 'hex');
const message = Buffer.from('<m>the same message for every signer</m>');

/** Ten signers, certificates self-signed with names of one length (so the certificates' lengths agree too). */
const signers = Array.from({ length: 10 }, (_, i) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = join(dir, `key${i}.pem`);
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const cert = Buffer.from(new X509Certificate(execFileSync('openssl', ['req', '-x509', '-key', keyFile, '-subj', `/CN=signer-${String(i).padStart(2, '0')}`, '-days', '1', '-set_serial', '1000'])).raw);
  const key: SigningKey = { keyId: `k${i}`, algorithm: 'SHA512withRSA', cert, intermediateCerts: [], ocspResponses: [], batchSigningEnabled: false };
  const batch = new BatchSigner(async (_keyId, _algorithm, digest) => privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA512_DIGEST_INFO, digest])));
  return { key, privateKey, sign: () => batch.sign(key, { message }) };
});

describe('the verifier’s cache of signing keys', () => {
  it('gives each signature its own certificate’s key, in turn and after eviction', async () => {
    const lengths = new Set(signers.map((s) => s.key.cert.length));
    expect(lengths.size).toBe(1);
    const signatures = await Promise.all(signers.map((s) => s.sign()));
    let verified = 0;
    for (let round = 0; round < 2; round++) {
      for (const [i, signed] of signatures.entries()) {
        expect(verifySignatureCore(parseSignature(signed.signatureXml), { message }).verifiedParts, `signer ${i}, round ${round}`).toEqual(['/message.xml']);
        verified++;
      }
    }
    expect(verified).toBe(20);
  });

  it('refuses a signature value made by another signer’s key, whichever keys are cached', async () => {
    const signatures = await Promise.all(signers.map((s) => s.sign()));
    const valueOf = (xml: string) => /<ds:SignatureValue[^>]*>([^<]*)</.exec(xml)![1]!;
    for (const [i, signed] of signatures.entries()) {
      const other = (i + 1) % signers.length;
      // Signer i's document with a value that signer i+1's key made over signer i's own SignedInfo: valid under
      // key i+1, so only key i, looked up by signer i's certificate, refuses it — even right after key i+1 was used.
      const forgedValue = sign('sha512', Buffer.from(parseSignature(signed.signatureXml).signedInfo), signers[other]!.privateKey).toString('base64');
      const forged = signed.signatureXml.replace(valueOf(signed.signatureXml), forgedValue);
      verifySignatureCore(parseSignature(signatures[other]!.signatureXml), { message });
      expect(() => verifySignatureCore(parseSignature(forged), { message }), `signer ${i}`).toThrow(expect.objectContaining({ code: 'InvalidSignatureValue' }));
    }
  });
});
