/**
 * The PKCS#11 token layer against a real SoftHSM token, with pkcs11-tool and openssl as the
 * independent judges of what we generate and sign.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import type { HsmToken, KeySpec } from '../../src/token/hsm-token.ts';
import { readModuleConfigFile } from '../../src/token/module-config.ts';
import { SIGN_ALGORITHMS, ecdsaRawToDer } from '../../src/token/sign-algorithms.ts';
import { TokenManager } from '../../src/token/token-manager.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { opensslOk, spkiToPem } from '../support/openssl.ts';

const PIN = '123456';
let testbed: Testbed;
let manager: TokenManager;
let token: HsmToken;

function pkcs11Tool(args: string[]): string {
  return execFileSync('pkcs11-tool', ['--module', testbed.library, '--token-label', 'layer', ...args], { env: testbed.env, stdio: 'pipe' }).toString();
}

beforeAll(() => {
  testbed = createTestbed();
  manager = TokenManager.open(readModuleConfigFile(testbed.devicesIni).modules, silentLogger());
  token = manager.get(manager.initToken('layer', '0000', PIN));
  token.login(PIN);
});

afterAll(() => {
  manager.close();
  testbed.cleanup();
});

const SPECS: KeySpec[] = [
  { algorithm: 'RSA', bits: 2048 },
  { algorithm: 'RSA', bits: 3072 },
  { algorithm: 'RSA', bits: 4096 },
  { algorithm: 'EC', curve: 'P-256' },
  { algorithm: 'EC', curve: 'P-384' },
];

describe('keys generated on the token', () => {
  it('are listed by pkcs11-tool as sensitive and never extractable, with a 20-byte id', async () => {
    const key = await token.generateKey({ algorithm: 'EC', curve: 'P-256' });
    expect(key.keyId).toMatch(/^[0-9A-F]{40}$/);
    const listing = pkcs11Tool(['--login', '--pin', PIN, '--list-objects', '--type', 'privkey']);
    const block = listing.split(/(?=Private Key Object)/).find((b) => b.includes(`ID:         ${key.keyId.toLowerCase()}`));
    expect(block).toBeDefined();
    expect(block).toMatch(/Access:\s+sensitive, always sensitive, never extractable, local/);
    expect(key).toMatchObject({ sensitive: true, extractable: false, hasPrivateKey: true });
  });

  for (const spec of SPECS) {
    const name = spec.algorithm === 'RSA' ? `RSA-${spec.bits}` : spec.curve;
    it(`${name}: every matching algorithm signs a digest that openssl verifies`, async () => {
      const key = await token.generateKey(spec);
      const pub = spkiToPem(key.publicKey!, testbed.dir, key.keyId);
      const data = join(testbed.dir, `${key.keyId}.data`);
      const message = randomBytes(300);
      writeFileSync(data, message);
      for (const alg of SIGN_ALGORITHMS.values()) {
        if (alg.keyAlgorithm !== spec.algorithm) continue;
        const hash = alg.digest.replace('-', '').toLowerCase();
        const digest = createHash(hash).update(message).digest();
        const signature = await token.sign(key.keyId, alg, digest);
        const sigFile = join(testbed.dir, `${key.keyId}.${alg.id}.sig`);
        writeFileSync(sigFile, signature);
        const pss = alg.padding === 'PSS' ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', '-sigopt', `rsa_mgf1_md:${hash}`] : [];
        expect(opensslOk(['dgst', `-${hash}`, '-verify', pub, ...pss, '-signature', sigFile, data]), `${name} ${alg.id}`).toBe(true);
        // The same signature must fail for another message.
        writeFileSync(join(testbed.dir, 'other'), 'other');
        expect(opensslOk(['dgst', `-${hash}`, '-verify', pub, ...pss, '-signature', sigFile, join(testbed.dir, 'other')])).toBe(false);
        if (alg.padding === 'ECDSA') {
          const raw = await token.sign(key.keyId, alg, digest, { raw: true });
          expect(raw.length).toBe(spec.algorithm === 'EC' && spec.curve === 'P-384' ? 96 : 64);
          writeFileSync(sigFile, ecdsaRawToDer(raw));
          expect(opensslOk(['dgst', `-${hash}`, '-verify', pub, '-signature', sigFile, data])).toBe(true);
        }
      }
    });
  }

  it('a key made by pkcs11-tool is found by its CKA_ID and signs', async () => {
    pkcs11Tool(['--login', '--pin', PIN, '--keypairgen', '--key-type', 'rsa:2048', '--id', 'a1b2c3', '--label', 'made-by-pkcs11-tool']);
    const key = await token.getKey('A1B2C3');
    expect(key).toMatchObject({ label: 'made-by-pkcs11-tool', algorithm: 'RSA', size: '2048' });
    pkcs11Tool(['--read-object', '--type', 'pubkey', '--id', 'a1b2c3', '-o', join(testbed.dir, 'tool-pub.der')]);
    const digest = createHash('sha256').update('data').digest();
    const signature = await token.sign('A1B2C3', SIGN_ALGORITHMS.get('SHA256withRSA')!, digest);
    writeFileSync(join(testbed.dir, 'tool.sig'), signature);
    writeFileSync(join(testbed.dir, 'tool.data'), 'data');
    expect(opensslOk(['dgst', '-sha256', '-keyform', 'DER', '-verify', join(testbed.dir, 'tool-pub.der'), '-signature', join(testbed.dir, 'tool.sig'), join(testbed.dir, 'tool.data')])).toBe(true);
  });

  it('an unknown key id is KeyNotFound; two objects with one CKA_ID are refused, not guessed', async () => {
    await expect(token.sign('00112233', SIGN_ALGORITHMS.get('SHA256withRSA')!, Buffer.alloc(32))).rejects.toMatchObject({ code: 'KeyNotFound' });
    pkcs11Tool(['--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--id', 'dd', '--label', 'twin1']);
    pkcs11Tool(['--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--id', 'dd', '--label', 'twin2']);
    await expect(token.sign('DD', SIGN_ALGORITHMS.get('SHA256withECDSA')!, Buffer.alloc(32))).rejects.toMatchObject({ code: 'KeyNotAvailable' });
  });

  it('a signature algorithm for another key type is UnsupportedSignAlgorithm', async () => {
    const key = await token.generateKey({ algorithm: 'EC', curve: 'P-256' });
    await expect(token.sign(key.keyId, SIGN_ALGORITHMS.get('SHA256withRSA')!, Buffer.alloc(32))).rejects.toMatchObject({ code: 'UnsupportedSignAlgorithm' });
  });
});

describe('login', () => {
  it('a wrong PIN is PinIncorrect and shows as USER_PIN_INCORRECT until a good login', () => {
    const other = manager.get(manager.initToken('pins', '0000', '111111'));
    expect(() => other.login('999999')).toThrowError(expect.objectContaining({ code: 'PinIncorrect', faultCode: 'Signer.PinIncorrect' }));
    expect(other.describe()).toMatchObject({ status: 'USER_PIN_INCORRECT', active: false });
    other.login('111111');
    expect(other.describe()).toMatchObject({ status: 'OK', active: true });
  });

  it('signing on a logged-out token is TokenNotActive', async () => {
    const other = manager.get(manager.initToken('loggedout', '0000', '222222'));
    other.login('222222');
    const key = await other.generateKey({ algorithm: 'EC', curve: 'P-256' });
    other.logout();
    await expect(other.sign(key.keyId, SIGN_ALGORITHMS.get('SHA256withECDSA')!, Buffer.alloc(32))).rejects.toMatchObject({ code: 'TokenNotActive' });
  });

  it('tokens are found by label, serial and pkcs11: URI', () => {
    const d = token.describe();
    expect(manager.resolve('layer').tokenId).toBe(token.tokenId);
    expect(manager.resolve(d.serialNumber).tokenId).toBe(token.tokenId);
    expect(manager.resolve(d.uri).tokenId).toBe(token.tokenId);
    expect(() => manager.resolve('no-such-token')).toThrowError(expect.objectContaining({ code: 'TokenNotFound' }));
  });
});
