/**
 * PIN autologin for unattended restarts (`xrd daemon start --autologin SOURCE`): the daemon reads
 * token PINs from a source the administrator chose and logs each named token in once.
 *
 * Sources: `file:PATH` (refused when group or others have any access to it, as ssh refuses a
 * private key), `credential:NAME` (systemd's `$CREDENTIALS_DIRECTORY/NAME`, for
 * `LoadCredentialEncrypted=`), `exec:PATH` (a program that prints the PINs, e.g. from a vault).
 * Content: `TOKEN=PIN` lines (token by id, label, serial or pkcs11: URI; `#` comments), or a single
 * PIN when exactly one token is initialised. A source of one line is read as `TOKEN=PIN` only when
 * the part before its first `=` names a token; otherwise the whole line is the PIN (`Secr3t=Pin`).
 * Logs name a token only once it resolved to one, else the line number: a PIN holding `=` never
 * shows up in the log as a token name.
 *
 * Each token is tried once: a wrong PIN is never tried again, because HSMs count wrong PINs and
 * lock the token; a token one wrong PIN away from locking is not tried at all. Failures are logged
 * with the token id (or the line) and error code, never the PIN, and the daemon goes on serving: the token can be
 * logged in with `xrd token login`. The source's bytes are zeroed after use and no PIN string is
 * kept (JavaScript strings cannot be wiped; the garbage collector reclaims them).
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { OperationHandler, TokenView } from '../signerapi/operations.ts';

export type AutologinSource = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'credential'; readonly name: string } | { readonly kind: 'exec'; readonly path: string };

export interface AutologinOutcome {
  /** The source's line (1-based): what the log names when the line names no token. */
  readonly line: number;
  /** The token as the source names it (for a single PIN: the token's id); only once it resolved. */
  readonly token?: string;
  readonly tokenId?: string;
  readonly result: 'loggedIn' | 'alreadyActive' | 'skipped' | 'failed';
  /** The error code of a failure (e.g. `Signer.PinIncorrect`), or why a token was skipped. */
  readonly code?: string;
}

/** Larger sources are not PIN lists. */
const MAX_SOURCE_BYTES = 64 * 1024;

/** How long an `exec:` program may take, and how long it gets after SIGTERM before SIGKILL. */
export interface ExecLimits {
  readonly timeoutMs: number;
  readonly graceMs: number;
}
const EXEC_LIMITS: ExecLimits = { timeoutMs: 30_000, graceMs: 2_000 };
/** Statuses where one more wrong PIN locks the token (or it is locked already): not tried. */
const DO_NOT_TRY = new Set(['USER_PIN_LOCKED', 'USER_PIN_FINAL_TRY']);

/** @throws InvalidConfiguration for a SOURCE that is not `file:`, `credential:` or `exec:` */
export function parseAutologinSource(spec: string): AutologinSource {
  const colon = spec.indexOf(':');
  const kind = spec.slice(0, colon);
  const value = spec.slice(colon + 1);
  if (colon > 0 && value !== '') {
    if (kind === 'file') return { kind, path: value };
    if (kind === 'exec') {
      // No PATH lookup: the program is the one the administrator named, nothing found on the way.
      if (!isAbsolute(value)) throw new XrdError('InvalidConfiguration', { reason: `--autologin exec: needs an absolute path, got ${value}` });
      return { kind, path: value };
    }
    if (kind === 'credential') {
      if (!/^[A-Za-z0-9_.:@-]+$/.test(value) || value === '.' || value === '..') throw new XrdError('InvalidConfiguration', { reason: `--autologin credential: name ${value} is not a plain credential name` });
      return { kind, name: value };
    }
  }
  throw new XrdError('InvalidConfiguration', { reason: '--autologin takes file:PATH, credential:NAME or exec:PATH' });
}

export function describeSource(source: AutologinSource): string {
  return source.kind === 'credential' ? `credential:${source.name}` : `${source.kind}:${source.path}`;
}

/**
 * The source's bytes. The caller zeroes them when done.
 * @throws InvalidConfiguration (a file others can read, a program others can change, no
 *   CREDENTIALS_DIRECTORY), IOError (unreadable, a program that fails)
 */
export async function readAutologinSource(source: AutologinSource, env: NodeJS.ProcessEnv = process.env, limits: ExecLimits = EXEC_LIMITS): Promise<Buffer> {
  if (source.kind === 'file') return readPrivateFile(source.path, 0o077, 'readable or writable by group or others');
  if (source.kind === 'credential') {
    const dir = env.CREDENTIALS_DIRECTORY;
    if (!dir) throw new XrdError('InvalidConfiguration', { reason: `credential:${source.name} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential= or LoadCredentialEncrypted=)` });
    // systemd makes the directory private to the service; no mode check beyond its own.
    return readPrivateFile(join(dir, source.name), 0, '');
  }
  // Whoever can change the program can read the PINs: it must be as private as a PIN file's writer.
  closeSync(checkedOpen(source.path, 0o022, 'writable by group or others'));
  return runProgram(source.path, env, limits);
}

