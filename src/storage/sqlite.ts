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
import { DIALECTS, bindable, type Row, type SqlDatabase, type SqlExecutor, type SqlValue } from './database.ts';

export interface SqliteOptions {
  /**
   * Longest a caller waits for the callers before it on the file, ms (default 10,000): then it fails
   * with DatabaseUnavailable instead of waiting on. A statement issued on the database from inside
   * its own transaction (instead of on the transaction's executor) would otherwise wait forever for
   * the transaction that waits for it.
   */
  readonly maxWaitMs?: number;
  /**
   * `FULL` (an fsync per commit: nothing committed is lost on a power cut) or `NORMAL` (WAL
   * checkpoints only: a power cut may lose the last commits, a process crash none). Default FULL.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
}

interface FileQueue {
  tail: Promise<unknown>;
  /** Callers queued or running: a caller that finds none runs without a wait timer. */
  queued: number;
  connections: number;
}

/** The tail of each file's queue of callers, shared by the connections of this process. */
const queues = new Map<string, FileQueue>();

/** SQLite's result codes that mean the file cannot be used now, not that the statement is wrong. */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|NOTADB|CORRUPT|READONLY|PERM)/;

/** Statements prepared once per SQL text, up to this many (a store's SQL is a short fixed list, plus query shapes). */
const STATEMENT_CACHE = 256;

export class SqliteDatabase implements SqlDatabase {
  readonly engine = 'sqlite' as const;
  readonly dialect = DIALECTS.sqlite;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly queue: FileQueue;
  private readonly direct: SqlExecutor;

  private constructor(
    private readonly connection: Database.Database,
    readonly location: string,
    private readonly maxWaitMs: number,
  ) {
    const key = resolve(location);
    this.queue = queues.get(key) ?? { tail: Promise.resolve(), queued: 0, connections: 0 };
    this.queue.connections++;
    queues.set(key, this.queue);
    const db = this;
    this.direct = {
      async all<T>(sql: string, params: readonly SqlValue[] = []) {
        return db.mapped(() => db.statement(sql).all(...bindable(params)) as T[]);
      },
      async get<T>(sql: string, params: readonly SqlValue[] = []) {
        return db.mapped(() => db.statement(sql).get(...bindable(params)) as T | undefined);
      },
      async run(sql: string, params: readonly SqlValue[] = []) {
        return db.mapped(() => ({ changes: db.statement(sql).run(...bindable(params)).changes }));
      },
      async exec(sql: string) {
        db.mapped(() => db.connection.exec(sql));
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
      return new SqliteDatabase(connection, file, options.maxWaitMs ?? 10_000);
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

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, options: { readonly readOnly?: boolean } = {}): Promise<T> {
    return this.serial(async () => {
      try {
        // IMMEDIATE: take the write lock at BEGIN, so that two processes on one file wait on the
        // busy timeout instead of one failing at its first write. A reader takes none: in WAL
        // mode its snapshot never waits for a writer.
        // Prepared once, as the stores' statements: a transaction a record is the proxies' common case.
        await this.direct.run(options.readOnly ? 'BEGIN' : 'BEGIN IMMEDIATE');
        const result = await fn(this.direct);
        await this.direct.run('COMMIT');
        return result;
      } catch (err) {
        if (this.connection.inTransaction) this.connection.exec('ROLLBACK');
        throw err;
      }
    });
  }

  close(): Promise<void> {
    // Waits as long as it takes: a close that gave up would leak the connection.
    return this.serial(async () => {
      if (!this.connection.open) return;
      this.connection.close();
      if (--this.queue.connections === 0) queues.delete(resolve(this.location));
    }, false);
  }

  /**
   * Runs `op` once the callers before it on this file are done. A caller that has to wait gives up
   * after `maxWaitMs` (and never runs): that turns a statement issued inside its own transaction —
   * a deadlock — into an error its transaction sees and rolls back on. (Found without tracking the
   * async context, which on Node 20 would slow every promise of the process.)
   */
  private serial<T>(op: () => Promise<T>, mayGiveUp = true): Promise<T> {
    const queue = this.queue;
    const mustWait = mayGiveUp && queue.queued > 0;
    queue.queued++;
    let gaveUp = false;
    let timer: NodeJS.Timeout | undefined;
    const run = () => {
      clearTimeout(timer);
      if (gaveUp) throw new XrdError('DatabaseUnavailable', { location: this.location, reason: 'gave up waiting' });
      return op();
    };
    const result = queue.tail.then(run, run);
    queue.tail = result.catch(() => undefined).then(() => {
      queue.queued--;
    });
    if (!mustWait) return result;
    const waited = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        gaveUp = true;
        reject(
          new XrdError('DatabaseUnavailable', {
            location: this.location,
            reason: `waited more than ${this.maxWaitMs} ms for the file's other callers`,
          }),
        );
      }, this.maxWaitMs);
    });
    return Promise.race([result, waited]);
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

  /** A SQLite error that means the file cannot be used now as DatabaseUnavailable, as PostgreSQL's connection errors are; a statement's own error as it came. */
  private mapped<T>(op: () => T): T {
    try {
      return op();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && UNAVAILABLE.test(code)) throw new XrdError('DatabaseUnavailable', { location: this.location, reason: (err as Error).message }, { cause: err });
      throw err;
    }
  }
}
