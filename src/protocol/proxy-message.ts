/**
 * The message format between security servers (pr-messtransp §3.1, the reference's
 * ProxyMessageEncoder/Decoder): a `multipart/mixed` body whose parts come in a fixed order —
 * the client's OCSP responses, the SOAP message (its attachments nested in one `multipart/mixed`
 * part) or the REST header part (and its body), the batch signature's hash chain result and hash
 * chain, and last the signature, or a SOAP fault in its place when signing failed. A server proxy
 * that fails before it starts its answer sends a bare `text/xml` SOAP fault instead. The HTTP
 * headers beside the body (`x-hash-algorithm`, `x-original-content-type`, `x-proxy-version`,
 * `x-road-request-id`, `x-original-soapaction`, `x-road-message-type`) are part of the format.
 * docs/transport.md describes each part with a sample.
 *
 * Attachments and REST bodies may be of any size: decoding reads the body as a stream and puts
 * them in `Body`s of a spool folder as they arrive; encoding gives the pieces to send in order.
 * The SOAP message, REST header part, OCSP responses, signature and hash chains are bounded and
 * held in memory. Decoding checks the order and kind of every part as its headers arrive, before
 * its bytes are read, and refuses anything else with the reference's fault names
 * (InvalidContentType, InvalidMessage, MimeParsingFailed, MissingSignature, MissingSoap,
 * MissingRest, MessageTooLarge). Like the reference's decoder, it reads the SOAP header or REST
 * header part as part of decoding, so a message that is not one is refused with the reason.
 */
import { randomFillSync } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { SpoolFolder, readBounded, type Body, type Pieces, type SpoolWriter } from '../platform/spool.ts';
import { TEXT_XML_UTF8, readSoapFault, soapFault, type ReceivedSoapFault, type SoapFault } from './faults.ts';
import { MultipartError, MultipartLimitError, MultipartParser, boundaryOf, closeDelimiter, mimeHeader, partHead, type MimeHeaders, type PartSink } from './multipart.ts';
import { parseRestRequestPart, parseRestResponsePart, type RestRequest, type RestResponse } from './rest-message.ts';
import type { SoapHeader } from './soap-message.ts';
import { ParsedSoap } from './soap-parsed.ts';

/** Content types of the parts (MimeTypes in the reference). */
export const PART_TYPES = {
  ocspResponse: 'application/ocsp-response',
  textXml: 'text/xml',
  xopXml: 'application/xop+xml',
  attachments: 'multipart/mixed',
  restRequest: 'application/x-road-rest-request',
  restResponse: 'application/x-road-rest-response',
  restBody: 'application/x-road-rest-body',
  hashChainResult: 'application/hash-chain-result',
  hashChain: 'application/hash-chain',
  signature: 'signature/bdoc-1.0/ts',
} as const;

/** HTTP headers of the exchange between the proxies (lower case, as the reference names them). */
export const TRANSPORT_HEADERS = {
  hashAlgorithm: 'x-hash-algorithm',
  originalContentType: 'x-original-content-type',
  originalSoapAction: 'x-original-soapaction',
  proxyVersion: 'x-proxy-version',
  requestId: 'x-road-request-id',
  messageType: 'x-road-message-type',
} as const;

/** The reference hashes message parts with SHA-512 and names it so in `x-hash-algorithm`. */
export const DEFAULT_HASH_ALGORITHM = 'SHA-512';
const HASH_ALGORITHMS = ['SHA-256', 'SHA-384', 'SHA-512'];

export interface MimeAttachment {
  /** Content-Type of the attachment part as the information system sent it. */
  readonly contentType: string;
  /** The part's other MIME headers (Content-Id, Content-Transfer-Encoding, …), in order, names as sent. */
  readonly headers: MimeHeaders;
  /** Exactly the bytes between the part's headers and the next delimiter. */
  readonly body: Body;
}

