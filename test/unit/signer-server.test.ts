/**
 * The signer's socket server with a fake service, for what a client can make it hold: the allowed
 * operations of a socket, requests and bytes in flight, idle connections, and the client's resend
 * after an idle close. The real daemon with SoftHSM is test/softhsm/signer-sockets.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { SignerClient, SignerConnection } from '../../src/signerapi/signer-client.ts';
import { SignerServer, type ConnectionLimits, type SignerHandler } from '../../src/signer/signer-server.ts';
import { FrameDecoder, FrameKind, encodeFrame } from '../../src/signerapi/frame.ts';
import { OPCODES, type OperationName } from '../../src/signerapi/operations.ts';
import { decodeSignRequest } from '../../src/signerapi/sign-body.ts';

const dirs: string[] = [];
const servers: SignerServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  await Promise.all(servers.splice(0).map((s) => s.close()));
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

/** A service whose answers the test releases: every request waits in `waiting` until `release()`. */
function heldService() {
  const waiting: { op: OperationName; release: () => void }[] = [];
  const handled: OperationName[] = [];
  const refused: OperationName[] = [];
  const service: SignerHandler = {
    handle: ((op: OperationName) => {
      handled.push(op);
      return new Promise<unknown>((resolve) => waiting.push({ op, release: () => resolve({ op }) }));
    }) as SignerHandler['handle'],
    refused: (op) => void refused.push(op),
    signBinary: () => {
      handled.push('signBinary');
      return new Promise<Buffer>((resolve) => waiting.push({ op: 'signBinary', release: () => resolve(Buffer.from('signature')) }));
    },
  };
  return { service, waiting, handled, refused, releaseAll: () => waiting.splice(0).forEach((w) => w.release()) };
}

/** A service that answers at once. */
function promptService() {
  const handled: OperationName[] = [];
  const service: SignerHandler = {
    handle: (async (op: OperationName) => (handled.push(op), { op })) as SignerHandler['handle'],
    refused: () => undefined,
    // Answers the digest backwards, after decoding the body as the daemon does.
    signBinary: async (body: Buffer) => (handled.push('signBinary'), Buffer.from(decodeSignRequest(body).digest).reverse()),
  };
  return { service, handled };
}

async function listen(service: SignerHandler, options: { operations?: ReadonlySet<OperationName>; limits?: Partial<ConnectionLimits> } = {}): Promise<{ server: SignerServer; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-server-'));
  dirs.push(dir);
  const path = join(dir, 's.sock');
  const server = await SignerServer.listen(service, { socketPath: path, name: 'test', ...options }, silentLogger());
  servers.push(server);
  return { server, path };
}

/** A raw connection recording the frames it gets and whether it was closed. */
function raw(path: string, options: { allowHalfOpen?: boolean } = {}) {
  const socket = createConnection({ path, ...options });
  sockets.push(socket);
  const decoder = new FrameDecoder();
  const frames: { requestId: number; kind: number; code?: string }[] = [];
  let closed = false;
  socket.on('data', (d) => frames.push(...decoder.push(d).map((f) => ({ requestId: f.requestId, kind: f.kind, code: f.kind === FrameKind.Error ? (JSON.parse(f.body.toString()) as { code: string }).code : undefined }))));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  return { socket, frames, closed: () => closed };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`${what} did not happen`);
}

const request = (id: number, op: OperationName, body: object = {}) => encodeFrame(FrameKind.Request, id, OPCODES[op], 0, JSON.stringify(body));

