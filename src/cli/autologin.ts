/**
 * PIN autologin for unattended restarts (`xrd daemon start --autologin SOURCE`): the daemon reads
 * token PINs from a source the administrator chose and logs each named token in once.
 *
 * Sources: `file:PATH` (refused when group or others have any access to it, as ssh refuses a
 * private key), `credential:NAME` (systemd's `$CREDENTIALS_DIRECTORY/NAME`, for
 * `LoadCredentialEncrypted=`), `exec:PATH` (a program that prints the PINs, e.g. from a vault).
 * Content: `TOKEN=PIN` lines (token by id, label, serial or pkcs11: URI; `#` comments), or a single
 * PIN when exactly one token is initialised.
 *
 * Each token is tried once: a wrong PIN is never tried again, because HSMs count wrong PINs and
 * lock the token; a token one wrong PIN away from locking is not tried at all. Failures are logged
 * with the token id and error code, never the PIN, and the daemon goes on serving: the token can be
 * logged in with `xrd token login`. The source's bytes are zeroed after use and no PIN string is
 * kept (JavaScript strings cannot be wiped; the garbage collector reclaims them).
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { SignerService } from '../signer/signer-service.ts';

export type AutologinSource = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'credential'; readonly name: string } | { readonly kind: 'exec'; readonly path: string };

export interface AutologinOutcome {
  /** The token as the source names it (for a single PIN: the one initialised token's id). */
  readonly token: string;
  readonly tokenId?: string;
  readonly result: 'loggedIn' | 'alreadyActive' | 'skipped' | 'failed';
  /** The error code of a failure (e.g. `Signer.PinIncorrect`), or why a token was skipped. */
  readonly code?: string;
}

/** Larger sources are not PIN lists. */
const MAX_SOURCE_BYTES = 64 * 1024;
const EXEC_TIMEOUT_MS = 30_000;
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
export async function readAutologinSource(source: AutologinSource, env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  if (source.kind === 'file') return readPrivateFile(source.path, 0o077, 'readable or writable by group or others');
  if (source.kind === 'credential') {
    const dir = env.CREDENTIALS_DIRECTORY;
    if (!dir) throw new XrdError('InvalidConfiguration', { reason: `credential:${source.name} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential= or LoadCredentialEncrypted=)` });
    // systemd makes the directory private to the service; no mode check beyond its own.
    return readPrivateFile(join(dir, source.name), 0, '');
  }
  // Whoever can change the program can read the PINs: it must be as private as a PIN file's writer.
  closeSync(checkedOpen(source.path, 0o022, 'writable by group or others'));
  return runProgram(source.path, env);
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

/** Runs the program without a shell; its standard output is the content, its stderr goes to ours. */
function runProgram(path: string, env: NodeJS.ProcessEnv): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env, stdio: ['ignore', 'pipe', 'inherit'], timeout: EXEC_TIMEOUT_MS });
    const chunks: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_SOURCE_BYTES) chunks.push(c);
      else child.kill('SIGKILL');
    });
    child.once('error', (err) => reject(new XrdError('IOError', { reason: `cannot run ${path}: ${err.message}` }, { cause: err })));
    child.once('close', (code, signal) => {
      const out = Buffer.concat(chunks);
      for (const c of chunks) c.fill(0);
      if (code === 0 && size <= MAX_SOURCE_BYTES) return resolve(out);
      out.fill(0);
      const why = size > MAX_SOURCE_BYTES ? `printed more than ${MAX_SOURCE_BYTES} bytes` : signal ? `was stopped by ${signal}${signal === 'SIGTERM' ? ` (over ${EXEC_TIMEOUT_MS / 1000} s?)` : ''}` : `exited with ${code}`;
      reject(new XrdError('IOError', { reason: `autologin program ${path} ${why}` }));
    });
  });
}

