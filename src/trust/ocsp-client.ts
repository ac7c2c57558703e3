/**
 * Fetching OCSP responses (MESS_13): the request POSTed as application/ocsp-request to the CA's
 * responders in the order the configuration lists them; the first that answers with an OCSP
 * response wins. Each request has a connect timeout (the reference's 20 s), so a responder that is
 * down gives way to the next, and one deadline for the whole exchange (60 s, the reference's read
 * timeout — which is an idle timeout there: a responder trickling its answer would hold it for
 * ever) and a byte cap (platform/http-client.ts).
 */
import { XrdError } from '../platform/errors.ts';
import { fetchBounded } from '../platform/http-client.ts';

export interface OcspFetchOptions {
  /** Most time for connecting to one responder (default 20 s). */
  readonly connectTimeoutMs?: number;
  /** From connecting to one responder to its answer's last byte (default 60 s). */
  readonly timeoutMs?: number;
  /** Largest response accepted (default 1 MiB). */
  readonly maxBytes?: number;
}

/**
 * @returns the DER of the first OCSP response received (not yet verified)
 * @throws NetworkError naming every responder that failed and why; its `cause` is the last
 *   responder's error (NetworkError, ResponseTimeout, ResponseTooLarge)
 */
export async function fetchOcspResponse(urls: readonly string[], request: Buffer, options: OcspFetchOptions = {}): Promise<Buffer> {
  const failures: string[] = [];
  let last: unknown;
  for (const url of urls) {
    try {
      return await post(url, request, options);
    } catch (err) {
      failures.push(`${url}: ${(err as Error).message}`);
      last = err;
    }
  }
  throw new XrdError('NetworkError', { target: urls.length ? urls.join(', ') : 'OCSP responder', reason: failures.length ? failures.join('; ') : 'no responder configured for the CA' }, { cause: last });
}

async function post(url: string, body: Buffer, options: OcspFetchOptions): Promise<Buffer> {
  const answer = await fetchBounded(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/ocsp-request', Accept: 'application/ocsp-response', 'Content-Length': body.length },
    body,
    connectTimeoutMs: options.connectTimeoutMs ?? 20_000,
    deadlineMs: options.timeoutMs ?? 60_000,
    maxBytes: options.maxBytes ?? 1024 * 1024,
  });
  const type = answer.headers['content-type'] ?? '';
  if (answer.status !== 200 || !type.startsWith('application/ocsp-response')) {
    throw new XrdError('NetworkError', { target: url, reason: `HTTP ${answer.status} ${type || 'without content type'}` });
  }
  return answer.body;
}
