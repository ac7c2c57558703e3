/**
 * Backup and restore of a security server's configuration and key metadata (docs/backup.md). The
 * keys themselves never leave the HSM: an archive holds what the tokens cannot — the signer's key
 * configuration (usages, names, certificates with their states, CSRs), devices.ini, the server
 * configuration (exported from its store as serverconf.json, imported back on restore),
 * the internal and admin API TLS certificates and keys, the admin API keys file, the configuration
 * anchor — and a manifest with every file's SHA-256 and the keys and certificates it expects the
 * tokens to hold.
 * Logs, caches and the downloaded global configuration are left out: they are history or refetched.
 *
 * Every archive is signed: an HMAC-SHA-256 of its manifest (which holds every file's SHA-256) under
 * the server's backup signing key, a random 256-bit key made at the first backup and kept 0600 in
 * `<proxy data dir>/admin/backup-signing.key`, never in a backup (as the reference signs with its own
 * gpg key in /etc/xroad/gpghome, which its backups leave out). A restore verifies it before anything
 * else, so an archive someone crafted — with their own API key in api-keys.json, say — is refused.
 * Not a key on the token: restoring needs the signer stopped, and backups must work while the token
 * is logged out; and a key the proxy's user can read signs nothing an attacker with that user's
 * rights could not write into the data folder directly.
 */
import Database from 'better-sqlite3';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { KeyUsage } from '../certificates/csr.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import { withFileLock, writeFileAtomic } from '../platform/files.ts';
import type { Logger } from '../platform/logger.ts';
import { TarError, readTarGz, writeTarGz, type TarEntry } from '../platform/tar.ts';
import { formatSecurityServerId } from '../protocol/identifiers.ts';
import { parseServerConfJson, serializeServerConfJson } from '../serverconf/serverconf-json.ts';
import { SERVERCONF_DB, SERVERCONF_JSON, SERVERCONF_LOCATION, openServerConfStore, serverConfLocation, type Actor } from '../serverconf/store.ts';
import type { CertStatus } from '../signerapi/cert-states.ts';
import { SignerClient } from '../signerapi/signer-client.ts';
import { defaultAdminSocket } from '../signerapi/socket-paths.ts';

export const BACKUP_FORMAT = 'xrd-backup';
/** 2: signed (manifest.hmac). 1 had the same manifest unsigned: restored only without the signature check. */
export const BACKUP_VERSION = 2;
const MANIFEST = 'manifest.json';
const SERVERCONF_ENTRY = 'proxy/serverconf.json';
const SIGNATURE = 'manifest.hmac';
/**
 * Archives are small (key metadata and configuration, a few MB even with years of audit log);
 * anything larger, packed or unpacked, is not ours, and is refused before it fills the memory of
 * the admin API that lists it.
 */
export const MAX_ARCHIVE_BYTES = 128 * 1024 * 1024;

/** Where an archived file comes from and goes back to. */
type Root = 'signer' | 'proxy' | 'devices' | 'anchor';

interface ManagedFile {
  /** Name inside the archive. */
  readonly path: string;
  readonly root: Root;
  /** Below the root folder; empty for the single-file roots (devices.ini, the anchor). */
  readonly rel: string;
  /** The audit trail is never rolled back: restored only onto a server that has none. */
  readonly keepCurrent?: boolean;
  /** Public (certificates, devices.ini, the anchor): may be restored readable by group and others. */
  readonly shared?: boolean;
}

/**
 * Everything a backup may hold, by name: the signer's data folder (signer-daemon.ts), the proxy's
 * (security-server.ts, internal-tls.ts; the admin API's keys and users files and TLS certificate,
 * serverconf/api-keys.ts, users.ts and cli/admin-commands.ts) and two files configured by path.
 * Token files (`softhsm/`), the OCSP cache, the message log and op-monitor databases and the
 * signer socket are deliberately absent.
 */
const MANAGED: readonly ManagedFile[] = [
  { path: 'signer/keyconf.sqlite', root: 'signer', rel: 'keyconf.sqlite' },
  { path: 'signer/audit.log', root: 'signer', rel: 'audit.log', keepCurrent: true },
  // Not a file: the store's content, exported (serverConfExport) and imported back (restoreServerConf).
  { path: SERVERCONF_ENTRY, root: 'proxy', rel: SERVERCONF_JSON },
  { path: 'proxy/internal-tls/internal.crt', root: 'proxy', rel: 'internal-tls/internal.crt', shared: true },
  { path: 'proxy/internal-tls/internal.key', root: 'proxy', rel: 'internal-tls/internal.key' },
  { path: 'proxy/admin/api-keys.json', root: 'proxy', rel: 'admin/api-keys.json' },
  { path: 'proxy/admin/users.json', root: 'proxy', rel: 'admin/users.json' },
  { path: 'proxy/admin/api.crt', root: 'proxy', rel: 'admin/api.crt', shared: true },
  { path: 'proxy/admin/api.key', root: 'proxy', rel: 'admin/api.key' },
  { path: 'devices.ini', root: 'devices', rel: '', shared: true },
  { path: 'configuration-anchor.xml', root: 'anchor', rel: '', shared: true },
];
const KEYCONF = MANAGED[0]!;

export interface BackupFile {
  /** Name inside the archive, e.g. `signer/keyconf.sqlite`. */
  readonly path: string;
  readonly size: number;
  /**
   * Permission bits of the file backed up. It is restored with them clamped: keys, secrets,
   * databases and JSON files 0600, certificates, devices.ini and the anchor at most 0644.
   */
  readonly mode: number;
  /** Lowercase hex. */
  readonly sha256: string;
}

export interface BackupCert {
  readonly hash: string;
  readonly sha1: string;
  readonly status: CertStatus;
  readonly active: boolean;
  readonly memberId: string | null;
  readonly subject: string;
  readonly issuer: string;
  readonly notAfter: string;
}

export interface BackupKey {
  readonly keyId: string;
  readonly tokenId: string;
  readonly usage: KeyUsage | null;
  readonly friendlyName: string | null;
  readonly algorithm: string;
  readonly size: string;
  readonly certs: readonly BackupCert[];
  readonly csrs: number;
}

export interface BackupManifest {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: number;
  /** ISO time the backup was taken. */
  readonly created: string;
  readonly label: string | null;
  /** `INST/CLASS/CODE/SERVER` from serverconf.json, null without a readable one. */
  readonly serverId: string | null;
  readonly files: readonly BackupFile[];
  readonly tokens: readonly { tokenId: string; friendlyName: string | null }[];
  /** Keys the key configuration knows: these must be on the tokens for the backup to be whole. */
  readonly keys: readonly BackupKey[];
}

