/**
 * The parsed-signature cache of src/signature/verifier.ts is bounded by the bytes of the documents
 * it keeps, keyed by their hash, and keeps no document over its size cap — with the reference's
 * valid-signed-message.asice, verified for real, padded with comments the signature does not cover
 * (so the padded copies still verify, as they would at the reference).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { readAsic } from '../../src/signature/asic.ts';
import { PARSED_SIGNATURE_MAX_BYTES, PARSED_SIGNATURES_BYTES, parsedSignatureCacheUsage, verifySignature } from '../../src/signature/verifier.ts';
import { VECTORS } from '../support/vectors.ts';

const MiB = 1024 * 1024;
const conf = loadGlobalConf(join(VECTORS, 'globalconf'));
const signed = readAsic(readFileSync(join(VECTORS, 'asic', 'valid-signed-message.asice')));
const signer = parseClientId('DEV/COM/4321/TestClient');
const document = signed.signatureXml.toString('utf8');

/** The signature with a comment of `bytes` before SignedInfo: outside everything it signs. */
const padded = (tag: string, bytes: number) => Buffer.from(document.replace('<ds:SignedInfo', `<!--${tag} ${'x'.repeat(bytes)}--><ds:SignedInfo`));
const verify = (xml: Buffer) => verifySignature(xml, { message: signed.message }, { conf, signer });

/** The heap and buffers in use after a full collection. */
function memoryInUse(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

describe('parsed-signature cache', () => {
  it('40 padded 8 MB signatures do not stay in memory: each verifies, none is kept', () => {
    const before = memoryInUse();
    const kept = parsedSignatureCacheUsage();
    for (let i = 0; i < 40; i++) expect(verify(padded(`copy ${i}`, 8 * MiB)).signer).toEqual(signer);
    expect(parsedSignatureCacheUsage()).toEqual(kept);
    // 40 × 8 MiB of documents (and their trees) would be well over 300 MiB.
    expect(memoryInUse() - before).toBeLessThan(64 * MiB);
  });

  it('real signatures are kept by their hash and reused; the documents kept never add up to more than the budget', () => {
    const real = Buffer.from(document);
    verify(real);
    const once = parsedSignatureCacheUsage();
    verify(Buffer.from(document));
    expect(parsedSignatureCacheUsage()).toEqual(once);

    // Documents just under the size cap, more of them than the budget holds: the oldest go.
    const size = PARSED_SIGNATURE_MAX_BYTES - document.length - 100;
    const count = Math.ceil((2 * PARSED_SIGNATURES_BYTES) / size);
    for (let i = 0; i < count; i++) verify(padded(`big ${i}`, size));
    const usage = parsedSignatureCacheUsage();
    expect(usage.bytes).toBeLessThanOrEqual(PARSED_SIGNATURES_BYTES);
    expect(usage.bytes).toBeGreaterThan(PARSED_SIGNATURES_BYTES - PARSED_SIGNATURE_MAX_BYTES);
    expect(usage.documents).toBeLessThan(count);
  });
});
