/**
 * The local instance's supervisor with real child processes: killed with SIGKILL they come back,
 * with the backoff the policy gives and a structured log line for each death and restart; stopped
 * on purpose they stay stopped. Delays are shortened by the policy; nothing waits for a given time.
 */
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Backoff, DEFAULT_RESTART_POLICY, Supervisor, type Started } from '../../src/dev/localinstance/supervisor.ts';
import { eventually } from '../support/eventually.ts';

/** A node process that prints "ready" and then idles, or exits right after (`dieAfterReady`). */
function nodeChild(script: string) {
  return (): Started => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      // 'close', not 'exit': 'exit' may come before the last stdout data is read, and a child that
      // printed "ready" and exited at once would then look as if it never became ready.
      child.once('close', (code) => reject(new Error(`exited with ${code} before it was ready`)));
    });
    return { child, ready };
  };
}
const IDLE = "console.log('ready'); setInterval(() => {}, 1000);";
const DIES_AT_ONCE = "console.log('ready'); setTimeout(() => process.exit(3), 10);";

const supervisors: Supervisor[] = [];
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stopAll()));
});

function supervisor(policy = { initialDelayMs: 20, maxDelayMs: 100, healthyAfterMs: 60_000 }) {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const s = new Supervisor(log, policy);
  supervisors.push(s);
  return { s, lines };
}

describe('Backoff', () => {
  it('doubles from 0.5 s to at most 30 s with each death in a row, and starts again after a healthy minute', () => {
    const b = new Backoff(DEFAULT_RESTART_POLICY);
    expect(Array.from({ length: 9 }, () => b.afterDeath(1000))).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(b.afterDeath(60_000)).toBe(500);
    expect(b.afterDeath(59_999)).toBe(1000);
  });
});

describe('Supervisor', () => {
  it('a process killed with kill -9 is started again, and its death and restart are logged', async () => {
    const { s, lines } = supervisor();
    await s.start('proxy', nodeChild(IDLE));
    const first = s.pids().proxy!;
    process.kill(first, 'SIGKILL');
    const second = await eventually(async () => {
      const pid = s.pids().proxy;
      return pid !== undefined && pid !== first && lines.some((l) => l.msg === 'local instance process restarted') ? pid : undefined;
    }, 20_000, 'the restart');
    expect(() => process.kill(second, 0)).not.toThrow(); // it runs
    expect(lines.find((l) => l.msg === 'local instance process died; restarting it')).toMatchObject({ level: 50, process: 'proxy', pid: first, code: null, signal: 'SIGKILL', restartInMs: 20 });
    expect(lines.find((l) => l.msg === 'local instance process restarted')).toMatchObject({ level: 40, process: 'proxy', pid: second, restarts: 1 });
  });

  it('a process that keeps dying is restarted after doubling delays, up to the most the policy allows', async () => {
    const { s, lines } = supervisor();
    await s.start('flaky', nodeChild(DIES_AT_ONCE));
    const deaths = () => lines.filter((l) => l.msg === 'local instance process died; restarting it');
    await eventually(async () => (deaths().length >= 6 ? true : undefined), 20_000, 'six deaths');
    await s.stop('flaky');
    expect(deaths().slice(0, 6).map((l) => [l.code, l.restartInMs])).toEqual([[3, 20], [3, 40], [3, 80], [3, 100], [3, 100], [3, 100]]);
  });

  it('two starts of one name at once leave one process, and stopAll stops every one that was started', async () => {
    const { s } = supervisor();
    const spawned: number[] = [];
    const counted = () => {
      const started = nodeChild(IDLE)();
      spawned.push(started.child.pid!);
      return started;
    };
    try {
      await Promise.allSettled([s.start('proxy', counted), s.start('proxy', counted)]);
      expect(Object.keys(s.pids())).toEqual(['proxy']);
      await s.stopAll();
      expect(spawned.length).toBeGreaterThanOrEqual(1);
      for (const pid of spawned) expect(() => process.kill(pid, 0), `process ${pid}`).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    } finally {
      // Should the test fail, what it found running is not left behind.
      for (const pid of spawned) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      }
    }
  });

  it('a process stopped on purpose stays stopped, and a first start that fails is not retried', async () => {
    const { s, lines } = supervisor();
    await s.start('admin', nodeChild(IDLE));
    const pid = s.pids().admin!;
    await s.stop('admin', 'SIGKILL');
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' })); // gone
    expect(s.pids()).toEqual({});
    await expect(s.start('broken', nodeChild('process.exit(2)'))).rejects.toThrow('exited with 2');
    expect(s.pids()).toEqual({});
    expect(lines.filter((l) => l.msg === 'local instance process died; restarting it')).toEqual([]);
  });
});
