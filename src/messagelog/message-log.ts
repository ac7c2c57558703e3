/**
 * The security server's message log (MESS_09–10): every signed request and response is written to
 * the node's message-log database (SQLite or PostgreSQL, store.ts) before the proxy answers, and a timestamper gets RFC 3161 timestamps for the logged
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
 * Attachments above `attachmentFileThresholdBytes` are not put in the database: each becomes a file of
 * the attachment folder (attachment-files.ts), made durable before the group commit that writes
 * the record naming it, so a record never names a missing file.
 *
 * The rounds themselves, and SQLite's WAL checkpoints, run in a helper thread (timestamper-thread.ts)
 * on its own connection; this thread only inserts records and keeps the schedule and the failure
 * state. One MessageLog (one timestamper) per log; other processes read it with MessageLogReader.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { XrdError, isErrorCode, toXrdError, type ErrorDetails } from '../platform/errors.ts';
import { writeFileAtomic } from '../platform/files.ts';
import { silentLogger, type Logger } from '../platform/logger.ts';
import type { Body } from '../platform/spool.ts';
import { formatClientId, type ClientId } from '../protocol/identifiers.ts';
import type { TimestampingService } from '../signature/timestamp.ts';
import { removeArchivedRecords } from './archive-store.ts';
import type { ArchiveRoundResult, ArchiveSettings } from './archiver.ts';
import { partSize } from './attachment-files.ts';
import { allocateIds, insertRows, insertRowsReturning, placeholders, type SqlDatabase, type SqlExecutor, type SqlValue } from '../storage/database.ts';
import { MessageLogReader, locationOf, openLogDatabase, type MessageLogLocation, type MessageLogWhere } from './store.ts';
import type { FromThread, ThreadData, ToThread } from './timestamper-thread.ts';
import type { RoundRequest, StampPlan } from './timestamper.ts';

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
  /** Throws when the global configuration is out of date (`GlobalConf.checkUpToDate`): the round then fails, as the reference's Timestamper does. */
  readonly checkGlobalConf?: () => void;
  /** Per TSA request. Default 20,000 ms. */
  readonly tsaTimeoutMs?: number;
  /** First round this long after opening, to stamp what an earlier run left. Default 1,000 ms. */
  readonly initialDelayMs?: number;
  /** 'process' (default): a committed record survives the process dying; 'power': also a power cut (fsync per record). */
  readonly durability?: 'process' | 'power';
  /** Attachments larger than this are kept as files beside the log, not in SQLite. Default 1 MiB. */
  readonly attachmentFileThresholdBytes?: number;
  readonly logger?: Logger;
  /** Clock of the timestamping failure period (when it started, whether it has lasted too long); tests pin it. Default Date.now. */
  readonly now?: () => number;
  /**
   * Where each round's outcome per TSA is written (JSON, `TimestamperStatus`), for the admin API's
   * diagnostics in another process (the reference's proxy reports it to its admin the same way).
   */
  readonly statusFile?: string;
  /** Archiving and retention (archiver.ts); absent: records stay in the log. */
  readonly archive?: ArchiveOptions;
}

/** The reference's archiver settings: where and how (ArchiveSettings), and when. */
export interface ArchiveOptions extends ArchiveSettings {
  /** Seconds between archiving rounds (the reference's `archive-interval`, every 6 hours). Default 21,600. */
  readonly intervalSeconds?: number;
  /** Archived records are removed from the log this many days after they were logged (`keep-records-for`). Default 30. */
  readonly keepRecordsForDays?: number;
  /** Seconds between retention rounds (`clean-interval`, every 12 hours). Default 43,200. */
  readonly cleanIntervalSeconds?: number;
}

export const ARCHIVE_DEFAULTS = { intervalSeconds: 21_600, keepRecordsForDays: 30, cleanIntervalSeconds: 43_200 } as const;

/** Each TSA's last outcome and when the next round is due: what `statusFile` holds. */
export interface TimestamperStatus {
  readonly tsas: readonly { readonly url: string; readonly at: string; readonly status: 'OK' | 'FAIL'; readonly code?: string; readonly message?: string }[];
  readonly nextAt: string;
}

/** The status file's name in the proxy's data directory (security-server.ts writes, the admin API reads). */
export const TIMESTAMPER_STATUS_FILE = 'timestamper-status.json';

