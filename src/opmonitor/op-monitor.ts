/**
 * The operational monitoring store (MESS_16): one record per mediated message, in SQLite (WAL) or
 * PostgreSQL (src/storage), queryable by time, client and service, returned as the reference's JSON
 * records.
 *
 * `store` is called on every message, so it only validates and queues; queued records are written
 * in one transaction per batch (after `flushIntervalMs`, or at once when `batchSize` are waiting),
 * which keeps the per-message cost to microseconds. A clean `close` writes what is queued. The
 * reference's proxy buffers records in memory the same way before its monitoring daemon stores
 * them; a crash loses at most the last interval's records — these are statistics, not the message
 * log, which commits every message itself.
 *
 * If a write fails (disk full, database locked past the busy timeout, PostgreSQL gone) the batch
 * stays queued and is retried on the next flush; past `maxQueued` records — queued and being
 * written together, so a database that hangs counts too — the oldest queued are dropped and counted,
 * as the reference's buffer does, so monitoring can never exhaust the proxy's memory or stop
 * messages. A batch whose commit succeeded but whose answer was lost (the connection cut at that
 * moment) is written again: records are written at least once, which statistics tolerate.
 */
import { XrdError } from '../platform/errors.ts';
import { silentLogger, type Logger } from '../platform/logger.ts';
import { placeholders, type DatabaseConfig, type SqlDatabase, type SqlValue } from '../storage/database.ts';
import { openDatabase, type StoreSchema } from '../storage/open.ts';
import { parseClientId, type ClientId } from '../protocol/identifiers.ts';
import { HealthData } from './health-data.ts';
import { RECORD_FIELDS, type OpMonitoringRecord } from './record.ts';

export interface OpMonitorOptions {
  /** Records whose requestInTs is older are deleted, on open and then hourly. Default 7 (the reference's keep-records-for-days). */
  retentionDays?: number;
  logger?: Logger;
  /** Longest a stored record waits before it is written. Default 250 ms. */
  flushIntervalMs?: number;
  /**
   * Records written at once without waiting for the interval. Default 256: a write of that many
   * holds the event loop for a few milliseconds (17–40 µs a record measured), short enough for
   * the proxy's p99.
   */
  batchSize?: number;
  /** Records kept queued while writes fail; older ones are dropped beyond. Default 20,000 (the reference's buffer size). */
  maxQueued?: number;
  /** Called for every stored record, e.g. ProxyMetrics.observe, so /metrics counts what is kept. */
  onStore?: (record: OpMonitoringRecord) => void;
  /** Records in one getSecurityServerOperationalData answer (plus those of its last second). Default 10,000 (the reference's max-records-in-payload). */
  maxRecordsInPayload?: number;
  /** The period health data counts over. Default 600 s (the reference's health-statistics-period-seconds). */
  healthStatisticsPeriodSeconds?: number;
  /** Clock for tests. */
  now?: () => number;
}

/** The search of getSecurityServerOperationalData (the reference's OperationalDataRecordManager.queryRecords). */
export interface OperationalDataQuery {
  /** monitoringDataTs (Unix seconds) from and to, both included. */
  readonly recordsFrom: number;
  readonly recordsTo: number;
  /** Only records where this client is the client or the service provider; only the public fields then. */
  readonly client?: ClientId;
  /** Only records of this service provider. */
  readonly serviceProvider?: ClientId;
  /** The fields to return; empty for all. Names must be RECORD_FIELDS names. */
  readonly outputFields: ReadonlySet<string>;
}

export interface OperationalDataAnswer {
  readonly records: Partial<OpMonitoringRecord>[];
  /** Set when records of the range were left out for the payload limit: ask again from here. */
  readonly nextRecordsFrom?: number;
}

/** Fields only the server's owner and the central monitoring client get (OperationalDataOutputSpecFields). */
const NON_PUBLIC_FIELDS = new Set(['securityServerInternalIp']);

