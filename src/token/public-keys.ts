/**
 * Conversions between the attributes a token keeps for a public key (modulus/exponent, EC params and
 * point) and SubjectPublicKeyInfo DER, which CSRs, certificates and OpenSSL use. Pure; Node's crypto
 * does the DER work through JWK.
 */
import { createPublicKey } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';

export type EcCurve = 'P-256' | 'P-384';

export interface CurveInfo {
  readonly name: EcCurve;
  /** DER of the named-curve OID, the value of CKA_EC_PARAMS. */
  readonly params: Buffer;
  readonly coordinateLength: number;
}

export const CURVES: Record<EcCurve, CurveInfo> = {
  'P-256': { name: 'P-256', params: Buffer.from('06082a8648ce3d030107', 'hex'), coordinateLength: 32 },
  'P-384': { name: 'P-384', params: Buffer.from('06052b81040022', 'hex'), coordinateLength: 48 },
};

export function curveFromParams(params: Buffer): CurveInfo | undefined {
  return Object.values(CURVES).find((c) => c.params.equals(params));
}

const b64url = (b: Buffer): string => b.toString('base64url');

export function rsaSpki(modulus: Buffer, publicExponent: Buffer): Buffer {
  return createPublicKey({ key: { kty: 'RSA', n: b64url(modulus), e: b64url(publicExponent) }, format: 'jwk' }).export({
    type: 'spki',
    format: 'der',
  });
}

/** CKA_EC_POINT is an OCTET STRING holding the uncompressed point; some tokens return it bare. */
export function ecPointFromAttribute(value: Buffer, curve: CurveInfo): Buffer {
  const rawLength = 2 * curve.coordinateLength + 1;
  if (value.length === rawLength && value[0] === 0x04) return value;
  if (value[0] === 0x04 && value[1] === rawLength && value.length === rawLength + 2) return value.subarray(2);
  if (value[0] === 0x04 && value[1] === 0x81 && value[2] === rawLength) return value.subarray(3);
  throw new XrdError('UnreadableTokenObject', { what: 'a CKA_EC_POINT', reason: 'neither a bare uncompressed point nor one in an OCTET STRING' });
}

export function ecSpki(curve: CurveInfo, point: Buffer): Buffer {
  const n = curve.coordinateLength;
  return createPublicKey({
    key: { kty: 'EC', crv: curve.name, x: b64url(point.subarray(1, 1 + n)), y: b64url(point.subarray(1 + n)) },
    format: 'jwk',
  }).export({ type: 'spki', format: 'der' });
}

export type PublicKeyParts =
  | { algorithm: 'RSA'; modulus: Buffer; publicExponent: Buffer; bits: number }
  | { algorithm: 'EC'; curve: CurveInfo; point: Buffer };

/** The token attributes of a public key in SPKI DER (RSA or P-256/P-384). */
export function partsFromSpki(spki: Buffer): PublicKeyParts {
  const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  if (jwk.kty === 'RSA') {
    const modulus = Buffer.from(jwk.n!, 'base64url');
    return { algorithm: 'RSA', modulus, publicExponent: Buffer.from(jwk.e!, 'base64url'), bits: modulus.length * 8 };
  }
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'P-384')) {
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    return { algorithm: 'EC', curve: CURVES[jwk.crv], point };
  }
  throw new XrdError('IncorrectCertificate', { reason: `unsupported public key type ${jwk.kty} ${jwk.crv ?? ''}`.trim() });
}
