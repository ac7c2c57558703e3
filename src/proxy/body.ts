/**
 * A request or response body of at most `limit` bytes, for the three HTTP hops the proxies read
 * (requests from other security servers, answers from them, answers from services).
 */
import type { Readable } from 'node:stream';
import type { XrdError } from '../platform/errors.ts';

/**
 * @returns the body once the stream ends
 * @throws what `tooLarge` makes, at the first byte past `limit` (the rest is read and dropped, so
 *   the caller may still answer on the connection, or drop it), or the stream's own error
 */
export function readBody(stream: Readable, limit: number, tooLarge: () => XrdError): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] | undefined = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks?.push(chunk);
      else if (chunks) {
        chunks = undefined;
        reject(tooLarge());
      }
    });
    stream.on('end', () => chunks && resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
