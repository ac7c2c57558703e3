/**
 * The batch signer groups messages by key and certificate: one HSM signature per group. A key
 * given with a new certificate (a renewed one, before the old one's messages are out) must never
 * have its messages signed under the other certificate, and a certificate buffer changed after the
 * call must not move a queued message to another group. The signature value is a fixed buffer (the
 * signer's part is tested with SoftHSM); what is checked is which certificate each signature names
 * and how many signatures were asked for.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchSigner, type SigningKey } from '../../src/signature/message-signer.ts';
import { parseSignature } from '../../src/signature/verifier.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-batch-signer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
/** Two certificates of one key, as after a renewal. */
const certs = ['old', 'new'].map((cn) => Buffer.from(new X509Certificate(execFileSync('openssl', ['req', '-x509', '-key', join(dir, 'key.pem'), '-subj', `/CN=${cn}`, '-days', '1'])).raw));
const keyWith = (cert: Buffer): SigningKey => ({ keyId: 'k', algorithm: 'SHA512withRSA', cert, intermediateCerts: [], ocspResponses: [], batchSigningEnabled: true });

describe('BatchSigner queues', () => {
  it('messages of one key with two certificates are signed in two batches, each naming its own certificate', async () => {
    let signatures = 0;
    const signer = new BatchSigner(async () => {
      signatures++;
      return Buffer.alloc(256, 1);
    });
    const messages = Array.from({ length: 10 }, (_, i) => ({ cert: certs[i % 2]!, message: Buffer.from(`<m>${i}</m>`) }));
    const signed = await Promise.all(messages.map((m) => signer.sign(keyWith(m.cert), { message: m.message })));
    expect(signatures).toBe(2);
    signed.forEach((s, i) => expect(parseSignature(s.signatureXml).signingCert).toEqual(messages[i]!.cert));
  });

  it('a certificate buffer changed after the call changes neither the batch nor the certificate its message is signed with', async () => {
    const signer = new BatchSigner(async () => Buffer.alloc(256, 1));
    const cert = Buffer.from(certs[0]!);
    const first = signer.sign(keyWith(cert), { message: Buffer.from('<m>1</m>') });
    certs[1]!.copy(cert);
    const second = signer.sign(keyWith(Buffer.from(certs[0]!)), { message: Buffer.from('<m>2</m>') });
    const [a, b] = await Promise.all([first, second]);
    // One batch (a hash chain), signed with the certificate as it was when each message came.
    expect(a.signatureXml).toBe(b.signatureXml);
    expect(a.hashChain).toBeDefined();
    expect(parseSignature(a.signatureXml).signingCert).toEqual(certs[0]);
  });
});

describe('BatchSigner minIntervalMs', () => {
  /**
   * A signer on a hand-driven clock: each signature takes 5 ms, a wait moves the clock on. `first`
   * messages come at once, `during` more while the first signature is made. @returns the waits asked for
   */
  async function waitsOf(first: number, during: number): Promise<number[]> {
    let now = 0;
    const waits: number[] = [];
    const key = keyWith(certs[0]!);
    const sign = (text: string) => signer.sign(key, { message: Buffer.from(`<m>${text}</m>`) });
    const late: Promise<unknown>[] = [];
    const signer = new BatchSigner(
      async () => {
        now += 5;
        if (late.length === 0) for (let i = 0; i < during; i++) late.push(sign(`late ${i}`));
        return Buffer.alloc(256, 1);
      },
      {
        minIntervalMs: 20,
        monotonic: () => now,
        sleep: async (ms) => {
          waits.push(ms);
          now += ms;
        },
      },
    );
    await Promise.all(Array.from({ length: first }, (_, i) => sign(String(i))));
    await Promise.all(late);
    return waits;
  }

  it('a key whose last signature covered several messages waits out the interval before the next', async () => {
    // The second signature starts 20 ms after the first started, 15 ms after it ended.
    expect(await waitsOf(3, 2)).toEqual([15]);
  });

  it('a key signing lone messages is not held back', async () => {
    expect(await waitsOf(1, 1)).toEqual([]);
  });
});
