/**
 * What a reference security server (X-Road 7.6–8) checks in a message from another security
 * server, written from its source and applied to the bytes on the wire — independently of our
 * decoder: the MIME structure is read by Python's email package (python-mime.ts), XML by xmldom,
 * OCSP responses by OpenSSL. Each rule is named after the reference code that applies it, so a
 * violation says which reference behaviour our proxy would trip:
 *
 * - a request as the server proxy reads it (ServerProxyHandler, ClientProxyVersionVerifier,
 *   ServerMessageProcessor, ServerRestMessageProcessor, ProxyMessageDecoder, RestRequest(byte[]),
 *   the Verifier's part digests), with what its client proxy is bound to send
 *   (AbstractClientMessageProcessor.prepareRequest, ClientMessageProcessor, ClientRestMessageProcessor);
 * - a response as the client proxy reads it (AbstractHttpSender, ProxyMessageDecoder,
 *   ClientMessageProcessor.checkResponse/checkConsistency/checkRequestHash, RestResponse.of,
 *   ClientRestMessageProcessor.checkConsistency).
 *
 * Checking never throws on bad input: every finding is a Violation.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMParser, type Element } from '@xmldom/xmldom';
import semver from 'semver';
import { openssl } from './openssl.ts';
import { headerOf, readMimeWithPython, type PyMimePart } from './python-mime.ts';

export type HeaderPairs = readonly (readonly [string, string])[];

export interface Violation {
  /** The reference rule, e.g. "ClientProxyVersionVerifier: …". */
  readonly rule: string;
  readonly detail: string;
}

export interface WireRequest {
  readonly method: string;
  /** HTTP headers with their names as sent. */
  readonly headers: HeaderPairs;
  readonly body: Buffer;
  /** The TLS client certificate (DER), if one was presented. */
  readonly clientCert?: Buffer;
}

export interface WireResponse {
  readonly status: number;
  readonly headers: HeaderPairs;
  readonly body: Buffer;
}

/** The X-Road SOAP header, identifiers as `TYPE:INST/CLASS/CODE[/…]`. */
export interface XroadHeader {
  readonly client?: string;
  readonly service?: string;
  readonly id?: string;
  readonly userId?: string;
  readonly issue?: string;
  readonly protocolVersion?: string;
  readonly requestHash?: string;
}

/** What a request was, as read from the wire: for checking its answer and for the tests. */
export interface RequestFacts {
  readonly kind?: 'soap' | 'rest';
  /** The top-level parts' media types, in order. */
  readonly partTypes: readonly string[];
  readonly requestId?: string;
  readonly ocspResponses: readonly Buffer[];
  readonly soap?: Buffer;
  readonly soapHeader?: XroadHeader;
  readonly attachments?: readonly PyMimePart[];
  readonly restHeaderPart?: Buffer;
  /** Undefined when the request had no body part. */
  readonly restBody?: Buffer;
  readonly rest?: RestHeaderPart;
}

export interface ResponseFacts {
  readonly partTypes: readonly string[];
  readonly fault?: { readonly code: string; readonly string: string };
  readonly soap?: Buffer;
  readonly soapHeader?: XroadHeader;
  readonly attachments?: readonly PyMimePart[];
  readonly restHeaderPart?: Buffer;
  readonly rest?: RestHeaderPart;
  readonly restBody?: Buffer;
}

/** A REST header part read as RestRequest(byte[]) / RestResponse.of read it. */
export interface RestHeaderPart {
  /** Verb and path (request) or status and reason (response). */
  readonly startLine: readonly [string, string];
  readonly headers: HeaderPairs;
}

/** The reference's MimeTypes, written out here rather than taken from src/protocol: a wrong constant there must not pass these checks. */
const TYPES = {
  ocsp: 'application/ocsp-response',
  textXml: 'text/xml',
  xop: 'application/xop+xml',
  mixed: 'multipart/mixed',
  restRequest: 'application/x-road-rest-request',
  restResponse: 'application/x-road-rest-response',
  restBody: 'application/x-road-rest-body',
  hashChainResult: 'application/hash-chain-result',
  hashChain: 'application/hash-chain',
  signature: 'signature/bdoc-1.0/ts',
};