describe('signer socket server', () => {
  it('refuses an operation outside the socket\'s set before the service sees it, and says so to the service for the audit', async () => {
    const fake = promptService();
    const refused: OperationName[] = [];
    const { path } = await listen({ ...fake.service, refused: (op) => void refused.push(op) }, { operations: new Set<OperationName>(['sign']) });
    const client = await SignerClient.connect(path);
    await expect(client.call('deleteKey', { keyId: 'AB' })).rejects.toMatchObject({ code: 'OperationNotAllowed', details: { op: 'deleteKey', socket: 'test' } });
    await expect(client.call('sign', { keyId: 'AB', algorithm: 'SHA256withRSA', digest: '' })).resolves.toEqual({ op: 'sign' });
    // Refused before its body is looked at: even one that is not JSON.
    const c = raw(path);
    c.socket.write(encodeFrame(FrameKind.Request, 9, OPCODES.deleteKey, 0, '{not json'));
    await until('the refusal', () => c.frames.length === 1);
    expect(c.frames[0]).toEqual({ requestId: 9, kind: FrameKind.Error, code: 'OperationNotAllowed' });
    expect(fake.handled).toEqual(['sign']);
    expect(refused).toEqual(['deleteKey', 'deleteKey']);
    client.close();
  });

  it('signBinary: a binary body both ways, no JSON; a malformed body is a coded error frame and the connection stays', async () => {
    const fake = promptService();
    const { path } = await listen(fake.service);
    const client = await SignerClient.connect(path);
    const digest = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    const signature = await client.call('signBinary', { keyId: 'ab01', algorithm: 'SHA256withECDSA', digest, raw: true });
    expect(signature).toEqual(Buffer.from(digest).reverse());
    // The client refuses what it cannot encode before anything is sent.
    await expect(client.call('signBinary', { keyId: 'AB', algorithm: 'MD5withRSA', digest })).rejects.toMatchObject({ code: 'UnsupportedSignAlgorithm' });
    const c = raw(path);
    c.socket.write(encodeFrame(FrameKind.Request, 5, OPCODES.signBinary, 0, Buffer.from([7, 0])));
    c.socket.write(encodeFrame(FrameKind.Request, 6, OPCODES.signBinary, 0, Buffer.from([7, 0x80, 1, 0xab, ...digest])));
    c.socket.write(encodeFrame(FrameKind.Request, 7, OPCODES.signBinary, 0, Buffer.from([99, 0, 1, 0xab, ...digest])));
    c.socket.write(encodeFrame(FrameKind.Request, 8, OPCODES.signBinary, 0, Buffer.from([3, 0, 1, 0xab, ...digest])));
    c.socket.write(encodeFrame(FrameKind.Request, 9, OPCODES.signBinary, 0, Buffer.from([7, 0, 1, 0xab, ...digest])));
    await until('five answers', () => c.frames.length === 5);
    expect(c.frames.sort((a, b) => a.requestId - b.requestId)).toEqual([
      { requestId: 5, kind: FrameKind.Error, code: 'MalformedRequest' },
      { requestId: 6, kind: FrameKind.Error, code: 'MalformedRequest' },
      { requestId: 7, kind: FrameKind.Error, code: 'UnsupportedSignAlgorithm' },
      { requestId: 8, kind: FrameKind.Error, code: 'InvalidDigestLength' },
      { requestId: 9, kind: FrameKind.Response, code: undefined },
    ]);
    expect(c.closed()).toBe(false);
    client.close();
  });

  it('in-flight flood: requests piling up past --max-pending-bytes stop being read until answers go out', async () => {
    const fake = heldService();
    const { server, path } = await listen(fake.service, { limits: { maxPendingBytes: 256 * 1024 } });
    const c = raw(path);
    // 40 requests of 100 KB each, all written at once: 4 MB the server could otherwise hold.
    const pad = 'x'.repeat(100 * 1024);
    for (let id = 1; id <= 40; id++) c.socket.write(request(id, 'health', { pad }));
    await until('the first requests reach the service', () => fake.waiting.length >= 3);
    await new Promise((r) => setTimeout(r, 100));
    const held = server.stats().pendingBytes;
    // At most the bound, plus one more whole frame and one read's worth of the next.
    expect(held).toBeLessThanOrEqual(256 * 1024 + 100 * 1024 + 64 * 1024 + 1024);
    expect(fake.waiting.length).toBeLessThan(40);
    // Answering lets the rest in; every request is answered in the end.
    while (c.frames.length < 40) {
      fake.releaseAll();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(c.frames.map((f) => f.requestId).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(server.stats().pendingBytes).toBe(0);
  });

  it('idle connection: closed with IdleConnectionClosed after the idle timeout; one with a request in flight is not', async () => {
    const fake = heldService();
    // The idle timeout is long enough that the busy connection's request is in well before it even
    // on a loaded machine (at 100 ms it could be closed as idle before its request arrived).
    const { server, path } = await listen(fake.service, { limits: { idleTimeoutMs: 500 } });
    const idle = raw(path);
    const busy = raw(path);
    busy.socket.write(request(1, 'health'));
    await until("the busy connection's request reaches the service", () => fake.waiting.length === 1);
    await until('the idle connection is closed', idle.closed);
    expect(idle.frames).toEqual([{ requestId: 0, kind: FrameKind.Error, code: 'IdleConnectionClosed' }]);
    // The busy one waits for its answer three idle timeouts and more, and gets it.
    await new Promise((r) => setTimeout(r, 1600));
    expect(busy.closed()).toBe(false);
    fake.releaseAll();
    await until('the answer arrives', () => busy.frames.length === 1);
    expect(busy.frames[0]).toMatchObject({ requestId: 1, kind: FrameKind.Response });
    await until('then it is idle and closed too', busy.closed);
    // The client sees the close before the server's own close handler has run: wait for that too.
    await until('the server has let go of both connections', () => server.stats().connections === 0);
    expect(server.stats()).toMatchObject({ connections: 0, pendingBytes: 0 });
  });

  it('slowloris: a frame trickled in a byte at a time does not keep the connection open past the idle timeout', async () => {
    const { server, path } = await listen(promptService().service, { limits: { idleTimeoutMs: 300 } });
    const c = raw(path);
    const frame = request(1, 'health', { pad: 'x'.repeat(1000) });
    let sent = 0;
    const trickle = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write(frame.subarray(sent, ++sent));
    }, 20);
    try {
      await until('the trickling connection is closed', c.closed);
    } finally {
      clearInterval(trickle);
    }
    expect(sent).toBeLessThan(frame.length);
    expect(c.frames.at(-1)).toMatchObject({ requestId: 0, code: 'IdleConnectionClosed' });
    // The client sees the close before the server's own close handler has run.
    await until('the server has let go of it', () => server.stats().connections === 0);
  });

  it('connection flood: past --max-connections a connection gets TooManyConnections and is closed; closing one makes room', async () => {
    const { server, path } = await listen(promptService().service, { limits: { maxConnections: 3 } });
    const kept = [raw(path), raw(path), raw(path)];
    await until('three connections are served', () => server.stats().connections === 3);
    const extra = raw(path);
    await until('the fourth is closed', extra.closed);
    expect(extra.frames).toEqual([{ requestId: 0, kind: FrameKind.Error, code: 'TooManyConnections' }]);
    expect(server.stats()).toMatchObject({ connections: 3, refusedConnections: 1 });
    // A SignerClient, which sends its request before it reads, gets the code, not a broken connection.
    const refused = await SignerClient.connect(path);
    await expect(refused.call('health', {})).rejects.toMatchObject({ code: 'TooManyConnections' });
    expect(refused.closed).toBe(true);
    expect(server.stats().refusedConnections).toBe(2);
    kept[0]!.socket.destroy();
    await until('one closed', () => server.stats().connections === 2);
    const client = await SignerClient.connect(path);
    await expect(client.call('health', {})).resolves.toEqual({ op: 'health' });
    client.close();
  });

  it('a client idle past the timeout sends its next request on a new connection, and the service runs it once', async () => {
    const fake = promptService();
    const { server, path } = await listen(fake.service, { limits: { idleTimeoutMs: 50 } });
    const client = await SignerClient.connect(path);
    await expect(client.call('health', {})).resolves.toEqual({ op: 'health' });
    await until('the daemon closed the idle connection', () => server.stats().connections === 0);
    await expect(client.call('listTokens', {})).resolves.toEqual({ op: 'listTokens' });
    expect(fake.handled).toEqual(['health', 'listTokens']);
    expect(client.closed).toBe(false);
    client.close();
  });

  it('idle race, daemon side: a request that arrives after the idle close is never run, and the connection stays writable until the client hangs up', async () => {
    const fake = promptService();
    const { path } = await listen(fake.service, { limits: { idleTimeoutMs: 50 } });
    // Half-open as a client that has not yet read the daemon's end: it can still write.
    const c = raw(path, { allowHalfOpen: true });
    await until('the idle notice arrives', () => c.frames.length === 1);
    const written = new Promise<Error | null | undefined>((r) => c.socket.write(request(1, 'deleteKey', { keyId: 'AB' }), r));
    expect(await written).toBeFalsy();
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.handled).toEqual([]);
    expect(c.frames).toEqual([{ requestId: 0, kind: FrameKind.Error, code: 'IdleConnectionClosed' }]);
  });

  it('idle race, client side: requests waiting when the idle notice comes are sent again on a new connection and answered', async () => {
    // A daemon stand-in: the first connection takes two requests, answers neither and closes for
    // idleness, as the daemon does with requests it has not read; the second answers everything.
    const dir = mkdtempSync(join(tmpdir(), 'xrd-server-'));
    dirs.push(dir);
    const path = join(dir, 's.sock');
    let connections = 0;
    const seen: number[][] = [];
    const standIn = createServer((socket) => {
      const n = connections++;
      const decoder = new FrameDecoder();
      seen[n] = [];
      socket.on('data', (d) => {
        for (const f of decoder.push(d)) {
          seen[n]!.push(f.requestId);
          if (n > 0) socket.write(encodeFrame(FrameKind.Response, f.requestId, f.opcode, 0, JSON.stringify({ answeredOn: n })));
          else if (seen[0]!.length === 2) socket.end(encodeFrame(FrameKind.Error, 0, 0, 0, JSON.stringify({ code: 'IdleConnectionClosed', faultCode: 'Signer.IdleConnectionClosed', message: '', details: {} })));
        }
      });
    });
    await new Promise<void>((r) => standIn.listen(path, r));
    try {
      const client = await SignerClient.connect(path);
      const answers = await Promise.all([client.call('health', {}), client.call('sign', { keyId: 'AB', algorithm: 'SHA256withRSA', digest: '' })]);
      expect(answers).toEqual([{ answeredOn: 1 }, { answeredOn: 1 }]);
      expect(seen).toEqual([[1, 2], [1, 2]]);
      client.close();
    } finally {
      standIn.close();
    }
  });

  it('a SignerConnection is a client that also comes back after the daemon restarts', async () => {
    const fake = promptService();
    const first = await listen(fake.service);
    const connection = new SignerConnection(first.path);
    await expect(connection.call('health', {})).resolves.toEqual({ op: 'health' });
    await first.server.close();
    await expect(connection.call('health', {})).rejects.toMatchObject({ code: expect.stringMatching(/IOError|NetworkError/) });
    const again = await SignerServer.listen(fake.service, { socketPath: first.path, name: 'test' }, silentLogger());
    servers.push(again);
    await expect(connection.call('health', {})).resolves.toEqual({ op: 'health' });
    connection.close();
  });
});
