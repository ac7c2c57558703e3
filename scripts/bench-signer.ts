/**
 * npm run bench:signer — signing through the daemon versus raw pkcs11js on the same SoftHSM token and
 * keys, in one run: RSA-2048 and EC P-256 at 1, 8 and 64 requests in flight. Prints ops/s, p50/p99
 * and the ratio daemon/raw (the daemon asked with `signBinary`, as the proxy asks; the JSON `sign`
 * beside it for comparison), the daemon's event-loop delay under load, and (to choose how signing
 * leaves the event loop) C_SignAsync versus worker threads calling C_Sign. The last line is one JSON
 * object with every figure. CPU per signature (this process, plus the daemon from /proc) is printed
 * beside the rates: on a shared machine it is the figure that does not follow the neighbours.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import pkcs11js from 'pkcs11js';
import { SignerClient } from '../src/signerapi/signer-client.ts';
import { defaultAdminSocket, defaultProxySocket } from '../src/signerapi/socket-paths.ts';
import { digestInfo } from '../src/signerapi/algorithms.ts';
import { createTestbed, initTokenWithSoftHsmUtil, type Testbed } from '../softhsm/testbed.ts';
import { cpuMs } from './process-cpu.ts';

const PIN = '98765';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LEVELS = [1, 8, 64] as const;
const KEYS = {
  rsa: { id: 'B1', keyType: 'rsa:2048', algorithm: 'SHA256withRSA', mechanism: pkcs11js.CKM_RSA_PKCS },
  ec: { id: 'B2', keyType: 'EC:prime256v1', algorithm: 'SHA256withECDSA', mechanism: pkcs11js.CKM_ECDSA },
} as const;
type KeyName = keyof typeof KEYS;

interface Result {
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /**
   * CPU time per signature, µs: this process's (process.cpuUsage), plus the daemon's from
   * /proc/<pid>/stat when `pid` is given. On a shared machine throughput follows whoever else runs;
   * CPU per signature does not, and it is what bounds throughput when signing saturates the cores.
   */
  cpuUsPerOp: number;
}

const digest = createHash('sha256').update('benchmark message').digest();
const inputs: Record<KeyName, Buffer> = { rsa: digestInfo('sha256', digest), ec: digest };

/** Runs `inFlight` loops of `op` for SECONDS (after a short warm-up) and measures them. */
async function measure(inFlight: number, op: (worker: number) => Promise<unknown>, daemonPid?: number): Promise<Result> {
  const warmUntil = performance.now() + 300;
  await Promise.all(Array.from({ length: inFlight }, async (_, w) => {
    while (performance.now() < warmUntil) await op(w);
  }));
  const cpuStart = process.cpuUsage();
  const daemonCpuStart = daemonPid === undefined ? 0 : 1000 * cpuMs(daemonPid);
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, w) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await op(w);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]! * 1000) / 1000;
  const own = process.cpuUsage(cpuStart);
  const cpuUs = own.user + own.system + (daemonPid === undefined ? 0 : 1000 * cpuMs(daemonPid) - daemonCpuStart);
  return { opsPerSecond: Math.round(latencies.length / elapsed), p50Ms: pct(0.5), p99Ms: pct(0.99), cpuUsPerOp: Math.round(cpuUs / latencies.length) };
}

function median(results: Result[]): Result {
  return [...results].sort((a, b) => a.opsPerSecond - b.opsPerSecond)[Math.floor(results.length / 2)]!;
}

/** The baseline: pkcs11js straight on the token, one session per request in flight, C_SignAsync. */
class RawSigner {
  readonly p11 = new pkcs11js.PKCS11();
  private readonly sessions: Buffer[] = [];
  private readonly keys = new Map<KeyName, Buffer>();

  constructor(library: string) {
    this.p11.load(library);
    this.p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    const slot = this.p11.C_GetSlotList(true).find((s) => this.p11.C_GetTokenInfo(s).label.trim() === 'bench')!;
    for (let i = 0; i < 64; i++) this.sessions.push(this.p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
    this.p11.C_Login(this.sessions[0]!, pkcs11js.CKU_USER, PIN);
    for (const [name, k] of Object.entries(KEYS) as [KeyName, (typeof KEYS)[KeyName]][]) {
      this.p11.C_FindObjectsInit(this.sessions[0]!, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_ID, value: Buffer.from(k.id, 'hex') },
      ]);
      this.keys.set(name, this.p11.C_FindObjects(this.sessions[0]!, 1)[0]!);
      this.p11.C_FindObjectsFinal(this.sessions[0]!);
    }
  }

  sign(key: KeyName, worker: number): Promise<Buffer> {
    const session = this.sessions[worker]!;
    this.p11.C_SignInit(session, { mechanism: KEYS[key].mechanism }, this.keys.get(key)!);
    return this.p11.C_SignAsync(session, inputs[key], Buffer.alloc(256));
  }
}

