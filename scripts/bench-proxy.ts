/**
 * npm run bench:proxy — the local instance (two security servers, each with its SoftHSM token,
 * signer daemon and proxy process) under load, in one run:
 * (a) the getRandom test service called directly, and
 * (b) the same call through both security servers (client proxy → signed, mTLS with HSM-held auth
 *     keys → server proxy → verified, access checked, service called, response signed → verified,
 *     both logged and monitored on both servers),
 * (c) the floor: the same two hops through bare forwarders (scripts/bench-forwarder.mjs: plain HTTP in,
 *     kept-alive mutual TLS between them, HTTP to the service; no X-Road work at all), which shows
 *     how much of (b)'s cost is Node's HTTP and TLS plumbing and how much is the security servers' work,
 * at 1, 16 and 64 concurrent clients over kept-alive connections: calls/s, p50 and p99 latency, and
 * for (b) the CPU time each process on the way spent per call (/proc/<pid>/stat: each proxy, the
 * signers, this process), where a call's time goes: the mean of each pipeline stage on each side
 * (receive, authenticate, authorize, sign = the signer round trip, log = the message log commits,
 * send, verify, answer), read from the proxies' xrd_proxy_stage_duration_seconds histograms before
 * and after the run, how many calls share a signature and what a signature costs in the signer
 * (`health`), and at 1 client how many of the run's signatures each signer made on its event loop
 * and on its signing threads. Every figure covers the measured calls only, not load()'s warm-up.
 * The levels are measured after a warm-up (warmUp: V8 has optimised the path, the warm-up's records
 * are timestamped); one 1-client run right after the start (after load()'s own 50 warm-up calls)
 * shows what calls find before V8 has optimised the path. Two more readings set the issue 16
 * targets against figures of the same run: at 1 client, the part of the p50 spent outside the
 * proxies (the forwarders' call and the signers' time on the two signatures, outsideTheProxies); at
 * the highest level, the CPU per call of every process on the way (the signers and this process
 * too) against the cores' time, and what it leaves each proxy (cpuBudget).
 * Separately, the cost of a full mutual TLS handshake with the client side's authentication key on
 * the HSM (signature by the signer through the engine) against the provider's server proxy.
 * `--store postgres` adds, in the same run, the calls through both servers with the stores that can
 * live in PostgreSQL (docs/storage.md) there, in a throw-away cluster, beside the SQLite figures; `--cluster` adds them through ss1
 * as two nodes behind HAProxy (docs/cluster.md); each at 1 and 64 clients, as ratios to SQLite.
 * The last line is one JSON object with every figure.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { getRandomRequest } from '../src/dev/localinstance/first-calls.ts';
import { startLocalInstance, type LocalInstance, type LocalInstanceOptions } from '../src/dev/localinstance/local-instance.ts';
import { messageLogFileIn, messageLogLocation, openLogDatabase } from '../src/messagelog/store.ts';
import { silentLogger } from '../src/platform/logger.ts';
import type { SqlDatabase } from '../src/storage/database.ts';
import { changeServerConfIn } from '../src/serverconf/store.ts';
import { SignerClient } from '../src/signerapi/signer-client.ts';
import { authKeyTlsOptions } from '../src/tls/auth-key-tls.ts';
import { freeLocalPorts, freePort } from '../test/support/net.ts';
import { cpuMs, machineCpuMs, postGetRandom as post, warmUpAt } from './process-cpu.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** Load before the measured levels (warmUp); 0 measures them right after the cold run. */
const WARM_SECONDS = Number(process.env.BENCH_WARM_SECONDS ?? 20);
/** The longest warmUp waits for the warm-up's records to be timestamped: past one timestamping interval (60 s) and a round. */
const SETTLE_LIMIT_MS = 120_000;
const CONCURRENCY = [1, 16, 64];
/** The variants `--store postgres` and `--cluster` add, measured at these client counts. */
const VARIANT_CONCURRENCY = [1, 64];
const VARIANTS: { name: string; flag: boolean; options: Pick<LocalInstanceOptions, 'store' | 'cluster'> }[] = [
  { name: 'postgres', flag: process.argv.includes('--store') && process.argv[process.argv.indexOf('--store') + 1] === 'postgres', options: { store: 'postgres' } },
  { name: 'cluster', flag: process.argv.includes('--cluster'), options: { cluster: true } },
];

