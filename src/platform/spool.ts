/**
 * Message bodies and attachments of any size. A part is received into memory until it passes a
 * threshold, then into a temporary file of the spool folder; either way its SHA-512 (what X-Road
 * signs and hashes by default) is computed while it arrives, so signing, verifying and request
 * hashes never read a large part again. Other digests re-read it in chunks.
 *
 * Files are removed when the body is disposed of; `SpoolFolder.purge` at start removes what a
 * killed process left. Written with Node's fs only: the one job here is bounded buffering.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { XrdError } from './errors.ts';

export type BodyDigest = 'sha256' | 'sha384' | 'sha512';

/** The bytes of one part: in memory, or in a spool file. */
export interface Body {
  readonly size: number;
  /** The bytes when they are held in memory (every body below the threshold). */
  readonly buffer: Buffer | undefined;
  /** The spool file, when the body is not in memory. */
  readonly file: string | undefined;
  /** SHA-512 is known from the start; the others are computed once, re-reading a file in chunks. */
  digest(algorithm: BodyDigest): Buffer;
  /** A fresh stream of the bytes, each call from the start. */
  stream(): Readable;
  /** The bytes in memory, reading the file if need be; for parts the caller has bounded. */
  bytes(): Buffer;
  /** Removes the spool file (idempotent). */
  dispose(): void;
}

/** A body over bytes already in memory. */
export function memoryBody(buffer: Buffer, sha512?: Buffer): Body {
  const digests = new Map<BodyDigest, Buffer>(sha512 ? [['sha512', sha512]] : []);
  return {
    size: buffer.length,
    buffer,
    file: undefined,
    digest: (algorithm) => {
      let d = digests.get(algorithm);
      if (!d) digests.set(algorithm, (d = createHash(algorithm).update(buffer).digest()));
      return d;
    },
    stream: () => Readable.from([buffer], { objectMode: false }),
    bytes: () => buffer,
    dispose: () => undefined,
  };
}

export const EMPTY_BODY: Body = memoryBody(Buffer.alloc(0));

export interface SpoolOptions {
  /** Bodies larger than this go to a file. */
  readonly thresholdBytes: number;
  /** Refuse (MessageTooLarge) past this size; unlimited when undefined. */
  readonly maxBytes?: number;
}

/** The folder spool files are written into; one per process that receives messages. */
export class SpoolFolder {
  /** Keeps every body in memory (tests, and callers that bound what they read themselves). */
  static readonly MEMORY = new SpoolFolder('', { thresholdBytes: Infinity });

  constructor(
    readonly dir: string,
    readonly options: SpoolOptions,
  ) {}

  /** Removes spool files a killed process left, and makes the folder (0700). */
  purge(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.dir)) if (name.endsWith('.spool')) rmSync(join(this.dir, name), { force: true });
  }

  writer(limit: number | undefined = this.options.maxBytes): SpoolWriter {
    return new SpoolWriter(this.dir, this.options.thresholdBytes, limit);
  }

  /** A body of `buffer`, spooled to a file when it is past the threshold (tests, small producers). */
  async fromBuffer(buffer: Buffer): Promise<Body> {
    const w = this.writer(undefined);
    w.write(buffer);
    return w.end();
  }
}

/**
 * Receives one body chunk by chunk. Writes to the file are synchronous: a chunk is at most what
 * one socket read gives (64 KiB), and synchronous writes keep the order of chunks without a queue.
 */
export class SpoolWriter {
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  private fd: number | undefined;
  private file: string | undefined;
  private readonly sha512 = createHash('sha512');
  private done = false;

  constructor(
    private readonly dir: string,
    private readonly thresholdBytes: number,
    private readonly maxBytes: number | undefined,
  ) {}

  /** @throws MessageTooLarge past maxBytes (the spool file is removed), IOError */
  write(chunk: Buffer): void {
    if (this.done) throw new XrdError('InternalError', { reason: 'write after the body was ended' });
    if (chunk.length === 0) return;
    this.size += chunk.length;
    if (this.maxBytes !== undefined && this.size > this.maxBytes) {
      this.abort();
      throw new XrdError('MessageTooLarge', { limit: this.maxBytes });
    }
    this.sha512.update(chunk);
    if (this.chunks) {
      this.chunks.push(chunk);
      if (this.size <= this.thresholdBytes) return;
      this.openFile();
      const pending = this.chunks;
      this.chunks = undefined;
      for (const c of pending) this.writeFile(c);
      return;
    }
    this.writeFile(chunk);
  }

