/**
 * Framing of the signer protocol (docs/signer-protocol.md): a 4-byte big-endian length, then a
 * 12-byte header (version, kind, request id, opcode, timeout) and a UTF-8 JSON body.
 */
import type { Socket } from 'node:net';
import { XrdError } from '../../platform/errors.ts';
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

export function encodeFrame(kind: FrameKind, requestId: number, opcode: number, timeoutMs: number, body: string): Buffer {
  const bodyLength = Buffer.byteLength(body);
  const frame = Buffer.allocUnsafe(4 + HEADER_LENGTH + bodyLength);
  frame.writeUInt32BE(HEADER_LENGTH + bodyLength, 0);
  frame.writeUInt8(PROTOCOL_VERSION, 4);
  frame.writeUInt8(kind, 5);
  frame.writeUInt32BE(requestId >>> 0, 6);
  frame.writeUInt16BE(opcode, 10);
  frame.writeUInt32BE(timeoutMs >>> 0, 12);
  frame.write(body, 16);
  return frame;
}

/** Splits a byte stream into frames; a frame over the limit or too short to hold a header throws. */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maxFrame = DEFAULT_MAX_FRAME) {}

  /** @throws FrameTooLarge, MalformedRequest — the stream cannot be resynchronised after either */
  push(chunk: Buffer): Frame[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    while (this.buffered.length - offset >= 4) {
      const length = this.buffered.readUInt32BE(offset);
      if (length > this.maxFrame) throw new XrdError('FrameTooLarge', { size: length, limit: this.maxFrame });
      if (length < HEADER_LENGTH) throw new XrdError('MalformedRequest', { reason: `frame of ${length} bytes is shorter than its header` });
      if (this.buffered.length - offset < 4 + length) break;
      const start = offset + 4;
      frames.push({
        version: this.buffered.readUInt8(start),
        kind: this.buffered.readUInt8(start + 1),
        requestId: this.buffered.readUInt32BE(start + 2),
        opcode: this.buffered.readUInt16BE(start + 6),
        timeoutMs: this.buffered.readUInt32BE(start + 8),
        body: this.buffered.subarray(start + HEADER_LENGTH, start + length),
      });
      offset = start + length;
    }
    this.buffered = offset === this.buffered.length ? Buffer.alloc(0) : this.buffered.subarray(offset);
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pending(): number {
    return this.buffered.length;
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