interface Result {
  calls: number;
  perSecond: number;
  p50: number;
  p99: number;
  failed: number;
}

/**
 * `concurrency` clients each calling in a loop for SECONDS; latency percentiles over every call.
 * After the warm-up (warmUpAt), `atStart` runs: what it reads (CPU times, counters) covers the
 * measured calls only.
 */
async function load(concurrency: number, callOnce: () => Promise<boolean>, atStart?: () => Promise<void>): Promise<Result> {
  await warmUpAt(concurrency, callOnce);
  await atStart?.();
  const latencies: number[] = [];
  let failed = 0;
  const end = performance.now() + SECONDS * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      const ok = await callOnce().catch(() => false);
      if (ok) latencies.push(performance.now() - start);
      else failed++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN);
  return { calls: latencies.length + failed, perSecond: Math.round(latencies.length / elapsed), p50: at(0.5), p99: at(0.99), failed };
}

const round = (v: number) => Math.round(v * 100) / 100;

/** Sum and count of each series of xrd_proxy_stage_duration_seconds, by `direction/stage`. */
async function stageTotals(monitoringUrl: string, apiKey: string): Promise<Map<string, { sum: number; count: number }>> {
  const text = await (await fetch(`${monitoringUrl}/metrics`, { headers: { Authorization: `X-Road-ApiKey token=${apiKey}` } })).text();
  const totals = new Map<string, { sum: number; count: number }>();
  for (const m of text.matchAll(/^xrd_proxy_stage_duration_seconds_(sum|count)\{direction="(\w+)",stage="(\w+)"\} ([\d.eE+-]+)$/gm)) {
    const key = `${m[2]}/${m[3]}`;
    const entry = totals.get(key) ?? { sum: 0, count: 0 };
    entry[m[1] as 'sum' | 'count'] = Number(m[4]);
    totals.set(key, entry);
  }
  return totals;
}

/**
 * What the signer behind `socket` has signed since it started (`health`): signatures made on its
 * event loop and on its signing threads (`signedOn`, counted per PKCS#11 library: sections naming one
 * library repeat its counts), and the `sign` requests with the time the daemon spent on them, from
 * dispatching the request to the signature (`signatures`: the token's work and the daemon's own
 * around it, not the socket read and write).
 */
async function signerCounts(socket: string): Promise<{ loop: number; threads: number; requests: number; seconds: number }> {
  const signer = await SignerClient.connect(socket);
  try {
    const health = await signer.call('health', {});
    const libraries = new Map(health.modules.map((m) => [m.library, m.signedOn ?? { loop: 0, threads: 0 }]));
    const signedOn = [...libraries.values()].reduce((sum, n) => ({ loop: sum.loop + n.loop, threads: sum.threads + n.threads }), { loop: 0, threads: 0 });
    const requests = health.signatures.keys.reduce((sum, k) => ({ requests: sum.requests + k.duration.count, seconds: sum.seconds + k.duration.sumSeconds }), { requests: 0, seconds: 0 });
    return { ...signedOn, ...requests };
  } finally {
    signer.close();
  }
}

/** Mean ms per call of each stage between two scrapes (a stage run twice per call, like log, counts both). */
function stageBreakdown(before: Map<string, { sum: number; count: number }>, after: Map<string, { sum: number; count: number }>, calls: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, a] of after) {
    const b = before.get(key) ?? { sum: 0, count: 0 };
    if (a.count > b.count) out[key] = round(((a.sum - b.sum) * 1000) / calls);
  }
  return out;
}

/**
 * At 1 client, the part of a call's p50 spent outside the proxies: the bare forwarders' call (both
 * hops, TLS between them, the service) and the signers' time on the call's two signatures (from
 * dispatch to signature: SoftHSM's work and the daemon's around it). The rest is the proxies' work
 * and their hops to the signers. Their CPU per call is printed beside it; not all of it is on the
 * call's path (other threads, work done after the answer).
 */
