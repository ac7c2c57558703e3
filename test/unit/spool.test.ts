/** Bodies kept in memory below the threshold and in a spool file above it, with their digests. */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { SpoolFolder, memoryBody } from '../../src/platform/spool.ts';

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
});