export interface SoapContent {
  readonly kind: 'soap';
  /** `/message.xml`: the SOAP envelope's bytes as received (no re-serialisation). */
  readonly soap: Buffer;
  /** `text/xml; charset=UTF-8`, or `application/xop+xml; …` for an MTOM package. */
  readonly contentType: string;
  /** Other MIME headers of the SOAP part (e.g. Content-Id of a SOAP package's root part). */
  readonly partHeaders?: MimeHeaders;
  /** `/attachment1…`; sent nested in one multipart/mixed part. */
  readonly attachments?: readonly MimeAttachment[];
}

export interface RestContent {
  readonly kind: 'rest';
  readonly role: 'request' | 'response';
  /** `/message.xml`: restRequestHeaderPart / restResponseHeaderPart bytes. */
  readonly headerPart: Buffer;
  /** `/attachment1`; absent when the message has no body part (not the same as an empty one). */
  readonly body?: Body;
}

export type ProxyContent = SoapContent | RestContent;

export interface ProxySignature {
  /** The `asic:XAdESSignatures` document. */
  readonly signatureXml: Buffer | string;
  /** Both present for a batch signature (attachments, batches): `/sig-hashchainresult.xml`, `/sig-hashchain.xml`. */
  readonly hashChainResult?: Buffer | string;
  readonly hashChain?: Buffer | string;
}

export interface ProxyMessage {
  /** DER OCSP responses for the sender's authentication certificate chain (client → server only). */
  readonly ocspResponses?: readonly Buffer[];
  /** Absent only in a fault that replaces the whole answer. */
  readonly content?: ProxyContent;
  /** Required unless `fault` is given. */
  readonly signature?: ProxySignature;
  /**
   * A fault instead of the signature (with content: signing failed after the message was written),
   * or instead of the whole answer (without content). `xml`, when given, is sent unchanged.
   */
  readonly fault?: SoapFault & { readonly xml?: Buffer };
  /** `x-hash-algorithm`; SHA-512 unless given. */
  readonly hashAlgorithm?: string;
  /** `x-original-content-type`: the information system's Content-Type (requests), the service's (responses). */
  readonly originalContentType?: string;
  /** `x-original-soapaction`: the information system's SOAPAction (SOAP requests). */
  readonly originalSoapAction?: string;
  /** `x-proxy-version`: the sending security server's version (requests). */
  readonly proxyVersion?: string;
  /** `x-road-request-id`: the client proxy's id of this exchange (requests). */
  readonly requestId?: string;
}

export interface DecodedSignature extends ProxySignature {
  readonly signatureXml: Buffer;
  readonly hashChainResult?: Buffer;
  readonly hashChain?: Buffer;
}

export interface DecodedProxyMessage extends ProxyMessage {
  /** The peer answered with a SOAP fault (whole body, in place of the message, or in place of the signature). */
  readonly isFault: boolean;
  /** The message read once, as the reference's decoder reads it while decoding: the X-Road SOAP header… */
  readonly soapHeader?: SoapHeader;
  /** …or the REST request or response header part. */
  readonly restRequest?: RestRequest;
  readonly restResponse?: RestResponse;
  readonly ocspResponses: readonly Buffer[];
  readonly signature?: DecodedSignature;
  readonly fault?: ReceivedSoapFault;
  /** `x-road-message-type` as received (`REST` for REST requests). */
  readonly messageType?: string;
}

export interface EncodedProxyMessage {
  readonly contentType: string;
  /** What to send, in order (streamPieces); `length` bytes in all. */
  readonly pieces: Pieces;
  readonly length: number;
  /** The x-* HTTP headers to send with the body (lower-case names); Content-Type is separate. */
  readonly headers: Record<string, string>;
}

