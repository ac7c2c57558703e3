/**
 * TLS options for the connections between security servers (MESS_05–07): TLS 1.2, the X-Road cipher
 * suites, and this server's authentication certificate whose private key stays in the signer —
 * OpenSSL reaches it through the signer engine (signer-engine.ts). When a handshake fails because
 * the signer could not sign, `explainAuthHandshakeFailure` asks the signer why, for a coded fault.
 * Peer verification (registered auth certificate, approved CA, OCSP) is the trust layer's, not ours.
 */
import { X509Certificate } from 'node:crypto';
import { XrdError, isErrorCode, toXrdError } from '../platform/errors.ts';
import { SignerClient } from '../signerapi/signer-client.ts';
import { engineKeyIdentifier, signerEngineLibrary } from './signer-engine.ts';

/** The reference's suites between security servers (SystemProperties DEFAULT_XROAD_SSL_CIPHER_SUITES), in its order. */
export const XROAD_REFERENCE_CIPHERS: readonly string[] = ['ECDHE-RSA-AES256-SHA384', 'DHE-RSA-AES256-SHA256', 'ECDHE-ECDSA-AES256-SHA384'];

/**
 * Our default: the AES-256-GCM forms of the same key exchanges first (AEAD, and cheaper than CBC
 * with HMAC-SHA384), then the reference's suites, so a reference peer still finds a common suite.
 */
export const XROAD_TLS_CIPHERS = ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES256-GCM-SHA384', ...XROAD_REFERENCE_CIPHERS].join(':');

/**
 * Handshake signature algorithms: exactly those the engine can have the signer make (RSA-PSS with
 * salt = digest length, PKCS#1 v1.5, ECDSA; SHA-256/384/512). Anything else (SHA-1, PSS with
 * other parameters) would ask OpenSSL for a raw private-key operation the signer does not offer.
 * The same list bounds what we accept from the peer.
 */
export const AUTH_TLS_SIGALGS = [
  'rsa_pss_rsae_sha256',
  'rsa_pss_rsae_sha384',
  'rsa_pss_rsae_sha512',
  'rsa_pkcs1_sha256',
  'rsa_pkcs1_sha384',
  'rsa_pkcs1_sha512',
  'ecdsa_secp256r1_sha256',
  'ecdsa_secp384r1_sha384',
  'ecdsa_secp521r1_sha512',
].join(':');

/** What the signer's `authKeyInfo` answers (only these fields are needed). */
export interface AuthKeyInfo {
  readonly keyId: string;
  /** base64 DER */
  readonly cert: string;
  /** base64 DER, issuer first */
  readonly chain: readonly string[];
}

/** Options for `tls.createServer`, `tls.connect`, `https.Agent` or `tls.createSecureContext`. */
export interface AuthTlsOptions {
  readonly minVersion: 'TLSv1.2';
  readonly maxVersion: 'TLSv1.2';
  readonly ciphers: string;
  readonly sigalgs: string;
  /** Our certificate and its intermediate CAs, PEM (the trusted root is left out, as the reference does). */
  readonly cert: string;
  /** Well-known DHE groups for the DHE-RSA suite when we are the server. */
  readonly dhparam: 'auto';
  readonly privateKeyEngine?: string;
  readonly privateKeyIdentifier?: string;
  readonly key?: string | Buffer;
}

export interface AuthKeyTlsSettings {
  /** Bound on one handshake signature by the signer, ms (default 2000). */
  readonly signerTimeoutMs?: number;
  /** OpenSSL cipher list (default XROAD_TLS_CIPHERS). */
  readonly ciphers?: string;
}

/**
 * The default: TLS options whose private key is the authentication key in the signer, used through
 * the signer engine. The process using them needs access to the signer socket and nothing else — no
 * key, no PIN. Handshake signatures block the event loop while the signer works (docs/tls.md).
 * @throws InvalidConfiguration (engine cannot be built, bad socket path), InvalidIdentifier
 */
export function authKeyTlsOptions(signerSocket: string, authKey: AuthKeyInfo, settings: AuthKeyTlsSettings = {}): AuthTlsOptions {
  return {
    ...commonOptions(authKey, settings.ciphers),
    privateKeyEngine: signerEngineLibrary(),
    privateKeyIdentifier: engineKeyIdentifier({ socketPath: signerSocket, keyId: authKey.keyId, cert: authKey.cert, timeoutMs: settings.signerTimeoutMs }),
  };
}

/**
 * NOT THE DEFAULT. The reference's software-token style: the proxy process loads the authentication
 * private key itself (PEM, e.g. exported from a software token). Faster handshakes, but the key
 * lives in the proxy's memory and on its disk; use only where no HSM is wanted at all.
 */
