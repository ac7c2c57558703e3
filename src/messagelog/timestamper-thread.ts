/**
 * The message log's helper thread: runs timestamping rounds on its own connection to the log's
 * database, archiving rounds (archiver.ts: building containers and archive files, its own short
 * transactions), and on SQLite checkpoints the WAL, so that none of it stalls the proxies' event
 * loop. Started by MessageLog; talks by messages:
 *
 *   → { type: 'round', id, request }     ← { type: 'done', id, plan } | { type: 'failed', id, error }
 *   → { type: 'archive', id, settings }  ← { type: 'archived', id, result } | { type: 'failed', id, error }
 *   → { type: 'stop' }                     an archiving round in progress ends after the archive it is writing
 *   → { type: 'close' }                    the thread closes its connection and ends
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toXrdError } from '../platform/errors.ts';
import type { SqlDatabase } from '../storage/database.ts';
import { archiveRound, type ArchiveRoundResult, type ArchiveSettings } from './archiver.ts';
import { MessageLogReader, openLogDatabase, type MessageLogLocation } from './store.ts';
import { Timestamper, type RoundRequest, type StampPlan } from './timestamper.ts';

export interface ThreadData {
  readonly location: MessageLogLocation;
  readonly durability: 'process' | 'power' | undefined;
  readonly checkpointIntervalMs: number;
}

export type ToThread = { type: 'round'; id: number; request: RoundRequest } | { type: 'archive'; id: number; settings: ArchiveSettings } | { type: 'stop' } | { type: 'close' };
export type FromThread =
  | { type: 'done'; id: number; plan: StampPlan }
  | { type: 'archived'; id: number; result: ArchiveRoundResult }
  | { type: 'failed'; id: number; error: { code: string; details: Record<string, unknown>; message: string } };

const port = parentPort!;
const data = workerData as ThreadData;
let stopping = false;
let checkpoints: NodeJS.Timeout | undefined;
let opened: Promise<SqlDatabase> | undefined;

/** The thread's connection; a failed open is tried again by the next call (the database may be back). */
function database(): Promise<SqlDatabase> {
  opened ??= openLogDatabase(data.location.database, { create: false, durability: data.durability }).then(
    (db) => {
      // PASSIVE: copies what it can without waiting for, or blocking, the writer and readers.
      if (db.engine === 'sqlite') checkpoints ??= setInterval(() => void db.exec('PRAGMA wal_checkpoint(PASSIVE)').catch(() => undefined), data.checkpointIntervalMs);
      return db;
    },
    (err: unknown) => {
      opened = undefined;
      throw err;
    },
  );
  return opened;
}
// At once: on SQLite the checkpoints run from the start.
database().catch(() => undefined);

port.on('message', (msg: ToThread) => {
  if (msg.type === 'stop') {
    stopping = true;
    return;
  }
  if (msg.type === 'close') {
    clearInterval(checkpoints);
    void (opened ?? Promise.resolve(undefined))
      .then((db) => db?.close(), () => undefined)
      .finally(() => port.close());
    return;
  }
  database()
    .then((db) => handle(db, msg))
    .catch((err: unknown) => {
      const e = toXrdError(err);
      port.postMessage({ type: 'failed', id: msg.id, error: { code: e.code, details: e.details, message: e.message } } satisfies FromThread);
    });
});
async function handle(db: SqlDatabase, msg: Extract<ToThread, { id: number }>): Promise<void> {
  if (msg.type === 'archive') {
    const reader = MessageLogReader.onDatabase(db, data.location);
    const result = await archiveRound(db, (id) => reader.record(id), msg.settings, () => stopping);
    port.postMessage({ type: 'archived', id: msg.id, result } satisfies FromThread);
    return;
  }
  // Buffers arrive as plain Uint8Arrays (structured clone).
  const buffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  const request: RoundRequest = { ...msg.request, tsas: msg.request.tsas.map((t) => ({ url: t.url, cert: buffer(t.cert) })), tsaCerts: msg.request.tsaCerts?.map(buffer) };
  const plan = await new Timestamper(db).round(request);
  // The batch's chains (megabytes) move to the writer without a copy.
  port.postMessage({ type: 'done', id: msg.id, plan } satisfies FromThread, plan.kind === 'batch' ? [plan.chains.buffer as ArrayBuffer] : []);
}
