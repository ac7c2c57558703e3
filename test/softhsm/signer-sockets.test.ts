/**
 * Least privilege on the signer's sockets (issue 13 item 7), against the real daemon and SoftHSM:
 * the proxy socket serves what a proxy asks and refuses every administrative operation without
 * touching a key, a certificate or a token; the administration socket serves everything; and a
 * flood of connections holding partial frames is bounded, refused past the maximum and closed
 * after the idle timeout — measured in a daemon started by `xrd daemon start` with its flags.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { DEFAULT_MAX_FRAME, FrameDecoder, FrameKind } from '../../src/signerapi/frame.ts';
import { OPCODES, PROXY_OPERATIONS, PROTOCOL_VERSION, type OperationName } from '../../src/signerapi/operations.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { createTestCa, type TestCa } from '../support/openssl.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const PIN = 'pin-4242';
const MEMBER = 'DEV/COM/1111';
const SERVER = 'DEV/COM/1111/ss1';
let testbed: Testbed;
let daemon: SignerDaemon;
let admin: SignerClient;
let proxy: SignerClient;
let ca: TestCa;
let tokenId: string;
let signing: { keyId: string; certHash: string; certPem: string; csrId: string };
let auth: { keyId: string; certHash: string };

beforeAll(async () => {
  testbed = createTestbed();
  ca = createTestCa();
  daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni }, silentLogger());
  admin = await SignerClient.connect(daemon.socketPath);
  proxy = await SignerClient.connect(daemon.proxySocketPath);
  tokenId = (await admin.call('initToken', { label: 'sockets', soPin: '0000', userPin: PIN })).tokenId;
  await admin.call('activateToken', { token: tokenId, pin: PIN });
  // A member's signing key with its certificate and a pending CSR, and the server's authentication key.
  const key = await admin.call('generateKey', { token: tokenId, algorithm: 'RSA', usage: 'SIGNING' });
  const certPem = ca.issue((await admin.call('generateCsr', { keyId: key.keyId, memberId: MEMBER })).csr, 'nonRepudiation');
  const cert = await admin.call('importCert', { cert: certPem, chain: [ca.certPem] });
  const csr = await admin.call('generateCsr', { keyId: key.keyId, memberId: MEMBER });
  signing = { keyId: key.keyId, certHash: cert.hash, certPem, csrId: csr.csrId };
  const authKey = await admin.call('generateKey', { token: tokenId, algorithm: 'EC', usage: 'AUTHENTICATION' });
  const authCert = await admin.call('importCert', { cert: ca.issue((await admin.call('generateCsr', { keyId: authKey.keyId, serverId: SERVER })).csr, 'digitalSignature') });
  await admin.call('setCertStatus', { hash: authCert.hash, status: 'registered' });
  await admin.call('activateCert', { hash: authCert.hash });
  auth = { keyId: authKey.keyId, certHash: authCert.hash };
});

afterAll(async () => {
  admin?.close();
  proxy?.close();
  await daemon?.close();
  testbed.cleanup();
});

const digest = createHash('sha256').update('a message').digest();

/** Everything an administrator could see change: tokens, keys, certificates and CSRs with their states. */
async function adminView() {
  const token = await admin.call('getToken', { token: tokenId });
  return { tokens: await admin.call('listTokens', {}), keys: token.keys, token: { ...token, keys: undefined } };
}