export interface BackupInfo {
  readonly file: string;
  readonly name: string;
  readonly bytes: number;
  /** From the manifest; for an archive that cannot be read, the file's modification time. */
  readonly created: string;
  readonly label: string | null;
  readonly serverId: string | null;
  readonly files: readonly string[];
  readonly keys: number;
  readonly certs: number;
  /** Null when the archive failed verification (then `error` says why). */
  readonly manifest: BackupManifest | null;
  readonly error: { code: string; message: string } | null;
}

export interface CreateBackupOptions {
  readonly signerDataDir: string;
  readonly proxyDataDir: string;
  /** The PostgreSQL database the server configuration is kept in (`XRD_DATABASE_URL`); serverconf.db in proxyDataDir otherwise. */
  readonly databaseUrl?: string;
  /** The archive (`….tar.gz`), or a folder to put a newly named one in. */
  readonly out: string;
  readonly label?: string;
  /** The signer's devices.ini (`xrd daemon start --devices`); left out when not given or absent. */
  readonly devicesIni?: string;
  /** The configuration anchor; left out when not given or absent. */
  readonly anchorFile?: string;
  /** One line per step, for humans. */
  readonly progress?: (line: string) => void;
  /** The caller's log: the backup taken is recorded there (see `log` of RestoreOptions). */
  readonly log?: Logger;
}

export interface RestoreOptions {
  readonly file: string;
  readonly signerDataDir: string;
  readonly proxyDataDir: string;
  /**
   * The PostgreSQL database the server configuration is kept in (`XRD_DATABASE_URL`): the archived
   * configuration goes into it as one change, which every node sharing it sees.
   */
  readonly databaseUrl?: string;
  /** Default `<signerDataDir>/signer.sock`. */
  readonly signerSocket?: string;
  /** Restore although a signer answers on the socket: the caller restarts it right after. */
  readonly force?: boolean;
  /**
   * Restore without checking the archive's signature (the reference's `restore … -N`): for a backup
   * of a server whose signing key is lost. Whoever may run this can write the data folders anyway;
   * the admin API never sets it.
   */
  readonly skipSignatureCheck?: boolean;
  /** Where the archived devices.ini goes; without it, it is not restored. */
  readonly devicesIni?: string;
  /** Where the archived configuration anchor goes; without it, it is not restored. */
  readonly anchorFile?: string;
  readonly progress?: (line: string) => void;
  /**
   * The caller's log: the restore (or its failure) is recorded there. Not the signer's audit.log:
   * that is the signer's own record of what it did, written by its user alone under systemd.
   */
  readonly log?: Logger;
  /**
   * Restore while the signer runs (the admin API): nothing in the signer's folder and no devices.ini
   * is written. The key configuration and devices.ini must then be the same as the current ones
   * (compared by content: keyconf.sqlite row by row); if either differs the restore is refused with
   * BackupNeedsStoppedSigner before anything is touched, as only `xrd backup restore` with the
   * signer stopped may put them back. The audit log is kept as it is.
   */
  readonly whileRunning?: boolean;
  /**
   * Who restores: the server configuration's change (or, when it is unchanged, a note of the
   * restore) is recorded in its audit log under this name. Default `xrd backup restore`, and only a
   * changed configuration recorded.
   */
  readonly actor?: Actor;
}

export type RestoreOutcome = 'restored' | 'unchanged' | 'kept current' | 'skipped';

export interface RestoreReport {
  readonly file: string;
  readonly created: string;
  readonly label: string | null;
  readonly serverId: string | null;
  /** `verified` with this server's signing key, or `not checked` (skipSignatureCheck). */
  readonly signature: 'verified' | 'not checked';
  readonly files: readonly { path: string; target: string | null; outcome: RestoreOutcome; reason?: string }[];
  /** The files that were replaced, renamed to `*.pre-restore` (an administrator may delete them). */
  readonly keptAside: readonly string[];
  readonly keys: KeyCheck;
}

export interface KeyCheckEntry {
  readonly keyId: string;
  readonly tokenId: string;
  readonly usage: KeyUsage | null;
  readonly reason: string;
}

export interface KeyCheck {
  /** False when no signer could be asked: then every key is in `notChecked`. */
  readonly checked: boolean;
  /** Key ids the configured tokens hold. */
  readonly held: readonly string[];
  /** Keys of the backup that the tokens do not hold: their certificates cannot be used. */
  readonly missing: readonly KeyCheckEntry[];
  /** Keys on tokens that are not available or not logged in, or not asked at all. */
  readonly notChecked: readonly KeyCheckEntry[];
}

// ---- create ---------------------------------------------------------------------------------

/**
 * Writes one archive (mode 0600) with the manifest, its signature and the files; keyconf.sqlite is
 * copied as one consistent snapshot while the signer may be writing it. The first backup makes the
 * server's backup signing key.
 * @throws IOError when a file cannot be read or the archive cannot be written
 * @throws InvalidConfiguration when the signing key file is not a key or others may read it
 */