export interface OpMonitorQuery {
  /** Records whose request arrived at or after this time (Date or Unix ms). */
  from?: Date | number;
  /** … and at or before this time. */
  to?: Date | number;
  /**
   * The client: `INST/CLASS/MEMBER/SUBSYSTEM`, or `INST/CLASS/MEMBER` for the member and all its
   * subsystems (or a ClientId: one without subsystem matches the same way).
   */
  client?: string | ClientId;
  /**
   * The service: `INST/CLASS/MEMBER/SUBSYSTEM/SERVICECODE[/VERSION]`, or `INST/CLASS/MEMBER/SUBSYSTEM`
   * for every service of that provider subsystem.
   */
  service?: string;
  securityServerType?: 'Client' | 'Producer';
  succeeded?: boolean;
  /** At most this many records, oldest first. Default and upper bound 10,000 (the reference's max-records-in-payload). */
  limit?: number;
}

export interface OpMonitorStats {
  /** Records written to the database since open. */
  readonly written: number;
  /** Records waiting to be written. */
  readonly queued: number;
  /** Records dropped because writes kept failing. */
  readonly dropped: number;
}

const TABLE = 'operational_data';
const MAX_LIMIT = 10_000;
/** Rows of one INSERT statement: 100 × the record's columns stays far below both engines' limit on parameters. */
const ROWS_PER_INSERT = 100;

const columnType = { text: 'TEXT', int: 'BIGINT', bool: 'INTEGER' } as const;
const SCHEMA: StoreSchema = {
  store: 'opmonitor',
  version: 1,
  schema: (d) => `
CREATE TABLE IF NOT EXISTS ${TABLE} (
  id ${d.autoId},
  ${RECORD_FIELDS.map((f) => `"${f.name}" ${columnType[f.kind]}${f.name === 'securityServerType' || f.name === 'requestInTs' || f.name === 'succeeded' ? ' NOT NULL' : ''}`).join(',\n  ')}
);
CREATE INDEX IF NOT EXISTS ${TABLE}_time ON ${TABLE} ("requestInTs");
CREATE INDEX IF NOT EXISTS ${TABLE}_stored ON ${TABLE} ("monitoringDataTs");
CREATE INDEX IF NOT EXISTS ${TABLE}_client ON ${TABLE} ("clientXRoadInstance", "clientMemberClass", "clientMemberCode", "clientSubsystemCode", "requestInTs");
CREATE INDEX IF NOT EXISTS ${TABLE}_service ON ${TABLE} ("serviceXRoadInstance", "serviceMemberClass", "serviceMemberCode", "serviceSubsystemCode", "serviceCode", "requestInTs");
`,
  migrations: [],
};

type Row = Record<string, string | number | null>;

export class OpMonitor {
  private queue: OpMonitoringRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly pruneTimer: NodeJS.Timeout;
  /** The write in progress (writes go one at a time), and a flush asked for meanwhile, not yet begun. */
  private writing: Promise<unknown> = Promise.resolve();
  private nextFlush: Promise<number> | undefined;
  /** Records of the write in progress. */
  private inFlight = 0;
  private written = 0;
  private dropped = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** What getSecurityServerHealthData reports: counted from the records stored since open. */
  readonly health: HealthData;

  private constructor(
    private readonly db: SqlDatabase,
    private readonly log: Logger,
    private readonly retentionDays: number,
    private readonly flushIntervalMs: number,
    private readonly batchSize: number,
    private readonly maxQueued: number,
    private readonly onStore: ((record: OpMonitoringRecord) => void) | undefined,
    private readonly now: () => number,
    private readonly maxRecordsInPayload: number,
    healthStatisticsPeriodSeconds: number,
  ) {
    this.health = new HealthData({ periodSeconds: healthStatisticsPeriodSeconds, now });
    this.pruneTimer = setInterval(() => void this.prune().catch((err: unknown) => !this.closed && this.log.error({ err }, 'cannot delete operational monitoring records past retention')), 3_600_000).unref();
  }

  /**
   * Opens (creating when missing) the store — a SQLite file, or a PostgreSQL database the nodes of a
   * cluster may share — and deletes the records past retention.
   * @throws DatabaseUnavailable when the database cannot be opened or reached
   * @throws DatabaseTooNew when a newer program wrote it
   */
  static async open(config: DatabaseConfig, options: OpMonitorOptions = {}): Promise<OpMonitor> {
    const log = options.logger ?? silentLogger();
    const retentionDays = options.retentionDays ?? 7;
    if (!(retentionDays > 0)) throw new XrdError('InvalidConfiguration', { reason: `opmonitor retentionDays must be positive, got ${retentionDays}` });
    // Monitoring data may lose the last transactions on a power cut (not on a process crash):
    // statistics do not justify an fsync per batch.
    const db = await openDatabase(config, SCHEMA, { synchronous: 'NORMAL', logger: log });
    const monitor = new OpMonitor(db, log, retentionDays, options.flushIntervalMs ?? 250, options.batchSize ?? 256, options.maxQueued ?? 20_000, options.onStore, options.now ?? Date.now, options.maxRecordsInPayload ?? MAX_LIMIT, options.healthStatisticsPeriodSeconds ?? 600);
    await monitor.prune();
    return monitor;
  }

