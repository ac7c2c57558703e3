import { describe, expect, it } from 'vitest';
import { pinLengthProblem, sessionPoolBound } from '../../src/token/hsm-token.ts';
import { capabilitiesOf, whyKeyUnsupported, whySignUnsupported, type MechanismSupport } from '../../src/token/mechanisms.ts';
import { ck, type TokenInfo } from '../../src/token/pkcs11-port.ts';
import { SIGN_ALGORITHMS } from '../../src/signerapi/algorithms.ts';

const sign = (min: number, max: number): MechanismSupport => ({ minKeySize: min, maxKeySize: max, flags: ck.CKF_SIGN | ck.CKF_VERIFY });
const keyGen = (min: number, max: number): MechanismSupport => ({ minKeySize: min, maxKeySize: max, flags: ck.CKF_GENERATE_KEY_PAIR });
const alg = (id: string) => SIGN_ALGORITHMS.get(id)!;

describe('token capabilities from its mechanism list', () => {
  // Shaped like tpm2-pkcs11 on swtpm: RSA up to 3072 bits without PSS, and elliptic curves.
  const tpm = new Map([
    [ck.CKM_RSA_PKCS_KEY_PAIR_GEN, keyGen(1024, 3072)],
    [ck.CKM_RSA_PKCS, sign(1024, 3072)],
    [ck.CKM_EC_KEY_PAIR_GEN, keyGen(256, 384)],
    [ck.CKM_ECDSA, sign(256, 384)],
  ]);

  it('lists the key types and algorithms it supports, and none it does not', () => {
    expect(capabilitiesOf(tpm)).toEqual({
      keySpecs: ['RSA-2048', 'RSA-3072', 'EC-P-256', 'EC-P-384'],
      signAlgorithms: ['SHA256withRSA', 'SHA384withRSA', 'SHA512withRSA', 'SHA256withECDSA', 'SHA384withECDSA', 'SHA512withECDSA'],
    });
    expect(capabilitiesOf(new Map())).toEqual({ keySpecs: [], signAlgorithms: [] });
  });

  it('says why a key type or signature is unsupported: missing mechanism, key size, or the mechanism not for that use', () => {
    expect(whyKeyUnsupported(tpm, { algorithm: 'RSA', bits: 4096 })).toBe("the token's CKM_RSA_PKCS_KEY_PAIR_GEN takes keys of 1024–3072 bits, not 4096");
    expect(whySignUnsupported(tpm, alg('SHA256withRSAandMGF1'), 2048)).toBe('the token does not offer CKM_RSA_PKCS_PSS');
    expect(whySignUnsupported(tpm, alg('SHA256withRSA'), 4096)).toBe("the token's CKM_RSA_PKCS takes keys of 1024–3072 bits, not 4096");
    const verifyOnly = new Map([[ck.CKM_ECDSA, { minKeySize: 256, maxKeySize: 384, flags: ck.CKF_VERIFY }]]);
    expect(whySignUnsupported(verifyOnly, alg('SHA256withECDSA'), 256)).toBe('the token offers CKM_ECDSA but not for signing');
    expect(whySignUnsupported(tpm, alg('SHA384withECDSA'), 384)).toBeUndefined();
  });

  it('a mechanism that states no key sizes (0 and 0) takes any', () => {
    expect(whyKeyUnsupported(new Map([[ck.CKM_EC_KEY_PAIR_GEN, keyGen(0, 0)]]), { algorithm: 'EC', curve: 'P-384' })).toBeUndefined();
  });
});

/** What the token says of its limits, in CK_TOKEN_INFO. */
const info = (fields: Partial<TokenInfo>) => fields as TokenInfo;

describe('operation sessions per token', () => {
  it('stay below the read/write sessions the token allows, one being the login session', () => {
    expect(sessionPoolBound(64, info({ maxRwSessionCount: 16 }))).toBe(15);
    expect(sessionPoolBound(64, info({ maxRwSessionCount: 1 }))).toBe(1);
    expect(sessionPoolBound(8, info({ maxRwSessionCount: 100 }))).toBe(8);
  });

  it('are as configured when the token states no limit (CK_EFFECTIVELY_INFINITE, CK_UNAVAILABLE_INFORMATION)', () => {
    expect(sessionPoolBound(64, info({ maxRwSessionCount: 0 }))).toBe(64);
    expect(sessionPoolBound(64, info({ maxRwSessionCount: 0xffffffff }))).toBe(64);
    expect(sessionPoolBound(64, info({ maxRwSessionCount: 0xfffffffe }))).toBe(64);
  });
});

describe('PIN lengths', () => {
  it("are checked against the token's stated range before the token sees them (opencryptoki counts a too-long PIN as a wrong try)", () => {
    const ock = info({ minPinLen: 4, maxPinLen: 8 });
    expect(pinLengthProblem(ock, 9)).toBe('the token takes PINs of 4 to 8 bytes, not 9');
    expect(pinLengthProblem(ock, 3)).toBe('the token takes PINs of 4 to 8 bytes, not 3');
    expect(pinLengthProblem(ock, 8)).toBeUndefined();
  });

  it('are not checked when the token states no range', () => {
    expect(pinLengthProblem(info({ minPinLen: 0, maxPinLen: 0 }), 300)).toBeUndefined();
    expect(pinLengthProblem(info({ minPinLen: 4, maxPinLen: 0xffffffff }), 300)).toBeUndefined();
  });
});
