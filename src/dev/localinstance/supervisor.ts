/**
 * Keeps the local instance's child processes (signers, proxies, admin APIs) running, as systemd's
 * `Restart=on-failure` keeps the installed units running: a process that exits without being asked
 * to stop is started again after a delay that doubles with each death in a row — 0.5 s, 1 s, 2 s …
 * up to 30 s — and falls back to 0.5 s once a process has run for a healthy minute, so a process
 * that dies at once cannot spin while one that dies now and then comes back quickly. Every death
 * and every restart is logged (structured: process, pid, exit code or signal, run time, delay).
 */
import type { ChildProcess } from 'node:child_process';
import { toXrdError } from '../../platform/errors.ts';
import type { Logger } from '../../platform/logger.ts';

export interface RestartPolicy {
  /** Delay before the first restart after a healthy run. */
  readonly initialDelayMs: number;
  /** Longest delay, however often the process died. */
  readonly maxDelayMs: number;
  /** A process that ran this long before dying starts the doubling afresh. */
  readonly healthyAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { initialDelayMs: 500, maxDelayMs: 30_000, healthyAfterMs: 60_000 };

/** The delays between restarts of one process. */
export class Backoff {
  private next: number;

  constructor(private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY) {
    this.next = policy.initialDelayMs;
  }

  /** The delay before starting again a process that died after running `ranMs`. */
  afterDeath(ranMs: number): number {
    if (ranMs >= this.policy.healthyAfterMs) this.next = this.policy.initialDelayMs;
    const delay = this.next;
    this.next = Math.min(this.next * 2, this.policy.maxDelayMs);
    return delay;
  }
}

/** A started process and the promise that it is ready to serve (it printed its "listening" line). */
export interface Started {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
}

interface Supervised {
  readonly name: string;
  readonly start: () => Started;
  readonly backoff: Backoff;
  child?: ChildProcess;
  timer?: NodeJS.Timeout;
  /** Set once the first start succeeded: a process that never came up is the caller's failure, not restarted. */
  supervising: boolean;
  stopped: boolean;
  restarts: number;
}

export class Supervisor {
  private readonly processes = new Map<string, Supervised>();

  constructor(
    private readonly log: Logger,
    private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Starts `name` (stopping a process of that name first), resolves once it is ready and from then
   * on restarts it whenever it dies. A first start that fails is not retried: it rejects.
   */
  async start(name: string, start: () => Started): Promise<void> {
    const p: Supervised = { name, start, backoff: new Backoff(this.policy), supervising: false, stopped: false, restarts: 0 };
    // Registered before anything is awaited: a second start or a stop meanwhile finds this one,
    // so no process is left running that stopAll does not know of.
    const previous = this.processes.get(name);
    this.processes.set(name, p);
    if (previous) await this.halt(previous, 'SIGTERM');
    try {
      if (!p.stopped) await this.launch(p);
    } catch (err) {
      if (this.processes.get(name) === p) this.processes.delete(name);
      await this.halt(p, 'SIGKILL');
      throw err;
    }
    p.supervising = true;
  }

  /** Stops `name` and its supervision: it is not restarted. */
  async stop(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.processes.get(name);
    if (!p) return;
    this.processes.delete(name);
    await this.halt(p, signal);
  }

  private async halt(p: Supervised, signal: NodeJS.Signals): Promise<void> {
    p.stopped = true;
    clearTimeout(p.timer);
    const child = p.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    await exited;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.processes.keys()].map((name) => this.stop(name)));
  }

  /** Process ids by name; undefined while a process waits to be restarted. */
  pids(): Record<string, number | undefined> {
    return Object.fromEntries([...this.processes].map(([name, p]) => [name, p.child?.pid]));
  }

  private async launch(p: Supervised): Promise<void> {
    const { child, ready } = p.start();
    p.child = child;
    const startedAt = this.now();
    child.once('exit', (code, signal) => this.died(p, child, this.now() - startedAt, code, signal));
    await ready;
  }

  private died(p: Supervised, child: ChildProcess, ranMs: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (p.child === child) p.child = undefined;
    if (p.stopped || !p.supervising) return;
    const delayMs = p.backoff.afterDeath(ranMs);
    this.log.error({ process: p.name, pid: child.pid, code, signal, ranMs: Math.round(ranMs), restartInMs: delayMs }, 'local instance process died; restarting it');
    p.timer = setTimeout(() => void this.restart(p), delayMs);
  }

  private async restart(p: Supervised): Promise<void> {
    p.timer = undefined;
    if (p.stopped) return;
    p.restarts++;
    try {
      await this.launch(p);
      this.log.warn({ process: p.name, pid: p.child?.pid, restarts: p.restarts }, 'local instance process restarted');
    } catch (err) {
      if (p.stopped) return;
      // It died while starting (its exit schedules the next try) or never became ready: killed, so that it does.
      this.log.error({ process: p.name, pid: p.child?.pid, restarts: p.restarts, reason: toXrdError(err).message }, 'local instance process did not come back; trying again');
      p.child?.kill('SIGKILL');
    }
  }
}
