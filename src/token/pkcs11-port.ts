/**
 * The narrow port to a PKCS#11 library: the only file that imports pkcs11js. Everything above it sees
 * `Pkcs11Port`, the handful of calls the token layer needs, so unit tests can inject a fake.
 */
import { Worker } from 'node:worker_threads';
import pkcs11js from 'pkcs11js';
import { XrdError } from '../platform/errors.ts';
import { LoopSigning, type SignatureTimes } from './loop-signing.ts';

export type Handle = Buffer;
export type Attribute = pkcs11js.Attribute;
export type Mechanism = pkcs11js.Mechanism;
export type TokenInfo = pkcs11js.TokenInfo;
export type RsaPSS = pkcs11js.RsaPSS;

type Pkcs11Calls = Pick<
  pkcs11js.PKCS11,
  | 'C_Finalize'
  | 'C_GetSlotList'
  | 'C_GetTokenInfo'
  | 'C_GetMechanismList'
  | 'C_GetMechanismInfo'
  | 'C_InitToken'
  | 'C_InitPIN'
  | 'C_SetPIN'
  | 'C_OpenSession'
  | 'C_CloseSession'
  | 'C_GetSessionInfo'
  | 'C_Login'
  | 'C_Logout'
  | 'C_FindObjectsInit'
  | 'C_FindObjects'
  | 'C_FindObjectsFinal'
  | 'C_GetAttributeValue'
  | 'C_SetAttributeValue'
  | 'C_CreateObject'
  | 'C_DestroyObject'
  | 'C_GenerateKeyPairAsync'
  | 'C_VerifyInit'
  | 'C_Verify'
>;

export interface Pkcs11Port extends Pkcs11Calls {
  /**
   * C_SignInit + C_Sign on `session`: on a signing thread, or on the event loop when the threads
   * are idle and the key's signatures have been quick (SignThreads, loop-signing.ts). Rejects with
   * a pkcs11js Pkcs11Error carrying the CKR code, like the other calls. `timesOf` names the key and
   * mechanism stably (token, key id, mechanism), since object handles repeat across slots and are reused.
   */
  sign(session: Handle, mechanism: Mechanism, key: Handle, data: Buffer, maxLength: number, timesOf: string): Promise<Buffer>;
  /**
   * Signatures made so far on the event loop and on the signing threads (the signer's `health`);
   * absent where the library signs with C_SignAsync.
   */
  signCounts?(): { loop: number; threads: number };
}

/** PKCS#11 constants (CKA_*, CKR_*, CKM_*, CKF_*, …). */
export const ck = pkcs11js;

/** Libraries already initialised in this process, so two sections naming one library share it. */
const loaded = new Map<string, Pkcs11Port>();

/**
 * Loads and initialises a PKCS#11 library once per process: pkcs11js crashes when a library is
 * initialised twice, so one instance is kept for the life of the process.
 * @throws Error with the library's message when it cannot be loaded or initialised
 */
