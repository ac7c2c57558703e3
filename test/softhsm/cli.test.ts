/**
 * `xrd` as an administrator runs it: the daemon started by `xrd daemon start` in its own process
 * (first start initialises the SoftHSM token), then commands with --json, their exit codes and
 * coded errors, a kill -9 and a restart.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { createTestCa, opensslOk } from '../support/openssl.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const PIN = '112233';
let testbed: Testbed;
let daemon: ChildProcess;
let env: NodeJS.ProcessEnv;

async function xrd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; json: any }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [XRD, ...args, '--data-dir', testbed.dataDir], { env });
    return { code: 0, stdout, stderr, json: tryJson(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr, json: tryJson(e.stdout) };
  }
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Starts `xrd daemon start` and resolves once it says it listens (or rejects with its output). */
function startDaemon(): Promise<ChildProcess> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('node', [XRD, 'daemon', 'start', '--data-dir', testbed.dataDir, '--devices', testbed.devicesIni, '--pin-env', 'XRD_TEST_PIN', '--token', 'xrd-softtoken', '--no-prompt'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => {
      output += d;
      if (output.includes('signer listening')) resolvePromise(child);
    });
    child.stderr!.on('data', (d) => (output += d));
    child.once('exit', (code) => reject(new Error(`daemon exited with ${code}: ${output}`)));
  });
}

beforeAll(async () => {
  testbed = createTestbed();
  env = { ...testbed.env, XRD_TEST_PIN: PIN, XRD_LOG_LEVEL: 'warn' };
  daemon = await startDaemon();
});

afterAll(() => {
  daemon?.kill('SIGKILL');
  testbed.cleanup();
});

