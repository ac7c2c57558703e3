/**
 * MIME multipart as X-Road uses it (configuration directories, pr-gconf §2.3–2.4; OCSP responses
 * between security servers): parts with headers (folded lines allowed) and bodies kept as the exact
 * bytes between the delimiters, since the configuration signature covers the directory part's body
 * byte for byte.
 */

export interface MimePart {
  /** Header names in lower case. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

/** The `boundary` parameter of a multipart content type. */
export function boundaryOf(contentType: string): string | undefined {
  return /boundary="?([^";\s]+)"?/i.exec(contentType)?.[1];
}

/** Splits a multipart body; preamble and epilogue are ignored. @throws Error when malformed */
export function parseMultipart(body: Buffer, boundary: string): MimePart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MimePart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new Error('no multipart delimiter');
  for (;;) {
    let start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString('latin1') === '--') return parts; // close delimiter
    start = skipLineEnd(body, start);
    const next = body.indexOf(delimiter, start);
    if (next < 0) throw new Error('multipart body ends without its close delimiter');
    // The line end before the next delimiter belongs to the delimiter, not to the part.
    let end = next;
    if (body[end - 1] === 0x0a) end--;
    if (body[end - 1] === 0x0d) end--;
    parts.push(parsePart(body.subarray(start, Math.max(start, end))));
    pos = next;
  }
}

function skipLineEnd(body: Buffer, pos: number): number {
  if (body[pos] === 0x0d) pos++;
  if (body[pos] === 0x0a) pos++;
  return pos;
}

function parsePart(part: Buffer): MimePart {
  // Headers end at the first empty line; a part may have no body at all (the directory's first part).
  const text = part.toString('latin1');
  const match = /\r?\n\r?\n/.exec(text);
  const headerText = match ? text.slice(0, match.index) : text;
  const bodyStart = match ? match.index + match[0].length : part.length;
  const headers = new Map<string, string>();
  for (const line of headerText.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body: part.subarray(bodyStart) };
}

/** Builds a multipart body with CRLF line ends. */
export function buildMultipart(boundary: string, parts: readonly { headers: readonly [string, string][]; body: Buffer }[]): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${part.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1'), part.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}
