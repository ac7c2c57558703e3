import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameKind, encodeFrame } from '../../src/signerapi/frame.ts';

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

  it('slow drip: a 1 MiB frame arriving a byte per read is held once, not copied again with every byte', () => {
    const frame = encodeFrame(FrameKind.Request, 5, 40, 0, JSON.stringify({ pad: 'x'.repeat(1024 * 1024 - 64) }));
    const decoder = new FrameDecoder();
    // Joining the held bytes with each read copied this frame 2^39 bytes over; doubling copies it about twice.
    let early = 0;
    for (let i = 0; i < frame.length - 1; i++) early += decoder.push(frame.subarray(i, i + 1)).length;
    expect(early).toBe(0);
    expect(decoder.pending).toBe(frame.length - 1);
    const [decoded] = decoder.push(frame.subarray(frame.length - 1));
    expect(decoded!.body.equals(frame.subarray(16))).toBe(true);
    expect(decoder.pending).toBe(0);
  });

  it('a frame body stays intact while the decoder receives the next frames', () => {
    const decoder = new FrameDecoder();
    const first = encodeFrame(FrameKind.Request, 1, 40, 0, '{"n":"first"}');
    const second = encodeFrame(FrameKind.Request, 2, 40, 0, '{"n":"second"}');
    const [a] = decoder.push(first.subarray(0, 10)).concat(decoder.push(Buffer.concat([first.subarray(10), second.subarray(0, 5)])));
    decoder.push(second.subarray(5, 20));
    decoder.push(second.subarray(20));
    expect(a!.body.toString()).toBe('{"n":"first"}');
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
