import { describe, expect, it } from 'vitest';
import { LOOP_QUIET_MS, LOOP_SIGN_LIMIT_MS, LoopSigning, SignatureTimes } from '../../src/token/loop-signing.ts';

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
    /** One signature on a thread taking `ms`, finishing now. */
    onThread(times: SignatureTimes, ms: number, ok = true) {
      now += ms;
      signing.threadSigned(times, ms, ok);
    },
    clock: (ms: number) => (now += ms),
    /** allows() once the daemon has been quiet long enough. */
    allowsWhenQuiet(times: SignatureTimes) {
      now += LOOP_QUIET_MS;
      return signing.allows(times, false);
    },
  };
}

describe('signing on the event loop (loop-signing.ts)', () => {
  it('a key starts on the threads: the loop signs only after a thread showed its signatures are quick', () => {
    const t = loop();
    const times = t.signing.timesOf('key');
    expect(t.allowsWhenQuiet(times)).toBe(false);
    t.onThread(times, 0.6);
    expect(t.allowsWhenQuiet(times)).toBe(true);
  });

  it('not while a thread has work, nor right after a signature finished: a client that keeps several in flight sends the next at once', () => {
    const t = loop();
    const times = t.signing.timesOf('key');
    t.onThread(times, 0.5);
    expect(t.signing.allows(times, false)).toBe(false);
    t.clock(LOOP_QUIET_MS / 2);
    expect(t.signing.allows(times, false)).toBe(false);
    t.clock(LOOP_QUIET_MS / 2);
    expect(t.signing.allows(times, false)).toBe(true);
    expect(t.signing.allows(times, true)).toBe(false);
    t.onLoop(times, 0.6);
    expect(t.signing.allows(times, false)).toBe(false);
    expect(t.allowsWhenQuiet(times)).toBe(true);
  });

  it('at most one signature per event-loop turn, whatever the key: requests that arrive together go to the threads', () => {
    let now = 0;
    let endTurn = (): void => undefined;
    const signing = new LoopSigning(() => now, (run) => (endTurn = run));
    const [a, b] = [signing.timesOf('a'), signing.timesOf('b')];
    signing.threadSigned(a, 0.1, true);
    signing.threadSigned(b, 0.1, true);
    now += LOOP_QUIET_MS;
    signing.run(a, () => undefined);
    now += LOOP_QUIET_MS;
    expect(signing.allows(a, false)).toBe(false);
    expect(signing.allows(b, false)).toBe(false);
    endTurn();
    expect(signing.allows(b, false)).toBe(true);
  });

  it('one slow signature sends the key to the threads at once, and quick ones on the threads bring it back', () => {
    const t = loop();
    const times = t.signing.timesOf('key');
    t.onThread(times, 0.6);
    t.onLoop(times, 0.6);
    t.onLoop(times, 8);
    expect(t.allowsWhenQuiet(times)).toBe(false);
    let quickOnes = 0;
    while (!t.allowsWhenQuiet(times) && quickOnes < 100) {
      t.onThread(times, 0.6);
      quickOnes++;
    }
    // 8 ms worn down by 0.6 ms ones with weight 0.8: 0.6 + 7.4 × 0.8^n ≤ 2 at n = 8.
    expect(quickOnes).toBe(8);
  });

  it('each key and mechanism has its own times: a slow key does not keep a quick one off the loop, nor the reverse', () => {
    const t = loop();
    const quick = t.signing.timesOf('token/quick-key/1');
    const slow = t.signing.timesOf('token/slow-key/1');
    t.onThread(quick, 0.1);
    t.onThread(slow, 9);
    expect(t.allowsWhenQuiet(quick)).toBe(true);
    expect(t.allowsWhenQuiet(slow)).toBe(false);
    expect(t.signing.timesOf('token/quick-key/1')).toBe(quick);
  });

  it('a failure counts only when slow: a quick refusal says nothing of how long a signature takes', () => {
    const t = loop();
    const times = t.signing.timesOf('key');
    t.onThread(times, 0.05, false);
    expect(t.allowsWhenQuiet(times)).toBe(false);
    t.onThread(times, 0.6);
    expect(times.quick).toBe(true);
    expect(() => t.signing.run(times, () => {
      t.clock(LOOP_SIGN_LIMIT_MS + 5);
      throw new Error('CKR_DEVICE_ERROR');
    })).toThrow('CKR_DEVICE_ERROR');
    expect(times.quick).toBe(false);
  });

  it('counts where signatures were made', () => {
    const t = loop();
    const times = t.signing.timesOf('key');
    t.onThread(times, 0.6);
    t.onLoop(times, 0.6);
    t.onLoop(times, 0.6);
    expect(t.signing.counts).toEqual({ loop: 2, threads: 1 });
  });
});
