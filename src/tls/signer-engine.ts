/**
 * The signer engine (engine/xrd-signer-engine.c) as Node sees it: where its shared object is and the
 * key identifier it takes. docs/tls.md explains the design.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { XrdError } from '../platform/errors.ts';

// The same paths from src/tls/ and from the built dist/tls/: both are two levels below the install's root.
const SIGNER_ENGINE_SOURCE = fileURLToPath(new URL('../../src/tls/engine/xrd-signer-engine.c', import.meta.url));
/** Gitignored; built at install by scripts/build-signer-engine.mjs (package.json's postinstall, `npm run build`). */
export const SIGNER_ENGINE_LIBRARY = fileURLToPath(new URL('../../build/xrd-signer-engine.so', import.meta.url));

/** Default bound on one engine signature (also the deadline the daemon gets). */
export const DEFAULT_ENGINE_TIMEOUT_MS = 2000;

/**
 * Absolute path of the engine's shared object. It is built at install, not here: a proxy cannot
 * write to its install folder, and a compiler has no business running in a server process.
 * @throws InvalidConfiguration when it is not built, or older than its source (a checkout whose
 *   engine source changed since the last `npm run build:engine`)
 */
export function signerEngineLibrary(): string {
  const output = SIGNER_ENGINE_LIBRARY;
  const rebuild = `run \`npm run build:engine\` in ${fileURLToPath(new URL('../..', import.meta.url))} (needs cc and libssl-dev)`;
  if (!existsSync(output)) throw new XrdError('InvalidConfiguration', { reason: `the TLS signer engine ${output} is not built: ${rebuild}` });
  if (existsSync(SIGNER_ENGINE_SOURCE) && statSync(output).mtimeMs < statSync(SIGNER_ENGINE_SOURCE).mtimeMs) {
    throw new XrdError('InvalidConfiguration', { reason: `the TLS signer engine ${output} is older than its source: ${rebuild}` });
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
