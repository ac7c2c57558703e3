/**
 * Client of the signer daemon for the CLI, the proxies, the admin API and tests: one connection, requests
 * pipelined by id, each with a deadline the server also enforces. Loads no PKCS#11 code.
 */
import { createHash } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { DeadlineTimer, type Deadline } from '../platform/deadline.ts';
import { XrdError, isErrorCode, toXrdError, type ErrorDetails } from '../platform/errors.ts';
import { BatchingWriter, FrameDecoder, FrameKind, encodeFrame, type WireError } from './frame.ts';
import { OPCODES, type OperationName, type Operations, type SigningInfo } from './operations.ts';
import { encodeSignRequest, type SignBinaryRequest } from './sign-body.ts';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  deadline: Deadline;
  /** The request as sent, to send again after an idle close. */
  frame: Buffer;
  /** The answer is bytes, not JSON. */
  binary: boolean;
}

export interface CallOptions {
  /** Deadline sent to the daemon; the client gives up a little later. */
  readonly timeoutMs?: number;
}

export class SignerClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: XrdError | undefined;
  /** The connection in use; undefined after the daemon closed it for idleness, until the next call. */
  private socket: Socket | undefined;
  private writer: BatchingWriter | undefined;
  private reconnecting = false;
  private readonly deadlines = new DeadlineTimer(100);

  private constructor(
    private readonly socketPath: string,
    socket: Socket,
    private readonly defaultTimeoutMs: number,
  ) {
    this.use(socket);
  }

  /** @throws NetworkError when nothing listens on the socket */
  static async connect(socketPath: string, options: { timeoutMs?: number } = {}): Promise<SignerClient> {
    return new SignerClient(socketPath, await openSocket(socketPath), options.timeoutMs ?? 30_000);
  }

  /** @throws XrdError with the daemon's code, RequestTimeout, IOError */
  call<O extends OperationName>(op: O, req: Operations[O]['req'], options: CallOptions = {}): Promise<Operations[O]['res']> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const binary = op === 'signBinary';
    let body: string | Buffer;
    try {
      body = binary ? encodeSignRequest(req as SignBinaryRequest) : JSON.stringify(req);
    } catch (err) {
      return Promise.reject(toXrdError(err));
    }
    return new Promise((resolve, reject) => {
      // The daemon answers RequestTimeout itself at the deadline; this only covers a daemon that is stuck.
      const deadline = this.deadlines.start(timeoutMs + 1000);
      deadline.onExpire((err) => {
        this.pending.delete(id);
        reject(err);
      });
      const frame = encodeFrame(FrameKind.Request, id, OPCODES[op], timeoutMs, body);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, deadline, frame, binary });
      // Without a connection, a new one sends it when it opens.
      if (this.writer) this.writer.write(frame);
      else this.reconnect();
    });
  }

  /** Set once the connection is gone for good; every later call fails with it. */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  close(): void {
    const socket = this.socket;
    this.fail(new XrdError('IOError', { reason: 'signer client closed' }));
    socket?.end();
    socket?.destroy();
  }

  private use(socket: Socket): void {
    this.socket = socket;
    // Requests made in the same tick (pipelining callers) leave in one write.
    this.writer = new BatchingWriter(socket, process.nextTick);
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    const lost = (err: XrdError) => {
      if (this.socket === socket) this.fail(err);
    };
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        lost(new XrdError('IOError', { reason: `signer sent a malformed frame: ${(err as Error).message}` }, { cause: err }));
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (this.socket !== socket) return;
        // Request id 0 is the daemon saying why it hangs up (TooManyConnections, IdleConnectionClosed,
        // a framing error).
        if (frame.requestId === 0 && frame.kind === FrameKind.Error) this.hangUp(socket, parseWireError(frame.body));
        else this.settle(frame.requestId, frame.kind, frame.body);
      }
    });
    socket.on('error', (err) => lost(new XrdError('IOError', { reason: `signer connection failed: ${err.message}` }, { cause: err })));
    socket.on('close', () => lost(new XrdError('IOError', { reason: 'signer closed the connection' })));
  }

  /**
   * The daemon hangs up. After an idle close it read none of the requests still waiting
   * (signer-server.ts): they go again on a new connection, opened now for them or at the next call.
   * Any other reason fails them.
   */
  private hangUp(socket: Socket, reason: XrdError): void {
    // Either way this connection is done: the daemon waits for us to close our end.
    socket.destroy();
    if (reason.code !== 'IdleConnectionClosed') {
      this.fail(reason);
      return;
    }
    this.socket = undefined;
    this.writer = undefined;
    if (this.pending.size > 0) this.reconnect();
  }

  private reconnect(): void {
    if (this.reconnecting || this.closedError) return;
    this.reconnecting = true;
    openSocket(this.socketPath).then(
      (fresh) => {
        this.reconnecting = false;
        if (this.closedError) {
          fresh.destroy();
          return;
        }
        this.use(fresh);
        for (const p of this.pending.values()) this.writer!.write(p.frame);
      },
      (err: unknown) => {
        this.reconnecting = false;
        this.fail(toXrdError(err));
      },
    );
  }

  private settle(id: number, kind: number, body: Buffer): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    this.deadlines.finish(pending.deadline);
    // A binary answer is copied out: the body points into the read buffer, which holds other frames.
    if (pending.binary && kind === FrameKind.Response) return pending.resolve(Buffer.from(body));
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (kind === FrameKind.Error) pending.reject(fromWire(parsed as WireError));
      else pending.resolve(parsed);
    } catch (err) {
      pending.reject(new XrdError('IOError', { reason: 'signer sent a response that is not JSON' }, { cause: err }));
    }
  }

  private fail(err: XrdError): void {
    this.closedError ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.deadlines.expireAll();
  }
}