/** DigestAlgorithm's index (lower-cased names) — what DigestAlgorithm.ofName resolves. */
const DIGEST_NAMES = ['md5', 'sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512'];
const DIGEST_URIS: Record<string, string> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': 'sha1',
  'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384': 'sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512',
};
/** RestMessage.SKIPPED_HEADERS: a header part holding one of these is refused ("Invalid header"). */
const SKIPPED_HEADERS = ['transfer-encoding', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'connection', 'user-agent', 'host', 'content-length', 'server', 'expect'];
const VERBS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
const XROAD = 'http://x-road.eu/xsd/xroad.xsd';
const IDS = 'http://x-road.eu/xsd/identifiers';
const DS = 'http://www.w3.org/2000/09/xmldsig#';

/** Collects violations; `that` records one when its condition is false. */
class Findings {
  readonly all: Violation[] = [];
  that(ok: unknown, rule: string, detail: string): boolean {
    if (!ok) this.all.push({ rule, detail });
    return Boolean(ok);
  }
}

/** The server proxy's minimum client version in the FI and EE defaults (server-min-supported-client-version). */
const MIN_CLIENT_VERSION = '7.6.0';

/**
 * A request from a client proxy, checked as the reference server proxy reads it (and as its own
 * client proxy writes it).
 */
export async function checkRequestAsServerProxy(req: WireRequest): Promise<{ violations: Violation[]; facts: RequestFacts }> {
  const f = new Findings();
  const h = (name: string) => headerOf(req, name);

  f.that(req.method === 'POST', 'ServerProxyHandler.handle: POST request method (X_INVALID_HTTP_METHOD)', `method ${req.method}`);
  f.that(req.clientCert, 'ServerMessageProcessor.verifySslClientCert: the client presents its TLS authentication certificate', 'no client certificate');
  const version = h('x-proxy-version');
  f.that(
    version !== undefined && semver.valid(version.trim()) !== null && semver.gte(version.trim(), MIN_CLIENT_VERSION),
    `ClientProxyVersionVerifier: x-proxy-version ≥ server-min-supported-client-version ${MIN_CLIENT_VERSION}`,
    `x-proxy-version ${version ?? '(none)'}`,
  );
  const hash = h('x-hash-algorithm');
  f.that(hash !== undefined && DIGEST_NAMES.includes(hash.toLowerCase()), 'ServerMessageProcessor.getHashAlgoId: x-hash-algorithm names a DigestAlgorithm', `x-hash-algorithm ${hash ?? '(none)'}`);
  const requestId = h('x-road-request-id');
  f.that(requestId !== undefined && UUID.test(requestId), 'ClientMessageProcessor.sendRequest: x-road-request-id (HEADER_REQUEST_ID) is a UUID', `x-road-request-id ${requestId ?? '(none)'}`);
  const messageType = h('x-road-message-type');

  const contentType = h('content-type') ?? '';
  const facts: { -readonly [K in keyof RequestFacts]: RequestFacts[K] } = { partTypes: [], ocspResponses: [], ...(requestId ? { requestId } : {}) };
  if (!f.that(baseType(contentType) === TYPES.mixed && hasBoundary(contentType), 'ProxyMessageDecoder.parse: Content-Type multipart/mixed with a boundary (X_INVALID_CONTENT_TYPE)', `Content-Type ${contentType}`)) {
    return { violations: f.all, facts };
  }
  const top = await readMimeWithPython(contentType, req.body);
  f.that(top.defects.length === 0, 'ProxyMessageDecoder (mime4j): a well-formed multipart body', top.defects.join(', '));
  const parts = top.parts ?? [];
  facts.partTypes = parts.map((p) => p.type);

  let i = 0;
  const ocsp: Buffer[] = [];
  while (parts[i]?.type === TYPES.ocsp) ocsp.push(parts[i++]!.body ?? Buffer.alloc(0));
  facts.ocspResponses = ocsp;
  f.that(facts.ocspResponses.length > 0, 'ServerMessageProcessor.verifySslClientCert: OCSP responses of the TLS certificate come first (X_SSL_AUTH_FAILED when missing)', 'no application/ocsp-response part');
  checkOcspParts(f, facts.ocspResponses, req.clientCert);

  const message = parts[i++];
  if (!f.that(message, 'ProxyMessageDecoder.ContentHandler: the message follows the OCSP parts (X_MISSING_SOAP / X_MISSING_REST)', 'no message part')) {
    return { violations: f.all, facts };
  }
  if (message.type === TYPES.restRequest) {
    facts.kind = 'rest';
    f.that(messageType === 'REST', 'ServerProxyHandler.createRequestProcessor: x-road-message-type is exactly "REST" for a REST request', `x-road-message-type ${messageType ?? '(none)'}`);
    facts.restHeaderPart = message.body;
    facts.rest = checkRestRequestPart(f, message.body ?? Buffer.alloc(0), requestId);
    const original = h('x-original-content-type');
    const sent = facts.rest && headerOf(facts.rest, 'content-type');
    f.that(
      sent === undefined || original === sent,
      "AbstractClientMessageProcessor.prepareRequest: x-original-content-type is the information system's Content-Type",
      `x-original-content-type ${original ?? '(none)'}, REST header part Content-Type ${sent ?? '(none)'}`,
    );
    if (parts[i]?.type === TYPES.restBody) facts.restBody = parts[i++]!.body ?? Buffer.alloc(0);
  } else {
    f.that(
      message.type === TYPES.textXml || message.type === TYPES.xop,
      'ProxyMessageDecoder.handleSoap: the message part is text/xml or application/xop+xml (X_INVALID_CONTENT_TYPE)',
      `message part ${message.type}`,
    );
    facts.kind = 'soap';
    f.that(messageType === undefined, 'ServerProxyHandler.createRequestProcessor: no x-road-message-type on a SOAP request', `x-road-message-type ${messageType}`);
    facts.soap = message.body;
    const read = readSoap(message.body ?? Buffer.alloc(0));
    if (f.that(read.header, 'SaxSoapParserImpl: the SOAP part is an X-Road message', read.error ?? (read.fault ? 'a SOAP fault in place of the message' : 'no X-Road header'))) {
      facts.soapHeader = read.header;
      checkXroadHeader(f, read.header!);
    }
    const original = h('x-original-content-type');
    f.that(original, 'AbstractClientMessageProcessor.prepareRequest: x-original-content-type (the SOAP package Content-Type)', 'no x-original-content-type');
    const soapAction = h('x-original-soapaction');
    f.that(validSoapAction(soapAction), 'ServerMessageProcessor.readMessage: validateSoapActionHeader(x-original-soapaction) (X_INVALID_SOAP_ACTION)', `x-original-soapaction ${soapAction}`);
    if (parts[i]?.type === TYPES.mixed) {
      const nested = parts[i++]!;
      f.that(hasBoundary(headerOf(nested, 'content-type') ?? ''), 'ProxyMessageDecoder.handleAttachments: the attachments part has a boundary', headerOf(nested, 'content-type') ?? '');
      facts.attachments = nested.parts ?? [];
      facts.attachments.forEach((a, n) => f.that(a.type !== '', 'ProxyMessageDecoder.parseAttachments: each attachment has a Content-Type', `attachment ${n + 1} has none`));
      f.that(
        original !== undefined && baseType(original) === 'multipart/related' && hasBoundary(original),
        'ProxyMessage.writeSoapContent: a message with attachments travels with x-original-content-type multipart/related and its boundary',
        `x-original-content-type ${original}`,
      );
    }
  }
  checkSignatureParts(f, parts, i, 'request', signedPartsOf(facts));
  return { violations: f.all, facts };
}

