/**
 * The server configuration's store: the reference's serverconf database as tables (clients, their
 * internal TLS certificates, service descriptions and services, endpoints, access rights, local
 * groups, timestamping services) and an audit log of every change, in SQLite (the file
 * serverconf.db in the proxy's data directory, the embedded default) or PostgreSQL (the database of
 * `XRD_DATABASE_URL`, which the nodes of a clustered provider share), through src/storage.
 *
 * A change is a function from the configuration in force to the next one, run inside one
 * transaction with its audit row: two writers (the admin API of one node, the CLI of another)
 * never interleave — SQLite's write lock, taken at BEGIN; on PostgreSQL the `server` row locked
 * FOR UPDATE before the configuration is read — a refused change (the function throws) leaves
 * nothing behind, and a reader never sees half of one. The running proxy sees a change through
 * `revision`, bumped by each commit and looked at in the background (`serverConfReader`).
 *
 * A serverconf.json of the days before the store (or one a test or an installer writes before the
 * first start) is imported once, by whichever program opens the store first, and renamed
 * `serverconf.json.imported` so that nobody mistakes it for the configuration in force; one found
 * when the store holds a configuration already is renamed `serverconf.json.ignored`.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { databaseConfig, DIALECTS, redactUrl, type DatabaseConfig, type Dialect, type Row, type SqlDatabase, type SqlExecutor } from '../storage/database.ts';
import { openDatabase, type StoreSchema } from '../storage/open.ts';
import { formatClientId, formatSecurityServerId, parseClientId, parseSecurityServerId } from '../protocol/identifiers.ts';
import type { ClientStatus, ConnectionType, DescriptionType, LocalClient, ServerConf } from './model.ts';
import { MAX_SERVERCONF_JSON_BYTES, parseServerConfJson } from './serverconf-json.ts';

export const SERVERCONF_DB = 'serverconf.db';
/** The file the store imports on first open (and that older versions kept the configuration in). */
export const SERVERCONF_JSON = 'serverconf.json';
/**
 * Left in the proxy's data folder by a store opened on PostgreSQL, naming the database (without
 * password): a program started there without the URL — the CLI or a backup run as root without
 * database.env — is refused instead of opening an empty serverconf.db beside it.
 */
export const SERVERCONF_LOCATION = 'serverconf.location';

/**
 * Who made a change: an API key (by name), a user logged in to the admin API (`user`), an
 * operating-system user (the CLI), or the server itself.
 */
export interface Actor {
  readonly kind: 'api-key' | 'user' | 'os-user' | 'system';
  readonly name: string;
}

export interface AuditEntry {
  readonly id: number;
  readonly at: string;
  readonly actor: Actor;
  /** What was done, in the reference's audit-log event names' spirit: `ADD_CLIENT`, `ADD_SERVICE_DESCRIPTION`. */
  readonly action: string;
  /** The change's arguments (never secrets). */
  readonly detail: Record<string, unknown>;
}

