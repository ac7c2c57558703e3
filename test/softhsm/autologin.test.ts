/**
 * `xrd daemon start --autologin SOURCE` as an unattended restart uses it, with real SoftHSM tokens
 * and the daemon in its own process: PINs from a private file, a systemd credential or a program;
 * refused sources; a wrong PIN tried once and logged without the PIN; the daemon serving throughout.
 * On opencryptoki, which locks a PIN after three wrong tries: what autologin costs the token.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAutologinSource } from '../../src/cli/autologin.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import type { TokenView } from '../../src/signerapi/operations.ts';
import { OPENCRYPTOKI } from '../../softhsm/implementations.ts';
import { createTestbed, initTokenWithSoftHsmUtil, tokenFlagsSeenByPkcs11Tool, type Testbed } from '../../softhsm/testbed.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const PIN_A = 'pin-alpha-7391';
const PIN_B = 'pin-beta-5820';
const WRONG = 'wrong-pin-000417';

interface Started {
  child: ChildProcess;
  /** The daemon's log so far (pino JSON lines on stderr). */
  log(): string;
  tokens(): Promise<TokenView[]>;
  stop(): Promise<void>;
}

/** Starts the daemon with `args`; resolves once it listens (autologin has run by then). */
function startDaemon(testbed: Testbed, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Started> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [XRD, 'daemon', 'start', '--data-dir', testbed.dataDir, '--devices', testbed.devicesIni, '--no-prompt', ...args], {
      env: { ...testbed.env, XRD_LOG_LEVEL: 'info', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('signer listening')) return;
      const socket = join(testbed.dataDir, 'signer.sock');
      resolvePromise({
        child,
        log: () => err,
        tokens: async () => {
          const client = await SignerClient.connect(socket);
          try {
            return await client.call('listTokens', {});
          } finally {
            client.close();
          }
        },
        stop: () =>
          new Promise<void>((r) => {
            if (child.exitCode !== null) return r();
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      });
    });
    child.once('exit', (code) => reject(Object.assign(new Error(`daemon exited with ${code}: ${err}`), { code, stderr: err })));
  });
}

/** Runs the daemon once with an autologin source and returns what it logged and which tokens were active. */
async function runOnce(testbed: Testbed, source: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const daemon = await startDaemon(testbed, ['--autologin', source], extraEnv);
  let tokens: TokenView[];
  try {
    tokens = await daemon.tokens();
  } finally {
    await daemon.stop();
  }
  // Read once the daemon has exited: its logger writes asynchronously and flushes at exit.
  const active = Object.fromEntries(tokens.filter((t) => t.status !== 'NOT_INITIALIZED').map((t) => [t.label, t.active]));
  return { log: daemon.log(), active, tokens };
}

const privateFile = (path: string, content: string, mode = 0o600) => {
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
};

