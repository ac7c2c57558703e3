/**
 * The SQLite engine of `SqlDatabase`: one better-sqlite3 connection to a file of this node, in WAL
 * mode. Statements run synchronously (microseconds for a store's statements); callers are served
 * one at a time in order, so a transaction's awaits never let another caller's statement in. The
 * order is kept per file across the connections of this process: a second connection's BEGIN would
 * otherwise wait for the lock synchronously, on the thread the first needs to commit.
 *
 * A transaction's function should await only its statements: SQLite holds the file's write lock
 * until it returns, and other processes on the file wait for it (up to the busy timeout).
 */
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { XrdError } from '../platform/errors.ts';
import { restrictDatabaseFiles } from '../platform/files.ts';
import { DIALECTS, type Row, type SqlDatabase, type SqlExecutor, type SqlValue } from './database.ts';

export interface SqliteOptions {
  /**
   * `FULL` (an fsync per commit: nothing committed is lost on a power cut) or `NORMAL` (WAL
   * checkpoints only: a power cut may lose the last commits, a process crash none). Default FULL.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
}

/** The tail of each file's queue of callers, shared by the connections of this process. */
const queues = new Map<string, { tail: Promise<unknown>; connections: number }>();

/** Statements prepared once per SQL text, up to this many (a store's SQL is a short fixed list, plus query shapes). */
const STATEMENT_CACHE = 256;

export class SqliteDatabase implements SqlDatabase {
  readonly engine = 'sqlite' as const;
  readonly dialect = DIALECTS.sqlite;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly queue: { tail: Promise<unknown>; connections: number };
  private readonly direct: SqlExecutor;

  private constructor(
    /** The connection itself, for what only SQLite has (pragmas, backups of the file). */
    readonly connection: Database.Database,
    readonly location: string,
  ) {
    const key = resolve(location);
    this.queue = queues.get(key) ?? { tail: Promise.resolve(), connections: 0 };
    this.queue.connections++;
    queues.set(key, this.queue);
    const db = this;
    this.direct = {
      async all<T>(sql: string, params: readonly SqlValue[] = []) {
        return db.statement(sql).all(...bind(params)) as T[];
      },
      async get<T>(sql: string, params: readonly SqlValue[] = []) {
        return db.statement(sql).get(...bind(params)) as T | undefined;
      },
      async run(sql: string, params: readonly SqlValue[] = []) {
        return { changes: db.statement(sql).run(...bind(params)).changes };
      },
      async exec(sql: string) {
        db.connection.exec(sql);
      },
    };
  }

  /**
   * Opens (creating when missing) the file, readable by its owner only.
   * @throws DatabaseUnavailable when it cannot be opened
   */
  static open(file: string, options: SqliteOptions = {}): SqliteDatabase {
    try {
      restrictDatabaseFiles(file, { create: true });
      const connection = new Database(file);
      connection.pragma('journal_mode = WAL');
      connection.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
      connection.pragma('busy_timeout = 5000');
      return new SqliteDatabase(connection, file);
    } catch (err) {
      throw new XrdError('DatabaseUnavailable', { location: file, reason: (err as Error).message }, { cause: err });
    }
  }

  all<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.serial(() => this.direct.all<T>(sql, params));
  }

  get<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    return this.serial(() => this.direct.get<T>(sql, params));
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    return this.serial(() => this.direct.run(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.serial(() => this.direct.exec(sql));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      // IMMEDIATE: take the write lock at BEGIN, so that two processes on one file wait on the busy
      // timeout instead of one failing at its first write.
      this.connection.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.direct);
        this.connection.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.connection.inTransaction) this.connection.exec('ROLLBACK');
        throw err;
      }
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      if (!this.connection.open) return;
      this.connection.close();
      if (--this.queue.connections === 0) queues.delete(resolve(this.location));
    });
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.queue.tail.then(op, op);
    this.queue.tail = result.catch(() => undefined);
    return result;
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      if (this.statements.size >= STATEMENT_CACHE) this.statements.clear();
      s = this.connection.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}

/** better-sqlite3 binds no booleans: stores keep them as 0/1 on both engines. */
function bind(params: readonly SqlValue[]): unknown[] {
  return params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));
}
