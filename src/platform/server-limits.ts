/**
 * Bounds on what clients can hold open on our HTTP(S) servers — the client proxy, the server proxy
 * and the admin API: how long a request's headers and the whole request may take to arrive (a
 * client trickling its body cannot keep a connection for ever), how long a kept-alive connection
 * may sit idle, and how many connections may be open at once, overall and from one address (one
 * client cannot take every slot). Nothing bounds the time a response takes: that is the service's
 * (service timeouts) and the peer's business.
 *
 * Node checks the two request timeouts on a sweep (`connectionsCheckingInterval`, 30 s by default);
 * the sweep here runs at a quarter of the shorter timeout, at most every 5 s, so a timeout is kept
 * to within a quarter of itself.
 */
import type { ServerOptions } from 'node:http';
import type { Server, Socket } from 'node:net';
import { XrdError } from './errors.ts';

export interface ServerLimits {
  /** Most time for a request's headers to arrive. */
  readonly headersTimeoutMs: number;
  /** Most time for a whole request, headers and body, to arrive. */
  readonly requestTimeoutMs: number;
  /** How long a kept-alive connection waits for its next request. */
  readonly keepAliveTimeoutMs: number;
  /** Connections open at once, from every client together. */
  readonly maxConnections: number;
  /** Connections open at once from one client address. */
  readonly maxConnectionsPerAddress: number;
}

/**
 * The proxies': headers within 30 s (the reference's initial idle time of a connection); a whole
 * request within 10 minutes, since messages may be large (a 1 GiB attachment over a slow link); the
 * connection counts of the reference's client proxy pool — a reference security server may open up
 * to 2500 connections to one provider's server, 10000 in all.
 */
export const PROXY_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 10 * 60_000,
  keepAliveTimeoutMs: 60_000,
  maxConnections: 10_000,
  maxConnectionsPerAddress: 2_500,
};

/** The admin API's: small requests (10 MB uploads at most), a few administrators and scripts. */
export const ADMIN_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  maxConnections: 256,
  maxConnectionsPerAddress: 64,
};

/**
 * `defaults` with what `overrides` sets (undefined leaves the default).
 * @throws InvalidConfiguration for a limit that is not a positive whole number
 */
export function serverLimits(defaults: ServerLimits, overrides: Partial<ServerLimits> = {}): ServerLimits {
  const limits: { -readonly [K in keyof ServerLimits]: number } = { ...defaults };
  for (const [name, value] of Object.entries(overrides) as [keyof ServerLimits, number | undefined][]) {
    if (value === undefined) continue;
    if (!(Number.isSafeInteger(value) && value > 0)) throw new XrdError('InvalidConfiguration', { reason: `${name} must be a positive whole number, not ${value}` });
    limits[name] = value;
  }
  return limits;
}

/** The timeouts as node:http(s) `createServer` takes them. */
export function serverTimeouts(limits: ServerLimits): Pick<ServerOptions, 'headersTimeout' | 'requestTimeout' | 'keepAliveTimeout' | 'connectionsCheckingInterval'> {
  // Node refuses a headers timeout longer than the request timeout.
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    headersTimeout,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(10, Math.min(5_000, Math.floor(headersTimeout / 4))),
  };
}

/**
 * Caps the connections `server` keeps open: past `maxConnections` Node closes new ones at once;
 * past `maxConnectionsPerAddress` from one address, the new connection is closed before a byte is
 * read (before the TLS handshake on an HTTPS server). Call before `listen`.
 */
export function capConnections(server: Server, limits: ServerLimits): void {
  server.maxConnections = limits.maxConnections;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    // A socket without an address has closed already.
    const address = socket.remoteAddress;
    if (address === undefined) return void socket.destroy();
    const count = (open.get(address) ?? 0) + 1;
    if (count > limits.maxConnectionsPerAddress) return void socket.destroy();
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}
