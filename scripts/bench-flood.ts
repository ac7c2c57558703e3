/**
 * npm run bench:flood — issue 13 item 2's proof for XML: "the attribute and element floods answered
 * with a coded fault in milliseconds while a normal call made at the same time answers in its
 * usual time". In one run:
 * (1) the parser alone: the cost of n and 2n attributes on one element, and of n and 2n MB of
 *     elements in a SOAP payload (bounds raised so the whole input is read), as ratios — linear
 *     work doubles — and how long the default bounds take to refuse each flood;
 * (2) the local instance (bench:proxy's setup): a normal getRandom call through both security
 *     servers alone, then the same calls made while the floods go to the client proxy (plain
 *     HTTP, no certificate; two element floods at once, as in the issue) and to the server proxy
 *     (mutual TLS with ss2's authentication key), one after another: each flood's answer (fault
 *     code, time) and the normal calls made meanwhile (slowest, p50 over all), as ratios to the
 *     normal call alone; and the proxies' peak memory.
 * The last line is one JSON object with every figure.
 */
import https from 'node:https';
import http from 'node:http';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRandomRequest } from '../src/dev/localinstance/first-calls.ts';
import { startLocalInstance } from '../src/dev/localinstance/local-instance.ts';
import { silentLogger } from '../src/platform/logger.ts';
import { concatPieces } from '../src/platform/spool.ts';
import { SOAP_ENVELOPE } from '../src/protocol/soap-message.ts';
import { encodeProxyMessage } from '../src/protocol/proxy-message.ts';
import { changeServerConfIn } from '../src/serverconf/store.ts';
import { SignerClient } from '../src/signerapi/signer-client.ts';
import { authKeyTlsOptions } from '../src/tls/auth-key-tls.ts';
import { XmlLimitError, parseXml } from '../src/xml/xml-tree.ts';
import { freeLocalPorts } from '../test/support/net.ts';

const NORMAL_CALLS = Number(process.env.BENCH_CALLS ?? 40);
const round = (v: number) => Math.round(v * 100) / 100;
const figures: Record<string, number | string> = {};

/** Best of a few runs, in ms (the floor of a noisy machine). */
function best(fn: () => void, runs = 3): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    min = Math.min(min, performance.now() - start);
  }
  return min;
}

const attributes = (n: number) => Array.from({ length: n }, (_, i) => ` a${i}="x"`).join('');
/** A request whose one body element holds `payload`, with getRandom's header. */
const withPayload = (request: string, payload: string) => request.replace('<prod:getRandom/>', `<prod:getRandom>${payload}</prod:getRandom>`);
const withBody = (request: string, body: string) => request.replace('<prod:getRandom/>', body);

function parserFigures(request: string): void {
  const attrCost = (n: number) => {
    const doc = `<e${attributes(n)}/>`;
    return best(() => parseXml(doc, { limits: { maxAttributes: n } }), 5);
  };
  attrCost(30_000); // warm-up: the first runs are the JIT's
  const [a30, a60] = [attrCost(30_000), attrCost(60_000)];
  const payload = (mb: number) => Buffer.from(withPayload(request, '<a/>'.repeat(mb * 250_000)));
  const [p8, p16, p31] = [payload(8), payload(16), payload(31)];
  const payloadCost = (doc: Buffer) => best(() => parseXml(doc, SOAP_ENVELOPE));
  const [e8, e16] = [payloadCost(p8), payloadCost(p16)];
  const refusal = (doc: string | Buffer, options = {}) =>
    best(() => {
      try {
        parseXml(doc, options);
      } catch (err) {
        if (!(err instanceof XmlLimitError)) throw err;
      }
    });
  Object.assign(figures, {
    parser_attributes_30k_ms: round(a30),
    parser_attributes_60k_ms: round(a60),
    parser_attributes_ratio_2x: round(a60 / a30),
    parser_payload_8mb_ms: round(e8),
    parser_payload_16mb_ms: round(e16),
    parser_payload_ratio_2x: round(e16 / e8),
    parser_payload_31mb_ms: round(payloadCost(p31)),
    parser_refuse_attribute_flood_ms: round(refusal(withPayload(request, `<x${attributes(60_000)}/>`), SOAP_ENVELOPE)),
    parser_refuse_body_flood_31mb_ms: round(refusal(Buffer.from(withBody(request, '<a/>'.repeat(7_750_000))), SOAP_ENVELOPE)),
    parser_refuse_tree_flood_31mb_ms: round(refusal(p31)),
  });
  process.stdout.write(
    `parser: 30k attributes ${figures.parser_attributes_30k_ms} ms, 60k ${figures.parser_attributes_60k_ms} ms (×${figures.parser_attributes_ratio_2x} for 2× input); ` +
      `SOAP payload of empty elements 8 MB ${figures.parser_payload_8mb_ms} ms, 16 MB ${figures.parser_payload_16mb_ms} ms (×${figures.parser_payload_ratio_2x}), 31 MB ${figures.parser_payload_31mb_ms} ms\n` +
      `parser refuses (default bounds): 60k-attribute flood in ${figures.parser_refuse_attribute_flood_ms} ms, 31 MB of elements in the Body in ${figures.parser_refuse_body_flood_31mb_ms} ms, ` +
      `31 MB parsed whole (as for a signature) in ${figures.parser_refuse_tree_flood_31mb_ms} ms\n`,
  );
}

