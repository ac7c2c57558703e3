/**
 * MIME multipart as X-Road uses it (configuration directories, pr-gconf §2.3–2.4; OCSP responses
 * between security servers; messages between security servers, pr-messtransp §3.1; SOAP with
 * attachments and MTOM from information systems, pr-mess §2.4): parts with headers (folded lines
 * allowed) and bodies kept as the exact bytes between the delimiters, since the configuration
 * signature covers the directory part's body byte for byte and a message signature covers each
 * message part and attachment.
 *
 * One push parser serves both uses: `MultipartParser` takes a body chunk by chunk and hands each
 * part's bytes to a sink as they arrive (so an attachment of any size can go to a spool file), and
 * `parseMultipart` feeds it a whole buffer. Our own rather than an npm parser: the maintained ones
 * (busboy and its forks) only read multipart/form-data and decode what X-Road must keep as sent.
 * Every part's header block is bounded, and so is the number of parts.
 */

/** Header name and value as sent (name case kept, folded lines joined, value trimmed). */
export type MimeHeaders = readonly (readonly [string, string])[];

export interface MimePart {
  /** Header names in lower case, the first of repeated headers. */
  readonly headers: ReadonlyMap<string, string>;
  /** Every header in order, with its name as sent. */
  readonly headerList: MimeHeaders;
  readonly body: Buffer;
}

export interface MultipartOptions {
  /** Refuse bodies with more parts than this (MultipartLimitError), before reading the rest. */
  readonly maxParts?: number;
  /** Refuse a part whose header block is longer than this. Default 64 KiB. */
  readonly maxHeaderBytes?: number;
}

/** Thrown when a body has more parts, or a part a longer header block, than the options allow. */
export class MultipartLimitError extends Error {
  override readonly name = 'MultipartLimitError';
}

/** Thrown for malformed multipart bodies: no delimiter, no close delimiter, a broken header block. */
export class MultipartError extends Error {
  override readonly name = 'MultipartError';
}

/** The `boundary` parameter of a multipart content type. */
export function boundaryOf(contentType: string): string | undefined {
  return /boundary="?([^";\s]+)"?/i.exec(contentType)?.[1];
}

/** Where a part's body goes as it arrives. */
export interface PartSink {
  write(chunk: Buffer): void;
  end(): void;
}

/** Called when a part's headers have been read; returns where its body goes. */
export type PartHandler = (headers: MimeHeaders) => PartSink;

const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
/** Spaces and tabs allowed after a delimiter before its line end (RFC 2046 transport padding). */
const MAX_PADDING = 256;

type State = 'preamble' | 'headers' | 'body' | 'epilogue';

/**
 * A push parser for one multipart body (RFC 2046 §5.1.1). A delimiter starts a line and is
 * followed by `--` (close) or optional white space and the line end; anything else — e.g. `--abcd`
 * when the boundary is `abc`, as a nested part's own boundary may be — is content. The line end
 * before a delimiter belongs to the delimiter, not to the part; preamble and epilogue are ignored.
 */
export class MultipartParser {
  private readonly dashBoundary: Buffer;
  /** A delimiter inside the data: line end, then `--boundary`. */
  private readonly lineDelimiter: Buffer;
  private readonly maxParts: number;
  private readonly maxHeaderBytes: number;
  private state: State = 'preamble';
  /** Bytes not yet given to anyone: a possible delimiter's beginning, or an unfinished header block. */
  private pending: Buffer = Buffer.alloc(0);
  private sink: PartSink | undefined;
  private parts = 0;
  /** Whether the data waiting to be read starts a line, where a bare `--boundary` is a delimiter. */
  private lineStart = true;

  constructor(
    boundary: string,
    private readonly onPart: PartHandler,
    options: MultipartOptions = {},
  ) {
    this.dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
    this.lineDelimiter = Buffer.from(`\n--${boundary}`, 'latin1');
    this.maxParts = options.maxParts ?? Infinity;
    this.maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  }

  /** @throws MultipartError, MultipartLimitError, or what a sink throws */
  write(chunk: Buffer): void {
    if (this.state === 'epilogue') return;
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = Buffer.alloc(0);
    for (;;) {
      const rest = this.step(data);
      if (rest === undefined) return;
      data = rest;
    }
  }

  /**
   * Ends the body as the reference's MIME parser (mime4j) does: a body without any delimiter has
   * no parts, and a part cut off by the end of the body ends there.
   */
  endLeniently(): void {
    if (this.state === 'body') {
      // A delimiter cut off by the end of the body (`--boundary` and no line end) still ends the part.
      const at = this.pending.indexOf(this.lineDelimiter);
      const cut = at >= 0 && /^[ \t\r\n-]*$/.test(this.pending.subarray(at + this.lineDelimiter.length).toString('latin1'));
      const end = !cut ? this.pending.length : at > 0 && this.pending[at - 1] === 0x0d ? at - 1 : at;
      this.emit(this.pending.subarray(0, end));
      this.sink!.end();
      this.sink = undefined;
    }
    this.pending = Buffer.alloc(0);
    this.state = 'epilogue';
  }