/**
 * `TOKEN=PIN` lines (split at the first `=`; blank lines and `#` comments skipped), or one line
 * without `=`: a single PIN (token undefined). Errors name line numbers, never content.
 * @throws InvalidConfiguration
 */
export function parseAutologinContent(content: Buffer): { token?: string; pin: string }[] {
  const lines = content.toString('utf8').split('\n').map((l) => l.replace(/\r$/, ''));
  const entries: { token?: string; pin: string }[] = [];
  let bare = 0;
  lines.forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) {
      bare++;
      entries.push({ pin: line });
      return;
    }
    const token = line.slice(0, eq).trim();
    const pin = line.slice(eq + 1);
    if (!token || !pin) throw new XrdError('InvalidConfiguration', { reason: `autologin line ${i + 1}: expected TOKEN=PIN` });
    entries.push({ token, pin });
  });
  if (bare > 0 && entries.length > 1) throw new XrdError('InvalidConfiguration', { reason: 'autologin source mixes a bare PIN with other lines: write TOKEN=PIN for each token' });
  if (entries.length === 0) throw new XrdError('InvalidConfiguration', { reason: 'autologin source holds no PIN' });
  return entries;
}

/**
 * Reads the source and logs each named token in, once. Never throws: every problem is logged (and
 * returned), and the daemon goes on without the tokens it could not log in.
 */
export async function autologin(service: Pick<SignerService, 'handle'>, source: AutologinSource, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<AutologinOutcome[]> {
  const from = describeSource(source);
  let content: Buffer | undefined;
  let entries: { token?: string; pin: string }[];
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
  try {
    if (entries.length === 1 && entries[0]!.token === undefined) {
      const initialised = (await service.handle('listTokens', {})).filter((t) => t.status !== 'NOT_INITIALIZED');
      if (initialised.length !== 1) {
        log.error({ source: from, initialisedTokens: initialised.length }, 'autologin: a bare PIN needs exactly one initialised token; write TOKEN=PIN lines');
        return [];
      }
      entries[0] = { token: initialised[0]!.tokenId, pin: entries[0]!.pin };
    }
    const tried = new Set<string>();
    for (const entry of entries) {
      const ref = entry.token!;
      const outcome = await loginOnce(service, ref, entry.pin, tried);
      outcomes.push(outcome);
      const fields = { source: from, token: ref, tokenId: outcome.tokenId, code: outcome.code };
      if (outcome.result === 'loggedIn') log.info(fields, 'autologin: token logged in');
      else if (outcome.result === 'alreadyActive') log.info(fields, 'autologin: token already logged in');
      else if (outcome.result === 'skipped') log.warn(fields, 'autologin: token not tried');
      else log.error(fields, 'autologin: login failed and is not retried (HSMs lock tokens after wrong PINs); use xrd token login');
    }
  } finally {
    // No PIN outlives the logins.
    entries.length = 0;
  }
  return outcomes;
}

async function loginOnce(service: Pick<SignerService, 'handle'>, ref: string, pin: string, tried: Set<string>): Promise<AutologinOutcome> {
  let token;
  try {
    token = await service.handle('getToken', { token: ref });
  } catch (err) {
    return { token: ref, result: 'failed', code: toXrdError(err).faultCode };
  }
  const tokenId = token.tokenId;
  if (tried.has(tokenId)) return { token: ref, tokenId, result: 'skipped', code: 'named more than once; tried once' };
  tried.add(tokenId);
  if (token.active) return { token: ref, tokenId, result: 'alreadyActive' };
  if (DO_NOT_TRY.has(token.status)) return { token: ref, tokenId, result: 'skipped', code: `status ${token.status}: one more wrong PIN would lock it` };
  try {
    await service.handle('activateToken', { token: tokenId, pin });
    return { token: ref, tokenId, result: 'loggedIn' };
  } catch (err) {
    return { token: ref, tokenId, result: 'failed', code: toXrdError(err).faultCode };
  }
}