export interface DecodeOptions {
  /**
   * 'request' (server proxy): a bare text/xml fault is refused, the message must be what
   * `x-road-message-type` announces (REST, else SOAP) and must be signed. 'response' (client proxy):
   * faults in every form are accepted and returned with `isFault`.
   */
  readonly direction?: 'request' | 'response';
  /** What the caller expects (the client proxy knows what it sent). */
  readonly kind?: 'soap' | 'rest';
  /** Where attachments and REST bodies go; in memory when not given. */
  readonly spool?: SpoolFolder;
  /** Most bytes of the whole body (MessageTooLarge); unlimited when not given. */
  readonly maxBytes?: number;
  /** Most bytes of the SOAP message, REST header part, OCSP responses, signature or hash chain. Default 64 MiB. */
  readonly maxPartBytes?: number;
  /** Most top-level parts (OCSP responses included). Default 64. */
  readonly maxParts?: number;
  /** Most SOAP attachments. Default 1000. */
  readonly maxAttachments?: number;
}

export type TransportHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

const DEFAULT_MAX_PART_BYTES = 64 * 1024 * 1024;

/**
 * The body, its Content-Type and the transport headers in the reference's layout. `boundary` and
 * `attachmentBoundary` fix the boundaries (tests); by default they are random.
 */
export function encodeProxyMessage(msg: ProxyMessage, options: { boundary?: string; attachmentBoundary?: string } = {}): EncodedProxyMessage {
  const headers = transportHeaders(msg);
  if (!msg.content) {
    if (!msg.fault) throw new XrdError('InternalError', { reason: 'a proxy message needs content or a fault' });
    if (msg.signature || msg.ocspResponses?.length) throw new XrdError('InternalError', { reason: 'a fault answer carries nothing else' });
    // The server proxy's answer when it fails before its response is under way (HandlerBase):
    // the fault alone, no multipart, no x-hash-algorithm.
    const body = faultBytes(msg.fault);
    return { contentType: TEXT_XML_UTF8, pieces: [body], length: body.length, headers: {} };
  }
  if (!msg.signature === !msg.fault) throw new XrdError('InternalError', { reason: 'a proxy message carries either a signature or a fault' });

  // Boundaries as the reference draws them: "xtop" and "xatt" with the same 30 random letters.
  const unique = randomLetters(30);
  const top = options.boundary ?? `xtop${unique}`;
  const pieces: (Buffer | Body)[] = [];
  const part = (type: string, body: Buffer | Body | (Buffer | Body)[], extra: MimeHeaders = []) => {
    pieces.push(partHead(top, [['content-type', type], ...extra], pieces.length === 0));
    if (Array.isArray(body)) pieces.push(...body);
    else pieces.push(body);
  };

  for (const ocsp of msg.ocspResponses ?? []) part(PART_TYPES.ocspResponse, ocsp);
  const content = msg.content;
  if (content.kind === 'soap') {
    part(content.contentType, content.soap, content.partHeaders ?? []);
    if (content.attachments?.length) {
      const att = options.attachmentBoundary ?? `xatt${unique}`;
      // The reference's encoder leaves an empty line before the nested part's first delimiter.
      part(`${PART_TYPES.attachments}; charset=UTF-8; boundary=${att}`, multipartPieces(att, content.attachments, true));
    }
  } else {
    part(content.role === 'request' ? PART_TYPES.restRequest : PART_TYPES.restResponse, content.headerPart);
    if (content.body !== undefined) part(PART_TYPES.restBody, content.body);
  }
  if (msg.signature) {
    const { signatureXml, hashChainResult, hashChain } = msg.signature;
    if ((hashChainResult === undefined) !== (hashChain === undefined)) {
      throw new XrdError('InternalError', { reason: 'a batch signature needs both the hash chain result and the hash chain' });
    }
    if (hashChainResult !== undefined && hashChain !== undefined) {
      part(PART_TYPES.hashChainResult, bytes(hashChainResult));
      part(PART_TYPES.hashChain, bytes(hashChain));
    }
    part(PART_TYPES.signature, bytes(signatureXml));
  } else {
    part(TEXT_XML_UTF8, faultBytes(msg.fault!));
  }
  pieces.push(closeDelimiter(top));
  return {
    contentType: `multipart/mixed; charset=UTF-8; boundary=${top}`,
    pieces,
    length: pieces.reduce((n: number, p) => n + (Buffer.isBuffer(p) ? p.length : p.size), 0),
    headers: { [TRANSPORT_HEADERS.hashAlgorithm]: msg.hashAlgorithm ?? DEFAULT_HASH_ALGORITHM, ...headers },
  };
}

