// Worker thread of the token layer: runs C_SignInit + C_Sign for the main thread, so neither the
// key set-up (which SoftHSM makes expensive) nor the signature runs on the event loop (except a
// lone quick one while the threads are idle, loop-signing.ts).
// The library is already initialised by the main thread; PKCS#11 state (sessions, object handles,
// login) is per process, so the handles the main thread sends are valid here. Calling C_Initialize
// again from a worker would crash pkcs11js, so this thread only loads the library.
//
// Jobs arrive packed in one transferred buffer (structured cloning of objects cost more than the
// signature on fast keys); see encodeSignJob in pkcs11-port.ts for the layout. Replies go back in
// batches: after a job, the jobs already queued are taken at once (receiveMessageOnPort) and their
// replies posted together, because one postMessage cost a sixth of this thread's time under load
// with EC keys (npm run bench:signer, --cpu-prof; docs/benchmarks.md "issue 16").
// A reply batch is records of: job id (u32 LE) · status (u8: 0 signature, 1 error) · the µs
// C_SignInit + C_Sign took (u32 LE; the daemon decides by it whether a key signs quickly enough to
// sign on its event loop, loop-signing.ts) · length (u32 LE) · the signature, or the error as
// JSON {message, code, method}.
'use strict';
const { setPriority } = require('node:os');
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const pkcs11js = require('pkcs11js');

// On Linux the nice value is per thread, and 0 names the calling one: signing (CPU-bound with a
// software token) yields to the event loop, so the socket stays responsive under full load and
// signing still gets every cycle the loop leaves.
try {
  setPriority(0, workerData.nice);
} catch {
  // Not permitted or not supported here: the thread runs at normal priority.
}

const p11 = new pkcs11js.PKCS11();
p11.load(workerData.library);

/** At most this many replies wait for the batch they are in: bounds the latency batching adds. */
const MAX_BATCH = 16;
/** pkcs11-port.ts reads records with the same RECORD_HEAD. */
const RECORD_HEAD = 13;
let scratch = Buffer.allocUnsafe(64 * 1024);
let used = 0;

function reserve(bytes) {
  if (used + bytes <= scratch.length) return;
  const grown = Buffer.allocUnsafe(Math.max(2 * scratch.length, used + bytes));
  scratch.copy(grown, 0, 0, used);
  scratch = grown;
}

function run(packed) {
  const job = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  const id = job.readUInt32LE(0);
  const start = performance.now();
  try {
    const maxLength = job.readUInt32LE(4);
    const mechanism = { mechanism: job.readUInt32LE(8) };
    if (job[12] === 1) {
      mechanism.parameter = { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: job.readUInt32LE(16), mgf: job.readUInt32LE(20), saltLen: job.readUInt32LE(24) };
    }
    const handleLength = job[13];
    const session = job.subarray(28, 28 + handleLength);
    const key = job.subarray(28 + handleLength, 28 + 2 * handleLength);
    p11.C_SignInit(session, mechanism, key);
    // The signature is written straight into the reply batch, after its record head.
    reserve(RECORD_HEAD + maxLength);
    const signature = p11.C_Sign(session, job.subarray(28 + 2 * handleLength), scratch.subarray(used + RECORD_HEAD, used + RECORD_HEAD + maxLength));
    record(id, 0, start, signature.length);
  } catch (err) {
    const text = Buffer.from(JSON.stringify({ message: err.message, code: err.code, method: err.method }));
    reserve(RECORD_HEAD + text.length);
    text.copy(scratch, used + RECORD_HEAD);
    record(id, 1, start, text.length);
  }
}

function record(id, status, start, length) {
  scratch.writeUInt32LE(id, used);
  scratch[used + 4] = status;
  scratch.writeUInt32LE(Math.min(0xffffffff, Math.round(1000 * (performance.now() - start))), used + 5);
  scratch.writeUInt32LE(length, used + 9);
  used += RECORD_HEAD + length;
}

parentPort.on('message', (packed) => {
  run(packed);
  for (let n = 1; n < MAX_BATCH; n++) {
    const next = receiveMessageOnPort(parentPort);
    if (next === undefined) break;
    run(next.message);
  }
  // Memory of its own, exactly the batch: Buffer.from would take a small copy from Node's shared
  // pool, which Node 21+ refuses to transfer (DataCloneError kills the thread) and Node 20 copies whole.
  const out = new Uint8Array(used);
  out.set(scratch.subarray(0, used));
  used = 0;
  parentPort.postMessage(out, [out.buffer]);
});
