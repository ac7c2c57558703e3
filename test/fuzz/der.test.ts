/**
 * Issue 13 item 10, DER: the TLV reader (src/certificates/der.ts) and the OCSP response parser
 * (src/trust/ocsp.ts parseOcspResponse), on random bytes and on mutations of the shared vectors'
 * OCSP responses and certificates. The readers throw nothing but DerError and stay inside the
 * buffer; parseOcspResponse throws nothing but IncorrectValidationInfo, whose cause (when it has
 * one) is a DerError, never a TypeError or RangeError from reading past what is there.
 */
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DerError, TAG, childrenOf, content, encodeTlv, readIntegerHex, readOid, readTime, readTlv, type Tlv } from '../../src/certificates/der.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { parseOcspResponse } from '../../src/trust/ocsp.ts';
import { fromContainer } from '../support/vectors.ts';
import { FUZZ_TIMEOUT, fuzzRuns, mutated, vector } from './fuzz.ts';

/** Walks every TLV, reading each primitive as its tag says; returns how many it read. */
function walk(buf: Buffer, tlv: Tlv, depth = 0): number {
  expect(tlv.start).toBeGreaterThanOrEqual(0);
  expect(tlv.end).toBeLessThanOrEqual(buf.length);
  expect(tlv.contentStart).toBeLessThanOrEqual(tlv.end);
  if (tlv.tag === TAG.OID) readOid(buf, tlv);
  else if (tlv.tag === TAG.INTEGER) readIntegerHex(buf, tlv);
  else if (tlv.tag === TAG.UTC_TIME || tlv.tag === TAG.GENERALIZED_TIME) readTime(buf, tlv);
  if (!(tlv.tag & 0x20) || depth > 64) return 1;
  let n = 1;
  for (const inner of childrenOf(buf, tlv)) n += walk(buf, inner, depth + 1);
  return n;
}

function onlyDerErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DerError);
  }
}

function onlyCodedOcspErrors(der: Buffer): void {
  try {
    parseOcspResponse(der);
  } catch (err) {
    expect(err).toBeInstanceOf(XrdError);
    expect((err as XrdError).code).toBe('IncorrectValidationInfo');
    const cause = (err as XrdError).cause;
    if (cause !== undefined) expect(cause).toBeInstanceOf(DerError);
  }
}

const pemDer = (pem: Buffer) => Buffer.from(new X509Certificate(pem).raw);
const OCSP_SEEDS = [fromContainer('valid-signed-message.asice').ocsp, vector('proxy-queries', 'test.ocsp')];
const CERT_SEEDS = [pemDer(vector('test-certs', 'root-ca.pem')), pemDer(vector('test-certs', 'test_chain', 'user_1.pem'))];
// DER's own structure bytes: SEQUENCE, lengths, OID, times, context tags.
const alphabet = [0x30, 0x31, 0x02, 0x04, 0x06, 0x0a, 0x17, 0x18, 0x80, 0x81, 0x82, 0x84, 0xa0, 0xa1, 0xa2, 0x00, 0xff];

/** A TLV tree, to mutate with the lengths kept right (byte mutations mostly break the outermost length). */
type Node = { tag: number; content: Buffer } | { tag: number; children: Node[] };

function tree(buf: Buffer, tlv: Tlv): Node {
  return tlv.tag & 0x20 ? { tag: tlv.tag, children: childrenOf(buf, tlv).map((t) => tree(buf, t)) } : { tag: tlv.tag, content: content(buf, tlv) };
}

const encode = (node: Node): Buffer => ('children' in node ? encodeTlv(node.tag, ...node.children.map(encode)) : encodeTlv(node.tag, node.content));

function preorder(node: Node, out: { node: Node; parent?: Node & { children: Node[] } }[] = [], parent?: Node & { children: Node[] }) {
  out.push({ node, parent });
  if ('children' in node) for (const c of node.children) preorder(c, out, node as Node & { children: Node[] });
  return out;
}

/** `seed` with a few of its values dropped, repeated, emptied, retagged or given other bytes, re-encoded. */
function structurallyMutated(seed: Buffer): fc.Arbitrary<Buffer> {
  const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom('drop', 'repeat', 'empty', 'retag', 'bytes'), tag: fc.constantFrom(...alphabet), bytes: fc.uint8Array({ maxLength: 20 }) });
  return fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const root = tree(seed, readTlv(seed, 0));
    for (const { at, kind, tag, bytes } of edits) {
      const all = preorder(root);
      const { node, parent } = all[at % all.length]!;
      const siblings = parent?.children;
      const i = siblings ? siblings.indexOf(node) : -1;
      if (kind === 'drop' && siblings) siblings.splice(i, 1);
      else if (kind === 'repeat' && siblings) siblings.splice(i, 0, node);
      else if (kind === 'empty') Object.assign(node, 'children' in node ? { children: [] } : { content: Buffer.alloc(0) });
      else if (kind === 'retag') node.tag = tag;
      else if (kind === 'bytes' && !('children' in node)) node.content = Buffer.from(bytes);
    }
    return encode(root);
  });
}

describe('DER and OCSP fuzzing (issue 13 item 10)', () => {
  it('the seeds parse, so the mutations start from real structures', () => {
    for (const der of OCSP_SEEDS) expect(parseOcspResponse(der).responses.length).toBeGreaterThan(0);
    for (const der of CERT_SEEDS) expect(walk(der, readTlv(der, 0))).toBeGreaterThan(20);
  });

  it(
    'random and mutated bytes: the TLV readers throw only DerError and never point outside the buffer',
    () => {
      const bytes = fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), fc.constantFrom(...OCSP_SEEDS, ...CERT_SEEDS).chain((seed) => fc.oneof(mutated(seed, alphabet), structurallyMutated(seed))));
      fc.assert(
        fc.property(bytes, (der) => onlyDerErrors(() => walk(der, readTlv(der, 0)))),
        fuzzRuns(2000),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'random and mutated OCSP responses: parseOcspResponse throws only IncorrectValidationInfo, caused by a DerError',
    () => {
      const bytes = fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), fc.constantFrom(...OCSP_SEEDS).chain((seed) => fc.oneof(mutated(seed, alphabet), structurallyMutated(seed))));
      fc.assert(fc.property(bytes, onlyCodedOcspErrors), fuzzRuns(2000));
    },
    FUZZ_TIMEOUT,
  );
});
