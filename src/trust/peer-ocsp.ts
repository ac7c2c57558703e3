/**
 * The client side of a security server's OCSP endpoint (facts §4, MESS_05 step 5): when OCSP
 * responses for a peer's certificates are not cached here, they are asked from the peer itself,
 * `GET http://<address>:5577/?cert=<sha1hex>&cert=…`, answered as multipart/related parts of
 * application/ocsp-response (ocsp-endpoint.ts is the other side). The peer leaves out what it does
 * not have; the caller counts. The whole exchange has one deadline, since a client is waiting, and
 * the answer a byte cap (platform/http-client.ts).
 */
import { XrdError } from '../platform/errors.ts';
import { fetchBounded, type BoundedResponse } from '../platform/http-client.ts';
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
 * @throws NetworkError (no connection, an HTTP status other than 200, not multipart; past the
 *   deadline or the byte cap, with the ResponseTimeout or ResponseTooLarge as its `cause`)
 */
export async function fetchPeerOcspResponses(address: string, certs: readonly Buffer[], options: PeerOcspFetchOptions = {}): Promise<Buffer[]> {
  const port = options.port ?? PEER_OCSP_PORT;
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
  const failed = (reason: string, cause?: unknown) => new XrdError('NetworkError', { target: `OCSP responder of ${host}:${port}`, reason }, { cause });
  let answer: BoundedResponse;
  try {
    answer = await fetchBounded(`http://${host}:${port}/?${certs.map((c) => `cert=${certSha1(c)}`).join('&')}`, {
      headers: { Accept: 'multipart/related' },
      deadlineMs: options.timeoutMs ?? 10_000,
      maxBytes: options.maxBytes ?? 1024 * 1024,
    });
  } catch (err) {
    throw failed((err as Error).message, err);
  }
  const type = answer.headers['content-type'] ?? '';
  if (answer.status !== 200 || !type.toLowerCase().startsWith('multipart/related')) throw failed(`HTTP ${answer.status} ${type || 'without content type'}`);
  try {
    return parseOcspMultipart(type, answer.body);
  } catch (err) {
    throw failed(`unreadable answer: ${(err as Error).message}`, err);
  }
}