export async function createBackup(options: CreateBackupOptions): Promise<BackupInfo> {
  const say = options.progress ?? (() => {});
  const created = new Date();
  const label = options.label?.trim() || null;
  const target = archivePath(options.out, created, label);
  if (existsSync(target)) throw new XrdError('IOError', { reason: `${target} exists already; a backup is never overwritten` });

  const work = mkdtempSync(join(tmpdir(), 'xrd-backup-'));
  try {
    const entries: TarEntry[] = [];
    let keyconf: Pick<BackupManifest, 'tokens' | 'keys'> = { tokens: [], keys: [] };
    for (const managed of MANAGED) {
      if (managed.path === SERVERCONF_ENTRY) {
        const data = await serverConfExport(options.proxyDataDir, options.databaseUrl);
        if (data) entries.push({ name: managed.path, data, mode: 0o600, mtime: created });
        continue;
      }
      const source = sourceOf(managed, options);
      if (!source || !existsSync(source)) continue;
      let data: Buffer;
      if (managed === KEYCONF) {
        say(`copying ${source} (a consistent snapshot)`);
        const copy = join(work, 'keyconf.sqlite');
        keyconf = await snapshotKeyconf(source, copy);
        data = readFileSync(copy);
      } else {
        data = readSource(source);
        // An append in progress must not leave half a line at the end of the archived log.
        if (managed.keepCurrent) data = data.subarray(0, data.lastIndexOf(0x0a) + 1);
        say(`adding ${source}`);
      }
      entries.push({ name: managed.path, data, mode: statSync(source).mode & 0o777, mtime: created });
    }
    const serverConf = entries.find((e) => e.name === SERVERCONF_ENTRY);
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      created: created.toISOString(),
      label,
      serverId: serverConf ? serverIdOf(serverConf.data) : null,
      files: entries.map((e) => ({ path: e.name, size: e.data.length, mode: e.mode, sha256: sha256(e.data) })),
      ...keyconf,
    };
    const key = signingKey(backupSigningKeyFile(options.proxyDataDir));
    const archive = writeSignedArchive([{ name: MANIFEST, data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n'), mode: 0o600, mtime: created }, ...entries], key.key);
    // Written beside and renamed: an interrupted backup leaves no archive that looks whole.
    writeFileAtomic(target, archive, 0o600);
    ownLike(target, dirname(target));
    say(`wrote ${target} (${archive.length} bytes: ${manifest.files.length} files, ${manifest.keys.length} keys, ${certCount(manifest)} certificates)`);
    options.log?.info({ event: 'createBackup', file: target, label, files: manifest.files.length, keys: manifest.keys.length }, 'backup taken');
    return infoOf(target, archive.length, manifest);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function sourceOf(managed: ManagedFile, o: { signerDataDir: string; proxyDataDir: string; devicesIni?: string; anchorFile?: string }): string | undefined {
  switch (managed.root) {
    case 'signer':
      return join(o.signerDataDir, managed.rel);
    case 'proxy':
      return join(o.proxyDataDir, managed.rel);
    case 'devices':
      return o.devicesIni;
    case 'anchor':
      return o.anchorFile;
  }
}

function archivePath(out: string, created: Date, label: string | null): string {
  const absolute = resolve(out);
  if (/\.(tar\.gz|tgz)$/.test(absolute)) {
    makeDirs(dirname(absolute));
    return absolute;
  }
  makeDirs(absolute);
  const stamp = created.toISOString().replace(/[:.]/g, '-');
  const suffix = label ? `-${label.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 40)}` : '';
  return join(absolute, `xrd-backup-${stamp}${suffix}.tar.gz`);
}

/**
 * Copies the key configuration through SQLite's online backup from a read-only connection (a
 * signer may be writing it: the copy is one transaction's view), turns the copy into a
 * self-contained rollback-journal database and reads the key list from it.
 */
async function snapshotKeyconf(source: string, copy: string): Promise<Pick<BackupManifest, 'tokens' | 'keys'>> {
  // A read-only connection to a WAL database creates -wal and -shm when none exist (the signer is
  // stopped) and cannot remove them: left behind, root's would lock the signer out of its database.
  const companions = ['-wal', '-shm'].map((suffix) => source + suffix).filter((path) => !existsSync(path));
  let db: Database.Database | undefined;
  try {
    db = new Database(source, { readonly: true, fileMustExist: true });
    await db.backup(copy);
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot copy ${source}: ${(err as Error).message}` }, { cause: err });
  } finally {
    db?.close();
    dropCompanions(source, companions);
  }
  const snapshot = new Database(copy);
  try {
    snapshot.pragma('journal_mode = DELETE');
    return keysOfKeyconf(snapshot);
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot read the key configuration copied from ${source}: ${(err as Error).message}` }, { cause: err });
  } finally {
    snapshot.close();
  }
}

/**
 * The keys, certificates and CSR counts of a keyconf database (tables as keyconf-store.ts's schema).
 * Raw SQL rather than KeyconfStore, on purpose: its constructor writes (chmod, WAL mode, schema),
 * so it cannot open the signer's database read-only, and it has no way to enumerate all keys or
 * token ids (only keys of a given token, certificates and CSRs of a given key). A schema change
 * in keyconf-store.ts needs one here.
 */
function keysOfKeyconf(db: Database.Database): Pick<BackupManifest, 'tokens' | 'keys'> {
  const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name));
  if (!tables.has('keys')) return { tokens: [], keys: [] };
  const keys = db.prepare('SELECT key_id, token_id, usage, friendly_name, algorithm, size FROM keys ORDER BY created_at, key_id').all() as {
    key_id: string; token_id: string; usage: KeyUsage | null; friendly_name: string | null; algorithm: string; size: string;
  }[];
  const certs = db.prepare('SELECT hash, sha1, key_id, status, active, member_id, subject, issuer, not_after FROM certs ORDER BY imported_at, hash').all() as {
    hash: string; sha1: string; key_id: string; status: CertStatus; active: number; member_id: string | null; subject: string; issuer: string; not_after: string;
  }[];
  const csrs = db.prepare('SELECT key_id, count(*) AS n FROM csrs GROUP BY key_id').all() as { key_id: string; n: number }[];
  const names = tables.has('tokens') ? (db.prepare('SELECT token_id, friendly_name FROM tokens').all() as { token_id: string; friendly_name: string | null }[]) : [];
  const tokenIds = [...new Set([...names.map((t) => t.token_id), ...keys.map((k) => k.token_id)])].sort();
  return {
    tokens: tokenIds.map((tokenId) => ({ tokenId, friendlyName: names.find((t) => t.token_id === tokenId)?.friendly_name ?? null })),
    keys: keys.map((k) => ({
      keyId: k.key_id,
      tokenId: k.token_id,
      usage: k.usage,
      friendlyName: k.friendly_name,
      algorithm: k.algorithm,
      size: k.size,
      certs: certs
        .filter((c) => c.key_id === k.key_id)
        .map((c) => ({ hash: c.hash, sha1: c.sha1, status: c.status, active: c.active === 1, memberId: c.member_id, subject: c.subject, issuer: c.issuer, notAfter: c.not_after })),
      csrs: csrs.find((c) => c.key_id === k.key_id)?.n ?? 0,
    })),
  };
}

/**
 * Removes the -wal/-shm files the read-only connection created. A signer started meanwhile uses
 * them as its own: then they stay, given the database's owner.
 */
function dropCompanions(source: string, created: readonly string[]): void {
  const signerRuns = runningSignerPid(dirname(source)) !== undefined;
  for (const path of created) {
    try {
      if (!signerRuns && (!path.endsWith('-wal') || statSync(path).size === 0)) rmSync(path, { force: true });
      else ownLike(path, source);
    } catch {
      // Not created after all (or gone): nothing to tidy.
    }
  }
}