  /** @throws MultipartError when the body ended before its close delimiter */
  end(): void {
    if (this.state === 'preamble') throw new MultipartError('no multipart delimiter');
    if (this.state !== 'epilogue') throw new MultipartError('multipart body ends without its close delimiter');
  }

  /** Consumes what it can of `data`; returns what is left to look at, or undefined to wait for more. */
  private step(data: Buffer): Buffer | undefined {
    switch (this.state) {
      case 'preamble': {
        const atStart = this.delimiterAtLineStart(data);
        if (atStart === 'more') return this.wait(data, true);
        if (atStart) return this.delimiterFound(data, atStart);
        const found = data.indexOf(this.lineDelimiter);
        if (found < 0) return this.wait(data.subarray(Math.max(0, data.length - this.lineDelimiter.length)), false);
        const after = this.afterDelimiter(data, found + this.lineDelimiter.length);
        if (after === 'more') return this.wait(data.subarray(found), false);
        if (after === 'content') return data.subarray(found + 1);
        return this.delimiterFound(data, after);
      }
      case 'headers': {
        const end = headerBlockEnd(data);
        // A part may end within its header block, with no empty line at all: headers, no body.
        const delimiter = data.indexOf(this.lineDelimiter);
        if (delimiter >= 0 && (end === undefined || delimiter < end.headerEnd)) {
          const after = this.afterDelimiter(data, delimiter + this.lineDelimiter.length);
          if (after === 'more') return this.wait(data, false);
          if (after !== 'content') {
            if (++this.parts > this.maxParts) throw new MultipartLimitError(`more than ${this.maxParts} parts`);
            const headerEnd = delimiter > 0 && data[delimiter - 1] === 0x0d ? delimiter - 1 : delimiter;
            // As for any header block: bounded whether it came in one chunk or in many.
            if (headerEnd > this.maxHeaderBytes) throw new MultipartLimitError(`a part's headers are longer than ${this.maxHeaderBytes} bytes`);
            this.onPart(parseHeaders(data.subarray(0, headerEnd))).end();
            return this.delimiterFound(data, after);
          }
        }
        if (end === undefined) {
          if (data.length > this.maxHeaderBytes) throw new MultipartLimitError(`a part's headers are longer than ${this.maxHeaderBytes} bytes`);
          return this.wait(data, false);
        }
        if (end.headerEnd > this.maxHeaderBytes) throw new MultipartLimitError(`a part's headers are longer than ${this.maxHeaderBytes} bytes`);
        if (++this.parts > this.maxParts) throw new MultipartLimitError(`more than ${this.maxParts} parts`);
        this.sink = this.onPart(parseHeaders(data.subarray(0, end.headerEnd)));
        this.state = 'body';
        // The empty line may also end a bodiless part: `--boundary` may follow it directly.
        this.lineStart = true;
        return data.subarray(end.bodyStart);
      }
      case 'body': {
        const atStart = this.delimiterAtLineStart(data);
        if (atStart === 'more') return this.wait(data, true);
        if (atStart) {
          this.sink!.end();
          this.sink = undefined;
          return this.delimiterFound(data, atStart);
        }
        for (let from = 0; ; ) {
          const found = data.indexOf(this.lineDelimiter, from);
          if (found < 0) {
            // Everything but a possible delimiter's beginning (with the CR before its LF) is content.
            const keep = Math.min(data.length, this.lineDelimiter.length);
            this.emit(data.subarray(0, data.length - keep));
            return this.wait(data.subarray(data.length - keep), false);
          }
          const after = this.afterDelimiter(data, found + this.lineDelimiter.length);
          if (after === 'content') {
            from = found + 1;
            continue;
          }
          const bodyEnd = found > 0 && data[found - 1] === 0x0d ? found - 1 : found;
          if (after === 'more') {
            this.emit(data.subarray(0, bodyEnd));
            return this.wait(data.subarray(bodyEnd), false);
          }
          this.emit(data.subarray(0, bodyEnd));
          this.sink!.end();
          this.sink = undefined;
          return this.delimiterFound(data, after);
        }
      }
      case 'epilogue':
        return undefined;
    }
  }

