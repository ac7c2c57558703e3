/**
 * Parts a signature covers may be too big to hold in memory (an attachment spooled to a file):
 * everything in this folder that needs a part's digest takes a Buffer or a DigestSource and goes
 * through `digestOf`. Synchronous, as verification is.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { DigestName } from './algorithms.ts';

export interface DigestSource {
  readonly size: number;
  /** The part's digest; an implementation may read the part in chunks. */
  digest(algorithm: DigestName): Buffer;
}

export function digestOf(part: Buffer | DigestSource, algorithm: DigestName): Buffer {
  return Buffer.isBuffer(part) ? createHash(algorithm).update(part).digest() : part.digest(algorithm);
}

export function isDigestSource(value: unknown): value is DigestSource {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && typeof (value as DigestSource).digest === 'function';
}

const CHUNK = 1 << 20;

/**
 * A file's digests, read 1 MiB at a time and kept per algorithm (a verifier may ask twice). The
 * file must not change while it is in use.
 */
export function fileDigestSource(path: string): DigestSource {
  const known = new Map<DigestName, Buffer>();
  return {
    size: statSync(path).size,
    digest(algorithm) {
      let value = known.get(algorithm);
      if (!value) {
        const hash = createHash(algorithm);
        const buffer = Buffer.allocUnsafe(CHUNK);
        const fd = openSync(path, 'r');
        try {
          for (let n; (n = readSync(fd, buffer, 0, CHUNK, null)) > 0; ) hash.update(buffer.subarray(0, n));
        } finally {
          closeSync(fd);
        }
        value = hash.digest();
        known.set(algorithm, value);
      }
      return value;
    },
  };
}
