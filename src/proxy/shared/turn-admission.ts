/**
 * Measured at 64 clients (docs/benchmarks.md, "The idle quarter"): without the batch signer's
 * interval, 1 and 2 a turn cost more CPU a call than they saved; with it, 4 and 8 made about the
 * same calls a second. 1 and 2 were not tried with the interval.
 */
export const EXCHANGES_PER_TURN = 4;

/**
 * How many new exchanges a proxy begins in one event-loop turn. Under load a proxy's loop finds
 * dozens of requests ready at once, and each batching point of the pipeline (the batch signer, the
 * message log's group commit) waits for the end of the turn: begun together, those requests were
 * signed, logged and sent on together, the next proxy had nothing to do until the whole group
 * arrived, and the proxies took turns on the cores instead of working at once (at 64 clients a
 * quarter of the cores stood idle; docs/benchmarks.md, "The idle quarter"). Begun a few a turn, the
 * first requests of a group go on while the proxy still reads the rest. The batch signer's
 * interval (member-signing.ts) keeps its batches as large as before.
 *
 * A request that finds fewer than `perTurn` begun in this turn begins at once, so a lone call waits
 * for nothing; the others begin in the following turns, in the order they came. Those waiting are
 * bounded by the listeners' connection caps: each waits with its body unread.
 */
export class TurnAdmission {
  private begun = 0;
  private turnEndScheduled = false;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly perTurn: number,
    private readonly nextTurn: (run: () => void) => void = setImmediate,
  ) {}

  /** @returns undefined when the exchange may begin now, else a promise that resolves when it may */
  enter(): Promise<void> | undefined {
    // While any wait, this turn's allowance is used up (a turn's end admits as many as it allows).
    if (this.begun < this.perTurn) {
      this.begun++;
      this.scheduleTurnEnd();
      return undefined;
    }
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.scheduleTurnEnd();
    });
  }

  /** At the turn's end the count starts again and those waiting begin; an idle proxy schedules nothing. */
  private scheduleTurnEnd(): void {
    if (this.turnEndScheduled) return;
    this.turnEndScheduled = true;
    this.nextTurn(() => {
      this.turnEndScheduled = false;
      const admitted = this.waiting.splice(0, this.perTurn);
      this.begun = admitted.length;
      for (const begin of admitted) begin();
      if (this.begun > 0) this.scheduleTurnEnd();
    });
  }
}
