/** Backup and restore (docs/admin-api.md "Backups", docs/backup.md): the backups folder of the server. */
import { call, download, upload } from '../api.ts';

/** GET /backups's items (src/admin/backup.ts BackupInfo): the fields the page shows. */
export interface Backup {
  readonly name: string;
  readonly bytes: number;
  /** ISO time from the manifest; the file's time when the archive did not verify. */
  readonly created: string;
  readonly label: string | null;
  readonly serverId: string | null;
  readonly keys: number;
  readonly certs: number;
  /** Null when the archive verified with this server's backup signing key. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** PUT /backups/{filename}/restore's answer (src/admin/backup.ts RestoreReport). */
export interface RestoreReport {
  readonly created: string;
  readonly files: readonly { readonly path: string; readonly outcome: 'restored' | 'unchanged' | 'kept current' | 'skipped'; readonly reason?: string }[];
}

const path = (name: string) => `/backups/${encodeURIComponent(name)}`;

export const listBackups = (): Promise<Backup[]> => call<Backup[]>('GET', '/backups');
export const createBackup = (): Promise<Backup> => call<Backup>('POST', '/backups', {});
export const downloadBackup = (name: string): Promise<void> => download(`${path(name)}/download`, name);
export const deleteBackup = (name: string): Promise<void> => call<void>('DELETE', path(name));
export const restoreBackup = (name: string): Promise<RestoreReport> => call<RestoreReport>('PUT', `${path(name)}/restore`);

/** Uploads an archive under its file name; one of that name is replaced only with `replace` (the API's ignore_warnings). */
export const uploadBackup = (file: File, replace: boolean): Promise<Backup> =>
  upload<Backup>('POST', `/backups/upload?filename=${encodeURIComponent(file.name)}${replace ? '&ignore_warnings=true' : ''}`, file);
