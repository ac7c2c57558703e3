/**
 * Handshake cost with the authentication key on SoftHSM (through the signer engine) against the
 * same handshake with software keys loaded by the process: full TLS 1.2 mutual handshakes between
 * two processes, sequential (latency) and 16 at a time (throughput), plus the signer's own `sign`
 * latency for the same key. Not a test; run `npx tsx test/softhsm/tls-bench.ts`. The last line is
 * one JSON object with every figure.
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { authKeyTlsOptions, softwareKeyTlsOptions, type AuthKeyInfo } from '../../src/tls/auth-key-tls.ts';
import { createTestbed } from '../../softhsm/testbed.ts';
import { freePort } from '../support/net.ts';
import type { Command, Identity } from './tls-peer.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SEQUENTIAL = Number(process.env.TLS_BENCH_SEQUENTIAL ?? 300);
const CONCURRENT_SECONDS = Number(process.env.TLS_BENCH_SECONDS ?? 3);
const CONCURRENCY = 16;

const testbed = createTestbed();
const pki = LocalPki.init(join(testbed.dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort() });
const rootPem = readFileSync(join(pki.dir, 'pki', 'root.cert.pem'), 'utf8');
const caB64 = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw.toString('base64');

const signer = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/softhsm/tls-signer.ts'), testbed.dataDir, testbed.devicesIni, pki.globalConfDir], { cwd: ROOT, env: testbed.env, stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((r) => signer.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && r()));
const socket = join(testbed.dataDir, 'signer.sock');
const client = await SignerClient.connect(socket);
const token = await client.call('initToken', { label: 'bench', soPin: '0000', userPin: 'bench-pin' });
await client.call('activateToken', { token: token.tokenId, pin: 'bench-pin' });

async function hsmKey(serverId: string): Promise<AuthKeyInfo> {
  const key = await client.call('generateKey', { token: token.tokenId, algorithm: 'RSA', bits: 2048, usage: 'AUTHENTICATION' });
  const csr = await client.call('generateCsr', { keyId: key.keyId, serverId, format: 'DER' });
  const cert = pki.issue(Buffer.from(csr.csr, 'base64'), 'auth', serverId);
  return { keyId: key.keyId, cert: cert.toString('base64'), chain: [caB64] };
}

function softwareKey(serverId: string, name: string): { keyPem: string; authKey: Omit<AuthKeyInfo, 'keyId'> } {
  const keyPath = join(testbed.dir, `${name}.key`);
  const csrPem = execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-subj', `/CN=${name}`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const cert = pki.issue(Buffer.from(csrPem.replace(/-----[^-]+-----|\s+/g, ''), 'base64'), 'auth', serverId);
  return { keyPem: readFileSync(keyPath, 'utf8'), authKey: { cert: cert.toString('base64'), chain: [caB64] } };
}

const hsm = { ss1: await hsmKey('LOCAL/COM/1111/ss1'), ss2: await hsmKey('LOCAL/COM/2222/ss2') };
const soft = { ss1: softwareKey('LOCAL/COM/1111/ss1', 'ss1'), ss2: softwareKey('LOCAL/COM/2222/ss2', 'ss2') };

/** The server side: its own process (tls-peer.ts), as a provider's security server would be. */
const peer = fork(join(ROOT, 'test/softhsm/tls-peer.ts'), [], { execArgv: ['--import', 'tsx'], cwd: ROOT, env: { PATH: process.env.PATH! }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
let nextId = 1;
function call<T>(command: Command): Promise<T> {
  const id = nextId++;
  return new Promise((r) => {
    const on = (m: { id: number; result: T }) => m.id === id && (peer.off('message', on), r(m.result));
    peer.on('message', on);
    peer.send({ id, command });
  });
}

/** One full handshake (no session resumption), timed from connect to secureConnect. */
function handshake(context: tls.SecureContext, port: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const s = tls.connect({ secureContext: context, host: '127.0.0.1', port, ca: [rootPem], checkServerIdentity: () => undefined }, () => {
      const ms = performance.now() - started;
      s.destroy();
      resolvePromise(ms);
    });
    s.on('error', reject);
  });
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const round = (x: number) => Math.round(x * 100) / 100;

async function scenario(name: string, server: Identity, clientOptions: tls.SecureContextOptions) {
  const { port } = await call<{ port: number }>({ op: 'listen', identity: server, ca: [rootPem], rejectUnauthorized: true });
  const context = tls.createSecureContext({ ...clientOptions, ca: [rootPem] });
  for (let i = 0; i < 20; i++) await handshake(context, port); // warm-up
  const latencies: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) latencies.push(await handshake(context, port));
  let done = 0;
  const until = performance.now() + CONCURRENT_SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < until) {
      await handshake(context, port);
      done++;
    }
  }));
  const result = { p50_ms: round(quantile(latencies, 0.5)), p99_ms: round(quantile(latencies, 0.99)), sequential_per_s: Math.round(1000 / (latencies.reduce((a, b) => a + b, 0) / latencies.length)), concurrent16_per_s: Math.round(done / CONCURRENT_SECONDS) };
  console.log(`${name.padEnd(34)} p50 ${result.p50_ms} ms  p99 ${result.p99_ms} ms  sequential ${result.sequential_per_s}/s  16 concurrent ${result.concurrent16_per_s}/s`);
  return result;
}

