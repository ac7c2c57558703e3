/** ZIP entries carry DOS dates (1980–2107): a clock outside that range must not break writing an archive. */
import { describe, expect, it } from 'vitest';
import { readZip, writeZip } from '../../src/platform/zip.ts';

const LOCAL_DATE_OFFSET = 12;
const dosDate = (year: number, month: number, day: number) => ((year - 1980) << 9) | (month << 5) | day;

describe('ZIP entry dates', () => {
  it('a clock before 1980 writes 1980-01-01 instead of throwing RangeError', () => {
    const zip = writeZip([{ name: 'mimetype', data: Buffer.from('application/vnd.etsi.asic-e+zip'), stored: true }], new Date(0));
    expect(zip.readUInt16LE(LOCAL_DATE_OFFSET)).toBe(dosDate(1980, 1, 1));
    expect(readZip(zip).map((e) => e.name)).toEqual(['mimetype']);
  });

  it('a clock after 2107 writes 2107-12-31', () => {
    const zip = writeZip([{ name: 'a', data: Buffer.from('x') }], new Date(Date.UTC(2200, 5, 1)));
    expect(zip.readUInt16LE(LOCAL_DATE_OFFSET)).toBe(dosDate(2107, 12, 31));
  });

  it('a date in range is written as it is', () => {
    const zip = writeZip([{ name: 'a', data: Buffer.from('x') }], new Date(Date.UTC(2026, 11, 6, 12)));
    expect(zip.readUInt16LE(LOCAL_DATE_OFFSET)).toBe(dosDate(2026, 12, 6));
  });
});