describe('the proxy socket', () => {
  it('proxy socket asks to delete a key → OperationNotAllowed, key still there, the attempt audited', async () => {
    await expect(proxy.call('deleteKey', { keyId: signing.keyId })).rejects.toMatchObject({ code: 'OperationNotAllowed', faultCode: 'Signer.OperationNotAllowed', details: { op: 'deleteKey', socket: 'proxy' } });
    const keys = await admin.call('listKeys', { token: tokenId });
    expect(keys.find((k) => k.keyId === signing.keyId)).toMatchObject({ available: true, certs: [expect.objectContaining({ hash: signing.certHash })] });
    // Still usable: a signature with it verifies.
    const { signature } = await proxy.call('sign', { keyId: signing.keyId, algorithm: 'SHA256withRSA', digest: digest.toString('base64') });
    expect(nodeVerify('sha256', Buffer.from('a message'), createPublicKey(signing.certPem), Buffer.from(signature, 'base64'))).toBe(true);
    const audit = readFileSync(join(testbed.dataDir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit).toContainEqual(expect.objectContaining({ event: 'deleteKey', keyId: signing.keyId, socket: 'proxy', result: 'failure', error: 'Signer.OperationNotAllowed' }));
  });

  it('proxy socket asks for every other operation a proxy does not need → OperationNotAllowed, and nothing changed', async () => {
    const otherCert = ca.issue((await admin.call('generateCsr', { keyId: signing.keyId, memberId: 'DEV/COM/2222' })).csr, 'nonRepudiation');
    const before = await adminView();
    // Bodies that would do harm if they ran: a wrong PIN would count against the token, a login
    // with the right one or a logout would change its state, and so on.
    const attempts: Record<string, object> = {
      listTokens: {},
      initToken: { label: 'intruder', soPin: 'so-pin-sent-to-proxy', userPin: 'pin-sent-to-proxy' },
      activateToken: { token: tokenId, pin: 'wrong-pin-sent-to-proxy' },
      deactivateToken: { token: tokenId },
      changePin: { token: tokenId, oldPin: PIN, newPin: 'new-pin-sent-to-proxy' },
      setTokenFriendlyName: { token: tokenId, friendlyName: 'intruder' },
      generateKey: { token: tokenId, algorithm: 'EC', usage: 'SIGNING' },
      deleteKey: { keyId: auth.keyId },
      generateCsr: { keyId: signing.keyId, memberId: MEMBER },
      deleteCsr: { csrId: signing.csrId },
      getCsr: { csrId: signing.csrId },
      importCert: { cert: otherCert },
      listCerts: {},
      activateCert: { hash: auth.certHash },
      disableCert: { hash: auth.certHash },
      setCertStatus: { hash: auth.certHash, status: 'global error' },
      deleteCert: { hash: signing.certHash },
      verify: { keyId: signing.keyId, algorithm: 'SHA256withRSA', digest: digest.toString('base64'), signature: 'AA==' },
    };
    // Every operation is either the proxy's or tried here: a new one must be placed on one side.
    expect(Object.keys(attempts).sort()).toEqual((Object.keys(OPCODES) as OperationName[]).filter((op) => !PROXY_OPERATIONS.has(op)).sort());
    for (const [op, body] of Object.entries(attempts)) {
      await expect(proxy.call(op as OperationName, body as never), op).rejects.toMatchObject({ code: 'OperationNotAllowed', details: { op } });
    }
    expect(await adminView()).toEqual(before);
    expect(before.token).toMatchObject({ active: true, status: 'OK' });
    // The refusals are audited without the PINs they carried.
    const audit = readFileSync(join(testbed.dataDir, 'audit.log'), 'utf8');
    expect(audit).toContain('"event":"changePin"');
    expect(audit).not.toMatch(/pin-sent-to-proxy|pin-4242/);
  });

  it('serves what a proxy asks: signatures, signing and authentication info, OCSP responses, health, key and token state', async () => {
    await expect(proxy.call('memberSigningInfo', { memberId: MEMBER })).resolves.toMatchObject({ keyId: signing.keyId, certHash: signing.certHash });
    await expect(proxy.call('authKeyInfo', { serverId: SERVER })).resolves.toMatchObject({ keyId: auth.keyId, certHash: auth.certHash });
    const sha512 = createHash('sha512').update('handshake').digest('base64');
    await expect(proxy.call('sign', { keyId: auth.keyId, algorithm: 'SHA512withECDSA', digest: sha512 })).resolves.toHaveProperty('signature');
    await expect(proxy.call('getOcspResponses', { certHashes: ['00'.repeat(20)] })).resolves.toEqual({ responses: [null] });
    await expect(proxy.call('setOcspResponses', { certHashes: [], responses: [] })).resolves.toEqual({ stored: 0 });
    await expect(proxy.call('listKeys', {})).resolves.toEqual(expect.arrayContaining([expect.objectContaining({ keyId: auth.keyId })]));
    await expect(proxy.call('getToken', { token: tokenId })).resolves.toMatchObject({ active: true });
    const health = await proxy.call('health', {});
    expect(health.connections).toEqual([expect.objectContaining({ socket: 'admin', connections: 1 }), expect.objectContaining({ socket: 'proxy', connections: 1 })]);
  });

  it('the administration socket serves every operation: it deletes a key the proxy socket could not', async () => {
    const key = await admin.call('generateKey', { token: tokenId, algorithm: 'EC', usage: 'SIGNING' });
    await expect(proxy.call('deleteKey', { keyId: key.keyId })).rejects.toMatchObject({ code: 'OperationNotAllowed' });
    await expect(admin.call('deleteKey', { keyId: key.keyId })).resolves.toEqual({ keyId: key.keyId });
    expect((await admin.call('listKeys', {})).map((k) => k.keyId)).not.toContain(key.keyId);
  });

  it('both sockets are the daemon user\'s alone by default; the proxy socket has a mode and group of its own', async () => {
    for (const path of [daemon.socketPath, daemon.proxySocketPath]) expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(daemon.proxySocketPath).toBe(join(testbed.dataDir, 'signer-proxy.sock'));
    const gid = 65534; // nogroup: any group other than ours proves the socket was handed over
    const other = await startSignerDaemon(
      { dataDir: testbed.dataDir, devicesIni: testbed.devicesIni, socketPath: join(testbed.dir, 'admin.sock'), proxySocketPath: join(testbed.dir, 'proxy.sock'), proxySocketMode: 0o660, proxySocketGroup: gid },
      silentLogger(),
    );
    try {
      expect(statSync(other.socketPath).mode & 0o777).toBe(0o600);
      const st = statSync(other.proxySocketPath);
      expect([st.mode & 0o777, st.gid]).toEqual([0o660, gid]);
    } finally {
      await other.close();
    }
  });

  it('refuses one path for both sockets', async () => {
    const path = join(testbed.dir, 'same.sock');
    await expect(startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni, socketPath: path, proxySocketPath: path }, silentLogger())).rejects.toMatchObject({ code: 'InvalidConfiguration' });
  });
});