  /**
   * Queues one record. Cheap: checks the fields every record needs and returns. After `close`
   * records are dropped (and counted in `stats().dropped`).
   * @throws InvalidRequest for a record without securityServerType Client/Producer, requestInTs or succeeded
   */
  store(record: OpMonitoringRecord): void {
    if (this.closed) {
      // A message finishing while the server shuts down: its record is dropped, not the message.
      this.dropped++;
      this.log.warn({ messageId: record.messageId }, 'operational monitoring record after close dropped');
      return;
    }
    if (record.securityServerType !== 'Client' && record.securityServerType !== 'Producer') {
      throw new XrdError('InvalidRequest', { reason: `op monitoring record: securityServerType must be Client or Producer, got ${String(record.securityServerType)}` });
    }
    if (!Number.isFinite(record.requestInTs) || typeof record.succeeded !== 'boolean') {
      throw new XrdError('InvalidRequest', { reason: 'op monitoring record: requestInTs (Unix ms) and succeeded are required' });
    }
    const stored = record.monitoringDataTs === undefined ? { ...record, monitoringDataTs: Math.floor(this.now() / 1000) } : record;
    this.queue.push(stored);
    this.keepWithinMaxQueued();
    this.health.observe(stored);
    this.onStore?.(stored);
    if (this.queue.length >= this.batchSize) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.flushIntervalMs);
  }

  /**
   * Writes the queued records (after a write in progress, one at a time). Resolves with how many
   * were written; a failed write keeps them queued for the next try and resolves with 0.
   */
  flush(): Promise<number> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.nextFlush) return this.nextFlush;
    const next = this.writing.then(() => {
      this.nextFlush = undefined;
      return this.writeQueued();
    });
    this.nextFlush = next;
    this.writing = next;
    return next;
  }

  private async writeQueued(): Promise<number> {
    if (this.queue.length === 0) return 0;
    const batch = this.queue;
    this.queue = [];
    this.inFlight = batch.length;
    try {
      await this.db.transaction(async (tx) => {
        for (let i = 0; i < batch.length; i += ROWS_PER_INSERT) {
          const rows = batch.slice(i, i + ROWS_PER_INSERT);
          await tx.run(insertSql(rows.length), rows.flatMap(toRow));
        }
      });
      this.written += batch.length;
      return batch.length;
    } catch (err) {
      this.inFlight = 0;
      this.queue = batch.concat(this.queue);
      this.keepWithinMaxQueued();
      this.log.error({ err, queued: this.queue.length, dropped: this.dropped }, 'cannot write operational monitoring records; will retry');
      if (!this.closed) this.timer ??= setTimeout(() => void this.flush(), Math.max(this.flushIntervalMs, 1000));
      return 0;
    } finally {
      this.inFlight = 0;
    }
  }

  /** Drops the oldest queued records (never those being written) past `maxQueued`, counting those being written. */
  private keepWithinMaxQueued(): void {
    const excess = this.queue.length + this.inFlight - this.maxQueued;
    if (excess > 0) this.dropped += this.queue.splice(0, excess).length;
  }

  /**
   * Records matching all the given criteria, oldest request first, as JSON objects with the
   * reference's field names (fields without a value are left out).
   * @throws InvalidIdentifier for a client or service that is not an identifier
   * @throws InvalidRequest for a time range or limit that makes no sense
   */
  async query(q: OpMonitorQuery = {}): Promise<OpMonitoringRecord[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    const from = q.from === undefined ? undefined : toMs(q.from, 'from');
    const to = q.to === undefined ? undefined : toMs(q.to, 'to');
    if (from !== undefined && to !== undefined && from > to) {
      throw new XrdError('InvalidRequest', { reason: `query range is empty: from ${new Date(from).toISOString()} is after to ${new Date(to).toISOString()}` });
    }
    if (from !== undefined) where.push('"requestInTs" >= ?'), params.push(from);
    if (to !== undefined) where.push('"requestInTs" <= ?'), params.push(to);
    if (q.client !== undefined) {
      const c = typeof q.client === 'string' ? parseClientId(q.client) : q.client;
      match(where, params, ['clientXRoadInstance', 'clientMemberClass', 'clientMemberCode', 'clientSubsystemCode'], [c.instance, c.memberClass, c.memberCode, c.subsystem]);
    }
    if (q.service !== undefined) {
      const parts = q.service.split('/');
      if (parts.length < 4 || parts.length > 6 || parts.some((p) => p.trim() === '')) {
        throw new XrdError('InvalidIdentifier', { value: q.service, reason: 'expected INSTANCE/CLASS/CODE/SUBSYSTEM[/SERVICECODE[/VERSION]]' });
      }
      match(where, params, ['serviceXRoadInstance', 'serviceMemberClass', 'serviceMemberCode', 'serviceSubsystemCode', 'serviceCode', 'serviceVersion'], parts);
    }
    if (q.securityServerType !== undefined) where.push('"securityServerType" = ?'), params.push(q.securityServerType);
    if (q.succeeded !== undefined) where.push('"succeeded" = ?'), params.push(q.succeeded ? 1 : 0);
    const limit = q.limit ?? MAX_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new XrdError('InvalidRequest', { reason: `query limit must be an integer in 1..${MAX_LIMIT}, got ${limit}` });
    }
    await this.flush();
    const sql = `SELECT * FROM ${TABLE}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY "requestInTs", id LIMIT ?`;
    return (await this.db.all<Row>(sql, [...params, limit])).map(fromRow);
  }

  /**
   * The records of a getSecurityServerOperationalData query, by the time they were stored, as the
   * reference selects them (OperationalDataRecordManager, OperationalDataRecordQuery): at most
   * `maxRecordsInPayload` oldest first, but never half of a second — when the limit is reached the
   * records of the last second are all included, and `nextRecordsFrom` is the next second when
   * records of the range are left.
   */
  async operationalData(q: OperationalDataQuery): Promise<OperationalDataAnswer> {
    await this.flush();
    // A party matches its identifier exactly: a member is not its subsystems (OperationalDataRecordQuery.getMemberCriterion).
    const filter: string[] = [];
    const filterParams: string[] = [];
    const party = (id: ClientId, p: 'client' | 'service') => {
      filterParams.push(id.instance, id.memberClass, id.memberCode, ...(id.subsystem !== undefined ? [id.subsystem] : []));
      return `("${p}XRoadInstance" = ? AND "${p}MemberClass" = ? AND "${p}MemberCode" = ? AND "${p}SubsystemCode" ${id.subsystem === undefined ? 'IS NULL' : '= ?'})`;
    };
    if (q.client) filter.push(`(${party(q.client, 'client')} OR ${party(q.client, 'service')})`);
    if (q.serviceProvider) filter.push(party(q.serviceProvider, 'service'));
    const columns = projection(q.client !== undefined, q.outputFields);
    const select = async (extra: string, extraParams: SqlValue[], limit?: number) =>
      (await this.db.all<Row>(`SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM ${TABLE} WHERE ${[extra, ...filter].join(' AND ')} ORDER BY "monitoringDataTs", id${limit !== undefined ? ' LIMIT ?' : ''}`, [...extraParams, ...filterParams, ...(limit !== undefined ? [limit] : [])])).map(
        fromRow,
      ) as Partial<OpMonitoringRecord>[];
    let records = await select('"monitoringDataTs" BETWEEN ? AND ?', [q.recordsFrom, q.recordsTo], this.maxRecordsInPayload);
    let nextRecordsFrom: number | undefined;
    if (records.length === this.maxRecordsInPayload && records.length > 0) {
      const last = records[records.length - 1]!.monitoringDataTs!;
      records = records.filter((r) => r.monitoringDataTs !== last).concat(await select('"monitoringDataTs" = ?', [last]));
      if (last < q.recordsTo && (await select('"monitoringDataTs" BETWEEN ? AND ?', [last + 1, q.recordsTo], 1)).length > 0) nextRecordsFrom = last + 1;
    }
    if (q.outputFields.size > 0 && !q.outputFields.has('monitoringDataTs')) for (const r of records) delete r.monitoringDataTs;
    return nextRecordsFrom === undefined ? { records } : { records, nextRecordsFrom };
  }

  /** Deletes records older than the retention period. Returns how many. */
  async prune(): Promise<number> {
    await this.flush();
    const cutoff = this.now() - this.retentionDays * 86_400_000;
    const n = (await this.db.run(`DELETE FROM ${TABLE} WHERE "requestInTs" < ?`, [cutoff])).changes;
    if (n > 0) this.log.info({ deleted: n, retentionDays: this.retentionDays }, 'operational monitoring records past retention deleted');
    return n;
  }

  stats(): OpMonitorStats {
    return { written: this.written, queued: this.queue.length + this.inFlight, dropped: this.dropped };
  }

  /**
   * Writes what is queued and closes the database. A database that does not answer holds the close
   * up for at most `CLOSE_WAIT_MS`, then its records are given up (and logged as lost).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearInterval(this.pruneTimer);
      const timedOut = await withinMs(this.flush(), CLOSE_WAIT_MS);
      if (this.timer) clearTimeout(this.timer);
      const lost = this.queue.length + this.inFlight;
      if (lost > 0) this.log.error({ lost, timedOut }, 'operational monitoring records could not be written before close');
      await withinMs(this.db.close(), CLOSE_WAIT_MS);
    })();
    return this.closing;
  }
}

/** How long `close` waits for the last write, and then for the database to close. */
const CLOSE_WAIT_MS = 10_000;

