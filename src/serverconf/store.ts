/**
 * The server configuration's store: the reference's serverconf database as tables (clients, their
 * internal TLS certificates, service descriptions and services, endpoints, access rights, local
 * groups, timestamping services) and an audit log of every change. SQLite (better-sqlite3) is the
 * embedded default; `ServerConfStore` is what the rest of the code sees, so a PostgreSQL engine
 * can serve it later.
 *
 * A change is a function from the configuration in force to the next one, run inside one
 * IMMEDIATE transaction with its audit row: two writers (the admin API and the CLI) never
 * interleave, a refused change (the function throws) leaves nothing behind, and a reader never
 * sees half of one. The running proxy sees a change through `revision`, bumped by each commit and
 * looked at no more than once a second (`serverConfReader`).
 *
 * A serverconf.json of the days before the store (or one a test or an installer writes before the
 * first start) is imported once, by whichever program opens the store first, and renamed
 * `serverconf.json.imported` so that nobody mistakes it for the configuration in force; one found
 * when the store holds a configuration already is renamed `serverconf.json.ignored`.
 */
import Database from 'better-sqlite3';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { restrictDatabaseFiles } from '../platform/files.ts';
import { applySchema } from '../platform/sqlite-schema.ts';
import { formatClientId, formatSecurityServerId, parseClientId, parseSecurityServerId } from '../protocol/identifiers.ts';
import type { ClientStatus, ConnectionType, DescriptionType, LocalClient, ServerConf } from './model.ts';
import { MAX_SERVERCONF_JSON_BYTES, parseServerConfJson } from './serverconf-json.ts';