describe('connection limits of `xrd daemon start`', () => {
  let child: ChildProcess;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = join(testbed.dir, 'flooded');
    child = spawn(process.execPath, [XRD, 'daemon', 'start', '--data-dir', dataDir, '--devices', testbed.devicesIni, '--no-prompt', '--max-connections', '32', '--idle-timeout', '3'], {
      env: { ...testbed.env, XRD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolvePromise, reject) => {
      let output = '';
      child.stdout!.on('data', (d) => {
        output += d;
        if (output.includes('signer listening')) resolvePromise();
      });
      child.stderr!.on('data', (d) => (output += d));
      child.once('exit', (code) => reject(new Error(`daemon exited with ${code}: ${output}`)));
    });
  });

  afterAll(() => {
    child?.kill('SIGKILL');
  });

  /** Resident memory of the daemon in KiB: now (VmRSS) or its peak so far (VmHWM). */
  const memory = (field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]);

  it('partial-frame flood: 200 connections holding 1 MB partial frames — 32 held with bounded memory, the rest refused, all closed after the idle timeout', async () => {
    const rssBefore = memory('VmRSS');
    const proxySocket = join(dataDir, 'signer-proxy.sock');
    // A frame announcing the largest size, sent but for its last 1000 bytes.
    const partial = Buffer.alloc(4 + DEFAULT_MAX_FRAME - 1000, 0x20);
    partial.writeUInt32BE(DEFAULT_MAX_FRAME, 0);
    partial.writeUInt8(PROTOCOL_VERSION, 4);
    const flood = Array.from({ length: 200 }, () => {
      const socket = createConnection(proxySocket);
      const c = { socket, codes: [] as string[], closed: false };
      const decoder = new FrameDecoder();
      socket.on('data', (d) => c.codes.push(...decoder.push(d).filter((f) => f.kind === FrameKind.Error).map((f) => (JSON.parse(f.body.toString()) as { code: string }).code)));
      socket.on('close', () => (c.closed = true));
      socket.on('error', () => undefined);
      socket.write(partial);
      return c;
    });
    const status = await SignerClient.connect(join(dataDir, 'signer.sock'));
    try {
      const proxyStats = async () => (await status.call('health', {})).connections!.find((s) => s.socket === 'proxy')!;
      // Watched until every flooding connection is closed. Nothing here depends on how fast the
      // daemon reads: a held connection that times out before the others are read frees its slot
      // for no one, since all 200 were accepted or refused when they connected. The administration
      // socket, with connection slots of its own, answers all along.
      let most = { connections: 0, pendingBytes: 0 };
      await until('every flooding connection is closed', async () => {
        const s = await proxyStats();
        most = { connections: Math.max(most.connections, s.connections), pendingBytes: Math.max(most.pendingBytes, s.pendingBytes) };
        return flood.every((c) => c.closed);
      });
      // Bounded: at most 32 partial frames of at most the frame limit were held, not 200 MB.
      expect(most.connections).toBeLessThanOrEqual(32);
      expect(most.pendingBytes).toBeGreaterThan(0);
      expect(most.pendingBytes).toBeLessThanOrEqual(32 * partial.length);
      expect(memory('VmHWM') - rssBefore).toBeLessThan(150 * 1024);
      // The 32 held were told they were idle; the other 168 were refused. A refused client still
      // writing its megabyte may see the daemon's hang-up (EPIPE) before the notice, so it may
      // have read nothing, but none read anything else.
      const codes = flood.map((c) => c.codes.join(','));
      expect(codes.filter((c) => c === 'IdleConnectionClosed')).toHaveLength(32);
      expect(codes.filter((c) => !['IdleConnectionClosed', 'TooManyConnections', ''].includes(c))).toEqual([]);
      expect(await proxyStats()).toEqual({ socket: 'proxy', connections: 0, refusedConnections: 168, pendingBytes: 0 });
      // And the proxy socket serves again.
      const proxyClient = await SignerClient.connect(proxySocket);
      await expect(proxyClient.call('health', {})).resolves.toMatchObject({ status: 'ok' });
      proxyClient.close();
    } finally {
      status.close();
      flood.forEach((c) => c.socket.destroy());
    }
  });

  it('an idle connection is closed after --idle-timeout with IdleConnectionClosed', async () => {
    const idle = await rawConnection(join(dataDir, 'signer.sock'));
    expect(idle.codes).toEqual(['IdleConnectionClosed']);
  });
});

/** Connects, sends nothing, and resolves with the error codes it got once the daemon closed it. */
function rawConnection(path: string): Promise<{ codes: string[] }> {
  return new Promise((resolvePromise, reject) => {
    const socket: Socket = createConnection(path);
    const decoder = new FrameDecoder();
    const codes: string[] = [];
    socket.on('data', (d) => codes.push(...decoder.push(d).map((f) => (JSON.parse(f.body.toString()) as { code: string }).code)));
    socket.on('close', () => resolvePromise({ codes }));
    socket.on('error', reject);
  });
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not within 15 s`);
}
