/**
 * The message format between security servers (pr-messtransp §3.1, the reference's
 * ProxyMessageEncoder/Decoder): a `multipart/mixed` body whose parts come in a fixed order —
 * the client's OCSP responses, the SOAP message (its attachments nested in one `multipart/mixed`
 * part) or the REST header part (and its body), the batch signature's hash chain result and hash
 * chain, and last the signature, or a SOAP fault in its place when signing failed. A server proxy
 * that fails before it starts its answer sends a bare `text/xml` SOAP fault instead. docs/transport.md
 * describes each part with a sample.
 *
 * Messages are bounded by the proxies, so both directions work on whole buffers. Decoding checks the
 * order and kind of every part and refuses anything else with the reference's fault names
 * (InvalidContentType, InvalidMessage, MimeParsingFailed, MissingSignature, MissingSoap, MissingRest).
 */
import { randomBytes } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { TEXT_XML_UTF8, readSoapFault, soapFault, type ReceivedSoapFault, type SoapFault } from './faults.ts';
import { MultipartLimitError, boundaryOf, buildMultipart, parseMultipart, type MimePart } from './multipart.ts';

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
  /** The part's other MIME headers (Content-Id, Content-Transfer-Encoding, …), kept in order. */
  readonly headers: readonly (readonly [string, string])[];
  /** Exactly the bytes between the part's headers and the next delimiter. */
  readonly body: Buffer;
}

export interface SoapContent {
  readonly kind: 'soap';
  /** `/message.xml`: the SOAP envelope's bytes as received (no re-serialisation). */
  readonly soap: Buffer;
  /** `text/xml; charset=UTF-8`, or `application/xop+xml; …` for an MTOM package. */
  readonly contentType: string;
  /** Other MIME headers of the SOAP part (e.g. Content-Id of a SOAP package's root part). */
  readonly partHeaders?: readonly (readonly [string, string])[];
  /** `/attachment1…`; sent nested in one multipart/mixed part. */
  readonly attachments?: readonly MimeAttachment[];
}

export interface RestContent {
  readonly kind: 'rest';
  readonly role: 'request' | 'response';
  /** `/message.xml`: restRequestHeaderPart / restResponseHeaderPart bytes. */
  readonly headerPart: Buffer;
  /** `/attachment1`; absent when the message has no body part (not the same as an empty one). */
  readonly body?: Buffer;
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
  /** `x-original-content-type`: the information system's Content-Type (SOAP). */
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
  readonly ocspResponses: readonly Buffer[];
  readonly signature?: DecodedSignature;
  readonly fault?: ReceivedSoapFault;
  /** `x-road-message-type` as received (`REST` for REST requests). */
  readonly messageType?: string;
}

export interface EncodedProxyMessage {
  readonly contentType: string;
  readonly body: Buffer;
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
  /** Most top-level parts (OCSP responses included). Default 64. */
  readonly maxParts?: number;
  /** Most SOAP attachments. Default 1000. */
  readonly maxAttachments?: number;
}

export type TransportHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Builds the body, its Content-Type and the transport headers in the reference's layout. */
/** `boundary` and `attachmentBoundary` fix the boundaries (tests); by default they are random. */
export function encodeProxyMessage(msg: ProxyMessage, options: { boundary?: string; attachmentBoundary?: string } = {}): EncodedProxyMessage {
  const headers = transportHeaders(msg);
  if (!msg.content) {
    if (!msg.fault) throw new XrdError('InternalError', { reason: 'a proxy message needs content or a fault' });
    if (msg.signature || msg.ocspResponses?.length) throw new XrdError('InternalError', { reason: 'a fault answer carries nothing else' });
    // The server proxy's answer when it fails before its response is under way (HandlerBase):
    // the fault alone, no multipart, no x-hash-algorithm.
    return { contentType: TEXT_XML_UTF8, body: faultBytes(msg.fault), headers: {} };
  }
  if (!msg.signature === !msg.fault) throw new XrdError('InternalError', { reason: 'a proxy message carries either a signature or a fault' });

  // Boundaries as the reference draws them: "xtop" and "xatt" with the same 30 random letters.
  const unique = randomLetters(30);
  const top = options.boundary ?? `xtop${unique}`;
  const parts: { headers: (readonly [string, string])[]; body: Buffer }[] = [];
  const part = (type: string, body: Buffer, extra: readonly (readonly [string, string])[] = []) =>
    parts.push({ headers: [['content-type', type], ...extra], body });

  for (const ocsp of msg.ocspResponses ?? []) part(PART_TYPES.ocspResponse, ocsp);
  const content = msg.content;
  if (content.kind === 'soap') {
    part(content.contentType, content.soap, content.partHeaders ?? []);
    if (content.attachments?.length) {
      const att = options.attachmentBoundary ?? `xatt${unique}`;
      const nested = buildMultipart(att, content.attachments.map((a) => ({ headers: [['content-type', a.contentType], ...a.headers], body: a.body })));
      // The reference's encoder leaves an empty line before the nested part's first delimiter.
      part(`${PART_TYPES.attachments}; charset=UTF-8; boundary=${att}`, Buffer.concat([Buffer.from('\r\n'), nested]));
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
  return {
    contentType: `multipart/mixed; charset=UTF-8; boundary=${top}`,
    body: buildMultipart(top, parts),
    headers: { [TRANSPORT_HEADERS.hashAlgorithm]: msg.hashAlgorithm ?? DEFAULT_HASH_ALGORITHM, ...headers },
  };
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
function randomLetters(n: number): string {
  // 256 = 4·52 + 48: bytes of 208 and above are dropped so every letter is equally likely.
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n)) if (b < 208 && out.length < n) out += LETTERS[b % 52];
  }
  return out;
}

