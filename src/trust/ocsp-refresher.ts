/**
 * Keeps OCSP responses fresh for our own certificates and their chains (MESS_13, facts §5): every
 * `ocspFetchInterval` (1200 s by default, at least 60 s), and again after `retryInterval` (60 s)
 * when any fetch failed; then prunes what has expired. The responses are what the signer puts into
 * message signatures and what the OCSP endpoint serves to peers.
 */
import type { GlobalConf } from '../globalconf/global-conf.ts';
import type { Logger } from '../platform/logger.ts';
import { toXrdError } from '../platform/errors.ts';
import { buildCertPath } from './cert-path.ts';
import type { OcspCache } from './ocsp-cache.ts';
import type { OcspStatusService } from './ocsp-status.ts';

export interface OcspRefresherOptions {
  readonly intervalMs?: number;
  readonly retryIntervalMs?: number;
}

export interface OwnCertificate {
  readonly cert: Buffer;
  /** Intermediate certificates kept with it (the CA's top certificate comes from the configuration). */
  readonly chain: readonly Buffer[];
}

export class OcspRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private busy = false;
  /** Certificates changed while a round ran: that round may have missed them. */
  private changedWhileBusy = false;
  private stopped = false;
  readonly intervalMs: number;
  readonly retryIntervalMs: number;
  /** When the next round is due (diagnostics' next update); undefined while one runs or before start. */
  nextRunAt: Date | undefined;

  constructor(
    private readonly status: OcspStatusService,
    private readonly cache: OcspCache,
    private readonly conf: () => GlobalConf,
    private readonly certificates: () => readonly OwnCertificate[],
    private readonly log: Logger,
    options: OcspRefresherOptions = {},
  ) {
    this.intervalMs = Math.max(60_000, options.intervalMs ?? 1_200_000);
    this.retryIntervalMs = options.retryIntervalMs ?? 60_000;
  }

  /** Runs now, then on the interval (or the retry interval after a failure). */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Runs a round soon (certificates changed); during a round, right after it. */
  runSoon(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.changedWhileBusy = true;
      return;
    }
    clearTimeout(this.timer);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One round: a fresh response for every certificate of every path, then pruning. */
  async runOnce(): Promise<{ refreshed: number; failed: number }> {
    let refreshed = 0;
    let failed = 0;
    let conf: GlobalConf;
    try {
      conf = this.conf();
      conf.checkUpToDate();
    } catch (err) {
      this.log.error({ code: toXrdError(err).faultCode, error: (err as Error).message }, 'OCSP refresh skipped: no usable global configuration');
      return { refreshed, failed: 1 };
    }
    for (const own of this.certificates()) {
      try {
        const path = buildCertPath(own.cert, conf, own.chain).certs;
        // Every certificate but the CA's top one (whose status nobody asks).
        for (let i = 0; i < path.length - 1; i++) {
          await this.status.refresh(path[i]!, path[i + 1]!);
          refreshed++;
        }
      } catch (err) {
        failed++;
        const e = toXrdError(err);
        this.log.warn({ code: e.faultCode, error: e.message }, 'OCSP refresh failed for a certificate');
      }
    }
    const pruned = this.cache.prune(Math.max(...[...conf.shared.values()].map((p) => p.ocspFreshnessSeconds)));
    this.log.info({ refreshed, failed, pruned }, 'OCSP responses refreshed');
    return { refreshed, failed };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.nextRunAt = new Date(Date.now() + delayMs);
    this.timer = setTimeout(() => {
      this.nextRunAt = undefined;
      this.busy = true;
      this.running = this.runOnce()
        .then(
          ({ failed }) => failed > 0,
          () => true,
        )
        .then((failed) => {
          this.busy = false;
          const again = this.changedWhileBusy;
          this.changedWhileBusy = false;
          this.schedule(again ? 0 : failed ? this.retryIntervalMs : this.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}