/** A server proxy's answer, checked as the reference client proxy reads it. */
export async function checkResponseAsClientProxy(res: WireResponse, request: RequestFacts): Promise<{ violations: Violation[]; facts: ResponseFacts }> {
  const f = new Findings();
  const facts: { -readonly [K in keyof ResponseFacts]: ResponseFacts[K] } = { partTypes: [] };
  f.that(res.status === 200 || res.status === 500, 'AbstractHttpSender.checkResponseStatus: 200 or 500 (X_HTTP_ERROR)', `status ${res.status}`);
  const contentType = headerOf(res, 'content-type');
  if (!f.that(contentType, 'AbstractHttpSender.getResponseContentType: the answer has a Content-Type (X_INVALID_CONTENT_TYPE)', 'none')) return { violations: f.all, facts };
  // AbstractHttpSender.getResponseHeaders keeps names as sent in a HashMap; the client proxy then
  // looks the x-… headers up in lower case.
  const exact = (name: string) => res.headers.find(([n]) => n === name)?.[1];

  if (baseType(contentType!) === TYPES.textXml) {
    const read = readSoap(res.body);
    if (f.that(read.fault, 'ProxyMessageDecoder.parseFault: a text/xml answer is a SOAP fault (X_INVALID_MESSAGE)', read.error ?? 'a regular SOAP message')) facts.fault = read.fault;
    return { violations: f.all, facts };
  }
  if (!f.that(baseType(contentType!) === TYPES.mixed && hasBoundary(contentType!), 'ProxyMessageDecoder.parse: multipart/mixed with a boundary, or text/xml (X_INVALID_CONTENT_TYPE)', contentType!)) {
    return { violations: f.all, facts };
  }
  const hash = exact('x-hash-algorithm');
  f.that(
    hash !== undefined && DIGEST_NAMES.includes(hash.toLowerCase()),
    'AbstractClientMessageProcessor.getHashAlgoId: a header named exactly x-hash-algorithm with a DigestAlgorithm name',
    `x-hash-algorithm ${hash ?? '(none in that spelling)'}`,
  );
  const top = await readMimeWithPython(contentType!, res.body);
  f.that(top.defects.length === 0, 'ProxyMessageDecoder (mime4j): a well-formed multipart body', top.defects.join(', '));
  const parts = top.parts ?? [];
  facts.partTypes = parts.map((p) => p.type);
  let i = 0;
  const message = parts[i++];
  if (!f.that(message, 'ClientMessageProcessor.checkResponse: the response has a message (X_MISSING_SOAP / X_MISSING_REST)', 'no parts')) return { violations: f.all, facts };

  if (message.type === TYPES.restResponse) {
    f.that(request.kind === 'rest', 'ClientMessageProcessor.checkResponse: a SOAP request gets a SOAP response (X_MISSING_SOAP)', 'REST response part');
    facts.restHeaderPart = message.body ?? Buffer.alloc(0);
    facts.rest = checkRestResponsePart(f, facts.restHeaderPart, request);
    if (parts[i]?.type === TYPES.restBody) facts.restBody = parts[i++]!.body ?? Buffer.alloc(0);
  } else {
    f.that(message.type === TYPES.textXml || message.type === TYPES.xop, 'ProxyMessageDecoder.handleSoap: the message part is text/xml or application/xop+xml (X_INVALID_CONTENT_TYPE)', message.type);
    const read = readSoap(message.body ?? Buffer.alloc(0));
    if (read.fault) {
      // A fault in the message's place: the client proxy passes it on (checkResponse).
      facts.fault = read.fault;
    } else {
      f.that(request.kind === 'soap', 'ClientRestMessageProcessor.checkResponse: a REST request gets a REST response (X_MISSING_REST)', 'SOAP response part');
      facts.soap = message.body;
      if (f.that(read.header, 'SaxSoapParserImpl: the response SOAP part is an X-Road message', read.error ?? 'no X-Road header')) {
        facts.soapHeader = read.header;
        checkSoapConsistency(f, request, read.header!, message.body!);
      }
      const original = exact('x-original-content-type');
      f.that(original, 'ClientMessageProcessor.parseResponse: a header named exactly x-original-content-type (the service Content-Type)', 'none in that spelling');
      if (parts[i]?.type === TYPES.mixed) {
        facts.attachments = parts[i++]!.parts ?? [];
        f.that(
          original !== undefined && baseType(original) === 'multipart/related' && hasBoundary(original),
          'ProxyMessage.getSoapContentType: a response with attachments is rebuilt with x-original-content-type multipart/related and its boundary',
          `x-original-content-type ${original}`,
        );
      }
    }
  }
  if (!facts.fault || i < parts.length) checkSignatureParts(f, parts, i, 'response', signedPartsOf(facts));
  return { violations: f.all, facts };
}

