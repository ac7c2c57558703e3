/**
 * MIME multipart as X-Road uses it (configuration directories, pr-gconf §2.3–2.4; OCSP responses
 * between security servers; messages between security servers, pr-messtransp §3.1): parts with
 * headers (folded lines allowed) and bodies kept as the exact bytes between the delimiters, since the
 * configuration signature covers the directory part's body byte for byte and a message signature
 * covers each message part and attachment.
 */

export interface MimePart {
  /** Header names in lower case. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

export interface MultipartOptions {
  /** Refuse bodies with more parts than this (MultipartLimitError), before reading the rest. */
  readonly maxParts?: number;
}

/** Thrown when a body has more parts than `maxParts` allows. */
export class MultipartLimitError extends Error {
  override readonly name = 'MultipartLimitError';
}

/** The `boundary` parameter of a multipart content type. */
export function boundaryOf(contentType: string): string | undefined {
  return /boundary="?([^";\s]+)"?/i.exec(contentType)?.[1];
}

/** Splits a multipart body; preamble and epilogue are ignored. @throws Error when malformed */
export function parseMultipart(body: Buffer, boundary: string, options: MultipartOptions = {}): MimePart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const maxParts = options.maxParts ?? Infinity;
  const parts: MimePart[] = [];
  let found = findDelimiter(body, delimiter, 0);
  if (!found) throw new Error('no multipart delimiter');
  for (;;) {
    if (found.close) return parts;
    const start = found.next;
    const next = findDelimiter(body, delimiter, start);
    if (!next) throw new Error('multipart body ends without its close delimiter');
    // The line end before the next delimiter belongs to the delimiter, not to the part.
    let end = next.at;
    if (body[end - 1] === 0x0a) end--;
    if (body[end - 1] === 0x0d) end--;
    if (parts.length >= maxParts) throw new MultipartLimitError(`more than ${maxParts} parts`);
    parts.push(parsePart(body.subarray(start, Math.max(start, end))));
    found = next;
  }
}

interface Delimiter {
  /** Where `--boundary` starts. */
  readonly at: number;
  /** The close delimiter `--boundary--`. */
  readonly close: boolean;
  /** Where the part after this delimiter starts (after the delimiter line's end). */
  readonly next: number;
}

/**
 * The next delimiter line at or after `from`. RFC 2046 §5.1.1: a delimiter starts a line, and is
 * followed by `--` (close) or by optional linear white space and the line end. Anything else — e.g.
 * `--abcd` when the boundary is `abc`, as a nested part's own boundary may be — is content.
 */
function findDelimiter(body: Buffer, delimiter: Buffer, from: number): Delimiter | undefined {
  for (let at = body.indexOf(delimiter, from); at >= 0; at = body.indexOf(delimiter, at + 1)) {
    if (at > 0 && body[at - 1] !== 0x0a) continue;
    let pos = at + delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return { at, close: true, next: pos + 2 };
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] === 0x0d) pos++;
    if (body[pos] === 0x0a) return { at, close: false, next: pos + 1 };
  }
  return undefined;
}

function parsePart(part: Buffer): MimePart {
  // Headers end at the first empty line; a part may have no body at all (the directory's first part),
  // or no headers (it then starts with the empty line).
  let headerEnd = part.length;
  let bodyStart = part.length;
  if (part[0] === 0x0a || (part[0] === 0x0d && part[1] === 0x0a)) {
    headerEnd = 0;
    bodyStart = part[0] === 0x0a ? 1 : 2;
  } else {
    for (let lf = part.indexOf(0x0a); lf >= 0; lf = part.indexOf(0x0a, lf + 1)) {
      if (part[lf + 1] === 0x0a || (part[lf + 1] === 0x0d && part[lf + 2] === 0x0a)) {
        headerEnd = lf;
        bodyStart = lf + (part[lf + 1] === 0x0a ? 2 : 3);
        break;
      }
    }
  }
  // Only the header block is turned into text: a part may be a large attachment.
  const headerText = part.subarray(0, headerEnd).toString('latin1');
  const headers = new Map<string, string>();
  for (const line of headerText.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body: part.subarray(bodyStart) };
}

/** Builds a multipart body with CRLF line ends. */
export function buildMultipart(boundary: string, parts: readonly { headers: readonly (readonly [string, string])[]; body: Buffer }[]): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${part.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1'), part.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}
