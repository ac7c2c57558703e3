/**
 * Token states as X-Road names them, and the translation of PKCS#11 return values and token flags
 * into them (the reference's HardwareTokenUtil.getTokenStatus), in one place.
 */
import { ck } from './pkcs11-port.ts';

export type TokenStatus =
  | 'OK'
  | 'USER_PIN_LOCKED'
  | 'USER_PIN_INCORRECT'
  | 'USER_PIN_INVALID'
  | 'USER_PIN_EXPIRED'
  | 'USER_PIN_COUNT_LOW'
  | 'USER_PIN_FINAL_TRY'
  | 'NOT_INITIALIZED'
  | 'NOT_AVAILABLE';

/** Status read from CK_TOKEN_INFO.flags; most severe first, as the reference checks them. */
export function statusFromTokenFlags(flags: number): TokenStatus {
  if (!(flags & ck.CKF_TOKEN_INITIALIZED)) return 'NOT_INITIALIZED';
  if (flags & ck.CKF_USER_PIN_LOCKED) return 'USER_PIN_LOCKED';
  if (flags & ck.CKF_USER_PIN_FINAL_TRY) return 'USER_PIN_FINAL_TRY';
  if (flags & ck.CKF_USER_PIN_COUNT_LOW) return 'USER_PIN_COUNT_LOW';
  return 'OK';
}

/**
 * Status of a token whose last login failed with `ckr`: the PIN counters in its flags come first,
 * then the return value (the reference's getTokenStatus). So a wrong PIN on a token that counts
 * them shows how many tries are left (count low, final try, locked) rather than just "incorrect".
 */
export function statusAfterLoginFailure(flags: number, ckr: number | undefined): TokenStatus {
  const fromFlags = statusFromTokenFlags(flags);
  if (fromFlags !== 'OK') return fromFlags;
  return statusFromLoginFailure(ckr) ?? 'OK';
}

/** Status a failed C_Login leaves behind, or undefined when the failure says nothing about the PIN. */
export function statusFromLoginFailure(ckr: number | undefined): TokenStatus | undefined {
  switch (ckr) {
    case ck.CKR_PIN_INCORRECT:
      return 'USER_PIN_INCORRECT';
    case ck.CKR_PIN_LOCKED:
      return 'USER_PIN_LOCKED';
    case ck.CKR_PIN_INVALID:
    case ck.CKR_PIN_LEN_RANGE:
      return 'USER_PIN_INVALID';
    case ck.CKR_PIN_EXPIRED:
      return 'USER_PIN_EXPIRED';
    default:
      return undefined;
  }
}

/** CK_STATE values of a session that is logged in as the user (PKCS#11 §5.6; not exported by pkcs11js). */
export const USER_SESSION_STATES: ReadonlySet<number> = new Set([1 /* CKS_RO_USER_FUNCTIONS */, 3 /* CKS_RW_USER_FUNCTIONS */]);

/** How the token layer must react to a return value. */
export type FailureKind = 'token-gone' | 'session-lost' | 'handle-stale' | 'logged-out' | 'other';

export function classifyFailure(ckr: number | undefined): FailureKind {
  switch (ckr) {
    case ck.CKR_DEVICE_REMOVED:
    case ck.CKR_TOKEN_NOT_PRESENT:
    case ck.CKR_TOKEN_NOT_RECOGNIZED:
    case ck.CKR_DEVICE_ERROR:
    case ck.CKR_SLOT_ID_INVALID:
    case ck.CKR_CRYPTOKI_NOT_INITIALIZED:
      return 'token-gone';
    case ck.CKR_SESSION_HANDLE_INVALID:
    case ck.CKR_SESSION_CLOSED:
      return 'session-lost';
    case ck.CKR_OBJECT_HANDLE_INVALID:
    case ck.CKR_KEY_HANDLE_INVALID:
      return 'handle-stale';
    case ck.CKR_USER_NOT_LOGGED_IN:
      return 'logged-out';
    default:
      return 'other';
  }
}
