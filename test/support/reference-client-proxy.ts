/**
 * A client proxy that writes its requests to a server proxy byte for byte as the reference's does
 * (X-Road 7.6–8), for feeding our server proxy what a reference security server sends:
 *
 * - the body as ProxyMessageEncoder lays it out through MultipartEncoder: `--xtop…` boundaries,
 *   `content-type: …` in lower case first in each part, further part headers as `Name: value` in
 *   the order of the HashMap the reference keeps them in, OCSP responses of our authentication
 *   chain first, the SOAP message, the attachments nested in `multipart/mixed; charset=UTF-8;
 *   boundary=xatt…` (opened by an empty line), or the REST header part as RestRequest writes it
 *   (`name:value` lines, x-road-request-id then x-road-id appended) and its body; then the hash
 *   chain pair and the signature;
 * - the HTTP request as Apache HttpClient 4 writes it for HttpSender: the x-… headers of
 *   AbstractClientMessageProcessor.prepareRequest, ClientMessageProcessor and
 *   ClientRestMessageProcessor in HashMap order (a null value goes as an empty header), then
 *   Transfer-Encoding: chunked, Content-Type, Host, Connection and User-Agent, and the body in
 *   chunks of 2048 bytes;
 * - over mutual TLS presenting a security server's authentication certificate (key on its HSM).
 *
 * The signature is ours (MemberSigning, the signer's key): only the wire layout is the reference's.
 * A test may change the parts or headers before encoding, or encode with LF line ends and
 * transport padding, to send the forms a reference peer may produce.
 */
import { randomUUID } from 'node:crypto';
import tls from 'node:tls';
import type { GlobalConf } from '../../src/globalconf/global-conf.ts';
import { MemberSigning } from '../../src/proxy/shared/member-signing.ts';
import { signerOcspStore } from '../../src/proxy/shared/peer-verifier.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { randomLetters } from '../../src/protocol/proxy-message.ts';
import type { SignerConnection } from '../../src/signerapi/signer-client.ts';
import { ownAuthOcspResponses } from '../../src/trust/peer-auth.ts';
import type { ServerAuth } from './local-peers.ts';
import type { PackagePart } from './information-system.ts';
import type { HeaderPairs, WireResponse } from './reference-checks.ts';

/** What a reference client proxy says it is (Version.XROAD_VERSION of a 7.6 server). */
export const REFERENCE_VERSION = '7.6.2';

export interface ReferencePart {
  /** Written first as `content-type: …`; none when null. */
  readonly contentType: string | null;
  /** Further header lines (`Name: value`). */
  readonly headers?: readonly string[];
  readonly body?: Buffer;
  /** A nested multipart (the attachments): its boundary and parts. */
  readonly nested?: { readonly boundary: string; readonly parts: readonly ReferencePart[] };
}

export interface ReferenceRequest {
  /** The x-… headers in the order the client proxy puts them in its HashMap; null is sent empty. */
  readonly headers: readonly (readonly [string, string | null])[];
  readonly boundary: string;
  readonly parts: readonly ReferencePart[];
}

export interface EncodingOptions {
  /** MultipartEncoder writes CRLF; other MIME writers may use LF. */
  readonly lineEnd?: '\r\n' | '\n';
  /** Transport padding after each delimiter (RFC 2046: spaces and tabs before the line end). */
  readonly padding?: string;
}

export interface ReferenceClientOptions {
  /** The provider's server proxy. */
  readonly host: string;
  readonly port: number;
  /** The client's security server: its TLS identity and its signer (member keys, OCSP cache). */
  readonly auth: ServerAuth;
  readonly signer: SignerConnection;
  readonly globalConf: () => GlobalConf;
  readonly version?: string;
}

export interface SoapInput {
  /** The information system's Content-Type (x-original-content-type). */
  readonly packageContentType: string;
  readonly soap: Buffer;
  readonly soapContentType: string;
  readonly soapHeaders?: readonly (readonly [string, string])[];
  readonly attachments?: readonly PackagePart[];
  /** The information system's SOAPAction; absent is sent as an empty x-original-soapaction. */
  readonly soapAction?: string;
  /** `INST/CLASS/CODE[/SUB]` of the client, whose key signs. */
  readonly client: string;
}

export interface RestInput {
  readonly method: string;
  readonly pathAndQuery: string;
  /** The information system's headers as it sent them (Host, User-Agent … are left out as RestRequest does). */
  readonly headers: readonly (readonly [string, string])[];
  /** A body part is written when given, even an empty one. */
  readonly body?: Buffer;
  readonly client: string;
}

/** RestMessage.SKIPPED_HEADERS, and the two the client proxy sets itself. */
const NOT_COPIED = ['transfer-encoding', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'connection', 'user-agent', 'host', 'content-length', 'server', 'expect', 'x-road-request-id', 'x-road-request-hash'];

export class ReferenceClientProxy {
  private readonly signing: MemberSigning;

