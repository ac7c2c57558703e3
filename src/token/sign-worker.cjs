// Worker thread of the token layer: runs C_SignInit + C_Sign for the main thread, so neither the
// key set-up (which SoftHSM makes expensive) nor the signature runs on the event loop.
// The library is already initialised by the main thread; PKCS#11 state (sessions, object handles,
// login) is per process, so the handles the main thread sends are valid here. Calling C_Initialize
// again from a worker would crash pkcs11js, so this thread only loads the library.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const pkcs11js = require('pkcs11js');

const p11 = new pkcs11js.PKCS11();
p11.load(workerData.library);

const asBuffer = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

parentPort.on('message', (job) => {
  try {
    const session = asBuffer(job.session);
    const mechanism = job.mechanism.parameter && job.mechanism.parameter.type === undefined
      ? { mechanism: job.mechanism.mechanism, parameter: asBuffer(job.mechanism.parameter) }
      : job.mechanism;
    p11.C_SignInit(session, mechanism, asBuffer(job.key));
    const signature = p11.C_Sign(session, asBuffer(job.data), Buffer.alloc(job.maxLength));
    parentPort.postMessage({ id: job.id, signature });
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: { message: err.message, code: err.code, method: err.method } });
  }
});
