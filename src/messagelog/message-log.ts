/**
 * The security server's message log (MESS_09–10): every signed request and response is written to
 * SQLite before the proxy answers, and a timestamper gets RFC 3161 timestamps for the logged
 * signatures in batches, as the reference's LogManager, TaskQueue and TimestamperJob do:
 *
 * - every `timestampingIntervalSeconds` (global configuration) the oldest unstamped records, up to
 *   `maxBatch` (10,000), get one timestamp from the first configured TSA that answers. A lone
 *   record is stamped directly (imprint over its raw SignatureValue, token embedded in its
 *   signature as xades:SignatureTimeStamp); several share one `ts-hashchainresult.xml` whose leaves
 *   are their signature documents, each record keeping its own `ts-hashchain.xml`;
 * - a full batch means more are waiting: the next round starts at once;
 * - after a failure the timestamper retries one record every `retryDelaySeconds` (60, or the
 *   interval if shorter); the first success stamps the backlog at once;
 * - while timestamping has been failing for longer than `acceptableTimestampFailureSeconds`
 *   (14,400), `log()` refuses new messages (LoggingFailed.TimestamperFailed, as 7.x reports it);
 *   records already logged stay and are stamped when a TSA answers again. A round that finds
 *   nothing to stamp counts as success, so an idle server does not start refusing.
 *
 * One MessageLog (one timestamper) per file; other processes read it with MessageLogReader.
 */
import type Database from 'better-sqlite3';
import { XrdError, toXrdError } from '../platform/errors.ts';
import { silentLogger, type Logger } from '../platform/logger.ts';
import { formatClientId, type ClientId } from '../protocol/identifiers.ts';
import { buildHashChains } from '../signature/hash-chain.ts';
import { requestTimestamp, verifyTimestamp, type TimestampingService } from '../signature/timestamp.ts';
import { parseSignature } from '../signature/verifier.ts';
import { addSignatureTimestamp } from '../signature/xades.ts';
import { MessageLogReader, openDatabase } from './store.ts';

export interface MessageLogOptions {
  /** Seconds between timestamping rounds: the global configuration's `timeStampingIntervalSeconds` (read each round when a function). */
  readonly timestampingIntervalSeconds: number | (() => number);
  /** How long timestamping may fail before logging refuses messages; 0 never refuses. Default 14,400. */
  readonly acceptableTimestampFailureSeconds?: number;
  /** Most records one timestamp covers. Default 10,000 (the reference's timestamp-records-limit). */
  readonly maxBatch?: number;
  /** Seconds between retries while failing (the reference's timestamp-retry-delay). Default 60. */
  readonly retryDelaySeconds?: number;
  /** The TSAs to use, in order: the security server's chosen ones from the global configuration. */
  readonly tsas: () => readonly TimestampingService[];
  /** The approved TSA certificates of the global configuration; a token must verify against one. */
  readonly tsaCerts?: () => readonly Buffer[];
  /** Per TSA request. Default 20,000 ms. */
  readonly tsaTimeoutMs?: number;
  /** First round this long after opening, to stamp what an earlier run left. Default 1,000 ms. */
  readonly initialDelayMs?: number;
  /** 'process' (default): a committed record survives the process dying; 'power': also a power cut (fsync per record). */
  readonly durability?: 'process' | 'power';
  readonly logger?: Logger;
}

/** What the proxies log for each request and response, after signing it or verifying its signature. */
export interface MessageToLog {
  readonly queryId: string;
  readonly client: ClientId;
  /** The service's provider subsystem (or member) and code — the fields of MessageHeader. */
  readonly serviceProvider: ClientId;
  readonly serviceCode: string;
  readonly isResponse: boolean;
  /** The proxy that logs it: 'client' (the client's security server) or 'server' (the provider's). */
  readonly side: 'client' | 'server';
  /** The bytes the signature covers as `/message.xml`: the SOAP message or the REST header part. */
  readonly message: Buffer;
  /** `/attachment1…`: SOAP attachments or the REST body; leave out what must not be logged. */
  readonly attachments?: readonly Buffer[];
  /** The signature as made by BatchSigner or received from the peer (SignedMessage fits). */
  readonly signature: { readonly signatureXml: string | Buffer; readonly hashChainResult?: string | Buffer; readonly hashChain?: string | Buffer };
  /** Pairs a request with its response when query ids repeat. */
  readonly xRequestId?: string;
}