export function softwareKeyTlsOptions(keyPem: string | Buffer, authKey: Omit<AuthKeyInfo, 'keyId'>, settings: Pick<AuthKeyTlsSettings, 'ciphers'> = {}): AuthTlsOptions {
  return { ...commonOptions(authKey, settings.ciphers), key: keyPem };
}

function commonOptions(authKey: Omit<AuthKeyInfo, 'keyId'>, ciphers = XROAD_TLS_CIPHERS) {
  const sent = [authKey.cert, ...authKey.chain].map((b64) => new X509Certificate(Buffer.from(b64, 'base64')));
  // The first one is ours even if self-signed; a self-signed one further up is the trusted root.
  const cert = sent.filter((c, i) => i === 0 || !c.checkIssued(c)).map((c) => c.toString()).join('');
  return { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers, sigalgs: AUTH_TLS_SIGALGS, cert, dhparam: 'auto' } as const;
}

/** What the engine reported when a handshake signature failed, read from a TLS error's text. */
export interface EngineFailure {
  readonly kind: 'unreachable' | 'timeout' | 'refused' | 'unsupported' | 'other';
  /** The signer's error code when it refused (e.g. TokenNotActive). */
  readonly signerCode?: string;
  readonly detail: string;
}

const ENGINE_REASONS: Record<string, EngineFailure['kind']> = {
  'signer unreachable': 'unreachable',
  'signer did not answer in time': 'timeout',
  'signer refused to sign': 'refused',
  'operation not supported by the signer': 'unsupported',
};

/**
 * The engine's part of an OpenSSL error text (Node puts the whole error queue in the message), or
 * undefined when the failure did not come from the engine — e.g. the peer's side of the handshake,
 * which only sees an alert.
 */
export function engineFailureOf(err: unknown): EngineFailure | undefined {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n').find((l) => l.includes(':xrd signer engine:'));
  if (!line) return undefined;
  // <thread>:error:<code>:xrd signer engine:<function>:<reason>:<file>:<line>:<detail>
  const match = /:xrd signer engine:[^:]*:([^:]+):[^:]*:\d+:(.*)$/.exec(line);
  const reason = match?.[1] ?? '';
  const detail = match?.[2]?.trim() ?? line;
  return { kind: ENGINE_REASONS[reason] ?? 'other', signerCode: /^code=(\w+)/.exec(detail)?.[1], detail };
}

/** A SignerClient, or anything that calls the signer the same way (e.g. a reconnecting SignerConnection). */
export type SignerCaller = Pick<SignerClient, 'call'>;

const msIn = (detail: string) => /(\d+) ms/.exec(detail)?.[1];

/**
 * Why the signer could not make the handshake signature with `keyId`, as a coded error: asks the
 * signer (a client, or its socket path for a one-off connection; it may be down: NetworkError) about the key and its token — KeyNotFound,
 * KeyNotAvailable, TokenNotActive, TokenNotAvailable — and otherwise falls back to what the engine
 * reported in `tlsError` (the signer's own code, RequestTimeout) or CannotSign.
 */
export async function explainAuthHandshakeFailure(signer: SignerCaller | string, keyId: string, tlsError?: unknown, timeoutMs = 2000): Promise<XrdError> {
  const engine = tlsError === undefined ? undefined : engineFailureOf(tlsError);
  let owned: SignerClient | undefined;
  try {
    if (typeof signer === 'string') owned = await SignerClient.connect(signer, { timeoutMs });
  } catch (err) {
    return toXrdError(err);
  }
  const client = owned ?? (signer as SignerCaller);
  try {
    const key = (await client.call('listKeys', {}, { timeoutMs })).find((k) => k.keyId.toUpperCase() === keyId.toUpperCase());
    if (!key) return new XrdError('KeyNotFound', { keyId });
    const token = await client.call('getToken', { token: key.tokenId }, { timeoutMs });
    if (!token.available) return new XrdError('TokenNotAvailable', { tokenId: token.tokenId, reason: token.status });
    if (!token.active) return new XrdError('TokenNotActive', { tokenId: token.tokenId });
    if (!key.available) return new XrdError('KeyNotAvailable', { keyId, reason: 'not present on the token' });
  } catch (err) {
    const e = toXrdError(err);
    // A signer that closed the connection while we asked is as down as one that never answered;
    // one that does not answer at all gives RequestTimeout.
    return e.code === 'IOError' ? new XrdError('NetworkError', { target: typeof signer === 'string' ? signer : 'signer', reason: e.message }, { cause: e }) : e;
  } finally {
    owned?.close();
  }
  if (engine?.signerCode && isErrorCode(engine.signerCode)) return new XrdError(engine.signerCode, { keyId, reason: engine.detail, timeoutMs: msIn(engine.detail) });
  if (engine?.kind === 'timeout') return new XrdError('RequestTimeout', { timeoutMs: msIn(engine.detail) });
  return new XrdError('CannotSign', { keyId, reason: engine?.detail ?? 'the TLS handshake signature failed' });
}