/**
 * The pieces of a multipart body of MIME parts, each with its Content-Type first;
 * `leadingEmptyLine` as the reference's encoder writes a nested multipart.
 */
export function multipartPieces(boundary: string, parts: readonly { contentType: string; headers: MimeHeaders; body: Buffer | Body }[], leadingEmptyLine = false): (Buffer | Body)[] {
  const pieces: (Buffer | Body)[] = leadingEmptyLine ? [Buffer.from('\r\n')] : [];
  parts.forEach((p, i) => pieces.push(partHead(boundary, [['content-type', p.contentType], ...p.headers], i === 0), p.body));
  pieces.push(parts.length === 0 ? Buffer.from(`--${boundary}--\r\n`, 'latin1') : closeDelimiter(boundary));
  return pieces;
}

function transportHeaders(msg: ProxyMessage): Record<string, string> {
  const h: Record<string, string> = {};
  if (msg.originalContentType !== undefined) h[TRANSPORT_HEADERS.originalContentType] = msg.originalContentType;
  if (msg.originalSoapAction !== undefined) h[TRANSPORT_HEADERS.originalSoapAction] = msg.originalSoapAction;
  if (msg.proxyVersion !== undefined) h[TRANSPORT_HEADERS.proxyVersion] = msg.proxyVersion;
  if (msg.requestId !== undefined) h[TRANSPORT_HEADERS.requestId] = msg.requestId;
  // Only REST requests say what they are; the server proxy picks its REST processor by this header.
  if (msg.content?.kind === 'rest' && msg.content.role === 'request') h[TRANSPORT_HEADERS.messageType] = 'REST';
  return h;
}

const faultBytes = (f: SoapFault & { readonly xml?: Buffer }): Buffer => f.xml ?? soapFault(f.faultCode, f.faultString, f.detail, f.faultActor);
const bytes = (x: Buffer | string): Buffer => (typeof x === 'string' ? Buffer.from(x, 'utf8') : x);

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export function randomLetters(n: number): string {
  // 256 = 4·52 + 48: bytes of 208 and above are dropped so every letter is equally likely.
  let out = '';
  while (out.length < n) {
    // From a pool filled a few kilobytes at a time: a call into OpenSSL for every message's
    // boundary cost 3 % of the server proxy's main thread (issue 16 profile).
    if (randomAt === randomPool.length) {
      randomFillSync(randomPool);
      randomAt = 0;
    }
    const b = randomPool[randomAt++]!;
    if (b < 208) out += LETTERS[b % 52];
  }
  return out;
}
const randomPool = Buffer.alloc(4096);
let randomAt = randomPool.length;

/**
 * Reads a message from another security server as it arrives.
 * @throws XrdError InvalidContentType, InvalidMessage, MimeParsingFailed, MissingSignature,
 *   MissingSoap, MissingRest, MessageTooLarge, IOError (spool; an OCSP part that is not DER), and what reading the SOAP header
 *   or REST header part throws (InvalidSoap, MissingHeaderField, …); bodies read so far are disposed of
 */