export const SERVERCONF_DB = 'serverconf.db';
/** The file the store imports on first open (and that older versions kept the configuration in). */
export const SERVERCONF_JSON = 'serverconf.json';

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
  /** The configuration in force; undefined before the server is initialised (no server id yet). */
  read(): ServerConf | undefined;
  /** Bumped by every committed change: a reader compares it to know whether to read again. */
  revision(): number;
  /**
   * Applies `change` atomically and records who did what. `change` may throw a coded error to
   * refuse; nothing is written then.
   */
  change(actor: Actor, action: string, detail: Record<string, unknown>, change: (current: ServerConf | undefined) => ServerConf): ServerConf;
  /** Records something done that changes no configuration (a management request sent). */
  audit(actor: Actor, action: string, detail: Record<string, unknown>): void;
  /** The newest entries first; only those of `action` when given. */
  auditLog(options?: { limit?: number; action?: string }): AuditEntry[];
  close(): void;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE server (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  server_id TEXT, -- INSTANCE/CLASS/CODE/SERVER; NULL until initialised
  revision INTEGER NOT NULL
);
INSERT INTO server (id, server_id, revision) VALUES (1, NULL, 0);
CREATE TABLE client (
  id INTEGER PRIMARY KEY,
  identifier TEXT NOT NULL UNIQUE, -- INSTANCE/CLASS/CODE[/SUBSYSTEM]
  status TEXT NOT NULL CHECK (status IN ('SAVED', 'REGISTRATION_IN_PROGRESS', 'REGISTERED', 'DELETION_IN_PROGRESS', 'GLOBAL_ERROR', 'DISABLING_IN_PROGRESS', 'DISABLED', 'ENABLING_IN_PROGRESS')),
  -- What the client proxy enforces: a value it does not know must never get in.
  connection_type TEXT NOT NULL CHECK (connection_type IN ('HTTP', 'HTTPS', 'HTTPS_NO_AUTH'))
);
CREATE TABLE is_certificate (
  client_id INTEGER NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  der BLOB NOT NULL,
  PRIMARY KEY (client_id, position)
);
CREATE TABLE service_description (
  id INTEGER PRIMARY KEY, -- the model's id, stable across changes
  client_id INTEGER NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  url TEXT NOT NULL,
  disabled INTEGER NOT NULL,
  disabled_notice TEXT,
  refreshed_at TEXT NOT NULL
);
CREATE TABLE service (
  description_id INTEGER NOT NULL REFERENCES service_description(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  code TEXT NOT NULL,
  version TEXT,
  title TEXT,
  url TEXT NOT NULL,
  timeout_seconds INTEGER NOT NULL,
  ssl_authentication INTEGER, -- NULL: the default (on)
  PRIMARY KEY (description_id, position)
);
CREATE TABLE endpoint (
  client_id INTEGER NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  service_code TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  generated INTEGER NOT NULL,
  PRIMARY KEY (client_id, service_code, method, path)
);
CREATE TABLE access_right (
  client_id INTEGER NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  subject TEXT NOT NULL, -- client id, GLOBALGROUP:INST/code or LOCALGROUP:code
  service_code TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  granted_at TEXT NOT NULL,
  PRIMARY KEY (client_id, subject, service_code, method, path),
  FOREIGN KEY (client_id, service_code, method, path) REFERENCES endpoint(client_id, service_code, method, path) ON DELETE CASCADE
);
CREATE TABLE local_group (
  id INTEGER PRIMARY KEY,
  client_id INTEGER NOT NULL REFERENCES client(id) ON DELETE CASCADE,
  code TEXT NOT NULL,
  description TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (client_id, code)
);
CREATE TABLE local_group_member (
  group_id INTEGER NOT NULL REFERENCES local_group(id) ON DELETE CASCADE,
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
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  actor_kind TEXT NOT NULL,
  actor_name TEXT NOT NULL,
  action TEXT NOT NULL,
  detail TEXT NOT NULL
);
`;

/** From version N to N+1, at index N-1; a file is migrated by whichever program opens it first. */
const MIGRATIONS: string[] = [];

const SYSTEM: Actor = { kind: 'system', name: 'xrd' };

/**
 * Opens the store in `proxyDataDir` (creating it, and importing a serverconf.json found there, on
 * first use). @throws IOError when the file cannot be opened; InvalidConfiguration when the
 * serverconf.json to import is broken (nothing is imported then, and it stays where it is).
 */
export function openServerConfStore(proxyDataDir: string): ServerConfStore {
  const store = SqliteServerConfStore.open(join(proxyDataDir, SERVERCONF_DB));
  try {
    importJsonOnce(store, join(proxyDataDir, SERVERCONF_JSON));
  } catch (err) {
    store.close();
    throw err;
  }
  return store;
}

function importJsonOnce(store: ServerConfStore, file: string): void {
  if (!existsSync(file)) return;
  // One that turns up when the store is in use already is not imported over it, and says so by its name.
  const initialised = store.read() !== undefined;
  if (!initialised) {
    if (statSync(file).size > MAX_SERVERCONF_JSON_BYTES) throw new XrdError('InvalidConfiguration', { reason: `${file}: larger than ${MAX_SERVERCONF_JSON_BYTES} bytes` });
    const imported = parseServerConfJson(readFileSync(file, 'utf8'), file);
    store.change(SYSTEM, 'IMPORT_SERVERCONF_JSON', { file }, (current) => current ?? imported);
  }
  try {
    renameSync(file, `${file}.${initialised ? 'ignored' : 'imported'}`);
  } catch (err) {
    // Two programs starting at once: the other one moved it.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export class SqliteServerConfStore implements ServerConfStore {
  private readonly revisionStmt: Database.Statement<[], { revision: number }>;

  private constructor(private readonly db: Database.Database) {
    this.revisionStmt = db.prepare('SELECT revision FROM server WHERE id = 1');
  }

  /** @throws IOError */
  static open(file: string): SqliteServerConfStore {
    let db: Database.Database | undefined;
    try {
      // Client identifiers, certificates and who may call what: the owner's alone.
      restrictDatabaseFiles(file, { create: true });
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // The admin API, the CLI and the proxy meet on the lock: wait, don't fail.
      db.pragma('busy_timeout = 5000');
      applySchema(db, { version: SCHEMA_VERSION, schema: SCHEMA, migrations: MIGRATIONS });
      return new SqliteServerConfStore(db);
    } catch (err) {
      db?.close();
      throw new XrdError('IOError', { reason: `cannot open the server configuration ${file}: ${(err as Error).message}` }, { cause: err });
    }
  }

  revision(): number {
    return this.revisionStmt.get()!.revision;
  }

  read(): ServerConf | undefined {
    return this.db.transaction(() => this.load())();
  }

  change(actor: Actor, action: string, detail: Record<string, unknown>, change: (current: ServerConf | undefined) => ServerConf): ServerConf {
    return this.db
      .transaction(() => {
        const next = change(this.load());
        this.save(next);
        this.db.prepare('UPDATE server SET revision = revision + 1 WHERE id = 1').run();
        this.audit(actor, action, detail);
        return next;
      })
      .immediate();
  }

  audit(actor: Actor, action: string, detail: Record<string, unknown>): void {
    this.db.prepare('INSERT INTO audit_log (at, actor_kind, actor_name, action, detail) VALUES (?, ?, ?, ?, ?)').run(new Date().toISOString(), actor.kind, actor.name, action, JSON.stringify(detail));
  }

  auditLog(options: { limit?: number; action?: string } = {}): AuditEntry[] {
    const rows = this.db.prepare('SELECT id, at, actor_kind, actor_name, action, detail FROM audit_log WHERE ? IS NULL OR action = ? ORDER BY id DESC LIMIT ?').all(options.action ?? null, options.action ?? null, options.limit ?? 100) as { id: number; at: string; actor_kind: Actor['kind']; actor_name: string; action: string; detail: string }[];
    return rows.map((r) => ({ id: r.id, at: r.at, actor: { kind: r.actor_kind, name: r.actor_name }, action: r.action, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  close(): void {
    this.db.close();
  }

  private load(): ServerConf | undefined {
    const server = this.db.prepare('SELECT server_id FROM server WHERE id = 1').get() as { server_id: string | null };
    if (server.server_id === null) return undefined;
    type Row = Record<string, unknown>;
    const all = (sql: string, ...args: unknown[]) => this.db.prepare(sql).all(...args) as Row[];
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
    const services = groupBy(all('SELECT * FROM service ORDER BY description_id, position'), 'description_id', (s) => s);
    const members = groupBy(all('SELECT * FROM local_group_member ORDER BY rowid'), 'group_id', (m) => m);
    const certs = byClient(all('SELECT * FROM is_certificate ORDER BY client_id, position'), (r) => r.der as Buffer);
    const descriptions = byClient(all('SELECT * FROM service_description ORDER BY id'), (d) => ({
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
    const endpoints = byClient(all('SELECT * FROM endpoint ORDER BY rowid'), (e) => ({ serviceCode: e.service_code as string, method: e.method as string, path: e.path as string, generated: e.generated === 1 }));
    const rights = byClient(all('SELECT * FROM access_right ORDER BY rowid'), (a) => ({ subject: a.subject as string, serviceCode: a.service_code as string, method: a.method as string, path: a.path as string, grantedAt: a.granted_at as string }));
    const groups = byClient(all('SELECT * FROM local_group ORDER BY id'), (g) => ({
      code: g.code as string,
      description: g.description as string,
      updatedAt: g.updated_at as string,
      members: (members.get(g.id as number) ?? []).map((m) => ({ id: parseClientId(m.member as string), addedAt: m.added_at as string })),
    }));
    const clients = all('SELECT * FROM client ORDER BY id').map((c): LocalClient => {
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
    const timestampingServices = all('SELECT name, url FROM timestamping_service ORDER BY position').map((t) => ({ name: t.name as string, url: t.url as string }));
    return { serverId: parseSecurityServerId(server.server_id), clients, timestampingServices };
  }

  /** Writes `conf` over what is there (inside the caller's transaction); the configuration is small, so whole is simplest. */
  private save(conf: ServerConf): void {
    const db = this.db;
    for (const table of ['local_group_member', 'local_group', 'access_right', 'endpoint', 'service', 'service_description', 'is_certificate', 'client', 'timestamping_service']) db.prepare(`DELETE FROM ${table}`).run();
    db.prepare('UPDATE server SET server_id = ? WHERE id = 1').run(formatSecurityServerId(conf.serverId));
    const insertClient = db.prepare('INSERT INTO client (identifier, status, connection_type) VALUES (?, ?, ?)');
    const insertCert = db.prepare('INSERT INTO is_certificate (client_id, position, der) VALUES (?, ?, ?)');
    const insertDescription = db.prepare('INSERT INTO service_description (id, client_id, type, url, disabled, disabled_notice, refreshed_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const insertService = db.prepare('INSERT INTO service (description_id, position, code, version, title, url, timeout_seconds, ssl_authentication) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const insertEndpoint = db.prepare('INSERT INTO endpoint (client_id, service_code, method, path, generated) VALUES (?, ?, ?, ?, ?)');
    const insertRight = db.prepare('INSERT INTO access_right (client_id, subject, service_code, method, path, granted_at) VALUES (?, ?, ?, ?, ?, ?)');
    const insertGroup = db.prepare('INSERT INTO local_group (client_id, code, description, updated_at) VALUES (?, ?, ?, ?)');
    const insertMember = db.prepare('INSERT INTO local_group_member (group_id, member, added_at) VALUES (?, ?, ?)');
    const bool = (b: boolean | undefined) => (b === undefined ? null : b ? 1 : 0);
    const refuse = (err: unknown) => new XrdError('InvalidConfiguration', { reason: `the change would break the server configuration: ${(err as Error).message}` }, { cause: err });
    try {
      for (const c of conf.clients) {
        const clientId = Number(insertClient.run(formatClientId(c.id), c.status, c.connectionType).lastInsertRowid);
        c.isCerts.forEach((der, i) => insertCert.run(clientId, i, Buffer.from(new X509Certificate(der).raw)));
        for (const d of c.serviceDescriptions) {
          insertDescription.run(d.id, clientId, d.type, d.url, d.disabled ? 1 : 0, d.disabledNotice ?? null, d.refreshedAt);
          d.services.forEach((s, i) => insertService.run(d.id, i, s.code, s.version ?? null, s.title ?? null, s.url, s.timeoutSeconds, bool(s.sslAuthentication)));
        }
        for (const e of c.endpoints) insertEndpoint.run(clientId, e.serviceCode, e.method, e.path, e.generated ? 1 : 0);
        for (const r of c.accessRights) insertRight.run(clientId, r.subject, r.serviceCode, r.method, r.path, r.grantedAt);
        for (const g of c.localGroups) {
          const groupId = Number(insertGroup.run(clientId, g.code, g.description, g.updatedAt).lastInsertRowid);
          for (const m of g.members) insertMember.run(groupId, formatClientId(m.id), m.addedAt);
        }
      }
      conf.timestampingServices.forEach((t, i) => db.prepare('INSERT INTO timestamping_service (position, name, url) VALUES (?, ?, ?)').run(i, t.name, t.url));
    } catch (err) {
      // A constraint the change functions should have refused (a duplicate, a right to no endpoint).
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) throw refuse(err);
      throw err;
    }
  }
}

/**
 * The configuration as a function to call for every message: the store's revision is looked at
 * no more than once a second (`recheckMs`) and the configuration read again when it changed. A
 * store that cannot be read keeps the last good configuration in force (reported through
 * `onError`); only one that cannot be read at start throws.
 * @throws ServerNotInitialized when the store holds no configuration yet
 */
export function serverConfReader(store: ServerConfStore, options: { recheckMs?: number; onError?: (err: XrdError) => void } = {}): () => ServerConf {
  const recheckMs = options.recheckMs ?? 1000;
  let cached: { revision: number; conf: ServerConf | undefined; checkedAt: number } | undefined;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.checkedAt >= recheckMs) {
      try {
        const revision = store.revision();
        cached = revision === cached?.revision ? { ...cached, checkedAt: now } : { revision, conf: store.read(), checkedAt: now };
      } catch (err) {
        if (!cached) throw err;
        options.onError?.(new XrdError('IOError', { reason: (err as Error).message }, { cause: err }));
        cached = { ...cached, checkedAt: now };
      }
    }
    if (!cached.conf) throw new XrdError('ServerNotInitialized', {});
    return cached.conf;
  };
}

/** One change to the store in `proxyDataDir`, opened and closed around it (scripts, the local instance, tests). */
export function changeServerConfIn(proxyDataDir: string, actor: Actor, action: string, change: (current: ServerConf | undefined) => ServerConf): ServerConf {
  const store = openServerConfStore(proxyDataDir);
  try {
    return store.change(actor, action, {}, change);
  } finally {
    store.close();
  }
}
