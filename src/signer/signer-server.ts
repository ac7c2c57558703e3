/**
 * The signer daemon's Unix-socket server: decodes frames, runs each request with its deadline,
 * bounds in-flight requests per connection (reading pauses at the bound), and answers in any order
 * (pipelining). A connection that breaks framing is answered once and closed; others are unaffected.
 */
import { chmodSync, chownSync, existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { DeadlineTimer } from '../platform/deadline.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { SignerService } from './signer-service.ts';
import { BatchingWriter, DEFAULT_MAX_FRAME, FrameDecoder, FrameKind, encodeFrame, type Frame, type WireError } from './wire/frame.ts';
import { OPERATION_BY_CODE, PROTOCOL_VERSION } from './wire/operations.ts';

export interface SignerServerOptions {
  readonly socketPath: string;
  /** 0o600 by default; 0o660 together with `socketGroup` lets a group (e.g. the proxy's) connect. */
  readonly socketMode?: number;
  readonly socketGroup?: number;
  readonly maxFrame?: number;
  readonly maxInFlightPerConnection?: number;
  readonly defaultTimeoutMs?: number;
  readonly maxTimeoutMs?: number;
}

export class SignerServer {
  private readonly server: Server;
  private readonly connections = new Set<Socket>();
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

  private constructor(
    private readonly service: SignerService,
    options: SignerServerOptions,
    private readonly log: Logger,
  ) {
    this.maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    this.maxInFlight = options.maxInFlightPerConnection ?? 256;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
    this.maxTimeoutMs = options.maxTimeoutMs ?? 300_000;
    this.server = createServer((socket) => this.serve(socket));
  }

  /**
   * Listens on the socket path. A socket file nobody answers on is stale and replaced; one that
   * answers belongs to a running daemon, and starting is refused.
   * @throws AlreadyRunning, IOError
   */
  static async listen(service: SignerService, options: SignerServerOptions, log: Logger): Promise<SignerServer> {
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
    if (options.socketGroup !== undefined) chownSync(socketPath, process.getuid?.() ?? 0, options.socketGroup);
    chmodSync(socketPath, options.socketMode ?? 0o600);
    log.info({ socketPath, mode: (options.socketMode ?? 0o600).toString(8) }, 'signer listening');
    return s;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    this.deadlines.expireAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.connections.add(socket);
    const decoder = new FrameDecoder(this.maxFrame);
    const writer = new BatchingWriter(socket, setImmediate);
    let inFlight = 0;
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'client connection error'));
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        // Framing is lost: say why on request id 0, then hang up. Other connections go on.
        this.log.warn({ reason: (err as Error).message }, 'closing connection after framing error');
        socket.removeAllListeners('data');
        socket.end(errorFrame(0, 0, toXrdError(err)), () => socket.destroy());
        return;
      }
      for (const frame of frames) {
        inFlight++;
        if (inFlight >= this.maxInFlight) socket.pause();
        void this.dispatch(frame).then((response) => {
          inFlight--;
          if (socket.destroyed) return;
          writer.write(response);
          if (inFlight < this.maxInFlight && socket.isPaused()) socket.resume();
        });
      }
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
      let body: unknown;
      try {
        body = frame.body.length === 0 ? {} : JSON.parse(frame.body.toString('utf8'));
      } catch (err) {
        throw new XrdError('MalformedRequest', { reason: 'body is not JSON' }, { cause: err });
      }
      const timeoutMs = Math.min(frame.timeoutMs || this.defaultTimeoutMs, this.maxTimeoutMs);
      const deadline = this.deadlines.start(timeoutMs);
      try {
        const result = await new Promise<unknown>((resolve, reject) => {
          deadline.onExpire(reject);
          this.service.handle(op, body as never, deadline).then(resolve, reject);
        });
        return encodeFrame(FrameKind.Response, requestId, opcode, 0, JSON.stringify(result));
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

function errorFrame(requestId: number, opcode: number, error: XrdError): Buffer {
  const body: WireError = { code: error.code, faultCode: error.faultCode, message: error.message, details: error.details };
  return encodeFrame(FrameKind.Error, requestId, opcode, 0, JSON.stringify(body));
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
