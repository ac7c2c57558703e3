/**
 * DER encoding (X.690 §8.1.3, definite length) of src/certificates/der.ts encodeTlv, which builds
 * every hash chain step and OCSP request: the short form below 128 content bytes, the long form with
 * the fewest length octets above, and several content parts written as one value. Lengths past
 * 2^24 − 1 need a fourth length octet (the earlier encoder wrote a wrong length there).
 */
import { describe, expect, it } from 'vitest';
import { encodeTlv, readTlv } from '../../src/certificates/der.ts';
import { textNamesName } from '../../src/certificates/distinguished-name.ts';
import { encodeDn } from '../../src/certificates/csr.ts';

describe('DER encoding (X.690 §8.1.3)', () => {
  it('X.690 §8.1.3.4–5: short form below 128, long form with the fewest length octets above', () => {
    const cases: [number, number[]][] = [
      [0, [0x30, 0x00]],
      [127, [0x30, 0x7f]],
      [128, [0x30, 0x81, 0x80]],
      [255, [0x30, 0x81, 0xff]],
      [256, [0x30, 0x82, 0x01, 0x00]],
      [65535, [0x30, 0x82, 0xff, 0xff]],
      [65536, [0x30, 0x83, 0x01, 0x00, 0x00]],
      [0x1000000, [0x30, 0x84, 0x01, 0x00, 0x00, 0x00]],
    ];
    for (const [length, header] of cases) {
      const encoded = encodeTlv(0x30, Buffer.alloc(length, 0xab));
      expect([...encoded.subarray(0, header.length)], `length ${length}`).toEqual(header);
      expect(encoded.length).toBe(header.length + length);
      const tlv = readTlv(encoded, 0);
      expect([tlv.tag, tlv.contentStart, tlv.end]).toEqual([0x30, header.length, encoded.length]);
    }
  });

  it('several parts are one value: the parts in order after one header', () => {
    const parts = [Buffer.from('abc'), Buffer.alloc(0), Buffer.alloc(200, 1), Buffer.from([0xff])];
    const encoded = encodeTlv(0x04, ...parts);
    expect(encoded.equals(Buffer.concat([Buffer.from([0x04, 0x81, 204]), ...parts]))).toBe(true);
  });
});

describe('distinguished names compared with their text form, remembered', () => {
  it('RFC 4514: the same answer for a name asked again, and no answer carried over to another name', () => {
    const der = encodeDn([['C', 'FI'], ['O', 'Test CA'], ['CN', 'Issuer']]);
    const other = encodeDn([['C', 'FI'], ['O', 'Test CA'], ['CN', 'Someone else']]);
    for (let i = 0; i < 3; i++) {
      expect(textNamesName('CN=Issuer, O=Test CA, C=FI', der)).toBe(true);
      expect(textNamesName('CN=Issuer, O=Test CA, C=FI', other)).toBe(false);
      expect(textNamesName('CN=Issuer,O=Test CA', der)).toBe(false);
    }
  });
});
