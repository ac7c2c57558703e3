/**
 * Keeps the global configuration current (pr-gconf): downloads from the anchor's locations at start
 * and then on an interval (the reference's 60 s), keeping the last good configuration whenever a
 * download or its verification fails. The anchor file is read again each time, so a new anchor
 * takes effect at the next download; the location that worked is tried first the next time.
 *
 * Each attempt's outcome is written to `download-status.json` in the configuration folder (the
 * reference's configuration client keeps it for the admin's diagnostics): the admin API, another
 * process, reads it there (`readDownloadStatus`).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toXrdError } from '../platform/errors.ts';
import { writeFileAtomic } from '../platform/files.ts';
import type { Logger } from '../platform/logger.ts';
import { loadConfigurationAnchor } from './anchor.ts';
import { ConfigurationDownloader, type DownloadOptions } from './download.ts';

export interface ConfigurationClientOptions extends Pick<DownloadOptions, 'allowedFederations' | 'timeoutMs' | 'version'> {
  readonly intervalMs?: number;
  /** Told after each successful download (the OCSP refresher runs then). */
  readonly downloaded?: () => void;
}

/** The last download attempt, as diagnostics show it. */
export interface DownloadStatus {
  readonly status: 'OK' | 'FAIL';
  /** When the attempt started, and when the next one is due. */
  readonly at: string;
  readonly nextAt: string;
  /** The location that answered (OK). */
  readonly url?: string;
  /** Why it failed (FAIL): our error code and message. */
  readonly code?: string;
  readonly message?: string;
}

export const DOWNLOAD_STATUS_FILE = 'download-status.json';

/** The last attempt's outcome, or undefined when no download has been tried (or the file is unreadable). */
export function readDownloadStatus(dir: string): DownloadStatus | undefined {
  try {
    const status = JSON.parse(readFileSync(join(dir, DOWNLOAD_STATUS_FILE), 'utf8')) as DownloadStatus;
    return status.status === 'OK' || status.status === 'FAIL' ? status : undefined;
  } catch {
    return undefined;
  }
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
    const at = new Date();
    const nextAt = new Date(at.getTime() + (this.options.intervalMs ?? 60_000));
    try {
      const report = await this.downloader.download(loadConfigurationAnchor(this.anchorFile), this.dir);
      this.record({ status: 'OK', at: at.toISOString(), nextAt: nextAt.toISOString(), url: report.url });
      this.log.info({ instance: report.instanceIdentifier, url: report.url, version: report.version, expiresAt: report.expiresAt.toISOString(), downloaded: report.parts.filter((p) => p.downloaded).map((p) => p.file) }, 'global configuration downloaded');
      for (const f of report.federated) {
        if (f.error) this.log.warn({ instance: f.instance, code: f.error.faultCode, error: f.error.message }, 'federated configuration download failed; keeping its last good one');
      }
      this.options.downloaded?.();
      return true;
    } catch (err) {
      const e = toXrdError(err);
      this.log.warn({ code: e.faultCode, error: e.message }, 'global configuration download failed; keeping the last good one');
      this.record({ status: 'FAIL', at: at.toISOString(), nextAt: nextAt.toISOString(), code: e.fullCode, message: e.message });
      return false;
    }
  }

  /** The outcome for diagnostics; not being able to write it must not stop the downloads. */
  private record(status: DownloadStatus): void {
    const file = join(this.dir, DOWNLOAD_STATUS_FILE);
    try {
      // A first download that fails has made no folder yet.
      mkdirSync(this.dir, { recursive: true });
      // Readable as the configuration beside it is: the admin API, another user, shows it.
      writeFileAtomic(file, JSON.stringify(status), 0o644);
    } catch (err) {
      this.log.warn({ err }, 'global configuration download status not written');
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