function serverIdOf(serverConf: Buffer): string | null {
  try {
    return formatSecurityServerId(parseServerConfJson(serverConf.toString('utf8')).serverId);
  } catch {
    // A broken serverconf.json (of an archive from before the store) only names no server.
    return null;
  }
}

/**
 * The store's configuration as JSON, read through the store on either engine (a PostgreSQL-held one
 * as well: no file is copied); undefined on a server not initialised (nothing to keep).
 */
async function serverConfExport(proxyDataDir: string, databaseUrl: string | undefined): Promise<Buffer | undefined> {
  // Nothing to export on a server never configured; one whose configuration is in PostgreSQL, asked without the URL, is refused by the store.
  if (!databaseUrl && ![SERVERCONF_DB, SERVERCONF_JSON, SERVERCONF_LOCATION].some((f) => existsSync(join(proxyDataDir, f)))) return undefined;
  const store = await openServerConfStore(proxyDataDir, databaseUrl);
  try {
    const conf = await store.read();
    return conf && Buffer.from(serializeServerConfJson(conf));
  } finally {
    await store.close();
  }
}

const RESTORE_ACTOR: Actor = { kind: 'system', name: 'xrd backup restore' };

/** Puts an archived configuration into the store as one audited change. */
async function restoreServerConf(proxyDataDir: string, databaseUrl: string | undefined, data: Buffer, file: string, actor: Actor, restored: readonly string[]): Promise<void> {
  const conf = parseServerConfJson(data.toString('utf8'), `${file}: ${SERVERCONF_ENTRY}`);
  makeDirs(proxyDataDir);
  const store = await openServerConfStore(proxyDataDir, databaseUrl);
  try {
    await store.change(actor, 'RESTORE_BACKUP', { file, restored }, () => conf);
  } finally {
    await store.close();
  }
  if (databaseUrl) return;
  // Made by root on a fresh server: the proxy's user must still open it.
  for (const suffix of ['', '-wal', '-shm']) {
    const path = join(proxyDataDir, SERVERCONF_DB + suffix);
    if (existsSync(path)) ownLike(path, proxyDataDir);
  }
}

/** A restore that left the server configuration as it was, recorded in its audit log all the same. */
async function noteRestore(proxyDataDir: string, databaseUrl: string | undefined, actor: Actor, file: string, restored: readonly string[]): Promise<void> {
  const store = await openServerConfStore(proxyDataDir, databaseUrl);
  try {
    await store.audit(actor, 'RESTORE_BACKUP', { file, restored });
  } finally {
    await store.close();
  }
}

/**
 * Whether the key configuration at `current` holds what the archived one does, row by row in every
 * table: the files themselves always differ (journal mode, page layout), their content need not.
 * A current one is read through a snapshot, as a backup reads it (a signer may be writing it).
 */
async function sameKeyconf(current: string, archived: Buffer): Promise<boolean> {
  if (!existsSync(current)) return false;
  const work = mkdtempSync(join(tmpdir(), 'xrd-keyconf-'));
  try {
    const copy = join(work, 'current.sqlite');
    await snapshotKeyconf(current, copy);
    const theirs = join(work, 'archived.sqlite');
    writeFileAtomic(theirs, archived, 0o600);
    return contentOf(copy) === contentOf(theirs);
  } catch (err) {
    // Not "differs": a key configuration this process cannot read (the signer's folder is its own
    // user's under systemd) must say so, not send the administrator to restore it.
    if (err instanceof XrdError) throw err;
    throw new XrdError('IOError', { reason: `cannot compare the key configuration ${current} with the backup's: ${(err as Error).message}` }, { cause: err });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Every table's rows, sorted, as one string: equal for two databases with the same content. */
function contentOf(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    const rows = (table: string) =>
      (db.prepare(`SELECT * FROM "${table.replaceAll('"', '""')}"`).all() as Record<string, unknown>[])
        .map((row) => JSON.stringify(row, (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('hex') : value)))
        .sort();
    return JSON.stringify(tables.map((t) => [t, rows(t)]));
  } finally {
    db.close();
  }
}

// ---- the backups folder: names, download, upload, delete (the admin API) --------------------

/**
 * What a backup's name may be: the names createBackup gives and what an administrator would name
 * an upload — letters, digits, `.`, `_`, `-`, starting with a letter, digit or `_` (not a hidden
 * file, not an option to a command), ending .tar.gz or .tgz, at most 255 characters. No slash and
 * no `..`, so never a path out of the backups folder.
 */
const BACKUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,247}\.(tar\.gz|tgz)$/;

/**
 * The path of backup `name` in `dir`.
 * @throws InvalidBackupFilename when the name is not one a backup may have (a path, a hidden file, …)
 */
export function backupPath(dir: string, name: string): string {
  if (typeof name !== 'string' || !BACKUP_NAME.test(name) || name.includes('..')) throw new XrdError('InvalidBackupFilename', { name: String(name).slice(0, 300), referenceCode: 'invalid_filename' });
  return join(resolve(dir), name);
}

/**
 * The path of an existing backup `name` in `dir`: a regular file, not a link.
 * @throws InvalidBackupFilename, BackupNotFound
 */
export function existingBackup(dir: string, name: string): string {
  const path = backupPath(dir, name);
  let isFile = false;
  try {
    isFile = lstatSync(path).isFile();
  } catch {
    // absent
  }
  if (!isFile) throw new XrdError('BackupNotFound', { name, referenceCode: 'backup_file_not_found' });
  return path;
}

/** Deletes backup `name` from `dir`. @throws InvalidBackupFilename, BackupNotFound */
export function deleteBackup(dir: string, name: string): void {
  rmSync(existingBackup(dir, name));
}

/**
 * Puts an uploaded archive into `dir` as `name` (mode 0600), once it verified as a backup signed
 * with this server's key (`keyFile`): an archive that could not be restored here is not kept. An
 * existing backup of that name is replaced only when `replace` is set (the reference's
 * ignore_warnings); otherwise the refusal is the reference's warning_file_already_exists.
 * @throws InvalidBackupFilename, WarningsDetected, BackupCorrupt, BackupUnsigned, BackupSignatureInvalid
 */
