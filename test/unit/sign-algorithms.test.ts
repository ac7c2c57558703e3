import { createHash, generateKeyPairSync, publicDecrypt, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import pkcs11js from 'pkcs11js';
import { SIGN_ALGORITHMS, SIGN_ALGORITHMS_BY_URI, SIGN_ALGORITHMS_BY_WIRE_ID, SIGN_ALGORITHM_TABLE, digestInfo, ecdsaDerToRaw, ecdsaRawToDer, resolveSignAlgorithm } from '../../src/signerapi/algorithms.ts';

describe('sign algorithms', () => {
  it('knows the X-Road RSA, RSA-PSS and ECDSA algorithm ids with SHA-256/384/512', () => {
    expect([...SIGN_ALGORITHMS.keys()].sort()).toEqual(
      ['SHA256withECDSA', 'SHA256withRSA', 'SHA256withRSAandMGF1', 'SHA384withECDSA', 'SHA384withRSA', 'SHA384withRSAandMGF1', 'SHA512withECDSA', 'SHA512withRSA', 'SHA512withRSAandMGF1'].sort(),
    );
  });

  it('one table: every id, URI and wire id names one row; the mechanism is the PKCS#11 one for its padding', () => {
    expect(SIGN_ALGORITHMS.size).toBe(SIGN_ALGORITHM_TABLE.length);
    expect(SIGN_ALGORITHMS_BY_URI.size).toBe(SIGN_ALGORITHM_TABLE.length);
    expect(SIGN_ALGORITHMS_BY_WIRE_ID.size).toBe(SIGN_ALGORITHM_TABLE.length);
    const mechanism = { PKCS1: pkcs11js.CKM_RSA_PKCS, PSS: pkcs11js.CKM_RSA_PKCS_PSS, ECDSA: pkcs11js.CKM_ECDSA };
    for (const a of SIGN_ALGORITHM_TABLE) {
      expect(a.mechanism).toBe(mechanism[a.padding]);
      expect(a.digestLength * 8).toBe(Number(a.digest.slice(3)));
      expect(a.id.startsWith(`SHA${a.digest.slice(3)}with`)).toBe(true);
    }
    // XML-DSig URIs as RFC 6931 and the reference's CryptoUtils name them.
    expect(SIGN_ALGORITHMS_BY_URI.get('http://www.w3.org/2001/04/xmldsig-more#rsa-sha512')?.id).toBe('SHA512withRSA');
    expect(SIGN_ALGORITHMS_BY_URI.get('http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1')?.id).toBe('SHA256withRSAandMGF1');
    expect(SIGN_ALGORITHMS_BY_URI.get('http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384')?.id).toBe('SHA384withECDSA');
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
    for (const node of ['sha256', 'sha384', 'sha512'] as const) {
      const signature = sign(node, data, privateKey);
      // Decrypting a PKCS#1 v1.5 signature with the public key yields exactly the DigestInfo.
      const recovered = publicDecrypt(publicKey, signature);
      expect(recovered.equals(digestInfo(node, createHash(node).update(data).digest()))).toBe(true);
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

