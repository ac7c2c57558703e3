/**
 * The OCSP status of certificates, as the proxies and the signer need it (MESS_14–15): a verified
 * result from memory (kept `resultTtlMs`, the reference's 60 s), else the cached response verified
 * again, else a fresh response from the CA's responders, verified and stored. A revocation is final
 * and is not fetched again; a stale or broken cached response is.
 */
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { fetchOcspResponse, type OcspFetchOptions } from './ocsp-client.ts';
import { certSha1, type OcspCache } from './ocsp-cache.ts';
import { certIdOf, encodeOcspRequest, type SingleResponse } from './ocsp.ts';
import { ocspPolicyFor, verifyOcspResponse } from './ocsp-verifier.ts';

export interface OcspStatusOptions {
  readonly resultTtlMs?: number;
  readonly fetch?: OcspFetchOptions;
  readonly now?: () => Date;
}

interface Result {
  readonly single?: SingleResponse;
  readonly error?: XrdError;
  readonly until: number;
}

export class OcspStatusService {
  private readonly results = new Map<string, Result>();
  private readonly resultTtlMs: number;
  private readonly now: () => Date;

  constructor(
    private readonly conf: () => GlobalConf,
    private readonly cache: OcspCache,
    private readonly options: OcspStatusOptions = {},
  ) {
    this.resultTtlMs = options.resultTtlMs ?? 60_000;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * The verified, good status of `subject` (issued by `issuer`, both DER).
   * @throws CertValidation (revoked, unknown), IncorrectValidationInfo (invalid response),
   *   NetworkError (no responder answered and nothing usable is cached)
   */
  async status(subject: Buffer, issuer: Buffer): Promise<SingleResponse> {
    const key = certSha1(subject);
    const now = this.now();
    const known = this.results.get(key);
    if (known && known.until > now.getTime()) return unwrap(known);
    const policy = ocspPolicyFor(this.conf(), issuer);
    const stored = this.cache.get(key);
    if (stored) {
      try {
        return unwrap(this.remember(key, verifyOcspResponse(stored.der, subject, issuer, now, policy), now));
      } catch (err) {
        if (err instanceof XrdError && err.code === 'CertValidation') return unwrap(this.remember(key, err, now));
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
      return unwrap(this.remember(key, single, now));
    } catch (err) {
      if (err instanceof XrdError && err.code === 'CertValidation') {
        // The revocation is what the CA says now: keep the response to show peers.
        this.cache.set([{ certSha1: key, der }]);
        return unwrap(this.remember(key, err, now));
      }
      throw err;
    }
  }

  /** The status verified in the last `resultTtlMs`, without I/O; undefined when there is none. */
  cachedStatus(subjectSha1: string): SingleResponse | undefined {
    const known = this.results.get(subjectSha1);
    return known && known.until > this.now().getTime() ? known.single : undefined;
  }

  private remember(key: string, outcome: SingleResponse | XrdError, now: Date): Result {
    const result = outcome instanceof XrdError ? { error: outcome, until: now.getTime() + this.resultTtlMs } : { single: outcome, until: now.getTime() + this.resultTtlMs };
    this.results.set(key, result);
    return result;
  }
}

function unwrap(result: Result): SingleResponse {
  if (result.error) throw result.error;
  return result.single!;
}