export function storeBackup(dir: string, name: string, data: Buffer, keyFile: string, options: { replace?: boolean } = {}): BackupInfo {
  const target = backupPath(dir, name);
  if (existsSync(target) && !options.replace) {
    const warnings = [{ code: 'warning_file_already_exists', metadata: [name] }];
    throw new XrdError('WarningsDetected', { warnings: `warning_file_already_exists: ${name}`, warningsJson: JSON.stringify(warnings), referenceCode: 'warnings_detected' });
  }
  if (data.length > MAX_ARCHIVE_BYTES) throw new XrdError('BackupCorrupt', { file: name, reason: `larger than ${MAX_ARCHIVE_BYTES} bytes: not a backup of configuration and key metadata` });
  makeDirs(dirname(target));
  // Verified under a name listing skips (a leading dot), then renamed: a listing never sees half an upload.
  const staged = join(dirname(target), `.upload-${randomBytes(6).toString('hex')}.tar.gz`);
  try {
    writeFileAtomic(staged, data, 0o600);
    const opened = openBackup(staged, { keyFile, checkSignature: true });
    ownLike(staged, dirname(target));
    renameSync(staged, target);
    return infoOf(target, opened.bytes, opened.manifest);
  } catch (err) {
    // The name the client gave, not the staging file's, in the refusal.
    if (err instanceof XrdError && err.details.file === staged) throw new XrdError(err.code, { ...err.details, file: name }, { cause: err });
    throw err;
  } finally {
    rmSync(staged, { force: true });
  }
}

// ---- read and list --------------------------------------------------------------------------

interface OpenedBackup {
  readonly manifest: BackupManifest;
  readonly files: ReadonlyMap<string, TarEntry>;
  readonly bytes: number;
}

/**
 * The archive's manifest, after checking its signature with the key in `keyFile`
 * (`backupSigningKeyFile(proxyDataDir)`) and every file against it.
 * @throws BackupCorrupt (damaged, altered or not a backup), BackupUnsigned, BackupSignatureInvalid,
 *   IOError (cannot be read), InvalidConfiguration (the key file is not a key or others may read it)
 */
export function readBackupManifest(file: string, keyFile: string): BackupManifest {
  return openBackup(file, { keyFile, checkSignature: true }).manifest;
}

/**
 * What listing verified, by archive path, while the file is the same one unchanged (size,
 * modification and change times, inode): `GET /api/v1/backups` runs on the API's event loop, and
 * unzipping and hashing every archive on each request would stall it. Restore, check and
 * readBackupManifest always verify afresh.
 */
const listed = new Map<string, { readonly stamp: string; readonly info: BackupInfo }>();

/**
 * The backups in `dir`, newest first, each verified with the signing key in `keyFile`; archives
 * that fail verification are listed with their error. Each archive is verified once and then
 * remembered until it or the key changes.
 */
export function listBackups(dir: string, keyFile: string): BackupInfo[] {
  const folder = resolve(dir);
  if (!existsSync(folder)) return [];
  let keyId: string;
  try {
    keyId = readSigningKey(keyFile)?.id ?? 'none';
  } catch (err) {
    keyId = toXrdError(err).message;
  }
  const names = new Set(readdirSync(folder).filter((name) => /\.(tar\.gz|tgz)$/.test(name)));
  for (const file of listed.keys()) if (dirname(file) === folder && !names.has(basename(file))) listed.delete(file);
  const infos: BackupInfo[] = [];
  for (const name of names) {
    const file = join(folder, name);
    let stat;
    try {
      stat = statSync(file);
    } catch {
      continue; // removed while listing
    }
    const stamp = `${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}:${stat.ino}:${keyId}`;
    const known = listed.get(file);
    if (known?.stamp === stamp) {
      infos.push(known.info);
      continue;
    }
    let info: BackupInfo;
    try {
      const opened = openBackup(file, { keyFile, checkSignature: true });
      info = infoOf(file, opened.bytes, opened.manifest);
    } catch (err) {
      const e = toXrdError(err);
      info = { file, name, bytes: stat.size, created: stat.mtime.toISOString(), label: null, serverId: null, files: [], keys: 0, certs: 0, manifest: null, error: { code: e.code, message: e.message } };
    }
    listed.set(file, { stamp, info });
    infos.push(info);
  }
  return infos.sort((a, b) => b.created.localeCompare(a.created));
}

function infoOf(file: string, bytes: number, m: BackupManifest): BackupInfo {
  return { file, name: basename(file), bytes, created: m.created, label: m.label, serverId: m.serverId, files: m.files.map((f) => f.path), keys: m.keys.length, certs: certCount(m), manifest: m, error: null };
}

const certCount = (m: BackupManifest) => m.keys.reduce((n, k) => n + k.certs.length, 0);

/**
 * Reads and verifies an archive: bounded (size packed and unpacked, entry count), the manifest's
 * signature (unless the caller skips it, the reference's `-N`), then every file against the manifest.
 */
function openBackup(file: string, options: { keyFile: string; checkSignature: boolean }): OpenedBackup {
  const corrupt = (reason: string, cause?: unknown) => new XrdError('BackupCorrupt', { file, reason }, { cause });
  let gz: Buffer;
  try {
    if (statSync(file).size > MAX_ARCHIVE_BYTES) throw corrupt(`larger than ${MAX_ARCHIVE_BYTES} bytes: not a backup of configuration and key metadata`);
    gz = readFileSync(file);
  } catch (err) {
    if (err instanceof XrdError) throw err;
    throw new XrdError('IOError', { reason: `cannot read ${file}: ${(err as Error).message}` }, { cause: err });
  }
  let entries: TarEntry[];
  try {
    entries = readTarGz(gz, { maxBytes: MAX_ARCHIVE_BYTES, maxEntries: MANAGED.length + 2 });
  } catch (err) {
    if (err instanceof TarError) throw corrupt(err.message, err);
    throw err;
  }
  const byName = new Map<string, TarEntry>();
  for (const e of entries) {
    if (byName.has(e.name)) throw corrupt(`${e.name} appears twice`);
    byName.set(e.name, e);
  }
  const manifestEntry = byName.get(MANIFEST);
  if (!manifestEntry) throw corrupt('no manifest.json: not a security server backup');
  if (options.checkSignature) verifySignature(file, manifestEntry.data, byName.get(SIGNATURE), options.keyFile);
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(manifestEntry.data.toString('utf8')) as BackupManifest;
  } catch (err) {
    throw corrupt(`manifest.json is not JSON: ${(err as Error).message}`, err);
  }
  if (manifest?.format !== BACKUP_FORMAT) throw corrupt('manifest.json is not a security server backup manifest');
  // Version 1 differs only in being unsigned: readable when the signature is not checked.
  if (manifest.version !== BACKUP_VERSION && !(manifest.version === 1 && !options.checkSignature)) {
    throw corrupt(`backup format version ${manifest.version} is not supported (this version reads ${BACKUP_VERSION})`);
  }
  if (!Array.isArray(manifest.files) || !Array.isArray(manifest.keys) || typeof manifest.created !== 'string') throw corrupt('manifest.json lacks files, keys or created');
  const files = new Map<string, TarEntry>();
  for (const f of manifest.files) {
    if (typeof f?.path !== 'string' || !Number.isInteger(f.mode) || (f.mode & ~0o777) !== 0) throw corrupt('manifest.json has a malformed file entry');
    if (!MANAGED.some((m) => m.path === f.path)) throw corrupt(`${f.path} is not a file a backup holds`);
    if (files.has(f.path)) throw corrupt(`${f.path} is listed twice in the manifest`);
    const entry = byName.get(f.path);
    if (!entry) throw corrupt(`${f.path} is listed in the manifest but not in the archive`);
    if (entry.data.length !== f.size || sha256(entry.data) !== f.sha256) throw corrupt(`${f.path} does not match its SHA-256 in the manifest`);
    files.set(f.path, entry);
  }
  for (const name of byName.keys()) {
    if (name !== MANIFEST && name !== SIGNATURE && !files.has(name)) throw corrupt(`${name} is in the archive but not in the manifest`);
  }
  return { manifest, files, bytes: gz.length };
}

