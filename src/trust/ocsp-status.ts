/**
 * The OCSP status of certificates, as the proxies and the signer need it (MESS_14–15): a verified
 * result from memory (kept `resultTtlMs`, the reference's 60 s), else the cached response verified
 * again, else a fresh response from the CA's responders, verified and stored. A revocation is final
 * and is not fetched again; a stale or broken cached response is. Results in memory are bounded in
 * number (`maxResults`), so asking about ever more certificates cannot grow them.
 */
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { ExpiringMap } from '../platform/ttl-cache.ts';
import { fetchOcspResponse, type OcspFetchOptions } from './ocsp-client.ts';
import { certSha1, type OcspCache } from './ocsp-cache.ts';
import { certIdOf, encodeOcspRequest, type SingleResponse } from './ocsp.ts';
import { ocspPolicyFor, verifyOcspResponse } from './ocsp-verifier.ts';

export interface OcspStatusOptions {
  readonly resultTtlMs?: number;
  /** Verified results kept in memory at most (default 4096); expired ones leave first, then the oldest. */
  readonly maxResults?: number;
  readonly fetch?: OcspFetchOptions;
  readonly now?: () => Date;
}

interface Result {
  readonly single?: SingleResponse;
  readonly error?: XrdError;
}

export class OcspStatusService {
  private readonly results: ExpiringMap<string, Result>;
  private readonly now: () => Date;

  constructor(
    private readonly conf: () => GlobalConf,
    private readonly cache: OcspCache,
    private readonly options: OcspStatusOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.results = new ExpiringMap({ ttlMs: options.resultTtlMs ?? 60_000, maxEntries: options.maxResults ?? 4096, now: () => this.now().getTime() });
  }

  /**
   * The verified, good status of `subject` (issued by `issuer`, both DER).
   * @throws CertValidation (revoked, unknown), IncorrectValidationInfo (invalid response),
   *   NetworkError (no responder answered and nothing usable is cached)
   */
  async status(subject: Buffer, issuer: Buffer): Promise<SingleResponse> {
    const key = certSha1(subject);
    const known = this.results.get(key);
    if (known) return unwrap(known);
    const now = this.now();
    const policy = ocspPolicyFor(this.conf(), issuer);
    const stored = this.cache.get(key);
    if (stored) {
      try {
        return unwrap(this.remember(key, verifyOcspResponse(stored.der, subject, issuer, now, policy)));
      } catch (err) {
        if (err instanceof XrdError && err.code === 'CertValidation') return unwrap(this.remember(key, err));
        // Stale or broken: a fresh response is fetched below.
      }
    }
    return this.refresh(subject, issuer);
  }

  /**
   * Fetches a fresh response from the CA's responders, verifies it and stores it.
   * @throws as `status`
   */
  async refresh(subject: Buffer, issuer: Buffer): Promise<SingleResponse> {
    const key = certSha1(subject);
    const policy = ocspPolicyFor(this.conf(), issuer);
    const der = await fetchOcspResponse(policy.responderUrls ?? [], encodeOcspRequest([certIdOf(subject, issuer)]), this.options.fetch);
    const now = this.now();
    try {
      const single = verifyOcspResponse(der, subject, issuer, now, policy);
      this.cache.set([{ certSha1: key, der }]);
      return unwrap(this.remember(key, single));
    } catch (err) {
      if (err instanceof XrdError && err.code === 'CertValidation') {
        // The revocation is what the CA says now: keep the response to show peers.
        this.cache.set([{ certSha1: key, der }]);
        return unwrap(this.remember(key, err));
      }
      throw err;
    }
  }

  /** The status verified in the last `resultTtlMs`, without I/O; undefined when there is none. */
  cachedStatus(subjectSha1: string): SingleResponse | undefined {
    return this.results.get(subjectSha1)?.single;
  }

  private remember(key: string, outcome: SingleResponse | XrdError): Result {
    const result = outcome instanceof XrdError ? { error: outcome } : { single: outcome };
    this.results.set(key, result);
    return result;
  }

  /** Results held in memory (for tests and monitoring). */
  get resultsHeld(): number {
    return this.results.size;
  }
}

function unwrap(result: Result): SingleResponse {
  if (result.error) throw result.error;
  return result.single!;
}
