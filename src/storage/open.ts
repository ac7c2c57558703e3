/**
 * Opening a store's database on either engine, with its schema at this program's version.
 *
 * Schema versions: a SQLite file holds one store and keeps its version in `PRAGMA user_version`
 * (as our files always have); a PostgreSQL database may hold every store of a server — or of the
 * nodes of a cluster — and keeps one row per store in `xrd_schema_versions`. A new database gets the
 * whole schema, an older one the migrations it lacks, in one transaction that other openers wait for
 * (SQLite's write lock; a PostgreSQL advisory lock), so of two nodes starting at once the second sees
 * the schema migrated. A database newer than this program is refused, never rewritten.
 */
import { XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { DatabaseConfig, Dialect, SqlDatabase, SqlExecutor } from './database.ts';
import { PostgresDatabase } from './postgres.ts';
import { SqliteDatabase, type SqliteOptions } from './sqlite.ts';

export interface StoreSchema {
  /** The store's name: its row in `xrd_schema_versions`. */
  readonly store: string;
  readonly version: number;
  /** The whole schema, for a new database. */
  readonly schema: (d: Dialect) => string;
  /** From version N to N+1, at index N-1. */
  readonly migrations: readonly ((d: Dialect) => string)[];
}

export interface OpenOptions extends SqliteOptions {
  readonly logger?: Logger;
  /** A reader's open: a database that does not hold the store yet is refused (IOError), never given its schema. */
  readonly existing?: boolean;
}

/** Any number; the lock every xrd store's migration takes on PostgreSQL. */
const MIGRATION_LOCK = 0x78726431;

/**
 * Opens the store's database and brings its schema to `schema.version`.
 * @throws DatabaseUnavailable when it cannot be opened or reached
 * @throws DatabaseTooNew when it was written by a newer program
 * @throws IOError with `existing`, when the database does not hold the store
 */
export async function openDatabase(config: DatabaseConfig, schema: StoreSchema, options: OpenOptions = {}): Promise<SqlDatabase> {
  const db = config.engine === 'sqlite' ? SqliteDatabase.open(config.file, options) : new PostgresDatabase(config.url, { logger: options.logger });
  try {
    await applySchema(db, schema, options);
    return db;
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

export async function applySchema(db: SqlDatabase, s: StoreSchema, options: { readonly existing?: boolean } = {}): Promise<void> {
  const versions = db.engine === 'sqlite' ? sqliteVersions : postgresVersions;
  // Read outside the lock first: the common case, a current schema, takes no write lock.
  const found = await versions.read(db, s.store);
  if (found === s.version) return;
  if (found === 0 && options.existing) throw new XrdError('IOError', { reason: `no ${s.store} store in ${db.location}` });
  await db.transaction(async (tx) => {
    await versions.lock(tx);
    const from = await versions.read(tx, s.store);
    if (from > s.version) throw new XrdError('DatabaseTooNew', { file: `${db.location} (${s.store})`, found: from, supported: s.version });
    if (from === s.version) return;
    if (from === 0) await tx.exec(s.schema(db.dialect));
    else for (const step of s.migrations.slice(from - 1)) await tx.exec(step(db.dialect));
    await versions.write(tx, s.store, s.version);
  });
}

interface Versions {
  lock(tx: SqlExecutor): Promise<void>;
  read(ex: SqlExecutor, store: string): Promise<number>;
  write(tx: SqlExecutor, store: string, version: number): Promise<void>;
}

const sqliteVersions: Versions = {
  // The transaction began IMMEDIATE: it holds the write lock already.
  lock: async () => undefined,
  read: async (ex) => (await ex.get<{ user_version: number }>('PRAGMA user_version'))!.user_version,
  write: (tx, _store, version) => tx.exec(`PRAGMA user_version = ${Number(version)}`),
};

const postgresVersions: Versions = {
  async lock(tx) {
    await tx.all('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK]);
    await tx.exec('CREATE TABLE IF NOT EXISTS xrd_schema_versions (store TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  },
  async read(ex, store) {
    const table = await ex.get<{ t: string | null }>("SELECT to_regclass('xrd_schema_versions')::text AS t");
    if (!table?.t) return 0;
    return (await ex.get<{ version: number }>('SELECT version FROM xrd_schema_versions WHERE store = ?', [store]))?.version ?? 0;
  },
  async write(tx, store, version) {
    await tx.run('INSERT INTO xrd_schema_versions (store, version) VALUES (?, ?) ON CONFLICT (store) DO UPDATE SET version = excluded.version', [store, version]);
  },
};
