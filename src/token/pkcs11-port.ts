/**
 * The narrow port to a PKCS#11 library: the only file that imports pkcs11js. Everything above it sees
 * `Pkcs11Port`, the handful of calls the token layer needs, so unit tests can inject a fake.
 */
import pkcs11js from 'pkcs11js';

export type Handle = Buffer;
export type Attribute = pkcs11js.Attribute;
export type Mechanism = pkcs11js.Mechanism;
export type TokenInfo = pkcs11js.TokenInfo;
export type RsaPSS = pkcs11js.RsaPSS;

export type Pkcs11Port = Pick<
  pkcs11js.PKCS11,
  | 'C_Finalize'
  | 'C_GetSlotList'
  | 'C_GetTokenInfo'
  | 'C_InitToken'
  | 'C_InitPIN'
  | 'C_SetPIN'
  | 'C_OpenSession'
  | 'C_CloseSession'
  | 'C_GetSessionInfo'
  | 'C_Login'
  | 'C_Logout'
  | 'C_FindObjectsInit'
  | 'C_FindObjects'
  | 'C_FindObjectsFinal'
  | 'C_GetAttributeValue'
  | 'C_SetAttributeValue'
  | 'C_CreateObject'
  | 'C_DestroyObject'
  | 'C_GenerateKeyPair'
  | 'C_SignInit'
  | 'C_Sign'
  | 'C_SignAsync'
  | 'C_VerifyInit'
  | 'C_Verify'
>;

/** PKCS#11 constants (CKA_*, CKR_*, CKM_*, CKF_*, …). */
export const ck = pkcs11js;

/** Libraries already initialised in this process, so two sections naming one library share it. */
const loaded = new Map<string, Pkcs11Port>();

/**
 * Loads and initialises a PKCS#11 library once per process: pkcs11js crashes when a library is
 * initialised twice, so one instance is kept for the life of the process.
 * @throws Error with the library's message when it cannot be loaded or initialised
 */
export function loadPkcs11Module(library: string, options: { osLockingOk: boolean; cantCreateThreads: boolean }): Pkcs11Port {
  const existing = loaded.get(library);
  if (existing) return existing;
  const module = new pkcs11js.PKCS11();
  module.load(library);
  let flags = 0;
  if (options.osLockingOk) flags |= pkcs11js.CKF_OS_LOCKING_OK;
  if (options.cantCreateThreads) flags |= pkcs11js.CKF_LIBRARY_CANT_CREATE_OS_THREADS;
  try {
    module.C_Initialize({ flags });
  } catch (err) {
    if (ckrOf(err) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
  }
  loaded.set(library, module);
  return module;
}

/** The CKR_* value of a pkcs11js error, or undefined for anything else. */
export function ckrOf(err: unknown): number | undefined {
  return err instanceof pkcs11js.Pkcs11Error ? err.code : undefined;
}

const CKR_NAMES = new Map<number, string>(
  Object.entries(pkcs11js)
    .filter(([name, value]) => name.startsWith('CKR_') && typeof value === 'number')
    .map(([name, value]) => [value as number, name]),
);

export function ckrName(code: number | undefined): string {
  return code === undefined ? 'unknown' : (CKR_NAMES.get(code) ?? `0x${code.toString(16)}`);
}
