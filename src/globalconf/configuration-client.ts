/**
 * Keeps the global configuration current (pr-gconf): downloads from the anchor's locations at start
 * and then on an interval (the reference's 60 s), keeping the last good configuration whenever a
 * download or its verification fails. The anchor file is read again each time, so a new anchor
 * takes effect at the next download; the location that worked is tried first the next time.
 */
import { toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { loadConfigurationAnchor } from './anchor.ts';
import { ConfigurationDownloader, type DownloadOptions } from './download.ts';

export interface ConfigurationClientOptions extends Pick<DownloadOptions, 'allowedFederations' | 'timeoutMs' | 'version'> {
  readonly intervalMs?: number;
  /** Told after each successful download (the OCSP refresher runs then). */
  readonly downloaded?: () => void;
}

export class ConfigurationClient {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private readonly downloader: ConfigurationDownloader;

  constructor(
    private readonly anchorFile: string,
    private readonly dir: string,
    private readonly log: Logger,
    private readonly options: ConfigurationClientOptions = {},
  ) {
    this.downloader = new ConfigurationDownloader({
      ...options,
      onLocationFailure: (instance, url, err) => log.info({ instance, url, code: err.faultCode, error: err.message }, 'configuration location failed; trying the next'),
    });
  }

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
      const report = await this.downloader.download(loadConfigurationAnchor(this.anchorFile), this.dir);
      this.log.info({ instance: report.instanceIdentifier, url: report.url, version: report.version, expiresAt: report.expiresAt.toISOString(), downloaded: report.parts.filter((p) => p.downloaded).map((p) => p.file) }, 'global configuration downloaded');
      for (const f of report.federated) {
        if (f.error) this.log.warn({ instance: f.instance, code: f.error.faultCode, error: f.error.message }, 'federated configuration download failed; keeping its last good one');
      }
      this.options.downloaded?.();
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
      this.running = this.runOnce().then(() => this.schedule(this.options.intervalMs ?? 60_000));
    }, delayMs);
    this.timer.unref();
  }
}
