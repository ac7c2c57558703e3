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
   * messages come at once, `during` more while the first signature is made.
   * @returns when each signature started
   */
  async function startsOf(first: number, during: number): Promise<number[]> {
    let now = 0;
    const starts: number[] = [];
    const key = keyWith(certs[0]!);
    const sign = (text: string) => signer.sign(key, { message: Buffer.from(`<m>${text}</m>`) });
    const late: Promise<unknown>[] = [];
    const signer = new BatchSigner(
      async () => {
        starts.push(now);
        now += 5;
        if (late.length === 0) for (let i = 0; i < during; i++) late.push(sign(`late ${i}`));
        return Buffer.alloc(256, 1);
      },
      {
        minIntervalMs: 20,
        monotonic: () => now,
        // The clock moves once the wait is over, as a timer's would: a signature that does not wait for it starts early.
        sleep: async (ms) => {
          await Promise.resolve();
          now += ms;
        },
      },
    );
    await Promise.all(Array.from({ length: first }, (_, i) => sign(String(i))));
    await Promise.all(late);
    return starts;
  }

  it('a key whose last signature covered several messages starts the next one the interval after the last started', async () => {
    expect(await startsOf(3, 2)).toEqual([0, 20]);
  });

  it('a key signing lone messages is not held back', async () => {
    expect(await startsOf(1, 1)).toEqual([0, 5]);
  });
});

describe('BatchSigner keys', () => {
  it('a batch is signed with the OCSP responses of the last message that came for its key, not those its queue began with', async () => {
    // A queue under load may never empty: the OCSP responses its first message brought would age
    // past the peers' freshness limit while the proxy's key cache had newer ones.
    const key = keyWith(certs[0]!);
    const stale = { ...key, ocspResponses: [Buffer.from('stale')] };
    const fresh = { ...key, ocspResponses: [Buffer.from('fresh')] };
    let later: Promise<{ signatureXml: string }> | undefined;
    const signer = new BatchSigner(async () => {
      later ??= signer.sign(fresh, { message: Buffer.from('<m>later</m>') });
      return Buffer.alloc(256, 1);
    });
    const first = await signer.sign(stale, { message: Buffer.from('<m>first</m>') });
    expect(parseSignature(first.signatureXml).ocspResponses).toEqual([Buffer.from('stale')]);
    expect(parseSignature((await later!).signatureXml).ocspResponses).toEqual([Buffer.from('fresh')]);
  });
});
