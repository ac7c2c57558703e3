// Worker thread of the token layer: runs C_SignInit + C_Sign for the main thread, so neither the
// key set-up (which SoftHSM makes expensive) nor the signature runs on the event loop.
// The library is already initialised by the main thread; PKCS#11 state (sessions, object handles,
// login) is per process, so the handles the main thread sends are valid here. Calling C_Initialize
// again from a worker would crash pkcs11js, so this thread only loads the library.
//
// Jobs arrive packed in one transferred buffer (structured cloning of objects cost more than the
// signature on fast keys); see encodeSignJob in pkcs11-port.ts for the layout.
'use strict';
const { setPriority } = require('node:os');
const { parentPort, workerData } = require('node:worker_threads');
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

parentPort.on('message', (packed) => {
  const job = Buffer.from(packed);
  const id = job.readUInt32LE(0);
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
    // The reply is the job id followed by the signature, in one transferred buffer.
    const reply = Buffer.alloc(4 + maxLength);
    reply.writeUInt32LE(id, 0);
    const signature = p11.C_Sign(session, job.subarray(28 + 2 * handleLength), reply.subarray(4));
    const out = reply.subarray(0, 4 + signature.length);
    parentPort.postMessage(out, [out.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: { message: err.message, code: err.code, method: err.method } });
  }
});
