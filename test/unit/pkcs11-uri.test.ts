import { describe, expect, it } from 'vitest';
import { formatPkcs11Uri, parsePkcs11Uri } from '../../src/token/pkcs11-uri.ts';

describe('pkcs11: URIs (RFC 7512)', () => {
  it('parses token, serial and a percent-encoded id', () => {
    expect(parsePkcs11Uri('pkcs11:token=My%20Token;serial=0123abcd;id=%01%A2;type=private')).toEqual({
      token: 'My Token',
      serial: '0123abcd',
      id: Buffer.from([0x01, 0xa2]),
      type: 'private',
    });
  });

  it('prints what it parses', () => {
    const parts = { token: 'xrd soft;token', serial: 'b489', id: Buffer.from('00ff10', 'hex'), type: 'private' as const };
    const uri = formatPkcs11Uri(parts);
    expect(uri).toBe('pkcs11:token=xrd%20soft%3Btoken;serial=b489;type=private;id=%00%FF%10');
    expect(parsePkcs11Uri(uri)).toEqual(parts);
  });

  it('refuses PINs inside the URI and unknown attributes', () => {
    expect(() => parsePkcs11Uri('pkcs11:token=a?pin-value=1234')).toThrow(expect.objectContaining({ code: 'InvalidIdentifier', message: 'Invalid identifier pkcs11:token=a?…: PINs are not accepted in pkcs11: URIs' }));
    expect(() => parsePkcs11Uri('pkcs11:tokn=a')).toThrow(/unknown/);
    expect(() => parsePkcs11Uri('http://x')).toThrow(/not a pkcs11/);
  });
});
