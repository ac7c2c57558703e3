/**
 * The PKCS#11 token layer against each implementation in softhsm/implementations.ts (SoftHSM and
 * opencryptoki), with pkcs11-tool and openssl as the independent judges of what we generate and
 * sign. (Every algorithm through the daemon: see signer-daemon.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import type { HsmToken } from '../../src/token/hsm-token.ts';
import { LOOP_QUIET_MS } from '../../src/token/loop-signing.ts';
import { KEY_SPECS, keySpecName } from '../../src/token/mechanisms.ts';
import { parseModuleConfig, readModuleConfigFile } from '../../src/token/module-config.ts';
import { SIGN_ALGORITHMS } from '../../src/signerapi/algorithms.ts';
import { TokenManager } from '../../src/token/token-manager.ts';
import { IMPLEMENTATION_ROWS, everydayKey } from '../../softhsm/implementations.ts';
import { tokenFlagsSeenByPkcs11Tool, type Testbed } from '../../softhsm/testbed.ts';
import { opensslOk } from '../support/openssl.ts';

const PIN = '123456';

describe.each(IMPLEMENTATION_ROWS)('$title', ({ impl }) => {
  let testbed: Testbed;
  let manager: TokenManager;
  let token: HsmToken;
  const everyday = everydayKey(impl);

  function pkcs11Tool(args: string[], label = 'layer'): string {
    return execFileSync('pkcs11-tool', ['--module', testbed.library, '--token-label', label, ...args], { env: testbed.env, stdio: 'pipe' }).toString();
  }

  /** A token of its own for a test that changes its login or PIN state. */
  function freshToken(label: string, pin: string): HsmToken {
    return manager.get(manager.initToken(label, impl.soPin, pin));
  }

  beforeAll(async () => {
    if (impl.unavailable) return;
    testbed = await impl.create();
    manager = TokenManager.open(readModuleConfigFile(testbed.devicesIni).modules, silentLogger());
    token = freshToken('layer', PIN);
    token.login(PIN);
  });

  afterAll(() => {
    manager?.close();
    testbed?.cleanup();
  });

  describe.skipIf(impl.unavailable)('keys generated on the token', () => {
    it('every key type it generates is listed by pkcs11-tool as sensitive and never extractable, with a 20-byte id', async () => {
      const keys = [];
      for (const spec of KEY_SPECS.filter((s) => impl.keySpecs.includes(keySpecName(s)))) keys.push(await token.generateKey(spec));
      expect(keys.length).toBe(impl.keySpecs.length);
      const listing = pkcs11Tool(['--login', '--pin', PIN, '--list-objects', '--type', 'privkey']);
      for (const key of keys) {
        expect(key.keyId).toMatch(/^[0-9A-F]{40}$/);
        const block = listing.split(/(?=Private Key Object)/).find((b) => b.includes(`ID:         ${key.keyId.toLowerCase()}`));
        expect(block, key.size).toBeDefined();
        expect(block).toMatch(/Access:\s+sensitive, always sensitive, never extractable, local/);
        expect(key).toMatchObject({ sensitive: true, extractable: false, hasPrivateKey: true });
      }
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

    it('signatures asked together go to the signing threads, a lone one on idle threads to the event loop (loop-signing.ts), and all verify', async () => {
      const key = await token.generateKey(everyday.spec);
      const algorithm = SIGN_ALGORITHMS.get(everyday.algorithm)!;
      const publicKey = createPublicKey({ key: key.publicKey!, format: 'der', type: 'spki' });
      const messages = Array.from({ length: 9 }, (_, i) => Buffer.from(`message ${i}`));
      const sign = (m: Buffer) => token.sign(key.keyId, algorithm, createHash('sha256').update(m).digest());
      // Absent where the library signs with C_SignAsync (p11-kit's client, which opencryptoki is
      // reached through): then only the signatures are checked. SoftHSM signs on threads.
      const counts = () => manager.modules.map((m) => m.port?.signCounts?.()).find((c) => c !== undefined);
      const before = counts();
      if (impl.name === 'SoftHSM') expect(before).toBeDefined();
      const together = await Promise.all(messages.slice(0, 8).map(sign));
      // A key the daemon has not seen sign starts on the threads.
      if (before) expect(counts()!.threads - before.threads).toBe(8);
      // Lone, once the threads showed the key is quick and the daemon has been quiet for
      // LOOP_QUIET_MS: on the loop. A machine under load may make a signature slow, which sends the
      // next few to the threads too, so it is asked again (for up to 20 s).
      let alone: Buffer;
      const giveUpAt = Date.now() + 20_000;
      do {
        await new Promise((resolve) => setTimeout(resolve, 2 * LOOP_QUIET_MS));
        alone = await sign(messages[8]!);
      } while (before && counts()!.loop === before.loop && Date.now() < giveUpAt);
      if (before) expect(counts()!.loop).toBe(before.loop + 1);
      [...together, alone].forEach((signature, i) => expect(verify('sha256', messages[i]!, publicKey, signature), `message ${i}`).toBe(true));
      expect(verify('sha256', messages[0]!, publicKey, alone)).toBe(false);
    });

    it('an unknown key id is KeyNotFound; two objects with one CKA_ID are refused, not guessed', async () => {
      await expect(token.sign('00112233', SIGN_ALGORITHMS.get('SHA256withRSA')!, Buffer.alloc(32))).rejects.toMatchObject({ code: 'KeyNotFound' });
      pkcs11Tool(['--login', '--pin', PIN, '--keypairgen', '--key-type', everyday.tool, '--id', 'dd', '--label', 'twin1']);
      pkcs11Tool(['--login', '--pin', PIN, '--keypairgen', '--key-type', everyday.tool, '--id', 'dd', '--label', 'twin2']);
      await expect(token.sign('DD', SIGN_ALGORITHMS.get(everyday.algorithm)!, Buffer.alloc(32))).rejects.toMatchObject({ code: 'KeyNotAvailable' });
    });

    it('a signature algorithm for another key type is UnsupportedSignAlgorithm', async () => {
      const key = await token.generateKey(everyday.spec);
      const other = everyday.spec.algorithm === 'EC' ? 'SHA256withRSA' : 'SHA256withECDSA';
      await expect(token.sign(key.keyId, SIGN_ALGORITHMS.get(other)!, Buffer.alloc(32))).rejects.toMatchObject({ code: 'UnsupportedSignAlgorithm' });
    });
  });

  describe.skipIf(impl.unavailable)('mechanisms', () => {
    const lacking = KEY_SPECS.filter((s) => !impl.keySpecs.includes(keySpecName(s)));

    it(`are read from the token: ${impl.keySpecs.join(', ')}; ${impl.signAlgorithms.length} of ${SIGN_ALGORITHMS.size} signature algorithms`, () => {
      expect(token.capabilities()).toEqual({ keySpecs: impl.keySpecs, signAlgorithms: impl.signAlgorithms });
    });

    it.skipIf(lacking.length === 0)(
      `a key type the token lacks is UnsupportedKeyAlgorithm and leaves nothing on the token${lacking.length === 0 ? ` (skipped: ${impl.name} generates every key type the signer uses)` : ''}`,
      async () => {
        const before = (await token.listKeys()).length;
        for (const spec of lacking) {
          await expect(token.generateKey(spec), keySpecName(spec)).rejects.toMatchObject({ code: 'UnsupportedKeyAlgorithm', details: { keyAlgorithm: keySpecName(spec) } });
        }
        expect(await token.listKeys()).toHaveLength(before);
      },
    );

    const noEcdsa = !impl.signAlgorithms.includes('SHA256withECDSA');
    it.skipIf(!noEcdsa)(
      `an EC key put on the token by pkcs11-tool is UnsupportedSignAlgorithm, naming the missing mechanism${noEcdsa ? '' : ` (skipped: ${impl.name} signs with ECDSA)`}`,
      async () => {
        const der = join(testbed.dir, 'imported-ec.der');
        writeFileSync(der, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' }));
        pkcs11Tool(['--login', '--pin', PIN, '--write-object', der, '--type', 'privkey', '--id', 'ec01', '--label', 'imported-ec']);
        await expect(token.sign('EC01', SIGN_ALGORITHMS.get('SHA256withECDSA')!, Buffer.alloc(32))).rejects.toMatchObject({
          code: 'UnsupportedSignAlgorithm',
          details: { reason: 'the token does not offer CKM_ECDSA' },
        });
      },
    );
  });

  describe.skipIf(impl.unavailable)('login', () => {
    it('a wrong PIN is PinIncorrect and shows as USER_PIN_COUNT_LOW (the token flag comes first, as in the reference) until a good login', () => {
      const other = freshToken('pins', '111111');
      const status = 'USER_PIN_COUNT_LOW';
      expect(() => other.login('999999')).toThrowError(expect.objectContaining({ code: 'PinIncorrect', faultCode: 'Signer.PinIncorrect', details: expect.objectContaining({ status }) }));
      expect(other.describe()).toMatchObject({ status, active: false });
      other.login('111111');
      expect(other.describe()).toMatchObject({ status: 'OK', active: true });
    });

    it('signing on a logged-out token is TokenNotActive', async () => {
      const other = freshToken('loggedout', '222222');
      other.login('222222');
      const key = await other.generateKey(everyday.spec);
      other.logout();
      await expect(other.sign(key.keyId, SIGN_ALGORITHMS.get(everyday.algorithm)!, Buffer.alloc(32))).rejects.toMatchObject({ code: 'TokenNotActive' });
    });

    it(`tokens are found by label, ${impl.uniqueSerials ? 'serial' : 'not by a serial they share'} and pkcs11: URI`, () => {
      const d = token.describe();
      expect(manager.resolve('layer').tokenId).toBe(token.tokenId);
      if (impl.uniqueSerials) expect(manager.resolve(d.serialNumber).tokenId).toBe(token.tokenId);
      else expect(() => manager.resolve(d.serialNumber)).toThrowError(expect.objectContaining({ code: 'InvalidIdentifier' }));
      expect(manager.resolve(d.uri).tokenId).toBe(token.tokenId);
      expect(() => manager.resolve('no-such-token')).toThrowError(expect.objectContaining({ code: 'TokenNotFound' }));
    });
  });

  describe.skipIf(impl.unavailable || !impl.locksPin)(`PIN tries${impl.locksPin ? '' : ` (skipped: ${impl.name} never locks a PIN)`}`, () => {
    const flagsSeenByPkcs11Tool = (label: string) => tokenFlagsSeenByPkcs11Tool(testbed, label);

    it('count low, final try, locked: each wrong PIN has its code and status, pkcs11-tool reads the same flags, and the right PIN no longer opens it', () => {
      const t = freshToken('countdown', '4321');
      const steps = [
        { code: 'PinIncorrect', status: 'USER_PIN_COUNT_LOW', flag: 'user PIN count low' },
        { code: 'PinFinalTry', status: 'USER_PIN_FINAL_TRY', flag: 'final user PIN try' },
        { code: 'PinLocked', status: 'USER_PIN_LOCKED', flag: 'user PIN locked' },
      ];
      for (const step of steps) {
        expect(() => t.login('9999')).toThrowError(expect.objectContaining({ code: step.code, faultCode: `Signer.${step.code}`, details: expect.objectContaining({ status: step.status }) }));
        expect(t.describe()).toMatchObject({ status: step.status, active: false });
        expect(flagsSeenByPkcs11Tool('countdown')).toContain(step.flag);
      }
      expect(() => t.login('4321')).toThrowError(expect.objectContaining({ code: 'PinLocked', details: expect.objectContaining({ reason: 'CKR_PIN_LOCKED' }) }));
      expect(manager.get(t.tokenId).describe().status).toBe('USER_PIN_LOCKED');
    });

    it('a good login before the lock starts the count again', () => {
      const t = freshToken('recount', '4321');
      expect(() => t.login('9999')).toThrowError(expect.objectContaining({ code: 'PinIncorrect' }));
      expect(() => t.login('9998')).toThrowError(expect.objectContaining({ code: 'PinFinalTry' }));
      t.login('4321');
      expect(t.describe()).toMatchObject({ status: 'OK', active: true });
      t.logout();
      expect(() => t.login('9999')).toThrowError(expect.objectContaining({ code: 'PinIncorrect', details: expect.objectContaining({ status: 'USER_PIN_COUNT_LOW' }) }));
    });

    it('a PIN longer than the token takes (which opencryptoki would count as a wrong try) is PinInvalid and costs no try', () => {
      const t = freshToken('toolong', '4321');
      const tooLong = '7'.repeat(t.describe().maxPinLength + 1);
      expect(() => t.login(tooLong)).toThrowError(expect.objectContaining({ code: 'PinInvalid' }));
      expect(flagsSeenByPkcs11Tool('toolong')).not.toMatch(/count low|final|locked/);
      t.login('4321');
    });
  });

  describe.skipIf(impl.unavailable)('PINs the daemon holds', () => {
    /** A token with sign_verify_pin, as smart cards that forget the login between signatures need. */
    function verifyPinToken(label: string, pin: string) {
      const tokenId = manager.initToken(label, impl.soPin, pin);
      const modules = parseModuleConfig(`[${impl.moduleType}]\nlibrary = ${testbed.library}\nsign_verify_pin = true\n`).modules;
      const own = TokenManager.open(modules, silentLogger());
      return { own, token: own.get(tokenId) };
    }
    /** Another client of the library changes the PIN: here the token's entry in the main manager. */
    const changePinElsewhere = (tokenId: string, oldPin: string, newPin: string) => manager.get(tokenId).changePin(oldPin, newPin);

    it('sign_verify_pin: logs in around every signature; a PIN changed elsewhere costs one try, then the daemon stops trying', async () => {
      const { own, token: t } = verifyPinToken('verify-pin', '5678');
      try {
        t.login('5678');
        const key = await t.generateKey(everyday.spec);
        const alg = SIGN_ALGORITHMS.get(everyday.algorithm)!;
        for (let i = 0; i < 3; i++) await t.sign(key.keyId, alg, Buffer.alloc(32, i));
        changePinElsewhere(t.tokenId, '5678', '8765');
        await expect(t.sign(key.keyId, alg, Buffer.alloc(32))).rejects.toMatchObject({ code: 'PinIncorrect' });
        for (let i = 0; i < 3; i++) await expect(t.sign(key.keyId, alg, Buffer.alloc(32))).rejects.toMatchObject({ code: 'TokenNotActive' });
        expect(t.describe()).toMatchObject({ active: false, status: 'USER_PIN_COUNT_LOW' });
        t.login('8765');
        await t.sign(key.keyId, alg, Buffer.alloc(32));
      } finally {
        own.close();
      }
    });

    it.skipIf(!impl.locksPin)(
      `at the final try the daemon does not log in on its own; an administrator's login may${impl.locksPin ? '' : ` (skipped: ${impl.name} never locks a PIN)`}`,
      async () => {
        const { own, token: t } = verifyPinToken('final-try', '5678');
        try {
          t.login('5678');
          const key = await t.generateKey(everyday.spec);
          const alg = SIGN_ALGORITHMS.get(everyday.algorithm)!;
          changePinElsewhere(t.tokenId, '5678', '8765');
          for (const wrong of ['1111', '2222']) expect(() => pkcs11Tool(['--login', '--pin', wrong, '--list-objects'], 'final-try')).toThrow();
          await expect(t.sign(key.keyId, alg, Buffer.alloc(32))).rejects.toMatchObject({ code: 'TokenNotActive', details: { status: 'USER_PIN_FINAL_TRY' } });
          expect(t.describe().status).toBe('USER_PIN_FINAL_TRY');
          t.login('8765');
          expect(t.describe()).toMatchObject({ status: 'OK', active: true });
          await t.sign(key.keyId, alg, Buffer.alloc(32));
        } finally {
          own.close();
        }
      },
    );
  });

  describe.skipIf(impl.unavailable)('modules', () => {
    it('an SO or user PIN longer than the token takes is PinInvalid before C_InitToken, and the slot stays empty', () => {
      const blanks = () => manager.list().filter((t) => t.describe().status === 'NOT_INITIALIZED').length;
      const before = blanks();
      const tooLong = '7'.repeat(manager.list().find((t) => t.describe().status === 'NOT_INITIALIZED')!.describe().maxPinLength + 1);
      expect(() => manager.initToken('too-long-so', tooLong, '3456')).toThrowError(expect.objectContaining({ code: 'PinInvalid' }));
      expect(() => manager.initToken('too-long-user', impl.soPin, tooLong)).toThrowError(expect.objectContaining({ code: 'PinInvalid' }));
      expect(blanks()).toBe(before);
    });

    it.skipIf(!impl.sessionsOnEmptySlot)(`an empty slot that served a lookup (and so holds sessions) still initialises${impl.sessionsOnEmptySlot ? '' : ` (skipped: ${impl.name} opens no session on an empty slot)`}`, async () => {
      const blank = manager.list().find((t) => t.describe().status === 'NOT_INITIALIZED')!;
      expect(await blank.listKeys()).toEqual([]);
      const initialised = manager.get(manager.initToken('after-lookup', impl.soPin, '3456'));
      expect(initialised.describe()).toMatchObject({ label: 'after-lookup', status: 'OK' });
    });

    it('a module that fails to load is reported and skipped; the working one keeps its tokens', () => {
      const { modules, problems } = parseModuleConfig(`[${impl.moduleType}]\nlibrary = ${testbed.library}\n[broken]\nlibrary = /nonexistent/libpkcs11.so\n[typo]\nlibary = x\n`);
      expect(problems.map((p) => p.section)).toEqual(['typo']);
      const both = TokenManager.open(modules, silentLogger());
      expect(both.modules.map((m) => [m.config.type, m.port !== undefined])).toEqual([
        [impl.moduleType, true],
        ['broken', false],
      ]);
      expect(both.modules[1]!.error).toMatch(/nonexistent/);
      expect(both.list().map((t) => t.tokenId)).toContain(token.tokenId);
    });
  });
});
