/**
 * npm run bench:large — a SOAP message with one large attachment (256 MiB, then 1 GiB) through both
 * security servers of a local instance, against the floor: the same bytes piped through two bare
 * streaming forwarders with the same hop shape (scripts/bench-forwarder.mjs stream: HTTP in, mutual
 * TLS between them, HTTP to the service) that do no X-Road work. For each: the time, and each
 * process's peak resident memory growth (VmHWM) past a warm-up, as a share of the attachment and as
 * a ratio to the forwarders'. The service checks the whole package arrived (test/e2e/large-message
 * checks its bytes). The last line is one JSON object with every figure; docs/benchmarks.md records them.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyQueryHarness, query, withId } from '../test/support/proxy-queries.ts';
import { freePort } from '../test/support/net.ts';

const MIB = 1024 * 1024;
const SIZES_MIB = (process.env.BENCH_SIZES_MIB ?? '256,1024').split(',').map(Number);
const BOUNDARY = 'benchLargeAttachmentBoundary';
const CHUNK = randomBytes(MIB);

const peak = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (bytes: number) => Math.round((bytes / MIB) * 10) / 10;

/** Posts the SwA request with `size` bytes of attachment, written as the socket takes them. */
function send(url: string, size: number): Promise<{ status: number; seconds: number }> {
  const id = randomBytes(16).toString('hex');
  const soap = withId(query('attachm.query'), id).toString('latin1');
  const envelope = soap.slice(soap.indexOf('<?xml'), soap.indexOf('</SOAP-ENV:Envelope>') + '</SOAP-ENV:Envelope>'.length);
  const target = new URL(url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { 'content-type': `multipart/related; type="text/xml"; boundary=${BOUNDARY}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, seconds: (performance.now() - started) / 1000 }));
    });
    req.on('error', reject);
    req.write(`--${BOUNDARY}\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n${envelope}\r\n--${BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\r\n`);
    let sent = 0;
    const more = () => {
      while (sent < size / MIB) {
        sent++;
        if (!req.write(CHUNK)) return void req.once('drain', more);
      }
      req.end(`\r\n--${BOUNDARY}--\r\n`);
    };
    more();
  });
}

function startForwarder(args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(join(import.meta.dirname, 'bench-forwarder.mjs'), args, { stdio: 'inherit' });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`bench forwarder exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  process.stderr.write('starting the local instance…\n');
  const h = await ProxyQueryHarness.start(join(tmpdir(), `xrd-bench-large-${process.pid}`), [], { keepBodies: false });
  const forwarders: ChildProcess[] = [];
  const figures: Record<string, number> = {};
  try {
    await h.configure([{ code: 'test', timeoutSeconds: 600 }]);
    h.answerWith({ file: 'attachm.answer' });
    const tlsFiles = [h.instance.clientIs.certFile, h.instance.clientIs.keyFile];
    const [floorClient, floorServer] = [await freePort(), await freePort()];
    forwarders.push(await startForwarder(['server', String(floorServer), `${h.serviceUrl}/service`, ...tlsFiles, 'stream']));
    forwarders.push(await startForwarder(['client', String(floorClient), `https://127.0.0.1:${floorServer}/`, ...tlsFiles, 'stream']));
    const pids = h.instance.pids();
    const ours = { client: pids[`${h.instance.consumer.serverId} proxy`]!, server: pids[`${h.instance.provider.serverId} proxy`]! };
    const floor = { client: forwarders[1]!.pid!, server: forwarders[0]!.pid! };

    // Warm-up: a small exchange each way, so what is measured is the large part's share.
    for (const url of [`${h.instance.consumer.httpUrl}/`, `http://127.0.0.1:${floorClient}/`]) await send(url, MIB);
    const base = { ours: { client: peak(ours.client), server: peak(ours.server) }, floor: { client: peak(floor.client), server: peak(floor.server) } };

    for (const sizeMib of SIZES_MIB) {
      const size = sizeMib * MIB;
      const run = async (url: string, pidsOf: { client: number; server: number }, baseOf: { client: number; server: number }) => {
        const { status, seconds } = await send(url, size);
        const got = h.received.at(-1)!;
        // The service got the package; its attachment is what follows the SOAP part.
        if (status !== 200 || got.size < size) throw new Error(`the service did not get the ${sizeMib} MiB attachment (status ${status}, ${got.size} bytes)`);
        return { seconds, client: peak(pidsOf.client) - baseOf.client, server: peak(pidsOf.server) - baseOf.server };
      };
      const viaOurs = await run(`${h.instance.consumer.httpUrl}/`, ours, base.ours);
      const viaFloor = await run(`http://127.0.0.1:${floorClient}/`, floor, base.floor);
      const line = (name: string, r: typeof viaOurs) =>
        `  ${name.padEnd(26)} ${r.seconds.toFixed(1).padStart(6)} s  ${(sizeMib / r.seconds).toFixed(0).padStart(4)} MiB/s   peak growth: client side ${String(mib(r.client)).padStart(6)} MiB (${((r.client / size) * 100).toFixed(0)} %), server side ${String(mib(r.server)).padStart(6)} MiB (${((r.server / size) * 100).toFixed(0)} %)`;
      process.stdout.write(`\n${sizeMib} MiB attachment\n${line('both security servers', viaOurs)}\n${line('bare streaming forwarders', viaFloor)}\n`);
      process.stdout.write(`  ratio to the floor: time ${(viaOurs.seconds / viaFloor.seconds).toFixed(2)}, memory growth client ${(viaOurs.client / Math.max(viaFloor.client, MIB)).toFixed(2)}, server ${(viaOurs.server / Math.max(viaFloor.server, MIB)).toFixed(2)}\n`);
      Object.assign(figures, {
        [`mib${sizeMib}_seconds`]: Math.round(viaOurs.seconds * 10) / 10,
        [`mib${sizeMib}_floor_seconds`]: Math.round(viaFloor.seconds * 10) / 10,
        [`mib${sizeMib}_client_proxy_growth_mib`]: mib(viaOurs.client),
        [`mib${sizeMib}_server_proxy_growth_mib`]: mib(viaOurs.server),
        [`mib${sizeMib}_floor_client_growth_mib`]: mib(viaFloor.client),
        [`mib${sizeMib}_floor_server_growth_mib`]: mib(viaFloor.server),
      });
    }
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    for (const f of forwarders) f.kill();
    await h.close();
  }
}

await main();