export async function decodeProxyMessage(contentType: string, body: Buffer | AsyncIterable<Buffer>, headers: TransportHeaders, options: DecodeOptions = {}): Promise<DecodedProxyMessage> {
  const direction = options.direction;
  const transport = readTransportHeaders(headers);
  const base = baseType(contentType);

  if (base === PART_TYPES.textXml) {
    // The server proxy failed before its answer was under way.
    if (direction === 'request') throw new XrdError('InvalidContentType', { contentType: `${contentType} (a request must be multipart/mixed)` });
    const whole = await readBounded(body, options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES);
    const parsed = new ParsedSoap(whole);
    const fault = parsed.fault();
    if (fault) return { ...transport, isFault: true, ocspResponses: [], fault };
    // As the reference's decoder: what is not a SOAP message says why, a regular one is out of place.
    parsed.header();
    throw new XrdError('InvalidMessage', { reason: 'expected a SOAP fault, got a regular SOAP message' });
  }
  if (base !== 'multipart/mixed') throw new XrdError('InvalidContentType', { contentType: contentType || '(none)' });
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new XrdError('InvalidContentType', { contentType: `${contentType} (multipart without a boundary)` });
  const hashAlgorithm = transport.hashAlgorithm;
  // A server proxy needs to be told (the reference refuses a request without it); an answer without
  // it is read as SHA-512, as the reference's client proxy reads it.
  if (hashAlgorithm === undefined && direction === 'request') throw new XrdError('InvalidMessage', { reason: `no ${TRANSPORT_HEADERS.hashAlgorithm} header` });
  if (hashAlgorithm !== undefined && !HASH_ALGORITHMS.includes(hashAlgorithm.toUpperCase())) {
    throw new XrdError('InvalidMessage', { reason: `unsupported ${TRANSPORT_HEADERS.hashAlgorithm} ${hashAlgorithm}` });
  }

  const expected = options.kind ?? (direction === 'request' ? (transport.messageType?.toUpperCase() === 'REST' ? 'rest' : 'soap') : undefined);
  const reader = new PartsReader(options, expected);
  const parser = new MultipartParser(boundary, (h) => reader.part(h), { maxParts: options.maxParts ?? 64 });
  try {
    await feed(body, options.maxBytes, (chunk) => parser.write(chunk), 'parts', options.maxParts ?? 64);
    // Lenient at the end like the reference's MIME parser: no delimiter means no parts (MissingSoap),
    // a body cut short ends its last part there.
    parser.endLeniently();
    return { ...transport, ...reader.finish() };
  } catch (err) {
    reader.dispose();
    throw err;
  }
}

/** Gives `body` to `write` chunk by chunk, counting against `maxBytes`; MIME errors get their codes. */
async function feed(body: Buffer | AsyncIterable<Buffer>, maxBytes: number | undefined, write: (chunk: Buffer) => void, what: string, limit: number): Promise<void> {
  let size = 0;
  const take = (chunk: Buffer) => {
    size += chunk.length;
    if (maxBytes !== undefined && size > maxBytes) throw new XrdError('MessageTooLarge', { limit: maxBytes });
    mimeStep(() => write(chunk), what, limit);
  };
  if (Buffer.isBuffer(body)) take(body);
  else for await (const chunk of body) take(chunk);
}

/** Runs a parser step, turning its own errors into the reference's codes. */
export function mimeStep(step: () => void, what = 'parts', limit = 0): void {
  try {
    step();
  } catch (err) {
    if (err instanceof MultipartLimitError) throw new XrdError('InvalidMessage', { reason: /parts/.test(err.message) ? `more than ${limit} ${what}` : err.message }, { cause: err });
    if (err instanceof MultipartError) throw new XrdError('MimeParsingFailed', { reason: err.message }, { cause: err });
    throw err;
  }
}

const KNOWN_TYPES: ReadonlySet<string> = new Set(Object.values(PART_TYPES));

type Phase = 'ocsp' | 'content' | 'hashChain' | 'signature' | 'done';

/**
 * Decides what each top-level part is from its headers and the parts before it, and where its bytes
 * go: small parts into memory (bounded), attachments and REST bodies into the spool.
 */
