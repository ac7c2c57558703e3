/**
 * Issue 13 item 10, the signer's frame decoder (src/signerapi/frame.ts): frames written by
 * encodeFrame come back the same however the stream is cut; any byte stream in any chunks gives
 * frames (none over the limit) or a coded error (FrameTooLarge, MalformedRequest), the same error
 * whether it arrives whole or in pieces, after the same frames (those that came in the chunk with
 * the error are dropped with it: the connection ends there).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { FrameDecoder, FrameKind, HEADER_LENGTH, encodeFrame, type Frame } from '../../src/signerapi/frame.ts';
import { SIGN_ALGORITHM_TABLE } from '../../src/signerapi/algorithms.ts';
import { MAX_SIGN_REQUEST_BODY, decodeSignRequest, encodeSignRequest } from '../../src/signerapi/sign-body.ts';
import { FUZZ_TIMEOUT, chunked, fuzzRuns } from './fuzz.ts';

const MAX_FRAME = 256;

/** The frames decoded from `chunks` and the code of the error that stopped the stream, if any. */
function decode(chunks: readonly Buffer[]): { frames: string[]; error?: string; pending: number } {
  const decoder = new FrameDecoder(MAX_FRAME);
  const frames: Frame[] = [];
  try {
    for (const chunk of chunks) frames.push(...decoder.push(chunk));
  } catch (err) {
    expect(err).toBeInstanceOf(XrdError);
    return { frames: frames.map(show), error: (err as XrdError).code, pending: -1 };
  }
  for (const f of frames) expect(HEADER_LENGTH + f.body.length).toBeLessThanOrEqual(MAX_FRAME);
  return { frames: frames.map(show), pending: decoder.pending };
}

const show = (f: Frame) => `${f.version}/${f.kind}/${f.requestId}/${f.opcode}/${f.timeoutMs}/${f.body.toString('hex')}`;

const frame = fc
  .record({
    kind: fc.constantFrom(FrameKind.Request, FrameKind.Response, FrameKind.Error),
    requestId: fc.nat(),
    opcode: fc.integer({ min: 0, max: 0xffff }),
    timeoutMs: fc.nat(),
    body: fc.string({ maxLength: 60 }),
  })
  .map((f) => encodeFrame(f.kind, f.requestId, f.opcode, f.timeoutMs, f.body));
const cuts = fc.array(fc.nat(), { maxLength: 20 });

describe('signer frame decoder fuzzing (issue 13 item 10)', () => {
  it(
    'frames come back whole and in order however the stream is cut',
    () => {
      fc.assert(
        fc.property(fc.array(frame, { maxLength: 8 }), cuts, (frames, at) => {
          const stream = Buffer.concat(frames);
          const whole = decode([stream]);
          expect(whole).toEqual({ frames: frames.map((f) => show(new FrameDecoder().push(f)[0]!)), pending: 0 });
          expect(decode(chunked(stream, at))).toEqual(whole);
        }),
        fuzzRuns(1000),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'arbitrary bytes in arbitrary chunks: frames within the limit or FrameTooLarge / MalformedRequest, the same as whole',
    () => {
      // Frames with bytes changed, and raw bytes: small lengths often, so short and long frames both occur.
      const bytes = fc.oneof(
        fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
        fc.tuple(fc.array(frame, { minLength: 1, maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([frames, at, byte]) => {
          const stream = Buffer.concat(frames);
          stream[at % stream.length] = byte;
          return stream;
        }),
      );
      fc.assert(
        fc.property(bytes, cuts, (stream, at) => {
          const whole = decode([stream]);
          const pieces = decode(chunked(stream, at));
          expect(pieces.error).toBe(whole.error);
          if (whole.error === undefined) expect(pieces).toEqual(whole);
          else {
            expect(['FrameTooLarge', 'MalformedRequest']).toContain(whole.error);
            // push() throws away the frames of the chunk that carried the error, so smaller chunks deliver more of them.
            expect(pieces.frames.slice(0, whole.frames.length)).toEqual(whole.frames);
          }
        }),
        fuzzRuns(3000),
      );
    },
    FUZZ_TIMEOUT,
  );
});

describe('signBinary body fuzzing (issue 16)', () => {
  it('what encodeSignRequest writes decodes to the same request', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SIGN_ALGORITHM_TABLE), fc.uint8Array({ minLength: 1, maxLength: 255 }), fc.boolean(), (alg, key, raw) => {
        const keyId = Buffer.from(key).toString('hex').toUpperCase();
        const digest = Buffer.alloc(alg.digestLength, 7);
        const body = encodeSignRequest({ keyId, algorithm: alg.id, digest, raw });
        expect(body.length).toBeLessThanOrEqual(MAX_SIGN_REQUEST_BODY);
        expect(decodeSignRequest(body)).toEqual({ keyId, algorithm: alg, digest, raw });
      }),
      fuzzRuns(1000),
    );
  });

  it('arbitrary bodies: a request whose digest fits its algorithm, or MalformedRequest / UnsupportedSignAlgorithm / InvalidDigestLength', () => {
    const valid = fc.tuple(fc.constantFrom(...SIGN_ALGORITHM_TABLE), fc.uint8Array({ minLength: 1, maxLength: 40 })).map(([alg, key]) =>
      encodeSignRequest({ keyId: Buffer.from(key).toString('hex'), algorithm: alg.id, digest: Buffer.alloc(alg.digestLength) }),
    );
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
      fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([body, at, byte]) => {
        body[at % body.length] = byte;
        return body;
      }),
      fc.tuple(valid, fc.nat()).map(([body, cut]) => body.subarray(0, cut % (body.length + 1))),
    );
    fc.assert(
      fc.property(bodies, (body) => {
        try {
          const r = decodeSignRequest(body);
          expect(r.digest.length).toBe(r.algorithm.digestLength);
          expect(r.keyId).toMatch(/^([0-9A-F]{2}){1,255}$/);
        } catch (err) {
          expect(err).toBeInstanceOf(XrdError);
          expect(['MalformedRequest', 'UnsupportedSignAlgorithm', 'InvalidDigestLength']).toContain((err as XrdError).code);
        }
      }),
      fuzzRuns(3000),
    );
  });
});
