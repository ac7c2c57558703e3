import { describe, expect, it } from 'vitest';
import { LOOP_SIGN_LIMIT_MS, LoopSigning, SignatureTimes } from '../../src/token/loop-signing.ts';

/** LoopSigning on a hand-driven clock, whose event-loop turns end when the test says. */
function loop() {
  let now = 0;
  const turnEnds: (() => void)[] = [];
  const signing = new LoopSigning(() => now, (run) => turnEnds.push(run));
  return {
    signing,
    /** One signature on the loop taking `ms`, then the turn ends. */
    onLoop(times: SignatureTimes, ms: number) {
      signing.run(times, () => (now += ms));
      turnEnds.splice(0).forEach((end) => end());
    },
    clock: (ms: number) => (now += ms),
  };
}

describe('signing on the event loop (loop-signing.ts)', () => {
  it('a key starts on the threads: the loop signs only after a thread showed its signatures are quick', () => {
    const { signing } = loop();
    const times = signing.timesOf('key');
    expect(signing.allows(times, false)).toBe(false);
    signing.threadSigned(times, 0.6, true);
    expect(signing.allows(times, false)).toBe(true);
  });

  it('not while a thread has work', () => {
    const { signing } = loop();
    const times = signing.timesOf('key');
    signing.threadSigned(times, 0.6, true);
    expect(signing.allows(times, true)).toBe(false);
  });

  it('at most one signature per event-loop turn, whatever the key: requests that arrive together go to the threads', () => {
    let endTurn = (): void => undefined;
    const signing = new LoopSigning(() => 0, (run) => (endTurn = run));
    const [a, b] = [signing.timesOf('a'), signing.timesOf('b')];
    signing.threadSigned(a, 0.1, true);
    signing.threadSigned(b, 0.1, true);
    signing.run(a, () => undefined);
    expect(signing.allows(a, false)).toBe(false);
    expect(signing.allows(b, false)).toBe(false);
    endTurn();
    expect(signing.allows(b, false)).toBe(true);
  });

  it('one slow signature sends the key to the threads at once, and quick ones on the threads bring it back', () => {
    const t = loop();
    const times = t.signing.timesOf('key');
    t.signing.threadSigned(times, 0.6, true);
    t.onLoop(times, 0.6);
    t.onLoop(times, 8);
    expect(t.signing.allows(times, false)).toBe(false);
    let quickOnes = 0;
    while (!t.signing.allows(times, false)) {
      t.signing.threadSigned(times, 0.6, true);
      quickOnes++;
    }
    // 8 ms worn down by 0.6 ms ones with weight 0.8: 0.6 + 7.4 × 0.8^n ≤ 2 at n = 8.
    expect(quickOnes).toBe(8);
  });

  it('each key and mechanism has its own times: a slow key does not keep a quick one off the loop, nor the reverse', () => {
    const { signing } = loop();
    const quick = signing.timesOf('1:0a');
    const slow = signing.timesOf('1:0b');
    signing.threadSigned(quick, 0.1, true);
    signing.threadSigned(slow, 9, true);
    expect(signing.allows(quick, false)).toBe(true);
    expect(signing.allows(slow, false)).toBe(false);
    expect(signing.timesOf('1:0a')).toBe(quick);
  });

  it('a failure counts only when slow: a quick refusal says nothing of how long a signature takes', () => {
    const t = loop();
    const times = t.signing.timesOf('key');
    t.signing.threadSigned(times, 0.05, false);
    expect(t.signing.allows(times, false)).toBe(false);
    t.signing.threadSigned(times, 0.6, true);
    expect(() => t.signing.run(times, () => {
      t.clock(LOOP_SIGN_LIMIT_MS + 5);
      throw new Error('CKR_DEVICE_ERROR');
    })).toThrow('CKR_DEVICE_ERROR');
    expect(t.signing.allows(times, false)).toBe(false);
  });

  it('counts where signatures were made', () => {
    const t = loop();
    const times = t.signing.timesOf('key');
    t.signing.threadSigned(times, 0.6, true);
    t.onLoop(times, 0.6);
    t.onLoop(times, 0.6);
    expect(t.signing.counts).toEqual({ loop: 2, threads: 1 });
  });
});
