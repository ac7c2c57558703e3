/**
 * The operational monitoring store (MESS_16): one record per mediated message in SQLite (WAL),
 * queryable by time, client and service, returned as the reference's JSON records.
 *
 * `store` is called on every message, so it only validates and queues; queued records are written
 * in one transaction per batch (after `flushIntervalMs`, or at once when `batchSize` are waiting),
 * which keeps the per-message cost to microseconds. A clean `close` writes what is queued. The
 * reference's proxy buffers records in memory the same way before its monitoring daemon stores
 * them; a crash loses at most the last interval's records — these are statistics, not the message
 * log, which commits every message itself.
 *
 * If a write fails (disk full, database locked past the busy timeout) the batch stays queued and
 * is retried on the next flush; past `maxQueued` the oldest records are dropped and counted, as the
 * reference's buffer does, so monitoring can never exhaust the proxy's memory or stop messages.
 */
import Database from 'better-sqlite3';
import { XrdError } from '../platform/errors.ts';
import { restrictDatabaseFiles } from '../platform/files.ts';
import { silentLogger, type Logger } from '../platform/logger.ts';
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
const SCHEMA_VERSION = 1;

const columnType = { text: 'TEXT', int: 'INTEGER', bool: 'INTEGER' } as const;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${TABLE} (
  id INTEGER PRIMARY KEY,
  ${RECORD_FIELDS.map((f) => `"${f.name}" ${columnType[f.kind]}${f.name === 'securityServerType' || f.name === 'requestInTs' || f.name === 'succeeded' ? ' NOT NULL' : ''}`).join(',\n  ')}
);
CREATE INDEX IF NOT EXISTS ${TABLE}_time ON ${TABLE} ("requestInTs");
CREATE INDEX IF NOT EXISTS ${TABLE}_stored ON ${TABLE} ("monitoringDataTs");
CREATE INDEX IF NOT EXISTS ${TABLE}_client ON ${TABLE} ("clientXRoadInstance", "clientMemberClass", "clientMemberCode", "clientSubsystemCode", "requestInTs");
CREATE INDEX IF NOT EXISTS ${TABLE}_service ON ${TABLE} ("serviceXRoadInstance", "serviceMemberClass", "serviceMemberCode", "serviceSubsystemCode", "serviceCode", "requestInTs");
`;

type Row = Record<string, string | number | null>;

export class OpMonitor {
  private readonly insert: Database.Statement;
  private queue: OpMonitoringRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly pruneTimer: NodeJS.Timeout;
  private written = 0;
  private dropped = 0;
  private closed = false;
  /** What getSecurityServerHealthData reports: counted from the records stored since open. */
  readonly health: HealthData;

  private constructor(
    private readonly db: Database.Database,
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
    this.insert = db.prepare(`INSERT INTO ${TABLE} (${RECORD_FIELDS.map((f) => `"${f.name}"`).join(', ')}) VALUES (${RECORD_FIELDS.map(() => '?').join(', ')})`);
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), 3_600_000).unref();
  }

  /**
   * Opens (creating when missing) the store at `file`.
   * @throws IOError when the file cannot be opened as this store's database
   */
  static open(file: string, options: OpMonitorOptions = {}): OpMonitor {
    const log = options.logger ?? silentLogger();
    const retentionDays = options.retentionDays ?? 7;
    if (!(retentionDays > 0)) throw new XrdError('InvalidConfiguration', { reason: `opmonitor retentionDays must be positive, got ${retentionDays}` });
    let db: Database.Database;
    try {
      // Who called whom, when: the records and their WAL are the owner's alone.
      restrictDatabaseFiles(file, { create: true });
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      // Monitoring data may lose the last transactions on a power cut (not on a process crash):
      // statistics do not justify an fsync per batch.
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) throw new XrdError('DatabaseTooNew', { file, found: version, supported: SCHEMA_VERSION });
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (err) {
      throw new XrdError('IOError', { reason: `cannot open operational monitoring database ${file}: ${(err as Error).message}` }, { cause: err });
    }
    return new OpMonitor(db, log, retentionDays, options.flushIntervalMs ?? 250, options.batchSize ?? 256, options.maxQueued ?? 20_000, options.onStore, options.now ?? Date.now, options.maxRecordsInPayload ?? MAX_LIMIT, options.healthStatisticsPeriodSeconds ?? 600);
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
    this.health.observe(stored);
    this.onStore?.(stored);
    if (this.queue.length >= this.batchSize) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushIntervalMs);
  }

  /** Writes queued records now. Returns how many were written. */
  flush(): number {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0 || this.closed) return 0;
    const batch = this.queue;
    this.queue = [];
    try {
      this.db.transaction(() => {
        for (const r of batch) this.insert.run(toRow(r));
      })();
      this.written += batch.length;
      return batch.length;
    } catch (err) {
      this.queue = batch.concat(this.queue);
      const excess = this.queue.length - this.maxQueued;
      if (excess > 0) {
        this.queue.splice(0, excess);
        this.dropped += excess;
      }
      this.log.error({ err, queued: this.queue.length, dropped: this.dropped }, 'cannot write operational monitoring records; will retry');
      this.timer = setTimeout(() => this.flush(), Math.max(this.flushIntervalMs, 1000));
      return 0;
    }
  }

  /**
   * Records matching all the given criteria, oldest request first, as JSON objects with the
   * reference's field names (fields without a value are left out).
   * @throws InvalidIdentifier for a client or service that is not an identifier
   * @throws InvalidRequest for a time range or limit that makes no sense
   */
  query(q: OpMonitorQuery = {}): OpMonitoringRecord[] {
    this.flush();
    const where: string[] = [];
    const params: (string | number)[] = [];
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
    const sql = `SELECT * FROM ${TABLE}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY "requestInTs", id LIMIT ${limit}`;
    return (this.db.prepare(sql).all(...params) as Row[]).map(fromRow);
  }

  /**
   * The records of a getSecurityServerOperationalData query, by the time they were stored, as the
   * reference selects them (OperationalDataRecordManager, OperationalDataRecordQuery): at most
   * `maxRecordsInPayload` oldest first, but never half of a second — when the limit is reached the
   * records of the last second are all included, and `nextRecordsFrom` is the next second when
   * records of the range are left.
   */
  operationalData(q: OperationalDataQuery): OperationalDataAnswer {
    this.flush();
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
    const select = (extra: string, extraParams: (string | number)[], limit?: number) =>
      (this.db
        .prepare(`SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM ${TABLE} WHERE ${[extra, ...filter].join(' AND ')} ORDER BY "monitoringDataTs", id${limit !== undefined ? ` LIMIT ${limit}` : ''}`)
        .all(...extraParams, ...filterParams) as Row[]).map(fromRow) as Partial<OpMonitoringRecord>[];
    let records = select('"monitoringDataTs" BETWEEN ? AND ?', [q.recordsFrom, q.recordsTo], this.maxRecordsInPayload);
    let nextRecordsFrom: number | undefined;
    if (records.length === this.maxRecordsInPayload && records.length > 0) {
      const last = records[records.length - 1]!.monitoringDataTs!;
      records = records.filter((r) => r.monitoringDataTs !== last).concat(select('"monitoringDataTs" = ?', [last]));
      if (last < q.recordsTo && select('"monitoringDataTs" BETWEEN ? AND ?', [last + 1, q.recordsTo], 1).length > 0) nextRecordsFrom = last + 1;
    }
    if (q.outputFields.size > 0 && !q.outputFields.has('monitoringDataTs')) for (const r of records) delete r.monitoringDataTs;
    return nextRecordsFrom === undefined ? { records } : { records, nextRecordsFrom };
  }

  /** Deletes records older than the retention period. Returns how many. */
  prune(): number {
    this.flush();
    const cutoff = this.now() - this.retentionDays * 86_400_000;
    const n = this.db.prepare(`DELETE FROM ${TABLE} WHERE "requestInTs" < ?`).run(cutoff).changes;
    if (n > 0) this.log.info({ deleted: n, retentionDays: this.retentionDays }, 'operational monitoring records past retention deleted');
    return n;
  }

  stats(): OpMonitorStats {
    return { written: this.written, queued: this.queue.length, dropped: this.dropped };
  }

  /** Writes what is queued and closes the database. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    clearInterval(this.pruneTimer);
    if (this.queue.length > 0) this.log.error({ lost: this.queue.length }, 'operational monitoring records could not be written before close');
    this.db.close();
  }
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
function match(where: string[], params: (string | number)[], columns: string[], values: (string | undefined)[]): void {
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
