/**
 * Framing of the signer protocol (docs/signer-protocol.md): a 4-byte big-endian length, then a
 * 12-byte header (version, kind, request id, opcode, timeout) and a body: UTF-8 JSON, or binary for
 * the operations that say so (sign-body.ts).
 */
import type { Socket } from 'node:net';
import { XrdError } from '../platform/errors.ts';
import { PROTOCOL_VERSION } from './operations.ts';

export const HEADER_LENGTH = 12;
export const DEFAULT_MAX_FRAME = 1024 * 1024;

export const FrameKind = { Request: 0, Response: 1, Error: 2 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface Frame {
  readonly version: number;
  readonly kind: number;
  readonly requestId: number;
  readonly opcode: number;
  /** Requests: how long the caller will wait, in ms (0: the server's default). */
  readonly timeoutMs: number;
  readonly body: Buffer;
}

/** `body`: JSON text, or the bytes of a binary body. */
export function encodeFrame(kind: FrameKind, requestId: number, opcode: number, timeoutMs: number, body: string | Buffer): Buffer {
  const bodyLength = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  const frame = Buffer.allocUnsafe(4 + HEADER_LENGTH + bodyLength);
  frame.writeUInt32BE(HEADER_LENGTH + bodyLength, 0);
  frame.writeUInt8(PROTOCOL_VERSION, 4);
  frame.writeUInt8(kind, 5);
  frame.writeUInt32BE(requestId >>> 0, 6);
  frame.writeUInt16BE(opcode, 10);
  frame.writeUInt32BE(timeoutMs >>> 0, 12);
  if (typeof body === 'string') frame.write(body, 16);
  else body.copy(frame, 16);
  return frame;
}

/**
 * Splits a byte stream into frames. A frame's length is checked as soon as its 4 length bytes are
 * in, so an incomplete frame never holds more than the limit. An incomplete frame grows in a buffer
 * that doubles when full: joining the held bytes with each new read copied a 1 MiB frame sent a
 * byte at a time half a terabyte over, and keeping each read apart costs an object per byte.
 */
export class FrameDecoder {
  /** Holds the incomplete frame in its first `held` bytes; never lent out to a frame's body. */
  private buffer: Buffer = Buffer.alloc(0);
  private held = 0;

  constructor(private readonly maxFrame = DEFAULT_MAX_FRAME) {}

  /** @throws FrameTooLarge, MalformedRequest — the stream cannot be resynchronised after either */
  push(chunk: Buffer): Frame[] {
    // Nothing held: frames are read straight from the chunk, the usual case.
    const data = this.held === 0 ? chunk : this.append(chunk);
    const length = this.held === 0 ? chunk.length : this.held;
    const frames: Frame[] = [];
    let offset = 0;
    while (length - offset >= 4) {
      const frameLength = data.readUInt32BE(offset);
      if (frameLength > this.maxFrame) throw new XrdError('FrameTooLarge', { size: frameLength, limit: this.maxFrame });
      if (frameLength < HEADER_LENGTH) throw new XrdError('MalformedRequest', { reason: `frame of ${frameLength} bytes is shorter than its header` });
      if (length - offset < 4 + frameLength) break;
      const start = offset + 4;
      frames.push({
        version: data.readUInt8(start),
        kind: data.readUInt8(start + 1),
        requestId: data.readUInt32BE(start + 2),
        opcode: data.readUInt16BE(start + 6),
        timeoutMs: data.readUInt32BE(start + 8),
        body: data.subarray(start + HEADER_LENGTH, start + frameLength),
      });
      offset = start + frameLength;
    }
    if (data === this.buffer && offset === 0) return frames;
    // Frame bodies point into `data`: what is left moves to a buffer of its own.
    this.buffer = offset === length ? Buffer.alloc(0) : Buffer.from(data.subarray(offset, length));
    this.held = this.buffer.length;
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pending(): number {
    return this.held;
  }

  private append(chunk: Buffer): Buffer {
    const needed = this.held + chunk.length;
    if (needed > this.buffer.length) {
      // Doubling keeps copying linear; an incomplete frame never needs more than the largest frame.
      const grown = Buffer.allocUnsafe(Math.max(needed, Math.min(2 * this.buffer.length, 4 + this.maxFrame)));
      this.buffer.copy(grown, 0, 0, this.held);
      this.buffer = grown;
    }
    chunk.copy(this.buffer, this.held);
    this.held = needed;
    return this.buffer;
  }
}

/** The JSON body of an error frame. */
export interface WireError {
  code: string;
  faultCode: string;
  message: string;
  details: Record<string, unknown>;
}

/**
 * Gathers the frames written during one turn of the event loop into a single writev: under load,
 * one system call carries many responses (or pipelined requests) instead of one each.
 */
export class BatchingWriter {
  private scheduled = false;

  constructor(
    private readonly socket: Socket,
    private readonly schedule: (flush: () => void) => unknown,
  ) {}

  write(frame: Buffer): void {
    if (!this.scheduled) {
      this.scheduled = true;
      this.socket.cork();
      this.schedule(() => {
        this.scheduled = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }
}