const logLines = (log: string) => log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('autologin with two tokens', () => {
  let testbed: Testbed;

  beforeAll(() => {
    testbed = createTestbed();
    initTokenWithSoftHsmUtil(testbed, 'alpha', PIN_A);
    initTokenWithSoftHsmUtil(testbed, 'beta', PIN_B);
  });
  afterAll(() => testbed?.cleanup());

  it('file: a private file of TOKEN=PIN lines (by label) logs both tokens in; no PIN reaches the log', async () => {
    const file = privateFile(join(testbed.dir, 'pins'), `# unattended restarts\nalpha=${PIN_A}\r\nbeta=${PIN_B}\n`);
    const run = await runOnce(testbed, `file:${file}`);
    expect(run.active).toEqual({ alpha: true, beta: true });
    const loggedIn = logLines(run.log).filter((l) => l.msg === 'autologin: token logged in');
    expect(loggedIn.map((l) => l.token).sort()).toEqual(['alpha', 'beta']);
    expect(run.log).not.toContain(PIN_A);
    expect(run.log).not.toContain(PIN_B);
  });

  it('file: one readable by group or others is refused, as ssh refuses such a key; the daemon serves with tokens logged out', async () => {
    const file = privateFile(join(testbed.dir, 'pins-open'), `alpha=${PIN_A}\n`, 0o644);
    const run = await runOnce(testbed, `file:${file}`);
    expect(run.active).toEqual({ alpha: false, beta: false });
    const refusal = logLines(run.log).find((l) => l.msg?.toString().startsWith('autologin: PIN source not used'));
    expect(refusal).toMatchObject({ code: 'Signer.InvalidConfiguration', source: `file:${file}` });
    expect(String(refusal!.reason)).toMatch(/refused: readable or writable by group or others \(mode 0644; chmod 600 it\)/);
  });

  it('a wrong PIN is tried once, logged with the token id and error code but not the PIN; the other token still logs in', async () => {
    const file = privateFile(join(testbed.dir, 'pins-wrong'), `alpha=${PIN_A}\nbeta=${WRONG}\nbeta=${WRONG}\n`);
    const audit = join(testbed.dataDir, 'audit.log');
    const auditBefore = existsSync(audit) ? readFileSync(audit, 'utf8').split('\n').length : 1;
    const run = await runOnce(testbed, `file:${file}`);
    expect(run.active).toEqual({ alpha: true, beta: false });
    const beta = run.tokens.find((t) => t.label === 'beta')!;
    const failure = logLines(run.log).find((l) => String(l.msg).startsWith('autologin: login failed'));
    expect(failure).toMatchObject({ token: 'beta', tokenId: beta.tokenId, code: 'Signer.PinIncorrect' });
    expect(run.log).not.toContain(WRONG);
    // The audit log shows one login attempt on beta, although the file names it twice.
    const attempts = readFileSync(audit, 'utf8').split('\n').slice(auditBefore - 1).filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === 'activateToken' && e.token === beta.tokenId);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ result: 'failure', error: 'Signer.PinIncorrect' });
  });

  it('a bare PIN with more than one initialised token is not guessed at', async () => {
    const file = privateFile(join(testbed.dir, 'pin-bare'), `${PIN_A}\n`);
    const run = await runOnce(testbed, `file:${file}`);
    expect(run.active).toEqual({ alpha: false, beta: false });
    expect(logLines(run.log).find((l) => String(l.msg).includes('a bare PIN needs exactly one initialised token'))).toMatchObject({ initialisedTokens: 2 });
  });

  it('a bare PIN holding "=" is not read as TOKEN=PIN: nothing is tried and no part of it reaches the log', async () => {
    const file = privateFile(join(testbed.dir, 'pin-bare-eq'), 'Secr3t=Pin-3305\n');
    const run = await runOnce(testbed, `file:${file}`);
    expect(run.active).toEqual({ alpha: false, beta: false });
    expect(logLines(run.log).find((l) => String(l.msg).includes('a bare PIN needs exactly one initialised token'))).toMatchObject({ line: 1, initialisedTokens: 2 });
    expect(run.log).not.toContain('Secr3t');
  });

  it('a line naming no token is logged by its line number, not by what it names; the other lines still log in', async () => {
    const file = privateFile(join(testbed.dir, 'pins-unknown'), `# two tokens\nMy=Secret-pin\nalpha=${PIN_A}\n`);
    const run = await runOnce(testbed, `file:${file}`);
    expect(run.active).toEqual({ alpha: true, beta: false });
    const failure = logLines(run.log).find((l) => String(l.msg).startsWith('autologin: login failed'));
    expect(failure).toMatchObject({ line: 2, code: 'Signer.TokenNotFound' });
    expect(failure).not.toHaveProperty('token');
    expect(run.log).not.toMatch(/"My\b|Secret-pin/);
  });

  it('exec: a program of the administrator prints the PINs; one others can modify is refused', async () => {
    const program = privateFile(join(testbed.dir, 'pins-from-vault.sh'), `#!/bin/sh\nprintf 'alpha=%s\\nbeta=%s\\n' "$VAULT_PIN_A" "$VAULT_PIN_B"\n`, 0o700);
    const run = await runOnce(testbed, `exec:${program}`, { VAULT_PIN_A: PIN_A, VAULT_PIN_B: PIN_B });
    expect(run.active).toEqual({ alpha: true, beta: true });

    chmodSync(program, 0o777);
    const refused = await runOnce(testbed, `exec:${program}`, { VAULT_PIN_A: PIN_A, VAULT_PIN_B: PIN_B });
    expect(refused.active).toEqual({ alpha: false, beta: false });
    expect(refused.log).toContain('writable by group or others');

    const failing = privateFile(join(testbed.dir, 'vault-down.sh'), '#!/bin/sh\necho "vault sealed" >&2\nexit 3\n', 0o700);
    const down = await runOnce(testbed, `exec:${failing}`);
    expect(down.active).toEqual({ alpha: false, beta: false });
    expect(down.log).toContain(`autologin program ${failing} exited with 3`);
  });

  it('a SOURCE that is none of the three is a usage error (exit 2) before anything starts', async () => {
    const attempt = startDaemon(testbed, ['--autologin', 'vault:secret/xrd']);
    await expect(attempt).rejects.toMatchObject({ code: 2 });
    await expect(startDaemon(testbed, ['--autologin', 'exec:relative/path.sh'])).rejects.toMatchObject({ code: 2 });
    await expect(startDaemon(testbed, ['--autologin', `file:${join(testbed.dir, 'pins')}`, '--pin-env', 'X'])).rejects.toMatchObject({ code: 2 });
  });
});