  /**
   * What follows `--boundary` at `pos`: the close delimiter, a delimiter line (where the next part
   * starts), content (the boundary is only the beginning of something longer), or not known yet.
   */
  private afterDelimiter(data: Buffer, pos: number): { close: boolean; next: number } | 'content' | 'more' {
    if (pos + 2 > data.length) return 'more';
    if (data[pos] === 0x2d && data[pos + 1] === 0x2d) return { close: true, next: pos + 2 };
    let p = pos;
    while (p < data.length && (data[p] === 0x20 || data[p] === 0x09) && p - pos <= MAX_PADDING) p++;
    if (p - pos > MAX_PADDING) return 'content';
    if (p >= data.length) return 'more';
    if (data[p] === 0x0a) return { close: false, next: p + 1 };
    if (data[p] === 0x0d) {
      if (p + 1 >= data.length) return 'more';
      if (data[p + 1] === 0x0a) return { close: false, next: p + 2 };
    }
    return 'content';
  }

  /**
   * A delimiter at the very start of `data`, where a line starts (the body's beginning, or right
   * after a header block): its end, 'more' when too little has arrived to tell, or undefined.
   */
  private delimiterAtLineStart(data: Buffer): { close: boolean; next: number } | 'more' | undefined {
    if (!this.lineStart) return undefined;
    const n = Math.min(data.length, this.dashBoundary.length);
    if (!data.subarray(0, n).equals(this.dashBoundary.subarray(0, n))) {
      this.lineStart = false;
      return undefined;
    }
    if (n < this.dashBoundary.length) return 'more';
    const after = this.afterDelimiter(data, this.dashBoundary.length);
    if (after === 'content') {
      this.lineStart = false;
      return undefined;
    }
    return after;
  }

  private delimiterFound(data: Buffer, d: { close: boolean; next: number }): Buffer | undefined {
    if (d.close) {
      this.state = 'epilogue';
      return undefined;
    }
    this.state = 'headers';
    return data.subarray(d.next);
  }

  private emit(bytes: Buffer): void {
    if (bytes.length > 0) this.sink!.write(bytes);
  }

  /** Keeps `rest` for the next chunk; `lineStart` says whether it begins a line. */
  private wait(rest: Buffer, lineStart: boolean): undefined {
    this.lineStart = lineStart;
    // A copy: the caller's chunk may be reused, and holding a slice would keep all of it alive.
    this.pending = Buffer.from(rest);
    return undefined;
  }
}

/**
 * Where a header block ends and the body starts: at the first empty line. A part may have no
 * headers (it then starts with the empty line) or no body (the directory's first part).
 */
function headerBlockEnd(data: Buffer): { headerEnd: number; bodyStart: number } | undefined {
  if (data[0] === 0x0a) return { headerEnd: 0, bodyStart: 1 };
  if (data[0] === 0x0d && data.length >= 2) {
    if (data[1] === 0x0a) return { headerEnd: 0, bodyStart: 2 };
  }
  for (let lf = data.indexOf(0x0a); lf >= 0; lf = data.indexOf(0x0a, lf + 1)) {
    if (data[lf + 1] === 0x0a) return { headerEnd: lf, bodyStart: lf + 2 };
    if (data[lf + 1] === 0x0d && data[lf + 2] === 0x0a) return { headerEnd: lf, bodyStart: lf + 3 };
  }
  return undefined;
}

function parseHeaders(block: Buffer): MimeHeaders {
  const headers: [string, string][] = [];
  for (const line of block.toString('latin1').replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return headers;
}

/** The first value of a header, by case-insensitive name. */
export function mimeHeader(headers: MimeHeaders, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** Splits a multipart body held in memory; preamble and epilogue are ignored. @throws MultipartError, MultipartLimitError */
export function parseMultipart(body: Buffer, boundary: string, options: MultipartOptions = {}): MimePart[] {
  const parts: MimePart[] = [];
  const parser = new MultipartParser(
    boundary,
    (headerList) => {
      const chunks: Buffer[] = [];
      return {
        write: (chunk) => chunks.push(chunk),
        end: () => parts.push(mimePart(headerList, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))),
      };
    },
    options,
  );
  parser.write(body);
  parser.end();
  return parts;
}

function mimePart(headerList: MimeHeaders, body: Buffer): MimePart {
  const headers = new Map<string, string>();
  for (const [name, value] of headerList) if (!headers.has(name.toLowerCase())) headers.set(name.toLowerCase(), value);
  return { headers, headerList, body };
}

/** The header lines of a part as written: `name: value` each with CRLF, then the empty line. */
export function partHead(boundary: string, headers: MimeHeaders, first: boolean): Buffer {
  return Buffer.from(`${first ? '' : '\r\n'}--${boundary}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1');
}

export const closeDelimiter = (boundary: string): Buffer => Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');

/** Builds a multipart body with CRLF line ends. */
export function buildMultipart(boundary: string, parts: readonly { headers: MimeHeaders; body: Buffer }[]): Buffer {
  const chunks: Buffer[] = [];
  parts.forEach((part, i) => chunks.push(partHead(boundary, part.headers, i === 0), part.body));
  chunks.push(parts.length === 0 ? Buffer.from(`--${boundary}--\r\n`, 'latin1') : closeDelimiter(boundary));
  return Buffer.concat(chunks);
}