/**
 * What may come after the message: the hash chain pair, then the signature — or a fault in its
 * place — and nothing after it (ProxyMessageDecoder.ContentHandler).
 */
function checkSignatureParts(f: Findings, parts: readonly PyMimePart[], from: number, what: 'request' | 'response', signedParts: Map<string, Buffer>): void {
  let i = from;
  const hashChainResult = parts[i]?.type === TYPES.hashChainResult ? parts[i++]!.body : undefined;
  const hashChain = parts[i]?.type === TYPES.hashChain ? parts[i++]!.body : undefined;
  f.that((hashChainResult === undefined) === (hashChain === undefined), 'ProxyMessageEncoder.writeSignature: the hash chain result and the hash chain come together', `result ${hashChainResult !== undefined}, chain ${hashChain !== undefined}`);
  f.that(
    signedParts.size <= 1 || hashChainResult !== undefined,
    'SignatureCtx.getDataToBeSigned: a message of several parts (attachments, REST body) is signed through a hash chain',
    `${signedParts.size} signed parts, no hash chain`,
  );
  const last = parts[i++];
  if (!last) {
    f.that(false, `${what === 'request' ? 'ServerMessageProcessor.checkRequest' : 'ClientMessageProcessor.checkResponse'}: the message is signed (X_MISSING_SIGNATURE)`, 'no signature part');
  } else if (last.type === TYPES.signature) {
    checkDigests(f, signedParts, last.body ?? Buffer.alloc(0), hashChainResult, hashChain);
  } else if (last.type === TYPES.textXml && readSoap(last.body ?? Buffer.alloc(0)).fault) {
    // The sender could not sign: a fault as the last part (pr-messtransp §4.5).
    f.that(what === 'response', 'ServerMessageProcessor.checkRequest: a request is signed (X_MISSING_SIGNATURE)', 'a fault in place of the signature');
  } else {
    f.that(false, 'ProxyMessageDecoder.handleSignature: signature/bdoc-1.0/ts, or a SOAP fault, in the signature\'s place (X_INVALID_CONTENT_TYPE)', `part ${last.type}`);
  }
  f.that(i >= parts.length, 'ProxyMessageDecoder.ContentHandler: nothing after the signature ("Extra content", X_INVALID_MESSAGE)', parts.slice(i).map((p) => p.type).join(', '));
}

