/**
 * A bounded pool of PKCS#11 operation sessions for one token (crypto11's model): each session serves
 * one operation at a time, callers beyond the bound wait in FIFO order until a session is released,
 * their deadline passes, or the waiting queue is full.
 */
import type { Deadline } from '../platform/deadline.ts';
import { XrdError } from '../platform/errors.ts';

export interface SessionPoolOptions<S> {
  readonly size: number;
  /** Callers allowed to wait for a session before new ones are refused with Busy. */
  readonly maxWaiting: number;
  readonly open: () => S;
  readonly close: (session: S) => void;
  /** Names the token in errors. */
  readonly tokenId: string;
}

interface Waiter<S> {
  resolve: (session: S) => void;
  reject: (err: Error) => void;
}

export class SessionPool<S> {
  private readonly idle: S[] = [];
  private readonly waiters: Waiter<S>[] = [];
  private opened = 0;
  /** Bumped on reset, so sessions opened before it are closed instead of returned to the pool. */
  private generation = 0;
  private readonly generationOf = new Map<S, number>();

  constructor(private readonly options: SessionPoolOptions<S>) {}

  /**
   * A session for one operation; release it with `release` or `discard`.
   * @throws Busy when too many callers wait, RequestTimeout when the deadline passes first
   */
  acquire(deadline?: Deadline): Promise<S> | S {
    const session = this.idle.pop();
    if (session !== undefined) return session;
    if (this.opened < this.options.size) {
      const fresh = this.options.open();
      this.opened++;
      this.generationOf.set(fresh, this.generation);
      return fresh;
    }
    if (this.waiters.length >= this.options.maxWaiting) {
      throw new XrdError('Busy', { tokenId: this.options.tokenId });
    }
    return new Promise<S>((resolve, reject) => {
      const waiter: Waiter<S> = { resolve, reject };
      if (deadline) {
        const cancel = deadline.onExpire((err) => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(err);
        });
        waiter.resolve = (s) => {
          cancel();
          resolve(s);
        };
      }
      this.waiters.push(waiter);
    });
  }

  release(session: S): void {
    if (this.generationOf.get(session) !== this.generation) return this.discard(session);
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(session);
    else this.idle.push(session);
  }

  /** Drops a session that is broken (or from before a reset); a waiter gets a fresh one instead. */
  discard(session: S): void {
    const current = this.generationOf.get(session) === this.generation;
    this.generationOf.delete(session);
    try {
      this.options.close(session);
    } catch {
      // The session is already unusable; closing is best effort and its failure changes nothing.
    }
    if (!current) return;
    this.opened--;
    this.serveWaiter();
  }

  /** Forgets every session (token removed, library reset); sessions in use are closed on release. */
  reset(): void {
    this.generation++;
    for (const s of this.idle.splice(0)) {
      this.generationOf.delete(s);
      try {
        this.options.close(s);
      } catch {
        // See discard(): nothing to recover from a failed close of a dead session.
      }
    }
    this.opened = 0;
    while (this.waiters.length > 0 && this.opened < this.options.size) this.serveWaiter();
  }

  /** Rejects everyone waiting (token gone): they should not sit out their deadline. */
  failWaiters(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  get stats(): { opened: number; idle: number; waiting: number } {
    return { opened: this.opened, idle: this.idle.length, waiting: this.waiters.length };
  }

  private serveWaiter(): void {
    const waiter = this.waiters.shift();
    if (!waiter) return;
    try {
      const fresh = this.options.open();
      this.opened++;
      this.generationOf.set(fresh, this.generation);
      waiter.resolve(fresh);
    } catch (err) {
      waiter.reject(err as Error);
    }
  }
}
