/**
 * Parts a signature covers may be too big to hold in memory (an attachment spooled to a file):
 * everything in this folder that needs a part's digest takes a Buffer or a DigestSource and goes
 * through `digestOf`. Synchronous, as verification is.
 */
import { hash } from 'node:crypto';
import { statSync } from 'node:fs';
import { fileBody } from '../platform/spool.ts';
import type { DigestName } from './algorithms.ts';

export interface DigestSource {
  readonly size: number;
  /** The part's digest; an implementation may read the part in chunks. */
  digest(algorithm: DigestName): Buffer;
}

export function digestOf(part: Buffer | DigestSource, algorithm: DigestName): Buffer {
  return Buffer.isBuffer(part) ? hash(algorithm, part, 'buffer') : part.digest(algorithm);
}

export function isDigestSource(value: unknown): value is DigestSource {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && typeof (value as DigestSource).digest === 'function';
}

/** A file's digests, read in chunks and kept per algorithm. The file must not change while it is in use. */
export const fileDigestSource = (path: string): DigestSource => fileBody(path, statSync(path).size);
