/**
 * Message-log archives (src/messagelog/archive-format.ts): the reference's archive 0 and its
 * `linkinginfo`, mutated — as bytes of the whole file, or only in the linking info re-zipped —
 * are either verified or refused with one of the LogArchive* codes; nothing else is thrown.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyArchive } from '../../src/messagelog/archive-format.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { readZip, writeZip } from '../../src/platform/zip.ts';
import { FUZZ_TIMEOUT, fuzzRuns, mutated, vector } from './fuzz.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-fuzz-archive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const archive = vector('messagelog-archive', 'message-archive-0.zip');
const entries = readZip(archive);
const linkingInfo = entries.find((e) => e.name === 'linkinginfo')!.data;
const CODES = new Set(['LogArchiveInvalid', 'LogArchivePreviousDigestMismatch', 'LogArchiveDigestMismatch']);

async function verifiesOrRefuses(bytes: Buffer, n: number): Promise<void> {
  const file = join(dir, `a-${n}.zip`);
  writeFileSync(file, bytes);
  try {
    await verifyArchive(file);
  } catch (err) {
    expect(err).toBeInstanceOf(XrdError);
    expect(CODES.has((err as XrdError).code), (err as XrdError).code).toBe(true);
  }
}

describe('message-log archive verifier, fuzzed', () => {
  it('mutated archive files: verified or refused with a LogArchive code', { timeout: FUZZ_TIMEOUT }, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutated(archive, [0x50, 0x4b, 0x03, 0x04, 0x00, 0xff]), (bytes) => verifiesOrRefuses(bytes, n++)),
      fuzzRuns(150),
    );
  });

  it('mutated linkinginfo in a well-formed zip: verified or refused with a LogArchive code', { timeout: FUZZ_TIMEOUT }, async () => {
    let n = 0;
    const alphabet = [...Buffer.from(' -\n\r\t0aSHA-512.asice')];
    await fc.assert(
      fc.asyncProperty(mutated(linkingInfo, alphabet), (info) =>
        verifiesOrRefuses(
          writeZip(entries.map((e) => (e.name === 'linkinginfo' ? { name: e.name, data: info } : { name: e.name, data: e.data }))),
          n++,
        ),
      ),
      fuzzRuns(300),
    );
  });
});