  constructor(private readonly options: ReferenceClientOptions) {
    this.signing = new MemberSigning(options.signer, options.globalConf);
  }

  /** A SOAP message or package as ClientMessageProcessor sends it. */
  async soap(input: SoapInput): Promise<ReferenceRequest & { requestId: string }> {
    const requestId = randomUUID();
    const unique = randomLetters(30);
    const attachments = input.attachments ?? [];
    const parts: ReferencePart[] = [...(await this.ocspParts()), { contentType: input.soapContentType, headers: headerLines(input.soapHeaders ?? []), body: input.soap }];
    if (attachments.length > 0) {
      parts.push({
        contentType: `multipart/mixed; charset=UTF-8; boundary=xatt${unique}`,
        nested: { boundary: `xatt${unique}`, parts: attachments.map((a) => ({ contentType: a.contentType, headers: headerLines(a.headers ?? []), body: a.body })) },
      });
    }
    parts.push(...(await this.signatureParts(input.client, input.soap, attachments.map((a) => a.body))));
    return {
      requestId,
      boundary: `xtop${unique}`,
      parts,
      headers: [...this.commonHeaders(input.packageContentType), ['x-original-soapaction', input.soapAction ?? null], ['x-road-request-id', requestId]],
    };
  }

  /** A REST request as ClientRestMessageProcessor sends it. */
  async rest(input: RestInput): Promise<ReferenceRequest & { requestId: string; headerPart: Buffer }> {
    const requestId = randomUUID();
    const lines = input.headers.filter(([n]) => !NOT_COPIED.includes(n.toLowerCase())).map(([n, v]) => `${n}:${v}`);
    lines.push(`x-road-request-id:${requestId}`);
    if (!input.headers.some(([n]) => n.toLowerCase() === 'x-road-id')) lines.push(`x-road-id:${this.options.globalConf().instanceIdentifier}-${randomUUID()}`);
    const headerPart = Buffer.from(`${input.method}\r\n${input.pathAndQuery}\r\n${lines.map((l) => `${l}\r\n`).join('')}`, 'utf8');
    const parts: ReferencePart[] = [...(await this.ocspParts()), { contentType: 'application/x-road-rest-request', body: headerPart }];
    if (input.body !== undefined) parts.push({ contentType: 'application/x-road-rest-body', body: input.body });
    parts.push(...(await this.signatureParts(input.client, headerPart, input.body !== undefined ? [input.body] : [])));
    const contentType = input.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? null;
    return {
      requestId,
      headerPart,
      boundary: `xtop${randomLetters(30)}`,
      parts,
      headers: [...this.commonHeaders(contentType), ['x-road-message-type', 'REST'], ['x-road-request-id', requestId]],
    };
  }

