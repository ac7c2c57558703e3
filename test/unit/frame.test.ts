import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameKind, encodeFrame } from '../../src/signer/wire/frame.ts';

describe('signer protocol framing', () => {
  it('decodes frames split and joined arbitrarily', () => {
    const frames = [encodeFrame(FrameKind.Request, 1, 40, 5000, '{"a":1}'), encodeFrame(FrameKind.Request, 2, 1, 0, ''), encodeFrame(FrameKind.Request, 0xfffffffe, 3, 1, '"ä"')];
    const stream = Buffer.concat(frames);
    for (const cut of [1, 3, 7, 17, 30]) {
      const decoder = new FrameDecoder();
      const out = [];
      for (let i = 0; i < stream.length; i += cut) out.push(...decoder.push(stream.subarray(i, i + cut)));
      expect(out.map((f) => [f.requestId, f.opcode, f.timeoutMs, f.body.toString()])).toEqual([
        [1, 40, 5000, '{"a":1}'],
        [2, 1, 0, ''],
        [0xfffffffe, 3, 1, '"ä"'],
      ]);
      expect(decoder.pending).toBe(0);
    }
  });

  it('refuses a frame over the limit before buffering it', () => {
    const decoder = new FrameDecoder(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(2048);
    expect(() => decoder.push(header)).toThrowError(expect.objectContaining({ code: 'FrameTooLarge' }));
  });

  it('refuses a frame too short to hold a header', () => {
    expect(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 3, 1, 0, 0]))).toThrowError(expect.objectContaining({ code: 'MalformedRequest' }));
  });
});
