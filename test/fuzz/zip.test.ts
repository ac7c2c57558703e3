/**
 * Issue 13 item 10, ZIP (src/platform/zip.ts): mutated containers — the shared ASiC containers
 * and archives written here — read from memory (readZip) or from a file (readZipFile, large
 * entries streamed) throw nothing but ZipError and never expand past the bound they were given.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
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

/**
 * The entries a streaming reader sees (Java's ZipInputStream, the reference's): local headers
 * walked from byte 0 until something else; undefined when an entry defers its sizes to a data
 * descriptor, which this walker does not follow.
 */
function walkLocalHeaders(zip: Buffer): Map<string, Buffer> | undefined {
  const seen = new Map<string, Buffer>();
  for (let at = 0; at + 30 <= zip.length && zip.readUInt32LE(at) === 0x04034b50; ) {
    if (zip.readUInt16LE(at + 6) & 0x0008) return undefined;
    const dataAt = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
    const raw = zip.subarray(dataAt, dataAt + zip.readUInt32LE(at + 18));
    seen.set(zip.toString('utf8', at + 30, at + 30 + zip.readUInt16LE(at + 26)), zip.readUInt16LE(at + 8) === 0 ? raw : inflateRawSync(raw));
    at = dataAt + raw.length;
  }
  return seen;
}

describe('ZIP fuzzing (issue 13 item 10)', () => {
  it(
    'readZip: only ZipError (CRC and sizes are checked inside), never more bytes than the bound',
    () => {
      fc.assert(
        fc.property(containers, (zip) => {
          let entries;
          try {
            entries = readZip(zip, { maxTotalBytes: MAX_TOTAL });
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
    'one archive for every reader: whatever readZip accepts, a reader walking the local headers from byte 0 sees the same entries with the same bytes',
    () => {
      const unique = fc
        .uniqueArray(fc.record({ name: fc.constantFrom('mimetype', 'message.xml', 'META-INF/signatures.xml', 'attachment1', 'attachment2'), data: fc.uint8Array({ maxLength: 300 }), stored: fc.boolean() }), { selector: (e) => e.name, minLength: 1, maxLength: 5 })
        .map((entries) => writeZip(entries.map((e) => ({ name: e.name, data: Buffer.from(e.data), stored: e.stored })), new Date('2024-01-01T00:00:00Z')));
      fc.assert(
        fc.property(fc.oneof(unique, fc.constantFrom(...seeds)).chain((zip) => mutated(zip, alphabet)), (zip) => {
          let entries;
          try {
            entries = readZip(zip);
          } catch (err) {
            expect(err).toBeInstanceOf(ZipError);
            return;
          }
          const walked = walkLocalHeaders(zip);
          if (!walked) return;
          expect([...walked.keys()].sort()).toEqual(entries.map((e) => e.name).sort());
          for (const e of entries) expect(walked.get(e.name)!.equals(e.data)).toBe(true);
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
