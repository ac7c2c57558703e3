/** Bodies kept in memory below the threshold and in a spool file above it, with their digests. */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { PassThrough, Writable } from 'node:stream';
import { SpoolFolder, memoryBody, sendPieces, streamPieces } from '../../src/platform/spool.ts';

const sha = (alg: string, b: Buffer) => createHash(alg).update(b).digest();

describe('spool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-spool-'));
  const folder = new SpoolFolder(dir, { thresholdBytes: 10, maxBytes: 100 });

  it('keeps a small body in memory and a large one in a file, with the same digests and bytes', async () => {
    for (const data of [Buffer.from('0123456789'), Buffer.from('0123456789abcdef'.repeat(5))]) {
      const w = folder.writer();
      for (let i = 0; i < data.length; i += 3) w.write(data.subarray(i, i + 3));
      const body = w.end();
      expect(body.buffer !== undefined).toBe(data.length <= 10);
      expect(body.file !== undefined).toBe(data.length > 10);
      for (const alg of ['sha256', 'sha384', 'sha512'] as const) expect(body.digest(alg)).toEqual(sha(alg, data));
      expect(body.bytes()).toEqual(data);
      expect(await text(body.stream())).toBe(data.toString());
      expect(await text(body.stream())).toBe(data.toString());
      body.dispose();
      if (body.file) expect(existsSync(body.file)).toBe(false);
    }
  });

  it('refuses a body past the limit with MessageTooLarge and leaves no file behind', () => {
    const w = folder.writer();
    w.write(Buffer.alloc(60));
    expect(() => w.write(Buffer.alloc(60))).toThrow(expect.objectContaining({ code: 'MessageTooLarge' }));
    expect(readdirSync(dir).filter((f) => f.endsWith('.spool'))).toEqual([]);
  });

  it('purge removes what a killed process left', () => {
    writeFileSync(join(dir, 'left.spool'), 'x');
    folder.purge();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('an empty memory body streams nothing', async () => {
    expect(await text(memoryBody(Buffer.alloc(0)).stream())).toBe('');
  });

  it('pieces stream in order; small ones held in memory go out joined, a file body and a large buffer as they are', async () => {
    const chunksOf = async (pieces: Parameters<typeof streamPieces>[0]) => {
      const chunks: Buffer[] = [];
      for await (const chunk of streamPieces(pieces)) chunks.push(chunk as Buffer);
      return chunks.map((c) => c.toString());
    };
    // A MIME message as the proxies send it: boundaries, headers and parts, each a piece.
    expect(await chunksOf([Buffer.from('--b\r\n'), Buffer.from(''), memoryBody(Buffer.from('<soap/>')), Buffer.from('\r\n--b--')])).toEqual(['--b\r\n<soap/>\r\n--b--']);
    const w = folder.writer();
    w.write(Buffer.from('a file body'));
    const file = w.end();
    const large = Buffer.alloc(64 * 1024, 'x');
    expect(await chunksOf([Buffer.from('1'), Buffer.from('2'), file, Buffer.from('3'), large, Buffer.from('4')])).toEqual(['12', 'a file body', '3', large.toString(), '4']);
    file.dispose();
    // Many small pieces are joined in runs of at most 64 KiB, never into one message-sized copy.
    const small = Array.from({ length: 5 }, (_, i) => Buffer.alloc(20 * 1024, String(i)));
    expect((await chunksOf(small)).map((c) => c.length)).toEqual([60 * 1024, 40 * 1024]);
    expect(await chunksOf([])).toEqual([]);
  });

  it('sendPieces ends a small message held in memory at once, in one write, and streams a file body or a large one', async () => {
    /** What reached `out`, write by write, and whether sendPieces ended it before returning. */
    const sent = async (pieces: Parameters<typeof sendPieces>[1]) => {
      const writes: string[] = [];
      const out = new Writable({
        write(chunk: Buffer, _encoding, done) {
          writes.push(chunk.toString());
          done();
        },
      });
      const finished = new Promise((resolve) => out.on('finish', resolve));
      sendPieces(out, pieces, (err) => out.destroy(err));
      const endedAtOnce = out.writableEnded;
      await finished;
      return { writes, endedAtOnce };
    };
    expect(await sent([Buffer.from('--b\r\n'), memoryBody(Buffer.from('<soap/>')), Buffer.from('\r\n--b--')])).toEqual({ writes: ['--b\r\n<soap/>\r\n--b--'], endedAtOnce: true });
    expect(await sent([])).toEqual({ writes: [], endedAtOnce: true });
    const w = folder.writer();
    w.write(Buffer.from('a file body'));
    const file = w.end();
    expect(await sent([Buffer.from('1'), file, Buffer.from('2')])).toEqual({ writes: ['1', 'a file body', '2'], endedAtOnce: false });
    file.dispose();
    const large = Array.from({ length: 5 }, (_, i) => Buffer.alloc(20 * 1024, String(i)));
    const streamed = await sent(large);
    expect([streamed.writes.join(''), streamed.endedAtOnce]).toEqual([Buffer.concat(large).toString(), false]);
    // A body that cannot be read is reported, not thrown.
    const broken = { ...memoryBody(Buffer.from('x')), buffer: undefined, stream: () => new PassThrough().destroy(new Error('gone')) };
    const errors: Error[] = [];
    sendPieces(new PassThrough(), [broken], (err) => errors.push(err));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(errors.map((e) => e.message)).toEqual(['gone']);
  });
});
