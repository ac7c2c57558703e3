/**
 * npm run profile:proxy — where a call through both security servers spends its CPU: the local
 * instance under the bench:proxy load (getRandom, SOAP, plain HTTP from the information system) at
 * 1 and 64 clients, with every process's CPU read from /proc before and after each load, divided by
 * the calls made: each proxy (including its timestamper thread), each signer, and this process
 * (the load generator and the test service). With PROFILE_DIR set, the signers' and proxies'
 * processes are sampled by the V8 profiler during each load (scripts/cpu-profile-preload.cjs) and
 * leave a profile per phase there (<command>-<pid>-<n>.cpuprofile: n = 1 idle, then one per load);
 * scripts/cpuprofile-summary.mjs groups them by source folder.
 * PROFILE_SECONDS (default 5) per load; PROFILE_CLIENTS (default "1,64").
 */
import http from 'node:http';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRandomRequest } from '../src/dev/localinstance/first-calls.ts';
import { startLocalInstance } from '../src/dev/localinstance/local-instance.ts';
import { silentLogger } from '../src/platform/logger.ts';
import { changeServerConfIn } from '../src/serverconf/store.ts';
import { freeLocalPorts } from '../test/support/net.ts';
import { cpuMs, postGetRandom as post, warmUpAt } from './process-cpu.ts';

const SECONDS = Number(process.env.PROFILE_SECONDS ?? 5);
const CLIENTS = (process.env.PROFILE_CLIENTS ?? '1,64').split(',').map(Number);
const PROFILE_DIR = process.env.PROFILE_DIR;

async function main(): Promise<void> {
  const dir = join(tmpdir(), `xrd-profile-proxy-${process.pid}`);
  // Only the children read it: this process has started already.
  if (PROFILE_DIR) {
    // Node 20 does not take --cpu-prof from NODE_OPTIONS; the preload starts the same profiler.
    process.env.XRD_CPU_PROFILE_DIR = PROFILE_DIR;
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${join(import.meta.dirname, 'cpu-profile-preload.cjs')}`.trim();
  }
  process.stderr.write('starting the local instance…\n');
  const instance = await startLocalInstance({ dir, ports: await freeLocalPorts(), logger: silentLogger() });
  try {
    const body = Buffer.from(getRandomRequest(instance, '2222/CLIENT', 'bench'));
    await changeServerConfIn(instance.consumer.proxyDataDir, { kind: 'system', name: 'bench' }, 'SET_CONNECTION_TYPE', (conf) => ({ ...conf!, clients: conf!.clients.map((c) => ({ ...c, connectionType: 'HTTP' })) }));
    const pids = instance.pids();
    const watched: Record<string, number> = { 'ss2 client proxy': pids[`${instance.consumer.serverId} proxy`]!, 'ss1 server proxy': pids[`${instance.provider.serverId} proxy`]!, 'ss2 signer': pids[`${instance.consumer.serverId} signer`]!, 'ss1 signer': pids[`${instance.provider.serverId} signer`]!, 'load + test service': process.pid };
    process.stdout.write(`pids: ${JSON.stringify(watched)}\n`);
    const figures: Record<string, number> = {};
    // What each process spends with no calls at all (timers, checkpoints, configuration reloads): at
    // a few calls a second it is a visible part of the CPU per call.
    const profiled = PROFILE_DIR ? Object.entries(watched).filter(([k]) => k.startsWith('ss')).map(([, pid]) => pid) : [];
    for (const pid of profiled) process.kill(pid, 'SIGUSR2');
    const idleFrom = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, cpuMs(pid)]));
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    for (const pid of profiled) process.kill(pid, 'SIGUSR2');
    process.stdout.write(`idle, CPU per second: ${Object.entries(watched).map(([k, pid]) => `${k} ${((cpuMs(pid) - idleFrom[k]!) / SECONDS).toFixed(1)} ms`).join(' ')}\n`);
    for (const c of CLIENTS) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: c });
      const call = () => post(`${instance.consumer.httpUrl}/`, agent, body);
      await warmUpAt(c, call);
      for (const pid of profiled) process.kill(pid, 'SIGUSR2');
      const before = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, cpuMs(pid)]));
      const latencies: number[] = [];
      const end = performance.now() + SECONDS * 1000;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: c }, async () => {
          while (performance.now() < end) {
            const t = performance.now();
            if (await call().catch(() => false)) latencies.push(performance.now() - t);
          }
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      for (const pid of profiled) process.kill(pid, 'SIGUSR2');
      agent.destroy();
      latencies.sort((a, b) => a - b);
      const n = latencies.length;
      const line = [`${c} clients: ${Math.round(n / elapsed)}/s, p50 ${latencies[Math.floor(n / 2)]?.toFixed(2)} ms, p99 ${latencies[Math.floor(n * 0.99)]?.toFixed(2)} ms; CPU per call:`];
      for (const [k, pid] of Object.entries(watched)) {
        const perCall = (cpuMs(pid) - before[k]!) / n;
        figures[`${k.replaceAll(' ', '_')}_cpu_ms_${c}`] = Math.round(perCall * 1000) / 1000;
        line.push(`${k} ${perCall.toFixed(3)} ms`);
      }
      figures[`per_s_${c}`] = Math.round(n / elapsed);
      process.stdout.write(`${line.join(' ')}\n`);
    }
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