/** What the signature covers: `/message.xml` and `/attachment1…` (SOAP attachments or the REST body). */
function signedPartsOf(m: { soap?: Buffer; restHeaderPart?: Buffer; attachments?: readonly PyMimePart[]; restBody?: Buffer }): Map<string, Buffer> {
  const parts = new Map<string, Buffer>();
  const message = m.soap ?? m.restHeaderPart;
  if (message) parts.set('/message.xml', message);
  (m.attachments ?? []).forEach((a, n) => parts.set(`/attachment${n + 1}`, a.body ?? Buffer.alloc(0)));
  if (m.restBody !== undefined) parts.set('/attachment1', m.restBody);
  return parts;
}

/**
 * The Verifier's part check: every reference of the signature (or DataRef of the hash chain)
 * digests to the bytes of the part it names, and every part is covered.
 */
function checkDigests(f: Findings, signedParts: Map<string, Buffer>, signatureXml: Buffer, hashChainResult?: Buffer, hashChain?: Buffer): void {
  const rule = 'Verifier.verify: each signed part digests to its reference in the signature or hash chain (X_INVALID_SIGNATURE_VALUE / X_INVALID_HASH_CHAIN_REF)';
  const signature = parseXml(signatureXml);
  if (!f.that(signature.root, 'SignatureData: the signature part is XML', signature.error ?? '')) return;
  const covered = new Set<string>();
  const compare = (uri: string, method: string | undefined, value: string | undefined, data: Buffer | undefined) => {
    const algorithm = method && DIGEST_URIS[method];
    if (!f.that(data, rule, `${uri} is referenced but was not sent`) || !f.that(algorithm && value, rule, `${uri}: digest method ${method}`)) return;
    covered.add(uri);
    f.that(createHash(algorithm!).update(data!).digest('base64') === value!.trim(), rule, `${uri} does not match its digest`);
  };
  for (const ref of elements(signature.root!, DS, 'Reference')) {
    const uri = ref.getAttribute('URI') ?? '';
    if (!uri.startsWith('/')) continue;
    compare(uri, firstChild(ref, DS, 'DigestMethod')?.getAttribute('Algorithm') ?? undefined, textOfChild(ref, DS, 'DigestValue'), uri === '/sig-hashchainresult.xml' ? hashChainResult : signedParts.get(uri));
  }
  if (hashChain) {
    const chain = parseXml(hashChain);
    if (f.that(chain.root, 'HashChainVerifier: the hash chain is XML', chain.error ?? '')) {
      const defaultMethod = elements(chain.root!, '*', 'DefaultDigestMethod')[0]?.getAttribute('Algorithm') ?? undefined;
      for (const ref of elements(chain.root!, '*', 'DataRef')) {
        const uri = ref.getAttribute('URI') ?? '';
        compare(uri, firstChild(ref, DS, 'DigestMethod')?.getAttribute('Algorithm') ?? defaultMethod, textOfChild(ref, DS, 'DigestValue'), signedParts.get(uri));
      }
    }
  }
  for (const uri of signedParts.keys()) f.that(covered.has(uri), rule, `${uri} is not covered by the signature`);
}