function outsideTheProxies(proxied: Result, cpu: PathCpu, floor: Result, signing: number): Record<string, number> {
  const outside = round(floor.p50 + signing);
  process.stdout.write(
    `1 client, outside the proxies: the bare forwarders' p50 ${floor.p50} ms + the signers' time on the two signatures ${signing} ms (dispatch to signature, SoftHSM included) = ${outside} ms; ` +
      `the other ${round(proxied.p50 - outside)} ms of the p50 ${proxied.p50} ms are the proxies' work and their hops to the signers (CPU per call, not all on the call's path: client proxy ${cpu.client} ms, server proxy ${cpu.server} ms)\n`,
  );
  return { signing_ms_per_call_1: signing, outside_proxies_ms_1: outside };
}

/**
 * The most calls a second the cores allow is their time divided by the CPU a call costs in all the
 * processes it runs in. Both runs are read that way: what their CPU per call allows against what
 * they made (for the run through the proxies with the machine's busy and idle shares, which say why
 * it made less). Then, with every core kept busy (the most generous reading): what the 0.35 ×
 * forwarders target leaves each proxy once the signers (SoftHSM signs on these cores) and this
 * process (load generator, test service, TSA) have had their share as measured, and what proxies at
 * the 0.6 ms CPU target would allow. The signers' CPU per call is taken as measured; it falls as
 * batches grow.
 */
function cpuBudget(c: number, run: { proxied: Result; cpuPerCall: PathCpu; machine: MachineShares }, perSignature: { calls: number; cpuMs: number; ms: number }, floor: Result, floorCpu: { client: number; server: number; self: number }): Record<string, number> {
  const { proxied, cpuPerCall: cpu, machine } = run;
  const cores = availableParallelism();
  const total = round(cpu.client + cpu.server + cpu.signers + cpu.self);
  const floorTotal = round(floorCpu.client + floorCpu.server + floorCpu.self);
  const allows = (ms: number) => Math.round((cores * 1000) / ms);
  const wanted = 0.35 * floor.perSecond;
  const budget = round(((cores * 1000) / wanted - cpu.signers - cpu.self) / 2);
  const atTarget = allows(2 * 0.6 + cpu.signers + cpu.self);
  process.stdout.write(
    `${c} clients, CPU per call on the way (${cores} cores): client proxy ${cpu.client} + server proxy ${cpu.server} + signers ${cpu.signers} (${perSignature.calls} calls a signature; each ${perSignature.ms} ms in the signer, ${perSignature.cpuMs} ms of its CPU) + this process (load, test service, TSA) ${cpu.self} = ${total} ms, ` +
      `which allows ${allows(total)}/s; made ${proxied.perSecond}/s (${round(proxied.perSecond / allows(total))}); cores busy ${machine.busy}, idle ${machine.idle}, waiting for I/O ${machine.iowait}, stolen ${machine.steal}\n` +
      `${c} clients, bare forwarders: ${floorCpu.client} + ${floorCpu.server} + this process ${floorCpu.self} = ${floorTotal} ms, which allows ${allows(floorTotal)}/s; made ${floor.perSecond}/s\n` +
      `${c} clients, with every core busy: 0.35 × the forwarders (${Math.round(wanted)}/s) leaves each proxy ${budget} ms of CPU per call; proxies at the 0.6 ms target would allow ${atTarget}/s, ${round(atTarget / floor.perSecond)} × the forwarders\n`,
  );
  return {
    [`machine_busy_${c}`]: machine.busy, [`machine_idle_${c}`]: machine.idle, [`machine_iowait_${c}`]: machine.iowait, [`machine_steal_${c}`]: machine.steal,
    [`cpu_ms_per_call_${c}`]: total, [`floor_cpu_ms_per_call_${c}`]: floorTotal, [`proxy_cpu_budget_ms_${c}`]: budget, [`per_s_at_cpu_target_${c}`]: atTarget, [`to_floor_at_cpu_target_${c}`]: round(atTarget / floor.perSecond),
  };
}

