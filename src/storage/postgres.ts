/**
 * The PostgreSQL engine of `SqlDatabase`, on `pg` (node-postgres: the most used and maintained
 * PostgreSQL client for Node, pure JavaScript, no native build). A pool of connections; stores' `?`
 * placeholders become `$n`; 64-bit integers come back as numbers (a store's integers — times in
 * milliseconds, ids — are far below 2^53), bytes as Buffers.
 *
 * A connection that breaks (the server restarted, a node of the cluster lost its network) fails the
 * statement it carried with DatabaseUnavailable and leaves the pool; the next statement opens a new
 * one, so the store recovers by itself once the database is back.
 */
import pg from 'pg';
import { XrdError } from '../platform/errors.ts';
import { silentLogger, type Logger } from '../platform/logger.ts';
import { DIALECTS, bindable, redactUrl, type Row, type SqlDatabase, type SqlExecutor, type SqlValue } from './database.ts';

const INT8_OID = 20;

/** int8 as a JS number; every other type as pg parses it (bytea to Buffer, text to string). */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export interface PostgresOptions {
  /** Connections in the pool. Default 10. */
  readonly maxConnections?: number;
  /** Longest wait for a connection, ms. Default 10,000. */
  readonly connectTimeoutMs?: number;
  /**
   * Longest a statement may take, ms, on the server (statement_timeout) and in the client (a server
   * that stopped answering: a hung host, a frozen process). Default 30,000.
   */
  readonly statementTimeoutMs?: number;
  readonly logger?: Logger;
}

/**
 * The pools of this process, one per URL, shared by the stores that open it (the server
 * configuration and operational monitoring of one proxy): one set of connections per process, not
 * one per store. The first opener's options make the pool; it ends when its last user closes.
 */
const pools = new Map<string, { pool: pg.Pool; users: number }>();

function sharedPool(url: string, location: string, options: PostgresOptions): pg.Pool {
  const known = pools.get(url);
  if (known) {
    known.users++;
    return known.pool;
  }
  const pool = newPool(url, location, options);
  pools.set(url, { pool, users: 1 });
  return pool;
}

function newPool(url: string, location: string, options: PostgresOptions): pg.Pool {
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    // A server that stops answering fails the statement instead of holding its caller forever;
    // keepalive notices a peer that vanished; a transaction left open by a stuck client is ended.
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + 5_000,
    idle_in_transaction_session_timeout: statementTimeoutMs,
    keepAlive: true,
    types,
  });
  const log = options.logger ?? silentLogger();
  // An idle connection the server closed: without a listener the pool's error would end the
  // process. The error carries the whole client object: only its message and code are logged.
  pool.on('error', (err) => log.warn({ reason: err.message, code: (err as { code?: unknown }).code, database: location }, 'idle database connection lost'));
  return pool;
}

export class PostgresDatabase implements SqlDatabase {
  readonly engine = 'postgres' as const;
  readonly dialect = DIALECTS.postgres;
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly direct: SqlExecutor;
  private closed = false;

  constructor(
    private readonly url: string,
    options: PostgresOptions = {},
  ) {
    this.location = redactUrl(url);
    this.pool = sharedPool(url, this.location, options);
    this.direct = executor(this.location, (sql, params) => this.pool.query(sql, params));
  }

  all<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.direct.all<T>(sql, params);
  }

  get<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    return this.direct.get<T>(sql, params);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    return this.direct.run(sql, params);
  }

  exec(sql: string): Promise<void> {
    return this.direct.exec(sql);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, options: { readonly readOnly?: boolean } = {}): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailable(this.location, err);
    }
    // A checked-out client's connection error (the server gone between two statements) is an
    // 'error' event no pool listens to while we hold it: without this listener it would end the
    // process. The statement in flight, or the next one, fails on its own.
    let broken: unknown;
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    const tx = executor(this.location, (sql, params) => client.query(sql, params));
    try {
      await tx.exec(options.readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY' : 'BEGIN');
      const result = await fn(tx);
      await tx.exec('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr;
      }
      throw err;
    } finally {
      // A connection that broke, or whose ROLLBACK failed, is not returned to the pool for another caller.
      client.off('error', onError);
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const shared = pools.get(this.url);
    if (shared?.pool === this.pool) {
      if (--shared.users > 0) return;
      pools.delete(this.url);
    }
    await this.pool.end();
  }
}

type Query = (sql: string, params: unknown[]) => Promise<pg.QueryResult>;

function executor(location: string, query: Query): SqlExecutor {
  const q = async (sql: string, params: readonly SqlValue[] = []) => {
    try {
      return await query(toPositional(sql), bindable(params).map((p) => (typeof p === 'bigint' ? p.toString() : p)));
    } catch (err) {
      throw unavailableOrSql(location, err);
    }
  };
  return {
    async all<T>(sql: string, params?: readonly SqlValue[]) {
      return (await q(sql, params)).rows as T[];
    },
    async get<T>(sql: string, params?: readonly SqlValue[]) {
      return (await q(sql, params)).rows[0] as T | undefined;
    },
    async run(sql: string, params?: readonly SqlValue[]) {
      return { changes: (await q(sql, params)).rowCount ?? 0 };
    },
    async exec(sql: string) {
      await q(sql);
    },
  };
}

/** Translations made, by SQL text: a store's statements are a short fixed list (an INSERT of 100 monitoring records is 6,000 placeholders), translated once each. */
const positional = new Map<string, string>();
const POSITIONAL_CACHE = 256;

/**
 * `?` placeholders to PostgreSQL's `$1, $2, …`, leaving quoted strings and identifiers alone.
 * Stores' SQL is our own text, never built from input, so this is a translation, not a parser.
 */
export function toPositional(sql: string): string {
  const known = positional.get(sql);
  if (known !== undefined) return known;
  if (positional.size >= POSITIONAL_CACHE) positional.clear();
  const translated = translatePlaceholders(sql);
  positional.set(sql, translated);
  return translated;
}

function translatePlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | undefined;
  for (const ch of sql) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else out += ch === '?' ? `$${++n}` : ch;
  }
  return out;
}

/**
 * What the server answered with SQLSTATE about the statement (a constraint, a bad statement) as it
 * came; everything else — no connection, a connection lost or timed out, the server shutting down or
 * out of resources (classes 08, 53, 57P, 58), a statement cancelled by its timeout (57014) — as
 * DatabaseUnavailable.
 */
function unavailableOrSql(location: string, err: unknown): Error {
  if (err instanceof pg.DatabaseError && !/^(08|53|57|58)/.test(err.code ?? '')) return err;
  return unavailable(location, err);
}

function unavailable(location: string, err: unknown): XrdError {
  return new XrdError('DatabaseUnavailable', { location, reason: (err as Error).message }, { cause: err });
}
