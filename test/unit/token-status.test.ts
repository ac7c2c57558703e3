import { describe, expect, it } from 'vitest';
import { ck } from '../../src/token/pkcs11-port.ts';
import { classifyFailure, statusAfterLoginFailure, statusFromLoginFailure, statusFromTokenFlags } from '../../src/token/token-status.ts';

describe('token states from PKCS#11 (the reference HardwareTokenUtil order)', () => {
  const initialised = ck.CKF_TOKEN_INITIALIZED | ck.CKF_USER_PIN_INITIALIZED | ck.CKF_LOGIN_REQUIRED;

  it('reads token flags, most severe first', () => {
    expect(statusFromTokenFlags(0)).toBe('NOT_INITIALIZED');
    expect(statusFromTokenFlags(initialised)).toBe('OK');
    expect(statusFromTokenFlags(initialised | ck.CKF_USER_PIN_COUNT_LOW)).toBe('USER_PIN_COUNT_LOW');
    expect(statusFromTokenFlags(initialised | ck.CKF_USER_PIN_COUNT_LOW | ck.CKF_USER_PIN_FINAL_TRY)).toBe('USER_PIN_FINAL_TRY');
    expect(statusFromTokenFlags(initialised | ck.CKF_USER_PIN_FINAL_TRY | ck.CKF_USER_PIN_LOCKED)).toBe('USER_PIN_LOCKED');
  });

  it('reads failed logins', () => {
    expect(statusFromLoginFailure(ck.CKR_PIN_INCORRECT)).toBe('USER_PIN_INCORRECT');
    expect(statusFromLoginFailure(ck.CKR_PIN_LOCKED)).toBe('USER_PIN_LOCKED');
    expect(statusFromLoginFailure(ck.CKR_PIN_LEN_RANGE)).toBe('USER_PIN_INVALID');
    expect(statusFromLoginFailure(ck.CKR_PIN_EXPIRED)).toBe('USER_PIN_EXPIRED');
    expect(statusFromLoginFailure(ck.CKR_DEVICE_ERROR)).toBeUndefined();
  });

  it('after a failed login, PIN counters in the flags come before the return value (HardwareTokenUtil.getTokenStatus)', () => {
    expect(statusAfterLoginFailure(initialised, ck.CKR_PIN_INCORRECT)).toBe('USER_PIN_INCORRECT');
    expect(statusAfterLoginFailure(initialised | ck.CKF_USER_PIN_COUNT_LOW, ck.CKR_PIN_INCORRECT)).toBe('USER_PIN_COUNT_LOW');
    expect(statusAfterLoginFailure(initialised | ck.CKF_USER_PIN_FINAL_TRY, ck.CKR_PIN_INCORRECT)).toBe('USER_PIN_FINAL_TRY');
    expect(statusAfterLoginFailure(initialised | ck.CKF_USER_PIN_LOCKED, ck.CKR_PIN_INCORRECT)).toBe('USER_PIN_LOCKED');
    // A token that locks without saying so in its flags (a TPM's dictionary-attack lockout).
    expect(statusAfterLoginFailure(initialised, ck.CKR_PIN_LOCKED)).toBe('USER_PIN_LOCKED');
    expect(statusAfterLoginFailure(initialised, ck.CKR_DEVICE_ERROR)).toBe('OK');
  });

  it('classifies failures by what recovery they need', () => {
    expect(classifyFailure(ck.CKR_DEVICE_REMOVED)).toBe('token-gone');
    expect(classifyFailure(ck.CKR_TOKEN_NOT_PRESENT)).toBe('token-gone');
    expect(classifyFailure(ck.CKR_SESSION_HANDLE_INVALID)).toBe('session-lost');
    expect(classifyFailure(ck.CKR_KEY_HANDLE_INVALID)).toBe('handle-stale');
    expect(classifyFailure(ck.CKR_USER_NOT_LOGGED_IN)).toBe('logged-out');
    expect(classifyFailure(ck.CKR_MECHANISM_INVALID)).toBe('other');
    expect(classifyFailure(undefined)).toBe('other');
  });
});