function openSocket(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => reject(new XrdError('NetworkError', { target: socketPath, reason: err.message }, { cause: err })));
  });
}

function parseWireError(body: Buffer): XrdError {
  try {
    return fromWire(JSON.parse(body.toString('utf8')) as WireError);
  } catch (err) {
    return new XrdError('IOError', { reason: 'signer sent an error that is not JSON' }, { cause: err });
  }
}

function fromWire(e: WireError): XrdError {
  if (isErrorCode(e.code)) return new XrdError(e.code, e.details as ErrorDetails);
  return new XrdError('InternalError', { reason: `${e.faultCode}: ${e.message}` });
}

/**
 * A signer connection for long-running callers (the proxies, the admin API): connects on first use
 * and again after the daemon restarts, so a signer that was down costs the requests made meanwhile
 * a NetworkError, not the proxy its connection.
 */
export class SignerConnection {
  private current: SignerClient | undefined;
  private connecting: Promise<SignerClient> | undefined;

  constructor(
    readonly socketPath: string,
    private readonly options: { timeoutMs?: number } = {},
  ) {}

  /** @throws XrdError with the daemon's code, RequestTimeout, IOError, NetworkError */
  async call<O extends OperationName>(op: O, req: Operations[O]['req'], options: CallOptions = {}): Promise<Operations[O]['res']> {
    return (await this.connected()).call(op, req, options);
  }

  close(): void {
    this.current?.close();
    this.current = undefined;
  }

  private connected(): Promise<SignerClient> {
    if (this.current && !this.current.closed) return Promise.resolve(this.current);
    this.connecting ??= SignerClient.connect(this.socketPath, this.options).then(
      (client) => {
        this.current = client;
        this.connecting = undefined;
        return client;
      },
      (err: unknown) => {
        this.connecting = undefined;
        throw err;
      },
    );
    return this.connecting;
  }
}

/**
 * The daemon's cached OCSP responses for certificates it has just been given (SHA-1 hex), once its
 * refresher has fetched them all: what a fresh setup waits for before it can sign.
 * @throws InvalidConfiguration naming `what` and the certificates still without one after `timeoutMs`
 */
export async function waitForOcspResponses(signer: Pick<SignerClient, 'call'>, certHashes: readonly string[], what: string, timeoutMs = 30_000): Promise<Buffer[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { responses } = await signer.call('getOcspResponses', { certHashes: [...certHashes] });
    if (responses.every(Boolean)) return responses.map((r) => Buffer.from(r!, 'base64'));
    if (Date.now() > deadline) {
      throw new XrdError('InvalidConfiguration', { reason: `${what}: the signer has no OCSP responses for ${certHashes.filter((_, j) => !responses[j]).join(', ')} after ${timeoutMs / 1000} s` });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The OCSP responses (DER; undefined where the signer has none) for the certificates `certHashes`
 * (SHA-1 hex), from what memberSigningInfo or authKeyInfo answered. The signer is asked again
 * (getOcspResponses) only about certificates that answer did not cover: a CA global configuration
 * puts in the path that the stored chain lacks, or every one with a daemon from before
 * `ocspResponses`.
 */
export async function ocspResponsesOf(signer: Pick<SignerClient, 'call'>, info: SigningInfo, certHashes: readonly string[], options: CallOptions = {}): Promise<(Buffer | undefined)[]> {
  const carried = new Map<string, string | null>();
  if (info.ocspResponses) {
    const certs = [info.cert, ...info.chain];
    certs.forEach((c, i) => carried.set(sha1Hex(c), info.ocspResponses![i] ?? null));
  }
  // A certificate the answer names without a response (none cached when the info was read, and the
  // info itself may be cached by the caller) is asked again: the signer may have one by now.
  const missing = certHashes.filter((h) => !carried.get(h.toLowerCase()));
  if (missing.length > 0) {
    const { responses } = await signer.call('getOcspResponses', { certHashes: missing }, options);
    missing.forEach((h, i) => carried.set(h.toLowerCase(), responses[i] ?? null));
  }
  return certHashes.map((h) => {
    const r = carried.get(h.toLowerCase());
    return r ? Buffer.from(r, 'base64') : undefined;
  });
}

function sha1Hex(base64Der: string): string {
  return createHash('sha1').update(Buffer.from(base64Der, 'base64')).digest('hex');
}