// ---- restore --------------------------------------------------------------------------------

/** Roots whose files the running signer reads: the admin API restores them only when unchanged. */
const SIGNER_OWNED: readonly Root[] = ['signer', 'devices'];

const ASIDE = '.pre-restore';
const STAGED = '.restore-new';

interface Step {
  readonly file: BackupFile;
  readonly target: string;
  readonly data: Buffer;
  readonly mode: number;
}

/**
 * The archive's mode is only a hint: an edited archive must not make a key world-readable or the
 * API key file writable by others. Owner read-write always (the services write their files).
 */
function restoredMode(managed: ManagedFile, archived: number): number {
  return managed.shared ? 0o600 | (archived & 0o044) : 0o600;
}

/**
 * Puts the archive's files back: the archive is verified first, then every file is written beside
 * its target, then the current files are renamed to `*.pre-restore` and the new ones into place.
 * Any failure undoes what was done. The keys are checked against the tokens when a signer answers.
 * The signature is checked with `<proxyDataDir>/admin/backup-signing.key`.
 * @throws BackupCorrupt, BackupUnsigned, BackupSignatureInvalid (nothing touched), BackupRefused (a
 *   signer answers; nothing touched), BackupRestoreFailed (rolled back), IOError, InvalidConfiguration
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreReport> {
  const say = options.progress ?? (() => {});
  const file = resolve(options.file);
  const checkSignature = options.skipSignatureCheck !== true;
  let opened: OpenedBackup;
  try {
    opened = openBackup(file, { keyFile: backupSigningKeyFile(options.proxyDataDir), checkSignature });
  } catch (err) {
    options.log?.error({ event: 'restoreBackup', file, code: toXrdError(err).fullCode, reason: toXrdError(err).message }, 'restore refused: the archive did not verify');
    throw err;
  }
  const { manifest, files } = opened;
  if (!checkSignature) {
    say(`NOT checking the signature of ${file}: restore it only if you know where it comes from`);
    options.log?.warn({ event: 'restoreBackup', file, signature: 'not checked' }, 'restoring a backup whose signature is not checked');
  }
  say(`verified ${file}${checkSignature ? ' (signed with this server’s key)' : ''}: ${manifest.files.length} files, created ${manifest.created}${manifest.serverId ? ` on ${manifest.serverId}` : ''}`);

  // The pid file finds a signer wherever its socket is (/run/xrd under systemd); the socket finds
  // one started before signer.pid existed, and is what the keys are checked through.
  const mayRun = options.force === true || options.whileRunning === true;
  const pid = runningSignerPid(options.signerDataDir);
  if (pid !== undefined && !mayRun) {
    throw new XrdError('BackupRefused', {
      pid,
      reason: `the signer of ${options.signerDataDir} runs as process ${pid} (${join(options.signerDataDir, SIGNER_PID)}): stop it first (its key configuration is being restored), then restore again`,
    });
  }
  const socket = options.signerSocket ?? defaultAdminSocket(options.signerDataDir);
  const signer = await signerAnswering(socket);
  if (signer && !mayRun) {
    signer.close();
    throw new XrdError('BackupRefused', { reason: `a signer answers on ${socket}: stop it first (its key configuration is being restored), then restore again` });
  }

  try {
    const report: RestoreReport['files'][number][] = [];
    const steps: Step[] = [];
    let serverConf: Buffer | undefined;
    for (const f of manifest.files) {
      const managed = MANAGED.find((m) => m.path === f.path)!;
      if (f.path === SERVERCONF_ENTRY) {
        serverConf = files.get(f.path)!.data;
        const current = await serverConfExport(options.proxyDataDir, options.databaseUrl);
        const same = current !== undefined && current.equals(Buffer.from(serializeServerConfJson(parseServerConfJson(serverConf.toString('utf8'), `${file}: ${SERVERCONF_ENTRY}`))));
        report.push({ path: f.path, target: serverConfLocation(options.proxyDataDir, options.databaseUrl), outcome: same ? 'unchanged' : 'restored' });
        if (same) serverConf = undefined;
        continue;
      }
      const target = sourceOf(managed, options);
      const data = files.get(f.path)!.data;
      const mode = restoredMode(managed, f.mode);
      if (!target) {
        report.push({ path: f.path, target: null, outcome: 'skipped', reason: `no ${managed.root === 'devices' ? 'devices.ini' : 'anchor'} path given to restore it to` });
      } else if (managed.keepCurrent && (existsSync(target) || options.whileRunning)) {
        report.push({ path: f.path, target, outcome: 'kept current', reason: 'the audit trail is not rolled back' });
      } else if (managed === KEYCONF ? options.whileRunning && (await sameKeyconf(target, data)) : sameContent(target, data, mode)) {
        report.push({ path: f.path, target, outcome: 'unchanged' });
      } else {
        steps.push({ file: f, target, data, mode });
        report.push({ path: f.path, target, outcome: 'restored' });
      }
    }
    if (options.whileRunning) {
      const signerFiles = steps.filter((s) => SIGNER_OWNED.includes(MANAGED.find((m) => m.path === s.file.path)!.root)).map((s) => s.file.path);
      if (signerFiles.length > 0) {
        options.log?.warn({ event: 'restoreBackup', file, signerFiles }, 'restore refused: it would change what only a stopped signer may have changed');
        throw new XrdError('BackupNeedsStoppedSigner', {
          file,
          files: signerFiles.join(', '),
          reason: `${signerFiles.join(' and ')} in the backup differ${signerFiles.length === 1 ? 's' : ''} from the current one${signerFiles.length === 1 ? '' : 's'}, which only a restore with the signer stopped may replace`,
        });
      }
    }
    const restoredPaths = [...steps.map((s) => s.file.path), ...(serverConf ? [SERVERCONF_ENTRY] : [])];
    let keptAside: string[];
    try {
      // The store last, once every file is in place: one transaction, and the files are put back if it fails.
      keptAside = await applySteps(steps, file, say, async () => {
        if (serverConf) {
          await restoreServerConf(options.proxyDataDir, options.databaseUrl, serverConf, file, options.actor ?? RESTORE_ACTOR, restoredPaths);
          say(`restored the server configuration into ${serverConfLocation(options.proxyDataDir, options.databaseUrl)}`);
        } else if (options.actor) {
          await noteRestore(options.proxyDataDir, options.databaseUrl, options.actor, file, restoredPaths);
        }
      });
    } catch (err) {
      options.log?.error({ event: 'restoreBackup', file, created: manifest.created, err }, 'restore failed; the current files were put back');
      throw err;
    }
    const restored = [...steps.map((s) => s.target), ...(serverConf ? [serverConfLocation(options.proxyDataDir, options.databaseUrl)] : [])];
    options.log?.info({ event: 'restoreBackup', file, created: manifest.created, restored, keptAside }, 'backup restored');
    const keys = signer
      ? await checkBackupKeys(manifest, signer).catch((err: unknown) => notChecked(manifest, `the signer could not be asked: ${toXrdError(err).message}`))
      : notChecked(manifest, `no signer answers on ${socket}: start it, log in to its tokens and run \`xrd backup check\``);
    for (const line of describeKeyCheck(keys)) say(line);
    return { file, created: manifest.created, label: manifest.label, serverId: manifest.serverId, signature: checkSignature ? 'verified' : 'not checked', files: report, keptAside, keys };
  } finally {
    signer?.close();
  }
}

/** Stages every file, then swaps them in, then runs `finish`; on any failure puts back what was there. */
async function applySteps(steps: readonly Step[], file: string, say: (line: string) => void, finish: () => Promise<void>): Promise<string[]> {
  const staged: string[] = [];
  const aside: { from: string; to: string }[] = [];
  const placed: string[] = [];
  try {
    for (const s of steps) {
      makeDirs(dirname(s.target));
      staged.push(s.target + STAGED);
      writeFileAtomic(s.target + STAGED, s.data, s.mode);
      ownLike(s.target + STAGED, existsSync(s.target) ? s.target : dirname(s.target));
    }
    const swap = () => {
      for (const s of steps) {
        // SQLite's journal and WAL belong to the database they sit beside: they go with it, or a
        // stale WAL would be played into the restored file.
        const companions = s.file.path === KEYCONF.path ? ['', '-wal', '-shm', '-journal'] : [''];
        for (const suffix of companions) {
          const current = s.target + suffix;
          if (!existsSync(current)) continue;
          rmSync(current + ASIDE, { force: true });
          renameSync(current, current + ASIDE);
          aside.push({ from: current, to: current + ASIDE });
        }
        renameSync(s.target + STAGED, s.target);
        placed.push(s.target);
        say(`restored ${s.target}`);
      }
    };
    swap();
    await finish();
  } catch (err) {
    for (const path of [...staged, ...placed]) rmSync(path, { force: true });
    for (const { from, to } of aside.reverse()) renameSync(to, from);
    throw new XrdError('BackupRestoreFailed', { file, reason: `${(err as Error).message}; the current files were put back` }, { cause: err });
  }
  return aside.map((a) => a.to);
}

