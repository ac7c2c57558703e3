/**
 * Parts too big to hold in memory (an attachment spooled to a file) are given as DigestSources:
 * signing and verifying take their digests through them and give the same signatures and results
 * as with the bytes. The signature value comes from an RSA key in this process (the signer
 * daemon's part, tested with SoftHSM elsewhere).
 */
import { X509Certificate, constants, createHash, generateKeyPairSync, privateEncrypt } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { digestOf, fileDigestSource, type DigestSource } from '../../src/signature/digest-source.ts';
import { BatchSigner, type SigningKey } from '../../src/signature/message-signer.ts';
import { parseSignature, verifySignatureCore } from '../../src/signature/verifier.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-digest-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
const cert = Buffer.from(new X509Certificate(execFileSync('openssl', ['req', '-x509', '-key', join(dir, 'key.pem'), '-subj', '/CN=digest-source', '-days', '1'])).raw);
const key: SigningKey = { keyId: 'k', algorithm: 'SHA512withRSA', cert, intermediateCerts: [], ocspResponses: [], batchSigningEnabled: false };
/** RSA PKCS#1 v1.5 over a SHA-512 DigestInfo, as the signer daemon signs digests. */
const signer = new BatchSigner(async (_keyId, _algorithm, digest) => privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from('3051300d060960864801650304020305000440', 'hex'), digest])));

describe('DigestSource parts', () => {
  const message = Buffer.from('<m>message</m>');
  const attachment = Buffer.alloc(3 * (1 << 20) + 17, 'attachment ');
  const file = join(dir, 'attachment.bin');
  writeFileSync(file, attachment);

  it('fileDigestSource reads the file in chunks to the same digest, once per algorithm', () => {
    const source = fileDigestSource(file);
    expect(source.size).toBe(attachment.length);
    expect(digestOf(source, 'sha512')).toEqual(createHash('sha512').update(attachment).digest());
    expect(source.digest('sha256')).toEqual(createHash('sha256').update(attachment).digest());
  });

  it('a message with a spooled attachment is signed exactly as with the bytes, and verifies either way', async () => {
    const fromFile = await signer.sign(key, { message, attachments: [fileDigestSource(file)] });
    const fromBytes = await signer.sign(key, { message, attachments: [attachment] });
    expect(fromFile.hashChain).toBe(fromBytes.hashChain);
    expect(fromFile.hashChainResult).toBe(fromBytes.hashChainResult);
    const chain = { hashChainResult: Buffer.from(fromFile.hashChainResult!), hashChain: Buffer.from(fromFile.hashChain!) };
    for (const part of [attachment, fileDigestSource(file)]) {
      expect(verifySignatureCore(parseSignature(fromFile.signatureXml), { message, attachments: [part], ...chain }).verifiedParts).toEqual(['/message.xml', '/attachment1']);
    }
    const wrong: DigestSource = { size: attachment.length, digest: (algorithm) => createHash(algorithm).update('something else').digest() };
    expect(() => verifySignatureCore(parseSignature(fromFile.signatureXml), { message, attachments: [wrong], ...chain })).toThrow(expect.objectContaining({ fullCode: 'MalformedSignature.InvalidHashChainRef' }));
  });

  it('a lone message given as a DigestSource is signed directly (/message.xml)', async () => {
    const signed = await signer.sign(key, { message: { size: message.length, digest: (a) => digestOf(message, a) } });
    expect(signed.hashChain).toBeUndefined();
    expect(verifySignatureCore(parseSignature(signed.signatureXml), { message }).verifiedParts).toEqual(['/message.xml']);
  });
});
