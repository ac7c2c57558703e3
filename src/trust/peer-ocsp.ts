/**
 * The client side of a security server's OCSP endpoint (facts §4, MESS_05 step 5): when OCSP
 * responses for a peer's certificates are not cached here, they are asked from the peer itself,
 * `GET http://<address>:5577/?cert=<sha1hex>&cert=…`, answered as multipart/related parts of
 * application/ocsp-response (ocsp-endpoint.ts is the other side). The peer leaves out what it does
 * not have; the caller counts. The whole exchange has one deadline, since a client is waiting.
 */
import { request } from 'node:http';
import { XrdError } from '../platform/errors.ts';
import { certSha1 } from './ocsp-cache.ts';
import { parseOcspMultipart } from './ocsp-endpoint.ts';

/** The reference's port for the endpoint (ocspResponderPort). */
export const PEER_OCSP_PORT = 5577;

export interface PeerOcspFetchOptions {
  readonly port?: number;
  /** For connecting, asking and reading together (default 10 s). */
  readonly timeoutMs?: number;
  /** Largest answer accepted (default 1 MiB). */
  readonly maxBytes?: number;
}

/**
 * @returns the OCSP responses (DER, not yet verified) the peer sent, in its order
 * @throws NetworkError (no connection, timeout, an HTTP status other than 200, not multipart)
 */
export function fetchPeerOcspResponses(address: string, certs: readonly Buffer[], options: PeerOcspFetchOptions = {}): Promise<Buffer[]> {
  const port = options.port ?? PEER_OCSP_PORT;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
  const url = `http://${host}:${port}/?${certs.map((c) => `cert=${certSha1(c)}`).join('&')}`;
  const failed = (reason: string, cause?: unknown) => new XrdError('NetworkError', { target: `OCSP responder of ${host}:${port}`, reason }, { cause });
  return new Promise((resolve, reject) => {
    // A fresh connection each time (agent: false): these requests are rare, and a pooled socket
    // would outlive the deadline's purpose.
    const req = request(url, { method: 'GET', agent: false, headers: { Accept: 'multipart/related' } });
    const timer = setTimeout(() => req.destroy(failed(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof XrdError ? err : failed(err.message, err));
    });
    req.on('response', (res) => {
      const type = res.headers['content-type'] ?? '';
      if (res.statusCode !== 200 || !type.toLowerCase().startsWith('multipart/related')) {
        res.resume();
        req.destroy(failed(`HTTP ${res.statusCode} ${type || 'without content type'}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) req.destroy(failed(`answer larger than ${maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        try {
          resolve(parseOcspMultipart(type, Buffer.concat(chunks)));
        } catch (err) {
          reject(failed(`unreadable answer: ${(err as Error).message}`, err));
        }
      });
    });
    req.end();
  });
}
