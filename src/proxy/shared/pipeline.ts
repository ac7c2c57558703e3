/**
 * The named stages one exchange goes through in either proxy, and how long each took. Both proxies
 * run the same sequence for SOAP and REST (the protocol's part is its adapter's): receive (under
 * load, the wait for a turn to begin in, turn-admission.ts; then reading and parsing the message,
 * once), authenticate (the information system or the calling server), authorize (server proxy: the
 * service and the caller's access), sign (the signer round trip), log (the message log commits),
 * send (client proxy: to the provider's server and back; server proxy: the provider's information
 * system), verify (the other side's signature, and that a response answers its request) and answer
 * (the answer written out). The durations feed the per-stage histogram (opmonitor/proxy-metrics.ts)
 * and the send stage's ends are the operational monitoring record's requestOutTs and responseInTs.
 */

export const STAGES = ['receive', 'authenticate', 'authorize', 'sign', 'log', 'send', 'verify', 'answer'] as const;
export type Stage = (typeof STAGES)[number];

/** Seconds spent in each stage of one exchange (a stage run twice, like log, adds up). */
export type StageDurations = Partial<Record<Stage, number>>;

/** The clocks of one exchange: wall time (ms) for the monitoring record, a monotonic one (ms) for durations. */
export interface Clock {
  readonly wall: () => number;
  readonly monotonic: () => number;
}

export const SYSTEM_CLOCK: Clock = { wall: Date.now, monotonic: () => performance.now() };

export class StageTimer {
  readonly durations: StageDurations = {};
  /** Wall-clock ms when the request went on to the far side and when its answer came back. */
  requestOutTs: number | undefined;
  responseInTs: number | undefined;

  constructor(private readonly clock: Clock) {}

  /** Runs one stage, adding its time whether it succeeds or throws. */
  async run<T>(stage: Stage, step: () => T | Promise<T>): Promise<T> {
    const start = this.clock.monotonic();
    try {
      return await step();
    } finally {
      this.add(stage, start);
    }
  }

  /** The send stage: also marks requestOutTs and responseInTs. */
  async send<T>(step: () => Promise<T>): Promise<T> {
    this.requestOutTs = this.clock.wall();
    try {
      return await this.run('send', step);
    } finally {
      this.responseInTs = this.clock.wall();
    }
  }

  add(stage: Stage, startedMonotonic: number): void {
    this.durations[stage] = (this.durations[stage] ?? 0) + (this.clock.monotonic() - startedMonotonic) / 1000;
  }
}