function sameContent(target: string, data: Buffer, mode: number): boolean {
  try {
    return (statSync(target).mode & 0o777) === mode && readFileSync(target).equals(data);
  } catch {
    return false;
  }
}

/** The signer daemon's pid file in its data folder (signer-daemon.ts writes and removes it). */
const SIGNER_PID = 'signer.pid';

/**
 * The pid in `<signerDataDir>/signer.pid` when that process exists. A process of another user
 * (the signer's own, when root is not the caller) answers EPERM, which still means it exists. A
 * signer killed outright leaves the file behind; then its pid names no process, or, reused, one
 * the administrator can see is not the signer and remove the file.
 */
function runningSignerPid(signerDataDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(signerDataDir, SIGNER_PID), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

async function signerAnswering(socket: string): Promise<SignerClient | undefined> {
  if (!existsSync(socket)) return undefined;
  try {
    return await SignerClient.connect(socket, { timeoutMs: 10_000 });
  } catch {
    // A socket file nobody listens on is what a stopped (or killed) signer leaves.
    return undefined;
  }
}

// ---- signing --------------------------------------------------------------------------------

/**
 * `<proxy data dir>/admin/backup-signing.key`: 64 hex digits, mode 0600, made at the first backup
 * and never put in one. Keep a copy apart from the backups: restoring them on a new machine needs it.
 */
export function backupSigningKeyFile(proxyDataDir: string): string {
  return join(proxyDataDir, 'admin', 'backup-signing.key');
}

interface SigningKey {
  readonly key: Buffer;
  /** The first 16 hex digits of the key's SHA-256: names the key in signatures and messages without revealing it. */
  readonly id: string;
}

/** The `manifest.hmac` entry. */
interface BackupSignature {
  readonly algorithm: 'HMAC-SHA256';
  readonly keyId: string;
  /** Hex HMAC-SHA-256 of the manifest.json entry's bytes. */
  readonly mac: string;
}

const keyOf = (key: Buffer): SigningKey => ({ key, id: createHash('sha256').update(key).digest('hex').slice(0, 16) });
const macOf = (key: Buffer, manifest: Buffer): string => createHmac('sha256', key).update(manifest).digest('hex');

/**
 * The key in `file`, or undefined when there is none.
 * @throws InvalidConfiguration when the file is not a key or other users may read or write it
 */
function readSigningKey(file: string): SigningKey | undefined {
  let text: string;
  try {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) throw new XrdError('InvalidConfiguration', { reason: `${file} is open to other users (mode ${mode.toString(8)}); it must be 0600 (chmod 600 ${file})` });
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof XrdError) throw err;
    throw new XrdError('IOError', { reason: `cannot read ${file}: ${(err as Error).message}` }, { cause: err });
  }
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new XrdError('InvalidConfiguration', { reason: `${file} is not a backup signing key (64 hex digits)` });
  return keyOf(Buffer.from(hex, 'hex'));
}

