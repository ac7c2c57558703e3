/**
 * The signer protocol's operations: opcode numbers (fixed forever once released) and the JSON shapes
 * of requests and responses. Binary values travel as base64 strings, except in `signBinary`, whose
 * bodies are binary both ways (sign-body.ts; its error frames stay JSON). `docs/signer-protocol.md`
 * describes the same table.
 */
import type { Deadline } from '../platform/deadline.ts';
import type { CertStatus } from './cert-states.ts';
import type { SignBinaryRequest } from './sign-body.ts';

export const PROTOCOL_VERSION = 1;

export const OPCODES = {
  health: 1,
  listTokens: 2,
  getToken: 3,
  initToken: 4,
  activateToken: 5,
  deactivateToken: 6,
  changePin: 7,
  setTokenFriendlyName: 8,
  generateKey: 10,
  listKeys: 11,
  deleteKey: 12,
  generateCsr: 13,
  deleteCsr: 14,
  getCsr: 15,
  importCert: 20,
  listCerts: 21,
  activateCert: 22,
  disableCert: 23,
  setCertStatus: 24,
  deleteCert: 25,
  memberSigningInfo: 30,
  authKeyInfo: 31,
  sign: 40,
  verify: 41,
  signBinary: 42,
  getOcspResponses: 50,
  setOcspResponses: 51,
} as const;

export type OperationName = keyof typeof OPCODES;

export const OPERATION_BY_CODE: ReadonlyMap<number, OperationName> = new Map(
  Object.entries(OPCODES).map(([name, code]) => [code, name as OperationName]),
);

export interface TokenView {
  tokenId: string;
  friendlyName: string | null;
  moduleType: string;
  label: string;
  serialNumber: string;
  manufacturer: string;
  model: string;
  available: boolean;
  active: boolean;
  status: string;
  readOnly: boolean;
  batchSigningEnabled: boolean;
  signVerifyPin: boolean;
  minPinLength: number;
  maxPinLength: number;
  uri: string;
  keys?: KeyView[];
  /** getToken, for a present token: the signature algorithms and key types (`RSA-2048`, `EC-P-256`) its mechanisms support. */
  signAlgorithms?: string[];
  keySpecs?: string[];
}

export interface CertView {
  hash: string;
  sha1: string;
  keyId: string;
  memberId: string | null;
  status: CertStatus;
  active: boolean;
  subject: string;
  issuer: string;
  notAfter: string;
  /** base64 DER */
  cert: string;
  chain: string[];
}

export interface CsrView {
  csrId: string;
  keyId: string;
  usage: string;
  memberId: string | null;
  subject: string;
  createdAt: string;
}

export interface KeyView {
  keyId: string;
  tokenId: string;
  usage: 'SIGNING' | 'AUTHENTICATION' | null;
  friendlyName: string | null;
  label: string;
  algorithm: string;
  size: string;
  /** Present on the token right now. */
  available: boolean;
  sensitive?: boolean;
  extractable?: boolean;
  /** base64 SubjectPublicKeyInfo DER */
  publicKey?: string;
  uri: string;
  certs: CertView[];
  csrs: CsrView[];
}

export interface SigningInfo {
  keyId: string;
  tokenId: string;
  /** Algorithm the caller should use with this key (token's configured mechanism, SHA-512). */
  algorithm: string;
  batchSigningEnabled: boolean;
  cert: string;
  chain: string[];
  certHash: string;
  /**
   * The signer's cached OCSP responses for `[cert, ...chain]`, one each in that order (base64 DER,
   * null where it has none), so that a caller gets key and responses in one request. Absent from
   * daemons before issue 16: `ocspResponsesOf` then asks with getOcspResponses.
   */
  ocspResponses?: (string | null)[];
}

/** Upper bounds (seconds) of the signature latency histogram in `health`: 1 ms (SoftHSM, EC) to 10 s (a slow network HSM). */
export const SIGNATURE_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** `sign` requests of one key since the daemon started. */
export interface KeySignatureStats {
  /** The key id, or `unknown` for requests naming no key the signer has. */
  keyId: string;
  /** Requests by outcome: `success`, or the error code (e.g. `TokenNotActive`). */
  results: Record<string, number>;
  /** Latency of every request, whatever its outcome. */
  duration: {
    /** Cumulative counts per bound of `buckets` (as Prometheus' `le` buckets). */
    counts: number[];
    sumSeconds: number;
    count: number;
  };
}

/** One OCSP response in the signer's cache. */
export interface OcspResponseView {
  /** SHA-1 hex of the certificate the response is for (the cache's key). */
  certHash: string;
  status: 'good' | 'revoked' | 'unknown';
  producedAt: string;
  thisUpdate: string;
  nextUpdate?: string;
  /** Seconds since thisUpdate: what freshness (ocspFreshnessSeconds) is checked against. */
  ageSeconds: number;
}

export interface HealthView {
  status: 'ok' | 'degraded';
  version: number;
  uptimeSeconds: number;
  /** `signedOn`: where its library's signatures were made since start (absent where it signs with C_SignAsync). */
  modules: { type: string; library: string; loaded: boolean; error?: string; signedOn?: { loop: number; threads: number } }[];
  tokens: { tokenId: string; available: boolean; active: boolean; status: string }[];
  /** Event-loop delay of the daemon since start or the last `resetStats`. */
  eventLoopDelay: { p50Ms: number; p99Ms: number; maxMs: number };
  /** Signatures by key since the daemon started (not reset by `resetStats`: they are counters). */
  signatures: { buckets: number[]; keys: KeySignatureStats[] };
  /** The cached OCSP responses (own certificates, their CAs, peers' certificates met recently). */
  ocsp: OcspResponseView[];
  /** Each socket's connections (absent from daemons before the proxy socket existed). */
  connections?: SocketStats[];
  /** Each OCSP responder's last outcome, and when the refresher asks next (absent from older daemons). */
  ocspResponders?: OcspResponderView[];
  ocspNextRefreshAt?: string;
}

