/**
 * Mutual TLS between security servers with authentication keys that stay on SoftHSM: each server
 * has its own token and signer daemon (separate processes); each server's TLS side is a third
 * process without PIN, key or PKCS#11 module that reaches its key through the signer engine.
 * Independent peer: `openssl s_client`.
 */
import { execFile, execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, constants, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { authKeyTlsOptions, explainAuthHandshakeFailure, type AuthKeyInfo } from '../../src/tls/auth-key-tls.ts';
import { engineKeyIdentifier, signerEngineLibrary } from '../../src/tls/signer-engine.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { freePort } from '../support/net.ts';
import { openssl } from '../support/openssl.ts';
import type { Command, ConnectResult, Identity, ServerLog } from './tls-peer.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SIGNER = join(ROOT, 'test/softhsm/tls-signer.ts');
const PEER = join(ROOT, 'test/softhsm/tls-peer.ts');

/** One security server: a token, its signer daemon (own process), the admin's client, a TLS process. */
interface SecurityServer {
  readonly id: string;
  readonly pin: string;
  readonly testbed: Testbed;
  daemon: ChildProcess;
  client: SignerClient;
  tokenId: string;
  authKey: AuthKeyInfo;
  tls: Peer;
}

interface Peer {
  readonly process: ChildProcess;
  call<T>(command: Command): Promise<T>;
}

let pkiTestbed: Testbed;
let pki: LocalPki;
let rootPem: string;
let caDer: Buffer;
let rootDer: Buffer;
const servers: SecurityServer[] = [];
let ss1: SecurityServer;
let ss2: SecurityServer;

const socketOf = (s: SecurityServer) => join(s.testbed.dataDir, 'signer.sock');
const engine = (s: SecurityServer, timeoutMs?: number): Identity => ({ kind: 'engine', socket: socketOf(s), authKey: s.authKey, timeoutMs });

/** The signer daemon in its own process, started with no PIN: the test logs in through the socket. */
async function startDaemon(testbed: Testbed): Promise<ChildProcess> {
  const daemon = spawn(process.execPath, ['--import', 'tsx', SIGNER, testbed.dataDir, testbed.devicesIni, pki.globalConfDir], { cwd: ROOT, env: testbed.env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolvePromise, reject) => {
    let out = '';
    daemon.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('signer listening on')) resolvePromise();
    });
    daemon.once('exit', (code) => reject(new Error(`signer daemon exited with ${code}`)));
  });
  return daemon;
}

async function stopDaemon(s: SecurityServer): Promise<void> {
  s.client.close();
  const exited = new Promise((r) => s.daemon.once('exit', r));
  s.daemon.kill('SIGTERM');
  await exited;
}

/** A TLS process whose whole environment is built here: a PATH and a locale, nothing else. */
function startPeer(): Peer {
  const child = fork(PEER, [], { execArgv: ['--import', 'tsx'], cwd: ROOT, env: { PATH: process.env.PATH!, LANG: 'C.UTF-8' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(m.error));
    else w?.resolve(m.result);
  });
  return {
    process: child,
    call: <T>(command: Command) =>
      new Promise<T>((resolvePromise, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve: resolvePromise as (v: unknown) => void, reject });
        child.send({ id, command });
      }),
  };
}

/** Token, RSA authentication key, CSR, certificate from the local CA registered for the server, as an administrator does it. */
async function securityServer(id: string, pin: string): Promise<SecurityServer> {
  const testbed = createTestbed();
  const daemon = await startDaemon(testbed);
  const client = await SignerClient.connect(join(testbed.dataDir, 'signer.sock'));
  const token = await client.call('initToken', { label: id.split('/').pop()!, soPin: '0000', userPin: pin });
  await client.call('activateToken', { token: token.tokenId, pin });
  const s: SecurityServer = { id, pin, testbed, daemon, client, tokenId: token.tokenId, authKey: undefined as never, tls: startPeer() };
  const registered = await registeredAuthKey(s, 'RSA');
  // What a proxy does at start: ask its signer for the server's authentication key and certificate.
  s.authKey = await client.call('authKeyInfo', { serverId: id });
  expect(s.authKey).toMatchObject(registered);
  return s;
}