/** handleOcsp reads each part as an OCSPResp; verifyAuthCert then needs one for the TLS certificate. */
function checkOcspParts(f: Findings, responses: readonly Buffer[], clientCert: Buffer | undefined): void {
  const serials: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'xrd-ocsp-check-'));
  try {
    responses.forEach((der, n) => {
      const file = join(dir, `${n}.der`);
      writeFileSync(file, der);
      let text = '';
      try {
        text = openssl(['ocsp', '-respin', file, '-resp_text', '-noverify']);
      } catch (err) {
        f.that(false, 'ProxyMessageDecoder.handleOcsp: each OCSP part is a DER OCSP response (X_IO_ERROR)', `part ${n + 1}: ${(err as Error).message.split('\n')[0]}`);
        return;
      }
      f.that(/OCSP Response Status: successful/.test(text) && /Cert Status: good/.test(text), 'CertHelper.verifyAuthCert: each OCSP part is a successful response saying good', `part ${n + 1}`);
      for (const m of text.matchAll(/Serial Number: ([0-9A-F]+)/gi)) serials.push(m[1]!.toUpperCase().replace(/^0+/, ''));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (clientCert) {
    const serial = new X509Certificate(clientCert).serialNumber.toUpperCase().replace(/^0+/, '');
    f.that(serials.includes(serial), 'CertHelper.verifyAuthCert: an OCSP response for the TLS client certificate is among the OCSP parts', `serial ${serial} not among ${serials.join(', ')}`);
  }
}

/** The header part as `new RestRequest(byte[])` reads it, with what the server proxy needs of it. */
function checkRestRequestPart(f: Findings, part: Buffer, requestId: string | undefined): RestHeaderPart | undefined {
  const rule = 'RestRequest(byte[]): the REST request header part';
  const lines = readLines(part);
  const [verb = '', target = ''] = lines;
  f.that(VERBS.includes(verb), `${rule}: a verb of RestRequest.Verb`, `verb ${verb}`);
  f.that(target.startsWith('/') && !target.startsWith('//'), `${rule}: a relative request URI (no scheme or authority)`, target);
  const path = target.split('?')[0]!.split('/');
  f.that(path.length >= 7 && path[1] === 'r1', `${rule}: /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/path]`, target);
  const headers = readHeaderLines(f, rule, lines.slice(2));
  const client = headerOf({ headers }, 'x-road-client');
  f.that(client !== undefined && [3, 4].includes(client.split('/').length), `${rule}: X-Road-Client decodes to a client identifier`, `X-Road-Client ${client}`);
  f.that(headerOf({ headers }, 'x-road-id'), 'RestResponse.of: x-road-id present, for the response to repeat (X_INVALID_MESSAGE)', 'no x-road-id');
  // RestRequest.decodeHeaders compares this one name case-sensitively.
  const inPart = headers.find(([n]) => n === 'x-road-request-id')?.[1];
  f.that(inPart !== undefined && inPart === requestId, 'RestRequest.decodeHeaders: x-road-request-id (exact name) equals the HTTP header x-road-request-id', `in part ${inPart}, HTTP ${requestId}`);
  return { startLine: [verb, target], headers };
}

/** The response header part as RestResponse.of reads it, and ClientRestMessageProcessor.checkConsistency. */
function checkRestResponsePart(f: Findings, part: Buffer, request: RequestFacts): RestHeaderPart {
  const rule = 'RestResponse.of: the REST response header part';
  const lines = readLines(part);
  const [status = '', reason = ''] = lines;
  f.that(/^\d{3}$/.test(status), `${rule}: a status code line`, status);
  const headers = readHeaderLines(f, rule, lines.slice(2));
  const get = (name: string) => headerOf({ headers }, name);
  const hash = get('x-road-request-hash');
  f.that(get('x-road-id') && hash, `${rule}: x-road-id and x-road-request-hash ("Invalid REST Response message")`, `x-road-id ${get('x-road-id')}, hash ${hash}`);
  const consistency = 'ClientRestMessageProcessor.checkConsistency';
  const requested = request.rest && ((name: string) => headerOf(request.rest!, name));
  if (requested && request.restHeaderPart) {
    f.that(sameId(get('x-road-client'), requested('x-road-client')), `${consistency}: x-road-client as in the request`, `${get('x-road-client')} vs ${requested('x-road-client')}`);
    f.that(get('x-road-id') === requested('x-road-id'), `${consistency}: x-road-id as in the request`, `${get('x-road-id')} vs ${requested('x-road-id')}`);
    const path = request.rest.startLine[1].split('?')[0]!.split('/').slice(2, 7).join('/');
    f.that(sameId(get('x-road-service'), path), `${consistency}: x-road-service as in the request path`, `${get('x-road-service')} vs ${path}`);
    f.that(get('x-road-request-id') === request.requestId, `${consistency}: x-road-request-id is the request's HTTP x-road-request-id`, `${get('x-road-request-id')} vs ${request.requestId}`);
    f.that(hash === restRequestHash(request.restHeaderPart, request.restBody), `${consistency}: x-road-request-hash is the hash of the request header part (and body)`, `${hash}`);
  }
  return { startLine: [status, reason], headers };
}

/** The SOAP response against its request: SoapUtils.checkConsistency and checkRequestHash. */
function checkSoapConsistency(f: Findings, request: RequestFacts, response: XroadHeader, responseSoap: Buffer): void {
  const asked = request.soapHeader;
  if (!asked || !request.soap) return;
  for (const field of ['client', 'service', 'id', 'userId', 'issue'] as const) {
    f.that(asked[field] === response[field], `SoapUtils.checkConsistency: ${field} as in the request (X_INCONSISTENT_RESPONSE)`, `${response[field]} vs ${asked[field]}`);
  }
  f.that(
    response.requestHash === createHash('sha512').update(request.soap).digest('base64'),
    'ClientMessageProcessor.checkRequestHash: xrd:requestHash is the SHA-512 of the request SOAP part (X_INCONSISTENT_RESPONSE)',
    `requestHash ${response.requestHash ?? '(none)'}`,
  );
  f.that(responseSoap.length > 0, 'ClientMessageProcessor.checkResponse: a SOAP message', 'empty');
}

/** The required X-Road header fields (SaxSoapParserImpl.validateHeader). */
function checkXroadHeader(f: Findings, header: XroadHeader): void {
  for (const field of ['client', 'service', 'id', 'protocolVersion'] as const) {
    f.that(header[field], `SaxSoapParserImpl.validateHeader: xrd:${field} present (X_MISSING_HEADER_FIELD)`, `no ${field}`);
  }
  f.that(header.protocolVersion === undefined || header.protocolVersion === '4.0', 'SaxSoapParserImpl: protocolVersion 4.0 (X_INVALID_PROTOCOL_VERSION)', `${header.protocolVersion}`);
}

/** pr-rest §4.3: SHA-512 of the header part, or of its SHA-512 and the body's SHA-512. */
function restRequestHash(headerPart: Buffer, body?: Buffer): string {
  const head = createHash('sha512').update(headerPart).digest();
  if (body === undefined) return head.toString('base64');
  return createHash('sha512').update(head).update(createHash('sha512').update(body).digest()).digest('base64');
}

/** BufferedReader.readLine: lines end at CR, LF or CRLF; a last line without an end still counts. */
function readLines(part: Buffer): string[] {
  const lines = part.toString('utf8').split(/\r\n|\r|\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** RestMessage.split on each header line: `name:value` split at the first colon, no skipped header, no empty line. */
function readHeaderLines(f: Findings, rule: string, lines: readonly string[]): [string, string][] {
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (!f.that(colon >= 0 && line !== '', `${rule}: every header line is name:value ("Invalid header")`, JSON.stringify(line))) continue;
    const name = line.slice(0, colon);
    f.that(!SKIPPED_HEADERS.includes(name.toLowerCase()), `${rule}: no hop-by-hop header (RestMessage.SKIPPED_HEADERS, "Invalid header")`, name);
    headers.push([name, line.slice(colon + 1)]);
  }
  return headers;
}

/** Identifiers in REST headers compare decoded, part by part (RestMessage.decodeClientId). */
function sameId(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const decode = (s: string) => s.split('/').map((p) => decodeURIComponent(p)).join('/');
  return decode(a) === decode(b);
}

/**
 * MessageProcessorBase.validateSoapActionHeader: missing, empty, `""`, or a quoted URI reference
 * (java.net.URI refuses spaces, quotes and the other characters below).
 */
function validSoapAction(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '""') return true;
  if (value.length < 3 || !value.startsWith('"') || !value.endsWith('"')) return false;
  return !/[\s"<>\\^`{|}]/.test(value.slice(1, -1));
}

interface ReadSoap {
  header?: XroadHeader;
  fault?: { code: string; string: string };
  error?: string;
}

/** A SOAP 1.1 envelope: its fault, or its X-Road header. */
function readSoap(bytes: Buffer): ReadSoap {
  const doc = parseXml(bytes);
  if (!doc.root) return { error: doc.error };
  const root = doc.root;
  if (root.namespaceURI !== SOAP_ENV || root.localName !== 'Envelope') return { error: `root element {${root.namespaceURI}}${root.localName}` };
  const body = firstChild(root, SOAP_ENV, 'Body');
  const fault = body && firstChild(body, SOAP_ENV, 'Fault');
  if (fault) return { fault: { code: textOfChild(fault, '', 'faultcode') ?? '', string: textOfChild(fault, '', 'faultstring') ?? '' } };
  const header = firstChild(root, SOAP_ENV, 'Header');
  if (!header) return { error: 'no SOAP Header' };
  const text = (name: string) => textOfChild(header, XROAD, name)?.trim();
  const id = (name: string) => {
    const e = firstChild(header, XROAD, name);
    if (!e) return undefined;
    const fields = ['xRoadInstance', 'memberClass', 'memberCode', 'subsystemCode', 'serviceCode', 'serviceVersion'].map((n) => textOfChild(e, IDS, n)?.trim()).filter((v) => v);
    return `${e.getAttributeNS(IDS, 'objectType')}:${fields.join('/')}`;
  };
  return {
    header: {
      client: id('client'),
      service: id('service'),
      id: text('id'),
      userId: text('userId'),
      issue: text('issue'),
      protocolVersion: text('protocolVersion'),
      requestHash: text('requestHash'),
    },
  };
}

function parseXml(bytes: Buffer): { root?: Element; error?: string } {
  try {
    const doc = new DOMParser().parseFromString(bytes.toString('utf8').replace(/^\uFEFF/, ''), 'text/xml');
    return doc.documentElement ? { root: doc.documentElement } : { error: 'no root element' };
  } catch (err) {
    return { error: `not XML: ${(err as Error).message.split('\n')[0]}` };
  }
}

function elements(root: Element, ns: string, localName: string): Element[] {
  return Array.from(root.getElementsByTagNameNS(ns, localName));
}

function firstChild(parent: Element, ns: string, localName: string): Element | undefined {
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    const e = n as Element;
    if (n.nodeType === 1 && e.localName === localName && (e.namespaceURI ?? '') === ns) return e;
  }
  return undefined;
}

function textOfChild(parent: Element, ns: string, localName: string): string | undefined {
  return firstChild(parent, ns, localName)?.textContent ?? undefined;
}

const baseType = (contentType: string) => contentType.split(';')[0]!.trim().toLowerCase();
/** HeaderValueUtils.hasBoundary. */
const hasBoundary = (contentType: string) => /;\s*boundary=/i.test(contentType);
