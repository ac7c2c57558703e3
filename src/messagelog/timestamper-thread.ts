/**
 * The message log's helper thread: runs timestamping rounds on its own (reading) connection to the
 * log file, archiving rounds (archiver.ts: building containers and archive files, its own short
 * transactions), and checkpoints the WAL, so that none of it stalls the proxies' event loop.
 * Started by MessageLog; talks by messages:
 *
 *   → { type: 'round', id, request }     ← { type: 'done', id, plan } | { type: 'failed', id, error }
 *   → { type: 'archive', id, settings }  ← { type: 'archived', id, result } | { type: 'failed', id, error }
 *   → { type: 'stop' }                     an archiving round in progress ends after the archive it is writing
 *   → { type: 'close' }                    the thread closes the file and ends
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toXrdError } from '../platform/errors.ts';
import { archiveRound, type ArchiveRoundResult, type ArchiveSettings } from './archiver.ts';
import { MessageLogReader, openDatabase } from './store.ts';
import { Timestamper, type RoundRequest, type StampPlan } from './timestamper.ts';

export interface ThreadData {
  readonly file: string;
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
const db = openDatabase(data.file, { create: false, durability: data.durability });
const timestamper = new Timestamper(db);
const reader = MessageLogReader.onConnection(db, data.file);
let stopping = false;

// PASSIVE: copies what it can without waiting for, or blocking, the writer and readers.
const checkpoints = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or closing: the next one catches up.
  }
}, data.checkpointIntervalMs);

port.on('message', (msg: ToThread) => {
  if (msg.type === 'stop') {
    stopping = true;
    return;
  }
  if (msg.type === 'close') {
    clearInterval(checkpoints);
    db.close();
    port.close();
    return;
  }
  const failed = (err: unknown) => {
    const e = toXrdError(err);
    port.postMessage({ type: 'failed', id: msg.id, error: { code: e.code, details: e.details, message: e.message } } satisfies FromThread);
  };
  if (msg.type === 'archive') {
    archiveRound(db, (id) => reader.record(id), msg.settings, () => stopping).then((result) => port.postMessage({ type: 'archived', id: msg.id, result } satisfies FromThread), failed);
    return;
  }
  // Buffers arrive as plain Uint8Arrays (structured clone).
  const buffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  const request: RoundRequest = { ...msg.request, tsas: msg.request.tsas.map((t) => ({ url: t.url, cert: buffer(t.cert) })), tsaCerts: msg.request.tsaCerts?.map(buffer) };
  timestamper.round(request).then(
    // The batch's chains (megabytes) move to the writer without a copy.
    (plan) => port.postMessage({ type: 'done', id: msg.id, plan } satisfies FromThread, plan.kind === 'batch' ? [plan.chains.buffer as ArrayBuffer] : []),
    failed,
  );
});