async function registeredAuthKey(s: SecurityServer, algorithm: 'RSA' | 'EC'): Promise<AuthKeyInfo> {
  const key = await s.client.call('generateKey', { token: s.tokenId, algorithm, usage: 'AUTHENTICATION' });
  const csr = await s.client.call('generateCsr', { keyId: key.keyId, serverId: s.id, format: 'DER' });
  const cert = pki.issue(Buffer.from(csr.csr, 'base64'), 'auth', s.id);
  const imported = await s.client.call('importCert', { cert: cert.toString('base64'), chain: [caDer.toString('base64'), rootDer.toString('base64')] });
  await s.client.call('setCertStatus', { hash: imported.hash, status: 'registration in progress' });
  await s.client.call('setCertStatus', { hash: imported.hash, status: 'registered' });
  await s.client.call('activateCert', { hash: imported.hash });
  return { keyId: key.keyId, cert: imported.cert, chain: imported.chain };
}

const certOf = (info: AuthKeyInfo) => new X509Certificate(Buffer.from(info.cert, 'base64'));
const connect = (from: SecurityServer, port: number, extra?: Extract<Command, { op: 'connect' }>['extra'], identity = engine(from)) =>
  from.tls.call<ConnectResult>({ op: 'connect', identity, port, ca: [rootPem], extra });
const explain = (s: SecurityServer, keyId: string, error?: string, timeoutMs?: number) =>
  s.tls.call<{ code: string; message: string; engine?: { kind: string; signerCode?: string } }>({ op: 'explain', socket: socketOf(s), keyId, error, timeoutMs });
const serverLog = (s: SecurityServer) => s.tls.call<ServerLog>({ op: 'serverLog' });
const listen = async (s: SecurityServer, identity: Identity, rejectUnauthorized = true) => (await s.tls.call<{ port: number }>({ op: 'listen', identity, ca: [rootPem], rejectUnauthorized })).port;

let ss1Port: number;

beforeAll(async () => {
  pkiTestbed = createTestbed();
  pki = LocalPki.init(join(pkiTestbed.dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort() });
  rootPem = readFileSync(join(pki.dir, 'pki', 'root.cert.pem'), 'utf8');
  rootDer = new X509Certificate(rootPem).raw;
  caDer = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw;
  [ss1, ss2] = await Promise.all([securityServer('LOCAL/COM/1111/ss1', 'ss1-Pin-4c9e71'), securityServer('LOCAL/COM/2222/ss2', 'ss2-Pin-83d0f2')]);
  servers.push(ss1, ss2);
  ss1Port = await listen(ss1, engine(ss1));
});

afterAll(async () => {
  for (const s of servers) {
    await s.tls.call({ op: 'close' }).catch(() => undefined);
    s.client.close();
    s.daemon.kill('SIGKILL');
    s.testbed.cleanup();
  }
  pkiTestbed?.cleanup();
});

