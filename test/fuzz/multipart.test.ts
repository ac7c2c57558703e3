/**
 * Issue 13 item 10, multipart (src/protocol/multipart.ts): the push parser gives the same parts,
 * byte for byte, however a body is cut into chunks, and a mutated body (of the shared vectors'
 * messages and configuration directories, or of generated ones) ends in the same parts or in a
 * MultipartError / MultipartLimitError, the same either way, and in nothing else.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MultipartError, MultipartLimitError, MultipartParser, boundaryOf, buildMultipart, parseMultipart, type MimeHeaders } from '../../src/protocol/multipart.ts';
import { VECTORS } from '../support/vectors.ts';
import { FUZZ_TIMEOUT, chunked, fuzzRuns, mutated, vector } from './fuzz.ts';

const LIMITS = { maxParts: 8, maxHeaderBytes: 512 };

type Outcome = { parts: { headers: MimeHeaders; body: string }[] } | { error: 'MultipartError' | 'MultipartLimitError' };

/** What the parser makes of `chunks`: every part's headers and body (hex), or which error ended it. */
function outcome(chunks: readonly Buffer[], boundary: string, lenient = false): Outcome {
  const parts: { headers: MimeHeaders; body: Buffer[] }[] = [];
  const parser = new MultipartParser(
    boundary,
    (headers) => {
      const part = { headers, body: [] as Buffer[] };
      parts.push(part);
      // Copies: the parser may hand out views of a chunk it reuses.
      return { write: (chunk) => part.body.push(Buffer.from(chunk)), end: () => {} };
    },
    LIMITS,
  );
  try {
    for (const chunk of chunks) parser.write(chunk);
    if (lenient) parser.endLeniently();
    else parser.end();
  } catch (err) {
    if (err instanceof MultipartLimitError) return { error: 'MultipartLimitError' };
    if (err instanceof MultipartError) return { error: 'MultipartError' };
    throw err;
  }
  return { parts: parts.map((p) => ({ headers: p.headers, body: Buffer.concat(p.body).toString('hex') })) };
}

/** The shared vectors' multipart bodies: messages between servers and configuration directories. */
function seeds(): { body: Buffer; boundary: string }[] {
  const out: { body: Buffer; boundary: string }[] = [];
  for (const name of readdirSync(join(VECTORS, 'proxy-queries')).filter((f) => /^(attachm|mimesoap|attachments|no-signature|faulty-multipart)/.test(f))) {
    const body = vector('proxy-queries', name);
    const first = body.subarray(0, body.indexOf('\n')).toString('latin1').trim();
    if (first.startsWith('--')) out.push({ body, boundary: first.slice(2) });
  }
  for (const name of ['test-conf-simple.txt', 'test-conf-malformed.txt']) {
    const file = vector('configuration-download', name);
    const headerEnd = file.indexOf('\n\n');
    out.push({ body: file.subarray(headerEnd + 2), boundary: boundaryOf(file.subarray(0, headerEnd).toString('latin1'))! });
  }
  return out;
}

const generated = fc
  .record({
    boundary: fc.constantFrom('b', 'abc', 'jetty771207119h3h10dty', '--x'),
    parts: fc.array(
      fc.record({
        headers: fc.array(fc.tuple(fc.constantFrom('Content-Type', 'content-id', 'X-A'), fc.constantFrom('text/xml', '<a@b>', 'a\r\n b', '')), { maxLength: 3 }),
        body: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constantFrom('--b', '\r\n--abc-', '\r\n--abcd\r\n', '\n--b \r\n', '--').map((s) => Buffer.from(s, 'latin1'))),
      }),
      { maxLength: 5 },
    ),
  })
  .map(({ boundary, parts }) => ({ boundary, body: buildMultipart(boundary, parts.map((p) => ({ headers: p.headers, body: Buffer.from(p.body) }))) }));

const alphabet = [...'-\r\n: \tb'].map((c) => c.charCodeAt(0));
const cuts = fc.array(fc.nat(), { maxLength: 12 });

describe('multipart parser fuzzing (issue 13 item 10)', () => {
  it(
    'arbitrary chunking gives the parts of the whole body, byte for byte (generated and shared bodies)',
    () => {
      const all = fc.oneof(generated, fc.constantFrom(...seeds()));
      fc.assert(
        fc.property(all, cuts, fc.boolean(), ({ body, boundary }, at, lenient) => {
          const whole = outcome([body], boundary, lenient);
          expect(outcome(chunked(body, at), boundary, lenient)).toEqual(whole);
          expect(outcome([...body].map((b) => Buffer.of(b)), boundary, lenient)).toEqual(whole);
        }),
        fuzzRuns(400),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'mutated bodies: only MultipartError or MultipartLimitError, the same in any chunks as whole; parseMultipart agrees',
    () => {
      const bodies = fc.oneof(generated, fc.constantFrom(...seeds())).chain(({ body, boundary }) => mutated(body, alphabet).map((m) => ({ body: m, boundary })));
      fc.assert(
        fc.property(bodies, cuts, ({ body, boundary }, at) => {
          const whole = outcome([body], boundary);
          expect(outcome(chunked(body, at), boundary)).toEqual(whole);
          let parsed: Outcome;
          try {
            parsed = { parts: parseMultipart(body, boundary, LIMITS).map((p) => ({ headers: p.headerList, body: p.body.toString('hex') })) };
          } catch (err) {
            expect(err instanceof MultipartError || err instanceof MultipartLimitError).toBe(true);
            parsed = { error: err instanceof MultipartLimitError ? 'MultipartLimitError' : 'MultipartError' };
          }
          expect(parsed).toEqual(whole);
        }),
        fuzzRuns(1000),
      );
    },
    FUZZ_TIMEOUT,
  );
});