/** One OCSP responder's last outcome (the reference's OCSP responder status). */
export interface OcspResponderView {
  readonly url: string;
  /** When it was last asked. */
  readonly at: string;
  readonly status: 'OK' | 'FAIL';
  readonly code?: string;
  readonly message?: string;
}

/** One socket of the daemon: what its clients hold right now, and how many were turned away. */
export interface SocketStats {
  /** `admin` or `proxy`. */
  socket: string;
  connections: number;
  /** Connections refused with TooManyConnections since the daemon started. */
  refusedConnections: number;
  /** Bytes of requests read and not answered yet: incomplete frames and requests in flight. */
  pendingBytes: number;
}

/** Request and response shape of every operation. */
export interface Operations {
  health: { req: { resetStats?: boolean }; res: HealthView };
  listTokens: { req: Record<string, never>; res: TokenView[] };
  getToken: { req: { token: string }; res: TokenView };
  initToken: { req: { label: string; soPin: string; userPin: string; moduleType?: string }; res: TokenView };
  activateToken: { req: { token: string; pin: string }; res: TokenView };
  deactivateToken: { req: { token: string }; res: TokenView };
  changePin: { req: { token: string; oldPin: string; newPin: string }; res: TokenView };
  setTokenFriendlyName: { req: { token: string; friendlyName: string }; res: TokenView };
  generateKey: {
    req: { token: string; algorithm: 'RSA' | 'EC'; bits?: number; curve?: string; usage?: 'SIGNING' | 'AUTHENTICATION'; friendlyName?: string };
    res: KeyView;
  };
  listKeys: { req: { token?: string }; res: KeyView[] };
  deleteKey: { req: { keyId: string }; res: { keyId: string } };
  generateCsr: {
    req: {
      keyId: string;
      usage?: 'SIGNING' | 'AUTHENTICATION';
      memberId?: string;
      serverId?: string;
      /** Extra or replacing DN fields, `C=FI, O=Org`. */
      subject?: string;
      format?: 'PEM' | 'DER';
    };
    /** PEM text, or base64 DER. */
    res: CsrView & { format: 'PEM' | 'DER'; csr: string };
  };
  deleteCsr: { req: { csrId: string }; res: { csrId: string } };
  /** A CSR made earlier, again (the reference's CSR download): as generateCsr answered it. */
  getCsr: { req: { csrId: string; format?: 'PEM' | 'DER' }; res: CsrView & { format: 'PEM' | 'DER'; csr: string } };
  importCert: { req: { cert: string; chain?: string[]; memberId?: string; active?: boolean }; res: CertView };
  listCerts: { req: { keyId?: string }; res: CertView[] };
  activateCert: { req: { hash: string }; res: CertView };
  disableCert: { req: { hash: string }; res: CertView };
  setCertStatus: { req: { hash: string; status: CertStatus }; res: CertView };
  deleteCert: { req: { hash: string }; res: { hash: string } };
  memberSigningInfo: { req: { memberId: string }; res: SigningInfo };
  authKeyInfo: { req: { serverId: string }; res: SigningInfo };
  sign: { req: { keyId: string; algorithm: string; digest: string; format?: 'der' | 'raw' }; res: { signature: string } };
  /** `sign` with a binary body both ways (sign-body.ts): the proxies' signing path. */
  signBinary: { req: SignBinaryRequest; res: Buffer };
  verify: {
    req: { keyId?: string; cert?: string; algorithm: string; digest: string; signature: string };
    res: { valid: boolean };
  };
  getOcspResponses: { req: { certHashes: string[] }; res: { responses: (string | null)[] } };
  setOcspResponses: { req: { certHashes: string[]; responses: string[] }; res: { stored: number } };
}

export type Request<O extends OperationName> = Operations[O]['req'];
export type Response<O extends OperationName> = Operations[O]['res'];

/**
 * The operations answered in process, without a socket: the daemon's service as the command that
 * starts it (autologin, the first start's token set-up) uses it.
 */
export interface OperationHandler {
  handle<O extends OperationName>(op: O, req: Request<O>, deadline?: Deadline): Promise<Response<O>>;
}

/** Operations that change state or handle PINs: written to the audit log. */
export const ADMIN_OPERATIONS: ReadonlySet<OperationName> = new Set<OperationName>([
  'initToken',
  'activateToken',
  'deactivateToken',
  'changePin',
  'setTokenFriendlyName',
  'generateKey',
  'deleteKey',
  'generateCsr',
  'deleteCsr',
  'importCert',
  'activateCert',
  'disableCert',
  'setCertStatus',
  'deleteCert',
]);

/**
 * What a proxy process asks the signer (src/proxy, src/tls, the TLS engine): the only operations its
 * socket serves. Signatures for messages and TLS handshakes, which key and certificate sign for a
 * member or the server, OCSP responses to send and peers' ones to keep, `health` for /metrics, and
 * `listKeys` and `getToken` to say why a handshake signature failed (token logged out, key missing).
 * Nothing here changes a key, a certificate or a token, or takes a PIN.
 */
export const PROXY_OPERATIONS: ReadonlySet<OperationName> = new Set<OperationName>([
  'health',
  'sign',
  'signBinary',
  'memberSigningInfo',
  'authKeyInfo',
  'getOcspResponses',
  'setOcspResponses',
  'listKeys',
  'getToken',
]);
