/**
 * The message log's database (MESS_09): one row per logged message, one per timestamp, and the
 * attachments (SOAP attachments, REST bodies) in a table of their own — those above a threshold as
 * files of the attachment folder (attachment-files.ts), which their rows name. Reading records and
 * exporting them as ASiC-E containers needs only these, so `xrd asic export` opens them while a
 * proxy keeps logging.
 *
 * Two engines (src/storage): a SQLite file of the node, the embedded default, or a PostgreSQL
 * database. Either way the message log is the node's own — as in the reference, whose cluster nodes
 * each keep their own messagelog database — and so are its attachment files.
 *
 * Durability on SQLite: WAL with synchronous=NORMAL writes each committed transaction to the WAL
 * file before the commit returns, so it survives the process being killed; it is only fsynced at
 * checkpoints, so a power cut or kernel crash may lose the last transactions (the file stays
 * consistent). synchronous=FULL (`durability: 'power'`) fsyncs every commit and survives those too.
 * PostgreSQL's commit is durable as its server is configured (fsync, synchronous_commit).
 */
import { existsSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { memoryBody, type Body } from '../platform/spool.ts';
import { fileSource, ZipTooLargeError, ZIP_LIMIT } from '../platform/zip.ts';
import { asicChunks, writeAsic, type AsicToWrite } from '../signature/asic.ts';
import { databaseConfig, placeholders, redactUrl, type DatabaseConfig, type Dialect, type SqlDatabase, type SqlExecutor } from '../storage/database.ts';
import { openDatabase, type StoreSchema } from '../storage/open.ts';
import { AttachmentFolder, attachmentDirOf } from './attachment-files.ts';

/** Where a node's message log is: its database, and the folder of its attachment files. */
export interface MessageLogLocation {
  readonly database: DatabaseConfig;
  /** Always on this node's disk, whichever the engine. */
  readonly attachmentDir: string;
}

/** A node's message-log file in its data folder: the log itself on SQLite, and the anchor of its attachment folder either way. */
export const messageLogFileIn = (dataDir: string): string => join(dataDir, 'messagelog.db');

/**
 * The message log of `file` (messageLogFileIn): that SQLite file, or the PostgreSQL
 * database at `url`; its attachment files beside `file` either way.
 * @throws InvalidConfiguration for a URL that is not a PostgreSQL one
 */
export function messageLogLocation(file: string, url?: string): MessageLogLocation {
  return { database: databaseConfig(file, url), attachmentDir: attachmentDirOf(file) };
}

/**
 * Refuses to move a node's log to PostgreSQL while its file is still in the data folder: the
 * records there would never be stamped, archived or exported again.
 * @throws InvalidConfiguration
 */
export function refuseFileLeftBehind(file: string, location: MessageLogLocation): void {
  if (location.database.engine !== 'sqlite' && existsSync(file)) {
    throw new XrdError('InvalidConfiguration', {
      reason: `the message log is to be ${redactUrl(location.database.url)} but ${file} is still there: archive its records (xrd messagelog archive --db ${file}) and move it aside first`,
    });
  }
}

/** A location, or a SQLite file (tests, scripts, `--db`). */
export type MessageLogWhere = MessageLogLocation | string;

export function locationOf(where: MessageLogWhere): MessageLogLocation {
  return typeof where === 'string' ? messageLogLocation(where) : where;
}

const ARCHIVE_SCHEMA = (d: Dialect) => `
-- Archiving (archiver.ts): each archive file written, the records it holds, and who is archiving.
-- An archive's row is made, naming its records, before its file gets its final name; once the
-- records are marked, pending_records is cleared. A row still pending after a crash is finished
-- (file there) or dropped (file not there) by the next round.
CREATE TABLE IF NOT EXISTS archive_file (
  id ${d.serialId},
  group_name TEXT NOT NULL, -- '' without grouping; else the member or subsystem
  name TEXT NOT NULL, -- the file's name in the archive folder
  last_digest TEXT NOT NULL, -- the chain digest of its last container, carried into the next archive
  created BIGINT NOT NULL,
  pending_records TEXT -- JSON array of record ids until they are marked
);
CREATE INDEX IF NOT EXISTS archive_file_group ON archive_file(group_name, id);
-- Kept apart from message_record so that marking writes small rows, not the records with their messages.
CREATE TABLE IF NOT EXISTS archived_record (
  record_id BIGINT PRIMARY KEY REFERENCES message_record(id),
  archive_id BIGINT NOT NULL REFERENCES archive_file(id)
);
-- One archiver at a time (the proxy's schedule, xrd messagelog archive): a lease, renewed as it works.
CREATE TABLE IF NOT EXISTS archiver_lease (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, until BIGINT NOT NULL);
-- Retention finds the signatures no record uses any more.
CREATE INDEX IF NOT EXISTS message_record_signature ON message_record(signature_id);
`;

// Integers are BIGINT (times in milliseconds, ids): SQLite reads any INTEGER-like name as its 64-bit integer.
const SCHEMA = (d: Dialect) => `
-- One row per distinct signature document: the messages of a signing batch share theirs, so a
-- busy server writes each (10 kB with certificates and OCSP responses) once, not per message.
CREATE TABLE IF NOT EXISTS signature (
  id ${d.serialId},
  hash ${d.blob} NOT NULL UNIQUE, -- SHA-256 of xml
  xml TEXT NOT NULL,
  hash_chain_result TEXT -- sig-hashchainresult.xml when the signature covers a hash chain
);
CREATE TABLE IF NOT EXISTS message_record (
  -- never reused: container names stay unique after records are removed
  id ${d.serialId},
  time BIGINT NOT NULL,
  query_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  service_id TEXT NOT NULL,
  is_response INTEGER NOT NULL,
  side TEXT NOT NULL,
  x_request_id TEXT,
  message ${d.blob} NOT NULL,
  signature_id BIGINT NOT NULL REFERENCES signature(id),
  hash_chain TEXT -- this message's sig-hashchain.xml
);
CREATE INDEX IF NOT EXISTS message_record_query ON message_record(query_id);
CREATE TABLE IF NOT EXISTS message_attachment (
  record_id BIGINT NOT NULL REFERENCES message_record(id),
  n INTEGER NOT NULL,
  data ${d.blob} NOT NULL, -- empty when the attachment is in a file
  file TEXT, -- its file in the attachment folder (attachments above the threshold)
  size BIGINT, -- the file's attachment length
  PRIMARY KEY (record_id, n)
);
CREATE INDEX IF NOT EXISTS message_attachment_file ON message_attachment(file) WHERE file IS NOT NULL;
CREATE TABLE IF NOT EXISTS timestamp_record (
  id ${d.serialId},
  time BIGINT NOT NULL,
  token ${d.blob} NOT NULL,
  -- ts-hashchainresult.xml of a batch timestamp; NULL when the token is embedded in the signature
  hash_chain_result TEXT,
  tsa_url TEXT NOT NULL
);
-- The timestamp column of a record, kept apart so that stamping writes small rows instead of
-- rewriting records with their messages.
CREATE TABLE IF NOT EXISTS record_timestamp (
  record_id BIGINT PRIMARY KEY REFERENCES message_record(id),
  timestamp_id BIGINT NOT NULL REFERENCES timestamp_record(id),
  hash_chain TEXT -- this record's ts-hashchain.xml; NULL in the single form
);
-- The timestamper's queue: records not stamped yet, oldest first.
CREATE TABLE IF NOT EXISTS timestamp_queue (record_id BIGINT PRIMARY KEY REFERENCES message_record(id));
${ARCHIVE_SCHEMA(d)}`;

/**
 * Versions 1–2 were only ever SQLite files (`user_version`), migrated by whichever program opens
 * them first; a PostgreSQL database starts at the current version.
 */
const MESSAGELOG_SCHEMA: StoreSchema = {
  store: 'messagelog',
  version: 3,
  schema: SCHEMA,
  migrations: [
    // 2: attachments in files. Existing rows keep their data; nothing is rewritten.
    () => `ALTER TABLE message_attachment ADD COLUMN file TEXT;
     ALTER TABLE message_attachment ADD COLUMN size INTEGER;
     CREATE INDEX message_attachment_file ON message_attachment(file) WHERE file IS NOT NULL;`,
    // 3: archiving and retention. Only new tables and an index.
    ARCHIVE_SCHEMA,
  ],
};

export interface OpenLogOptions {
  /** Make a SQLite file that is not there (the writer); a reader refuses a missing file. */
  readonly create: boolean;
  /** SQLite: 'process' (default) survives the process dying, 'power' also a power cut (fsync per commit). */
  readonly durability?: 'process' | 'power';
  /** Where a PostgreSQL pool reports connections it lost while idle. */
  readonly logger?: Logger;
}

/**
 * Opens the log's database with the schema in place.
 * @throws IOError when a log to read is not there (no file, or a database without the log's tables); DatabaseUnavailable; DatabaseTooNew
 */
export async function openLogDatabase(database: DatabaseConfig, options: OpenLogOptions): Promise<SqlDatabase> {
  if (database.engine === 'sqlite' && !options.create && !existsSync(database.file)) throw new XrdError('IOError', { reason: `no message log at ${database.file}` });
  // Never moved aside and rebuilt, unlike the OCSP cache: this database is the evidence.
  return openDatabase(database, MESSAGELOG_SCHEMA, { synchronous: options.durability === 'power' ? 'FULL' : 'NORMAL', existing: !options.create, logger: options.logger });
}

export interface LoggedTimestamp {
  readonly id: number;
  readonly time: Date;
  /** DER TimeStampToken. */
  readonly token: Buffer;
  /** `ts-hashchainresult.xml` for a batch timestamp; undefined when the token is in the signature. */
  readonly hashChainResult: string | undefined;
  /** This record's `ts-hashchain.xml` (batch timestamps). */
  readonly hashChain: string | undefined;
  readonly tsaUrl: string;
}

/** A message as the log holds it. */
export interface LoggedRecord {
  readonly id: number;
  readonly time: Date;
  readonly queryId: string;
  /** `INSTANCE/CLASS/CODE[/SUBSYSTEM]` */
  readonly client: string;
  /** `INSTANCE/CLASS/CODE[/SUBSYSTEM]/SERVICECODE` */
  readonly service: string;
  readonly isResponse: boolean;
  /** Which proxy logged it: the client's security server or the provider's. */
  readonly side: 'client' | 'server';
  readonly xRequestId: string | undefined;
  /** `message.xml`: the SOAP message or the REST header part. */
  readonly message: Buffer;
  /**
   * `attachment1…`: SOAP attachments or the REST body; those logged above the threshold are read
   * from their files only when asked (`stream()`, `bytes()`), and `dispose()` keeps the file.
   */
  readonly attachments: readonly Body[];
  /** `META-INF/signatures.xml`; carries the timestamp itself when stamped in the single form. */
  readonly signatureXml: string;
  readonly hashChainResult: string | undefined;
  readonly hashChain: string | undefined;
  readonly timestamp: LoggedTimestamp | undefined;
}

export interface ExportedContainer {
  /** `<escaped query id>-request|response-<record id in base 32>.asice`, as the reference names them. */
  readonly name: string;
  /** The container in memory, built when read (attachment files read in): for small records. */
  readonly data: Buffer;
  /**
   * Streams the container into `file` (as `<file>.part`, renamed once complete), attachment files
   * read in chunks: memory stays small whatever their size. Same bytes as `data`.
   * @returns the container's length
   * @throws MessageTooLarge past 4 GiB (no ZIP64), before anything is written; IOError
   */
  writeTo(file: string): Promise<number>;
  readonly recordId: number;
  readonly isResponse: boolean;
  readonly timestamp: { readonly time: Date; readonly batch: boolean } | undefined;
}

interface RecordRow {
  id: number;
  time: number;
  query_id: string;
  client_id: string;
  service_id: string;
  is_response: number;
  side: string;
  x_request_id: string | null;
  message: Buffer;
  signature: string;
  hash_chain_result: string | null;
  hash_chain: string | null;
  ts_hash_chain: string | null;
  ts_id: number | null;
  ts_time: number | null;
  ts_token: Buffer | null;
  ts_hash_chain_result: string | null;
  ts_tsa_url: string | null;
}

const SELECT_RECORD = `SELECT m.*, s.xml AS signature, s.hash_chain_result, rt.hash_chain AS ts_hash_chain,
    t.id AS ts_id, t.time AS ts_time, t.token AS ts_token, t.hash_chain_result AS ts_hash_chain_result, t.tsa_url AS ts_tsa_url
  FROM message_record m JOIN signature s ON s.id = m.signature_id
  LEFT JOIN record_timestamp rt ON rt.record_id = m.id LEFT JOIN timestamp_record t ON t.id = rt.timestamp_id`;

interface AttachmentRow {
  record_id: number;
  data: Buffer;
  file: string | null;
  size: number | null;
}

/** Reading the log: records by query id or number, and their ASiC-E containers. */
export class MessageLogReader {
  protected readonly attachmentFiles: AttachmentFolder;

  protected constructor(
    protected readonly db: SqlDatabase,
    readonly location: MessageLogLocation,
  ) {
    this.attachmentFiles = new AttachmentFolder(location.attachmentDir);
  }

  /** Reading through a database the caller opened and closes (the helper thread's). */
  static onDatabase(db: SqlDatabase, location: MessageLogLocation): MessageLogReader {
    return new MessageLogReader(db, location);
  }

  /** A log another process writes, for reading and export only. @throws IOError; DatabaseUnavailable */
  static async openExisting(where: MessageLogWhere): Promise<MessageLogReader> {
    const location = locationOf(where);
    return new MessageLogReader(await openLogDatabase(location.database, { create: false }), location);
  }

  /** The records of a query (request and response, and both sides when one server logged both), oldest first. */
  records(queryId: string): Promise<LoggedRecord[]> {
    return this.db.transaction(async (tx) => this.toRecords(tx, await tx.all<RecordRow>(`${SELECT_RECORD} WHERE m.query_id = ? ORDER BY m.id`, [queryId])), { readOnly: true });
  }

  async record(id: number): Promise<LoggedRecord | undefined> {
    const rows = await this.db.transaction(async (tx) => this.toRecords(tx, await tx.all<RecordRow>(`${SELECT_RECORD} WHERE m.id = ?`, [id])), { readOnly: true });
    return rows[0];
  }

  /**
   * Each record of the query as its own ASiC-E container, built as the reference builds them.
   * @throws NotFound when the query has no records; MissingTimestamp when a record is not stamped
   *   yet and `allowUnstamped` is not set (such a container proves less: its certificates can
   *   only be checked as of the signing time); IOError when an attachment file is missing
   */
  async exportAsic(queryId: string, options: { allowUnstamped?: boolean } = {}): Promise<ExportedContainer[]> {
    const records = await this.records(queryId);
    if (records.length === 0) throw new XrdError('NotFound', { reason: `No signed documents found for query id "${queryId}"` });
    const unstamped = records.filter((r) => !r.timestamp);
    if (unstamped.length > 0 && !options.allowUnstamped) {
      throw new XrdError('MissingTimestamp', { reason: `record${unstamped.length > 1 ? 's' : ''} ${unstamped.map((r) => r.id).join(', ')} of query id "${queryId}"` });
    }
    return records.map((r) => ({
      name: asicFileName(r.queryId, r.isResponse, r.id),
      get data() {
        return containerOf(r);
      },
      writeTo: (file: string) => writeContainer(r, file),
      recordId: r.id,
      isResponse: r.isResponse,
      timestamp: r.timestamp && { time: r.timestamp.time, batch: r.timestamp.hashChainResult !== undefined },
    }));
  }

  /** A trivial query, for health checks. @throws DatabaseUnavailable when the database does not answer */
  async ping(): Promise<void> {
    await this.db.get('SELECT 1 AS one');
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** The rows as records, with their attachments read in the same snapshot. */
  private async toRecords(tx: SqlExecutor, rows: readonly RecordRow[]): Promise<LoggedRecord[]> {
    if (rows.length === 0) return [];
    const attachments = await tx.all<AttachmentRow>(`SELECT record_id, data, file, size FROM message_attachment WHERE record_id IN (${placeholders(rows)}) ORDER BY record_id, n`, rows.map((r) => r.id));
    return rows.map((row) => ({
      id: row.id,
      time: new Date(row.time),
      queryId: row.query_id,
      client: row.client_id,
      service: row.service_id,
      isResponse: row.is_response === 1,
      side: row.side === 'server' ? 'server' : 'client',
      xRequestId: row.x_request_id ?? undefined,
      message: row.message,
      attachments: attachments.filter((a) => a.record_id === row.id).map((a) => (a.file === null ? memoryBody(a.data) : this.attachmentFiles.body(a.file, a.size!, row.id))),
      signatureXml: row.signature,
      hashChainResult: row.hash_chain_result ?? undefined,
      hashChain: row.hash_chain ?? undefined,
      timestamp:
        row.ts_id === null
          ? undefined
          : { id: row.ts_id, time: new Date(row.ts_time!), token: row.ts_token!, hashChainResult: row.ts_hash_chain_result ?? undefined, hashChain: row.ts_hash_chain ?? undefined, tsaUrl: row.ts_tsa_url! },
    }));
  }
}

/** The container of one record, in memory. */
export function containerOf(r: LoggedRecord): Buffer {
  return writeAsic(contentsOf(r), r.time);
}

/** The container of one record streamed into a file; see ExportedContainer.writeTo. */
export async function writeContainer(r: LoggedRecord, file: string): Promise<number> {
  let chunks;
  try {
    chunks = asicChunks(contentsOf(r), r.time);
  } catch (err) {
    if (err instanceof ZipTooLargeError) throw new XrdError('MessageTooLarge', { limit: ZIP_LIMIT }, { cause: err });
    throw err;
  }
  const part = `${file}.part`;
  try {
    // An exported container is the message itself: the owner's alone, as the log it came from.
    // A .part left by a crash keeps the mode it was made with: set it on the open file too.
    const out = await open(part, 'w', 0o600);
    await out.chmod(0o600);
    let length = 0;
    try {
      // Each chunk written before the next is made: the attachment's are one reused buffer.
      for await (const chunk of chunks) {
        for (let at = 0; at < chunk.length; ) at += (await out.write(chunk, at, chunk.length - at)).bytesWritten;
        length += chunk.length;
      }
    } finally {
      await out.close();
    }
    await rename(part, file);
    return length;
  } catch (err) {
    await rm(part, { force: true });
    throw new XrdError('IOError', { reason: `cannot write ${file}: ${(err as Error).message}` }, { cause: err });
  }
}

/**
 * What a record's container holds: batch timestamps travel as `timestamp.tst` with this record's
 * `ts-hashchain.xml`; attachments in files are streamed, the others written as always.
 */
function contentsOf(r: LoggedRecord): AsicToWrite {
  const text = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'utf8'));
  const batch = r.timestamp?.hashChainResult !== undefined;
  return {
    message: r.message,
    signatureXml: Buffer.from(r.signatureXml, 'utf8'),
    attachments: r.attachments.map((a) => (a.file === undefined ? a.bytes() : { ...fileSource(a.file, a.size), bytes: () => a.bytes() })),
    hashChainResult: text(r.hashChainResult),
    hashChain: text(r.hashChain),
    timestampToken: batch ? r.timestamp!.token : undefined,
    tsHashChainResult: batch ? text(r.timestamp!.hashChainResult) : undefined,
    tsHashChain: batch ? text(r.timestamp!.hashChain) : undefined,
  };
}

/** The reference's query id part of a file name is at most 226 characters, keeping names within 255. */
const MAX_QUERY_LENGTH = 226;

/**
 * The reference's AsicContainerNameGenerator: the query id escaped as Java's URLEncoder does
 * (letters, digits and `.-*_` kept, space as `+`, the rest as UTF-8 `%XX`), cut to 226 characters,
 * then `-request` or `-response` and the record number in base 32.
 */
export function asicFileName(queryId: string, isResponse: boolean, recordId: number): string {
  const escaped = encodeURIComponent(queryId)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
  return `${escaped.slice(0, MAX_QUERY_LENGTH)}-${isResponse ? 'response' : 'request'}-${recordId.toString(32)}.asice`;
}
