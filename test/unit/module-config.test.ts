import { describe, expect, it } from 'vitest';
import { formatTokenId, parseModuleConfig } from '../../src/token/module-config.ts';

describe('devices.ini', () => {
  it('reads every X-Road key of a module section', () => {
    const { modules, problems } = parseModuleConfig(`
# comment
[hsm1]
library = /opt/hsm/lib.so
enabled = true
slot_ids = 1, 3
os_locking_ok = false
library_cant_create_os_threads = true
sign_verify_pin = true
batch_signing_enabled = false
read_only = true
token_id_format = {moduleType}{slotIndex}{serialNumber}{label}
rsa_sign_mechanism = CKM_RSA_PKCS_PSS
ec_sign_mechanism = CKM_ECDSA
pub_key_attribute_verify = true
priv_key_attribute_derive = false
`);
    expect(problems).toEqual([]);
    expect(modules).toEqual([
      {
        type: 'hsm1',
        library: '/opt/hsm/lib.so',
        enabled: true,
        slotIds: [1, 3],
        osLockingOk: false,
        libraryCantCreateOsThreads: true,
        signVerifyPin: true,
        batchSigningEnabled: false,
        readOnly: true,
        tokenIdFormat: '{moduleType}{slotIndex}{serialNumber}{label}',
        rsaSignMechanism: 'CKM_RSA_PKCS_PSS',
        ecSignMechanism: 'CKM_ECDSA',
        publicKeyAttributes: { verify: true },
        privateKeyAttributes: { derive: false },
      },
    ]);
  });

  it('applies the defaults the reference documents', () => {
    const [m] = parseModuleConfig('[softhsm]\nlibrary = /usr/lib/softhsm/libsofthsm2.so\n').modules;
    expect(m).toMatchObject({ enabled: true, osLockingOk: true, batchSigningEnabled: true, readOnly: false, signVerifyPin: false, rsaSignMechanism: 'CKM_RSA_PKCS', slotIds: [] });
  });

  it('skips a broken section and keeps the others', () => {
    const { modules, problems } = parseModuleConfig(`
[good]
library = /a.so
[nolib]
enabled = true
[badbool]
library = /b.so
read_only = maybe
[badmech]
library = /c.so
rsa_sign_mechanism = CKM_MD5
[typo]
library = /d.so
libary = /d.so
`);
    expect(modules.map((m) => m.type)).toEqual(['good']);
    expect(problems.map((p) => p.section)).toEqual(['nolib', 'badbool', 'badmech', 'typo']);
    expect(problems[0]!.reason).toContain('"library" is required');
  });

  it('formats token ids from the placeholders', () => {
    const parts = { moduleType: 'softhsm', slotIndex: 2, serialNumber: 'abc', label: 'tok' };
    expect(formatTokenId('{moduleType}{slotIndex}{serialNumber}{label}', parts)).toBe('softhsm2abctok');
    expect(formatTokenId('{moduleType}-{serialNumber}-{label}', parts)).toBe('softhsm-abc-tok');
  });
});