/** The server's key, made (0600, owned like its folder) when it has none yet; under a lock, so two first backups make one key. */
function signingKey(file: string): SigningKey {
  makeDirs(dirname(file));
  return withFileLock(file, () => {
    const existing = readSigningKey(file);
    if (existing) return existing;
    const key = randomBytes(32);
    writeFileAtomic(file, `${key.toString('hex')}\n`, 0o600);
    ownLike(file, dirname(file));
    return keyOf(key);
  });
}

/**
 * The archive of `entries` (manifest.json among them) with manifest.hmac, the manifest's signature
 * under `key`, after it; a signature already among the entries is replaced. Exported for tests that
 * make edited archives as an administrator, or an attacker holding the key, would.
 */
export function writeSignedArchive(entries: readonly TarEntry[], key: Buffer): Buffer {
  const manifest = entries.find((e) => e.name === MANIFEST);
  if (!manifest) throw new XrdError('InternalError', { reason: 'a backup archive needs its manifest.json' });
  const signature: BackupSignature = { algorithm: 'HMAC-SHA256', keyId: keyOf(key).id, mac: macOf(key, manifest.data) };
  const signatureEntry: TarEntry = { name: SIGNATURE, data: Buffer.from(`${JSON.stringify(signature)}\n`), mode: 0o600, mtime: manifest.mtime };
  const files = entries.filter((e) => e !== manifest && e.name !== SIGNATURE);
  return writeTarGz([manifest, signatureEntry, ...files]);
}

/**
 * @throws BackupUnsigned when there is no manifest.hmac
 * @throws BackupSignatureInvalid when it is not a signature, this server has no key, or the MAC does not match
 */
function verifySignature(file: string, manifest: Buffer, entry: TarEntry | undefined, keyFile: string): void {
  if (!entry) throw new XrdError('BackupUnsigned', { file, reason: 'it has no manifest.hmac: made by a version that did not sign backups, or the signature was taken out' });
  const invalid = (reason: string) => new XrdError('BackupSignatureInvalid', { file, reason });
  let signature: Partial<BackupSignature> | null;
  try {
    signature = JSON.parse(entry.data.toString('utf8')) as Partial<BackupSignature> | null;
  } catch {
    throw invalid('manifest.hmac is not JSON');
  }
  if (signature?.algorithm !== 'HMAC-SHA256' || typeof signature.mac !== 'string' || !/^[0-9a-f]{64}$/.test(signature.mac)) throw invalid('manifest.hmac is not an HMAC-SHA256 signature');
  const key = readSigningKey(keyFile);
  if (!key) throw invalid(`this server has no backup signing key to check it with (${keyFile}): put the key of the server that made the backup there, mode 0600`);
  if (!timingSafeEqual(Buffer.from(macOf(key.key, manifest), 'hex'), Buffer.from(signature.mac, 'hex'))) {
    throw invalid(
      signature.keyId === key.id
        ? 'the manifest does not match its signature: altered after it was signed'
        : `signed with key ${String(signature.keyId)}, not with this server's key ${key.id}: made elsewhere, or altered`,
    );
  }
}

// ---- keys -----------------------------------------------------------------------------------

/**
 * Which of the backup's keys the signer's tokens hold. A key on a token that is not available or
 * not logged in cannot be seen, so it is reported as not checked rather than missing.
 */
export async function checkBackupKeys(manifest: BackupManifest, signer: Pick<SignerClient, 'call'>): Promise<KeyCheck> {
  const tokens = await signer.call('listTokens', {});
  const onTokens = await signer.call('listKeys', {});
  const held: string[] = [];
  const missing: KeyCheckEntry[] = [];
  const unchecked: KeyCheckEntry[] = [];
  for (const k of manifest.keys) {
    const entry = (reason: string): KeyCheckEntry => ({ keyId: k.keyId, tokenId: k.tokenId, usage: k.usage, reason });
    const token = tokens.find((t) => t.tokenId === k.tokenId);
    if (!token) missing.push(entry('no configured token has this token id'));
    else if (!token.available) unchecked.push(entry('the token is not available'));
    else if (!token.active) unchecked.push(entry('the token is not logged in'));
    else if (onTokens.some((v) => v.keyId === k.keyId && v.tokenId === k.tokenId && v.available)) held.push(k.keyId);
    else missing.push(entry('the key is not on the token'));
  }
  return { checked: true, held, missing, notChecked: unchecked };
}

function notChecked(manifest: BackupManifest, reason: string): KeyCheck {
  return { checked: false, held: [], missing: [], notChecked: manifest.keys.map((k) => ({ keyId: k.keyId, tokenId: k.tokenId, usage: k.usage, reason })) };
}

/** Human lines for a key check (the CLI prints them; restore reports them as progress). */
export function describeKeyCheck(c: KeyCheck): string[] {
  if (!c.checked) return c.notChecked.length ? [`keys not checked (${c.notChecked.length}): ${c.notChecked[0]!.reason}`] : ['the backup lists no keys'];
  return [
    `${c.held.length} key(s) of the backup are on the tokens`,
    ...c.missing.map((k) => `MISSING key ${k.keyId} (${k.usage ?? 'no usage'}) on token ${k.tokenId}: ${k.reason}`),
    ...c.notChecked.map((k) => `not checked: key ${k.keyId} on token ${k.tokenId}: ${k.reason}`),
  ];
}

// ---- helpers --------------------------------------------------------------------------------

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function readSource(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot read ${path}: ${(err as Error).message}` }, { cause: err });
  }
}

const runsAsRoot = () => process.getuid?.() === 0;

/**
 * Root's files take the owner and group of `like` (the file they replace, or their folder): the
 * services run as their own users (native-config/systemd) and must still read and write them.
 */
function ownLike(path: string, like: string): void {
  if (!runsAsRoot()) return;
  const { uid, gid } = statSync(like);
  chownSync(path, uid, gid);
}

/** mkdir -p (0700); as root, the folders made get the owner of the folder they were made in. */
function makeDirs(dir: string): void {
  const absolute = resolve(dir);
  const first = mkdirSync(absolute, { recursive: true, mode: 0o700 });
  if (first === undefined || !runsAsRoot()) return;
  const { uid, gid } = statSync(dirname(first));
  for (let d = absolute; ; d = dirname(d)) {
    chownSync(d, uid, gid);
    if (d === first || d === dirname(d)) break;
  }
}