class PartsReader {
  private phase: Phase = 'ocsp';
  private readonly ocspResponses: Buffer[] = [];
  private content: ProxyContent | undefined;
  private soapHeader: SoapHeader | undefined;
  private restRequest: RestRequest | undefined;
  private restResponse: RestResponse | undefined;
  /**
   * A SOAP fault that stood in for the message. What follows it (attachments, hash chain, signature)
   * is read as after a message and left aside, as the reference's decoder reads it.
   */
  private messageFault: ReceivedSoapFault | undefined;
  private hashChainResult: Buffer | undefined;
  private hashChain: Buffer | undefined;
  private signature: DecodedSignature | undefined;
  private fault: ReceivedSoapFault | undefined;
  private readonly bodies: Body[] = [];
  private readonly writers: SpoolWriter[] = [];
  private readonly spool: SpoolFolder;
  private readonly maxPartBytes: number;

  constructor(
    private readonly options: DecodeOptions,
    private readonly expected: 'soap' | 'rest' | undefined,
  ) {
    this.spool = options.spool ?? SpoolFolder.MEMORY;
    this.maxPartBytes = options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES;
  }

  private get which(): string {
    return this.options.direction === 'request' ? 'Request' : this.options.direction === 'response' ? 'Response' : 'Message';
  }

  private missing(kind: 'soap' | 'rest'): XrdError {
    return new XrdError(kind === 'soap' ? 'MissingSoap' : 'MissingRest', { message: this.which });
  }

  part(headers: MimeHeaders): PartSink {
    const contentType = mimeHeader(headers, 'content-type');
    const type = baseType(contentType ?? '');
    if (this.phase === 'done') throw new XrdError('InvalidMessage', { reason: `extra content (${type}) after the ${this.signature ? 'signature' : 'fault'}` });

    if (this.phase === 'ocsp') {
      if (type === PART_TYPES.ocspResponse) {
        const n = this.ocspResponses.length + 1;
        return this.small((der) => {
          // The reference reads it with BouncyCastle's OCSPResp, whose IOException becomes io_error.
          if (!isDerSequence(der)) throw new XrdError('IOError', { reason: `OCSP response part ${n} is not a DER OCSP response` });
          this.ocspResponses.push(der);
        });
      }
      return this.messagePart(type, contentType, headers);
    }

    if (this.phase === 'content' && this.content) {
      // What belongs to the message: nested attachments (SOAP) or the body (REST), at most once.
      if (this.content.kind === 'soap' && type === PART_TYPES.attachments && this.content.attachments === undefined) {
        this.phase = 'hashChain';
        return this.attachments(contentType!, this.content);
      }
      if (this.content.kind === 'rest' && type === PART_TYPES.restBody && this.content.body === undefined) {
        this.phase = 'hashChain';
        const writer = this.writer();
        const rest = this.content;
        return { write: (c) => writer.write(c), end: () => (this.content = { ...rest, body: this.keep(writer.end()) }) };
      }
    }
    if (this.phase === 'content' || this.phase === 'hashChain') {
      if (type === PART_TYPES.hashChainResult) {
        this.phase = 'signature';
        return this.small((b) => (this.hashChainResult = b));
      }
      if (type === PART_TYPES.hashChain) throw new XrdError('InvalidMessage', { reason: 'hash chain without the hash chain result' });
    } else if (this.phase === 'signature' && this.hashChainResult && !this.hashChain) {
      if (type !== PART_TYPES.hashChain) throw new XrdError('InvalidMessage', { reason: 'hash chain result without the hash chain' });
      return this.small((b) => (this.hashChain = b));
    }
    return this.signaturePart(type, contentType);
  }