/** Opens `path` and checks, on the opened file, its owner (us or root) and its mode. */
function checkedOpen(path: string, forbidden: number, what: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot open ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }, { cause: err });
  }
  const st = fstatSync(fd);
  const uid = process.getuid?.() ?? 0;
  const problem = !st.isFile() ? 'not a regular file' : st.uid !== uid && st.uid !== 0 ? `owned by uid ${st.uid}, not by this user (${uid}) or root` : st.mode & forbidden ? `${what} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; chmod ${forbidden === 0o077 ? '600' : 'go-w'} it)` : undefined;
  if (problem) {
    closeSync(fd);
    throw new XrdError('InvalidConfiguration', { reason: `autologin source ${path} refused: ${problem}` });
  }
  return fd;
}

function readPrivateFile(path: string, forbidden: number, what: string): Buffer {
  const fd = checkedOpen(path, forbidden, what);
  try {
    if (fstatSync(fd).size > MAX_SOURCE_BYTES) throw new XrdError('InvalidConfiguration', { reason: `autologin source ${path} is larger than ${MAX_SOURCE_BYTES} bytes` });
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs the program without a shell; its standard output is the content, its stderr goes to ours.
 * At the time limit we stop reading at once (a program it started may hold the pipe open for ever),
 * send SIGTERM to its process group and SIGKILL after the grace period (it may ignore SIGTERM).
 */
function runProgram(path: string, env: NodeJS.ProcessEnv, limits: ExecLimits): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Its own process group, so that stopping it reaches what it started too.
    const child = spawn(path, [], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const wipe = () => {
      for (const c of chunks) c.fill(0);
      chunks.length = 0;
    };
    const settle = (err?: XrdError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        wipe();
        return reject(err);
      }
      const out = Buffer.concat(chunks);
      wipe();
      resolve(out);
    };
    const signal = (name: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, name);
      } catch {
        // The group is gone already.
      }
    };
    const stop = (why: string) => {
      child.stdout.destroy();
      signal('SIGTERM');
      setTimeout(() => signal('SIGKILL'), limits.graceMs).unref();
      settle(new XrdError('IOError', { reason: `autologin program ${path} ${why}` }));
    };
    const timer = setTimeout(() => stop(`did not finish within ${limits.timeoutMs / 1000} s (it, or a program it started, kept its output open); stopped`), limits.timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      if (settled) return void c.fill(0);
      size += c.length;
      if (size <= MAX_SOURCE_BYTES) chunks.push(c);
      else {
        c.fill(0);
        stop(`printed more than ${MAX_SOURCE_BYTES} bytes`);
      }
    });
    child.once('error', (err) => settle(new XrdError('IOError', { reason: `cannot run ${path}: ${err.message}` }, { cause: err })));
    child.once('close', (code, sig) => {
      if (code === 0) return settle();
      settle(new XrdError('IOError', { reason: `autologin program ${path} ${sig ? `was stopped by ${sig}` : `exited with ${code}`}` }));
    });
  });
}

/** One line of an autologin source that holds a PIN. */
export interface AutologinEntry {
  /** 1-based, for the log: a line's text may be a PIN. */
  readonly line: number;
  /** The part before the first `=` (trimmed), when there is one and a PIN after it. */
  readonly token?: string;
  /** The part after the first `=`; the whole line when `token` is undefined. */
  readonly pin: string;
  /** The whole line, kept for a source of one line only: its PIN when `token` names no token. */
  readonly whole?: string;
}

/**
 * `TOKEN=PIN` lines (split at the first `=`; blank lines and `#` comments skipped), or a single
 * line: `TOKEN=PIN` or a bare PIN, which `autologin` tells apart by whether `token` names a
 * token. Errors name line numbers, never content.
 * @throws InvalidConfiguration
 */
export function parseAutologinContent(content: Buffer): AutologinEntry[] {
  const lines = content.toString('utf8').split('\n').map((l) => l.replace(/\r$/, ''));
  const used = lines.map((text, i) => ({ text, line: i + 1 })).filter(({ text }) => text.trim() !== '' && !text.trimStart().startsWith('#'));
  if (used.length === 0) throw new XrdError('InvalidConfiguration', { reason: 'autologin source holds no PIN' });
  const split = (text: string) => {
    const eq = text.indexOf('=');
    return eq < 0 ? undefined : { token: text.slice(0, eq).trim(), pin: text.slice(eq + 1) };
  };
  if (used.length === 1) {
    const { text, line } = used[0]!;
    const parts = split(text);
    return [parts && parts.token && parts.pin ? { line, token: parts.token, pin: parts.pin, whole: text } : { line, pin: text }];
  }
  return used.map(({ text, line }) => {
    const parts = split(text);
    if (!parts) throw new XrdError('InvalidConfiguration', { reason: `autologin line ${line}: a source of more than one line needs TOKEN=PIN on each` });
    if (!parts.token || !parts.pin) throw new XrdError('InvalidConfiguration', { reason: `autologin line ${line}: expected TOKEN=PIN` });
    return { line, token: parts.token, pin: parts.pin };
  });
}

