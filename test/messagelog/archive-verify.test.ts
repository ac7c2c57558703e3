/**
 * The archive verifier against the reference's own archives (messagelog-archive-verifier's
 * ArchiveHashChainVerifierTest) and tampered copies of them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyArchive } from '../../src/messagelog/archive-format.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { readZip, writeZip } from '../../src/platform/zip.ts';
import { VECTORS } from '../support/vectors.ts';

const ARCHIVE_0 = join(VECTORS, 'messagelog-archive', 'message-archive-0.zip');
const ARCHIVE_1 = join(VECTORS, 'messagelog-archive', 'message-archive-1.zip');
const LAST_OF_0 = '9011ab557706b5050584d6888af7b390e5350f4edad296bd7a582aa51732aac7f49a4ec44dd361027945ade0de8b8cf607fb7b7d11f17b0560d44b965c358eaa';
const dir = mkdtempSync(join(tmpdir(), 'xrd-archive-verify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(p: Promise<unknown>): Promise<XrdError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(XrdError);
  return err as XrdError;
}

/** A copy of archive 1 with its entries changed by `change` (written by our own zip writer). */
function tampered(name: string, change: (entries: { name: string; data: Buffer }[]) => { name: string; data: Buffer }[]): string {
  const entries = readZip(readFileSync(ARCHIVE_1)).map((e) => ({ name: e.name, data: e.data }));
  const file = join(dir, name);
  writeFileSync(file, writeZip(change(entries)));
  return file;
}

describe('ArchiveHashChainVerifierTest', () => {
  it('shouldSucceedOnValidHFirst: message-archive-0.zip verifies as the first archive of a chain; its last digest is the one archive 1 starts from', async () => {
    const v = await verifyArchive(ARCHIVE_0);
    expect(v.previous).toEqual({ digest: '', fileName: '' });
    expect(v.algorithm).toBe('SHA-512');
    expect(v.containers).toEqual(['3a2a743f-56da-4085-b643-79e335341eb3-request-1.asice']);
    expect(v.lastDigest).toBe(LAST_OF_0);
  });

  it('shouldSucceedOnValidHashChain: message-archive-1.zip verifies given archive 0\'s last digest', async () => {
    const v = await verifyArchive(ARCHIVE_1, { previousDigest: LAST_OF_0 });
    expect(v.previous).toEqual({ digest: LAST_OF_0, fileName: 'mlog-20231023121255-20231023121255-9011ab557706b505.zip.gpg' });
    expect(v.containers).toHaveLength(20);
    expect(v.lastDigest).toBe('1bdf9efbf998d9c15a2137d898c9a742059ab2072a4e2ef0c7c8e0d61f7574c5efcd4c7e27d0684ab16fb1f989ab290c0a98d23b26e28361649e75b566b7ac36');
  });

  it('shouldFailOnInvalidPreviousHash: message-archive-1.zip is refused with any other previous digest, and as a first archive', async () => {
    const e = await refusal(verifyArchive(ARCHIVE_1, { previousDigest: `4145${LAST_OF_0.slice(4)}` }));
    expect(e.code).toBe('LogArchivePreviousDigestMismatch');
    expect((await refusal(verifyArchive(ARCHIVE_1))).code).toBe('LogArchivePreviousDigestMismatch');
    // …and archive 0 is refused when said to follow another
    expect((await refusal(verifyArchive(ARCHIVE_0, { previousDigest: LAST_OF_0 }))).code).toBe('LogArchivePreviousDigestMismatch');
  });

  it('a copy of archive 1 rewritten by our zip writer, unchanged, still verifies (the digests are over the containers, not the zip)', async () => {
    const file = tampered('same.zip', (e) => e);
    await expect(verifyArchive(file, { previousDigest: LAST_OF_0 })).resolves.toMatchObject({ containers: expect.any(Array) });
  });

  it('an altered, removed or reordered container, or one added, breaks the chain', async () => {
    const altered = tampered('altered.zip', (es) => es.map((e, i) => (i === 3 ? { ...e, data: Buffer.concat([e.data, Buffer.from(' ')]) } : e)));
    const e1 = await refusal(verifyArchive(altered, { previousDigest: LAST_OF_0 }));
    expect(e1.code).toBe('LogArchiveDigestMismatch');
    expect(e1.details.entry).toBe('ID1234-response-6.asice');

    const swapped = tampered('swapped.zip', (es) => [es[1]!, es[0]!, ...es.slice(2)]);
    expect((await refusal(verifyArchive(swapped, { previousDigest: LAST_OF_0 }))).code).toBe('LogArchiveDigestMismatch');

    const removed = tampered('removed.zip', (es) => es.filter((e) => e.name !== 'ID4321-request-b.asice'));
    expect((await refusal(verifyArchive(removed, { previousDigest: LAST_OF_0 }))).code).toBe('LogArchiveInvalid');

    const added = tampered('added.zip', (es) => [...es, { name: 'extra-request-z.asice', data: Buffer.from('x') }]);
    expect((await refusal(verifyArchive(added, { previousDigest: LAST_OF_0 }))).code).toBe('LogArchiveInvalid');
  });

  it('no linkinginfo, no containers, a stray entry, or not a zip at all: LogArchiveInvalid', async () => {
    const cases = [
      tampered('no-linking.zip', (es) => es.filter((e) => e.name !== 'linkinginfo')),
      tampered('only-linking.zip', (es) => es.filter((e) => e.name === 'linkinginfo')),
      tampered('stray.zip', (es) => [...es, { name: 'readme.txt', data: Buffer.from('hi') }]),
      tampered('bad-algorithm.zip', (es) => es.map((e) => (e.name === 'linkinginfo' ? { ...e, data: Buffer.from(e.data.toString().replace('SHA-512', 'MD5')) } : e))),
    ];
    const notZip = join(dir, 'not.zip');
    writeFileSync(notZip, 'Hello world!\n');
    cases.push(notZip);
    for (const file of cases) expect((await refusal(verifyArchive(file, { previousDigest: LAST_OF_0 }))).code, file).toBe('LogArchiveInvalid');
  });
});