export interface MessageLogStatus {
  /** False while `log()` refuses messages (timestamping failing too long, or no TSA configured). */
  readonly acceptingMessages: boolean;
  /** Records waiting for a timestamp. */
  readonly pending: number;
  /** Age of the oldest waiting record, seconds; null when none waits. */
  readonly oldestPendingAgeSeconds: number | null;
  readonly lastSuccessAt: Date | null;
  /** Since when timestamping has been failing; null when it works. */
  readonly failingSince: Date | null;
  readonly lastError: { readonly code: string; readonly message: string } | null;
  /** Since opening: timestamps obtained, rounds that failed, records stamped. */
  readonly timestampsObtained: number;
  readonly failedRounds: number;
  readonly recordsStamped: number;
}

interface Task {
  id: number;
  signature: string;
}

const PLACE_FOR_TIMESTAMP = '<xades:UnsignedSignatureProperties>';

export class MessageLog extends MessageLogReader {
  private readonly insertRecord: Database.Statement;
  private readonly insertAttachment: Database.Statement;
  private readonly insertTimestamp: Database.Statement;
  private readonly markBatch: Database.Statement;
  private readonly markSingle: Database.Statement;
  private readonly selectPending: Database.Statement<[number], Task>;
  private readonly countPending: Database.Statement<[], { n: number; oldest: number | null }>;
  private readonly logRecord: (m: MessageToLog) => number;

  private readonly logger: Logger;
  private readonly maxBatch: number;
  private readonly acceptableMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private closed = false;
  private failingSince: Date | null = null;
  private lastSuccessAt: Date | null = null;
  private lastError: XrdError | null = null;
  private counters = { timestampsObtained: 0, failedRounds: 0, recordsStamped: 0 };

