/**
 * How long the fuzz properties run. In CI each property has a small default number of runs, so the
 * whole folder takes well under a minute of CPU; XRD_FUZZ_RUNS=N runs every property N times
 * instead (test/fuzz/README.md), and XRD_FUZZ_SEED replays a run that failed.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VECTORS } from '../support/vectors.ts';

const RUNS = process.env.XRD_FUZZ_RUNS ? Number(process.env.XRD_FUZZ_RUNS) : undefined;
const SEED = process.env.XRD_FUZZ_SEED ? Number(process.env.XRD_FUZZ_SEED) : undefined;

/** fast-check parameters: `ciRuns` runs unless XRD_FUZZ_RUNS says otherwise. */
export function fuzzRuns(ciRuns: number): fc.Parameters<unknown> {
  return { numRuns: RUNS ?? ciRuns, ...(SEED !== undefined ? { seed: SEED } : {}) };
}

/** The vitest timeout of one property: a minute in CI, unbounded for a long run. */
export const FUZZ_TIMEOUT = RUNS ? 24 * 3600 * 1000 : 60_000;

export const vector = (...path: string[]): Buffer => readFileSync(join(VECTORS, ...path));

/**
 * A few changes to `seed`: bytes removed, repeated, replaced or inserted (from `alphabet`, which
 * should hold the format's own delimiters), at positions fast-check chooses and shrinks.
 */
export function mutated(seed: Buffer, alphabet: readonly number[]): fc.Arbitrary<Buffer> {
  const edit = fc.record({
    at: fc.nat(),
    length: fc.nat({ max: 16 }),
    kind: fc.constantFrom('remove', 'repeat', 'replace', 'insert'),
    byte: fc.oneof(fc.constantFrom(...alphabet), fc.integer({ min: 0, max: 255 })),
  });
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let bytes = seed;
    for (const { at, length, kind, byte } of edits) {
      const i = bytes.length === 0 ? 0 : at % bytes.length;
      const end = Math.min(bytes.length, i + length);
      const piece = Buffer.alloc(Math.max(1, length), byte);
      if (kind === 'remove') bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(end)]);
      else if (kind === 'repeat') bytes = Buffer.concat([bytes.subarray(0, end), bytes.subarray(i, end), bytes.subarray(end)]);
      else if (kind === 'replace') bytes = Buffer.concat([bytes.subarray(0, i), piece, bytes.subarray(end)]);
      else bytes = Buffer.concat([bytes.subarray(0, i), piece.subarray(0, 1), bytes.subarray(i)]);
    }
    return bytes;
  });
}

/** A buffer cut into pieces at arbitrary places (each piece at least one byte). */
export function chunked(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].filter((c) => c > 0).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}
