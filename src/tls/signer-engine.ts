/**
 * The signer engine (engine/xrd-signer-engine.c) as Node sees it: where its shared object is (built
 * on first use) and the key identifier it takes. docs/tls.md explains the design.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XrdError } from '../platform/errors.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SIGNER_ENGINE_SOURCE = join(HERE, 'engine', 'xrd-signer-engine.c');
/** Gitignored; scripts/bootstrap.sh builds into the same place. */
export const SIGNER_ENGINE_LIBRARY = resolve(HERE, '..', '..', 'build', 'xrd-signer-engine.so');

/** Default bound on one engine signature (also the deadline the daemon gets). */
export const DEFAULT_ENGINE_TIMEOUT_MS = 2000;

/**
 * Absolute path of the engine's shared object, compiled with `cc` when missing or older than its
 * source. Compiled against the OpenSSL 3.0 headers (libssl-dev) and not linked with libcrypto: the
 * OpenSSL symbols resolve from the node executable that loads it.
 * @throws InvalidConfiguration when it cannot be built
 */
export function signerEngineLibrary(): string {
  const output = SIGNER_ENGINE_LIBRARY;
  if (existsSync(output) && statSync(output).mtimeMs >= statSync(SIGNER_ENGINE_SOURCE).mtimeMs) return output;
  mkdirSync(dirname(output), { recursive: true });
  // Several processes (test workers) may build at once: each writes its own file and renames it.
  const temporary = `${output}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-o', temporary, SIGNER_ENGINE_SOURCE, '-Wl,-z,nodelete'], { stdio: 'pipe' });
    renameSync(temporary, output);
  } catch (err) {
    rmSync(temporary, { force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new XrdError('InvalidConfiguration', { reason: `cannot build the signer engine (needs cc and libssl-dev): ${stderr || (err as Error).message}` }, { cause: err });
  }
  return output;
}

export interface EngineKey {
  /** The signer daemon's socket. */
  readonly socketPath: string;
  /** The key id (hex CKA_ID) in the signer. */
  readonly keyId: string;
  /** Certificate of the key (DER or base64 DER): its public key goes into the identifier. */
  readonly cert: Buffer | string;
  /** Bound on one signature, ms (default 2000). */
  readonly timeoutMs?: number;
}

/**
 * The `privateKeyIdentifier` for a key in the signer:
 * `socket=<path>;key=<hex>;spki=<base64 SubjectPublicKeyInfo DER>;timeout=<ms>`.
 * @throws InvalidConfiguration for a socket path the engine cannot take, InvalidIdentifier for a key id that is not hex
 */
export function engineKeyIdentifier(key: EngineKey): string {
  if (!key.socketPath.startsWith('/') || key.socketPath.includes(';') || Buffer.byteLength(key.socketPath) >= 108) {
    throw new XrdError('InvalidConfiguration', { reason: `signer socket for the TLS engine must be an absolute path under 108 bytes without ';': ${key.socketPath}` });
  }
  if (!/^[0-9A-Fa-f]{1,128}$/.test(key.keyId)) throw new XrdError('InvalidIdentifier', { value: key.keyId, reason: 'key id must be hex' });
  const der = typeof key.cert === 'string' ? Buffer.from(key.cert, 'base64') : key.cert;
  const spki = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  const timeout = key.timeoutMs ?? DEFAULT_ENGINE_TIMEOUT_MS;
  return `socket=${key.socketPath};key=${key.keyId};spki=${spki.toString('base64')};timeout=${timeout}`;
}