/** @throws XrdError InvalidContentType, InvalidMessage, MimeParsingFailed, MissingSignature, MissingSoap, MissingRest, InvalidSoap */
export function decodeProxyMessage(contentType: string, body: Buffer, headers: TransportHeaders, options: DecodeOptions = {}): DecodedProxyMessage {
  const direction = options.direction;
  const transport = readTransportHeaders(headers);
  const base = baseType(contentType);

  if (base === PART_TYPES.textXml) {
    // The server proxy failed before its answer was under way.
    if (direction === 'request') throw new XrdError('InvalidContentType', { contentType: `${contentType} (a request must be multipart/mixed)` });
    const fault = readSoapFault(body);
    if (!fault) throw new XrdError('InvalidMessage', { reason: 'expected a SOAP fault, got a regular SOAP message' });
    return { ...transport, isFault: true, ocspResponses: [], fault };
  }
  if (base !== 'multipart/mixed') throw new XrdError('InvalidContentType', { contentType: contentType || '(none)' });
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new XrdError('InvalidContentType', { contentType: `${contentType} (multipart without a boundary)` });
  const hashAlgorithm = transport.hashAlgorithm;
  if (hashAlgorithm === undefined) throw new XrdError('InvalidMessage', { reason: `no ${TRANSPORT_HEADERS.hashAlgorithm} header` });
  if (!HASH_ALGORITHMS.includes(hashAlgorithm.toUpperCase())) {
    throw new XrdError('InvalidMessage', { reason: `unsupported ${TRANSPORT_HEADERS.hashAlgorithm} ${hashAlgorithm}` });
  }

  const parts = splitParts(body, boundary, options.maxParts ?? 64, 'parts');
  const expected = options.kind ?? (direction === 'request' ? (transport.messageType?.toUpperCase() === 'REST' ? 'rest' : 'soap') : undefined);
  const which = direction === 'request' ? 'Request' : direction === 'response' ? 'Response' : 'Message';
  const missing = (kind: 'soap' | 'rest') => new XrdError(kind === 'soap' ? 'MissingSoap' : 'MissingRest', { message: which });

  let i = 0;
  const ocspResponses: Buffer[] = [];
  for (; i < parts.length && typeOf(parts[i]!) === PART_TYPES.ocspResponse; i++) {
    const der = parts[i]!.body;
    if (!isDerSequence(der)) throw new XrdError('InvalidMessage', { reason: `OCSP response part ${i + 1} is not DER` });
    ocspResponses.push(der);
  }

  // The message: SOAP, REST, or (answers only) a SOAP fault standing in for it.
  const first = parts[i++];
  if (!first) throw missing(expected ?? 'soap');
  const firstType = typeOf(first);
  let content: ProxyContent;
  if (firstType === PART_TYPES.textXml || firstType === PART_TYPES.xopXml) {
    const fault = readSoapFault(first.body);
    if (fault) {
      // A fault from the service, passed on unsigned, or an error after the answer was begun.
      if (direction === 'request') throw missing(expected ?? 'soap');
      if (i < parts.length) throw new XrdError('InvalidMessage', { reason: `extra content (${typeOf(parts[i]!)}) after the fault` });
      return { ...transport, isFault: true, ocspResponses, fault };
    }
    content = { kind: 'soap', soap: first.body, contentType: first.headers.get('content-type')!, partHeaders: otherHeaders(first) };
  } else if (firstType === PART_TYPES.restRequest || firstType === PART_TYPES.restResponse) {
    const role = firstType === PART_TYPES.restRequest ? 'request' : 'response';
    if (direction !== undefined && role !== direction) throw missing('rest');
    content = { kind: 'rest', role, headerPart: first.body };
  } else if (KNOWN_TYPES.has(firstType)) {
    throw new XrdError('InvalidMessage', { reason: `${firstType} part where the message belongs` });
  } else {
    throw new XrdError('InvalidContentType', { contentType: `${first.headers.get('content-type') ?? '(none)'} (expected the SOAP or REST message)` });
  }
  if (expected !== undefined && content.kind !== expected) throw missing(expected);

  // What belongs to the message: nested attachments (SOAP) or the body (REST).
  if (content.kind === 'soap' && parts[i] && typeOf(parts[i]!) === PART_TYPES.attachments) {
    content = { ...content, attachments: readAttachments(parts[i++]!, options.maxAttachments ?? 1000) };
  } else if (content.kind === 'rest' && parts[i] && typeOf(parts[i]!) === PART_TYPES.restBody) {
    content = { ...content, body: parts[i++]!.body };
  }

  // A batch signature's hash chain result and hash chain, always as a pair.
  let hashChainResult: Buffer | undefined;
  let hashChain: Buffer | undefined;
  if (parts[i] && typeOf(parts[i]!) === PART_TYPES.hashChainResult) {
    hashChainResult = parts[i++]!.body;
    if (!parts[i] || typeOf(parts[i]!) !== PART_TYPES.hashChain) throw new XrdError('InvalidMessage', { reason: 'hash chain result without the hash chain' });
    hashChain = parts[i++]!.body;
  } else if (parts[i] && typeOf(parts[i]!) === PART_TYPES.hashChain) {
    throw new XrdError('InvalidMessage', { reason: 'hash chain without the hash chain result' });
  }

  // Last, the signature — or a fault in its place when the sender could not sign.
  const last = parts[i++];
  if (!last) throw new XrdError('MissingSignature');
  const lastType = typeOf(last);
  let signature: DecodedSignature | undefined;
  let fault: ReceivedSoapFault | undefined;
  if (lastType === PART_TYPES.signature) {
    signature = { signatureXml: last.body, ...(hashChainResult && hashChain ? { hashChainResult, hashChain } : {}) };
  } else if (lastType === PART_TYPES.textXml) {
    fault = readSoapFault(last.body);
    if (!fault) throw new XrdError('InvalidContentType', { contentType: `${last.headers.get('content-type')} (a SOAP message where the signature belongs)` });
    // The reference server proxy treats a request whose sender failed to sign as unsigned.
    if (direction === 'request') throw new XrdError('MissingSignature', { fault: fault.faultCode });
  } else if (KNOWN_TYPES.has(lastType)) {
    throw new XrdError('InvalidMessage', { reason: `${lastType} part where the signature belongs` });
  } else {
    throw new XrdError('InvalidContentType', { contentType: `${last.headers.get('content-type') ?? '(none)'} (expected the signature)` });
  }
  if (i < parts.length) throw new XrdError('InvalidMessage', { reason: `extra content (${typeOf(parts[i]!)}) after the ${signature ? 'signature' : 'fault'}` });

  return { ...transport, isFault: fault !== undefined, ocspResponses, content, ...(signature ? { signature } : {}), ...(fault ? { fault } : {}) };
}

