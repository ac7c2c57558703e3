/**
 * Keeps the global configuration current (pr-gconf): downloads from the anchor's source at start
 * and then on an interval (the reference's 60 s), keeping the last good configuration whenever a
 * download or its verification fails.
 */
import { toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { loadConfigurationAnchor } from './anchor.ts';
import { downloadGlobalConf } from './download.ts';

export class ConfigurationClient {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly anchorFile: string,
    private readonly dir: string,
    private readonly log: Logger,
    private readonly intervalMs = 60_000,
    /** Told after each successful download (the OCSP refresher runs then). */
    private readonly downloaded: () => void = () => undefined,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One download; failures are logged, the configuration in place stays. */
  async runOnce(): Promise<boolean> {
    try {
      const conf = await downloadGlobalConf(loadConfigurationAnchor(this.anchorFile), this.dir);
      this.log.info({ instance: conf.instanceIdentifier, expiresAt: conf.expiresAt?.toISOString() }, 'global configuration downloaded');
      this.downloaded();
      return true;
    } catch (err) {
      const e = toXrdError(err);
      this.log.warn({ code: e.faultCode, error: e.message }, 'global configuration download failed; keeping the last good one');
      return false;
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().then(() => this.schedule(this.intervalMs));
    }, delayMs);
    this.timer.unref();
  }
}