/** The status a running message log wrote, or undefined when there is none (never ran, unreadable). */
export function readTimestamperStatus(file: string): TimestamperStatus | undefined {
  try {
    const status = JSON.parse(readFileSync(file, 'utf8')) as TimestamperStatus;
    return Array.isArray(status.tsas) ? status : undefined;
  } catch {
    return undefined;
  }
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
  /**
   * `/attachment1…`: SOAP attachments or the REST body; leave out what must not be logged. A
   * spooled body above the file threshold is hard-linked (or copied) into the log, never read into
   * memory: its file must exist until `log` has settled; dispose of it after.
   */
  readonly attachments?: readonly (Buffer | Body)[];
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

/** Distinct signatures remembered by the writer, so batch members find their row without a lookup. */
const SIGNATURE_CACHE = 256;
/**
 * The helper thread checkpoints a SQLite WAL every second; the writer connection does only if it
 * falls far behind (pages of 4 kB: 400 MB), since a checkpoint in the writer stalls a request.
 */
const WRITER_AUTOCHECKPOINT_PAGES = 100_000;
/** Records per transaction when storing a batch timestamp. */
const STORE_CHUNK = 200;
/** Records removed per transaction by retention (each with its message and attachments' rows). */
const CLEAN_CHUNK = 100;
/**
 * Most records, and bytes of messages and attachments kept in the database, one group commit
 * takes: what arrives while a commit is slow waits for the next one instead of making it larger
 * still (and one failure reject more records).
 */
const MAX_GROUP_RECORDS = 500;
const MAX_GROUP_BYTES = 16 * 1024 * 1024;
const NO_BYTES = Buffer.alloc(0);

/** A record waiting for its commit, with the files its large attachments were placed in (by index). */
interface PendingRecord {
  readonly message: MessageToLog;
  readonly files: readonly (string | undefined)[] | undefined;
}

type WaitingRecord = PendingRecord & { resolve: (id: number) => void; reject: (err: Error) => void };

export class MessageLog extends MessageLogReader {
  private pendingWrites: WaitingRecord[] = [];
  /** The group commit in progress: records arriving meanwhile wait for the next one. */
  private committing: Promise<void> | undefined;
  /** Records with large attachments, from placing their files until committed or failed; close() waits for them. */
  private readonly placing = new Set<Promise<unknown>>();
  private readonly fileThreshold: number;
  /** signatureKey() → its row, for the messages of a signing batch that follow the first. */
  private readonly signatureIds = new Map<string, number>();
  /** The XML columns take the documents as the proxies hold them, strings or bytes (see text()). */
  private readonly text: (xml: string | Buffer | undefined) => string | Buffer | null;

  private readonly logger: Logger;
  private readonly maxBatch: number;
  private readonly acceptableMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private archiveTimer: NodeJS.Timeout | undefined;
  private cleanTimer: NodeJS.Timeout | undefined;
  /** Archiving rounds never overlap each other (they may overlap timestamping rounds). */
  private archiving: Promise<unknown> = Promise.resolve();
  private running: Promise<unknown> = Promise.resolve();
  private closed = false;
  private databaseClosed = false;
  private failingSince: Date | null = null;
  /** Each TSA's last outcome: the one that stamped is OK; when a round fails, every TSA it tried failed. */
  private readonly tsaOutcomes = new Map<string, TimestamperStatus['tsas'][number]>();
  private lastSuccessAt: Date | null = null;
  private lastError: XrdError | null = null;
  private counters = { timestampsObtained: 0, failedRounds: 0, recordsStamped: 0 };
  private thread: Worker | undefined;
  private threadCalls = new Map<number, { resolve: (result: StampPlan | ArchiveRoundResult) => void; reject: (e: Error) => void }>();
  private nextCall = 0;

  private constructor(
    db: SqlDatabase,
    location: MessageLogLocation,
    private readonly options: MessageLogOptions,
  ) {
    super(db, location);
    this.logger = options.logger ?? silentLogger();
    this.fileThreshold = options.attachmentFileThresholdBytes ?? 1024 * 1024;
    this.maxBatch = options.maxBatch ?? 10_000;
    this.acceptableMs = (options.acceptableTimestampFailureSeconds ?? 14_400) * 1000;
    this.now = options.now ?? Date.now;
    // SQLite's CAST stores bytes as the (UTF-8) text they are, without turning them into a
    // JavaScript string and back; PostgreSQL is sent text.
    this.text =
      db.engine === 'sqlite'
        ? (xml) => xml ?? null
        : (xml) => (xml === undefined ? null : typeof xml === 'string' ? xml : xml.toString('utf8'));
  }

  /**
   * Opens or creates the log and starts the timestamper.
   * @throws IOError; DatabaseUnavailable; DatabaseTooNew
   */
  static async open(where: MessageLogWhere, options: MessageLogOptions): Promise<MessageLog> {
    const location = locationOf(where);
    const db = await openLogDatabase(location.database, { create: true, durability: options.durability, logger: options.logger });
    const log = new MessageLog(db, location, options);
    try {
      if (db.engine === 'sqlite') await db.exec(`PRAGMA wal_autocheckpoint = ${WRITER_AUTOCHECKPOINT_PAGES}`);
      const named = async (names: readonly string[]) =>
        new Set((await db.all<{ file: string }>(`SELECT file FROM message_attachment WHERE file IN (${placeholders(names)})`, names)).map((r) => r.file));
      const removed = await log.attachmentFiles.removeOrphans(named);
      if (removed.length > 0) log.logger.warn({ files: removed.length, dir: log.attachmentFiles.dir }, 'removed attachment files no record names (left by a crash before their records committed)');
    } catch (err) {
      await db.close();
      throw err;
    }
    // Started now rather than at the first round: it also checkpoints the WAL from the start.
    log.thread = log.startThread();
    log.schedule(options.initialDelayMs ?? 1000);
    if (options.archive) {
      log.archiveTimer = log.every(options.archive.intervalSeconds ?? ARCHIVE_DEFAULTS.intervalSeconds, () => log.archiveNow(), 'message log archiving');
      log.cleanTimer = log.every(options.archive.cleanIntervalSeconds ?? ARCHIVE_DEFAULTS.cleanIntervalSeconds, () => log.cleanNow(), 'removing archived message log records');
    }
    return log;
  }

  /**
   * Writes one message with its signature. The records that arrive while a commit is in progress
   * are committed together by the next one (group commit): under load the proxies log hundreds of
   * messages a second, and one transaction per record was most of the database's cost. The promise
   * settles once the record is committed, so an answer that waits for it never leaves before its
   * record. Large attachments' files are placed (and fsynced) first, off the event loop.
   * @returns the record's number
   * @throws LoggingFailed.TimestamperFailed while timestamping has been failing longer than the
   *   acceptable period or no TSA is configured; LoggingFailed.IOError or
   *   LoggingFailed.DatabaseUnavailable when the write fails
   */
  log(message: MessageToLog): Promise<number> {
    try {
      this.checkCanLog();
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.hasLargeAttachments(message)) return this.queue({ message, files: undefined });
    const placed = this.placeFiles(message).then((files) => this.queue({ message, files }));
    const settled = placed.catch(() => undefined);
    this.placing.add(settled);
    void settled.then(() => this.placing.delete(settled));
    return placed;
  }

  private queue(record: PendingRecord): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pendingWrites.push({ ...record, resolve, reject });
      if (this.pendingWrites.length === 1 && !this.committing) setImmediate(() => this.startCommit());
    });
  }

  /** Commits what waits, then what arrived meanwhile, one transaction (of a bounded size) at a time. */
  private startCommit(): void {
    if (this.committing || this.pendingWrites.length === 0) return;
    let bytes = 0;
    let take = 0;
    while (take < this.pendingWrites.length && take < MAX_GROUP_RECORDS && (take === 0 || bytes < MAX_GROUP_BYTES)) bytes += sizeInDatabase(this.pendingWrites[take++]!);
    const batch = this.pendingWrites.splice(0, take);
    this.committing = this.commit(batch).finally(() => {
      this.committing = undefined;
      this.startCommit();
    });
  }

  private async commit(batch: readonly WaitingRecord[]): Promise<void> {
    let written: WrittenRecord[];
    try {
      written = await this.db.transaction((tx) => this.writeRecords(tx, batch));
    } catch (err) {
      // SQLite's failed commit rolled back. PostgreSQL's may have committed all the same (the
      // connection lost at COMMIT): the files stay for the sweep of the next start, which keeps
      // those a row names.
      if (this.db.engine === 'sqlite') this.discardFiles(batch);
      const e = loggingFailed(err);
      for (const w of batch) w.reject(e);
      return;
    }
    batch.forEach((w, i) => {
      this.rememberSignature(written[i]!);
      w.resolve(written[i]!.id);
    });
  }

  /** The records, their attachments and their places in the timestamper's queue, a few statements for the whole group. */
  private async writeRecords(tx: SqlExecutor, batch: readonly PendingRecord[]): Promise<WrittenRecord[]> {
    const engine = this.db.engine;
    const ids = await allocateIds(tx, engine, 'message_record', batch.length);
    // The signatures not remembered, each once (a signing batch's messages share theirs); a
    // signature first written here is remembered only once the transaction commits.
    const keys = batch.map(({ message: m }) => signatureKey(m.signature.signatureXml));
    const missing = new Map<string, { hash: Buffer; signature: MessageToLog['signature'] }>();
    keys.forEach(({ key, hash }, i) => {
      const { signature } = batch[i]!.message;
      if (!this.signatureIds.has(key) && !missing.has(key)) missing.set(key, { hash: hash ?? createHash('sha256').update(signature.signatureXml).digest(), signature });
    });
    const byHash = await this.signatureRows(tx, [...missing.values()]);
    const written = keys.map(({ key }, i): WrittenRecord => ({ id: ids[i]!, signatureId: this.signatureIds.get(key) ?? byHash.get(missing.get(key)!.hash.toString('hex'))!, signatureKey: key }));
    const now = Date.now();
    await insertRows(
      tx,
      engine,
      'message_record (id, time, query_id, client_id, service_id, is_response, side, x_request_id, message, signature_id, hash_chain)',
      '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT))',
      batch.map(({ message: m }, i) => [ids[i]!, now, m.queryId, formatClientId(m.client), `${formatClientId(m.serviceProvider)}/${m.serviceCode}`, m.isResponse, m.side, m.xRequestId ?? null, m.message, written[i]!.signatureId, this.text(m.signature.hashChain)]),
    );
    const attachments = batch.flatMap(({ message: m, files }, i) =>
      (m.attachments ?? []).map((a, k): SqlValue[] => {
        const file = files?.[k];
        return file !== undefined ? [ids[i]!, k + 1, NO_BYTES, file, partSize(a)] : [ids[i]!, k + 1, Buffer.isBuffer(a) ? a : (a.buffer ?? a.bytes()), null, null];
      }),
    );
    await insertRows(tx, engine, 'message_attachment (record_id, n, data, file, size)', '(?, ?, ?, ?, ?)', attachments);
    await insertRows(tx, engine, 'timestamp_queue (record_id)', '(?)', ids.map((id) => [id]));
    return written;
  }

  /** The rows of these signature documents, written where missing. @returns their ids by hash (hex) */
  private async signatureRows(tx: SqlExecutor, signatures: readonly { hash: Buffer; signature: MessageToLog['signature'] }[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    if (signatures.length === 0) return ids;
    const rows = signatures.map(({ hash, signature }) => [hash, this.text(signature.signatureXml), this.text(signature.hashChainResult)]);
    const inserted = await insertRowsReturning<{ id: number; hash: Buffer }>(tx, this.db.engine, 'signature (hash, xml, hash_chain_result)', '(?, CAST(? AS TEXT), CAST(? AS TEXT))', rows, ' ON CONFLICT (hash) DO NOTHING', 'id, hash');
    for (const row of inserted) ids.set(row.hash.toString('hex'), row.id);
    // Those already there (logged before this writer remembered them, or by a commit meanwhile).
    const known = signatures.map((s) => s.hash).filter((hash) => !ids.has(hash.toString('hex')));
    if (known.length > 0) {
      for (const row of await tx.all<{ id: number; hash: Buffer }>(`SELECT id, hash FROM signature WHERE hash IN (${placeholders(known)})`, known)) ids.set(row.hash.toString('hex'), row.id);
    }
    return ids;
  }

  private hasLargeAttachments(message: MessageToLog): boolean {
    return message.attachments?.some((a) => partSize(a) > this.fileThreshold) ?? false;
  }

  /** The large attachments as durable files, off the event loop. @throws LoggingFailed.IOError */
  private async placeFiles(message: MessageToLog): Promise<(string | undefined)[]> {
    const placed = await Promise.allSettled(message.attachments!.map((a) => (partSize(a) > this.fileThreshold ? this.attachmentFiles.place(a) : undefined)));
    const files = placed.map((p) => (p.status === 'fulfilled' ? p.value : undefined));
    const failed = placed.find((p) => p.status === 'rejected');
    if (failed) {
      this.discardFiles([{ message, files }]);
      throw loggingFailed(failed.reason);
    }
    return files;
  }

  /** Files of records that did not commit: removed, or left to the next start's orphan sweep. */
  private discardFiles(records: readonly PendingRecord[]): void {
    const names = records.flatMap((r) => r.files?.filter((f) => f !== undefined) ?? []);
    if (names.length > 0) this.attachmentFiles.discard(names);
  }

  private rememberSignature({ signatureKey, signatureId }: WrittenRecord): void {
    if (!this.signatureIds.has(signatureKey)) {
      if (this.signatureIds.size >= SIGNATURE_CACHE) this.signatureIds.delete(this.signatureIds.keys().next().value!);
      this.signatureIds.set(signatureKey, signatureId);
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

  /**
   * One archiving round now (archiver.ts), in the helper thread; rounds of the schedule and of
   * this call run one after the other. Logging goes on meanwhile.
   * @throws InvalidConfiguration without `archive` options; LogArchiverBusy when another process
   *   is archiving this log; LogArchiveEncryptionFailed; IOError
   */
  archiveNow(): Promise<ArchiveRoundResult> {
    const settings = this.options.archive;
    if (!settings) return Promise.reject(new XrdError('InvalidConfiguration', { reason: 'message log archiving is not configured' }));
    const next = this.archiving
      .catch(() => undefined)
      .then(async () => {
        if (this.closed) throw new XrdError('IOError', { reason: 'the message log is closed' });
        const started = Date.now();
        const result = (await this.callThread({ type: 'archive', settings: archiveSettings(settings) })) as ArchiveRoundResult;
        if (result.records > 0 || result.recovered > 0) this.logger.info({ records: result.records, files: result.files, recovered: result.recovered, ms: Date.now() - started }, 'message log records archived');
        return result;
      });
    this.archiving = next;
    return next;
  }

  /**
   * Removes archived records logged more than `keepRecordsForDays` ago, with their attachments
   * (rows, then files) and the signatures and timestamps no record uses any more: the reference's
   * LogCleaner. Runs on this (the writing) connection, a hundred records per transaction with the
   * event loop free in between, and never at the same time as a timestamp is stored.
   * @returns how many records were removed
   */
  cleanNow(): Promise<number> {
    const days = this.options.archive?.keepRecordsForDays ?? ARCHIVE_DEFAULTS.keepRecordsForDays;
    const cutoff = Date.now() - days * 86_400_000;
    return this.serialized(async () => {
      let total = 0;
      for (;;) {
        if (total > 0) await nextTurn();
        if (this.databaseClosed) throw new XrdError('IOError', { reason: 'the message log was closed while removing records' });
        // Signature rows may go: commits from now on look theirs up instead of trusting a remembered
        // row number (one that committed meanwhile names its signature, which then stays).
        this.signatureIds.clear();
        const removed = await removeArchivedRecords(this.db, cutoff, CLEAN_CHUNK);
        // Rows first, then files: a crash in between leaves files no row names, which the next open removes.
        if (removed.files.length > 0) this.attachmentFiles.discard(removed.files);
        total += removed.records;
        if (removed.records < CLEAN_CHUNK) break;
      }
      if (total > 0) this.logger.info({ records: total, keepRecordsForDays: days }, 'archived message log records removed');
      return total;
    });
  }

  /** Runs `round` every `seconds`; a failed round is logged and the next one tries again. */
  private every(seconds: number, round: () => Promise<unknown>, what: string): NodeJS.Timeout {
    const timer = setInterval(() => {
      round().catch((err: unknown) => {
        const e = toXrdError(err);
        this.logger.error({ code: e.fullCode, error: e.message }, `${what} failed; the next round tries again`);
      });
    }, seconds * 1000);
    timer.unref();
    return timer;
  }

  async status(): Promise<MessageLogStatus> {
    const { n, oldest } = this.databaseClosed ? { n: 0, oldest: null } : await this.countPending();
    return {
      acceptingMessages: !this.closed && this.refusal() === undefined,
      pending: n,
      oldestPendingAgeSeconds: oldest === null ? null : Math.max(0, (Date.now() - oldest) / 1000),
      lastSuccessAt: this.lastSuccessAt,
      failingSince: this.failingSince,
      lastError: this.lastError && { code: this.lastError.fullCode, message: this.lastError.message },
      ...this.counters,
    };
  }

  /**
   * Stops the timers, lets a timestamping round in progress finish and an archiving round finish
   * the archive it is writing, ends the helper thread, closes the file.
   */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Records waiting for their attachment files or their group commit are written first.
    await Promise.all(this.placing);
    this.startCommit();
    while (this.committing) await this.committing;
    clearTimeout(this.timer);
    clearTimeout(this.archiveTimer);
    clearTimeout(this.cleanTimer);
    // A first round over a large log can take long: it ends after the archive it is writing.
    this.thread?.postMessage({ type: 'stop' } satisfies ToThread);
    await this.running.catch(() => undefined);
    await this.archiving.catch(() => undefined);
    const thread = this.thread;
    if (thread) {
      const exited = new Promise((r) => thread.once('exit', r));
      thread.ref();
      thread.postMessage({ type: 'close' } satisfies ToThread);
      await exited;
    }
    this.databaseClosed = true;
    await super.close();
  }

  // ---- refusing ------------------------------------------------------------------------------

  private refusal(): string | undefined {
    if (this.options.tsas().length === 0) return 'no timestamping services configured';
    if (this.failingSince && this.acceptableMs > 0 && this.now() - this.failingSince.getTime() > this.acceptableMs) {
      return `timestamping has failed since ${this.failingSince.toISOString()}, longer than the acceptable ${this.acceptableMs / 1000} s`;
    }
    return undefined;
  }

  private checkCanLog(): void {
    if (this.closed) throw new XrdError('IOError', { reason: 'the message log is closed' }).within('LoggingFailed');
    let reason: string | undefined;
    try {
      reason = this.refusal();
    } catch (err) {
      // The configuration callbacks failed: report it as the logging failure it causes.
      throw toXrdError(err).within('LoggingFailed');
    }
    if (reason) throw new XrdError('TimestamperFailed', { reason }).within('LoggingFailed');
  }

  // ---- the schedule ----------------------------------------------------------------------------

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
    this.writeStatus(new Date(Date.now() + (again ? 0 : delay * 1000)));
  }

  private writeStatus(nextAt: Date): void {
    const file = this.options.statusFile;
    if (!file) return;
    try {
      // 0600 as every file of the proxy's data folder: it names the TSAs and when they failed.
      writeFileAtomic(file, JSON.stringify({ tsas: [...this.tsaOutcomes.values()], nextAt: nextAt.toISOString() } satisfies TimestamperStatus), 0o600);
    } catch (err) {
      this.logger.warn({ err }, 'timestamping status not written');
    }
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
      if (this.databaseClosed) throw new XrdError('IOError', { reason: 'the message log is closed' });
      return fn();
    });
    this.running = next;
    return next;
  }

  /** One round in the helper thread, stored here, and what it means for logging. @returns records stamped */
  private async round(limit: number): Promise<number> {
    const started = Date.now();
    let stamped: number;
    let plan: StampPlan;
    try {
      this.options.checkGlobalConf?.();
      plan = (await this.callThread({ type: 'round', request: { limit, tsas: this.options.tsas(), tsaCerts: this.options.tsaCerts?.(), timeoutMs: this.options.tsaTimeoutMs ?? 20_000 } })) as StampPlan;
      if (plan.kind === 'none' && plan.deferred) {
        this.logger.debug('a lone record whose signature cannot carry a timestamp waits for a batch');
        return 0;
      }
      stamped = await this.store(plan);
    } catch (err) {
      const e = toXrdError(err);
      // Undefined when the database cannot say.
      const waiting = this.databaseClosed ? 0 : await this.countPending().then(({ n }) => n, () => undefined);
      this.failed(e, waiting);
      // Only a round with records to stamp asked the TSAs (the first that answers stamps).
      if (waiting !== undefined && waiting > 0) {
        for (const tsa of this.options.tsas()) this.tsaOutcomes.set(tsa.url, { url: tsa.url, at: new Date(started).toISOString(), status: 'FAIL', code: e.fullCode, message: e.message });
      }
      throw err;
    }
    if (stamped > 0 && plan.kind !== 'none') this.tsaOutcomes.set(plan.tsaUrl, { url: plan.tsaUrl, at: new Date(started).toISOString(), status: 'OK' });
    if (stamped > 0) {
      this.counters.timestampsObtained++;
      this.counters.recordsStamped += stamped;
      this.logger.info({ records: stamped, ms: Date.now() - started }, 'message log records timestamped');
    }
    // Nothing to stamp counts as success, as in the reference: an idle server keeps accepting.
    this.succeeded();
    return stamped;
  }

  /**
   * Stores a round's timestamp, a few hundred records per transaction with the event loop free in
   * between, so requests being logged never wait long.
   */
  private async store(plan: StampPlan): Promise<number> {
    if (plan.kind === 'none') return 0;
    // Buffers come back from the thread as plain Uint8Arrays.
    const token = Buffer.from(plan.token.buffer, plan.token.byteOffset, plan.token.byteLength);
    if (plan.kind === 'single') {
      await this.db.transaction(async (tx) => {
        const tsId = await insertTimestamp(tx, token, null, plan.tsaUrl);
        // The stamped copy belongs to this record alone; others of its signing batch keep theirs.
        const hash = createHash('sha256').update(plan.signatureXml).digest();
        const signatureId = (await this.signatureRows(tx, [{ hash, signature: { signatureXml: plan.signatureXml, hashChainResult: plan.hashChainResult ?? undefined } }])).get(hash.toString('hex'))!;
        await tx.run('UPDATE message_record SET signature_id = ? WHERE id = ?', [signatureId, plan.recordId]);
        await tx.run('INSERT INTO record_timestamp (record_id, timestamp_id, hash_chain) VALUES (?, ?, NULL) ON CONFLICT DO NOTHING', [plan.recordId, tsId]);
        await tx.run('DELETE FROM timestamp_queue WHERE record_id = ?', [plan.recordId]);
      });
      return 1;
    }
    const chains = Buffer.from(plan.chains.buffer, plan.chains.byteOffset, plan.chains.byteLength);
    const chainOf = (i: number) => chains.toString('utf8', i === 0 ? 0 : plan.chainEnds[i - 1], plan.chainEnds[i]);
    const tsId = await this.db.transaction((tx) => insertTimestamp(tx, token, plan.hashChainResult, plan.tsaUrl));
    // Records left queued if the process stops half way are stamped again by a later round.
    for (let from = 0; from < plan.recordIds.length; from += STORE_CHUNK) {
      if (from > 0) await nextTurn();
      if (this.databaseClosed) throw new XrdError('IOError', { reason: 'the message log was closed while storing a timestamp' });
      const ids = plan.recordIds.slice(from, from + STORE_CHUNK);
      await this.db.transaction(async (tx) => {
        const rows = ids.map((id, k) => [id, tsId, chainOf(from + k)]);
        await insertRows(tx, this.db.engine, 'record_timestamp (record_id, timestamp_id, hash_chain)', '(?, ?, ?)', rows, ' ON CONFLICT DO NOTHING');
        await tx.run(`DELETE FROM timestamp_queue WHERE record_id IN (${placeholders(ids)})`, ids);
      });
    }
    return plan.recordIds.length;
  }

  /** Records waiting for a timestamp, and when the oldest was logged. */
  private async countPending(): Promise<{ n: number; oldest: number | null }> {
    const row = await this.db.get<{ n: number; oldest: number | null }>(
      'SELECT COUNT(*) AS n, (SELECT m.time FROM timestamp_queue q JOIN message_record m ON m.id = q.record_id ORDER BY q.record_id LIMIT 1) AS oldest FROM timestamp_queue',
    );
    return row!;
  }

  private succeeded(): void {
    if (this.failingSince) this.logger.info({ failingSince: this.failingSince.toISOString() }, 'timestamping works again');
    this.failingSince = null;
    this.lastError = null;
    this.lastSuccessAt = new Date(this.now());
  }

  private failed(err: XrdError, waiting: number | undefined): void {
    this.counters.failedRounds++;
    this.lastError = err;
    // Nothing waiting any more: not a failure to count against logging (the reference's TaskQueue).
    // A database that cannot say counts as something waiting.
    if (waiting === 0) return;
    if (!this.failingSince) this.failingSince = new Date(this.now());
    this.logger.warn({ failingSince: this.failingSince.toISOString(), code: err.fullCode, error: err.message }, 'timestamping failed');
  }

  // ---- the helper thread -----------------------------------------------------------------------

  private callThread(call: { type: 'round'; request: RoundRequest } | { type: 'archive'; settings: ArchiveSettings }): Promise<StampPlan | ArchiveRoundResult> {
    const thread = (this.thread ??= this.startThread());
    const id = this.nextCall++;
    // Only a round in progress keeps the process alive, so a script awaiting timestampNow() ends
    // when it is done and an idle log does not hold a process open.
    thread.ref();
    return new Promise<StampPlan | ArchiveRoundResult>((resolve, reject) => {
      this.threadCalls.set(id, { resolve, reject });
      thread.postMessage({ ...call, id } satisfies ToThread);
    }).finally(() => {
      if (this.threadCalls.size === 0) thread.unref();
    });
  }

  private startThread(): Worker {
    const data: ThreadData = { location: this.location, durability: this.options.durability, checkpointIntervalMs: 1000 };
    const thread = new Worker(threadSource(), { eval: true, workerData: data });
    thread.unref();
    thread.on('message', (msg: FromThread) => {
      const call = this.threadCalls.get(msg.id);
      this.threadCalls.delete(msg.id);
      if (msg.type === 'done') call?.resolve(msg.plan);
      else if (msg.type === 'archived') call?.resolve(msg.result);
      else call?.reject(isErrorCode(msg.error.code) ? new XrdError(msg.error.code, msg.error.details as ErrorDetails) : new XrdError('InternalError', { reason: msg.error.message }));
    });
    const lost = (reason: string) => {
      if (this.thread === thread) this.thread = undefined;
      for (const call of this.threadCalls.values()) call.reject(new XrdError('InternalError', { reason: `message log timestamper thread ${reason}` }));
      this.threadCalls.clear();
    };
    thread.on('error', (err) => {
      this.logger.error({ error: err.message }, 'message log timestamper thread failed; a new one starts with the next round');
      lost(`failed: ${err.message}`);
    });
    thread.on('exit', (code) => lost(`exited with ${code}`));
    return thread;
  }
}

