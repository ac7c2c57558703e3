/**
 * A proxy begins at most a few new exchanges per event-loop turn (src/proxy/shared/turn-admission.ts).
 * The turns are driven by hand here: what is checked is how many begin in each turn, that they
 * begin in the order they came, that a lone exchange waits for nothing, and that an idle proxy
 * stops scheduling turns.
 */
import { describe, expect, it } from 'vitest';
import { TurnAdmission } from '../../src/proxy/shared/turn-admission.ts';

/** A hand-driven event loop: `turn()` ends the current turn, running what was scheduled for its end. */
function handLoop() {
  let scheduled: (() => void)[] = [];
  return {
    nextTurn: (run: () => void) => void scheduled.push(run),
    pending: () => scheduled.length,
    async turn() {
      const now = scheduled;
      scheduled = [];
      for (const run of now) run();
      await Promise.resolve();
    },
  };
}

/** `count` requests arrive at once. @returns the numbers of those begun so far, in the order they began */
function arrive(admission: TurnAdmission, count: number): number[] {
  const begun: number[] = [];
  for (let i = 0; i < count; i++) {
    const wait = admission.enter();
    if (wait === undefined) begun.push(i);
    else void wait.then(() => begun.push(i));
  }
  return begun;
}

describe('TurnAdmission', () => {
  it('begins at most perTurn exchanges a turn, the rest in the following turns in arrival order', async () => {
    const loop = handLoop();
    const admission = new TurnAdmission(3, loop.nextTurn);
    const begun = arrive(admission, 8);
    await Promise.resolve();
    expect(begun).toEqual([0, 1, 2]);
    await loop.turn();
    expect(begun).toEqual([0, 1, 2, 3, 4, 5]);
    // Those begun at a turn's end count against the next turn: a request arriving now waits.
    void admission.enter()?.then(() => begun.push(8));
    await loop.turn();
    expect(begun).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    await loop.turn();
    expect(loop.pending()).toBe(0);
  });

  it('goes on beginning those that wait, turn after turn, with no new arrivals', async () => {
    const loop = handLoop();
    const admission = new TurnAdmission(2, loop.nextTurn);
    const begun = arrive(admission, 7);
    for (const count of [4, 6, 7]) {
      await loop.turn();
      expect(begun).toEqual([0, 1, 2, 3, 4, 5, 6].slice(0, count));
    }
    await loop.turn();
    expect(loop.pending()).toBe(0);
  });

  it('begins a lone exchange at once, and schedules no turns once nothing begins or waits', async () => {
    const loop = handLoop();
    const admission = new TurnAdmission(2, loop.nextTurn);
    expect(admission.enter()).toBeUndefined();
    expect(loop.pending()).toBe(1);
    await loop.turn();
    // That turn reset the count and found nobody waiting: no further turn is scheduled.
    expect(loop.pending()).toBe(0);
    expect(admission.enter()).toBeUndefined();
    expect(admission.enter()).toBeUndefined();
    expect(admission.enter()).toBeInstanceOf(Promise);
  });
});
