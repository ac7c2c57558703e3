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
 * at 1, 16 and 64 concurrent clients over kept-alive connections: calls/s, p50 and p99 latency.
 * Separately, the cost of a full mutual TLS handshake with the client side's authentication key on
 * the HSM (signature by the signer through the engine) against the provider's server proxy.
 * The last line is one JSON object with every figure.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { getRandomRequest } from '../src/cli/proxy-commands.ts';
import { startLocalInstance } from '../src/dev/localinstance/local-instance.ts';
import { silentLogger } from '../src/platform/logger.ts';
import { changeServerConfIn } from '../src/serverconf/store.ts';
import { SignerClient } from '../src/signerapi/signer-client.ts';
import { authKeyTlsOptions } from '../src/tls/auth-key-tls.ts';
import { freeLocalPorts, freePort } from '../test/support/net.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = [1, 16, 64];

interface Result {
  perSecond: number;
  p50: number;
  p99: number;
  failed: number;
}

/** `concurrency` clients each calling in a loop for SECONDS; latency percentiles over every call. */
async function load(concurrency: number, callOnce: () => Promise<boolean>): Promise<Result> {
  for (let i = 0; i < Math.max(50, concurrency * 4); i++) await callOnce(); // warm-up, connections opened
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
  return { perSecond: Math.round(latencies.length / elapsed), p50: at(0.5), p99: at(0.99), failed };
}

const round = (v: number) => Math.round(v * 100) / 100;

/** One bare forwarder process (scripts/bench-forwarder.mjs), resolved once it listens. */
function startForwarder(args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(join(import.meta.dirname, 'bench-forwarder.mjs'), args, { stdio: 'inherit' });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`bench forwarder exited with ${code}`)));
  });
}

function post(url: string, agent: http.Agent, body: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'text/xml', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode === 200 && /data>\d+</.test(Buffer.concat(chunks).toString())));
    });
    req.on('error', reject);
    req.end(body);
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
    // The information system speaks plain HTTP to its security server, as it does to the service in (a):
    // the comparison is about what the two security servers add.
    changeServerConfIn(instance.consumer.proxyDataDir, { kind: 'system', name: 'bench' }, 'SET_CONNECTION_TYPE', (conf) => ({ ...conf!, clients: conf!.clients.map((c) => ({ ...c, connectionType: 'HTTP' })) }));
    for (const c of CONCURRENCY) {
      const directAgent = new http.Agent({ keepAlive: true, maxSockets: c });
      const direct = await load(c, () => post(`${instance.testServicesUrl}/`, directAgent, body));
      directAgent.destroy();
      const proxyAgent = new http.Agent({ keepAlive: true, maxSockets: c });
      const proxied = await load(c, () => post(`${instance.consumer.httpUrl}/`, proxyAgent, body));
      proxyAgent.destroy();
      const floorAgent = new http.Agent({ keepAlive: true, maxSockets: c });
      const floor = await load(c, () => post(`http://127.0.0.1:${floorClientPort}/`, floorAgent, body));
      floorAgent.destroy();
      Object.assign(figures, {
        [`direct_per_s_${c}`]: direct.perSecond, [`direct_p50_ms_${c}`]: direct.p50, [`direct_p99_ms_${c}`]: direct.p99,
        [`proxy_per_s_${c}`]: proxied.perSecond, [`proxy_p50_ms_${c}`]: proxied.p50, [`proxy_p99_ms_${c}`]: proxied.p99,
        [`proxy_failed_${c}`]: proxied.failed, [`proxy_ratio_${c}`]: round(proxied.perSecond / direct.perSecond),
        [`floor_per_s_${c}`]: floor.perSecond, [`floor_p99_ms_${c}`]: floor.p99, [`floor_ratio_${c}`]: round(floor.perSecond / direct.perSecond),
      });
      process.stdout.write(
        `${String(c).padStart(2)} clients: direct ${direct.perSecond}/s (p50 ${direct.p50} ms, p99 ${direct.p99} ms) | ` +
          `through both servers ${proxied.perSecond}/s (p50 ${proxied.p50} ms, p99 ${proxied.p99} ms, ${proxied.failed} failed) | ratio ${figures[`proxy_ratio_${c}`]} | ` +
          `bare forwarders (floor) ${floor.perSecond}/s (p99 ${floor.p99} ms), ratio ${figures[`floor_ratio_${c}`]}\n`,
      );
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
    process.stdout.write(`target at 64 clients: ratio ≥ 0.25 (${figures.proxy_ratio_64}), p99 ≤ 100 ms (${figures.proxy_p99_ms_64})\n`);
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    for (const forwarder of forwarders) forwarder.kill();
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