/** What the helper thread needs of the archive options (the schedule stays here). */
function archiveSettings(o: ArchiveOptions): ArchiveSettings {
  return { dir: o.dir, batchSize: o.batchSize, maxFileBytes: o.maxFileBytes, grouping: o.grouping, digestAlgorithm: o.digestAlgorithm, encryption: o.encryption };
}

/** The bytes a record puts into the database rows of one commit (attachments in files count nothing). */
function sizeInDatabase({ message: m, files }: PendingRecord): number {
  let size = m.message.length;
  m.attachments?.forEach((a, i) => {
    if (files?.[i] === undefined) size += partSize(a);
  });
  return size;
}

async function insertTimestamp(tx: SqlExecutor, token: Buffer, hashChainResult: string | null, tsaUrl: string): Promise<number> {
  return (await tx.get<{ id: number }>('INSERT INTO timestamp_record (time, token, hash_chain_result, tsa_url) VALUES (?, ?, ?, ?) RETURNING id', [Date.now(), token, hashChainResult, tsaUrl]))!.id;
}

/** A record as written: its row, its signature's row and the signature's key in `signatureIds`. */
interface WrittenRecord {
  readonly id: number;
  readonly signatureId: number;
  readonly signatureKey: string;
}

/**
 * How the writer remembers a signature document. A string is what this server's batch signer made:
 * the messages of a batch share that one string, whose hash V8 keeps once computed, so it is its
 * own key. Bytes are a verified peer's, each message its own copy: their SHA-256 (the row's `hash`,
 * needed anyway for a new row) is the key, NUL-prefixed so it can never equal an XML string.
 */
function signatureKey(xml: string | Buffer): { key: string; hash?: Buffer } {
  if (typeof xml === 'string') return { key: xml };
  const hash = createHash('sha256').update(xml).digest();
  return { key: `\u0000${hash.toString('latin1')}`, hash };
}

function loggingFailed(err: unknown): XrdError {
  const e = err instanceof XrdError ? err : new XrdError('IOError', { reason: `cannot write the message log: ${(err as Error).message}` }, { cause: err });
  return e.within('LoggingFailed');
}

/**
 * The helper thread's entry. The sources run as TypeScript through tsx; a worker thread does not
 * inherit the loader hooks of the thread that starts it, so it registers tsx itself first.
 */
function threadSource(): string {
  const entry = new URL('./timestamper-thread.ts', import.meta.url).href;
  if (!import.meta.url.endsWith('.ts')) return `import(${JSON.stringify(entry.replace(/\.ts$/, '.js'))});`;
  const require = createRequire(import.meta.url);
  const tsxDir = dirname(require.resolve('tsx/package.json'));
  const exportsMap = (JSON.parse(readFileSync(join(tsxDir, 'package.json'), 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports;
  const api = pathToFileURL(join(tsxDir, exportsMap['./esm/api']!.import.default)).href;
  return `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
}