/**
 * Reads the source and logs each named token in, once. Never throws: every problem is logged (and
 * returned), and the daemon goes on without the tokens it could not log in.
 */
export async function autologin(service: OperationHandler, source: AutologinSource, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<AutologinOutcome[]> {
  const from = describeSource(source);
  let content: Buffer | undefined;
  let entries: AutologinEntry[];
  try {
    content = await readAutologinSource(source, env);
    entries = parseAutologinContent(content);
  } catch (err) {
    const e = toXrdError(err);
    log.error({ source: from, code: e.faultCode, reason: e.message }, 'autologin: PIN source not used; tokens stay logged out (xrd token login)');
    return [];
  } finally {
    content?.fill(0);
  }

  const outcomes: AutologinOutcome[] = [];
  const report = (outcome: AutologinOutcome, extra: object = {}) => {
    outcomes.push(outcome);
    // `token` only once it named a token: an unresolved left side may be part of a PIN.
    const fields = { source: from, line: outcome.line, ...(outcome.tokenId ? { token: outcome.token, tokenId: outcome.tokenId } : {}), code: outcome.code, ...extra };
    if (outcome.result === 'loggedIn') log.info(fields, 'autologin: token logged in');
    else if (outcome.result === 'alreadyActive') log.info(fields, 'autologin: token already logged in');
    else if (outcome.result === 'skipped') log.warn(fields, 'autologin: token not tried');
    else log.error(fields, 'autologin: login failed and is not retried (HSMs lock tokens after wrong PINs); use xrd token login');
  };
  try {
    const tried = new Set<string>();
    if (entries.length === 1) {
      const only = entries[0]!;
      const named = only.token === undefined ? undefined : await findToken(service, only.token);
      if (named && 'view' in named) {
        report(await loginOnce(service, { line: only.line, token: only.token }, named.view, only.pin, tried));
        return outcomes;
      }
      // Only a left side that names no token makes the line a PIN: after another failure (the
      // signer's), trying the whole line could cost the token a wrong-PIN count.
      if (named && !named.namesNone) {
        report({ line: only.line, result: 'failed', code: named.code });
        return outcomes;
      }
      const initialised = (await service.handle('listTokens', {})).filter((t) => t.status !== 'NOT_INITIALIZED');
      if (initialised.length !== 1) {
        log.error({ source: from, line: only.line, initialisedTokens: initialised.length }, 'autologin: a bare PIN needs exactly one initialised token; write TOKEN=PIN lines');
        return outcomes;
      }
      const view = initialised[0]!;
      const readAs = only.token === undefined ? {} : { readAs: 'the whole line is the PIN: the part before = names no token' };
      report(await loginOnce(service, { line: only.line, token: view.tokenId }, view, only.whole ?? only.pin, tried), readAs);
      return outcomes;
    }
    for (const entry of entries) {
      const found = await findToken(service, entry.token!);
      if ('code' in found) report({ line: entry.line, result: 'failed', code: found.code });
      else report(await loginOnce(service, { line: entry.line, token: entry.token }, found.view, entry.pin, tried));
    }
  } finally {
    // No PIN outlives the logins.
    entries.length = 0;
  }
  return outcomes;
}

/**
 * The token `ref` names, or the code of why it names none (the error's details, which hold `ref`,
 * are not kept). `namesNone`: no token has that id, label or serial (or it is no pkcs11: URI).
 */
async function findToken(service: OperationHandler, ref: string): Promise<{ view: TokenView } | { code: string; namesNone: boolean }> {
  try {
    return { view: await service.handle('getToken', { token: ref }) };
  } catch (err) {
    const e = toXrdError(err);
    return { code: e.faultCode, namesNone: e.code === 'TokenNotFound' || e.code === 'InvalidIdentifier' };
  }
}

async function loginOnce(service: OperationHandler, at: { line: number; token?: string }, token: TokenView, pin: string, tried: Set<string>): Promise<AutologinOutcome> {
  const tokenId = token.tokenId;
  if (tried.has(tokenId)) return { ...at, tokenId, result: 'skipped', code: 'named more than once; tried once' };
  tried.add(tokenId);
  if (token.active) return { ...at, tokenId, result: 'alreadyActive' };
  if (DO_NOT_TRY.has(token.status)) return { ...at, tokenId, result: 'skipped', code: `status ${token.status}: one more wrong PIN would lock it` };
  try {
    await service.handle('activateToken', { token: tokenId, pin });
    return { ...at, tokenId, result: 'loggedIn' };
  } catch (err) {
    return { ...at, tokenId, result: 'failed', code: toXrdError(err).faultCode };
  }
}