  /** The message: SOAP, REST, or (answers only) a SOAP fault standing in for it. */
  private messagePart(type: string, contentType: string | undefined, headers: MimeHeaders): PartSink {
    this.phase = 'content';
    if (type === PART_TYPES.textXml || type === PART_TYPES.xopXml) {
      return this.small((soap) => {
        // Parsed once: whether it is a fault, then its header.
        const parsed = new ParsedSoap(soap);
        const fault = parsed.fault();
        if (fault) {
          // A fault from the service, passed on unsigned, or an error after the answer was begun.
          if (this.options.direction === 'request') throw this.missing(this.expected ?? 'soap');
          this.messageFault = fault;
          return;
        }
        if (this.expected === 'rest') throw this.missing('rest');
        this.soapHeader = parsed.header();
        this.content = { kind: 'soap', soap, contentType: contentType!, partHeaders: headers.filter(([n]) => n.toLowerCase() !== 'content-type') };
      });
    }
    if (type === PART_TYPES.restRequest || type === PART_TYPES.restResponse) {
      const role = type === PART_TYPES.restRequest ? 'request' : 'response';
      if (this.options.direction !== undefined && role !== this.options.direction) throw this.missing('rest');
      if (this.expected === 'soap') throw this.missing('soap');
      return this.small((headerPart) => {
        if (role === 'request') this.restRequest = parseRestRequestPart(headerPart);
        else this.restResponse = parseRestResponsePart(headerPart);
        this.content = { kind: 'rest', role, headerPart };
      });
    }
    if (KNOWN_TYPES.has(type)) throw new XrdError('InvalidMessage', { reason: `${type} part where the message belongs` });
    throw new XrdError('InvalidContentType', { contentType: `${contentType ?? '(none)'} (expected the SOAP or REST message)` });
  }

  /** Last, the signature — or a fault in its place when the sender could not sign. */
  private signaturePart(type: string, contentType: string | undefined): PartSink {
    this.phase = 'done';
    if (type === PART_TYPES.signature) return this.small((b) => (this.signature = { signatureXml: b }));
    if (type === PART_TYPES.textXml) {
      return this.small((b) => {
        const fault = readSoapFault(b);
        if (!fault) throw new XrdError('InvalidContentType', { contentType: `${contentType} (a SOAP message where the signature belongs)` });
        // The reference server proxy treats a request whose sender failed to sign as unsigned.
        if (this.options.direction === 'request') throw new XrdError('MissingSignature', { fault: fault.faultCode });
        this.fault = fault;
      });
    }
    if (KNOWN_TYPES.has(type)) throw new XrdError('InvalidMessage', { reason: `${type} part where the signature belongs` });
    throw new XrdError('InvalidContentType', { contentType: `${contentType ?? '(none)'} (expected the signature)` });
  }

  /** The nested multipart of SOAP attachments, each one into the spool as it arrives. */
  private attachments(contentType: string, soap: SoapContent): PartSink {
    const boundary = boundaryOf(contentType);
    if (!boundary) throw new XrdError('InvalidContentType', { contentType: `${contentType} (attachments without a boundary)` });
    const max = this.options.maxAttachments ?? 1000;
    const attachments: MimeAttachment[] = [];
    const nested = new MultipartParser(
      boundary,
      (headers) => {
        const type = mimeHeader(headers, 'content-type');
        if (!type) throw new XrdError('InvalidContentType', { contentType: `(none) (attachment ${attachments.length + 1} has no Content-Type)` });
        const writer = this.writer();
        return {
          write: (c) => writer.write(c),
          end: () => attachments.push({ contentType: type, headers: headers.filter(([n]) => n.toLowerCase() !== 'content-type'), body: this.keep(writer.end()) }),
        };
      },
      { maxParts: max },
    );
    return {
      write: (c) => mimeStep(() => nested.write(c), 'attachments', max),
      end: () => {
        nested.endLeniently();
        this.content = { ...soap, attachments };
      },
    };
  }

  private writer(): SpoolWriter {
    const w = this.spool.writer(undefined);
    this.writers.push(w);
    return w;
  }

  private keep(body: Body): Body {
    this.bodies.push(body);
    return body;
  }