const software = await scenario('software keys (both sides)', { kind: 'software', ...soft.ss1 }, softwareKeyTlsOptions(soft.ss2.keyPem, soft.ss2.authKey));
const hsmBoth = await scenario('HSM keys via the signer (both sides)', { kind: 'engine', socket, authKey: hsm.ss1 }, authKeyTlsOptions(socket, hsm.ss2));
const hsmServer = await scenario('HSM key on the server side only', { kind: 'engine', socket, authKey: hsm.ss1 }, softwareKeyTlsOptions(soft.ss2.keyPem, soft.ss2.authKey));

// The signer's own latency for one handshake-sized signature (SHA-256 digest, RSA-PSS), over one
// kept connection, to separate the HSM from the engine's connection-per-signature.
const digest = Buffer.alloc(32, 7).toString('base64');
const signLatencies: number[] = [];
for (let i = 0; i < SEQUENTIAL; i++) {
  const started = performance.now();
  await client.call('sign', { keyId: hsm.ss1.keyId, algorithm: 'SHA256withRSAandMGF1', digest });
  signLatencies.push(performance.now() - started);
}
const signP50 = round(quantile(signLatencies, 0.5));
console.log(`signer sign (RSA-2048 PSS, kept connection) p50 ${signP50} ms  p99 ${round(quantile(signLatencies, 0.99))} ms`);
// The engine's pattern: a new connection for every signature.
const freshLatencies: number[] = [];
for (let i = 0; i < SEQUENTIAL; i++) {
  const started = performance.now();
  const once = await SignerClient.connect(socket);
  await once.call('sign', { keyId: hsm.ss1.keyId, algorithm: 'SHA256withRSAandMGF1', digest });
  once.close();
  freshLatencies.push(performance.now() - started);
}
const freshP50 = round(quantile(freshLatencies, 0.5));
console.log(`signer sign (new connection each)          p50 ${freshP50} ms  p99 ${round(quantile(freshLatencies, 0.99))} ms`);

const summary = {
  tls_software_p50_ms: software.p50_ms,
  tls_software_per_s: software.sequential_per_s,
  tls_software_concurrent16_per_s: software.concurrent16_per_s,
  tls_hsm_p50_ms: hsmBoth.p50_ms,
  tls_hsm_p99_ms: hsmBoth.p99_ms,
  tls_hsm_per_s: hsmBoth.sequential_per_s,
  tls_hsm_concurrent16_per_s: hsmBoth.concurrent16_per_s,
  tls_hsm_server_only_p50_ms: hsmServer.p50_ms,
  tls_hsm_server_only_concurrent16_per_s: hsmServer.concurrent16_per_s,
  // Two signatures per mutual handshake: the extra time over software keys, halved.
  tls_hsm_signature_extra_ms: round((hsmBoth.p50_ms - software.p50_ms) / 2),
  signer_sign_p50_ms: signP50,
  signer_sign_new_connection_p50_ms: freshP50,
};
client.close();
await call({ op: 'close' });
signer.kill('SIGTERM');
await new Promise((r) => signer.once('exit', r));
testbed.cleanup();
console.log(JSON.stringify(summary));
