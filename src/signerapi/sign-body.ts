/**
 * The binary body of `signBinary` (opcode 42, docs/signer-protocol.md): the request and answer of
 * the signing hot path without JSON or base64. Every field is bounded by its length byte or by the
 * algorithm, so a request body is at most MAX_SIGN_REQUEST_BODY bytes; anything else is a coded
 * error before any of it is acted on.
 *
 * Request:  algorithm (1 byte, the table's wireId) · flags (1) · key id length k (1) · key id (k) ·
 *           digest (the rest, exactly the algorithm's digest length)
 * Answer:   the signature bytes (error frames stay JSON, as for every operation)
 */
import { XrdError } from '../platform/errors.ts';
import { SIGN_ALGORITHMS, SIGN_ALGORITHMS_BY_WIRE_ID, checkDigest, type SignAlgorithm } from './algorithms.ts';

/** Flag bit 0: ECDSA as r‖s (XML signatures) instead of DER. Other bits must be 0. */
export const SIGN_FLAG_RAW = 0x01;
const KNOWN_FLAGS = SIGN_FLAG_RAW;
const HEAD = 3;
/** Key ids are CKA_IDs: at most 255 bytes; digests at most SHA-512's 64. */
export const MAX_SIGN_REQUEST_BODY = HEAD + 255 + 64;

export interface SignBinaryRequest {
  /** Hex CKA_ID, as in the JSON operations. */
  readonly keyId: string;
  /** The algorithm id (`SHA512withRSA`); its wire id goes on the wire. */
  readonly algorithm: string;
  readonly digest: Buffer;
  /** ECDSA signature as r‖s rather than DER. */
  readonly raw?: boolean;
}

/** A decoded request: the algorithm looked up and the digest length already checked. */
export interface DecodedSignRequest {
  readonly keyId: string;
  readonly algorithm: SignAlgorithm;
  readonly digest: Buffer;
  readonly raw: boolean;
}

/** @throws UnsupportedSignAlgorithm, KeyNotFound (a key id that is not hex or longer than 255 bytes) */
export function encodeSignRequest(r: SignBinaryRequest): Buffer {
  const alg = SIGN_ALGORITHMS.get(r.algorithm);
  if (!alg) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: r.algorithm, keyId: r.keyId });
  const keyLength = r.keyId.length / 2;
  if (!Number.isInteger(keyLength) || keyLength === 0 || keyLength > 255 || !/^[0-9A-Fa-f]+$/.test(r.keyId)) throw new XrdError('KeyNotFound', { keyId: r.keyId });
  const body = Buffer.allocUnsafe(HEAD + keyLength + r.digest.length);
  body[0] = alg.wireId;
  body[1] = r.raw ? SIGN_FLAG_RAW : 0;
  body[2] = keyLength;
  body.write(r.keyId, HEAD, 'hex');
  r.digest.copy(body, HEAD + keyLength);
  return body;
}

/**
 * Reads a request body; the digest is copied out (the body points into the connection's read buffer).
 * `keyId`: what signRequestKeyId read from the same body, when the caller already has it.
 * @throws MalformedRequest (too short or long, unknown flags), UnsupportedSignAlgorithm, InvalidDigestLength
 */
export function decodeSignRequest(body: Buffer, keyId = signRequestKeyId(body)): DecodedSignRequest {
  const algorithm = SIGN_ALGORITHMS_BY_WIRE_ID.get(body[0]!);
  if (!algorithm) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: `wire id ${body[0]}`, keyId });
  const digest = Buffer.from(body.subarray(HEAD + body[2]!));
  return { keyId, algorithm: checkDigest(algorithm, digest), digest, raw: (body[1]! & SIGN_FLAG_RAW) !== 0 };
}

/**
 * The key id of a request body, read before the rest so that a request for a known key with a bad
 * algorithm or digest is counted under that key (as the JSON `sign` is).
 * @throws MalformedRequest (too short or long, unknown flags, a key id that does not fit)
 */
export function signRequestKeyId(body: Buffer): string {
  if (body.length < HEAD + 1) throw new XrdError('MalformedRequest', { reason: `signBinary body of ${body.length} bytes is shorter than its header and a key id` });
  if (body.length > MAX_SIGN_REQUEST_BODY) throw new XrdError('MalformedRequest', { reason: `signBinary body of ${body.length} bytes is longer than ${MAX_SIGN_REQUEST_BODY}` });
  const flags = body[1]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new XrdError('MalformedRequest', { reason: `signBinary flags 0x${flags.toString(16)} has unknown bits` });
  const keyLength = body[2]!;
  if (keyLength === 0 || HEAD + keyLength > body.length) throw new XrdError('MalformedRequest', { reason: `signBinary key id of ${keyLength} bytes does not fit a body of ${body.length}` });
  return body.toString('hex', HEAD, HEAD + keyLength).toUpperCase();
}
