/**
 * Request deadlines without a timer and an AbortController per request (both showed in the signer's
 * profile at thousands of requests per second): one sweeping timer per owner expires every deadline
 * that has passed, and only work that actually waits registers a listener.
 */
import { XrdError } from './errors.ts';

export class Deadline {
  private listeners: ((err: XrdError) => void)[] | undefined;
  private expiredWith: XrdError | undefined;

  constructor(
    readonly timeoutMs: number,
    readonly expiresAt = Date.now() + timeoutMs,
  ) {}

  /** The RequestTimeout error once the deadline has passed. */
  get error(): XrdError | undefined {
    return this.expiredWith;
  }

  /** Calls `listener` when the deadline passes (at once if it has); returns the cancel function. */
  onExpire(listener: (err: XrdError) => void): () => void {
    if (this.expiredWith) {
      listener(this.expiredWith);
      return () => undefined;
    }
    (this.listeners ??= []).push(listener);
    return () => {
      const i = this.listeners?.indexOf(listener) ?? -1;
      if (i >= 0) this.listeners!.splice(i, 1);
    };
  }

  expire(): void {
    if (this.expiredWith) return;
    this.expiredWith = new XrdError('RequestTimeout', { timeoutMs: this.timeoutMs });
    for (const listener of this.listeners?.splice(0) ?? []) listener(this.expiredWith);
  }
}

/** Owns the deadlines of one server or client and expires them every `resolutionMs`. */
export class DeadlineTimer {
  private readonly active = new Set<Deadline>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly resolutionMs = 10) {}

  start(timeoutMs: number): Deadline {
    const deadline = new Deadline(timeoutMs);
    this.active.add(deadline);
    // The sweep runs only while something can expire, and never keeps the process alive.
    this.timer ??= setInterval(() => this.sweep(), this.resolutionMs).unref();
    return deadline;
  }

  finish(deadline: Deadline): void {
    this.active.delete(deadline);
    if (this.active.size === 0) this.stop();
  }

  /** Expires everything at once (connection closed, server stopping). */
  expireAll(): void {
    for (const d of this.active) d.expire();
    this.active.clear();
    this.stop();
  }

  private sweep(): void {
    const now = Date.now();
    for (const d of this.active) {
      if (d.expiresAt > now) continue;
      this.active.delete(d);
      d.expire();
    }
    if (this.active.size === 0) this.stop();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
