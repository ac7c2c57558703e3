/**
 * Issue 13 item 10, ZIP (src/platform/zip.ts): mutated containers — the shared ASiC containers
 * and archives written here — read from memory (readZip) or from a file (readZipFile, large
 * entries streamed) throw nothing but ZipError and never expand past the bound they were given.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ZipError, readZip, readZipFile, writeZip } from '../../src/platform/zip.ts';
import { FUZZ_TIMEOUT, fuzzRuns, mutated, vector } from './fuzz.ts';

const MAX_TOTAL = 4096;
const dir = mkdtempSync(join(tmpdir(), 'xrd-fuzz-zip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const archives = fc
  .array(fc.record({ name: fc.constantFrom('mimetype', 'message.xml', 'META-INF/signatures.xml', 'a'), data: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constant(new Uint8Array(3000))), stored: fc.boolean() }), { maxLength: 4 })
  .map((entries) => writeZip(entries.map((e) => ({ name: e.name, data: Buffer.from(e.data), stored: e.stored })), new Date('2024-01-01T00:00:00Z')));
const seeds = ['valid-signed-message.asice', 'valid-signed-hashchain.asice'].map((name) => vector('asic', name));
// Signatures of local headers, central headers and the end record, and the bytes of sizes and counts.
const alphabet = [0x50, 0x4b, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08, 0x00, 0xff, 0x7f];
const containers = fc.oneof(archives, fc.constantFrom(...seeds)).chain((zip) => mutated(zip, alphabet));

describe('ZIP fuzzing (issue 13 item 10)', () => {
  it(
    'readZip: only ZipError (CRC and sizes are checked inside), never more bytes than the bound',
    () => {
      fc.assert(
        fc.property(containers, (zip) => {
          let entries;
          try {
            entries = readZip(zip, MAX_TOTAL);
          } catch (err) {
            expect(err).toBeInstanceOf(ZipError);
            return;
          }
          expect(entries.reduce((sum, e) => sum + e.data.length, 0)).toBeLessThanOrEqual(MAX_TOTAL);
        }),
        fuzzRuns(3000),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'readZipFile: only ZipError, whether entries are held or streamed; streamed ones are checked at their end',
    async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(containers, async (zip) => {
          const file = join(dir, `${n++}.zip`);
          writeFileSync(file, zip);
          const read: { size: number; length: number }[] = [];
          try {
            for (const entry of await readZipFile(file, { inMemoryBytes: 64, maxEntries: 8 })) {
              let length = entry.data?.length ?? 0;
              // A streamed entry's CRC and size are checked as its last chunk is read.
              if (!entry.data) for await (const chunk of entry.chunks!()) length += chunk.length;
              read.push({ size: entry.size, length });
            }
          } catch (err) {
            expect(err).toBeInstanceOf(ZipError);
          } finally {
            rmSync(file);
          }
          for (const { size, length } of read) expect(length).toBe(size);
        }),
        fuzzRuns(300),
      );
    },
    FUZZ_TIMEOUT,
  );
});
