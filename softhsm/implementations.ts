/**
 * The PKCS#11 implementations the token and signer suites run against (one `describe.each` row
 * each), with what each supports as docs/hsm/ describes it. Tests skip only what an implementation
 * cannot do, and check that the token layer finds the same in its mechanism list.
 */
import { KEY_SPECS, keySpecName } from '../src/token/mechanisms.ts';
import { SIGN_ALGORITHMS } from '../src/signerapi/algorithms.ts';
import { OPENCRYPTOKI_SO_PIN, createOpencryptokiTestbed, opencryptokiUnavailable } from './opencryptoki-testbed.ts';
import { createTestbed, type Testbed } from './testbed.ts';

export interface Pkcs11Implementation {
  readonly name: string;
  /** The devices.ini section of its testbed, so `{moduleType}` in token ids. */
  readonly moduleType: string;
  /** Why it cannot run on this machine; its suites are skipped with this in their name. */
  readonly unavailable: string | undefined;
  /** The SO PIN C_InitToken accepts on an empty slot. */
  readonly soPin: string;
  /**
   * Locks the user PIN after wrong tries, counting down in CKF_USER_PIN_FINAL_TRY and
   * CKF_USER_PIN_LOCKED. (Both set CKF_USER_PIN_COUNT_LOW after a wrong PIN.)
   */
  readonly locksPin: boolean;
  /** Gives every token a serial number of its own. */
  readonly uniqueSerials: boolean;
  /** Opens sessions on an empty (not yet initialised) slot. */
  readonly sessionsOnEmptySlot: boolean;
  /** Key types (`RSA-2048`, `EC-P-256`, …) and signature algorithms its mechanisms support. */
  readonly keySpecs: readonly string[];
  readonly signAlgorithms: readonly string[];
  create(): Promise<Testbed>;
}

const ALL_KEY_SPECS = KEY_SPECS.map(keySpecName);
const ALL_SIGN_ALGORITHMS = [...SIGN_ALGORITHMS.keys()];
const withoutEc = (names: readonly string[]) => names.filter((n) => !n.includes('EC'));

export const SOFTHSM: Pkcs11Implementation = {
  name: 'SoftHSM',
  moduleType: 'softhsm',
  unavailable: undefined,
  soPin: '0000',
  locksPin: false,
  uniqueSerials: true,
  // CKR_TOKEN_NOT_RECOGNIZED.
  sessionsOnEmptySlot: false,
  keySpecs: ALL_KEY_SPECS,
  signAlgorithms: ALL_SIGN_ALGORITHMS,
  create: async () => createTestbed(),
};

export const OPENCRYPTOKI: Pkcs11Implementation = {
  name: 'opencryptoki',
  moduleType: 'opencryptoki',
  unavailable: opencryptokiUnavailable(),
  soPin: OPENCRYPTOKI_SO_PIN,
  locksPin: true,
  // Every soft token reports serial number 123.
  uniqueSerials: false,
  sessionsOnEmptySlot: true,
  // Debian's opencryptoki 3.8 soft token has no elliptic-curve mechanisms.
  keySpecs: withoutEc(ALL_KEY_SPECS),
  signAlgorithms: withoutEc(ALL_SIGN_ALGORITHMS),
  create: createOpencryptokiTestbed,
};

export const IMPLEMENTATIONS: readonly Pkcs11Implementation[] = [SOFTHSM, OPENCRYPTOKI];

/** describe.each rows: the implementation and a title that says why it is skipped, when it is. */
export const IMPLEMENTATION_ROWS = IMPLEMENTATIONS.map((impl) => ({ impl, title: impl.unavailable ? `${impl.name} (skipped: ${impl.unavailable})` : impl.name }));

/** The key type tests use when any will do: EC P-256 (fast), else RSA-2048. */
export function everydayKey(impl: Pkcs11Implementation): { spec: { algorithm: 'EC'; curve: 'P-256' } | { algorithm: 'RSA'; bits: 2048 }; algorithm: 'SHA256withECDSA' | 'SHA256withRSA'; tool: string } {
  return impl.keySpecs.includes('EC-P-256')
    ? { spec: { algorithm: 'EC', curve: 'P-256' }, algorithm: 'SHA256withECDSA', tool: 'EC:prime256v1' }
    : { spec: { algorithm: 'RSA', bits: 2048 }, algorithm: 'SHA256withRSA', tool: 'rsa:2048' };
}