/** Waits for `p` at most `ms`; resolves true when the time ran out first. */
async function withinMs(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const out = await Promise.race([p.then(() => false, () => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms)))]);
  clearTimeout(timer);
  return out;
}

/** An INSERT of `rows` records (its text is the same for the same count, so its statement is prepared once). */
const insertSqls = new Map<number, string>();
function insertSql(rows: number): string {
  const known = insertSqls.get(rows);
  if (known !== undefined) return known;
  const values = `(${placeholders(RECORD_FIELDS)})`;
  const sql = `INSERT INTO ${TABLE} (${RECORD_FIELDS.map((f) => `"${f.name}"`).join(', ')}) VALUES ${Array(rows).fill(values).join(', ')}`;
  insertSqls.set(rows, sql);
  return sql;
}

/**
 * The columns a query returns (OperationalDataRecordQuery.configureOutputFields): a filtered client
 * never gets the non-public fields; monitoringDataTs is always read, for the payload limit.
 */
function projection(publicOnly: boolean, outputFields: ReadonlySet<string>): string[] {
  const all = RECORD_FIELDS.map((f) => f.name as string);
  const wanted = outputFields.size === 0 ? all : all.filter((f) => outputFields.has(f) || f === 'monitoringDataTs');
  return publicOnly ? wanted.filter((f) => !NON_PUBLIC_FIELDS.has(f)) : wanted;
}

