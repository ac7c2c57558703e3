import { createHash, generateKeyPairSync, publicDecrypt, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { SIGN_ALGORITHMS, digestInfo, ecdsaDerToRaw, ecdsaRawToDer, resolveSignAlgorithm } from '../../src/token/sign-algorithms.ts';

describe('sign algorithms', () => {
  it('knows the X-Road RSA, RSA-PSS and ECDSA algorithm ids with SHA-256/384/512', () => {
    expect([...SIGN_ALGORITHMS.keys()].sort()).toEqual(
      ['SHA256withECDSA', 'SHA256withRSA', 'SHA256withRSAandMGF1', 'SHA384withECDSA', 'SHA384withRSA', 'SHA384withRSAandMGF1', 'SHA512withECDSA', 'SHA512withRSA', 'SHA512withRSAandMGF1'].sort(),
    );
  });

  it('refuses a digest of the wrong length with InvalidDigestLength', () => {
    const err = (() => {
      try {
        resolveSignAlgorithm('SHA512withRSA', Buffer.alloc(32));
      } catch (e) {
        return e as XrdError;
      }
    })();
    expect(err).toBeInstanceOf(XrdError);
    expect(err?.faultCode).toBe('Signer.InvalidDigestLength');
    expect(err?.message).toBe('Digest for SHA512withRSA must be 64 bytes, got 32');
  });

  it('refuses an unknown algorithm with UnsupportedSignAlgorithm', () => {
    expect(() => resolveSignAlgorithm('MD5withRSA', Buffer.alloc(16))).toThrowError(expect.objectContaining({ code: 'UnsupportedSignAlgorithm' }));
  });

  it('builds DigestInfo that a standard RSA signature contains', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const data = Buffer.from('message');
    for (const [name, node] of [
      ['SHA-256', 'sha256'],
      ['SHA-384', 'sha384'],
      ['SHA-512', 'sha512'],
    ] as const) {
      const signature = sign(node, data, privateKey);
      // Decrypting a PKCS#1 v1.5 signature with the public key yields exactly the DigestInfo.
      const recovered = publicDecrypt(publicKey, signature);
      expect(recovered.equals(digestInfo(name, createHash(node).update(data).digest()))).toBe(true);
    }
  });

  it('converts ECDSA between raw r||s and DER both ways, as OpenSSL encodes it', () => {
    for (const [curve, n] of [
      ['prime256v1', 32],
      ['secp384r1', 48],
    ] as const) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 50; i++) {
        const data = Buffer.from(`m${i}`);
        const raw = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        expect(raw.length).toBe(2 * n);
        const der = ecdsaRawToDer(raw);
        expect(verify('sha256', data, publicKey, der)).toBe(true);
        expect(ecdsaDerToRaw(der, n).equals(raw)).toBe(true);
      }
    }
  });
});