  /** A part read into memory, bounded, then handed to `done`. */
  private small(done: (bytes: Buffer) => void): PartSink {
    const chunks: Buffer[] = [];
    let size = 0;
    return {
      write: (c) => {
        size += c.length;
        if (size > this.maxPartBytes) throw new XrdError('MessageTooLarge', { limit: this.maxPartBytes });
        chunks.push(c);
      },
      end: () => done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)),
    };
  }

  finish(): Omit<DecodedProxyMessage, keyof TransportFields> {
    if (this.messageFault) return { isFault: true, ocspResponses: this.ocspResponses, fault: this.messageFault };
    if (!this.content) throw this.missing(this.expected ?? 'soap');
    if (this.hashChainResult && !this.hashChain) throw new XrdError('InvalidMessage', { reason: 'hash chain result without the hash chain' });
    if (!this.signature && !this.fault) throw new XrdError('MissingSignature');
    const signature = this.signature && { ...this.signature, ...(this.hashChainResult && this.hashChain ? { hashChainResult: this.hashChainResult, hashChain: this.hashChain } : {}) };
    return {
      isFault: this.fault !== undefined,
      ocspResponses: this.ocspResponses,
      content: this.content,
      ...(signature ? { signature } : {}),
      ...(this.fault ? { fault: this.fault } : {}),
      ...(this.soapHeader ? { soapHeader: this.soapHeader } : {}),
      ...(this.restRequest ? { restRequest: this.restRequest } : {}),
      ...(this.restResponse ? { restResponse: this.restResponse } : {}),
    };
  }

  dispose(): void {
    for (const w of this.writers) w.abort();
    for (const b of this.bodies) b.dispose();
  }
}

interface TransportFields {
  hashAlgorithm?: string;
  originalContentType?: string;
  originalSoapAction?: string;
  proxyVersion?: string;
  requestId?: string;
  messageType?: string;
}

function readTransportHeaders(headers: TransportHeaders): TransportFields {
  const lower = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) lower.set(name.toLowerCase(), typeof value === 'string' ? value : value.join(', '));
  }
  const out: TransportFields = {};
  for (const [field, name] of Object.entries(TRANSPORT_HEADERS) as [keyof TransportFields, string][]) {
    const value = lower.get(name);
    if (value !== undefined) out[field] = value;
  }
  return out;
}

/** The media type without parameters, in lower case (`text/xml; charset=UTF-8` → `text/xml`). */
export function baseType(contentType: string): string {
  return contentType.split(';', 1)[0]!.trim().toLowerCase();
}

/** One DER SEQUENCE filling the buffer exactly: all an OCSP response must be before trust/ reads it. */
function isDerSequence(der: Buffer): boolean {
  if (der.length < 2 || der[0] !== 0x30) return false;
  const first = der[1]!;
  if (first < 0x80) return der.length === 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || der.length < 2 + n) return false;
  let length = 0;
  for (let k = 0; k < n; k++) length = length * 256 + der[2 + k]!;
  return der.length === 2 + n + length;
}

/** What the signature covers, in the form verifySignature (src/signature) takes. */
export function signedPartsOf(content: ProxyContent, signature?: ProxySignature): {
  message: Buffer;
  attachments: Body[];
  hashChainResult?: Buffer;
  hashChain?: Buffer;
} {
  const parts =
    content.kind === 'soap'
      ? { message: content.soap, attachments: (content.attachments ?? []).map((a) => a.body) }
      : { message: content.headerPart, attachments: content.body !== undefined ? [content.body] : [] };
  if (signature?.hashChainResult !== undefined && signature.hashChain !== undefined) {
    return { ...parts, hashChainResult: bytes(signature.hashChainResult), hashChain: bytes(signature.hashChain) };
  }
  return parts;
}

/** Every body a message holds: for disposing of them once the exchange is over. */
export function bodiesOf(content: ProxyContent | undefined): Body[] {
  if (!content) return [];
  return content.kind === 'soap' ? (content.attachments ?? []).map((a) => a.body) : content.body ? [content.body] : [];
}
