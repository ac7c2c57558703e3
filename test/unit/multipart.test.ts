/**
 * The push parser reads a body the same however it is cut into chunks (RFC 2046 §5.1.1 delimiters
 * split across chunk ends, a boundary that is the beginning of a longer line, bodiless parts), and
 * refuses malformed bodies and too many or too long headers with its own error types.
 */
import { describe, expect, it } from 'vitest';
import { MultipartError, MultipartLimitError, MultipartParser, buildMultipart, parseMultipart, type MimeHeaders } from '../../src/protocol/multipart.ts';

function parseInChunks(body: Buffer, boundary: string, cuts: number[]): { headers: MimeHeaders; body: string }[] {
  const parts: { headers: MimeHeaders; body: string }[] = [];
  const parser = new MultipartParser(boundary, (headers) => {
    const chunks: Buffer[] = [];
    return { write: (c) => chunks.push(Buffer.from(c)), end: () => parts.push({ headers, body: Buffer.concat(chunks).toString('latin1') }) };
  });
  let at = 0;
  for (const cut of [...cuts, body.length]) {
    parser.write(body.subarray(at, cut));
    at = cut;
  }
  parser.end();
  return parts;
}

const SAMPLES: [string, string][] = [
  ['abc', buildMultipart('abc', [{ headers: [['Content-Type', 'text/xml']], body: Buffer.from('<a/>\r\n--abcd not a delimiter\r\n') }, { headers: [['Content-ID', '<x>']], body: Buffer.alloc(0) }]).toString('latin1')],
  // LF line ends, a preamble, padding after a delimiter, a bodiless part right before the next delimiter, an epilogue
  ['inner', 'preamble\n--inner  \nExpire-date: 2026-05-20T17:42:55Z\n\n--inner\nContent-type: a/b\n\nbody\n--inner--\nepilogue'],
  ['b', '--b\r\n\r\nno headers\r\n--b\r\nX:\r\n folded\r\n\r\n\r\n\r\n--b--'],
];

describe('MultipartParser', () => {
  for (const [boundary, text] of SAMPLES) {
    it(`gives the same parts for every way of cutting the body in two or three (${boundary})`, () => {
      const body = Buffer.from(text, 'latin1');
      const whole = parseInChunks(body, boundary, []);
      expect(whole).toEqual(parseMultipart(body, boundary).map((p) => ({ headers: p.headerList, body: p.body.toString('latin1') })));
      for (let i = 0; i <= body.length; i++) {
        expect(parseInChunks(body, boundary, [i])).toEqual(whole);
        for (let j = i; j <= body.length; j += 7) expect(parseInChunks(body, boundary, [i, j])).toEqual(whole);
      }
    });
  }

  it('reads a bodiless part that the next delimiter follows straight after the empty line, and one byte at a time', () => {
    const body = Buffer.from('--x\nA: 1\n\n--x\nB: 2\n\nz\n--x--');
    const parts = parseMultipart(body, 'x');
    expect(parts.map((p) => [p.headerList, p.body.toString()])).toEqual([[[['A', '1']], ''], [[['B', '2']], 'z']]);
    expect(parseInChunks(body, 'x', [...body.keys()])).toEqual(parts.map((p) => ({ headers: p.headerList, body: p.body.toString() })));
  });

  it('refuses a body without delimiter or close delimiter', () => {
    expect(() => parseMultipart(Buffer.from('nothing here'), 'x')).toThrow(MultipartError);
    expect(() => parseMultipart(Buffer.from('--x\r\nA: 1\r\n\r\nbody'), 'x')).toThrow(MultipartError);
  });

  it('refuses more parts than allowed, and a header block longer than allowed, before reading on', () => {
    const body = buildMultipart('x', Array.from({ length: 5 }, () => ({ headers: [['A', '1']] as [string, string][], body: Buffer.from('b') })));
    expect(() => parseMultipart(body, 'x', { maxParts: 4 })).toThrow(MultipartLimitError);
    const long = Buffer.concat([Buffer.from('--x\r\n'), Buffer.alloc(100_000, 'a')]);
    const parser = new MultipartParser('x', () => ({ write: () => undefined, end: () => undefined }), { maxHeaderBytes: 1000 });
    expect(() => parser.write(long)).toThrow(MultipartLimitError);
  });
});

describe('parts that end inside their header block', () => {
  it('a part whose headers run straight into the close delimiter has those headers and no body (pr-gconf: an empty signature part)', () => {
    const body = Buffer.from('--e\nA: 1\n\nx\n--e\nContent-type: application/octet-stream\nSignature-algorithm-id: s\n--e--');
    const parts = parseMultipart(body, 'e');
    expect(parts.map((p) => [p.headerList, p.body.toString()])).toEqual([[[['A', '1']], 'x'], [[['Content-type', 'application/octet-stream'], ['Signature-algorithm-id', 's']], '']]);
    expect(parseInChunks(body, 'e', [...body.keys()]).map((p) => p.body)).toEqual(['x', '']);
  });
});

describe('bodies cut short, read leniently as the reference’s MIME parser does', () => {
  it('a last delimiter without its line end or closing dashes ends the part before it', () => {
    const parts: string[] = [];
    const parser = new MultipartParser('b', () => {
      const chunks: Buffer[] = [];
      return { write: (c) => chunks.push(Buffer.from(c)), end: () => parts.push(Buffer.concat(chunks).toString()) };
    });
    parser.write(Buffer.from('--b\nA: 1\n\nfirst\n\n--b'));
    parser.endLeniently();
    expect(parts).toEqual(['first\n']);
  });
});