  private constructor(
    db: Database.Database,
    private readonly options: MessageLogOptions,
  ) {
    super(db);
    this.logger = options.logger ?? silentLogger();
    this.maxBatch = options.maxBatch ?? 10_000;
    this.acceptableMs = (options.acceptableTimestampFailureSeconds ?? 14_400) * 1000;
    this.insertRecord = db.prepare(
      `INSERT INTO message_record (time, query_id, client_id, service_id, is_response, side, x_request_id, message, signature, hash_chain_result, hash_chain)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertAttachment = db.prepare('INSERT INTO message_attachment (record_id, n, data) VALUES (?, ?, ?)');
    this.insertTimestamp = db.prepare('INSERT INTO timestamp_record (time, token, hash_chain_result, tsa_url) VALUES (?, ?, ?, ?)');
    this.markBatch = db.prepare('UPDATE message_record SET timestamp_id = ?, ts_hash_chain = ? WHERE id = ? AND timestamp_id IS NULL');
    this.markSingle = db.prepare('UPDATE message_record SET timestamp_id = ?, signature = ? WHERE id = ? AND timestamp_id IS NULL');
    this.selectPending = db.prepare('SELECT id, signature FROM message_record WHERE timestamp_id IS NULL ORDER BY id LIMIT ?');
    this.countPending = db.prepare('SELECT COUNT(*) AS n, MIN(time) AS oldest FROM message_record WHERE timestamp_id IS NULL');
    this.logRecord = db.transaction((m: MessageToLog): number => {
      const text = (v: string | Buffer | undefined) => (v === undefined ? null : v.toString());
      const id = Number(
        this.insertRecord.run(
          Date.now(),
          m.queryId,
          formatClientId(m.client),
          `${formatClientId(m.serviceProvider)}/${m.serviceCode}`,
          m.isResponse ? 1 : 0,
          m.side,
          m.xRequestId ?? null,
          m.message,
          m.signature.signatureXml.toString(),
          text(m.signature.hashChainResult),
          text(m.signature.hashChain),
        ).lastInsertRowid,
      );
      m.attachments?.forEach((data, i) => this.insertAttachment.run(id, i + 1, data));
      return id;
    });
  }

  /** Opens or creates the log and starts the timestamper. @throws IOError */
  static open(file: string, options: MessageLogOptions): MessageLog {
    const log = new MessageLog(openDatabase(file, { create: true, durability: options.durability }), options);
    log.schedule(options.initialDelayMs ?? 1000);
    return log;
  }

  /**
   * Writes one message with its signature; the record is committed when this returns.
   * @returns the record's number
   * @throws LoggingFailed.TimestamperFailed while timestamping has been failing longer than the
   *   acceptable period or no TSA is configured; LoggingFailed.IOError when the write fails
   */
  log(message: MessageToLog): number {
    this.checkCanLog();
    try {
      return this.logRecord(message);
    } catch (err) {
      const e = err instanceof XrdError ? err : new XrdError('IOError', { reason: `cannot write the message log: ${(err as Error).message}` }, { cause: err });
      throw e.within('LoggingFailed');
    }
  }

  /**
   * Runs timestamping rounds now until nothing is left (or a round fails), for tests and shutdown.
   * @returns how many records were stamped
   * @throws TimestampingFailed with every TSA's reason
   */
  async timestampNow(): Promise<number> {
    let total = 0;
    for (;;) {
      const stamped = await this.serialized(() => this.round(this.maxBatch));
      total += stamped;
      if (stamped < this.maxBatch) return total;
    }
  }

  status(): MessageLogStatus {
    const { n, oldest } = this.countPending.get()!;
    return {
      acceptingMessages: this.refusal() === undefined,
      pending: n,
      oldestPendingAgeSeconds: oldest === null ? null : Math.max(0, (Date.now() - oldest) / 1000),
      lastSuccessAt: this.lastSuccessAt,
      failingSince: this.failingSince,
      lastError: this.lastError && { code: this.lastError.fullCode, message: this.lastError.message },
      ...this.counters,
    };
  }

  /** Stops the timer, lets a round in progress finish, closes the file. */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await this.running.catch(() => undefined);
    super.close();
  }

  // ---- refusing ------------------------------------------------------------------------------

  private refusal(): string | undefined {
    if (this.options.tsas().length === 0) return 'no timestamping services configured';
    if (this.failingSince && this.acceptableMs > 0 && Date.now() - this.failingSince.getTime() > this.acceptableMs) {
      return `timestamping has failed since ${this.failingSince.toISOString()}, longer than the acceptable ${this.acceptableMs / 1000} s`;
    }
    return undefined;
  }

  private checkCanLog(): void {
    if (this.closed) throw new XrdError('IOError', { reason: 'the message log is closed' }).within('LoggingFailed');
    const reason = this.refusal();
    if (reason) throw new XrdError('TimestamperFailed', { reason }).within('LoggingFailed');
  }

  // ---- the timestamper -------------------------------------------------------------------------

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delayMs);
    // The log keeps no process alive by itself; the proxies' servers do.
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const wasFailing = this.failingSince !== null;
    // While failing, one record per try, as the reference's retry mode.
    const limit = wasFailing ? 1 : this.maxBatch;
    let again = false;
    try {
      const stamped = await this.serialized(() => this.round(limit));
      // A full batch: more are waiting. First success after failures: stamp the backlog now.
      again = stamped === this.maxBatch || (wasFailing && this.failingSince === null);
    } catch {
      // Recorded by round(); the schedule goes on.
    }
    const interval = Math.max(0.05, this.intervalSeconds());
    const delay = this.failingSince ? Math.min(this.options.retryDelaySeconds ?? 60, interval) : interval;
    this.schedule(again ? 0 : delay * 1000);
  }

  private intervalSeconds(): number {
    const v = this.options.timestampingIntervalSeconds;
    try {
      return typeof v === 'function' ? v() : v;
    } catch (err) {
      this.logger.error({ error: (err as Error).message }, 'cannot read the timestamping interval; using 60 s');
      return 60;
    }
  }

  /** Rounds never overlap: the timer's and timestampNow's run one after the other. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.running.catch(() => undefined).then(() => {
      if (!this.db.open) throw new XrdError('IOError', { reason: 'the message log is closed' });
      return fn();
    });
    this.running = next;
    return next;
  }

  /** One round: the oldest unstamped records, one timestamp. @returns records stamped */
  private async round(limit: number): Promise<number> {
    let tasks = this.selectPending.all(limit);
    // Our string-level embedding needs our own signature layout; a peer's signature in another
    // layout waits to be stamped with others in a batch.
    if (tasks.length === 1 && !canEmbedTimestamp(tasks[0]!.signature)) {
      tasks = this.selectPending.all(2);
      if (tasks.length === 1) {
        this.logger.debug({ record: tasks[0]!.id }, 'lone record whose signature cannot carry a timestamp waits for a batch');
        return 0;
      }
    }
    if (tasks.length === 0) {
      this.succeeded();
      return 0;
    }
    const started = Date.now();
    try {
      if (tasks.length === 1) await this.stampSingle(tasks[0]!);
      else await this.stampBatch(tasks);
    } catch (err) {
      this.failed(toXrdError(err), tasks.length);
      throw err;
    }
    this.counters.timestampsObtained++;
    this.counters.recordsStamped += tasks.length;
    this.succeeded();
    this.logger.info({ records: tasks.length, ms: Date.now() - started }, 'message log records timestamped');
    return tasks.length;
  }

  private async stampSingle(task: Task): Promise<void> {
    const data = parseSignature(task.signature).signatureValue;
    const { token, url } = await this.timestamp(data);
    const stamped = addSignatureTimestamp(task.signature, token);
    this.db.transaction(() => {
      const tsId = this.insertTimestamp.run(Date.now(), token, null, url).lastInsertRowid;
      this.markSingle.run(tsId, stamped, task.id);
    })();
  }

  private async stampBatch(tasks: readonly Task[]): Promise<void> {
    const chains = buildHashChains(
      tasks.map((t) => [{ uri: '/META-INF/signatures.xml', data: Buffer.from(t.signature, 'utf8') }]),
      '/ts-hashchain.xml',
    );
    const { token, url } = await this.timestamp(Buffer.from(chains.result, 'utf8'));
    this.db.transaction(() => {
      const tsId = this.insertTimestamp.run(Date.now(), token, chains.result, url).lastInsertRowid;
      tasks.forEach((t, i) => this.markBatch.run(tsId, chains.chains[i]!, t.id));
    })();
  }

  /** A token over `data` from the first TSA, in configuration order, whose answer verifies. */
  private async timestamp(data: Buffer): Promise<{ token: Buffer; url: string }> {
    const tsas = this.options.tsas();
    if (tsas.length === 0) throw new XrdError('TimestampingFailed', { reason: 'No TSP service providers are configured.' });
    const reasons: string[] = [];
    for (const tsa of tsas) {
      try {
        // requestTimestamp checks the token against this TSA's certificate; the approved list of
        // the global configuration is checked too, as the reference's TimestampVerifier does.
        const token = await requestTimestamp([tsa], data, this.options.tsaTimeoutMs ?? 20_000);
        const approved = this.options.tsaCerts?.();
        if (approved) verifyTimestamp(token, data, approved);
        return { token, url: tsa.url };
      } catch (err) {
        const e = toXrdError(err);
        reasons.push(e.code === 'TimestampingFailed' ? String(e.details.reason) : `${tsa.url}: ${e.message}`);
      }
    }
    throw new XrdError('TimestampingFailed', { reason: reasons.join('; ') });
  }

  private succeeded(): void {
    if (this.failingSince) this.logger.info({ failingSince: this.failingSince.toISOString() }, 'timestamping works again');
    this.failingSince = null;
    this.lastError = null;
    this.lastSuccessAt = new Date();
  }

  private failed(err: XrdError, records: number): void {
    this.counters.failedRounds++;
    this.lastError = err;
    // Nothing waiting any more (stamped by another round): not a failure to count against logging.
    if (this.countPending.get()!.n === 0) return;
    if (!this.failingSince) this.failingSince = new Date();
    this.logger.warn({ records, failingSince: this.failingSince.toISOString(), code: err.fullCode, error: err.message }, 'timestamping failed');
  }
}

/** Whether `addSignatureTimestamp` can put a token into this signature (the layout xades.ts writes). */
function canEmbedTimestamp(signatureXml: string): boolean {
  return signatureXml.includes(PLACE_FOR_TIMESTAMP) && !signatureXml.includes('<xades:SignatureTimeStamp>');
}