export function loadPkcs11Module(library: string, options: { osLockingOk: boolean; cantCreateThreads: boolean; signThreads: number }): Pkcs11Port {
  const existing = loaded.get(library);
  if (existing) return existing;
  const module = new pkcs11js.PKCS11();
  module.load(library);
  let flags = 0;
  if (options.osLockingOk) flags |= pkcs11js.CKF_OS_LOCKING_OK;
  if (options.cantCreateThreads) flags |= pkcs11js.CKF_LIBRARY_CANT_CREATE_OS_THREADS;
  try {
    module.C_Initialize({ flags });
  } catch (err) {
    if (ckrOf(err) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
  }
  let signing: Pick<Pkcs11Port, 'sign' | 'signCounts'>;
  if (sharesStateAcrossLoads(library)) {
    const signers = new SignThreads(module, library, options.signThreads);
    signing = {
      sign: (session, mechanism, key, data, maxLength, timesOf) => signers.sign(session, mechanism, key, data, maxLength, timesOf),
      signCounts: () => ({ ...signers.onLoop.counts }),
    };
  } else {
    // Only C_Sign leaves the event loop; C_SignInit stays on it (see sharesStateAcrossLoads).
    signing = {
      sign: async (session, mechanism, key, data, maxLength) => {
        module.C_SignInit(session, mechanism, key);
        return module.C_SignAsync(session, data, Buffer.alloc(maxLength));
      },
    };
  }
  const port = Object.assign(module, signing);
  loaded.set(library, port);
  return port;
}

/**
 * Whether the library, loaded again (as each signing thread loads it), sees the state of the first
 * load: its initialisation, sessions and login. PKCS#11 state is per process, so most libraries
 * do; a forwarding module may keep it per C_GetFunctionList instead — p11-kit's client opens a
 * connection of its own for each — and then the signing threads could not use the main thread's
 * sessions. Such a library signs with C_SignAsync instead.
 */
function sharesStateAcrossLoads(library: string): boolean {
  const probe = new pkcs11js.PKCS11();
  probe.load(library);
  try {
    probe.C_GetSlotList(false);
    return true;
  } catch (err) {
    if (ckrOf(err) === pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED) return false;
    throw err;
  } finally {
    // Only the probe's handle on the library (dlclose; the first load keeps it mapped), never C_Finalize.
    probe.close();
  }
}

/** Nice value of the signing threads (see sign-worker.cjs). */
const SIGN_THREAD_NICE = 3;

interface SignJob {
  resolve: (signature: Buffer) => void;
  reject: (err: Error) => void;
  /** Where the thread's time for it goes. */
  times: SignatureTimes;
}

interface SignThread {
  readonly worker: Worker;
  readonly jobs: Map<number, SignJob>;
}

/** Bytes before each record's signature or error in a reply batch: sign-worker.cjs's RECORD_HEAD. */
const RECORD_HEAD = 13;

/** A failed job's record in a reply batch (sign-worker.cjs). */
type SignFailure = { message: string; code?: number; method?: string };

/**
 * Worker threads that run C_SignInit + C_Sign (sign-worker.cjs). Measured on SoftHSM
 * (docs/token-layer.md): C_SignInit costs about as much as an EC signature and is synchronous in
 * pkcs11js, so C_SignAsync would still run it on the event loop; in a worker, both leave the loop
 * free for the socket.
 *
 * A lone signature on idle threads is made on the event loop instead when the key's signatures
 * have been quick (loop-signing.ts says when).
 */
class SignThreads {
  private readonly threads: SignThread[] = [];
  private nextId = 1;
  readonly onLoop = new LoopSigning();

  constructor(
    private readonly p11: pkcs11js.PKCS11,
    library: string,
    count: number,
  ) {
    for (let i = 0; i < count; i++) {
      const thread: SignThread = { worker: new Worker(new URL('./sign-worker.cjs', import.meta.url), { workerData: { library, nice: SIGN_THREAD_NICE } }), jobs: new Map() };
      thread.worker.on('message', (reply: Uint8Array) => {
        // A batch of records: id (u32 LE), status (0 signature, 1 error as JSON), µs the token took
        // (u32 LE), length (u32 LE), bytes.
        const batch = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
        for (let at = 0; at + RECORD_HEAD <= batch.length; ) {
          const id = batch.readUInt32LE(at);
          const failed = batch[at + 4] === 1;
          const micros = batch.readUInt32LE(at + 5);
          const bytes = batch.subarray(at + RECORD_HEAD, at + RECORD_HEAD + batch.readUInt32LE(at + 9));
          at += RECORD_HEAD + bytes.length;
          const job = thread.jobs.get(id);
          if (!job) continue;
          thread.jobs.delete(id);
          this.onLoop.threadSigned(job.times, micros / 1000, !failed);
          if (!failed) {
            job.resolve(bytes);
            continue;
          }
          const error = JSON.parse(bytes.toString('utf8')) as SignFailure;
          job.reject(error.code !== undefined ? new pkcs11js.Pkcs11Error(error.message, error.code, error.method) : new XrdError('InternalError', { reason: `signing thread: ${error.message}` }));
        }
        if (thread.jobs.size === 0) thread.worker.unref();
      });
      thread.worker.on('error', (err) => {
        // A dead thread fails only what it held; the others keep serving.
        this.threads.splice(this.threads.indexOf(thread), 1);
        for (const job of thread.jobs.values()) job.reject(err);
        thread.jobs.clear();
      });
      thread.worker.unref();
      this.threads.push(thread);
    }
  }

  sign(session: Handle, mechanism: Mechanism, key: Handle, data: Buffer, maxLength: number, timesOf: string): Promise<Buffer> {
    if (this.threads.length === 0) return Promise.reject(new XrdError('InternalError', { reason: 'no signing thread is running' }));
    const times = this.onLoop.timesOf(timesOf);
    if (this.onLoop.allows(times, this.threads.some((t) => t.jobs.size > 0))) {
      try {
        return Promise.resolve(this.onLoop.run(times, () => {
          this.p11.C_SignInit(session, mechanism, key);
          return this.p11.C_Sign(session, data, Buffer.alloc(maxLength));
        }));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const thread = this.threads.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    // Ids wrap within the job's u32 field, as the signer client's do.
    const id = this.nextId;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    let job: Uint8Array;
    try {
      job = encodeSignJob(id, session, mechanism, key, data, maxLength);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      // Referenced only while it holds work: an idle thread never keeps the process alive.
      if (thread.jobs.size === 0) thread.worker.ref();
      thread.jobs.set(id, { resolve, reject, times });
      thread.worker.postMessage(job, [job.buffer as ArrayBuffer]);
    });
  }
}

/**
 * One sign job in one buffer: id, signature length, mechanism (with RSA-PSS parameters when
 * present), then session handle, key handle and data. Read back by sign-worker.cjs.
 */
function encodeSignJob(id: number, session: Handle, mechanism: Mechanism, key: Handle, data: Buffer, maxLength: number): Uint8Array {
  if (session.length !== key.length) throw new XrdError('InternalError', { reason: 'session and key handles differ in size' });
  const job = Buffer.alloc(28 + session.length + key.length + data.length);
  job.writeUInt32LE(id, 0);
  job.writeUInt32LE(maxLength, 4);
  job.writeUInt32LE(mechanism.mechanism, 8);
  const pss = mechanism.parameter as RsaPSS | undefined;
  if (pss) {
    job[12] = 1;
    job.writeUInt32LE(pss.hashAlg, 16);
    job.writeUInt32LE(pss.mgf, 20);
    job.writeUInt32LE(pss.saltLen, 24);
  }
  job[13] = session.length;
  session.copy(job, 28);
  key.copy(job, 28 + session.length);
  data.copy(job, 28 + 2 * session.length);
  return job;
}

/** The CKR_* value of a pkcs11js error, or undefined for anything else. */
export function ckrOf(err: unknown): number | undefined {
  return err instanceof pkcs11js.Pkcs11Error ? err.code : undefined;
}

const CKR_NAMES = new Map<number, string>(
  Object.entries(pkcs11js)
    .filter(([name, value]) => name.startsWith('CKR_') && typeof value === 'number')
    .map(([name, value]) => [value as number, name]),
);

export function ckrName(code: number | undefined): string {
  return code === undefined ? 'unknown' : (CKR_NAMES.get(code) ?? `0x${code.toString(16)}`);
}
