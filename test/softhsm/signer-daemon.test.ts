/**
 * The signer daemon over its Unix sockets, against each implementation in softhsm/implementations.ts
 * (SoftHSM and opencryptoki): the operations an administrator uses on the administration socket and
 * those the proxy uses on the proxy socket, bad input on the wire, load, and a restart. What each
 * socket refuses is test/softhsm/signer-sockets.test.ts.
 */
import { X509Certificate, createHash, createPublicKey, randomBytes, verify as nodeVerify } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { SignerClient, ocspResponsesOf } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { FrameDecoder, FrameKind, encodeFrame } from '../../src/signerapi/frame.ts';
import { IMPLEMENTATION_ROWS } from '../../softhsm/implementations.ts';
import type { Testbed } from '../../softhsm/testbed.ts';
import { SIGN_ALGORITHMS, ecdsaRawToDer } from '../../src/signerapi/algorithms.ts';
import { certIdOf, encodeOcspRequest } from '../../src/trust/ocsp.ts';
import { certSha1 } from '../../src/trust/ocsp-cache.ts';
import { createTestCa, opensslOcspRespond, opensslOk, pemToDer, spkiToPem, type TestCa } from '../support/openssl.ts';

const PIN = '246810';

describe.each(IMPLEMENTATION_ROWS)('$title', ({ impl }) => {
  let testbed: Testbed;
  let daemon: SignerDaemon;
  /** The administration socket, for what an administrator does. */
  let client: SignerClient;
  /** The proxy socket, for what a proxy asks (PROXY_OPERATIONS): signing, signing info, OCSP, token state. */
  let proxy: SignerClient;
  let ca: TestCa;
  let tokenId: string;

  async function start(): Promise<void> {
    daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni }, silentLogger());
    client = await SignerClient.connect(daemon.socketPath);
    proxy = await SignerClient.connect(daemon.proxySocketPath);
  }

  /** EC where the implementation has it; RSA keys stand in for EC ones where it has not. */
  const ec = impl.keySpecs.includes('EC-P-256') ? 'EC' : 'RSA';

  beforeAll(async () => {
    if (impl.unavailable) return;
    testbed = await impl.create();
    ca = createTestCa();
    await start();
    const token = await client.call('initToken', { label: 'daemon', soPin: impl.soPin, userPin: PIN });
    tokenId = token.tokenId;
    await client.call('activateToken', { token: tokenId, pin: PIN });
  });

  afterAll(async () => {
    client?.close();
    proxy?.close();
    await daemon?.close();
    testbed?.cleanup();
  });

  const sha = (alg: string, data: Buffer | string) => createHash(alg).update(data).digest();

  /** A signing key with an imported certificate, as an administrator sets one up (MEMBER_01 steps). */
  async function signingKeyWithCert(memberId: string, algorithm: 'RSA' | 'EC' = 'RSA') {
    const key = await client.call('generateKey', { token: tokenId, algorithm, usage: 'SIGNING' });
    const csr = await client.call('generateCsr', { keyId: key.keyId, memberId, subject: 'C=FI' });
    const certPem = ca.issue(csr.csr, 'nonRepudiation');
    const cert = await client.call('importCert', { cert: certPem, chain: [ca.certPem] });
    return { key, csr, cert, certPem };
  }

  describe.skipIf(impl.unavailable)('keys, CSRs and certificates', () => {
    it('a CSR signed on the token passes openssl req -verify with the subject asked for', async () => {
      const key = await client.call('generateKey', { token: tokenId, ...(ec === 'EC' ? { algorithm: 'EC', curve: 'P-384' } : { algorithm: 'RSA', bits: 3072 }), usage: 'AUTHENTICATION' });
      const csr = await client.call('generateCsr', { keyId: key.keyId, serverId: 'DEV/COM/1234/ss1', subject: 'C=FI, O=Acme Oy' });
      const path = join(testbed.dir, 'auth.csr');
      writeFileSync(path, csr.csr);
      expect(opensslOk(['req', '-in', path, '-verify', '-noout'])).toBe(true);
      expect(csr.subject).toBe('C=FI, O=Acme Oy, CN=ss1, serialNumber=DEV/ss1/COM');
      const der = await client.call('generateCsr', { keyId: key.keyId, serverId: 'DEV/COM/1234/ss1', format: 'DER' });
      writeFileSync(path, Buffer.from(der.csr, 'base64'));
      expect(opensslOk(['req', '-inform', 'DER', '-in', path, '-verify', '-noout'])).toBe(true);
    });

    it('imports a signing certificate for its key, keeps the chain, and serves it as member signing info', async () => {
      const { key, cert } = await signingKeyWithCert('DEV/COM/5555');
      expect(cert).toMatchObject({ keyId: key.keyId, memberId: 'DEV/COM/5555', status: 'registered', active: true });
      expect(cert.chain).toHaveLength(1);
      const keys = await client.call('listKeys', { token: tokenId });
      const listed = keys.find((k) => k.keyId === key.keyId)!;
      expect(listed.usage).toBe('SIGNING');
      expect(listed.csrs).toEqual([]); // the CSR is done with once its certificate is in
      const info = await proxy.call('memberSigningInfo', { memberId: 'DEV/COM/5555/SUBSYSTEM' });
      expect(info).toMatchObject({ keyId: key.keyId, algorithm: 'SHA512withRSA', certHash: cert.hash, batchSigningEnabled: true });
    });

    it('refuses certificates with the wrong key usage, for no key of ours, twice, or with a foreign chain', async () => {
      const key = await client.call('generateKey', { token: tokenId, algorithm: 'RSA', usage: 'SIGNING' });
      const csr = await client.call('generateCsr', { keyId: key.keyId, memberId: 'DEV/COM/6666' });
      await expect(client.call('importCert', { cert: ca.issue(csr.csr, 'digitalSignature') })).rejects.toMatchObject({ code: 'WrongCertUsage' });
      const good = ca.issue(csr.csr, 'nonRepudiation');
      await expect(client.call('importCert', { cert: good, chain: [createTestCa('Other CA').certPem] })).rejects.toMatchObject({ code: 'IncorrectCertificate' });
      await client.call('importCert', { cert: good });
      await expect(client.call('importCert', { cert: good })).rejects.toMatchObject({ code: 'CertAlreadyExists' });
      await expect(client.call('importCert', { cert: ca.certPem })).rejects.toMatchObject({ code: 'IncorrectCertificate' });
      await expect(client.call('importCert', { cert: 'not a certificate' })).rejects.toMatchObject({ code: 'IncorrectCertificate' });
      await expect(client.call('importCert', { cert: '%%%' })).rejects.toMatchObject({ code: 'MalformedRequest' });
    });

    it('moves an authentication certificate through the registration states and activation', async () => {
      const key = await client.call('generateKey', { token: tokenId, algorithm: 'RSA', usage: 'AUTHENTICATION' });
      const csr = await client.call('generateCsr', { keyId: key.keyId, serverId: 'DEV/COM/1234/ss1' });
      const cert = await client.call('importCert', { cert: ca.issue(csr.csr, 'digitalSignature,keyEncipherment', 'clientAuth,serverAuth') });
      expect(cert).toMatchObject({ status: 'saved', active: false });
      await expect(proxy.call('authKeyInfo', { serverId: 'DEV/COM/1234/ss1' })).rejects.toMatchObject({ code: 'KeyNotFound' });
      await client.call('setCertStatus', { hash: cert.hash, status: 'registration in progress' });
      await client.call('setCertStatus', { hash: cert.hash, status: 'registered' });
      await client.call('activateCert', { hash: cert.hash });
      const info = await proxy.call('authKeyInfo', { serverId: 'DEV/COM/1234/ss1' });
      expect(info).toMatchObject({ keyId: key.keyId, certHash: cert.hash });
      await expect(client.call('setCertStatus', { hash: cert.hash, status: 'bogus' as never })).rejects.toMatchObject({ code: 'MalformedRequest' });
      const disabled = await client.call('disableCert', { hash: cert.hash });
      expect(disabled.active).toBe(false);
    });

    it('stores and returns OCSP responses by certificate SHA-1, refusing what is not one', async () => {
      const { certPem } = await signingKeyWithCert('DEV/COM/5151');
      const cert = pemToDer(certPem);
      const response = opensslOcspRespond({ dir: ca.dir, caCertPath: ca.certPath, responderCertPath: ca.certPath, responderKeyPath: ca.keyPath, index: [{ serial: new X509Certificate(cert).serialNumber }], request: encodeOcspRequest([certIdOf(cert, pemToDer(ca.certPem))]) });
      const hash = certSha1(cert);
      await proxy.call('setOcspResponses', { certHashes: [hash.toUpperCase()], responses: [response.toString('base64')] });
      const got = await proxy.call('getOcspResponses', { certHashes: [hash, 'cd'.repeat(20)] });
      expect(got.responses).toEqual([response.toString('base64'), null]);
      await expect(proxy.call('setOcspResponses', { certHashes: [hash], responses: [randomBytes(100).toString('base64')] })).rejects.toMatchObject({ code: 'IncorrectValidationInfo' });
    });

    it('member signing info carries the cached OCSP responses of its certificate and chain: the proxy asks once (issue 16)', async () => {
      const { certPem } = await signingKeyWithCert('DEV/COM/5252');
      const cert = pemToDer(certPem);
      const caDer = pemToDer(ca.certPem);
      const before = await proxy.call('memberSigningInfo', { memberId: 'DEV/COM/5252' });
      // The test CA's own certificate has no response cached; the member's has none yet either.
      expect(before.ocspResponses).toEqual([null, null]);
      const response = opensslOcspRespond({ dir: ca.dir, caCertPath: ca.certPath, responderCertPath: ca.certPath, responderKeyPath: ca.keyPath, index: [{ serial: new X509Certificate(cert).serialNumber }], request: encodeOcspRequest([certIdOf(cert, caDer)]) });
      await proxy.call('setOcspResponses', { certHashes: [certSha1(cert)], responses: [response.toString('base64')] });
      const info = await proxy.call('memberSigningInfo', { memberId: 'DEV/COM/5252' });
      expect(info.ocspResponses).toEqual([response.toString('base64'), null]);
      // Read from the answer, with no second request: a client that counts its calls sees none.
      let asked = 0;
      const counting = { call: ((...args: Parameters<SignerClient['call']>) => (asked++, proxy.call(...args))) as SignerClient['call'] };
      expect(await ocspResponsesOf(counting, info, [certSha1(cert)])).toEqual([response]);
      expect(asked).toBe(0);
      // One the answer names without a response is asked again (the caller may hold the info a while).
      expect(await ocspResponsesOf(counting, info, [certSha1(cert), certSha1(caDer)])).toEqual([response, undefined]);
      expect(asked).toBe(1);
      // A certificate the answer does not cover (a CA from global configuration) is asked for.
      const other = pemToDer(createTestCa('Other CA').certPem);
      expect(await ocspResponsesOf(counting, info, [certSha1(cert), certSha1(other)])).toEqual([response, undefined]);
      expect(asked).toBe(2);
      // An answer without the field: everything is asked for.
      const { ocspResponses: _, ...old } = info;
      expect(await ocspResponsesOf(counting, old, [certSha1(cert)])).toEqual([response]);
      expect(asked).toBe(3);
    });
  });

  const SPECS = [
    { algorithm: 'RSA', bits: 2048 },
    { algorithm: 'RSA', bits: 3072 },
    { algorithm: 'RSA', bits: 4096 },
    { algorithm: 'EC', curve: 'P-256' },
    { algorithm: 'EC', curve: 'P-384' },
  ] as const;

  describe.skipIf(impl.unavailable)('signing over the socket', () => {
    for (const spec of SPECS) {
      const name = spec.algorithm === 'RSA' ? `RSA-${spec.bits}` : spec.curve;
      if (!impl.keySpecs.includes(spec.algorithm === 'RSA' ? name : `EC-${name}`)) {
        it(`${name}: ${impl.name} cannot generate it, which the daemon answers with UnsupportedKeyAlgorithm`, async () => {
          await expect(client.call('generateKey', { token: tokenId, ...spec, usage: 'SIGNING' })).rejects.toMatchObject({
            code: 'UnsupportedKeyAlgorithm',
            faultCode: 'Signer.UnsupportedKeyAlgorithm',
            message: expect.stringContaining('the token does not offer CKM_EC_KEY_PAIR_GEN'),
          });
        });
        continue;
      }
      it(`${name}: every matching algorithm signs a digest that openssl verifies`, async () => {
        const key = await client.call('generateKey', { token: tokenId, ...spec, usage: 'SIGNING' });
        const pub = spkiToPem(Buffer.from(key.publicKey!, 'base64'), testbed.dir, key.keyId);
        const message = randomBytes(300);
        const data = join(testbed.dir, `${key.keyId}.data`);
        writeFileSync(data, message);
        writeFileSync(join(testbed.dir, 'other'), 'other');
        for (const alg of SIGN_ALGORITHMS.values()) {
          if (alg.keyAlgorithm !== spec.algorithm) continue;
          const hash = alg.digest;
          const digest = sha(hash, message).toString('base64');
          if (!impl.signAlgorithms.includes(alg.id)) {
            await expect(proxy.call('sign', { keyId: key.keyId, algorithm: alg.id, digest }), alg.id).rejects.toMatchObject({ code: 'UnsupportedSignAlgorithm' });
            await expect(proxy.call('signBinary', { keyId: key.keyId, algorithm: alg.id, digest: sha(hash, message) }), alg.id).rejects.toMatchObject({ code: 'UnsupportedSignAlgorithm' });
            continue;
          }
          const sigFile = join(testbed.dir, `${key.keyId}.${alg.id}.sig`);
          const { signature } = await proxy.call('sign', { keyId: key.keyId, algorithm: alg.id, digest });
          writeFileSync(sigFile, Buffer.from(signature, 'base64'));
          const pss = alg.padding === 'PSS' ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', '-sigopt', `rsa_mgf1_md:${hash}`] : [];
          expect(opensslOk(['dgst', `-${hash}`, '-verify', pub, ...pss, '-signature', sigFile, data]), `${name} ${alg.id}`).toBe(true);
          expect(opensslOk(['dgst', `-${hash}`, '-verify', pub, ...pss, '-signature', sigFile, join(testbed.dir, 'other')])).toBe(false);
          // The binary body (issue 16) signs the same way.
          writeFileSync(sigFile, await proxy.call('signBinary', { keyId: key.keyId, algorithm: alg.id, digest: sha(hash, message) }));
          expect(opensslOk(['dgst', `-${hash}`, '-verify', pub, ...pss, '-signature', sigFile, data]), `${name} ${alg.id} signBinary`).toBe(true);
          if (alg.padding === 'ECDSA') {
            const raw = Buffer.from((await proxy.call('sign', { keyId: key.keyId, algorithm: alg.id, digest, format: 'raw' })).signature, 'base64');
            const rawBinary = await proxy.call('signBinary', { keyId: key.keyId, algorithm: alg.id, digest: sha(hash, message), raw: true });
            expect(raw.length).toBe(spec.algorithm === 'EC' && spec.curve === 'P-384' ? 96 : 64);
            expect(rawBinary.length).toBe(raw.length);
            writeFileSync(sigFile, ecdsaRawToDer(raw));
            expect(opensslOk(['dgst', `-${hash}`, '-verify', pub, '-signature', sigFile, data])).toBe(true);
            writeFileSync(sigFile, ecdsaRawToDer(rawBinary));
            expect(opensslOk(['dgst', `-${hash}`, '-verify', pub, '-signature', sigFile, data])).toBe(true);
          }
        }
      });
    }

    it('answers 600 requests pipelined on one connection, past its in-flight bound', async () => {
      const { key } = await signingKeyWithCert('DEV/COM/6060', ec);
      const results = await Promise.all(Array.from({ length: 600 }, (_, i) => proxy.call('sign', { keyId: key.keyId, algorithm: `SHA256with${ec === 'EC' ? 'ECDSA' : 'RSA'}`, digest: sha('sha256', `p${i}`).toString('base64') })));
      expect(results).toHaveLength(600);
    });

    it('a request past its deadline gets RequestTimeout and the daemon goes on serving', async () => {
      await expect(client.call('generateKey', { token: tokenId, algorithm: 'RSA', bits: 4096 }, { timeoutMs: 5 })).rejects.toMatchObject({ code: 'RequestTimeout' });
      expect((await client.call('health', {})).status).toBe('ok');
    });

    it('1,000 concurrent sign requests from four clients all return verifying signatures', async () => {
      const rsa = await signingKeyWithCert('DEV/COM/7777', 'RSA');
      const other = await signingKeyWithCert('DEV/COM/8888', ec);
      const keys = [rsa, other].map((k) => ({ keyId: k.key.keyId, pub: createPublicKey(k.certPem), alg: k.key.algorithm === 'RSA' ? 'SHA256withRSA' : 'SHA256withECDSA' }));
      const clients = await Promise.all([1, 2, 3, 4].map(() => SignerClient.connect(daemon.proxySocketPath)));
      // Absent where the library signs with C_SignAsync (p11-kit's client, for opencryptoki).
      const signedOn = async () => (await client.call('health', {})).modules[0]!.signedOn;
      const before = await signedOn();
      if (impl.name === 'SoftHSM') expect(before).toBeDefined();
      const jobs = Array.from({ length: 1000 }, (_, i) => {
        const key = keys[i % 2]!;
        const message = Buffer.from(`message ${i}`);
        return clients[i % 4]!.call('sign', { keyId: key.keyId, algorithm: key.alg, digest: sha('sha256', message).toString('base64') }).then((r) => nodeVerify('sha256', message, key.pub, Buffer.from(r.signature, 'base64')));
      });
      const results = await Promise.all(jobs);
      clients.forEach((c) => c.close());
      expect(results.filter(Boolean)).toHaveLength(1000);
      // health counts each, wherever it was made (which is loop-signing.test.ts's and token-layer.test.ts's to check).
      const after = await signedOn();
      if (before && after) {
        expect(after.loop - before.loop + after.threads - before.threads).toBe(1000);
        expect(after.threads - before.threads).toBeGreaterThan(500);
      }
    });

    it('verify answers for a key id and for a certificate, and says false for a wrong signature', async () => {
      const { key, certPem } = await signingKeyWithCert('DEV/COM/9999', ec);
      const algorithm = ec === 'EC' ? 'SHA512withECDSA' : 'SHA512withRSA';
      const digest = sha('sha512', 'x').toString('base64');
      const { signature } = await proxy.call('sign', { keyId: key.keyId, algorithm, digest });
      expect(await client.call('verify', { keyId: key.keyId, algorithm, digest, signature })).toEqual({ valid: true });
      expect(await client.call('verify', { cert: certPem, algorithm, digest, signature })).toEqual({ valid: true });
      const other = sha('sha512', 'y').toString('base64');
      expect(await client.call('verify', { keyId: key.keyId, algorithm, digest: other, signature })).toEqual({ valid: false });
    });

    it('unknown key, wrong digest length and unknown algorithm get their codes', async () => {
      const { key } = await signingKeyWithCert('DEV/COM/1010');
      await expect(proxy.call('sign', { keyId: 'AB'.repeat(20), algorithm: 'SHA256withRSA', digest: sha('sha256', 'a').toString('base64') })).rejects.toMatchObject({ code: 'KeyNotFound', faultCode: 'Signer.KeyNotFound' });
      await expect(proxy.call('sign', { keyId: key.keyId, algorithm: 'SHA512withRSA', digest: sha('sha256', 'a').toString('base64') })).rejects.toMatchObject({ code: 'InvalidDigestLength' });
      await expect(proxy.call('sign', { keyId: key.keyId, algorithm: 'SHA1withDSA', digest: sha('sha256', 'a').toString('base64') })).rejects.toMatchObject({ code: 'UnsupportedSignAlgorithm' });
      await expect(proxy.call('sign', { keyId: key.keyId, algorithm: 'SHA256withRSA' } as never)).rejects.toMatchObject({ code: 'MalformedRequest' });
    });

    it('a wrong PIN is a coded error with the token status, and the token can be logged in again', async () => {
      const other = await client.call('initToken', { label: 'pin-test', soPin: impl.soPin, userPin: '13579' });
      await expect(client.call('activateToken', { token: other.tokenId, pin: '00000' })).rejects.toMatchObject({ code: 'PinIncorrect' });
      expect((await client.call('getToken', { token: 'pin-test' })).status).toBe('USER_PIN_COUNT_LOW');
      const ok = await client.call('activateToken', { token: 'pin-test', pin: '13579' });
      expect(ok).toMatchObject({ status: 'OK', active: true });
      const audit = readFileSync(join(testbed.dataDir, 'audit.log'), 'utf8');
      expect(audit).toContain('"event":"activateToken"');
      expect(audit).toContain('"result":"failure","error":"Signer.PinIncorrect"');
      expect(audit).not.toContain('13579');
      expect(audit).not.toContain(PIN);
    });
  });

  /** A raw connection for frames a well-behaved client would never send. */
  function rawConnection() {
    const socket = createConnection(daemon.socketPath);
    const decoder = new FrameDecoder();
    const frames: { requestId: number; kind: number; body: string }[] = [];
    let closed = false;
    socket.on('data', (d) => frames.push(...decoder.push(d).map((f) => ({ requestId: f.requestId, kind: f.kind, body: f.body.toString() }))));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    return { socket, frames, isClosed: () => closed, until };
  }

  describe.skipIf(impl.unavailable)('bad frames', () => {
    it('unknown operation, bad JSON and another protocol version are answered; the connection stays', async () => {
      const c = rawConnection();
      c.socket.write(encodeFrame(FrameKind.Request, 7, 999, 0, '{}'));
      c.socket.write(encodeFrame(FrameKind.Request, 8, 1, 0, '{not json'));
      const v2 = encodeFrame(FrameKind.Request, 9, 1, 0, '{}');
      v2.writeUInt8(2, 4);
      c.socket.write(v2);
      c.socket.write(encodeFrame(FrameKind.Request, 10, 1, 0, '{}'));
      await c.until(() => c.frames.length === 4);
      const byId = new Map(c.frames.map((f) => [f.requestId, f]));
      expect(JSON.parse(byId.get(7)!.body).code).toBe('UnknownOperation');
      expect(JSON.parse(byId.get(8)!.body).code).toBe('MalformedRequest');
      expect(JSON.parse(byId.get(9)!.body).code).toBe('UnsupportedVersion');
      expect(byId.get(10)!.kind).toBe(FrameKind.Response);
      expect(c.isClosed()).toBe(false);
      c.socket.destroy();
    });

    it('garbage and oversized frames close that connection only; truncated ones hold nothing up', async () => {
      const truncated = rawConnection();
      truncated.socket.write(encodeFrame(FrameKind.Request, 1, 1, 0, '{}').subarray(0, 9));
      const oversized = rawConnection();
      const big = Buffer.alloc(4);
      big.writeUInt32BE(50 * 1024 * 1024);
      oversized.socket.write(big);
      const garbage = rawConnection();
      garbage.socket.write(Buffer.from([0, 0, 0, 1, 0xff, 0xff, 0xff]));
      await oversized.until(oversized.isClosed);
      await garbage.until(garbage.isClosed);
      expect(oversized.isClosed()).toBe(true);
      expect(JSON.parse(oversized.frames[0]!.body).code).toBe('FrameTooLarge');
      expect(garbage.isClosed()).toBe(true);
      // Meanwhile the well-behaved client is served as usual.
      const { key } = await signingKeyWithCert('DEV/COM/2020');
      const r = await proxy.call('sign', { keyId: key.keyId, algorithm: 'SHA256withRSA', digest: sha('sha256', 'z').toString('base64') });
      expect(Buffer.from(r.signature, 'base64')).toHaveLength(256);
      truncated.socket.destroy();
    });
  });

  describe.skipIf(impl.unavailable)('administration', () => {
    it('changes a PIN: the old one stops working, the new one logs in', async () => {
      const t = await client.call('initToken', { label: 'change-pin', soPin: impl.soPin, userPin: '1111' });
      await client.call('activateToken', { token: t.tokenId, pin: '1111' });
      await expect(client.call('changePin', { token: t.tokenId, oldPin: '9999', newPin: '2222' })).rejects.toMatchObject({ code: 'PinIncorrect' });
      await client.call('changePin', { token: t.tokenId, oldPin: '1111', newPin: '2222' });
      await client.call('deactivateToken', { token: t.tokenId });
      await expect(client.call('activateToken', { token: t.tokenId, pin: '1111' })).rejects.toMatchObject({ code: 'PinIncorrect' });
      expect((await client.call('activateToken', { token: t.tokenId, pin: '2222' })).active).toBe(true);
    });

    it('refuses a token label longer than PKCS#11 allows, and an unknown token', async () => {
      await expect(client.call('initToken', { label: 'x'.repeat(33), soPin: impl.soPin, userPin: '1111' })).rejects.toMatchObject({ code: 'InvalidIdentifier' });
      await expect(client.call('activateToken', { token: 'no-such-token', pin: '1111' })).rejects.toMatchObject({ code: 'TokenNotFound' });
    });

    it('deletes a key from the token and the keyconf, with its certificates', async () => {
      const { key, cert } = await signingKeyWithCert('DEV/COM/4040');
      await client.call('deleteKey', { keyId: key.keyId });
      expect((await client.call('listKeys', { token: tokenId })).map((k) => k.keyId)).not.toContain(key.keyId);
      await expect(client.call('activateCert', { hash: cert.hash })).rejects.toMatchObject({ code: 'CertNotFound' });
      await expect(proxy.call('sign', { keyId: key.keyId, algorithm: 'SHA256withRSA', digest: sha('sha256', 'a').toString('base64') })).rejects.toMatchObject({ code: 'KeyNotFound' });
      await expect(client.call('deleteKey', { keyId: key.keyId })).rejects.toMatchObject({ code: 'KeyNotFound' });
    });
  });

  describe.skipIf(impl.unavailable)('token status', () => {
    it(`getToken tells what the token's mechanisms support: ${impl.keySpecs.join(', ')}`, async () => {
      expect(await proxy.call('getToken', { token: tokenId })).toMatchObject({ keySpecs: impl.keySpecs, signAlgorithms: impl.signAlgorithms });
    });

    it.skipIf(!impl.locksPin)(
      `wrong PINs count down to a lock: PinIncorrect, PinFinalTry, PinLocked, each status shown by getToken and audited${impl.locksPin ? '' : ` (skipped: ${impl.name} never locks a PIN)`}`,
      async () => {
        const t = await client.call('initToken', { label: 'lock-test', soPin: impl.soPin, userPin: '8642' });
        for (const [code, status] of [
          ['PinIncorrect', 'USER_PIN_COUNT_LOW'],
          ['PinFinalTry', 'USER_PIN_FINAL_TRY'],
          ['PinLocked', 'USER_PIN_LOCKED'],
        ]) {
          await expect(client.call('activateToken', { token: t.tokenId, pin: '1357' })).rejects.toMatchObject({ code, faultCode: `Signer.${code}` });
          expect(await client.call('getToken', { token: t.tokenId })).toMatchObject({ status, active: false });
        }
        await expect(client.call('activateToken', { token: t.tokenId, pin: '8642' })).rejects.toMatchObject({ code: 'PinLocked' });
        const audit = readFileSync(join(testbed.dataDir, 'audit.log'), 'utf8');
        for (const code of ['PinFinalTry', 'PinLocked']) expect(audit).toContain(`"result":"failure","error":"Signer.${code}"`);
      },
    );
  });

  describe.skipIf(impl.unavailable)('socket access', () => {
    it('listens with mode 0660 for a named group (e.g. the proxy user\'s) when asked', async () => {
      const gid = 65534; // nogroup: any group other than ours proves the socket was handed over
      const other = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni, socketPath: join(testbed.dir, 'group.sock'), socketMode: 0o660, socketGroup: gid }, silentLogger());
      try {
        const st = statSync(other.socketPath);
        expect(st.mode & 0o777).toBe(0o660);
        expect(st.gid).toBe(gid);
      } finally {
        await other.close();
      }
    });
  });

  describe.skipIf(impl.unavailable)('restart', () => {
    it('keeps keys, certificates and their states; the token waits for its PIN again', async () => {
      const { key, cert } = await signingKeyWithCert('DEV/COM/3030');
      await client.call('setCertStatus', { hash: cert.hash, status: 'deletion in progress' });
      await client.call('disableCert', { hash: cert.hash });
      client.close();
      proxy.close();
      await daemon.close();
      await start();
      const token = await client.call('getToken', { token: tokenId });
      expect(token.active).toBe(false);
      const listed = token.keys!.find((k) => k.keyId === key.keyId)!;
      expect(listed).toMatchObject({ usage: 'SIGNING', available: false });
      expect(listed.certs[0]).toMatchObject({ hash: cert.hash, status: 'deletion in progress', active: false, memberId: 'DEV/COM/3030' });
      await expect(proxy.call('sign', { keyId: key.keyId, algorithm: 'SHA256withRSA', digest: sha('sha256', 'a').toString('base64') })).rejects.toMatchObject({ code: 'TokenNotActive' });
      await client.call('activateToken', { token: tokenId, pin: PIN });
      const r = await proxy.call('sign', { keyId: key.keyId, algorithm: 'SHA256withRSA', digest: sha('sha256', 'a').toString('base64') });
      expect(nodeVerify('sha256', Buffer.from('a'), new X509Certificate(Buffer.from(cert.cert, 'base64')).publicKey, Buffer.from(r.signature, 'base64'))).toBe(true);
    });
  });
});