describe('autologin with one token', () => {
  let testbed: Testbed;

  beforeAll(() => {
    testbed = createTestbed();
    initTokenWithSoftHsmUtil(testbed, 'only', PIN_A);
  });
  afterAll(() => testbed?.cleanup());

  it("credential: systemd's $CREDENTIALS_DIRECTORY/NAME holding a bare PIN logs the one token in", async () => {
    const credentials = join(testbed.dir, 'credentials');
    mkdirSync(credentials, { mode: 0o700 });
    privateFile(join(credentials, 'xrd-signer-pins'), `${PIN_A}\n`, 0o400);
    const run = await runOnce(testbed, 'credential:xrd-signer-pins', { CREDENTIALS_DIRECTORY: credentials });
    expect(run.active).toEqual({ only: true });
    expect(run.log).not.toContain(PIN_A);

    const outside = await runOnce(testbed, 'credential:xrd-signer-pins', { CREDENTIALS_DIRECTORY: '' });
    expect(outside.active).toEqual({ only: false });
    expect(outside.log).toContain('needs $CREDENTIALS_DIRECTORY');
  });

  it('file: a bare PIN logs in the one initialised token, named in the log by its id', async () => {
    const file = privateFile(join(testbed.dir, 'pin'), PIN_A);
    const run = await runOnce(testbed, `file:${file}`);
    expect(run.active).toEqual({ only: true });
    const line = logLines(run.log).find((l) => l.msg === 'autologin: token logged in');
    expect(line).toMatchObject({ token: run.tokens[0]!.tokenId, tokenId: run.tokens[0]!.tokenId });
  });
});

describe('autologin with one token whose PIN holds "="', () => {
  const PIN_EQ = 'Secr3t=Pin-8812';
  let testbed: Testbed;

  beforeAll(() => {
    testbed = createTestbed();
    initTokenWithSoftHsmUtil(testbed, 'eq', PIN_EQ);
  });
  afterAll(() => testbed?.cleanup());

  it('a single line whose part before "=" names no token is the PIN; the log names the token by its id, never the PIN', async () => {
    const run = await runOnce(testbed, `file:${privateFile(join(testbed.dir, 'pin'), `${PIN_EQ}\n`)}`);
    expect(run.active).toEqual({ eq: true });
    const line = logLines(run.log).find((l) => l.msg === 'autologin: token logged in');
    expect(line).toMatchObject({ line: 1, token: run.tokens[0]!.tokenId });
    expect(run.log).not.toContain('Secr3t');
  });

  it('a single line whose part before "=" names the token is TOKEN=PIN', async () => {
    const run = await runOnce(testbed, `file:${privateFile(join(testbed.dir, 'pin-named'), `eq=${PIN_EQ}\n`)}`);
    expect(run.active).toEqual({ eq: true });
    expect(logLines(run.log).find((l) => l.msg === 'autologin: token logged in')).toMatchObject({ token: 'eq' });
    expect(run.log).not.toContain('Secr3t');
  });
});

