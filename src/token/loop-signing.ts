/**
 * When a signature may be made on the event loop rather than on a signing thread (pkcs11-port.ts).
 *
 * Handing a lone signature to a thread that has been asleep, and its answer back, cost 0.35–0.45 ms
 * of a 1.2 ms round trip through the signer daemon at one request every few milliseconds, the
 * pattern of a lightly used server (docs/benchmarks.md, "Signing on the event loop when the
 * threads are idle"). So when no thread has work, the loop signs itself, but
 * - at most once per event-loop turn: requests that arrive together still spread over the threads;
 * - only while the token is quick: each such signature is timed, and once the mean of recent ones
 *   passes LOOP_SIGN_LIMIT_MS (RSA-4096, a network HSM, a machine under load) the loop stops
 *   signing and tries one again after a wait that doubles while the token stays slow, so a slow
 *   token stalls the loop for one signature every few minutes at most. The retry is judged on its
 *   own time, not on the mean the slow ones left.
 */

/** A signature on the event loop may take this long at most, as the mean of recent ones. */
export const LOOP_SIGN_LIMIT_MS = 2;
/** While signatures on the loop are too slow: the first wait before trying one again, and the longest. */
export const LOOP_RETRY_FIRST_MS = 1_000;
export const LOOP_RETRY_LAST_MS = 600_000;

export class LoopSigningPolicy {
  /** Mean of recent signatures on the loop, ms (0 before the first). */
  private meanMs = 0;
  private retryAt = 0;
  private retryWaitMs = LOOP_RETRY_FIRST_MS;
  private signedThisTurn = false;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly nextTurn: (run: () => void) => void = setImmediate,
  ) {}

  /** Whether the next signature may be made on the loop, given whether any signing thread has work. */
  allows(threadsBusy: boolean): boolean {
    if (threadsBusy || this.signedThisTurn) return false;
    return this.meanMs <= LOOP_SIGN_LIMIT_MS || this.now() >= this.retryAt;
  }

  /** Runs `sign` on the loop and times it. */
  run<T>(sign: () => T): T {
    this.signedThisTurn = true;
    this.nextTurn(() => (this.signedThisTurn = false));
    const start = this.now();
    try {
      return sign();
    } finally {
      this.record(this.now() - start);
    }
  }

  private record(ms: number): void {
    const retry = this.meanMs === 0 || this.meanMs > LOOP_SIGN_LIMIT_MS;
    this.meanMs = retry ? ms : 0.8 * this.meanMs + 0.2 * ms;
    if (this.meanMs <= LOOP_SIGN_LIMIT_MS) {
      this.retryWaitMs = LOOP_RETRY_FIRST_MS;
      return;
    }
    this.retryAt = this.now() + this.retryWaitMs;
    this.retryWaitMs = Math.min(2 * this.retryWaitMs, LOOP_RETRY_LAST_MS);
  }
}
