/**
 * When a library's signing threads (pkcs11-port.ts) leave a signature to the event loop: the rules
 * and why are in docs/token-layer.md, "Signing off the event loop". In short, only when
 * - no thread has work, none has finished a signature for LOOP_QUIET_MS, and no other signature
 *   went on the loop in this turn (a burst, or a client keeping several in flight, stays on the threads);
 * - the key and mechanism's recent signatures, timed on the threads (sign-worker.cjs reports its own
 *   C_SignInit + C_Sign time) and on the loop, average within LOOP_SIGN_LIMIT_MS. A key starts on
 *   the threads; a slower signature raises the mean to itself at once, quicker ones wear it down;
 *   a failure counts only when slow.
 */

/** The recent mean of a key's signatures at which the loop stops signing with it, ms. */
export const LOOP_SIGN_LIMIT_MS = 2;
/** How long the daemon must have finished no signature before the loop signs one, ms. */
export const LOOP_QUIET_MS = 1;
/** Weight of the mean against a new signature no slower than it. */
const KEEP = 0.8;
/** Keys and mechanisms remembered; past it the timings start over (keys are generated and deleted for the daemon's life). */
const MAX_KEYS = 256;

/** Recent signature times of one key with one mechanism. */
export class SignatureTimes {
  private meanMs: number | undefined;

  record(ms: number): void {
    this.meanMs = this.meanMs === undefined || ms > this.meanMs ? ms : KEEP * this.meanMs + (1 - KEEP) * ms;
  }

  get quick(): boolean {
    return this.meanMs !== undefined && this.meanMs <= LOOP_SIGN_LIMIT_MS;
  }
}

export class LoopSigning {
  private readonly times = new Map<string, SignatureTimes>();
  private signedThisTurn = false;
  /** When the last signature, on a thread or the loop, finished. */
  private lastEnd = -Infinity;
  /** Signatures made on the loop and on the threads (the signer's `health` shows them). */
  readonly counts = { loop: 0, threads: 0 };

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly nextTurn: (run: () => void) => void = setImmediate,
  ) {}

  /** The timings of `key` (token, key id and mechanism, as text). */
  timesOf(key: string): SignatureTimes {
    let times = this.times.get(key);
    if (!times) {
      if (this.times.size >= MAX_KEYS) this.times.clear();
      this.times.set(key, (times = new SignatureTimes()));
    }
    return times;
  }

  /** Whether the next signature with these timings may be made on the loop. */
  allows(times: SignatureTimes, threadsBusy: boolean): boolean {
    return !threadsBusy && !this.signedThisTurn && times.quick && this.now() - this.lastEnd >= LOOP_QUIET_MS;
  }

  /** Runs `sign` on the loop, timed into `times`. */
  run<T>(times: SignatureTimes, sign: () => T): T {
    this.signedThisTurn = true;
    this.nextTurn(() => (this.signedThisTurn = false));
    this.counts.loop++;
    const start = this.now();
    let ok = false;
    try {
      const result = sign();
      ok = true;
      return result;
    } finally {
      this.lastEnd = this.now();
      const ms = this.lastEnd - start;
      if (ok || ms > LOOP_SIGN_LIMIT_MS) times.record(ms);
    }
  }

  /** A signature a thread made (or failed) in `ms`. */
  threadSigned(times: SignatureTimes, ms: number, ok: boolean): void {
    this.counts.threads++;
    this.lastEnd = this.now();
    if (ok || ms > LOOP_SIGN_LIMIT_MS) times.record(ms);
  }
}
