/**
 * The PKCS#11 token layer against a real SoftHSM token, with pkcs11-tool and openssl as the
 * independent judges of what we generate and sign. (Every algorithm through the daemon: see
 * signer-daemon.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import type { HsmToken } from '../../src/token/hsm-token.ts';
import { parseModuleConfig, readModuleConfigFile } from '../../src/token/module-config.ts';
import { SIGN_ALGORITHMS } from '../../src/token/sign-algorithms.ts';
import { TokenManager } from '../../src/token/token-manager.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { opensslOk } from '../support/openssl.ts';

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

describe('modules', () => {
  it('a module that fails to load is reported and skipped; the working one keeps its tokens', () => {
    const { modules, problems } = parseModuleConfig(`[softhsm]\nlibrary = ${testbed.library}\n[broken]\nlibrary = /nonexistent/libpkcs11.so\n[typo]\nlibary = x\n`);
    expect(problems.map((p) => p.section)).toEqual(['typo']);
    const both = TokenManager.open(modules, silentLogger());
    expect(both.modules.map((m) => [m.config.type, m.port !== undefined])).toEqual([
      ['softhsm', true],
      ['broken', false],
    ]);
    expect(both.modules[1]!.error).toMatch(/nonexistent/);
    expect(both.list().map((t) => t.tokenId)).toContain(token.tokenId);
  });
});
