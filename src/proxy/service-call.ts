/**
 * The server proxy's call to the provider's information system (MESS_06 step "send to the
 * service"): plain HTTP(S) with keep-alive, bounded by the service's timeout and a response size
 * limit; any failure is the reference's `ServiceFailed` with what went wrong.
 */
import http from 'node:http';
import https from 'node:https';
import { XrdError } from '../platform/errors.ts';
import { headerPairs, type HeaderList } from '../protocol/rest-message.ts';
import { readBody } from './body.ts';

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 256 }), https: new https.Agent({ keepAlive: true, maxSockets: 256 }) };

export interface ServiceResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  readonly body: Buffer;
}

/** @throws ServiceFailed (unreachable, timed out, too large) */
export function callService(
  service: string,
  url: URL,
  request: { method: string; headers: HeaderList; body?: Buffer },
  limits: { timeoutMs: number; maxBytes: number },
): Promise<ServiceResponse> {
  const failed = (reason: string, cause?: unknown) => new XrdError('ServiceFailed', { service, reason }, { prefix: 'Server.ServerProxy', cause });
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // Raw header pairs keep repeated headers as they came; Node then adds no Host of its own.
    const headers: [string, string][] = [['host', url.host], ...request.headers.map(([n, v]) => [n, v] as [string, string])];
    if (request.body) headers.push(['content-length', String(request.body.length)]);
    const req = client.request(url, {
      method: request.method,
      headers: headers.flat(),
      agent: url.protocol === 'https:' ? agents.https : agents.http,
    } as http.RequestOptions);
    const timer = setTimeout(() => req.destroy(failed(`no response within ${limits.timeoutMs} ms`)), limits.timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof XrdError ? err : failed(`${url.origin}: ${err.message}`, err));
    });
    req.on('response', (res) => {
      readBody(res, limits.maxBytes, () => failed(`response larger than ${limits.maxBytes} bytes`)).then(
        (body) => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', headers: headerPairs(res.rawHeaders), body });
        },
        (err: Error) => {
          clearTimeout(timer);
          req.destroy();
          reject(err instanceof XrdError ? err : failed(err.message, err));
        },
      );
    });
    req.end(request.body);
  });
}