interface Answer {
  status: number;
  ms: number;
  faultCode: string;
}

function send(url: string, body: Buffer, headers: Record<string, string>, agent?: https.Agent): Promise<Answer> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - start, faultCode: /<faultcode>([^<]*)</.exec(text)?.[1] ?? (/data>\d+</.test(text) ? 'ok' : text.slice(0, 80)) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** VmHWM (peak resident memory) of a process, in MB. */
const peakMb = (pid: number | undefined) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

async function main(): Promise<void> {
  const dir = join(tmpdir(), `xrd-bench-flood-${process.pid}`);
  const ports = await freeLocalPorts();
  process.stderr.write('starting the local instance…\n');
  const instance = await startLocalInstance({ dir, ports, logger: silentLogger(), progress: (l) => process.stderr.write(`  ${l}\n`) });
  try {
    const request = getRandomRequest(instance, '2222/CLIENT', 'flood');
    parserFigures(request);
    await changeServerConfIn(instance.consumer.proxyDataDir, { kind: 'system', name: 'bench' }, 'SET_CONNECTION_TYPE', (conf) => ({ ...conf!, clients: conf!.clients.map((c) => ({ ...c, connectionType: 'HTTP' })) }));

    const normal = () => send(`${instance.consumer.httpUrl}/`, Buffer.from(request), { 'content-type': 'text/xml' });
    const normals = async (n: number): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const answer = await normal();
        if (answer.faultCode !== 'ok') throw new Error(`a normal call failed: ${answer.faultCode}`);
        times.push(answer.ms);
      }
      return times.sort((a, b) => a - b);
    };
    await normals(10); // warm-up
    const alone = await normals(NORMAL_CALLS);
    const aloneP50 = alone[Math.floor(alone.length / 2)]!;
    figures.normal_alone_p50_ms = round(aloneP50);
    const pids = instance.pids();
    const proxyPid = (s: { serverId: string }) => pids[`${s.serverId} proxy`];
    const peakBefore = { client: peakMb(proxyPid(instance.consumer)), server: peakMb(proxyPid(instance.provider)) };

    // ss2's client proxy speaking to ss1's server proxy, as a security server does (its auth key on the HSM).
    const signer = await SignerClient.connect(instance.consumer.signerProxySocket);
    const authKey = await signer.call('authKeyInfo', { serverId: instance.consumer.serverId });
    signer.close();
    const agent = new https.Agent({ ...authKeyTlsOptions(instance.consumer.signerProxySocket, authKey), rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
    const toServerProxy = (soap: Buffer) => {
      const message = encodeProxyMessage({ ocspResponses: [], content: { kind: 'soap', soap, contentType: 'text/xml; charset=UTF-8' }, signature: { signatureXml: '<x/>' }, proxyVersion: '7.6.0' });
      return send(`https://${instance.provider.address}:${ports.serverProxy}/`, concatPieces(message.pieces), { 'content-type': message.contentType, ...message.headers }, agent);
    };
    const toClientProxy = (soap: Buffer) => send(`${instance.consumer.httpUrl}/`, soap, { 'content-type': 'text/xml' });

    const attributeFlood = Buffer.from(withPayload(request, `<x${attributes(60_000)}/>`));
    const elementFlood = Buffer.from(withBody(request, '<a/>'.repeat(7_750_000)));
    const floods: [string, () => Promise<Answer>[]][] = [
      ['client_attribute_flood', () => [toClientProxy(attributeFlood)]],
      ['client_two_element_floods', () => [toClientProxy(elementFlood), toClientProxy(elementFlood)]],
      ['server_attribute_flood', () => [toServerProxy(attributeFlood)]],
      ['server_element_flood', () => [toServerProxy(elementFlood)]],
    ];
    process.stdout.write(`normal call alone: p50 ${figures.normal_alone_p50_ms} ms (${NORMAL_CALLS} calls); attribute flood ${attributeFlood.length} bytes, element flood ${elementFlood.length} bytes\n`);
    // Each flood with normal calls one after another until it is answered.
    const during: number[] = [];
    for (const [name, flood] of floods) {
      let flooding = true;
      const times: number[] = [];
      const caller = (async () => {
        while (flooding) times.push((await normal()).ms);
      })();
      const answers = await Promise.all(flood());
      flooding = false;
      await caller;
      during.push(...times);
      const slowest = Math.max(...answers.map((a) => a.ms));
      const normalMax = Math.max(...times);
      Object.assign(figures, {
        [`${name}_ms`]: round(slowest),
        [`${name}_ratio`]: round(slowest / aloneP50),
        [`${name}_fault`]: [...new Set(answers.map((a) => a.faultCode))].join(' '),
        [`${name}_normal_calls`]: times.length,
        [`${name}_normal_max_ms`]: round(normalMax),
        [`${name}_normal_max_ratio`]: round(normalMax / aloneP50),
      });
      process.stdout.write(
        `${name.replaceAll('_', ' ')}: ${answers.map((a) => `${a.status} ${a.faultCode}`).join(', ')} in ${round(slowest)} ms (${figures[`${name}_ratio`]}× a normal call); ` +
          `${times.length} normal calls meanwhile, slowest ${round(normalMax)} ms (${figures[`${name}_normal_max_ratio`]}×)\n`,
      );
    }
    during.sort((a, b) => a - b);
    Object.assign(figures, {
      normal_during_floods_calls: during.length,
      normal_during_floods_p50_ms: round(during[Math.floor(during.length / 2)] ?? NaN),
      normal_during_floods_max_ms: round(during.at(-1) ?? NaN),
      normal_during_floods_p50_ratio: round((during[Math.floor(during.length / 2)] ?? NaN) / aloneP50),
      normal_during_floods_max_ratio: round((during.at(-1) ?? NaN) / aloneP50),
      client_proxy_peak_mb_before: Math.round(peakBefore.client),
      client_proxy_peak_mb_after: Math.round(peakMb(proxyPid(instance.consumer))),
      server_proxy_peak_mb_before: Math.round(peakBefore.server),
      server_proxy_peak_mb_after: Math.round(peakMb(proxyPid(instance.provider))),
    });
    process.stdout.write(
      `all normal calls during the floods: ${during.length}, p50 ${figures.normal_during_floods_p50_ms} ms (×${figures.normal_during_floods_p50_ratio}), max ${figures.normal_during_floods_max_ms} ms (×${figures.normal_during_floods_max_ratio})\n` +
        `peak memory: client proxy ${figures.client_proxy_peak_mb_before} → ${figures.client_proxy_peak_mb_after} MB, server proxy ${figures.server_proxy_peak_mb_before} → ${figures.server_proxy_peak_mb_after} MB\n`,
    );
    agent.destroy();
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await instance.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