/** One bare forwarder process (scripts/bench-forwarder.mjs), resolved once it listens. */
function startForwarder(args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(join(import.meta.dirname, 'bench-forwarder.mjs'), args, { stdio: 'inherit' });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`bench forwarder exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const dir = join(tmpdir(), `xrd-bench-proxy-${process.pid}`);
  const ports = await freeLocalPorts();
  process.stderr.write('starting the local instance…\n');
  const instance = await startLocalInstance({ dir, ports, logger: silentLogger(), progress: (l) => process.stderr.write(`  ${l}\n`) });
  const figures: Record<string, number> = {};
  const forwarders: ChildProcess[] = [];
  try {
    const [floorClientPort, floorServerPort] = [await freePort(), await freePort()];
    const tlsFiles = [instance.clientIs.certFile, instance.clientIs.keyFile];
    forwarders.push(await startForwarder(['server', String(floorServerPort), `${instance.testServicesUrl}/`, ...tlsFiles]));
    forwarders.push(await startForwarder(['client', String(floorClientPort), `https://127.0.0.1:${floorServerPort}/`, ...tlsFiles]));
    const body = Buffer.from(getRandomRequest(instance, '2222/CLIENT', 'bench'));
    await plainHttpClients(instance, body);
    // Right after the start (after load()'s 50 warm-up calls): V8 has optimised little of the path yet.
    const cold = await throughBothServers(instance, 1, body);
    Object.assign(figures, { proxy_cold_p50_ms_1: cold.proxied.p50, proxy_cold_p99_ms_1: cold.proxied.p99, client_proxy_cold_cpu_ms_per_call_1: cold.cpuPerCall.client, server_proxy_cold_cpu_ms_per_call_1: cold.cpuPerCall.server });
    process.stdout.write(`1 client right after the start (JIT cold): through both servers ${cold.proxied.perSecond}/s (p50 ${cold.proxied.p50} ms, p99 ${cold.proxied.p99} ms) | CPU per call: client proxy ${cold.cpuPerCall.client} ms, server proxy ${cold.cpuPerCall.server} ms\n`);
    await warmUp(instance, body, `http://127.0.0.1:${floorClientPort}/`);
    for (const c of CONCURRENCY) {
      const directAgent = new http.Agent({ keepAlive: true, maxSockets: c });
      const direct = await load(c, () => post(`${instance.testServicesUrl}/`, directAgent, body));
      directAgent.destroy();
      const servers = { client: instance.consumer, server: instance.provider };
      let stagesBefore: Awaited<ReturnType<typeof stageTotals>>[] = [];
      let signedBefore: Awaited<ReturnType<typeof signerCounts>>[] = [];
      const run = await throughBothServers(instance, c, body, async () => {
        stagesBefore = await Promise.all(Object.values(servers).map((s) => stageTotals(s.monitoringUrl, instance.apiKeyOf(s))));
        signedBefore = await Promise.all(Object.values(servers).map((s) => signerCounts(s.signerProxySocket)));
      });
      const { proxied, cpuPerCall } = run;
      Object.assign(figures, {
        [`client_proxy_cpu_ms_per_call_${c}`]: cpuPerCall.client, [`server_proxy_cpu_ms_per_call_${c}`]: cpuPerCall.server,
        [`signers_cpu_ms_per_call_${c}`]: cpuPerCall.signers, [`self_cpu_ms_per_call_${c}`]: cpuPerCall.self,
      });
      const signedAfter = await Promise.all(Object.values(servers).map((s) => signerCounts(s.signerProxySocket)));
      const signed = (k: 'loop' | 'threads' | 'requests' | 'seconds', i: number) => signedAfter[i]![k] - signedBefore[i]![k];
      // Each side signs a batch of messages at a time: the more calls share a signature, the less signer CPU a call costs.
      const signatures = signed('requests', 0) + signed('requests', 1);
      const signingMs = (signed('seconds', 0) + signed('seconds', 1)) * 1000;
      const perSignature = { calls: round((2 * proxied.calls) / signatures), cpuMs: round((cpuPerCall.signers * proxied.calls) / signatures), ms: round(signingMs / signatures) };
      Object.assign(figures, { [`calls_per_signature_${c}`]: perSignature.calls, [`signer_cpu_ms_per_signature_${c}`]: perSignature.cpuMs, [`signer_ms_per_signature_${c}`]: perSignature.ms });
      const stagesAfter = await Promise.all(Object.values(servers).map((s) => stageTotals(s.monitoringUrl, instance.apiKeyOf(s))));
      const breakdown = { ...stageBreakdown(stagesBefore[0]!, stagesAfter[0]!, proxied.calls), ...stageBreakdown(stagesBefore[1]!, stagesAfter[1]!, proxied.calls) };
      for (const [key, ms] of Object.entries(breakdown)) figures[`stage_ms_${c}_${key.replace('/', '_')}`] = ms;
      const line = (direction: string) => Object.entries(breakdown).filter(([k]) => k.startsWith(direction)).map(([k, ms]) => `${k.split('/')[1]} ${ms}`).join(', ');
      process.stdout.write(`${c} client${c === 1 ? '' : 's'}, mean ms per call by stage — client proxy (outbound): ${line('outbound')}; server proxy (inbound): ${line('inbound')}\n`);
      if (c === 1) {
        // Where the signers made this run's signatures (docs/token-layer.md, "Signing off the event loop").
        const onLoop = [0, 1].map((i) => ({ loop: signed('loop', i), threads: signed('threads', i) }));
        onLoop.forEach((n, i) => Object.assign(figures, { [`signed_on_loop_1_${i === 0 ? 'client' : 'server'}`]: n.loop, [`signed_on_threads_1_${i === 0 ? 'client' : 'server'}`]: n.threads }));
        process.stdout.write(`1 client, signatures on the signer's event loop / signing threads — client side ${onLoop[0]!.loop} / ${onLoop[0]!.threads}, server side ${onLoop[1]!.loop} / ${onLoop[1]!.threads}\n`);
      }
      const floorAgent = new http.Agent({ keepAlive: true, maxSockets: c });
      // The floor's own CPU per call: what Node's HTTP and TLS plumbing of the same two hops costs.
      const [serverForwarder, clientForwarder] = forwarders.map((f) => f.pid!);
      const floorCpuNow = () => ({ client: cpuMs(clientForwarder!), server: cpuMs(serverForwarder!), self: cpuMs(process.pid) });
      let floorCpuBefore = floorCpuNow();
      const floor = await load(c, () => post(`http://127.0.0.1:${floorClientPort}/`, floorAgent, body), async () => void (floorCpuBefore = floorCpuNow()));
      const floorPerCall = (now: number, before: number) => round((now - before) / floor.calls);
      const floorCpu = { client: floorPerCall(cpuMs(clientForwarder!), floorCpuBefore.client), server: floorPerCall(cpuMs(serverForwarder!), floorCpuBefore.server), self: floorPerCall(cpuMs(process.pid), floorCpuBefore.self) };
      floorAgent.destroy();
      Object.assign(figures, { [`floor_client_cpu_ms_per_call_${c}`]: floorCpu.client, [`floor_server_cpu_ms_per_call_${c}`]: floorCpu.server, [`floor_self_cpu_ms_per_call_${c}`]: floorCpu.self });
      Object.assign(figures, {
        [`direct_per_s_${c}`]: direct.perSecond, [`direct_p50_ms_${c}`]: direct.p50, [`direct_p99_ms_${c}`]: direct.p99,
        [`proxy_per_s_${c}`]: proxied.perSecond, [`proxy_p50_ms_${c}`]: proxied.p50, [`proxy_p99_ms_${c}`]: proxied.p99,
        [`proxy_failed_${c}`]: proxied.failed, [`proxy_ratio_${c}`]: round(proxied.perSecond / direct.perSecond),
        [`floor_per_s_${c}`]: floor.perSecond, [`floor_p50_ms_${c}`]: floor.p50, [`floor_p99_ms_${c}`]: floor.p99, [`floor_ratio_${c}`]: round(floor.perSecond / direct.perSecond),
        [`proxy_to_floor_${c}`]: round(proxied.perSecond / floor.perSecond),
      });
      process.stdout.write(
        `${String(c).padStart(2)} clients: direct ${direct.perSecond}/s (p50 ${direct.p50} ms, p99 ${direct.p99} ms) | ` +
          `through both servers ${proxied.perSecond}/s (p50 ${proxied.p50} ms, p99 ${proxied.p99} ms, ${proxied.failed} failed) | ratio ${figures[`proxy_ratio_${c}`]} | ` +
          `bare forwarders (floor) ${floor.perSecond}/s (p99 ${floor.p99} ms), ratio ${figures[`floor_ratio_${c}`]} | ` +
          `CPU per call: client proxy ${cpuPerCall.client} ms, server proxy ${cpuPerCall.server} ms ` +
          `(bare forwarders: client side ${floorCpu.client} ms, server side ${floorCpu.server} ms)\n`,
      );
      if (c === 1) Object.assign(figures, outsideTheProxies(proxied, cpuPerCall, floor, round(signingMs / proxied.calls)));
      if (c === CONCURRENCY.at(-1)) Object.assign(figures, cpuBudget(c, run, perSignature, floor, floorCpu));
    }

    // Full mutual handshakes as ss2's client proxy makes them: its auth key on the HSM, through the signer.
    const signer = await SignerClient.connect(instance.consumer.signerProxySocket);
    const authKey = await signer.call('authKeyInfo', { serverId: instance.consumer.serverId });
    signer.close();
    const options = authKeyTlsOptions(instance.consumer.signerProxySocket, authKey);
    const context = tls.createSecureContext(options);
    const handshakes: number[] = [];
    const handshakeEnd = performance.now() + SECONDS * 1000;
    while (performance.now() < handshakeEnd) {
      const start = performance.now();
      await new Promise<void>((resolve, reject) => {
        const socket = tls.connect({ host: instance.provider.address, port: ports.serverProxy, secureContext: context, rejectUnauthorized: false, maxVersion: 'TLSv1.2' }, () => {
          handshakes.push(performance.now() - start);
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      });
    }
    handshakes.sort((a, b) => a - b);
    Object.assign(figures, {
      tls_hsm_handshake_p50_ms: round(handshakes[Math.floor(handshakes.length / 2)]!),
      tls_hsm_handshake_p99_ms: round(handshakes[Math.floor(handshakes.length * 0.99)]!),
      tls_hsm_handshakes_per_s: Math.round(handshakes.length / SECONDS),
    });
    process.stdout.write(`mutual TLS handshakes, client auth key on the HSM (both sides sign through their signers): p50 ${figures.tls_hsm_handshake_p50_ms} ms, p99 ${figures.tls_hsm_handshake_p99_ms} ms, ${figures.tls_hsm_handshakes_per_s}/s sequential\n`);
    process.stdout.write(
      `targets (issue 16): 1 client p50 ≤ 5 ms (${figures.proxy_p50_ms_1}); 64 clients through both servers ≥ 0.35 × the bare forwarders (${figures.proxy_to_floor_64}), ` +
        `p99 ≤ 150 ms (${figures.proxy_p99_ms_64}), CPU per call ≤ 0.6 ms (client proxy ${figures.client_proxy_cpu_ms_per_call_64}, server proxy ${figures.server_proxy_cpu_ms_per_call_64})\n`,
    );
  } finally {
    for (const forwarder of forwarders) forwarder.kill();
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  }
  for (const variant of VARIANTS.filter((v) => v.flag)) Object.assign(figures, await measureVariant(variant.name, variant.options, figures));
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

/**
 * The information system speaks plain HTTP to its security server, as it does to the service in (a):
 * the comparison is about what the two security servers add. Returns once ss2's proxy has read the
 * change (it looks at its configuration once a second) and a call went through.
 */
async function plainHttpClients(instance: LocalInstance, body: Buffer): Promise<void> {
  await changeServerConfIn(instance.consumer.proxyDataDir, { kind: 'system', name: 'bench' }, 'SET_CONNECTION_TYPE', (conf) => ({ ...conf!, clients: conf!.clients.map((c) => ({ ...c, connectionType: 'HTTP' })) }), instance.databaseUrls.get(instance.consumer.serverId));
  const agent = new http.Agent({ keepAlive: false });
  const deadline = Date.now() + 30_000;
  while (!(await post(`${instance.consumer.httpUrl}/`, agent, body).catch(() => false))) {
    if (Date.now() > deadline) throw new Error('calls through both servers still fail 30 s after the switch to plain HTTP');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The measured levels are of servers in operation, not of a fresh start: WARM_SECONDS of 64 clients
 * through both servers (and the bare forwarders, when given) let V8 optimise the code a call runs (right
 * after the start it is still compiling, on the same two cores, for tens of seconds), then the
 * warm-up's own after-work is let finish — the timestamper stamping its records (every
 * `timeStampingIntervalSeconds`, 60 in the local instance) — so that it does not land in a level.
 */
async function warmUp(instance: LocalInstance, body: Buffer, floorUrl?: string): Promise<void> {
  if (WARM_SECONDS <= 0) return;
  const started = performance.now();
  const proxyAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const floorAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const until = performance.now() + WARM_SECONDS * 1000;
  let calls = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: 64 }, async (_, i) => {
    while (performance.now() < until) {
      // Every eighth client on the forwarders: they run little code and warm quickly.
      if (floorUrl && i % 8 === 0) await post(floorUrl, floorAgent, body).catch(() => false);
      else if (await post(`${instance.consumer.httpUrl}/`, proxyAgent, body).catch(() => false)) calls++;
      else failed++;
    }
  }));
  proxyAgent.destroy();
  floorAgent.destroy();
  // Each node's message log, SQLite file or PostgreSQL database, read as `xrd asic export` reads it.
  const logs: SqlDatabase[] = [];
  const waiting = async () => (await Promise.all(logs.map((db) => db.get<{ n: number }>('SELECT count(*) AS n FROM timestamp_queue')))).reduce((sum, row) => sum + Number(row!.n), 0);
  const deadline = performance.now() + SETTLE_LIMIT_MS;
  try {
    for (const s of [instance.consumer, ...instance.providerNodes]) logs.push(await openLogDatabase(messageLogLocation(messageLogFileIn(s.proxyDataDir), instance.messageLogUrls.get(s)).database, { create: false }));
    while ((await waiting()) > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    if ((await waiting()) > 0) process.stdout.write(`warm-up: records still waiting for a timestamp after ${SETTLE_LIMIT_MS / 1000} s; measuring anyway\n`);
  } finally {
    await Promise.all(logs.map((db) => db.close()));
  }
  process.stdout.write(`warm-up: ${calls} calls through both servers in ${WARM_SECONDS} s (${failed} failed), then their timestamps; ${Math.round((performance.now() - started) / 1000)} s in all\n`);
}

/** CPU ms per call of every process a call through both servers runs in. */
interface PathCpu {
  client: number;
  /** ss1's proxy (all of its nodes). */
  server: number;
  /** Both sides' signer daemons, SoftHSM's signing included. */
  signers: number;
  /** This process: the load generator, the test service, and the test PKI's TSA and OCSP responder. */
  self: number;
}

type MachineCpuMs = ReturnType<typeof machineCpuMs>;
/** Shares of the cores' time over a run: busy in any process or the kernel, idle, idle while a process waited for I/O, and taken by the hypervisor. */
type MachineShares = MachineCpuMs;

/** `c` clients calling getRandom through ss2 and ss1 (all of ss1's nodes), with the CPU per call of every process on the way. */
async function throughBothServers(instance: LocalInstance, c: number, body: Buffer, atStart?: () => Promise<void>): Promise<{ proxied: Result; cpuPerCall: PathCpu; machine: MachineShares }> {
  const proxyAgent = new http.Agent({ keepAlive: true, maxSockets: c });
  const pids = instance.pids();
  const of = (what: string, servers: readonly { name: string }[]) => servers.map((s) => pids[`${s.name} ${what}`]).filter((pid): pid is number => pid !== undefined);
  const groups: Record<keyof PathCpu, number[]> = {
    client: of('proxy', [instance.consumer]),
    server: of('proxy', instance.providerNodes),
    signers: of('signer', [instance.consumer, ...instance.providerNodes]),
    self: [process.pid],
  };
  const read = () => Object.fromEntries(Object.entries(groups).map(([k, list]) => [k, list.reduce((sum, pid) => sum + cpuMs(pid), 0)])) as Record<keyof PathCpu, number>;
  let cpuBefore = read();
  let machineBefore = machineCpuMs();
  const proxied = await load(c, () => post(`${instance.consumer.httpUrl}/`, proxyAgent, body), async () => {
    await atStart?.();
    cpuBefore = read();
    machineBefore = machineCpuMs();
  });
  const cpuAfter = read();
  const machineAfter = machineCpuMs();
  proxyAgent.destroy();
  const perCall = (k: keyof PathCpu) => round((cpuAfter[k] - cpuBefore[k]) / proxied.calls);
  const spent = Object.fromEntries(Object.entries(machineAfter).map(([k, v]) => [k, v - machineBefore[k as keyof MachineCpuMs]])) as MachineCpuMs;
  const all = spent.busy + spent.idle + spent.iowait + spent.steal;
  const machine = { busy: round(spent.busy / all), idle: round(spent.idle / all), iowait: round(spent.iowait / all), steal: round(spent.steal / all) };
  return { proxied, machine, cpuPerCall: { client: perCall('client'), server: perCall('server'), signers: perCall('signers'), self: perCall('self') } };
}

/** A second instance (stores in PostgreSQL, or ss1 as a cluster) under the same load, as ratios to the SQLite instance's figures. */
async function measureVariant(name: string, options: Pick<LocalInstanceOptions, 'store' | 'cluster'>, sqlite: Record<string, number>): Promise<Record<string, number>> {
  const dir = join(tmpdir(), `xrd-bench-proxy-${name}-${process.pid}`);
  process.stderr.write(`starting the local instance (${name})…\n`);
  const instance = await startLocalInstance({ dir, ports: await freeLocalPorts(), logger: silentLogger(), progress: (l) => process.stderr.write(`  ${l}\n`), ...options });
  const figures: Record<string, number> = {};
  try {
    const body = Buffer.from(getRandomRequest(instance, '2222/CLIENT', 'bench'));
    await plainHttpClients(instance, body);
    await warmUp(instance, body);
    for (const c of VARIANT_CONCURRENCY) {
      const { proxied, cpuPerCall } = await throughBothServers(instance, c, body);
      Object.assign(figures, {
        [`${name}_proxy_per_s_${c}`]: proxied.perSecond, [`${name}_proxy_p50_ms_${c}`]: proxied.p50, [`${name}_proxy_p99_ms_${c}`]: proxied.p99, [`${name}_proxy_failed_${c}`]: proxied.failed,
        [`${name}_client_proxy_cpu_ms_per_call_${c}`]: cpuPerCall.client, [`${name}_server_proxy_cpu_ms_per_call_${c}`]: cpuPerCall.server,
        [`${name}_to_sqlite_${c}`]: round(proxied.perSecond / sqlite[`proxy_per_s_${c}`]!),
      });
      process.stdout.write(
        `${name}: ${String(c).padStart(2)} clients through both servers ${proxied.perSecond}/s (p50 ${proxied.p50} ms, p99 ${proxied.p99} ms, ${proxied.failed} failed), ` +
          `${figures[`${name}_to_sqlite_${c}`]} × SQLite's ${sqlite[`proxy_per_s_${c}`]}/s | CPU per call: client proxy ${cpuPerCall.client} ms, server proxy${instance.providerNodes.length > 1 ? ' (both nodes)' : ''} ${cpuPerCall.server} ms\n`,
      );
    }
  } finally {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}

await main();
process.exit(0);
