/**
 * Backups of the configuration and key metadata (keys stay on the HSM; docs/backup.md), the
 * reference's BackupsApi behind its /api/v1: list, take, download, upload, delete and restore while
 * the server runs; backup.ts does the work. ServerAdmin hands it what it needs (BackupsContext) and
 * reaches it as `admin.backups`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { Actor } from '../serverconf/store.ts';
import { backupSigningKeyFile, createBackup, deleteBackup, existingBackup, listBackups, restoreBackup, storeBackup, type BackupInfo, type RestoreReport } from './backup.ts';

/** What BackupsAdmin needs from ServerAdmin: where the data is, the signer's socket, the actor and the audit log. */
export interface BackupsContext {
  /** The proxy's data directory: backups are taken of it and kept in its `backups` folder. */
  readonly proxyDataDir: string;
  /** Where the server configuration is kept when not in proxyDataDir (ServerAdminOptions). */
  readonly databaseUrl?: string;
  /** The signer's data directory and devices.ini (ServerAdminOptions). */
  readonly signerDataDir?: string;
  readonly devicesIni?: string;
  readonly signerSocket: string;
  readonly logger: Logger;
  /** Who restores: the restored configuration is one change audited under this name. */
  readonly actor: Actor;
  /** Records a change in the audit log under the actor. */
  audit(action: string, detail: Record<string, unknown>): Promise<void>;
}

/** A backup as the API answers it: ours, with the reference's Backup fields (`filename`, `created_at`) beside. */
export type BackupView = BackupInfo & { readonly filename: string; readonly created_at: string };

const backupView = (info: BackupInfo): BackupView => ({ ...info, filename: info.name, created_at: info.created });

/** One restore at a time in this process (the reference's restore is synchronized too). */
let restoring = false;

export class BackupsAdmin {
  constructor(private readonly context: BackupsContext) {}

  /** Where backups are taken, uploaded and listed: `<proxy data dir>/backups`. */
  private get backupsDir(): string {
    return join(this.context.proxyDataDir, 'backups');
  }

  /** Newest first, each archive verified. */
  list(): BackupView[] {
    return listBackups(this.backupsDir, backupSigningKeyFile(this.context.proxyDataDir)).map(backupView);
  }

  /**
   * A backup taken while everything runs (the reference's BACKUP audit event).
   * @throws InvalidConfiguration when this process was not told where the signer's data is
   */
  async create(label?: string): Promise<BackupView> {
    const info = await createBackup({ signerDataDir: this.signerDataDir(), proxyDataDir: this.context.proxyDataDir, databaseUrl: this.context.databaseUrl, devicesIni: this.context.devicesIni, out: this.backupsDir, label, log: this.context.logger });
    await this.context.audit('BACKUP', { file: info.name });
    return backupView(info);
  }

  /** The archive's bytes, to download. @throws InvalidBackupFilename, BackupNotFound */
  file(name: string): { data: Buffer; filename: string } {
    return { data: readFileSync(existingBackup(this.backupsDir, name)), filename: name };
  }

  /** @throws InvalidBackupFilename, BackupNotFound */
  async delete(name: string): Promise<void> {
    deleteBackup(this.backupsDir, name);
    await this.context.audit('DELETE_BACKUP', { file: name });
  }

  /**
   * Keeps an uploaded archive that verifies with this server's backup signing key; one of the same
   * name is replaced only with `ignoreWarnings` (the reference's warning_file_already_exists).
   * @throws InvalidBackupFilename, WarningsDetected, BackupCorrupt, BackupUnsigned, BackupSignatureInvalid
   */
  async upload(name: string, data: Buffer, ignoreWarnings = false): Promise<BackupView> {
    const info = storeBackup(this.backupsDir, name, data, backupSigningKeyFile(this.context.proxyDataDir), { replace: ignoreWarnings });
    await this.context.audit('UPLOAD_BACKUP', { file: name, replaced: ignoreWarnings });
    return backupView(info);
  }

  /**
   * Restores what can be restored while the server runs: the server configuration (one change,
   * audited under this actor) and the proxy's files that differ. A backup whose key configuration
   * or devices.ini differs from the current one is refused whole (BackupNeedsStoppedSigner): that
   * is `xrd backup restore` with the signer stopped. HSM tokens are never logged out by it
   * (`hsm_tokens_logged_out`, the reference's answer).
   * @throws InvalidBackupFilename, BackupNotFound, BackupNeedsStoppedSigner, BackupCorrupt,
   *   BackupUnsigned, BackupSignatureInvalid, BackupRestoreFailed (rolled back), BackupRefused
   */
  async restore(name: string): Promise<RestoreReport & { hsm_tokens_logged_out: false }> {
    const file = existingBackup(this.backupsDir, name);
    if (restoring) throw new XrdError('BackupRefused', { reason: 'another restore is under way' });
    restoring = true;
    try {
      const report = await restoreBackup({
        file,
        signerDataDir: this.signerDataDir(),
        proxyDataDir: this.context.proxyDataDir,
        databaseUrl: this.context.databaseUrl,
        signerSocket: this.context.signerSocket,
        devicesIni: this.context.devicesIni,
        whileRunning: true,
        actor: this.context.actor,
        log: this.context.logger,
      });
      return { ...report, hsm_tokens_logged_out: false };
    } finally {
      restoring = false;
    }
  }

  /** @throws InvalidConfiguration when this process was not told where the signer's data is */
  private signerDataDir(): string {
    if (!this.context.signerDataDir) throw new XrdError('InvalidConfiguration', { reason: "the signer's data directory is not known here (xrd admin start --signer-dir)" });
    return this.context.signerDataDir;
  }
}
