/**
 * Client of the signer daemon for the CLI, the proxies and tests: one connection, requests
 * pipelined by id, each with a deadline the server also enforces. Loads no PKCS#11 code.
 */
import { createConnection, type Socket } from 'node:net';
import { DeadlineTimer, type Deadline } from '../platform/deadline.ts';
import { XrdError, isErrorCode, type ErrorDetails } from '../platform/errors.ts';
import { BatchingWriter, FrameDecoder, FrameKind, encodeFrame, type WireError } from './wire/frame.ts';
import { OPCODES, type OperationName, type Operations } from './wire/operations.ts';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  deadline: Deadline;
}

export interface CallOptions {
  /** Deadline sent to the daemon; the client gives up a little later. */
  readonly timeoutMs?: number;
}

export class SignerClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: XrdError | undefined;
  private readonly writer: BatchingWriter;
  private readonly deadlines = new DeadlineTimer(100);

  private constructor(
    private readonly socket: Socket,
    private readonly defaultTimeoutMs: number,
  ) {
    // Requests made in the same tick (pipelining callers) leave in one write.
    this.writer = new BatchingWriter(socket, process.nextTick);
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.fail(new XrdError('IOError', { reason: `signer sent a malformed frame: ${(err as Error).message}` }, { cause: err }));
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        // Request id 0 is the daemon saying why it hangs up (TooManyConnections, IdleConnectionClosed,
        // a framing error): every request still waiting fails with that reason.
        if (frame.requestId === 0 && frame.kind === FrameKind.Error) this.fail(parseWireError(frame.body));
        else this.settle(frame.requestId, frame.kind, frame.body);
      }
    });
    socket.on('error', (err) => this.fail(new XrdError('IOError', { reason: `signer connection failed: ${err.message}` }, { cause: err })));
    socket.on('close', () => this.fail(new XrdError('IOError', { reason: 'signer closed the connection' })));
  }

  /** @throws NetworkError when nothing listens on the socket */
  static connect(socketPath: string, options: { timeoutMs?: number } = {}): Promise<SignerClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(socketPath);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(new SignerClient(socket, options.timeoutMs ?? 30_000));
      });
      socket.once('error', (err) => reject(new XrdError('NetworkError', { target: socketPath, reason: err.message }, { cause: err })));
    });
  }

  /** @throws XrdError with the daemon's code, RequestTimeout, IOError */
  call<O extends OperationName>(op: O, req: Operations[O]['req'], options: CallOptions = {}): Promise<Operations[O]['res']> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise((resolve, reject) => {
      // The daemon answers RequestTimeout itself at the deadline; this only covers a daemon that is stuck.
      const deadline = this.deadlines.start(timeoutMs + 1000);
      deadline.onExpire((err) => {
        this.pending.delete(id);
        reject(err);
      });
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, deadline });
      this.writer.write(encodeFrame(FrameKind.Request, id, OPCODES[op], timeoutMs, JSON.stringify(req)));
    });
  }

  /** Set once the connection is gone; every later call fails with it. */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private settle(id: number, kind: number, body: Buffer): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    this.deadlines.finish(pending.deadline);
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
 * A signer connection for long-running callers (the proxies, the admin API, the CLI waiting at a
 * prompt): connects on first use and again after the daemon restarts or closed the connection for
 * idleness, so a signer that was down costs the requests made meanwhile a NetworkError, not the
 * caller its connection.
 */
export class SignerConnection {
  private current: SignerClient | undefined;
  private connecting: Promise<SignerClient> | undefined;

  constructor(
    readonly socketPath: string,
    private readonly options: { timeoutMs?: number } = {},
  ) {}

  /**
   * A connection that is open already, for callers that must know at once whether the daemon runs.
   * @throws NetworkError when nothing listens on the socket
   */
  static async open(socketPath: string, options: { timeoutMs?: number } = {}): Promise<SignerConnection> {
    const connection = new SignerConnection(socketPath, options);
    await connection.connected();
    return connection;
  }

  /** @throws XrdError with the daemon's code, RequestTimeout, IOError, NetworkError */
  async call<O extends OperationName>(op: O, req: Operations[O]['req'], options: CallOptions = {}): Promise<Operations[O]['res']> {
    try {
      return await (await this.connected()).call(op, req, options);
    } catch (err) {
      // The daemon closed an idle connection as this request left: it never read the request
      // (signer-server.ts), so sending it again on a new connection cannot do anything twice.
      if (err instanceof XrdError && err.code === 'IdleConnectionClosed') return (await this.connected()).call(op, req, options);
      throw err;
    }
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
