/**
 * The server proxy's call to the provider's information system (MESS_06 step "send to the
 * service"), as the reference's HttpSender and CustomSSLSocketFactory make it: plain HTTP, or HTTPS
 * presenting the security server's internal TLS certificate as client certificate and — when the
 * service asks for TLS authentication (the default) — accepting the service's certificate only if
 * it is one of the internal TLS certificates of the client that owns the service; otherwise any
 * certificate. The request body goes out as a stream, the response is handed back unread, and the
 * service's timeout bounds every wait (connect, and each silence while reading), as the reference's
 * socket timeout does. Failures are the reference's codes, reported by the caller under ServiceFailed.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { XrdError } from '../../platform/errors.ts';
import { piecesLength, sendPieces, type Pieces } from '../../platform/spool.ts';
import { headerPairs, type HeaderList } from '../../protocol/rest-message.ts';
import type { InternalTls } from '../../serverconf/internal-tls.ts';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
/** One pool per internal certificate and trust rule: a connection checked for one service is not reused for another. */
const httpsAgents = new Map<string, https.Agent>();

export interface ServiceTls {
  /** Our internal TLS certificate and key, presented as client certificate. */
  readonly internal: InternalTls;
  /** The certificates the service may present (DER); undefined when any certificate is accepted. */
  readonly trusted?: readonly Buffer[];
}

export interface ServiceRequest {
  readonly method: string;
  readonly headers: HeaderList;
  /** Absent: no body (and no Content-Length). */
  readonly body?: Pieces;
}

export interface ServiceResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  /** The body as it arrives; the caller reads it, within the same timeout. */
  readonly body: IncomingMessage;
}

/**
 * @throws UnknownHost, NetworkError (refused, timed out), SslAuthenticationFailed (the service's
 *   certificate is not one of its client's internal TLS certificates), IOError
 */
export function callService(url: URL, request: ServiceRequest, options: { timeoutMs: number; tls?: ServiceTls }): Promise<ServiceResponse> {
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    // Raw header pairs keep repeated headers as they came; Node then adds no Host of its own.
    const headers: [string, string][] = [['host', url.host], ...request.headers.map(([n, v]) => [n, v] as [string, string])];
    if (request.body) headers.push(['content-length', String(piecesLength(request.body))]);
    const req = (secure ? https : http).request(url, {
      method: request.method,
      headers: headers.flat(),
      agent: secure ? agentFor(options.tls) : httpAgent,
    } as http.RequestOptions);
    const fail = (err: Error) => reject(err instanceof XrdError ? err : networkError(url, err));
    req.setTimeout(options.timeoutMs, () => req.destroy(new XrdError('NetworkError', { target: url.origin, reason: `no response within ${options.timeoutMs} ms` })));
    req.on('error', fail);
    req.on('response', (res) => {
      res.setTimeout(options.timeoutMs, () => res.destroy(new XrdError('NetworkError', { target: url.origin, reason: `the response stalled for ${options.timeoutMs} ms` })));
      resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', headers: headerPairs(res.rawHeaders), body: res });
    });
    req.on('socket', (socket) => {
      const send = () => {
        if (!request.body) return void req.end();
        sendPieces(req, request.body, (err) => req.destroy(err));
      };
      if (!secure || !options.tls?.trusted) return send();
      const tls = socket as TLSSocket;
      const check = () => {
        const presented = tls.getPeerCertificate();
        const der = presented?.raw ? Buffer.from(presented.raw) : undefined;
        if (!der || !options.tls!.trusted!.some((c) => c.equals(der))) {
          req.destroy(new XrdError('SslAuthenticationFailed', { reason: options.tls!.trusted!.length === 0 ? 'the client that owns the service has no IS certificates' : 'IS certificate is not trusted' }));
          return;
        }
        send();
      };
      if (tls.authorized !== undefined && Object.keys(tls.getPeerCertificate?.() ?? {}).length > 0) check();
      else tls.once('secureConnect', check);
    });
  });
}

function agentFor(tls: ServiceTls | undefined): https.Agent {
  const key = `${tls?.internal.certPem ?? ''}|${tls?.trusted?.map((c) => c.toString('base64')).join(',') ?? '*'}`;
  let agent = httpsAgents.get(key);
  if (!agent) {
    // Service certificates are checked against the IS certificates above, not a web PKI or host names.
    agent = new https.Agent({
      keepAlive: true,
      maxSockets: 256,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      ...(tls ? { cert: tls.internal.certPem, key: tls.internal.keyPem } : {}),
    });
    httpsAgents.set(key, agent);
  }
  return agent;
}

function networkError(url: URL, err: NodeJS.ErrnoException): XrdError {
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return new XrdError('UnknownHost', { host: url.hostname }, { cause: err });
  if (/^ERR_(SSL|OSSL)_/.test(err.code ?? '')) return new XrdError('SslAuthenticationFailed', { reason: `TLS with ${url.origin} failed: ${err.message}` }, { cause: err });
  return new XrdError('NetworkError', { target: url.origin, reason: err.message }, { cause: err });
}