describe.skipIf(OPENCRYPTOKI.unavailable)(`autologin on a token that locks its PIN (opencryptoki)${OPENCRYPTOKI.unavailable ? ` (skipped: ${OPENCRYPTOKI.unavailable})` : ''}`, () => {
  const PIN = '2468';
  let testbed: Testbed;
  const pkcs11Tool = (args: string[]) => execFileSync('pkcs11-tool', ['--module', testbed.library, ...args], { env: testbed.env, stdio: 'pipe' }).toString();
  const flags = () => tokenFlagsSeenByPkcs11Tool(testbed, 'counted');

  beforeAll(async () => {
    testbed = await OPENCRYPTOKI.create();
    pkcs11Tool(['--slot-index', '0', '--init-token', '--label', 'counted', '--so-pin', OPENCRYPTOKI.soPin]);
    pkcs11Tool(['--token-label', 'counted', '--init-pin', '--login', '--login-type', 'so', '--so-pin', OPENCRYPTOKI.soPin, '--new-pin', PIN]);
  });
  afterAll(() => testbed?.cleanup());

  it('a wrong PIN the source names twice costs the token one try: count low, not final try', async () => {
    const run = await runOnce(testbed, `file:${privateFile(join(testbed.dir, 'pins-wrong'), 'counted=1357\ncounted=1357\n')}`);
    expect(run.active).toEqual({ counted: false });
    expect(run.tokens.find((t) => t.label === 'counted')!.status).toBe('USER_PIN_COUNT_LOW');
    expect(flags()).toContain('user PIN count low');
  });

  it('at the final try autologin does not try even the right PIN, and the token stays one try from locking', async () => {
    expect(() => pkcs11Tool(['--token-label', 'counted', '--login', '--pin', '9753', '--list-objects'])).toThrow();
    expect(flags()).toContain('final user PIN try');
    const run = await runOnce(testbed, `file:${privateFile(join(testbed.dir, 'pins-right'), `counted=${PIN}\n`)}`);
    expect(run.active).toEqual({ counted: false });
    expect(logLines(run.log).find((l) => l.msg === 'autologin: token not tried')).toMatchObject({ token: 'counted', code: expect.stringContaining('USER_PIN_FINAL_TRY') });
    expect(flags()).toContain('final user PIN try');
  });
});

describe('exec: a program that does not finish', () => {
  let dir: string;
  const pids: number[] = [];
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  /** Bounded: the program gets SIGKILL after the grace period, so it is gone soon after. */
  const gone = async (pid: number) => {
    for (let i = 0; i < 200 && alive(pid); i++) await sleep(25);
    return !alive(pid);
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'xrd-autologin-exec-'));
  });
  afterAll(() => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('one that ignores SIGTERM is killed after the grace period, and autologin goes on without its PINs', async () => {
    const pidFile = join(dir, 'stubborn.pid');
    const program = privateFile(join(dir, 'stubborn.sh'), `#!/bin/sh\ntrap '' TERM\necho $$ > ${pidFile}\nprintf 'alpha=%s\\n' partial\nwhile :; do sleep 1; done\n`, 0o700);
    await expect(readAutologinSource({ kind: 'exec', path: program }, process.env, { timeoutMs: 500, graceMs: 200 })).rejects.toMatchObject({
      code: 'IOError',
      details: { reason: expect.stringMatching(/did not finish within 0.5 s .*stopped$/) },
    });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    pids.push(pid);
    expect(await gone(pid)).toBe(true);
  });

  it('one whose child keeps its output open does not hold autologin up', async () => {
    const pidFile = join(dir, 'child.pid');
    // setsid: the child leaves the program's process group, so only the time limit ends the wait.
    const program = privateFile(join(dir, 'leaves-child.sh'), `#!/bin/sh\nsetsid sleep 60 &\necho $! > ${pidFile}\nprintf 'alpha=%s\\n' x\nexit 0\n`, 0o700);
    await expect(readAutologinSource({ kind: 'exec', path: program }, process.env, { timeoutMs: 500, graceMs: 200 })).rejects.toMatchObject({
      code: 'IOError',
      details: { reason: expect.stringContaining('kept its output open') },
    });
    pids.push(Number(readFileSync(pidFile, 'utf8')));
  });
});
