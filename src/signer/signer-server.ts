/**
 * One of the signer daemon's Unix-socket servers: decodes frames, refuses operations this socket
 * does not serve, runs each request with its deadline, and answers in any order (pipelining).
 * Everything a client can make it hold is bounded: connections per socket, requests and bytes in
 * flight per connection (reading pauses at either bound), the frame size, and the time a connection
 * may sit without a request. A connection that breaks framing is answered once and closed; others
 * are unaffected.
 */
import { chmodSync, chownSync, existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { DeadlineTimer } from '../platform/deadline.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { SignerService } from './signer-service.ts';
import { BatchingWriter, DEFAULT_MAX_FRAME, FrameDecoder, FrameKind, HEADER_LENGTH, encodeFrame, type Frame, type WireError } from '../signerapi/frame.ts';
import { OPERATION_BY_CODE, PROTOCOL_VERSION, type OperationName, type SocketStats } from '../signerapi/operations.ts';

/** What one client may make a socket hold; the defaults are documented in docs/signer.md. */
export interface ConnectionLimits {
  /** Connections open at once on the socket; one more is answered TooManyConnections and closed. */
  readonly maxConnections: number;
  /**
   * A connection with no request in flight is closed (IdleConnectionClosed) when it has completed
   * no request for this long; bytes of an unfinished frame do not count, so a frame trickled in
   * cannot hold a connection open.
   */
  readonly idleTimeoutMs: number;
  /** Bytes of requests read and not yet answered, per connection; at the bound reading pauses. */
  readonly maxPendingBytes: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 32, idleTimeoutMs: 60_000, maxPendingBytes: 1024 * 1024 };

export interface SignerServerOptions {
  readonly socketPath: string;
  /** The socket's name in logs, refusals, the audit log and `health`: `admin` or `proxy`. */
  readonly name: string;
  /** The operations served here; others are refused with OperationNotAllowed. All when absent. */
  readonly operations?: ReadonlySet<OperationName>;
  /** 0o600 by default; 0o660 together with `socketGroup` lets a group (e.g. the proxy's) connect. */
  readonly socketMode?: number;
  readonly socketGroup?: number;
  readonly maxFrame?: number;
  readonly maxInFlightPerConnection?: number;
  readonly defaultTimeoutMs?: number;
  readonly maxTimeoutMs?: number;
  readonly limits?: Partial<ConnectionLimits>;
}

/** What the server needs of the service: the operations, and the audit of refused ones. */
export type SignerHandler = Pick<SignerService, 'handle' | 'refused' | 'signBinary'>;

interface Connection {
  readonly decoder: FrameDecoder;
  inFlight: number;
  /** Bytes of the requests in flight (whole frames). */
  inFlightBytes: number;
  /** Restarted by every complete request and every answer; when it fires with nothing in flight, the connection is idle. */
  idle: NodeJS.Timeout | undefined;
}

/** How long a closing notice may wait for a client that does not read before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

export class SignerServer {
  private readonly server: Server;
  private readonly connections = new Map<Socket, Connection>();
  /**
   * Each request's deadline: at expiry the caller gets RequestTimeout and work still waiting for a
   * session stops; a signature already inside the HSM runs to its end (PKCS#11 cannot cancel it)
   * and its result is dropped.
   */
  private readonly deadlines = new DeadlineTimer(20);
  private readonly maxFrame: number;
  private readonly maxInFlight: number;
  private readonly defaultTimeoutMs: number;
  private readonly maxTimeoutMs: number;
  private readonly limits: ConnectionLimits;
  private refusedConnections = 0;
  /** Set from the first refused connection until one closes: one log line per episode, not per refusal. */
  private saturated = false;

  private constructor(
    private readonly service: SignerHandler,
    private readonly options: SignerServerOptions,
    private readonly log: Logger,
  ) {
    this.maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    this.maxInFlight = options.maxInFlightPerConnection ?? 256;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
    this.maxTimeoutMs = options.maxTimeoutMs ?? 300_000;
    const limits = options.limits ?? {};
    this.limits = {
      maxConnections: limits.maxConnections ?? DEFAULT_CONNECTION_LIMITS.maxConnections,
      idleTimeoutMs: limits.idleTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
      maxPendingBytes: limits.maxPendingBytes ?? DEFAULT_CONNECTION_LIMITS.maxPendingBytes,
    };
    this.server = createServer((socket) => this.serve(socket));
  }

  /**
   * Listens on the socket path. A socket file nobody answers on is stale and replaced; one that
   * answers belongs to a running daemon, and starting is refused.
   * @throws AlreadyRunning, IOError
   */
  static async listen(service: SignerHandler, options: SignerServerOptions, log: Logger): Promise<SignerServer> {
    const { socketPath } = options;
    if (existsSync(socketPath)) {
      if (await answers(socketPath)) throw new XrdError('AlreadyRunning', { socketPath });
      log.warn({ socketPath }, 'removing stale socket file');
      unlinkSync(socketPath);
    }
    const s = new SignerServer(service, options, log);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', (err) => reject(new XrdError('IOError', { reason: `cannot listen on ${socketPath}: ${err.message}` }, { cause: err })));
      // Create the socket file with no permissions for others from the first moment.
      const previous = process.umask(0o177);
      s.server.listen(socketPath, () => resolve());
      process.umask(previous);
    });
    try {
      if (options.socketGroup !== undefined) chownSync(socketPath, process.getuid?.() ?? 0, options.socketGroup);
      chmodSync(socketPath, options.socketMode ?? 0o600);
    } catch (err) {
      await s.close();
      throw new XrdError('IOError', { reason: `cannot set the owner or mode of ${socketPath}: ${(err as Error).message}` }, { cause: err });
    }
    log.info({ socket: options.name, socketPath, mode: (options.socketMode ?? 0o600).toString(8), operations: options.operations ? [...options.operations] : 'all' }, 'signer listening');
    return s;
  }

  async close(): Promise<void> {
    for (const c of this.connections.keys()) c.destroy();
    this.deadlines.expireAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Open and refused connections and the request bytes held for them, for `health`. */
  stats(): SocketStats {
    let pendingBytes = 0;
    for (const c of this.connections.values()) pendingBytes += c.decoder.pending + c.inFlightBytes;
    return { socket: this.options.name, connections: this.connections.size, refusedConnections: this.refusedConnections, pendingBytes };
  }

  private serve(socket: Socket): void {
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'client connection error'));
    const { maxConnections, idleTimeoutMs, maxPendingBytes } = this.limits;
    if (this.connections.size >= maxConnections) {
      this.refusedConnections++;
      if (!this.saturated) this.log.warn({ socket: this.options.name, maxConnections }, 'refusing connections past the limit');
      this.saturated = true;
      // What the client sends meanwhile is read and dropped: a client that writes before it reads
      // (SignerClient sends its first request at once) would otherwise get EPIPE, not the reason.
      socket.resume();
      closeWith(socket, new XrdError('TooManyConnections', { socket: this.options.name, limit: maxConnections }), { untilClientCloses: true });
      return;
    }
    const c: Connection = { decoder: new FrameDecoder(this.maxFrame), inFlight: 0, inFlightBytes: 0, idle: undefined };
    this.connections.set(socket, c);
    const writer = new BatchingWriter(socket, setImmediate);
    const overBound = () => c.inFlight >= this.maxInFlight || c.inFlightBytes >= maxPendingBytes;
    // From here on, whatever the client sends is read and dropped: never looked at, never held.
    const stopReading = () => {
      clearTimeout(c.idle);
      socket.removeAllListeners('data');
      socket.resume();
    };
    c.idle = setTimeout(() => {
      // A request still running (a slow HSM, a 4096-bit key) keeps the connection.
      if (c.inFlight > 0) {
        c.idle!.refresh();
        return;
      }
      // Nothing in flight, and no request the client sends from now on is read: the client may
      // send the requests it has not had an answer to again, on a new connection. The socket stays
      // open for writing until the client hangs up, so that its requests written meanwhile do not
      // fail with EPIPE before it reads why.
      stopReading();
      closeWith(socket, new XrdError('IdleConnectionClosed', { seconds: idleTimeoutMs / 1000 }), { untilClientCloses: true });
    }, idleTimeoutMs);
    socket.on('close', () => {
      clearTimeout(c.idle);
      this.connections.delete(socket);
      if (this.connections.size < maxConnections) this.saturated = false;
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = c.decoder.push(chunk);
      } catch (err) {
        // Framing is lost: say why on request id 0, then hang up. Other connections go on.
        this.log.warn({ reason: (err as Error).message }, 'closing connection after framing error');
        stopReading();
        closeWith(socket, toXrdError(err));
        return;
      }
      for (const frame of frames) {
        const bytes = 4 + HEADER_LENGTH + frame.body.length;
        c.idle!.refresh();
        c.inFlight++;
        c.inFlightBytes += bytes;
        void this.dispatch(frame).then((response) => {
          c.inFlight--;
          c.inFlightBytes -= bytes;
          if (socket.destroyed || socket.writableEnded) return;
          writer.write(response);
          c.idle!.refresh();
          if (!overBound() && socket.isPaused()) socket.resume();
        });
      }
      if (overBound()) socket.pause();
    });
  }

  /** Runs one request to a response frame; never rejects. */
  private async dispatch(frame: Frame): Promise<Buffer> {
    const { requestId, opcode } = frame;
    try {
      if (frame.version !== PROTOCOL_VERSION) throw new XrdError('UnsupportedVersion', { version: frame.version });
      if (frame.kind !== FrameKind.Request) throw new XrdError('MalformedRequest', { reason: `frame kind ${frame.kind} is not a request` });
      const op = OPERATION_BY_CODE.get(opcode);
      if (!op) throw new XrdError('UnknownOperation', { op: opcode });
      if (this.options.operations && !this.options.operations.has(op)) {
        this.log.warn({ socket: this.options.name, op }, 'operation refused on this socket');
        this.service.refused(op, op === 'signBinary' ? {} : parseBody(frame.body, () => ({})), this.options.name);
        throw new XrdError('OperationNotAllowed', { op, socket: this.options.name });
      }
      // The signing path's binary body goes to the service as it is: no JSON either way.
      const binary = op === 'signBinary';
      const body = binary
        ? undefined
        : parseBody(frame.body, (err) => {
            throw new XrdError('MalformedRequest', { reason: 'body is not JSON' }, { cause: err });
          });
      const timeoutMs = Math.min(frame.timeoutMs || this.defaultTimeoutMs, this.maxTimeoutMs);
      const deadline = this.deadlines.start(timeoutMs);
      try {
        const result = await new Promise<unknown>((resolve, reject) => {
          deadline.onExpire(reject);
          (binary ? this.service.signBinary(frame.body, deadline) : this.service.handle(op, body as never, deadline)).then(resolve, reject);
        });
        return encodeFrame(FrameKind.Response, requestId, opcode, 0, binary ? (result as Buffer) : JSON.stringify(result));
      } finally {
        this.deadlines.finish(deadline);
      }
    } catch (err) {
      const error = toXrdError(err);
      if (error.code === 'InternalError') this.log.error({ err, opcode }, 'request failed unexpectedly');
      return errorFrame(requestId, opcode, error);
    }
  }
}

/** A request body as JSON (an empty body is `{}`), or what `otherwise` makes of the parse error. */
function parseBody(body: Buffer, otherwise: (err: unknown) => unknown): unknown {
  try {
    return body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch (err) {
    return otherwise(err);
  }
}

function errorFrame(requestId: number, opcode: number, error: XrdError): Buffer {
  const body: WireError = { code: error.code, faultCode: error.faultCode, message: error.message, details: error.details };
  return encodeFrame(FrameKind.Error, requestId, opcode, 0, JSON.stringify(body));
}

/**
 * Says why on request id 0 and hangs up: at once when the notice is out, or (`untilClientCloses`)
 * when the client closes its end. Either way a client that does not read or does not close cannot
 * keep the socket past a grace period.
 */
function closeWith(socket: Socket, error: XrdError, options: { untilClientCloses?: boolean } = {}): void {
  const grace = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  socket.once('close', () => clearTimeout(grace));
  socket.end(errorFrame(0, 0, error), () => {
    if (!options.untilClientCloses) socket.destroy();
  });
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