describe('xrd CLI with a daemon of its own', () => {
  let keyId: string;
  let certHash: string;
  const ca = createTestCa();

  it('first start initialised and logged in the software token; the socket is 0600', async () => {
    expect(statSync(join(testbed.dataDir, 'signer.sock')).mode & 0o777).toBe(0o600);
    const list = await xrd('token', 'list', '--json');
    expect(list.code).toBe(0);
    const token = list.json.find((t: any) => t.label === 'xrd-softtoken');
    expect(token).toMatchObject({ available: true, active: true, status: 'OK' });
    const human = await xrd('token', 'list');
    expect(human.stdout).toMatch(/xrd-softtoken\s+\S+\s+logged in\s+OK/);
  });

  it('refuses to start a second daemon on the same socket', async () => {
    await expect(startDaemon()).rejects.toThrow(/Signer\.AlreadyRunning|Another signer daemon/);
  });

  it('generates a key, a CSR openssl accepts, imports the certificate and lists both', async () => {
    const key = await xrd('key', 'generate', 'xrd-softtoken', '--usage', 'SIGNING', '--algorithm', 'RSA', '--bits', '3072', '--json');
    expect(key.code).toBe(0);
    keyId = key.json.keyId;
    expect(key.json).toMatchObject({ algorithm: 'RSA', size: '3072', usage: 'SIGNING', sensitive: true, extractable: false });
    const csrFile = join(testbed.dir, 'sign.csr');
    const csr = await xrd('csr', 'generate', keyId, '--member', 'DEV/COM/4321', '--subject', 'C=FI, O=Test client', '--out', csrFile);
    expect(csr.code).toBe(0);
    expect(opensslOk(['req', '-in', csrFile, '-verify', '-noout'])).toBe(true);
    const certFile = join(testbed.dir, 'sign.pem');
    writeFileSync(certFile, ca.issue(readFileSync(csrFile, 'utf8'), 'nonRepudiation'));
    const imported = await xrd('cert', 'import', certFile, '--chain', ca.certPath, '--json');
    expect(imported.code).toBe(0);
    certHash = imported.json.hash;
    expect(imported.json).toMatchObject({ keyId, memberId: 'DEV/COM/4321', status: 'registered', active: true });
    const certs = await xrd('cert', 'list', '--key', keyId, '--json');
    expect(certs.json.map((c: any) => c.hash)).toEqual([certHash]);
    const keys = await xrd('key', 'list', '--json');
    expect(keys.json.find((k: any) => k.keyId === keyId).certs).toHaveLength(1);
  });

  it('signs a file; openssl and `xrd verify` accept the signature, and reject it for another file', async () => {
    const data = join(testbed.dir, 'data.txt');
    const sig = join(testbed.dir, 'data.sig');
    writeFileSync(data, 'signed by the HSM');
    const signed = await xrd('sign', keyId, '--file', data, '--algorithm', 'SHA512withRSA', '--out', sig);
    expect(signed.code).toBe(0);
    const certFile = join(testbed.dir, 'sign.pem');
    const pub = join(testbed.dir, 'sign-pub.pem');
    writeFileSync(pub, new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'pem' }));
    expect(opensslOk(['dgst', '-sha512', '-verify', pub, '-signature', sig, data])).toBe(true);
    expect((await xrd('verify', '--cert', certFile, '--file', data, '--signature', sig, '--algorithm', 'SHA512withRSA')).code).toBe(0);
    writeFileSync(join(testbed.dir, 'other.txt'), 'something else');
    const bad = await xrd('verify', '--key', keyId, '--file', join(testbed.dir, 'other.txt'), '--signature', sig, '--algorithm', 'SHA512withRSA', '--json');
    expect(bad.code).toBe(1);
    expect(bad.json).toEqual({ valid: false });
  });

  it('coded errors and exit codes: wrong PIN, unknown key, PIN on the command line, no daemon', async () => {
    writeFileSync(join(testbed.dir, 'wrong-pin'), '999999\n');
    const wrong = await xrd('token', 'login', 'xrd-softtoken', '--pin-file', join(testbed.dir, 'wrong-pin'), '--json');
    expect(wrong.code).toBe(1);
    expect(wrong.json.error).toMatchObject({ code: 'PinIncorrect', faultCode: 'Signer.PinIncorrect' });
    const unknown = await xrd('sign', 'ABCDEF', '--digest', 'aa'.repeat(32));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('Signer.KeyNotFound');
    const argPin = await xrd('token', 'login', 'xrd-softtoken', '--pin', PIN);
    expect(argPin.code).toBe(2);
    expect(argPin.stderr).toContain('--insecure-pin-arg');
    const insisted = await xrd('token', 'login', 'xrd-softtoken', '--pin', PIN, '--insecure-pin-arg');
    expect(insisted.code).toBe(0);
    const noDaemon = await xrd('token', 'list', '--socket', join(testbed.dir, 'nobody.sock'));
    expect(noDaemon.code).toBe(3);
  });

  it('initialises a second token, logs in with a piped PIN, changes the PIN and logs out', async () => {
    env = { ...env, NEW_PIN: '445566', SO_PIN: '778899', NEWER_PIN: '990011' };
    const init = await xrd('token', 'init', '--label', 'second', '--pin-env', 'NEW_PIN', '--so-pin-env', 'SO_PIN', '--json');
    expect(init.code).toBe(0);
    expect(init.json).toMatchObject({ label: 'second', status: 'OK', active: false });
    const piped = execFileSync('node', [XRD, 'token', 'login', 'second', '--data-dir', testbed.dataDir], { env, input: '445566\n' }).toString();
    expect(piped).toMatch(/logged in/);
    expect((await xrd('token', 'change-pin', 'second', '--pin-env', 'NEW_PIN', '--new-pin-env', 'NEWER_PIN')).code).toBe(0);
    expect((await xrd('token', 'logout', 'second', '--json')).json.active).toBe(false);
    expect((await xrd('token', 'login', 'second', '--pin-env', 'NEW_PIN')).code).toBe(1);
    expect((await xrd('token', 'login', 'second', '--pin-env', 'NEWER_PIN')).code).toBe(0);
    const audit = readFileSync(join(testbed.dataDir, 'audit.log'), 'utf8');
    for (const pin of ['445566', '778899', '990011', PIN]) expect(audit).not.toContain(pin);
  });

  it('after kill -9 the daemon restarts over the stale socket and still has the key and certificate', async () => {
    daemon.kill('SIGKILL');
    await new Promise((r) => daemon.once('exit', r));
    expect(existsSync(join(testbed.dataDir, 'signer.sock'))).toBe(true);
    daemon = await startDaemon();
    const status = await xrd('daemon', 'status', '--json');
    expect(status.json.status).toBe('ok');
    expect(status.json.tokens.find((t: any) => t.active)).toBeDefined();
    const certs = await xrd('cert', 'list', '--json');
    expect(certs.json.map((c: any) => c.hash)).toContain(certHash);
    const sig = await xrd('sign', keyId, '--digest', 'ab'.repeat(32), '--algorithm', 'SHA256withRSA', '--json');
    expect(sig.code).toBe(0);
  });
});
