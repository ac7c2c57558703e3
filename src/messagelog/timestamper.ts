/**
 * One timestamping round over the log file, as the reference's TimestamperWorker and its
 * Single/BatchTimestampRequest do: the oldest unstamped records (up to a limit) get one RFC 3161
 * timestamp from the first TSA, in configuration order, whose token verifies.
 *
 * - A lone record: the imprint is over its raw SignatureValue, and the token goes into its own copy
 *   of the signature (xades:SignatureTimeStamp).
 * - Several: leaves are their signature documents (`/META-INF/signatures.xml`), the token stamps
 *   `ts-hashchainresult.xml`, and each record keeps its own `ts-hashchain.xml`.
 *
 * This runs in the timestamper thread (timestamper-thread.ts): reading thousands of signatures and
 * building their hash chains takes seconds of CPU that must not stall the proxies' event loop. It
 * only reads; the result goes back as a plan that the writer applies in small transactions (on
 * SQLite one writer, so the proxies' inserts never wait on a lock).
 */
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { SqlDatabase } from '../storage/database.ts';
import { buildHashChains } from '../signature/hash-chain.ts';
import { requestTimestamp, verifyTimestamp, type TimestampingService } from '../signature/timestamp.ts';
import { parseSignature } from '../signature/verifier.ts';
import { addSignatureTimestamp } from '../signature/xades.ts';

export interface RoundRequest {
  readonly limit: number;
  readonly tsas: readonly TimestampingService[];
  /** The approved TSA certificates of the global configuration. */
  readonly tsaCerts: readonly Buffer[] | undefined;
  readonly timeoutMs: number;
}

/** What a round obtained, for the writer to store. */
export type StampPlan =
  | { readonly kind: 'none'; readonly deferred: boolean }
  | { readonly kind: 'single'; readonly recordId: number; readonly token: Buffer; readonly tsaUrl: string; readonly signatureXml: string; readonly hashChainResult: string | null }
  | {
      readonly kind: 'batch';
      readonly recordIds: readonly number[];
      readonly token: Buffer;
      readonly tsaUrl: string;
      readonly hashChainResult: string;
      /** Every record's `ts-hashchain.xml`, UTF-8, one after the other (one transferable buffer). */
      readonly chains: Buffer;
      /** Where each record's chain ends in `chains`. */
      readonly chainEnds: readonly number[];
    };

interface Task {
  id: number;
  xml: string;
  hash_chain_result: string | null;
}

const PLACE_FOR_TIMESTAMP = '<xades:UnsignedSignatureProperties>';

const SELECT_PENDING = `SELECT q.record_id AS id, s.xml, s.hash_chain_result FROM timestamp_queue q
  JOIN message_record m ON m.id = q.record_id JOIN signature s ON s.id = m.signature_id ORDER BY q.record_id LIMIT ?`;

export class Timestamper {
  constructor(private readonly db: SqlDatabase) {}

  /** @throws TimestampingFailed (every TSA's reason), or what reading the records threw */
  async round(req: RoundRequest): Promise<StampPlan> {
    let tasks = await this.db.all<Task>(SELECT_PENDING, [req.limit]);
    // Our embedding works on the layout xades.ts writes; a peer's signature in another layout
    // is stamped in a batch instead, once another record is waiting.
    if (tasks.length === 1 && !canEmbedTimestamp(tasks[0]!.xml)) {
      tasks = await this.db.all<Task>(SELECT_PENDING, [2]);
      if (tasks.length === 1) return { kind: 'none', deferred: true };
    }
    if (tasks.length === 0) return { kind: 'none', deferred: false };
    if (tasks.length === 1) {
      const task = tasks[0]!;
      const { token, url } = await timestamp(req, parseSignature(task.xml).signatureValue);
      return { kind: 'single', recordId: task.id, token, tsaUrl: url, signatureXml: addSignatureTimestamp(task.xml, token), hashChainResult: task.hash_chain_result };
    }
    const built = buildHashChains(
      tasks.map((t) => [{ uri: '/META-INF/signatures.xml', data: Buffer.from(t.xml, 'utf8') }]),
      '/ts-hashchain.xml',
    );
    const { token, url } = await timestamp(req, Buffer.from(built.result, 'utf8'));
    // Its own ArrayBuffer (never a slice of Node's shared pool), since it is transferred.
    let total = 0;
    for (const c of built.chains) total += Buffer.byteLength(c, 'utf8');
    const chains = Buffer.from(new ArrayBuffer(total));
    let end = 0;
    const chainEnds = built.chains.map((c) => (end += chains.write(c, end, 'utf8')));
    return { kind: 'batch', recordIds: tasks.map((t) => t.id), token, tsaUrl: url, hashChainResult: built.result, chains, chainEnds };
  }
}

/** A token over `data` from the first TSA whose answer verifies against its certificate and the approved list. */
async function timestamp(req: RoundRequest, data: Buffer): Promise<{ token: Buffer; url: string }> {
  if (req.tsas.length === 0) throw new XrdError('TimestampingFailed', { reason: 'No TSP service providers are configured.' });
  const reasons: string[] = [];
  for (const tsa of req.tsas) {
    try {
      const token = await requestTimestamp([tsa], data, req.timeoutMs);
      // As the reference's TimestampVerifier: the signer must be a TSA the global configuration approves.
      if (req.tsaCerts) verifyTimestamp(token, data, req.tsaCerts);
      return { token, url: tsa.url };
    } catch (err) {
      const e = toXrdError(err);
      reasons.push(e.code === 'TimestampingFailed' ? String(e.details.reason) : `${tsa.url}: ${e.message}`);
    }
  }
  throw new XrdError('TimestampingFailed', { reason: reasons.join('; ') });
}

/** Whether `addSignatureTimestamp` can put a token into this signature. */
function canEmbedTimestamp(signatureXml: string): boolean {
  return signatureXml.includes(PLACE_FOR_TIMESTAMP) && !signatureXml.includes('<xades:SignatureTimeStamp>');
}