/** Worker threads each calling the synchronous C_Sign on their own session (the alternative design). */
async function workerThreads(library: string, count: number, key: KeyName): Promise<number> {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const pkcs11js = require('pkcs11js');
    const p11 = new pkcs11js.PKCS11();
    p11.load(workerData.library);
    // The library is initialised once per process (by the main thread); initialising it again from a
    // worker crashes pkcs11js, so workers only load it and share the process-wide state.
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === 'bench');
    const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_ID, value: Buffer.from(workerData.id, 'hex') }]);
    const handle = p11.C_FindObjects(session, 1)[0];
    p11.C_FindObjectsFinal(session);
    const input = Buffer.from(workerData.input);
    const out = Buffer.alloc(256);
    const end = Date.now() + workerData.ms;
    let n = 0;
    while (Date.now() < end) { p11.C_SignInit(session, { mechanism: workerData.mechanism }, handle); p11.C_Sign(session, input, out); n++; }
    p11.C_CloseSession(session);
    parentPort.postMessage(n);`;
  const ms = SECONDS * 1000;
  const counts = await Promise.all(
    Array.from({ length: count }, () => new Promise<number>((res, rej) => {
      const w = new Worker(code, { eval: true, workerData: { library, id: KEYS[key].id, mechanism: KEYS[key].mechanism, input: inputs[key], ms } });
      w.once('message', res);
      w.once('error', rej);
    })),
  );
  return Math.round(counts.reduce((a, b) => a + b, 0) / SECONDS);
}

function startDaemon(testbed: Testbed): Promise<ChildProcess> {
  return new Promise((res, rej) => {
    const child = spawn('node', [resolve(import.meta.dirname, 'xrd.mjs'), 'daemon', 'start', '--data-dir', testbed.dataDir, '--devices', testbed.devicesIni, '--pin-env', 'BENCH_PIN', '--token', 'bench', '--no-prompt'], {
      env: { ...testbed.env, BENCH_PIN: PIN, XRD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout!.on('data', (d) => String(d).includes('signer listening') && res(child));
    child.once('exit', (c) => rej(new Error(`daemon exited with ${c}`)));
  });
}

async function main(): Promise<void> {
  const testbed = createTestbed();
  initTokenWithSoftHsmUtil(testbed, 'bench', PIN);
  for (const k of Object.values(KEYS)) {
    execFileSync('pkcs11-tool', ['--module', testbed.library, '--token-label', 'bench', '--login', '--pin', PIN, '--keypairgen', '--key-type', k.keyType, '--id', k.id, '--label', k.id], { env: testbed.env, stdio: 'ignore' });
  }
  const raw = new RawSigner(testbed.library);
  const daemon = await startDaemon(testbed);
  // Several clients on the proxy socket, as several proxy workers would connect: one connection per request in flight, up to 8.
  const clients = await Promise.all(Array.from({ length: 8 }, () => SignerClient.connect(defaultProxySocket(defaultAdminSocket(testbed.dataDir)))));
  const figures: Record<string, number> = {};
  const rows: string[] = [];
  const loopDelays: number[] = [];
  try {
    console.log(`SoftHSM signing, median of ${ROUNDS} alternating rounds of ${SECONDS} s; daemon = request over the Unix socket to the signer daemon\n`);
    console.log('key      in flight   raw ops/s  p50 ms  p99 ms   daemon ops/s  p50 ms  p99 ms   daemon/raw   JSON sign/raw   CPU µs/sig raw  daemon+client  raw/daemon');
    for (const key of Object.keys(KEYS) as KeyName[]) {
      for (const inFlight of LEVELS) {
        // The machine is shared and noisy: alternate raw and daemon rounds and keep the median of each.
        const rawRounds: Result[] = [];
        const daemonRounds: Result[] = [];
        const jsonRounds: Result[] = [];
        const connections = Math.min(inFlight, clients.length);
        for (let round = 0; round < ROUNDS; round++) {
          rawRounds.push(await measure(inFlight, (w) => raw.sign(key, w)));
          await clients[0]!.call('health', { resetStats: true });
          daemonRounds.push(await measure(inFlight, (w) => clients[w % connections]!.call('signBinary', { keyId: KEYS[key].id, algorithm: KEYS[key].algorithm, digest }), daemon.pid));
          const health = await clients[0]!.call('health', {});
          if (inFlight > 1) loopDelays.push(health.eventLoopDelay.p99Ms);
          jsonRounds.push(await measure(inFlight, (w) => clients[w % connections]!.call('sign', { keyId: KEYS[key].id, algorithm: KEYS[key].algorithm, digest: digest.toString('base64') })));
        }
        const r = median(rawRounds);
        const d = median(daemonRounds);
        const ratio = Math.round((d.opsPerSecond / r.opsPerSecond) * 100) / 100;
        const jsonRatio = Math.round((median(jsonRounds).opsPerSecond / r.opsPerSecond) * 100) / 100;
        const cpuRaw = Math.min(...rawRounds.map((x) => x.cpuUsPerOp));
        const cpuDaemon = Math.min(...daemonRounds.map((x) => x.cpuUsPerOp));
        const cpuRatio = Math.round((cpuRaw / cpuDaemon) * 100) / 100;
        Object.assign(figures, {
          [`${key}_raw_ops_${inFlight}`]: r.opsPerSecond,
          [`${key}_daemon_ops_${inFlight}`]: d.opsPerSecond,
          [`${key}_daemon_p50_ms_${inFlight}`]: d.p50Ms,
          [`${key}_daemon_p99_ms_${inFlight}`]: d.p99Ms,
          [`${key}_ratio_${inFlight}`]: ratio,
          [`${key}_json_ratio_${inFlight}`]: jsonRatio,
          [`${key}_raw_cpu_us_${inFlight}`]: cpuRaw,
          [`${key}_daemon_cpu_us_${inFlight}`]: cpuDaemon,
          [`${key}_cpu_ratio_${inFlight}`]: cpuRatio,
        });
        const row = `${key.padEnd(8)} ${String(inFlight).padStart(9)} ${String(r.opsPerSecond).padStart(11)} ${r.p50Ms.toFixed(2).padStart(7)} ${r.p99Ms.toFixed(2).padStart(7)} ${String(d.opsPerSecond).padStart(14)} ${d.p50Ms.toFixed(2).padStart(7)} ${d.p99Ms.toFixed(2).padStart(7)} ${ratio.toFixed(2).padStart(12)} ${jsonRatio.toFixed(2).padStart(15)} ${String(cpuRaw).padStart(16)} ${String(cpuDaemon).padStart(14)} ${cpuRatio.toFixed(2).padStart(11)}`;
        rows.push(row);
        console.log(row);
      }
    }
    loopDelays.sort((a, b) => a - b);
    figures.loop_delay_p99_ms = loopDelays[Math.floor(loopDelays.length / 2)]!;
    console.log(`\ndaemon event-loop delay p99 under load (8 and 64 in flight), median of ${loopDelays.length} rounds: ${figures.loop_delay_p99_ms} ms (worst ${loopDelays.at(-1)} ms)`);

    console.log('\nleaving the event loop, raw at 8 in flight: C_SignAsync (libuv pool; C_SignInit stays on the loop) vs worker threads with C_SignInit + C_Sign');
    for (const key of Object.keys(KEYS) as KeyName[]) {
      const before = performance.eventLoopUtilization();
      const asyncOps = (await measure(8, (w) => raw.sign(key, w))).opsPerSecond;
      const loopBusy = Math.round(performance.eventLoopUtilization(before).utilization * 100);
      const threads2 = await workerThreads(testbed.library, 2, key);
      const threads4 = await workerThreads(testbed.library, 4, key);
      Object.assign(figures, { [`${key}_async_ops_8`]: asyncOps, [`${key}_async_loop_busy_pct`]: loopBusy, [`${key}_worker_threads_2_ops`]: threads2, [`${key}_worker_threads_4_ops`]: threads4 });
      console.log(`${key}: C_SignAsync ${asyncOps} ops/s with the event loop ${loopBusy} % busy; worker threads: 2 → ${threads2} ops/s, 4 → ${threads4} ops/s (loop idle)`);
    }
  } finally {
    clients.forEach((c) => c.close());
    daemon.kill('SIGTERM');
    testbed.cleanup();
  }
  console.log(JSON.stringify(figures));
  process.exit(0);
}

await main();
