/**
 * Fetching OCSP responses (MESS_13): the request POSTed as application/ocsp-request to the CA's
 * responders in the order the configuration lists them; the first that answers with an OCSP
 * response wins. Each request has a connect timeout (the reference's 20 s), so a responder that is
 * down gives way to the next, and one deadline for the whole exchange (60 s, the reference's read
 * timeout — which is an idle timeout there: a responder trickling its answer would hold it for
 * ever) and a byte cap (platform/http-client.ts).
 */
import { XrdError, toXrdError } from '../platform/errors.ts';
import { fetchBounded } from '../platform/http-client.ts';

export interface OcspFetchOptions {
  /** Most time for connecting to one responder (default 20 s). */
  readonly connectTimeoutMs?: number;
  /** From connecting to one responder to its answer's last byte (default 60 s). */
  readonly timeoutMs?: number;
  /** Largest response accepted (default 1 MiB). */
  readonly maxBytes?: number;
  /** Told each responder's outcome: answered (no error) or why not (diagnostics, ResponderOutcomes). */
  readonly onAnswer?: (url: string, error?: XrdError) => void;
}

/** One responder's last outcome, as the admin's diagnostics show it (the reference's OCSP responder status). */
export interface ResponderOutcome {
  readonly url: string;
  /** When it was last asked. */
  readonly at: string;
  readonly status: 'OK' | 'FAIL';
  readonly code?: string;
  readonly message?: string;
}

/** The last outcome of each OCSP responder asked (bounded: responders come from global configuration). */
export class ResponderOutcomes {
  private readonly outcomes = new Map<string, ResponderOutcome>();

  readonly record = (url: string, error?: XrdError): void => {
    this.outcomes.delete(url);
    if (this.outcomes.size >= 256) this.outcomes.delete(this.outcomes.keys().next().value!);
    this.outcomes.set(url, { url, at: new Date().toISOString(), ...(error ? { status: 'FAIL', code: error.fullCode, message: error.message } : { status: 'OK' }) });
  };

  view(): ResponderOutcome[] {
    return [...this.outcomes.values()];
  }
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
      const answer = await post(url, request, options);
      options.onAnswer?.(url);
      return answer;
    } catch (err) {
      failures.push(`${url}: ${(err as Error).message}`);
      options.onAnswer?.(url, toXrdError(err));
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