  /** The body; the writer is finished. */
  end(): Body {
    this.done = true;
    const sha512 = this.sha512.digest();
    if (this.chunks) {
      const body = memoryBody(this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size), sha512);
      this.chunks = undefined;
      return body;
    }
    closeSync(this.fd!);
    this.fd = undefined;
    return fileBody(this.file!, this.size, sha512);
  }

  /** Drops what was received (faults, aborted connections). */
  abort(): void {
    this.done = true;
    this.chunks = undefined;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.file) rmSync(this.file, { force: true });
  }

  get received(): number {
    return this.size;
  }

  private openFile(): void {
    this.file = join(this.dir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}.spool`);
    try {
      this.fd = openSync(this.file, 'wx', 0o600);
    } catch (err) {
      throw new XrdError('IOError', { reason: `cannot create spool file ${this.file}: ${(err as Error).message}` }, { cause: err });
    }
  }

  private writeFile(chunk: Buffer): void {
    try {
      let at = 0;
      while (at < chunk.length) at += writeSync(this.fd!, chunk, at, chunk.length - at);
    } catch (err) {
      this.abort();
      throw new XrdError('IOError', { reason: `cannot write spool file: ${(err as Error).message}` }, { cause: err });
    }
  }
}

const READ_CHUNK = 1024 * 1024;

/** A body in a file whose SHA-512 is known; removing the file is the owner's (dispose). */
export function fileBody(file: string, size: number, sha512?: Buffer): Body {
  const digests = new Map<BodyDigest, Buffer>(sha512 ? [['sha512', sha512]] : []);
  const read = (consume: (chunk: Buffer) => void) => {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(size, 1)));
      for (let at = 0; at < size; ) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - at), at);
        if (n === 0) throw new XrdError('IOError', { reason: `${file} is shorter than ${size} bytes` });
        consume(buf.subarray(0, n));
        at += n;
      }
    } finally {
      closeSync(fd);
    }
  };
  return {
    size,
    buffer: undefined,
    file,
    digest: (algorithm) => {
      let d = digests.get(algorithm);
      if (!d) {
        const hash = createHash(algorithm);
        read((chunk) => hash.update(chunk));
        digests.set(algorithm, (d = hash.digest()));
      }
      return d;
    },
    stream: () => (size === 0 ? Readable.from([], { objectMode: false }) : createReadStream(file, { start: 0, end: size - 1, highWaterMark: READ_CHUNK })),
    bytes: () => {
      const out = Buffer.allocUnsafe(size);
      let at = 0;
      read((chunk) => {
        chunk.copy(out, at);
        at += chunk.length;
      });
      return out;
    },
    dispose: () => rmSync(file, { force: true }),
  };
}

/** Bytes to send one after the other: small ones in memory, bodies from wherever they are. */
export type Pieces = readonly (Buffer | Body)[];

export const piecesLength = (pieces: Pieces): number => pieces.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.size), 0);

/** In-memory pieces up to this size are joined with their neighbours before they are sent. */
const JOIN_BELOW = 64 * 1024;

/**
 * One stream of all the pieces, in order, reading each body only when its turn comes. Small pieces
 * held in memory (a message's MIME boundaries, headers, SOAP part, signature) go out joined, as one
 * chunk: sent one by one, each became its own socket write and, between security servers, its own
 * TLS record, with the stream machinery's work per piece on top (issue 16 profile).
 */
export function streamPieces(pieces: Pieces): Readable {
  const chunks: (Buffer | Body)[] = [];
  let joining: Buffer[] = [];
  let joined = 0;
  const join = () => {
    if (joining.length > 0) chunks.push(joining.length === 1 ? joining[0]! : Buffer.concat(joining, joined));
    joining = [];
    joined = 0;
  };
  for (const piece of pieces) {
    const inMemory = Buffer.isBuffer(piece) ? piece : piece.buffer;
    if (inMemory === undefined) {
      join();
      chunks.push(piece);
    } else if (inMemory.length >= JOIN_BELOW) {
      join();
      chunks.push(inMemory);
    } else if (inMemory.length > 0) {
      // Joined runs stay small too: many small attachments are not copied into one message-sized buffer.
      if (joined + inMemory.length > JOIN_BELOW) join();
      joining.push(inMemory);
      joined += inMemory.length;
    }
  }
  join();
  if (chunks.every((c) => Buffer.isBuffer(c))) {
    let next = 0;
    return new Readable({
      read() {
        this.push(next < chunks.length ? chunks[next++] : null);
      },
    });
  }
  return Readable.from(
    (async function* () {
      for (const chunk of chunks) {
        if (Buffer.isBuffer(chunk)) yield chunk;
        else for await (const part of chunk.stream()) yield part as Buffer;
      }
    })(),
    { objectMode: false },
  );
}

/**
 * Writes the pieces to `out` and ends it. A message held wholly in memory and no larger than
 * JOIN_BELOW (a proxy message, a SOAP request) goes out with one `end()`: the HTTP head and body in
 * one socket write, with no Readable and pipe between (about 5–8 µs a message, issue 16); anything
 * else streams as streamPieces reads it, `onError` hearing of a body that cannot be read. Callers
 * set Content-Length: without it Node would frame the one path by length and the other chunked.
 */
export function sendPieces(out: Writable, pieces: Pieces, onError: (err: Error) => void): void {
  const buffers: Buffer[] = [];
  let length = 0;
  for (const piece of pieces) {
    const inMemory = Buffer.isBuffer(piece) ? piece : piece.buffer;
    length += inMemory?.length ?? Infinity;
    if (inMemory === undefined || length > JOIN_BELOW) {
      const body = streamPieces(pieces);
      body.on('error', onError);
      body.pipe(out);
      return;
    }
    buffers.push(inMemory);
  }
  if (length === 0) out.end();
  else out.end(buffers.length === 1 ? buffers[0] : Buffer.concat(buffers, length));
}

/** All the pieces in one buffer: for what is small (tests, faults). */
export const concatPieces = (pieces: Pieces): Buffer => Buffer.concat(pieces.map((p) => (Buffer.isBuffer(p) ? p : p.bytes())));

/** A body read whole into memory, refused (MessageTooLarge) past `max` bytes: for parts that must be held. */
export async function readBounded(body: Buffer | AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  if (Buffer.isBuffer(body)) {
    if (body.length > max) throw new XrdError('MessageTooLarge', { limit: max });
    return body;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) throw new XrdError('MessageTooLarge', { limit: max });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
