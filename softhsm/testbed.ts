/**
 * The SoftHSM testbed: a throw-away token directory with its own softhsm2.conf and devices.ini, and
 * the fault-injecting module for removal tests. Tests and benchmarks use it; the daemon does not.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSoftHsmHome, findSoftHsmLibrary } from '../src/token/softhsm.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface Testbed {
  readonly dir: string;
  readonly dataDir: string;
  readonly devicesIni: string;
  readonly library: string;
  /** Environment for child processes (daemon, pkcs11-tool, softhsm2-util) sharing the token. */
  readonly env: NodeJS.ProcessEnv;
  cleanup(): void;
}

export interface TestbedOptions {
  /** Load SoftHSM through softhsm/fault-injector.c; the token is "removed" while `faultFlag` exists. */
  readonly faultInjector?: boolean;
  /** Extra devices.ini lines for the module section. */
  readonly moduleSettings?: string;
}

export function createTestbed(options: TestbedOptions = {}): Testbed {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-test-'));
  const softhsmConf = ensureSoftHsmHome(join(dir, 'softhsm'));
  const real = findSoftHsmLibrary();
  if (!real) throw new Error('SoftHSM is not installed (run scripts/bootstrap.sh)');
  const library = options.faultInjector ? buildFaultInjector() : real;
  const devicesIni = join(dir, 'devices.ini');
  writeFileSync(devicesIni, `[softhsm]\nlibrary = ${library}\n${options.moduleSettings ?? ''}\n`);
  const faultEnv = { SOFTHSM2_CONF: softhsmConf, XRD_FAULT_MODULE: real, XRD_FAULT_FLAG: join(dir, 'token-removed'), XRD_FAULT_RESET: join(dir, 'reset-sessions'), XRD_FAULT_PIN: join(dir, 'pin-changed') };
  const env: NodeJS.ProcessEnv = { ...process.env, ...faultEnv };
  Object.assign(process.env, faultEnv);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  return { dir, dataDir, devicesIni, library, env, cleanup: () => removeTestbedDir(dir) };
}

/** Pulls the token out of (true) or puts it back into (false) the fault-injecting module. */
export function setTokenRemoved(testbed: Testbed, removed: boolean): void {
  const flag = testbed.env.XRD_FAULT_FLAG!;
  if (removed) writeFileSync(flag, '');
  else rmSync(flag, { force: true });
}

/** Makes the fault-injecting module drop every session once, silently, on its next call. */
export function resetSessionsSilently(testbed: Testbed): void {
  writeFileSync(testbed.env.XRD_FAULT_RESET!, '');
}

/** While set, the fault-injecting module refuses every PIN, as if it had been changed elsewhere. */
export function setPinRejected(testbed: Testbed, rejected: boolean): void {
  if (rejected) writeFileSync(testbed.env.XRD_FAULT_PIN!, '');
  else rmSync(testbed.env.XRD_FAULT_PIN!, { force: true });
}

/** Initialises a token with SoftHSM's own tool, as an administrator outside the signer would. */
export function initTokenWithSoftHsmUtil(testbed: Testbed, label: string, pin: string, soPin = '0000'): void {
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { env: testbed.env, stdio: 'pipe' });
}

/** The flags of token `label` as pkcs11-tool, another process, lists them (`user PIN count low, …`). */
export function tokenFlagsSeenByPkcs11Tool(testbed: Testbed, label: string): string {
  const listing = execFileSync('pkcs11-tool', ['--module', testbed.library, '--list-token-slots'], { env: testbed.env, stdio: 'pipe' }).toString();
  const slot = listing.split(/^(?=Slot )/m).find((block) => block.split('\n').some((line) => /^\s*token label\s*:/.test(line) && line.split(':')[1]!.trim() === label));
  return /token flags\s*:\s*(.*)/.exec(slot ?? '')?.[1] ?? '';
}

/** Compiles softhsm/fault-injector.c once (again when the source is newer). */
export function buildFaultInjector(): string {
  const source = join(HERE, 'fault-injector.c');
  const output = join(HERE, 'build', 'fault-injector.so');
  if (!existsSync(output) || statSync(output).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(dirname(output), { recursive: true });
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', output, source, '-ldl', '-lpthread'], { stdio: 'pipe' });
  }
  return output;
}

/**
 * Removes a testbed's folder. SoftHSM creates an object's `.lock` file whenever a thread reads the
 * object, and a daemon's token work that outlived its request (a key generation whose caller timed
 * out) can still be touching the token while the folder goes: ENOTEMPTY, retried as Node's rm does.
 */
export function removeTestbedDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
}
