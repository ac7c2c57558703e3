/**
 * One bounded HTTP(S) exchange for every outgoing call that takes a whole answer into memory:
 * global configuration (directory and parts), OCSP from CA responders and from peers' port 5577,
 * timestamps from TSAs, management requests, and the local instance's first calls through its
 * client proxy (`xrd local start`). Two bounds that no server can stretch:
 *  - a byte cap on the answer's body: a Content-Length over it is refused before a byte is read, a
 *    body that grows past it is cut off there (ResponseTooLarge);
 *  - one deadline from the start — name lookup, connect, TLS, request, every byte of the answer —
 *    so a server that trickles a byte at a time cannot hold the call longer (ResponseTimeout).
 *    An idle timeout would not do: each trickled byte would restart it.
 * Optionally a shorter connect timeout, so a host that is down gives way to the next in a list.
 *
 * Built on node:http rather than a library or fetch: fetch (undici) has no byte cap and no way to
 * pin a server certificate, the npm clients add neither bound that is not a few lines here, and
 * node:http is what the proxies already use. Every call opens its own connection (agent: false):
 * these calls are a few a minute, and a pooled socket would outlive the deadline's purpose. The
 * proxies' message path streams bodies of any size and does not use this (provider-link.ts,
 * service-call.ts).
 */
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { XrdError } from './errors.ts';

export interface BoundedRequest {
  /** GET by default. */
  readonly method?: 'GET' | 'POST';
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: Buffer;
  /** Largest answer body accepted. */
  readonly maxBytes: number;
  /** From the start of the call to the answer's last byte. */
  readonly deadlineMs: number;
  /** Most time for the TCP connection, within the deadline (default: the deadline alone). */
  readonly connectTimeoutMs?: number;
  /**
   * https only: the certificate the server must present, compared byte for byte, instead of a chain
   * to a CA Node trusts. It is checked on the connection before any byte of the request leaves.
   */
  readonly pinnedCert?: Buffer;
  /** https only: the certificate and key (PEM) presented when the server asks for one. */
  readonly clientTls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /**
   * https only: accept whatever certificate the server presents, as the reference does when it reads
   * a service description from an information system (its certificates are often self-signed).
   */
  readonly trustAnyServerCert?: boolean;
}

export interface BoundedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The whole body, whatever the status. */
  readonly body: Buffer;
}

/**
 * @throws NetworkError (not an HTTP(S) URL, cannot connect, connection closed early, pinned
 *   certificate not presented), ResponseTimeout (no complete answer within the deadline),
 *   ResponseTooLarge (the body is larger than `maxBytes`)
 */
export function fetchBounded(url: string | URL, request: BoundedRequest): Promise<BoundedResponse> {
  let target: URL;
  try {
    target = new URL(url);
  } catch (err) {
    return Promise.reject(new XrdError('NetworkError', { target: String(url), reason: 'not a URL' }, { cause: err }));
  }
  // Named without the query, which may be long (a peer's OCSP request lists certificate hashes).
  const name = `${target.origin}${target.pathname}`;
  const networkError = (reason: string, cause?: unknown) => new XrdError('NetworkError', { target: name, reason }, { cause });
  const secure = target.protocol === 'https:';
  if (!secure && target.protocol !== 'http:') return Promise.reject(networkError(`not an HTTP(S) URL (${target.protocol})`));
  if ((request.pinnedCert || request.clientTls) && !secure) return Promise.reject(networkError('a pinned or client certificate needs an https URL'));

  return new Promise((resolve, reject) => {
    let settled = false;
    let connected = false;
    let req: ClientRequest | undefined;
    let socket: Socket | undefined;
    const timers: NodeJS.Timeout[] = [];
    const settle = (err: XrdError | undefined, answer?: BoundedResponse): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      if (!err) return resolve(answer!);
      req?.destroy();
      socket?.destroy();
      reject(err);
    };
    const fail = (err: Error): void => settle(err instanceof XrdError ? err : networkError(err.message, err));
    const tooLarge = () => new XrdError('ResponseTooLarge', { target: name, limit: request.maxBytes });

    timers.push(setTimeout(() => settle(new XrdError('ResponseTimeout', { target: name, timeoutMs: request.deadlineMs })), request.deadlineMs));
    const connectMs = request.connectTimeoutMs;
    if (connectMs !== undefined && connectMs < request.deadlineMs) {
      timers.push(setTimeout(() => connected || settle(networkError(`no connection within ${connectMs} ms`)), connectMs));
    }
    const watchConnect = (s: Socket): void => {
      if (s.connecting) s.once('connect', () => (connected = true));
      else connected = true;
    };

    const onResponse = (res: IncomingMessage): void => {
      if (Number(res.headers['content-length']) > request.maxBytes) return settle(tooLarge());
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > request.maxBytes) settle(tooLarge());
        else chunks.push(chunk);
      });
      res.on('error', fail);
      res.on('end', () => {
        if (res.complete) settle(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size) });
      });
      res.on('close', () => settle(networkError('connection closed before the answer was complete')));
    };
    const send = (connection?: Socket): void => {
      const make = secure ? httpsRequest : httpRequest;
      // A connection of our own (pinned) is used as it is; otherwise one of its own for this call.
      const how = connection ? { createConnection: () => connection } : { agent: false as const, ...request.clientTls, ...(request.trustAnyServerCert ? { rejectUnauthorized: false } : {}) };
      req = make(target, { method: request.method ?? 'GET', headers: request.headers, ...how }, onResponse);
      req.on('error', fail);
      req.on('socket', watchConnect);
      req.end(request.body);
    };

    const pinned = request.pinnedCert;
    if (!pinned) return send();
    // URL keeps an IPv6 address in brackets (`[::1]`), which a connect would look up as a name.
    const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
    const tls = tlsConnect({ host, port: Number(target.port || 443), servername: isIP(host) ? undefined : host, rejectUnauthorized: false, ...request.clientTls });
    socket = tls;
    watchConnect(tls);
    tls.on('error', fail);
    tls.once('secureConnect', () => {
      if (!tls.getPeerCertificate()?.raw?.equals(pinned)) return settle(networkError('the server did not present the pinned TLS certificate'));
      send(tls);
    });
  });
}