describe('mutual TLS with authentication keys on the HSM, signed by the signer', () => {
  it('two security servers complete a TLS 1.2 mutual handshake with HSM-held keys and exchange data; each sees the other', async () => {
    expect(loadGlobalConf(pki.globalConfDir).isRegisteredAuthCert({ instance: 'LOCAL', memberClass: 'COM', memberCode: '1111' }, 'ss1', certOf(ss1.authKey).raw)).toBe(true);
    const before = (await serverLog(ss1)).sessions.length;
    const result = await connect(ss2, ss1Port);
    expect(result).toMatchObject({ ok: true, protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384' });
    // The client verified ss1's chain up to the local root and saw ss1's auth certificate...
    expect(result.peer!.raw).toBe(ss1.authKey.cert);
    expect(result.peer!.subject).toContain('CN=ss1');
    // ...and ss1 verified ss2's, and got the client's data over the channel.
    const session = (await serverLog(ss1)).sessions[before]!;
    expect(session.peer!.raw).toBe(ss2.authKey.cert);
    expect(session.said).toBe('hello from the client');
    expect(result.answer).toContain('server saw ');
    expect(result.answer).toContain('CN=ss2');
  });

  it("the reference's suites and RSA PKCS#1 v1.5 signatures work too (both sides' signatures by the signer)", async () => {
    for (const cipher of ['ECDHE-RSA-AES256-SHA384', 'DHE-RSA-AES256-SHA256']) {
      const result = await connect(ss2, ss1Port, { ciphers: cipher, sigalgs: 'rsa_pkcs1_sha512' });
      expect(result).toMatchObject({ ok: true, cipher, peer: { raw: ss1.authKey.cert } });
    }
  });

  it('openssl s_client completes the handshake and verifies the server certificate against the local CA (RSA-PSS and PKCS#1 v1.5)', async () => {
    // A peer outside X-Road with a throwaway software key: the server asks for a certificate and
    // leaves judging it to the trust layer (rejectUnauthorized false), as the proxies do.
    const port = await listen(ss1, engine(ss1), false);
    const dir = ss1.testbed.dir;
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'peer.key'), '-out', join(dir, 'peer.pem'), '-days', '1', '-subj', '/CN=openssl peer']);
    writeFileSync(join(dir, 'root.pem'), rootPem);
    const sClient = (sigalgs: string[]) =>
      new Promise<string>((resolvePromise, reject) => {
        const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-CAfile', join(dir, 'root.pem'), '-verify_return_error', '-cert', join(dir, 'peer.pem'), '-key', join(dir, 'peer.key'), '-ign_eof', ...sigalgs];
        const child = execFile('openssl', args, { timeout: 10_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolvePromise(stdout + stderr)));
        child.stdin!.end('ping from openssl\n');
      });

    const pss = await sClient([]);
    expect(pss).toContain('Verify return code: 0 (ok)');
    expect(pss).toMatch(/Peer signature type: RSA-PSS/);
    expect(pss).toMatch(/subject=.*CN = ss1/);
    expect(pss).toContain('server saw CN=openssl peer');

    const pkcs1 = await sClient(['-sigalgs', 'RSA+SHA384']);
    expect(pkcs1).toContain('Verify return code: 0 (ok)');
    expect(pkcs1).toMatch(/Peer signature type: RSA\n/);
    expect(pkcs1).toMatch(/Peer signing digest: SHA384/);
    expect((await serverLog(ss1)).sessions.at(-1)).toMatchObject({ said: 'ping from openssl' });
  });

  it('an EC authentication key on the HSM serves the ECDHE-ECDSA suite', async () => {
    const ec = await registeredAuthKey(ss1, 'EC');
    const port = await listen(ss1, { ...engine(ss1), authKey: ec });
    const result = await connect(ss2, port);
    expect(result).toMatchObject({ ok: true, cipher: 'ECDHE-ECDSA-AES256-GCM-SHA384', peer: { raw: ec.cert } });
  });

  it('the processes making the handshakes have no PIN in their environment or arguments and no PKCS#11 module loaded', async () => {
    for (const s of servers) {
      const self = await s.tls.call<{ pid: number; env: Record<string, string>; argv: string[]; execArgv: string[]; maps: string }>({ op: 'self' });
      expect(self.pid).toBe(s.tls.process.pid);
      const seen = [readFileSync(`/proc/${self.pid}/environ`, 'utf8'), readFileSync(`/proc/${self.pid}/cmdline`, 'utf8'), JSON.stringify(self)];
      for (const text of seen) for (const other of servers) expect(text).not.toContain(other.pin);
      expect(Object.keys(self.env).sort()).toEqual(['LANG', 'PATH']);
      expect(self.maps).not.toMatch(/softhsm|pkcs11/i);
      expect(self.maps).toContain('xrd-signer-engine.so');
    }
  });

  it('after logout handshakes fail with a coded TokenNotActive, on either side; after login through the signer they work again', async () => {
    // ss2 (the client) logged out: its CertificateVerify cannot be signed.
    await ss2.client.call('deactivateToken', { token: ss2.tokenId });
    const clientSide = await connect(ss2, ss1Port);
    expect(clientSide.ok).toBe(false);
    expect(clientSide.error).toMatch(/signer refused to sign.*code=TokenNotActive/);
    const explained = await explain(ss2, ss2.authKey.keyId, clientSide.error);
    expect(explained).toMatchObject({ code: 'TokenNotActive', engine: { kind: 'refused', signerCode: 'TokenNotActive' } });
    expect(explained.message).toContain(ss2.tokenId);
    await ss2.client.call('activateToken', { token: ss2.tokenId, pin: ss2.pin });
    expect((await connect(ss2, ss1Port)).ok).toBe(true);

    // ss1 (the server) logged out: its ServerKeyExchange cannot be signed; the client only gets an alert.
    await ss1.client.call('deactivateToken', { token: ss1.tokenId });
    const errorsBefore = (await serverLog(ss1)).errors.length;
    const serverSide = await connect(ss2, ss1Port);
    expect(serverSide.ok).toBe(false);
    expect(serverSide.error).toMatch(/alert internal error/);
    const serverError = (await serverLog(ss1)).errors.slice(errorsBefore).join('\n');
    expect(serverError).toContain('code=TokenNotActive');
    expect(await explain(ss1, ss1.authKey.keyId, serverError)).toMatchObject({ code: 'TokenNotActive' });
    // Without the TLS error text, the signer's answers alone give the same code; a connected client does as well as a socket path.
    expect(await explain(ss1, ss1.authKey.keyId)).toMatchObject({ code: 'TokenNotActive' });
    expect(await explainAuthHandshakeFailure(ss1.client, ss1.authKey.keyId)).toMatchObject({ code: 'TokenNotActive', details: { tokenId: ss1.tokenId } });
    await ss1.client.call('activateToken', { token: ss1.tokenId, pin: ss1.pin });
    expect((await connect(ss2, ss1Port)).ok).toBe(true);
  });

  it('a configuration the engine cannot use is refused when the secure context is made, with coded errors', async () => {
    expect(() => engineKeyIdentifier({ socketPath: 'relative/signer.sock', keyId: ss1.authKey.keyId, cert: ss1.authKey.cert })).toThrow(expect.objectContaining({ code: 'InvalidConfiguration' }));
    expect(() => engineKeyIdentifier({ socketPath: `/${'x'.repeat(120)}`, keyId: ss1.authKey.keyId, cert: ss1.authKey.cert })).toThrow(expect.objectContaining({ code: 'InvalidConfiguration' }));
    expect(() => engineKeyIdentifier({ socketPath: socketOf(ss1), keyId: 'not-hex', cert: ss1.authKey.cert })).toThrow(expect.objectContaining({ code: 'InvalidIdentifier' }));
    // The engine's own parser, for identifiers written by hand (Node keeps the reason, not the detail).
    const base = authKeyTlsOptions(socketOf(ss1), ss1.authKey);
    expect(() => tls.createSecureContext({ ...base, privateKeyIdentifier: `socket=${socketOf(ss1)};key=${ss1.authKey.keyId}` })).toThrow(/xrd signer engine::invalid key identifier/);
    expect(() => tls.createSecureContext({ ...base, privateKeyIdentifier: `${base.privateKeyIdentifier};colour=blue` })).toThrow(/xrd signer engine::invalid key identifier/);
    expect(() => tls.createSecureContext(base)).not.toThrow();
    // A key that is not the certificate's: OpenSSL refuses the pair before any handshake.
    const other = engineKeyIdentifier({ socketPath: socketOf(ss1), keyId: ss2.authKey.keyId, cert: ss2.authKey.cert });
    expect(() => tls.createSecureContext({ ...base, privateKeyIdentifier: other })).toThrow(/key values mismatch/);
  });

  it('an OpenSSL program outside Node signs through the engine, also after the first ENGINE holding it is freed', () => {
    // Debian's libcrypto instead of Node's; the engine's key methods must outlive the ENGINE that
    // first loaded them (OpenSSL frees an ENGINE's EVP_PKEY methods with it).
    const host = join(ss1.testbed.dir, 'engine-host');
    execFileSync('cc', ['-o', host, join(ROOT, 'test/softhsm/tls-engine-host.c'), '-lcrypto']);
    const identifier = engineKeyIdentifier({ socketPath: socketOf(ss1), keyId: ss1.authKey.keyId, cert: ss1.authKey.cert });
    const signatures = execFileSync(host, [signerEngineLibrary(), identifier]).toString().trim().split('\n');
    expect(signatures).toHaveLength(2);
    const publicKey = certOf(ss1.authKey).publicKey;
    for (const hex of signatures) {
      expect(verify('sha256', Buffer.from('abc'), { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(hex, 'hex'))).toBe(true);
    }
  });

  it('a key the signer does not know fails the handshake with KeyNotFound', async () => {
    const unknown = { ...engine(ss2), authKey: { ...ss2.authKey, keyId: 'AB'.repeat(20) } };
    const result = await connect(ss2, ss1Port, undefined, unknown);
    expect(result.error).toMatch(/code=KeyNotFound/);
    expect(await explain(ss2, 'AB'.repeat(20), result.error)).toMatchObject({ code: 'KeyNotFound' });
  });

  it('a hung signer fails the handshake within the engine timeout, later ones within 100 ms, and the TLS process keeps serving', async () => {
    const port = await listen(ss1, engine(ss1, 300));
    ss1.daemon.kill('SIGSTOP');
    try {
      const result = await connect(ss2, port);
      expect(result.ok).toBe(false);
      // Which bound ended it is in the TLS process's log: the engine's 300 ms deadline.
      const serverError = (await serverLog(ss1)).errors.at(-1)!;
      expect(serverError).toMatch(/signer did not answer in time:.*no answer within 300 ms$/m);
      // Asking the hung signer why times out too, in bounded time.
      expect(await explain(ss1, ss1.authKey.keyId, serverError, 300)).toMatchObject({ code: 'RequestTimeout' });
      // The next handshake, even with the default 2 s timeout, holds the event loop only briefly:
      // it waits the shortened 100 ms, not the 2 s.
      const again = await connect(ss2, ss1Port);
      expect(again.ok).toBe(false);
      expect((await serverLog(ss1)).errors.at(-1)).toMatch(/no answer within 100 ms \(shortened: the signer missed a deadline/);
    } finally {
      ss1.daemon.kill('SIGCONT');
    }
    await ss1.client.call('health', {}); // the daemon has caught up with what queued while it was stopped
    // Back at once, without waiting out the 5 s.
    expect((await connect(ss2, ss1Port)).ok).toBe(true);
    expect((await connect(ss2, port)).ok).toBe(true);
  });

  it('a stopped signer fails handshakes at once with NetworkError; after a restart and login they work again, the TLS process untouched', async () => {
    await stopDaemon(ss1);
    const errorsBefore = (await serverLog(ss1)).errors.length;
    const result = await connect(ss2, ss1Port);
    expect(result.ok).toBe(false);
    // At once: the connect to the socket failed, no deadline was waited for.
    const serverError = (await serverLog(ss1)).errors.slice(errorsBefore).join('\n');
    expect(serverError).toMatch(/signer unreachable:.*connect .*signer\.sock: No such file/);
    expect(await explain(ss1, ss1.authKey.keyId, serverError)).toMatchObject({ code: 'NetworkError' });

    ss1.daemon = await startDaemon(ss1.testbed);
    ss1.client = await SignerClient.connect(socketOf(ss1));
    expect(await explain(ss1, ss1.authKey.keyId)).toMatchObject({ code: 'TokenNotActive' });
    await ss1.client.call('activateToken', { token: ss1.tokenId, pin: ss1.pin });
    expect((await connect(ss2, ss1Port)).ok).toBe(true);
  });
});