const KNOWN_TYPES: ReadonlySet<string> = new Set(Object.values(PART_TYPES));

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

function splitParts(body: Buffer, boundary: string, maxParts: number, what: string): MimePart[] {
  try {
    return parseMultipart(body, boundary, { maxParts });
  } catch (err) {
    if (err instanceof MultipartLimitError) throw new XrdError('InvalidMessage', { reason: `more than ${maxParts} ${what}` }, { cause: err });
    throw new XrdError('MimeParsingFailed', { reason: (err as Error).message }, { cause: err });
  }
}

function readAttachments(part: MimePart, maxAttachments: number): MimeAttachment[] {
  const contentType = part.headers.get('content-type')!;
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new XrdError('InvalidContentType', { contentType: `${contentType} (attachments without a boundary)` });
  return splitParts(part.body, boundary, maxAttachments, 'attachments').map((a, n) => {
    const type = a.headers.get('content-type');
    if (!type) throw new XrdError('InvalidContentType', { contentType: `(none) (attachment ${n + 1} has no Content-Type)` });
    return { contentType: type, headers: otherHeaders(a), body: a.body };
  });
}

function otherHeaders(part: MimePart): [string, string][] {
  return [...part.headers].filter(([name]) => name !== 'content-type');
}

/** The media type without parameters, in lower case (`text/xml; charset=UTF-8` → `text/xml`). */
export function baseType(contentType: string): string {
  return contentType.split(';', 1)[0]!.trim().toLowerCase();
}

const typeOf = (part: MimePart): string => baseType(part.headers.get('content-type') ?? '');

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
  attachments: Buffer[];
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

/**
 * The SOAP message package the information system gets, as the reference rebuilds it from the
 * `x-original-content-type` the other side sent: a multipart/related with that boundary when the
 * original was one (SOAP part, then the attachments), else the bare envelope as text/xml.
 */
export function soapPackageOf(content: SoapContent, originalContentType?: string): { contentType: string; body: Buffer } {
  const attachments = content.attachments ?? [];
  const wasPackage = originalContentType !== undefined && baseType(originalContentType) === 'multipart/related';
  if (!wasPackage && attachments.length === 0) return { contentType: TEXT_XML_UTF8, body: content.soap };
  const boundary = (wasPackage && boundaryOf(originalContentType)) || `xatt${randomLetters(30)}`;
  const contentType = wasPackage && boundaryOf(originalContentType) ? originalContentType : `multipart/related; type="text/xml"; charset=UTF-8; boundary=${boundary}`;
  const body = buildMultipart(boundary, [
    { headers: [['content-type', content.contentType], ...(content.partHeaders ?? [])], body: content.soap },
    ...attachments.map((a) => ({ headers: [['content-type', a.contentType] as const, ...a.headers], body: a.body })),
  ]);
  return { contentType, body };
}
