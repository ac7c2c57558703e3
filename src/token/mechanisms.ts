/**
 * What a token can do, from its mechanism list (C_GetMechanismList + C_GetMechanismInfo): which of
 * the signer's signature algorithms and key types it supports, and why not when it does not.
 * Tokens differ here (opencryptoki's soft token has no elliptic curves, a TPM no RSA-4096 or
 * RSA-PSS), so the token layer asks before it generates or signs and answers a coded error instead
 * of passing the token's CKR_MECHANISM_INVALID on. Pure functions over the table, except `read`.
 */
import type { KeySpec } from './hsm-token.ts';
import { ck, type Handle, type Pkcs11Port } from './pkcs11-port.ts';
import { CURVES } from './public-keys.ts';
import { SIGN_ALGORITHMS, type KeyAlgorithm, type SignAlgorithm } from '../signerapi/algorithms.ts';

export interface MechanismSupport {
  /** Key sizes in bits (EC: of the curve); 0 and 0 when the token does not say. */
  readonly minKeySize: number;
  readonly maxKeySize: number;
  /** CKF_SIGN, CKF_GENERATE_KEY_PAIR, … */
  readonly flags: number;
}

export type Mechanisms = ReadonlyMap<number, MechanismSupport>;

/** The key types the signer generates, in the order they are listed. */
export const KEY_SPECS: readonly KeySpec[] = [
  { algorithm: 'RSA', bits: 2048 },
  { algorithm: 'RSA', bits: 3072 },
  { algorithm: 'RSA', bits: 4096 },
  { algorithm: 'EC', curve: 'P-256' },
  { algorithm: 'EC', curve: 'P-384' },
];

/** `RSA-2048`, `EC-P-256`: the names key listings use for algorithm and size. */
export function keySpecName(spec: KeySpec): string {
  return spec.algorithm === 'RSA' ? `RSA-${spec.bits}` : `EC-${spec.curve}`;
}

/** Key size as mechanism infos give it: RSA modulus bits, EC field bits. */
function keyBits(spec: KeySpec): number {
  return spec.algorithm === 'RSA' ? spec.bits : CURVES[spec.curve].coordinateLength * 8;
}

const KEY_PAIR_MECHANISM: Record<KeyAlgorithm, number> = { RSA: ck.CKM_RSA_PKCS_KEY_PAIR_GEN, EC: ck.CKM_EC_KEY_PAIR_GEN };

const MECHANISM_NAMES = new Map<number, string>([
  [ck.CKM_RSA_PKCS, 'CKM_RSA_PKCS'],
  [ck.CKM_RSA_PKCS_PSS, 'CKM_RSA_PKCS_PSS'],
  [ck.CKM_ECDSA, 'CKM_ECDSA'],
  [ck.CKM_RSA_PKCS_KEY_PAIR_GEN, 'CKM_RSA_PKCS_KEY_PAIR_GEN'],
  [ck.CKM_EC_KEY_PAIR_GEN, 'CKM_EC_KEY_PAIR_GEN'],
]);

/**
 * The token's mechanisms. Asked once per slot and kept by the caller: the list belongs to the
 * token and does not change while it is in its slot.
 */
export function readMechanisms(port: Pkcs11Port, slot: Handle): Mechanisms {
  const table = new Map<number, MechanismSupport>();
  for (const type of port.C_GetMechanismList(slot)) {
    const info = port.C_GetMechanismInfo(slot, type);
    table.set(type, { minKeySize: info.minKeySize, maxKeySize: info.maxKeySize, flags: info.flags });
  }
  return table;
}

/** Why `mechanism` cannot do `flag` with a key of `bits`, or undefined when it can. */
function whyNot(mechanisms: Mechanisms, mechanism: number, flag: number, bits: number | undefined): string | undefined {
  const name = MECHANISM_NAMES.get(mechanism) ?? `mechanism 0x${mechanism.toString(16)}`;
  const support = mechanisms.get(mechanism);
  if (!support) return `the token does not offer ${name}`;
  if (!(support.flags & flag)) return `the token offers ${name} but not for ${flag === ck.CKF_SIGN ? 'signing' : 'key pair generation'}`;
  const bounded = support.minKeySize !== 0 || support.maxKeySize !== 0;
  if (bits !== undefined && bounded && (bits < support.minKeySize || bits > support.maxKeySize)) {
    return `the token's ${name} takes keys of ${support.minKeySize}–${support.maxKeySize} bits, not ${bits}`;
  }
  return undefined;
}

/** Why the token cannot sign `algorithm` with a key of `keyBits` (RSA modulus or curve size), or undefined. */
export function whySignUnsupported(mechanisms: Mechanisms, algorithm: SignAlgorithm, keyBits?: number): string | undefined {
  return whyNot(mechanisms, algorithm.mechanism, ck.CKF_SIGN, keyBits);
}

/** Why the token cannot generate `spec` keys, or undefined. */
export function whyKeyUnsupported(mechanisms: Mechanisms, spec: KeySpec): string | undefined {
  return whyNot(mechanisms, KEY_PAIR_MECHANISM[spec.algorithm], ck.CKF_GENERATE_KEY_PAIR, keyBits(spec));
}

export interface TokenCapabilities {
  /** Signature algorithm ids (SHA256withRSA, …) the token can sign with a key of a type it generates. */
  readonly signAlgorithms: string[];
  /** Key types it generates (RSA-2048, EC-P-256, …). */
  readonly keySpecs: string[];
}

export function capabilitiesOf(mechanisms: Mechanisms): TokenCapabilities {
  const keySpecs = KEY_SPECS.filter((spec) => !whyKeyUnsupported(mechanisms, spec));
  const signAlgorithms = [...SIGN_ALGORITHMS.values()].filter((alg) =>
    keySpecs.some((spec) => spec.algorithm === alg.keyAlgorithm && !whySignUnsupported(mechanisms, alg, keyBits(spec))),
  );
  return { signAlgorithms: signAlgorithms.map((a) => a.id), keySpecs: keySpecs.map(keySpecName) };
}
