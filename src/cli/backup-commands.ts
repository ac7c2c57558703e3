/**
 * `xrd backup create|list|restore|check`: backups of the configuration and key metadata
 * (src/admin/backup.ts, docs/backup.md). None of them needs the signer; `restore` refuses while
 * one answers, `check` asks one whether its tokens hold the backup's keys.
 */
import { join, resolve } from 'node:path';
import { backupSigningKeyFile, checkBackupKeys, createBackup, describeKeyCheck, listBackups, readBackupManifest, restoreBackup, type BackupInfo, type KeyCheck } from '../admin/backup.ts';
import { createLogger } from '../platform/logger.ts';
import { SignerClient } from '../signerapi/signer-client.ts';
import { defaultAdminSocket } from '../signerapi/socket-paths.ts';
import { databaseUrl } from './options.ts';
import { UsageError } from './usage-error.ts';

export interface BackupCommandContext {
  /** --data-dir (or its default): both data folders unless --signer-dir / --proxy-dir say otherwise. */
  readonly dataDir: string;
  /** The devices.ini `xrd daemon start` would read: what `create` backs up. `restore` needs --devices. */
  readonly devicesIni: string;
  /** The signer socket when --socket or $XRD_SIGNER_SOCKET names one. */
  readonly socket?: string;
}

type Values = Record<string, string | boolean | undefined>;

export const BACKUP_USAGE = `  xrd backup create [--signer-dir D] [--proxy-dir D] [--devices F] [--anchor F] [--label L] [--out F.tar.gz|DIR]
                                    configuration and key metadata in one archive (keys stay on the HSM)
  xrd backup list [--dir DIR]       backups in DIR (default <proxy-dir>/backups), verified
  xrd backup restore <file> [--signer-dir D] [--proxy-dir D] [--devices F] [--anchor F] [--force]
                    [--skip-signature-check]
                                    put a backup back (the signer must be stopped; devices.ini and
                                    the anchor only to where --devices / --anchor say); only an archive
                                    signed with <proxy-dir>/admin/backup-signing.key, unless told not to check
  xrd backup check <file>           verify an archive and ask the signer whether its tokens hold the keys`;

export async function backupCommand(command: string | undefined, rest: string[], values: Values, ctx: BackupCommandContext): Promise<number> {
  const json = values.json === true;
  const str = (name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const signerDataDir = resolve(str('signer-dir') ?? ctx.dataDir);
  const proxyDataDir = resolve(str('proxy-dir') ?? ctx.dataDir);
  // Where the admin API (xrd admin start --data-dir <proxy-dir>) takes and lists them.
  const backupsDir = join(proxyDataDir, 'backups');
  // Archives are signed and verified with the server's key in its proxy folder (docs/backup.md, Signing).
  const keyFile = backupSigningKeyFile(proxyDataDir);
  const progress = json ? undefined : (line: string) => process.stdout.write(`… ${line}\n`);
  const print = (value: unknown, human: string[]): void => {
    process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human.join('\n')}\n`);
  };
  const file = (): string => {
    if (!rest[0]) throw new UsageError('missing <file>');
    return resolve(rest[0]);
  };

  switch (command) {
    case 'create': {
      const info = await createBackup({ signerDataDir, proxyDataDir, databaseUrl: databaseUrl(), out: str('out') ?? backupsDir, label: str('label'), devicesIni: ctx.devicesIni, anchorFile: str('anchor'), progress, log: createLogger('backup') });
      print(info, [`backup ${info.file}: ${info.files.length} files, ${info.keys} keys, ${info.certs} certificates${info.serverId ? ` of ${info.serverId}` : ''}`]);
      return 0;
    }
    case 'list': {
      const list = listBackups(resolve(str('dir') ?? backupsDir), keyFile);
      print(list, list.length ? list.map(describeInfo) : ['no backups']);
      return 0;
    }
    case 'restore': {
      // devices.ini only where --devices says: a default ($XRD_DEVICES_INI, native-config/) may be
      // another server's file, and overwriting it would point the signer at other modules.
      const devices = str('devices');
      const report = await restoreBackup({
        file: file(),
        signerDataDir,
        proxyDataDir,
        databaseUrl: databaseUrl(),
        signerSocket: ctx.socket ?? defaultAdminSocket(signerDataDir),
        force: values.force === true,
        skipSignatureCheck: values['skip-signature-check'] === true,
        devicesIni: devices === undefined ? undefined : resolve(devices),
        anchorFile: str('anchor') === undefined ? undefined : resolve(str('anchor')!),
        progress,
        log: createLogger('backup'),
      });
      print(report, [
        ...report.files.filter((f) => f.outcome !== 'restored').map((f) => `${f.outcome}: ${f.target ?? f.path}${f.reason ? ` (${f.reason})` : ''}`),
        ...(report.keptAside.length ? [`the files replaced are kept as *.pre-restore: ${report.keptAside.join(', ')}`] : []),
        `restored ${report.files.filter((f) => f.outcome === 'restored').length} files of the backup of ${report.created}; start the signer and restart the proxy to use them`,
      ]);
      return 0;
    }
    case 'check': {
      const manifest = readBackupManifest(file(), keyFile);
      const socket = ctx.socket ?? defaultAdminSocket(signerDataDir);
      const client = await SignerClient.connect(socket);
      let check: KeyCheck;
      try {
        check = await checkBackupKeys(manifest, client);
      } finally {
        client.close();
      }
      print({ file: rest[0], created: manifest.created, serverId: manifest.serverId, keys: check }, [`backup of ${manifest.created} verified`, ...describeKeyCheck(check)]);
      return check.missing.length === 0 && check.notChecked.length === 0 ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command "backup ${command ?? ''}"`);
  }
}

function describeInfo(b: BackupInfo): string {
  if (b.error) return `${b.name}  ${b.bytes} bytes  UNUSABLE: ${b.error.code}: ${b.error.message}`;
  return `${b.name}  ${b.created}  ${b.serverId ?? '(no server id)'}${b.label ? `  "${b.label}"` : ''}  ${b.files.length} files, ${b.keys} keys, ${b.certs} certs, ${b.bytes} bytes`;
}
