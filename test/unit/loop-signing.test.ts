import { describe, expect, it } from 'vitest';
import { LOOP_RETRY_FIRST_MS, LOOP_RETRY_LAST_MS, LOOP_SIGN_LIMIT_MS, LoopSigningPolicy } from '../../src/token/loop-signing.ts';

/** A policy on a hand-driven clock, whose event-loop turns end when the test says. */
function policy() {
  let now = 0;
  const turnEnds: (() => void)[] = [];
  const p = new LoopSigningPolicy(() => now, (run) => turnEnds.push(run));
  return {
    p,
    /** One signature on the loop taking `ms`, then the turn ends. */
    sign(ms: number) {
      p.run(() => (now += ms));
      turnEnds.splice(0).forEach((end) => end());
    },
    wait(ms: number) {
      now += ms;
    },
  };
}

describe('signing on the event loop (loop-signing.ts)', () => {
  it('a lone signature on idle threads goes on the loop; not while a thread has work', () => {
    const { p } = policy();
    expect(p.allows(false)).toBe(true);
    expect(p.allows(true)).toBe(false);
  });

  it('at most one signature per event-loop turn: requests that arrive together go to the threads', () => {
    let endTurn = (): void => undefined;
    const p = new LoopSigningPolicy(() => 0, (run) => (endTurn = run));
    p.run(() => undefined);
    expect(p.allows(false)).toBe(false);
    endTurn();
    expect(p.allows(false)).toBe(true);
  });

  it('a quick token keeps signing on the loop; one slow signature among quick ones does not stop it', () => {
    const t = policy();
    for (let i = 0; i < 10; i++) t.sign(0.6);
    t.sign(4);
    expect(t.p.allows(false)).toBe(true);
  });

  it('once the mean passes the limit the loop stops, and tries again after a wait that doubles while the token stays slow', () => {
    const t = policy();
    t.sign(LOOP_SIGN_LIMIT_MS + 1);
    expect(t.p.allows(false)).toBe(false);
    t.wait(LOOP_RETRY_FIRST_MS - 1);
    expect(t.p.allows(false)).toBe(false);
    t.wait(1);
    expect(t.p.allows(false)).toBe(true);
    t.sign(50);
    t.wait(LOOP_RETRY_FIRST_MS);
    expect(t.p.allows(false)).toBe(false);
    t.wait(LOOP_RETRY_FIRST_MS);
    expect(t.p.allows(false)).toBe(true);
  });

  it('the wait never grows past its last value', () => {
    const t = policy();
    for (let i = 0; i < 30; i++) {
      t.sign(100);
      t.wait(LOOP_RETRY_LAST_MS);
    }
    t.sign(100);
    t.wait(LOOP_RETRY_LAST_MS - 1);
    expect(t.p.allows(false)).toBe(false);
    t.wait(1);
    expect(t.p.allows(false)).toBe(true);
  });

  it('a retry is judged on its own time: a quick one after a long stall signs on the loop again at once, and the wait starts over', () => {
    const t = policy();
    t.sign(500);
    t.wait(LOOP_RETRY_FIRST_MS);
    t.sign(0.6);
    expect(t.p.allows(false)).toBe(true);
    t.sign(5); // mean 1.48 ms
    t.sign(5); // mean 2.18 ms
    expect(t.p.allows(false)).toBe(false);
    t.wait(LOOP_RETRY_FIRST_MS);
    expect(t.p.allows(false)).toBe(true);
  });

  it('a signature that throws is timed too, and the error is the caller’s', () => {
    const t = policy();
    expect(() => t.p.run(() => {
      t.wait(LOOP_SIGN_LIMIT_MS + 5);
      throw new Error('CKR_DEVICE_ERROR');
    })).toThrow('CKR_DEVICE_ERROR');
    t.wait(1);
    expect(t.p.allows(false)).toBe(false);
  });
});