  /** Sends the request over mutual TLS, chunked as Apache HttpClient sends it; the answer whole. */
  post(request: ReferenceRequest, encoding: EncodingOptions = {}): Promise<WireResponse & { sentHeaders: HeaderPairs; sentBody: Buffer }> {
    const { contentType, body } = encodeReferenceBody(request, encoding);
    const { host, port } = this.options;
    const sentHeaders: [string, string][] = [
      ...javaHashMapOrder(request.headers).map(([n, v]) => [n, v ?? ''] as [string, string]),
      ['Transfer-Encoding', 'chunked'],
      ['Content-Type', contentType],
      ['Host', `${host}:${port}`],
      ['Connection', 'Keep-Alive'],
      ['User-Agent', 'Apache-HttpClient/4.5.14 (Java/21.0.6)'],
    ];
    const head = Buffer.from(`POST / HTTP/1.1\r\n${sentHeaders.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, 'latin1');
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host, port, ...this.options.auth.tls, rejectUnauthorized: false, checkServerIdentity: () => undefined } as tls.ConnectionOptions);
      const timer = setTimeout(() => socket.destroy(new Error(`no answer from ${host}:${port} within 60 s`)), 60_000);
      const response = new HttpResponseReader();
      socket.once('secureConnect', () => {
        socket.write(head);
        for (let i = 0; i < body.length; i += 2048) {
          const chunk = body.subarray(i, i + 2048);
          socket.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
        }
        socket.write('0\r\n\r\n');
      });
      socket.on('data', (data: Buffer) => {
        try {
          const done = response.push(data);
          if (done) {
            clearTimeout(timer);
            socket.end();
            resolve({ ...done, sentHeaders, sentBody: body });
          }
        } catch (err) {
          socket.destroy(err as Error);
        }
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        reject(new Error('the server proxy closed the connection before its answer was complete'));
      });
    });
  }

  /** AbstractClientMessageProcessor.prepareRequest. */
  private commonHeaders(originalContentType: string | null): [string, string | null][] {
    return [
      ['x-hash-algorithm', 'SHA-512'],
      ['x-proxy-version', this.options.version ?? REFERENCE_VERSION],
      ['x-original-content-type', originalContentType],
    ];
  }

  /** ClientMessageProcessor.writeOcspResponses: every certificate of the auth chain but the trusted root. */
  private async ocspParts(): Promise<ReferencePart[]> {
    const { auth, signer, globalConf } = this.options;
    const responses = await ownAuthOcspResponses(globalConf(), auth.cert, auth.chain, signerOcspStore(signer));
    return responses.map((der) => ({ contentType: 'application/ocsp-response', body: der }));
  }

  /** ProxyMessageEncoder.writeSignature: the hash chain pair for a batch signature, then the signature. */
  private async signatureParts(client: string, message: Buffer, attachments: Buffer[]): Promise<ReferencePart[]> {
    const signed = await this.signing.sign(parseClientId(client), { message, attachments }, 'Client');
    const parts: ReferencePart[] = [];
    if (signed.hashChainResult !== undefined && signed.hashChain !== undefined) {
      parts.push({ contentType: 'application/hash-chain-result', body: Buffer.from(signed.hashChainResult) }, { contentType: 'application/hash-chain', body: Buffer.from(signed.hashChain) });
    }
    parts.push({ contentType: 'signature/bdoc-1.0/ts', body: Buffer.from(signed.signatureXml) });
    return parts;
  }
}

/** MimeUtils.toHeaders over the HashMap the decoder filled: `Name: value` in HashMap order. */
function headerLines(headers: readonly (readonly [string, string])[]): string[] {
  return javaHashMapOrder(headers).map(([n, v]) => `${n}: ${v}`);
}

/**
 * The order a java.util.HashMap of at most 12 entries (16 buckets) iterates: by bucket, the
 * bucket being String.hashCode spread as HashMap.hash does, then in insertion order.
 */
export function javaHashMapOrder<V>(entries: readonly (readonly [string, V])[]): [string, V][] {
  const bucket = (key: string) => {
    let h = 0;
    for (let i = 0; i < key.length; i++) h = (Math.imul(31, h) + key.charCodeAt(i)) | 0;
    return (h ^ (h >>> 16)) & 15;
  };
  if (entries.length > 12) throw new Error('javaHashMapOrder: more entries than 16 buckets hold without resizing');
  return entries.map((e, i) => ({ e, i, b: bucket(e[0]) })).sort((x, y) => x.b - y.b || x.i - y.i).map(({ e }) => [e[0], e[1]]);
}

/** The body as MultipartEncoder writes it (with the line ends and padding asked for). */
export function encodeReferenceBody(request: ReferenceRequest, options: EncodingOptions = {}): { contentType: string; body: Buffer } {
  const nl = options.lineEnd ?? '\r\n';
  const pad = options.padding ?? '';
  const chunks: Buffer[] = [];
  const text = (s: string) => chunks.push(Buffer.from(s, 'latin1'));
  const write = (boundary: string, parts: readonly ReferencePart[], first: boolean) => {
    parts.forEach((part, n) => {
      // writeCurrentBoundary: a line end first unless this is the encoder's very first part.
      text(`${first && n === 0 ? '' : nl}--${boundary}${pad}${nl}`);
      if (part.contentType !== null) text(`content-type: ${part.contentType}${nl}`);
      for (const line of part.headers ?? []) text(`${line}${nl}`);
      text(nl);
      if (part.nested) {
        write(part.nested.boundary, part.nested.parts, false);
        text(`${nl}--${part.nested.boundary}--${nl}`);
      } else if (part.body) {
        chunks.push(part.body);
      }
    });
  };
  write(request.boundary, request.parts, true);
  text(`${nl}--${request.boundary}--${nl}`);
  return { contentType: `multipart/mixed; charset=UTF-8; boundary=${request.boundary}`, body: Buffer.concat(chunks) };
}

/** Reads one HTTP/1.1 response: status line, headers, and a body by Content-Length or chunks. */
class HttpResponseReader {
  private data = Buffer.alloc(0);

  /** The response once it is complete. */
  push(chunk: Buffer): WireResponse | undefined {
    this.data = Buffer.concat([this.data, chunk]);
    const end = this.data.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine = '', ...lines] = this.data.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
    if (!status) throw new Error(`not an HTTP response: ${statusLine}`);
    const headers = lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string]);
    const header = (name: string) => headers.find(([n]) => n.toLowerCase() === name)?.[1];
    const rest = this.data.subarray(end + 4);
    if (header('transfer-encoding')?.toLowerCase() === 'chunked') {
      const body = dechunk(rest);
      return body && { status, headers, body };
    }
    const length = Number(header('content-length') ?? NaN);
    if (!Number.isInteger(length)) throw new Error('an answer with neither Content-Length nor chunks');
    return rest.length >= length ? { status, headers, body: rest.subarray(0, length) } : undefined;
  }
}

function dechunk(data: Buffer): Buffer | undefined {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(out);
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    out.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}