function toMs(t: Date | number, name: string): number {
  const ms = t instanceof Date ? t.getTime() : t;
  if (!Number.isFinite(ms)) throw new XrdError('InvalidRequest', { reason: `query ${name} is not a time` });
  return ms;
}

/** Equality on the given leading columns; a missing trailing value matches anything. */
function match(where: string[], params: SqlValue[], columns: string[], values: (string | undefined)[]): void {
  columns.forEach((column, i) => {
    const v = values[i];
    if (v !== undefined) where.push(`"${column}" = ?`), params.push(v);
  });
}

function toRow(r: OpMonitoringRecord): (string | number | null)[] {
  return RECORD_FIELDS.map((f) => {
    const v = r[f.name];
    if (v === undefined || v === null) return null;
    if (f.kind === 'bool') return v ? 1 : 0;
    if (f.kind === 'int') return typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : null;
    const s = String(v);
    return f.maxLength !== undefined && s.length > f.maxLength ? s.slice(0, f.maxLength) : s;
  });
}

function fromRow(row: Row): OpMonitoringRecord {
  const out: Record<string, string | number | boolean> = {};
  for (const f of RECORD_FIELDS) {
    const v = row[f.name];
    if (v === null || v === undefined) continue;
    out[f.name] = f.kind === 'bool' ? v === 1 : v;
  }
  return out as unknown as OpMonitoringRecord;
}
