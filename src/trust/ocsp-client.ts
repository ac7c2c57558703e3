/**
 * Fetching OCSP responses (MESS_13): the request POSTed as application/ocsp-request to the CA's
 * responders in the order the configuration lists them, each with a connect and a read timeout
 * (the reference's 20 s and 60 s by default); the first that answers with an OCSP response wins.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { XrdError } from '../platform/errors.ts';

export interface OcspFetchOptions {
  readonly connectTimeoutMs?: number;
  readonly readTimeoutMs?: number;
  /** Largest response accepted. */
  readonly maxBytes?: number;
}

/**
 * @returns the DER of the first OCSP response received (not yet verified)
 * @throws NetworkError naming every responder that failed and why
 */
export async function fetchOcspResponse(urls: readonly string[], request: Buffer, options: OcspFetchOptions = {}): Promise<Buffer> {
  const failures: string[] = [];
  for (const url of urls) {
    try {
      return await post(url, request, options);
    } catch (err) {
      failures.push(`${url}: ${(err as Error).message}`);
    }
  }
  throw new XrdError('NetworkError', { target: urls.length ? urls.join(', ') : 'OCSP responder', reason: failures.length ? failures.join('; ') : 'no responder configured for the CA' });
}

function post(url: string, body: Buffer, options: OcspFetchOptions): Promise<Buffer> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
  const readTimeoutMs = options.readTimeoutMs ?? 60_000;
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, {
      method: 'POST',
      headers: { 'Content-Type': 'application/ocsp-request', Accept: 'application/ocsp-response', 'Content-Length': body.length },
    });
    const connectTimer = setTimeout(() => req.destroy(new Error(`no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    const connected = (): void => {
      clearTimeout(connectTimer);
      // From here on, the read timeout: the responder must keep the bytes coming.
      req.setTimeout(readTimeoutMs, () => req.destroy(new Error(`no answer within ${readTimeoutMs} ms`)));
    };
    // A kept-alive socket from an earlier request is connected already and says nothing more.
    req.on('socket', (socket) => (socket.connecting ? socket.once('connect', connected) : connected()));
    req.on('error', (err) => {
      clearTimeout(connectTimer);
      reject(err);
    });
    req.on('response', (res) => {
      const type = res.headers['content-type'] ?? '';
      if (res.statusCode !== 200 || !type.startsWith('application/ocsp-response')) {
        res.resume();
        req.destroy(new Error(`HTTP ${res.statusCode} ${type || 'without content type'}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) req.destroy(new Error(`response larger than ${maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.end(body);
  });
}
