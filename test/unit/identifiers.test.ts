/**
 * Which X-Road identifiers are accepted where a user or a peer writes one (CLI arguments,
 * serverconf.json, X-Road-Client headers): the characters the reference refuses in an identifier part
 * are refused here too, with the part and the character named.
 */
import { describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { identifierPartProblem, parseClientId, parseSecurityServerId } from '../../src/protocol/identifiers.ts';

function refusal(fn: () => unknown): { code: string; reason: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof XrdError) return { code: err.code, reason: String(err.details.reason) };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('identifier parts', () => {
  it('accepts what the reference accepts: dots, dashes, letters of any script, a space inside', () => {
    for (const part of ['adsdsa', 'a.b.c', 'a-b-c', 'äöå', '列', 'Org Name', 'x'.repeat(255)]) expect(identifierPartProblem(part)).toBeUndefined();
    expect(parseClientId('FI/GOV/äöå-1/列')).toEqual({ instance: 'FI', memberClass: 'GOV', memberCode: 'äöå-1', subsystem: '列' });
  });

  it('refuses separators, control and invisible characters, blank and overlong parts, naming what is wrong', () => {
    const cases: [string, string][] = [
      ['a:b', 'holds ":"'],
      ['a;b', 'holds ";"'],
      ['a%2Fb', 'holds "%"'],
      ['a\\b', 'holds "\\"'],
      ['a\tb', 'holds U+0009'],
      ['a\nb', 'holds U+000A'],
      ['a\u0098b', 'holds U+0098'],
      ['a\u200bb', 'holds U+200B'],
      ['\ufeffab', 'holds U+FEFF'],
      ['a\u00a0b', 'holds U+00A0'],
      ['a\u2028b', 'holds U+2028'],
      [' ab', 'begins or ends with a space'],
      ['ab ', 'begins or ends with a space'],
      ['', 'is empty or blank'],
      ['  ', 'is empty or blank'],
      ['x'.repeat(256), 'is longer than 255 characters'],
    ];
    for (const [part, problem] of cases) expect(identifierPartProblem(part), JSON.stringify(part)).toBe(problem);
  });

  it('parsers refuse such a part as InvalidIdentifier and say which part', () => {
    expect(refusal(() => parseClientId('LOCAL/COM/1111/SUB;1'))).toEqual({ code: 'InvalidIdentifier', reason: 'expected INSTANCE/CLASS/CODE[/SUBSYSTEM]: part 4 holds ";"' });
    expect(refusal(() => parseSecurityServerId('LOCAL/COM/11:11/ss1'))).toEqual({ code: 'InvalidIdentifier', reason: 'expected INSTANCE/CLASS/CODE/SERVERCODE: part 3 holds ":"' });
    expect(refusal(() => parseClientId('LOCAL/COM//SUB')).reason).toBe('expected INSTANCE/CLASS/CODE[/SUBSYSTEM]: part 3 is empty or blank');
    expect(refusal(() => parseClientId('LOCAL/COM')).reason).toBe('expected INSTANCE/CLASS/CODE[/SUBSYSTEM]');
    expect(refusal(() => parseSecurityServerId('LOCAL/COM/1111/ss1 ')).reason).toBe('expected INSTANCE/CLASS/CODE/SERVERCODE: part 4 begins or ends with a space');
  });
});
