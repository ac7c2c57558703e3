import { describe, expect, it } from 'vitest';
import { DeadlineTimer } from '../../src/platform/deadline.ts';
import { SessionPool } from '../../src/token/session-pool.ts';

function pool(size: number, maxWaiting = 10) {
  let next = 1;
  const closed: number[] = [];
  const p = new SessionPool<number>({ size, maxWaiting, tokenId: 't', open: () => next++, close: (s) => closed.push(s) });
  return { p, closed };
}

describe('session pool', () => {
  it('opens at most `size` sessions and hands released ones to waiters in order', async () => {
    const { p } = pool(2);
    const a = await p.acquire();
    const b = await p.acquire();
    const order: number[] = [];
    const c = Promise.resolve(p.acquire()).then((s) => (order.push(1), s));
    const d = Promise.resolve(p.acquire()).then((s) => (order.push(2), s));
    expect(p.stats).toEqual({ opened: 2, idle: 0, waiting: 2 });
    p.release(a);
    p.release(b);
    expect([await c, await d]).toEqual([a, b]);
    expect(order).toEqual([1, 2]);
  });

  it('refuses with Busy when the waiting queue is full', async () => {
    const { p } = pool(1, 1);
    await p.acquire();
    void p.acquire();
    expect(() => p.acquire()).toThrowError(expect.objectContaining({ code: 'Busy' }));
  });

  it('stops waiting at the deadline', async () => {
    const { p } = pool(1);
    await p.acquire();
    const timer = new DeadlineTimer(5);
    const waiting = Promise.resolve(p.acquire(timer.start(20)));
    await expect(waiting).rejects.toMatchObject({ code: 'RequestTimeout' });
    expect(p.stats.waiting).toBe(0);
  });

  it('replaces a discarded session and closes sessions from before a reset on release', async () => {
    const { p, closed } = pool(1);
    const a = await p.acquire();
    const waiter = Promise.resolve(p.acquire());
    p.discard(a);
    const b = await waiter;
    expect(b).not.toBe(a);
    expect(closed).toEqual([a]);
    p.reset();
    p.release(b);
    expect(closed).toEqual([a, b]);
    const c = await p.acquire();
    expect(c).not.toBe(b);
  });
});
