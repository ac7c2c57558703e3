/**
 * One bounded HTTP(S) GET for configuration downloads: a byte cap on the answer and one deadline
 * for the whole exchange, connection to last byte, so a source that trickles bytes cannot hold a
 * download longer than the deadline. No pooled sockets: downloads are a few a minute.
 * HTTPS certificates are checked against the system's trust store, as the reference's client does
 * by default; the configuration itself is trusted only through its signature.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpGetLimits {
  /** Largest body accepted. */
  readonly maxBytes: number;
  /** From the request's start to the answer's last byte. */
  readonly timeoutMs: number;
}

export interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  /** The body of a 200 answer; empty for other statuses (not read). */
  readonly body: Buffer;
}

/** @throws Error (network failure, deadline passed, answer too large, not an HTTP(S) URL) */
export function httpGet(url: string, limits: HttpGetLimits): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') return reject(new Error(`${url} is not an HTTP(S) URL`));
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, { method: 'GET', agent: false });
    const deadline = setTimeout(() => req.destroy(new Error(`no complete answer within ${limits.timeoutMs} ms`)), limits.timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(deadline);
      reject(err);
    };
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      res.on('error', fail);
      const status = res.statusCode ?? 0;
      const contentType = res.headers['content-type'] ?? '';
      if (status !== 200) {
        clearTimeout(deadline);
        req.destroy();
        return resolve({ status, contentType, body: Buffer.alloc(0) });
      }
      const declared = Number(res.headers['content-length']);
      if (declared > limits.maxBytes) return req.destroy(new Error(`answer of ${declared} bytes exceeds the limit of ${limits.maxBytes}`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxBytes) req.destroy(new Error(`answer exceeds the limit of ${limits.maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(deadline);
        if (!res.complete) return reject(new Error('connection closed before the answer was complete'));
        resolve({ status, contentType, body: Buffer.concat(chunks) });
      });
    });
    req.end();
  });
}