export interface ServerConfStore {
  /** Where the configuration is kept, for messages: the SQLite file, or the database URL without its password. */
  readonly location: string;
  readonly engine: DatabaseConfig['engine'];
  /** The configuration in force; undefined before the server is initialised (no server id yet). */
  read(): Promise<ServerConf | undefined>;
  /** Bumped by every committed change: a reader compares it to know whether to read again. */
  revision(): Promise<number>;
  /**
   * Applies `change` atomically and records who did what. `change` may throw a coded error to
   * refuse; nothing is written then. It runs inside the transaction, so it must not wait for anything.
   */
  change(actor: Actor, action: string, detail: Record<string, unknown>, change: (current: ServerConf | undefined) => ServerConf): Promise<ServerConf>;
  /** Records something done that changes no configuration (a management request sent). */
  audit(actor: Actor, action: string, detail: Record<string, unknown>): Promise<void>;
  /** The newest entries first; only those of `action` when given. */
  auditLog(options?: { limit?: number; action?: string }): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

/**
 * The tables. Their names are the reference's serverconf names in our spelling and no other store
 * uses them, so on PostgreSQL they share one database with the other stores. SQLite files of
 * version 1 (`user_version`) keep working unchanged: its DDL here is what it always was but for
 * type names SQLite treats alike (BIGINT, and no AUTOINCREMENT on an audit log that is never
 * deleted from). PostgreSQL has no rowid: the rows whose order is their insertion order carry a
 * `seq` column there (`insertionOrder`).
 */
const SCHEMA: StoreSchema = {
  store: 'serverconf',
  version: 1,
  schema: (d) => `
CREATE TABLE server (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  server_id TEXT, -- INSTANCE/CLASS/CODE/SERVER; NULL until initialised
  revision BIGINT NOT NULL
);
INSERT INTO server (id, server_id, revision) VALUES (1, NULL, 0);
CREATE TABLE client (
  id ${d.autoId},
  identifier TEXT NOT NULL UNIQUE, -- INSTANCE/CLASS/CODE[/SUBSYSTEM]
  status TEXT NOT NULL CHECK (status IN ('SAVED', 'REGISTRATION_IN_PROGRESS', 'REGISTERED', 'DELETION_IN_PROGRESS', 'GLOBAL_ERROR', 'DISABLING_IN_PROGRESS', 'DISABLED', 'ENABLING_IN_PROGRESS')),
  -- What the client proxy enforces: a value it does not know must never get in.
  connection_type TEXT NOT NULL CHECK (connection_type IN ('HTTP', 'HTTPS', 'HTTPS_NO_AUTH'))
);
CREATE TABLE is_certificate (
  client_id BIGINT NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  der ${d.blob} NOT NULL,
  PRIMARY KEY (client_id, position)
);
CREATE TABLE service_description (
  id ${d.autoId}, -- the model's id, stable across changes
  client_id BIGINT NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  url TEXT NOT NULL,
  disabled INTEGER NOT NULL,
  disabled_notice TEXT,
  refreshed_at TEXT NOT NULL
);
CREATE TABLE service (
  description_id BIGINT NOT NULL REFERENCES service_description(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  code TEXT NOT NULL,
  version TEXT,
  title TEXT,
  url TEXT NOT NULL,
  timeout_seconds INTEGER NOT NULL,
  ssl_authentication INTEGER, -- NULL: the default (on)
  PRIMARY KEY (description_id, position)
);
CREATE TABLE endpoint (${insertionOrder(d).column}
  client_id BIGINT NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  service_code TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  generated INTEGER NOT NULL,
  PRIMARY KEY (client_id, service_code, method, path)
);
CREATE TABLE access_right (${insertionOrder(d).column}
  client_id BIGINT NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  subject TEXT NOT NULL, -- client id, GLOBALGROUP:INST/code or LOCALGROUP:code
  service_code TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  granted_at TEXT NOT NULL,
  PRIMARY KEY (client_id, subject, service_code, method, path),
  FOREIGN KEY (client_id, service_code, method, path) REFERENCES endpoint(client_id, service_code, method, path) ON DELETE CASCADE
);
CREATE TABLE local_group (
  id ${d.autoId},
  client_id BIGINT NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  code TEXT NOT NULL,
  description TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (client_id, code)
);
CREATE TABLE local_group_member (${insertionOrder(d).column}
  group_id BIGINT NOT NULL REFERENCES local_group(id) ON DELETE CASCADE,
  member TEXT NOT NULL,
  added_at TEXT NOT NULL,
  PRIMARY KEY (group_id, member)
);
CREATE TABLE timestamping_service (
  position INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  url TEXT NOT NULL
);
CREATE TABLE audit_log (
  id ${d.autoId},
  at TEXT NOT NULL,
  actor_kind TEXT NOT NULL,
  actor_name TEXT NOT NULL,
  action TEXT NOT NULL,
  detail TEXT NOT NULL
);
`,
  migrations: [],
};

/** The column that keeps rows in insertion order, and how to order by it: SQLite's rowid, a `seq` identity on PostgreSQL. */
function insertionOrder(d: Dialect): { column: string; orderBy: string } {
  return d === DIALECTS.sqlite ? { column: '', orderBy: 'rowid' } : { column: '\n  seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,', orderBy: 'seq' };
}

const SYSTEM: Actor = { kind: 'system', name: 'xrd' };

/** Where the store of `proxyDataDir` is: PostgreSQL when a database URL is given, serverconf.db there otherwise. */
export function serverConfDatabase(proxyDataDir: string, databaseUrl: string | undefined): DatabaseConfig {
  return databaseConfig(join(proxyDataDir, SERVERCONF_DB), databaseUrl);
}

/** Where the store of `proxyDataDir` is, for messages: the file, or the database URL without its password. */
export function serverConfLocation(proxyDataDir: string, databaseUrl: string | undefined): string {
  const config = serverConfDatabase(proxyDataDir, databaseUrl);
  return config.engine === 'sqlite' ? config.file : redactUrl(config.url);
}

/**
 * Opens the store of `proxyDataDir` — in PostgreSQL when `databaseUrl` is given — creating its
 * tables, and importing a serverconf.json found in `proxyDataDir`, on first use.
 * @throws DatabaseUnavailable when it cannot be opened or reached; DatabaseTooNew when a newer
 * program wrote it; InvalidConfiguration when the serverconf.json to import is broken (nothing is
 * imported then, and it stays where it is)
 */
export async function openServerConfStore(proxyDataDir: string, databaseUrl?: string, options: { logger?: Logger } = {}): Promise<ServerConfStore> {
  const marker = join(proxyDataDir, SERVERCONF_LOCATION);
  if (!databaseUrl && existsSync(marker)) {
    throw new XrdError('InvalidConfiguration', { reason: `the server configuration of ${proxyDataDir} is in PostgreSQL (${readFileSync(marker, 'utf8').trim()}): give its URL in XRD_DATABASE_URL (set -a; . /etc/xrd/database.env; set +a)` });
  }
  const db = await openDatabase(serverConfDatabase(proxyDataDir, databaseUrl), SCHEMA, options);
  const store = new SqlServerConfStore(db);
  try {
    if (databaseUrl) leaveMarker(proxyDataDir, marker, db.location);
    // Per connection, outside any transaction: the constraints that refuse a broken change.
    if (db.engine === 'sqlite') await db.exec('PRAGMA foreign_keys = ON');
    await importJsonOnce(store, join(proxyDataDir, SERVERCONF_JSON));
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/**
 * Writes the marker once. It names no secret (the URL without its password) and the folder is the
 * proxy's own, so it is readable by whoever shares the folder — the proxy's user and root — which
 * ever of them wrote it. A marker that cannot be written is only a lost warning: the store works.
 */
function leaveMarker(proxyDataDir: string, marker: string, location: string): void {
  if (!existsSync(proxyDataDir) || existsSync(marker)) return;
  try {
    writeFileSync(marker, `${location}\n`, { mode: 0o644 });
  } catch {
    // See above: nothing depends on it.
  }
}

async function importJsonOnce(store: ServerConfStore, file: string): Promise<void> {
  if (!existsSync(file)) return;
  // One that turns up when the store is in use already is not imported over it, and says so by its name.
  const initialised = (await store.read()) !== undefined;
  if (!initialised) {
    if (statSync(file).size > MAX_SERVERCONF_JSON_BYTES) throw new XrdError('InvalidConfiguration', { reason: `${file}: larger than ${MAX_SERVERCONF_JSON_BYTES} bytes` });
    const imported = parseServerConfJson(readFileSync(file, 'utf8'), file);
    await store.change(SYSTEM, 'IMPORT_SERVERCONF_JSON', { file }, (current) => current ?? imported);
  }
  try {
    renameSync(file, `${file}.${initialised ? 'ignored' : 'imported'}`);
  } catch (err) {
    // Two programs starting at once: the other one moved it.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

class SqlServerConfStore implements ServerConfStore {
  readonly location: string;
  readonly engine: DatabaseConfig['engine'];
  private readonly order: string;

  constructor(private readonly db: SqlDatabase) {
    this.location = db.location;
    this.engine = db.engine;
    this.order = insertionOrder(db.dialect).orderBy;
  }

  async revision(): Promise<number> {
    return (await this.db.get<{ revision: number }>('SELECT revision FROM server WHERE id = 1'))!.revision;
  }

  read(): Promise<ServerConf | undefined> {
    // Every SELECT of the load from one snapshot, without waiting for a writer.
    return this.db.transaction((tx) => this.load(tx), { readOnly: true });
  }

  change(actor: Actor, action: string, detail: Record<string, unknown>, change: (current: ServerConf | undefined) => ServerConf): Promise<ServerConf> {
    return this.db.transaction(async (tx) => {
      // SQLite's transaction holds the file's write lock from BEGIN; on PostgreSQL the server row's
      // lock makes a second writer (another node, the CLI) wait here until this one commits, and
      // then read what it committed.
      if (this.db.engine === 'postgres') await tx.get('SELECT revision FROM server WHERE id = 1 FOR UPDATE');
      const next = change(await this.load(tx));
      await this.save(tx, next);
      await tx.run('UPDATE server SET revision = revision + 1 WHERE id = 1');
      await insertAudit(tx, actor, action, detail);
      return next;
    });
  }

  audit(actor: Actor, action: string, detail: Record<string, unknown>): Promise<void> {
    return insertAudit(this.db, actor, action, detail);
  }

  async auditLog(options: { limit?: number; action?: string } = {}): Promise<AuditEntry[]> {
    const where = options.action === undefined ? '' : 'WHERE action = ? ';
    const rows = await this.db.all<{ id: number; at: string; actor_kind: Actor['kind']; actor_name: string; action: string; detail: string }>(
      `SELECT id, at, actor_kind, actor_name, action, detail FROM audit_log ${where}ORDER BY id DESC LIMIT ?`,
      [...(options.action === undefined ? [] : [options.action]), options.limit ?? 100],
    );
    return rows.map((r) => ({ id: r.id, at: r.at, actor: { kind: r.actor_kind, name: r.actor_name }, action: r.action, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private async load(tx: SqlExecutor): Promise<ServerConf | undefined> {
    const server = (await tx.get<{ server_id: string | null }>('SELECT server_id FROM server WHERE id = 1'))!;
    if (server.server_id === null) return undefined;
    const all = (sql: string) => tx.all<Row>(sql);
    const groupBy = <T>(rows: Row[], key: string, map: (r: Row) => T) => {
      const out = new Map<number, T[]>();
      for (const r of rows) {
        const list = out.get(r[key] as number);
        if (list) list.push(map(r));
        else out.set(r[key] as number, [map(r)]);
      }
      return out;
    };
    const byClient = <T>(rows: Row[], map: (r: Row) => T) => groupBy(rows, 'client_id', map);
    const services = groupBy(await all('SELECT * FROM service ORDER BY description_id, position'), 'description_id', (s) => s);
    const members = groupBy(await all(`SELECT * FROM local_group_member ORDER BY ${this.order}`), 'group_id', (m) => m);
    const certs = byClient(await all('SELECT * FROM is_certificate ORDER BY client_id, position'), (r) => r.der as Buffer);
    const descriptions = byClient(await all('SELECT * FROM service_description ORDER BY id'), (d) => ({
      id: d.id as number,
      type: d.type as DescriptionType,
      url: d.url as string,
      disabled: d.disabled === 1,
      ...(d.disabled_notice !== null ? { disabledNotice: d.disabled_notice as string } : {}),
      refreshedAt: d.refreshed_at as string,
      services: (services.get(d.id as number) ?? []).map((s) => ({
        code: s.code as string,
        ...(s.version !== null ? { version: s.version as string } : {}),
        ...(s.title !== null ? { title: s.title as string } : {}),
        url: s.url as string,
        timeoutSeconds: s.timeout_seconds as number,
        ...(s.ssl_authentication !== null ? { sslAuthentication: s.ssl_authentication === 1 } : {}),
      })),
    }));
    const endpoints = byClient(await all(`SELECT * FROM endpoint ORDER BY ${this.order}`), (e) => ({ serviceCode: e.service_code as string, method: e.method as string, path: e.path as string, generated: e.generated === 1 }));
    const rights = byClient(await all(`SELECT * FROM access_right ORDER BY ${this.order}`), (a) => ({ subject: a.subject as string, serviceCode: a.service_code as string, method: a.method as string, path: a.path as string, grantedAt: a.granted_at as string }));
    const groups = byClient(await all('SELECT * FROM local_group ORDER BY id'), (g) => ({
      code: g.code as string,
      description: g.description as string,
      updatedAt: g.updated_at as string,
      members: (members.get(g.id as number) ?? []).map((m) => ({ id: parseClientId(m.member as string), addedAt: m.added_at as string })),
    }));
    const clients = (await all('SELECT * FROM client ORDER BY id')).map((c): LocalClient => {
      const id = c.id as number;
      return {
        id: parseClientId(c.identifier as string),
        status: c.status as ClientStatus,
        connectionType: c.connection_type as ConnectionType,
        isCerts: certs.get(id) ?? [],
        serviceDescriptions: descriptions.get(id) ?? [],
        endpoints: endpoints.get(id) ?? [],
        accessRights: rights.get(id) ?? [],
        localGroups: groups.get(id) ?? [],
      };
    });
    const timestampingServices = (await all('SELECT name, url FROM timestamping_service ORDER BY position')).map((t) => ({ name: t.name as string, url: t.url as string }));
    return { serverId: parseSecurityServerId(server.server_id), clients, timestampingServices };
  }

  /** Writes `conf` over what is there (inside the caller's transaction); the configuration is small, so whole is simplest. */
  private async save(tx: SqlExecutor, conf: ServerConf): Promise<void> {
    for (const table of ['local_group_member', 'local_group', 'access_right', 'endpoint', 'service', 'service_description', 'is_certificate', 'client', 'timestamping_service']) await tx.run(`DELETE FROM ${table}`);
    await tx.run('UPDATE server SET server_id = ? WHERE id = 1', [formatSecurityServerId(conf.serverId)]);
    const bool = (b: boolean | undefined) => (b === undefined ? null : b ? 1 : 0);
    const insertId = async (sql: string, params: (string | number)[]) => (await tx.get<{ id: number }>(`${sql} RETURNING id`, params))!.id;
    try {
      for (const c of conf.clients) {
        const clientId = await insertId('INSERT INTO client (identifier, status, connection_type) VALUES (?, ?, ?)', [formatClientId(c.id), c.status, c.connectionType]);
        for (const [i, der] of c.isCerts.entries()) await tx.run('INSERT INTO is_certificate (client_id, position, der) VALUES (?, ?, ?)', [clientId, i, Buffer.from(new X509Certificate(der).raw)]);
        for (const d of c.serviceDescriptions) {
          await tx.run('INSERT INTO service_description (id, client_id, type, url, disabled, disabled_notice, refreshed_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [d.id, clientId, d.type, d.url, d.disabled ? 1 : 0, d.disabledNotice ?? null, d.refreshedAt]);
          for (const [i, s] of d.services.entries()) {
            await tx.run('INSERT INTO service (description_id, position, code, version, title, url, timeout_seconds, ssl_authentication) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [d.id, i, s.code, s.version ?? null, s.title ?? null, s.url, s.timeoutSeconds, bool(s.sslAuthentication)]);
          }
        }
        for (const e of c.endpoints) await tx.run('INSERT INTO endpoint (client_id, service_code, method, path, generated) VALUES (?, ?, ?, ?, ?)', [clientId, e.serviceCode, e.method, e.path, e.generated ? 1 : 0]);
        for (const r of c.accessRights) await tx.run('INSERT INTO access_right (client_id, subject, service_code, method, path, granted_at) VALUES (?, ?, ?, ?, ?, ?)', [clientId, r.subject, r.serviceCode, r.method, r.path, r.grantedAt]);
        for (const g of c.localGroups) {
          const groupId = await insertId('INSERT INTO local_group (client_id, code, description, updated_at) VALUES (?, ?, ?, ?)', [clientId, g.code, g.description, g.updatedAt]);
          for (const m of g.members) await tx.run('INSERT INTO local_group_member (group_id, member, added_at) VALUES (?, ?, ?)', [groupId, formatClientId(m.id), m.addedAt]);
        }
      }
      for (const [i, t] of conf.timestampingServices.entries()) await tx.run('INSERT INTO timestamping_service (position, name, url) VALUES (?, ?, ?)', [i, t.name, t.url]);
    } catch (err) {
      // A constraint the change functions should have refused (a duplicate, a right to no endpoint).
      if (isConstraintViolation(err)) throw new XrdError('InvalidConfiguration', { reason: `the change would break the server configuration: ${(err as Error).message}` }, { cause: err });
      throw err;
    }
  }
}

function insertAudit(ex: SqlExecutor, actor: Actor, action: string, detail: Record<string, unknown>): Promise<void> {
  return ex.run('INSERT INTO audit_log (at, actor_kind, actor_name, action, detail) VALUES (?, ?, ?, ?, ?)', [new Date().toISOString(), actor.kind, actor.name, action, JSON.stringify(detail)]).then(() => undefined);
}

/** SQLite's SQLITE_CONSTRAINT_*; PostgreSQL's SQLSTATE class 23 (integrity constraint violation). */
function isConstraintViolation(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CONSTRAINT') || /^23[0-9A-Z]{3}$/.test(code));
}

/** The configuration in force, for every message, without waiting; `close` stops its background checks. */
export interface ServerConfReader {
  /** @throws ServerNotInitialized when the store holds no configuration yet */
  (): ServerConf;
  close(): void;
}

/**
 * Reads the configuration once (awaited), then looks at the store's revision in the background every
 * `recheckMs` (default a second) and reads the configuration again when it changed, so that the
 * function it gives — called for every message — answers at once with what it read last. A store
 * that cannot be read keeps the last good configuration in force (reported through `onError`);
 * only one that cannot be read at start throws.
 */
export async function serverConfReader(store: ServerConfStore, options: { recheckMs?: number; onError?: (err: XrdError) => void } = {}): Promise<ServerConfReader> {
  const recheckMs = options.recheckMs ?? 1000;
  let revision = await store.revision();
  let conf = await store.read();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const check = async () => {
    try {
      const now = await store.revision();
      if (now !== revision) {
        const next = await store.read();
        // Read after the revision: a change committed in between is read now and again next time.
        conf = next;
        revision = now;
      }
    } catch (err) {
      options.onError?.(new XrdError('IOError', { reason: (err as Error).message }, { cause: err }));
    }
    if (!closed) timer = setTimeout(check, recheckMs).unref();
  };
  timer = setTimeout(check, recheckMs).unref();
  const reader = () => {
    if (!conf) throw new XrdError('ServerNotInitialized', {});
    return conf;
  };
  return Object.assign(reader, {
    close: () => {
      closed = true;
      clearTimeout(timer);
    },
  });
}

/** One change to the store of `proxyDataDir`, opened and closed around it (scripts, the local instance, tests). */
export async function changeServerConfIn(proxyDataDir: string, actor: Actor, action: string, change: (current: ServerConf | undefined) => ServerConf, databaseUrl?: string): Promise<ServerConf> {
  const store = await openServerConfStore(proxyDataDir, databaseUrl);
  try {
    return await store.change(actor, action, {}, change);
  } finally {
    await store.close();
  }
}
