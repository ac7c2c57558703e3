/**
 * X-Road REST messages (pr-rest; the reference's RestRequest and RestResponse): how an information
 * system's HTTP request becomes the signed header part (`/message.xml`) and back, and how the
 * provider's HTTP response becomes its header part with the request hash. Hop-by-hop headers and
 * those naming the local hop (Host, User-Agent, Server, Content-Length, Expect) are not part of the
 * message, and a header part that holds one is refused; everything else — Authorization,
 * X-Road-Represented-Party, the service's own headers — travels and is signed as it came.
 * Identifiers in headers and paths are percent-encoded part by part, and compared decoded.
 */
import { createHash, randomUUID } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import type { Body } from '../platform/spool.ts';
import { parseClientId, parseSecurityServerId, type ClientId, type SecurityServerId } from './identifiers.ts';
import type { ServiceId } from './soap-message.ts';

export type HeaderList = readonly (readonly [string, string])[];

/** Headers that belong to one HTTP hop or are set by whoever sends the next hop (RestMessage.SKIPPED_HEADERS). */
const HOP_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'host', 'user-agent', 'server', 'content-length', 'expect',
]);

/** The verbs pr-rest allows (RestRequest.Verb). */
const VERBS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

/** The end-to-end headers: hop-by-hop ones, those `Connection` names, and `also` (lower case) left out. */
export function forwardableHeaders(headers: HeaderList, also: readonly string[] = []): [string, string][] {
  const named = new Set(headers.filter(([n]) => n.toLowerCase() === 'connection').flatMap(([, v]) => v.split(',').map((x) => x.trim().toLowerCase())));
  const drop = (n: string) => HOP_HEADERS.has(n) || named.has(n) || also.includes(n);
  return headers.filter(([n]) => !drop(n.toLowerCase())).map(([n, v]) => [n, v]);
}

/** Node's rawHeaders (`[name, value, name, value, …]`) as pairs, repeated headers kept in order. */
export function headerPairs(raw: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}

/**
 * X-Road headers are read once each: a second `X-Road-Client` (or any other `X-Road-*`) would be
 * read as the first by us and as the last by the reference and by most frameworks, so that the
 * signature, the access check and the provider's application could each see another client.
 * @throws DuplicateHeaderField
 */
function refuseRepeatedXRoadHeaders(headers: HeaderList): void {
  const seen = new Set<string>();
  for (const [name] of headers) {
    const lower = name.toLowerCase();
    if (!lower.startsWith('x-road-')) continue;
    if (seen.has(lower)) throw new XrdError('DuplicateHeaderField', { where: 'REST message', field: name });
    seen.add(lower);
  }
}

/** The identity headers the server proxy sets from the verified message for the provider's service. */
const IDENTITY_HEADERS = ['x-road-client', 'x-road-service', 'x-road-id', 'x-road-request-id', 'x-road-request-hash'];

/**
 * The headers the provider's service gets: the request's end-to-end headers with the X-Road
 * identity headers as the verified message says, not as anyone wrote them — a client's own
 * `X-Road-Service`, say, never reaches the service.
 */
export function serviceRequestHeaders(request: RestRequest): [string, string][] {
  return [
    ...forwardableHeaders(request.headers, IDENTITY_HEADERS),
    ['x-road-client', encodeClientId(request.client)],
    ['x-road-service', encodeServiceId(request.service)],
    ['x-road-id', request.queryId],
    ['x-road-request-id', request.requestId],
  ];
}

export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** `INST/CLASS/MEMBER/SUBSYS` with each part percent-encoded (pr-rest). */
export const encodeIdHeader = (parts: readonly (string | undefined)[]): string =>
  parts.filter((p): p is string => p !== undefined).map(encodeURIComponent).join('/');

export const encodeClientId = (c: ClientId): string => encodeIdHeader([c.instance, c.memberClass, c.memberCode, c.subsystem]);
export const encodeServiceId = (s: ServiceId): string =>
  encodeIdHeader([s.provider.instance, s.provider.memberClass, s.provider.memberCode, s.provider.subsystem, s.serviceCode, s.serviceVersion]);

function decodeParts(value: string, what: string): string[] {
  try {
    return value.split('/').map(decodeURIComponent);
  } catch {
    throw new XrdError('InvalidClientIdentifier', { reason: `${what} is not correctly percent-encoded: ${value}` });
  }
}

/** @throws InvalidClientIdentifier */
const clientIdOf = (value: string, what: string): ClientId => clientIdOfParts(decodeParts(value, what), what, value);

/** A decoded part holding `/` makes too many parts: refused, never read as another identifier. */
function clientIdOfParts(parts: readonly string[], what: string, value: string): ClientId {
  try {
    return parseClientId(parts.join('/'));
  } catch (err) {
    throw new XrdError('InvalidClientIdentifier', { reason: `${what} must be INSTANCE/CLASS/MEMBER[/SUBSYSTEM], not ${value}` }, { cause: err });
  }
}

/** @throws InvalidClientIdentifier */
function serviceIdOf(value: string, what: string): ServiceId {
  const parts = decodeParts(value, what);
  if (parts.length !== 5 && parts.length !== 6) throw new XrdError('InvalidClientIdentifier', { reason: `${what} must be INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE, not ${value}` });
  const provider = clientIdOfParts(parts.slice(0, 4), what, value);
  return { provider, serviceCode: parts[4]!, ...(parts[5] !== undefined ? { serviceVersion: parts[5] } : {}) };
}

/** @throws InvalidClientIdentifier */
function serverIdOf(value: string): SecurityServerId {
  try {
    return parseSecurityServerId(decodeParts(value, 'X-Road-Security-Server').join('/'));
  } catch (err) {
    throw new XrdError('InvalidClientIdentifier', { reason: `X-Road-Security-Server must be INSTANCE/CLASS/MEMBER/SERVERCODE, not ${value}` }, { cause: err });
  }
}

export interface RestRequest {
  readonly method: string;
  readonly client: ClientId;
  readonly service: ServiceId;
  /** What follows the service code: `/path?query` (may be empty). */
  readonly servicePath: string;
  readonly queryId: string;
  /** The client proxy's id of this exchange (`x-road-request-id`), which pairs request and response. */
  readonly requestId: string;
  /** `[CLASS/]CODE`, decoded. */
  readonly representedParty?: string;
  readonly userId?: string;
  readonly issue?: string;
  /** `X-Road-Security-Server`: the one server of a clustered provider the request is meant for. */
  readonly securityServer?: SecurityServerId;
  /** The header part `/message.xml`. */
  readonly headerPart: Buffer;
  /** Headers in the header part, in order. */
  readonly headers: HeaderList;
}

/**
 * An information system's REST call as the client proxy signs it (ClientRestMessageProcessor): its
 * end-to-end headers in the order sent, then `x-road-request-id`, then `x-road-id` when the
 * information system gave none (the reference's form: `<own instance>-<UUID>`).
 * @throws InvalidRequest (path not /r1/…), MissingHeaderField (no X-Road-Client), InvalidClientIdentifier
 */
export function readRestRequest(method: string, pathAndQuery: string, received: HeaderList, ids: { requestId?: string; newQueryId?: () => string } = {}): RestRequest {
  const requestId = ids.requestId ?? randomUUID();
  // The service is named by the path alone: an X-Road-Service of the information system's own is not part of the request.
  const headers: [string, string][] = [...forwardableHeaders(received, ['x-road-request-id', 'x-road-request-hash', 'x-road-service']), ['x-road-request-id', requestId]];
  if (headerValue(received, 'x-road-id') === undefined) headers.push(['x-road-id', (ids.newQueryId ?? randomUUID)()]);
  if (!headerValue(received, 'x-road-client')) throw new XrdError('MissingHeaderField', { field: 'X-Road-Client' });
  return restRequestOf(method, pathAndQuery, headers, restRequestHeaderPart(method, pathAndQuery, headers));
}

/**
 * The header part of a REST request from another security server, read as the reference's server
 * proxy reads it.
 * @throws InvalidMessage (not a header part: unknown verb, absolute URI, hop-by-hop header),
 *   InvalidRequest (path), MissingHeaderField, InvalidClientIdentifier
 */
export function parseRestRequestPart(part: Buffer): RestRequest {
  const { startLine, headers } = parseRestHeaderPart(part);
  const [method, pathAndQuery] = startLine;
  if (!VERBS.has(method)) throw new XrdError('InvalidMessage', { reason: `REST header part names an unknown method ${method}` });
  if (!pathAndQuery.startsWith('/')) throw new XrdError('InvalidMessage', { reason: 'REST header part must name a path, not an absolute URI' });
  if (!headerValue(headers, 'x-road-client')) throw new XrdError('MissingHeaderField', { field: 'X-Road-Client' });
  if (!headerValue(headers, 'x-road-id')) throw new XrdError('MissingHeaderField', { field: 'X-Road-Id' });
  return restRequestOf(method, pathAndQuery, headers, part);
}

function restRequestOf(method: string, pathAndQuery: string, headers: HeaderList, headerPart: Buffer): RestRequest {
  refuseRepeatedXRoadHeaders(headers);
  const [path = '', query] = splitQuery(pathAndQuery);
  const segments = path.split('/');
  if (segments[1] !== 'r1' || segments.length < 7 || segments.slice(2, 7).some((s) => s === '')) {
    throw new XrdError('InvalidRequest', { reason: `Invalid REST path ${path}: expected /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE[/path]` });
  }
  const problem = pathProblem(segments.slice(2));
  if (problem) throw new XrdError('InvalidRequest', { reason: `Invalid REST path ${path}: ${problem}` });
  const service = serviceIdOf(segments.slice(2, 7).join('/'), 'service path');
  const client = clientIdOf(headerValue(headers, 'x-road-client')!, 'X-Road-Client');
  const represented = headerValue(headers, 'x-road-represented-party');
  const server = headerValue(headers, 'x-road-security-server');
  const rest = segments.slice(7).join('/');
  return {
    method,
    client,
    service,
    // As the reference (RestRequest: split("/", 8)): a trailing slash after the service code is kept.
    servicePath: (segments.length > 7 ? `/${rest}` : '') + (query !== undefined ? `?${query}` : ''),
    queryId: headerValue(headers, 'x-road-id')!,
    requestId: headerValue(headers, 'x-road-request-id') ?? '',
    ...(represented !== undefined ? { representedParty: decodeParts(represented, 'X-Road-Represented-Party').join('/') } : {}),
    ...(headerValue(headers, 'x-road-userid') !== undefined ? { userId: headerValue(headers, 'x-road-userid') } : {}),
    ...(headerValue(headers, 'x-road-issue') !== undefined ? { issue: headerValue(headers, 'x-road-issue') } : {}),
    ...(server !== undefined ? { securityServer: serverIdOf(server) } : {}),
    headerPart,
    headers,
  };
}

/**
 * Reads a header part back: the start line (method and path, or status and reason) and the
 * `name:value` lines, values as written.
 * @throws InvalidMessage when it is not a header part, or names a hop-by-hop header
 */
export function parseRestHeaderPart(part: Buffer): { startLine: [string, string]; headers: [string, string][] } {
  const lines = part.toString('utf8').split('\r\n');
  if (lines.length < 3) throw new XrdError('InvalidMessage', { reason: 'REST header part is truncated' });
  const headers: [string, string][] = [];
  for (const line of lines.slice(2)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new XrdError('InvalidMessage', { reason: 'REST header part has a malformed header line' });
    const name = line.slice(0, colon);
    if (HOP_HEADERS.has(name.toLowerCase())) throw new XrdError('InvalidMessage', { reason: `REST header part holds the hop-by-hop header ${name}` });
    headers.push([name, line.slice(colon + 1)]);
  }
  return { startLine: [lines[0]!, lines[1]!], headers };
}

/** A REST response's header part as the client proxy checks it (RestResponse.of). */
export interface RestResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  readonly queryId: string;
  readonly requestHash: Buffer;
  readonly client: ClientId | undefined;
  readonly service: ServiceId | undefined;
  readonly requestId: string | undefined;
}

/** @throws InvalidMessage (not a response header part, no x-road-id or request hash), InvalidClientIdentifier */
export function parseRestResponsePart(part: Buffer): RestResponse {
  const { startLine, headers } = parseRestHeaderPart(part);
  refuseRepeatedXRoadHeaders(headers);
  const status = Number(startLine[0]);
  if (!/^[1-9]\d\d$/.test(startLine[0])) throw new XrdError('InvalidMessage', { reason: `REST response header part has no status (${startLine[0]})` });
  const queryId = headerValue(headers, 'x-road-id');
  const hash = headerValue(headers, 'x-road-request-hash');
  if (!queryId || !hash) throw new XrdError('InvalidMessage', { reason: 'Invalid REST Response message: no x-road-id or x-road-request-hash' });
  const client = headerValue(headers, 'x-road-client');
  const service = headerValue(headers, 'x-road-service');
  return {
    status,
    reason: startLine[1],
    headers,
    queryId,
    requestHash: Buffer.from(hash, 'base64'),
    client: client === undefined ? undefined : clientIdOf(client, 'x-road-client'),
    service: service === undefined ? undefined : serviceIdOf(service, 'x-road-service'),
    requestId: headerValue(headers, 'x-road-request-id'),
  };
}

/**
 * The provider's response as its header part (RestResponse): status and reason, the service's
 * forwardable headers, then the X-Road ones, ending with the hash of the request this answers.
 */
export function restResponseParts(
  request: { headerPart: Buffer; body?: Buffer | Body; client: ClientId; service: ServiceId; queryId: string; requestId: string },
  status: number,
  reason: string,
  serviceHeaders: HeaderList,
): { headerPart: Buffer; headers: HeaderList; requestHash: string } {
  const requestHash = restRequestHash(request.headerPart, request.body).toString('base64');
  const xroad = ['x-road-id', 'x-road-client', 'x-road-service', 'x-road-request-id', 'x-road-request-hash'];
  const headers: [string, string][] = [
    ...forwardableHeaders(serviceHeaders, xroad),
    ['x-road-id', request.queryId],
    ['x-road-client', encodeClientId(request.client)],
    ['x-road-service', encodeServiceId(request.service)],
    ['x-road-request-id', request.requestId],
    ['x-road-request-hash', requestHash],
  ];
  return { headerPart: restResponseHeaderPart(status, reason, headers), headers, requestHash };
}

/**
 * pr-rest §4.3: SHA-512 of the header part when the request has no body part, else SHA-512 over
 * the SHA-512 of the header part and the SHA-512 of the body (even an empty one).
 */
export function restRequestHash(headerPart: Buffer, body?: Buffer | Body): Buffer {
  const head = createHash('sha512').update(headerPart).digest();
  if (body === undefined) return head;
  const bodyDigest = Buffer.isBuffer(body) ? createHash('sha512').update(body).digest() : body.digest('sha512');
  return createHash('sha512').update(head).update(bodyDigest).digest();
}

/**
 * What the reference's client proxy refuses in a path (Jetty 12's UriCompliance.DEFAULT, i.e.
 * RFC 3986 without ambiguities, with only AMBIGUOUS_PATH_SEPARATOR allowed: an encoded `/` passes
 * as it came), for the same reason: a path the provider's server could read as another one. A dot
 * segment (plain, encoded, or with a `;` parameter) would climb out of the service's URL, past the
 * access rights given for this one service; `%25` would be decoded again by someone; an encoded
 * `\` or control character, or a byte sequence that is not UTF-8, is read differently by different
 * servers; an empty segment inside the path is merged away by some of them.
 */
function pathProblem(segments: readonly string[]): string | undefined {
  for (const [i, raw] of segments.entries()) {
    if (raw === '' && i < segments.length - 1) return 'empty segments are not allowed';
    if (/%25/.test(raw)) return 'an encoded % (double encoding) is not allowed';
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      return 'it is not percent-encoded UTF-8';
    }
    if (/[\\\u0000-\u001f\u007f]/.test(decoded)) return 'backslashes and control characters are not allowed';
    if (/^\.{1,2}$/.test(decoded.split(';')[0]!)) return 'dot segments are not allowed';
  }
  return undefined;
}

function splitQuery(pathAndQuery: string): [string, string | undefined] {
  const q = pathAndQuery.indexOf('?');
  return q < 0 ? [pathAndQuery, undefined] : [pathAndQuery.slice(0, q), pathAndQuery.slice(q + 1)];
}

/**
 * The `/message.xml` a REST request is signed as (pr-rest): `VERB\r\npath?query\r\n`, then each
 * header as `name:value\r\n`, in the order given.
 */
export function restRequestHeaderPart(method: string, pathAndQuery: string, headers: HeaderList): Buffer {
  return Buffer.from(`${method}\r\n${pathAndQuery}\r\n${headerLines(headers)}`, 'utf8');
}

/** The `/message.xml` of a REST response: `status\r\nreason\r\n`, then the headers. */
export function restResponseHeaderPart(status: number, reason: string, headers: HeaderList): Buffer {
  return Buffer.from(`${status}\r\n${reason}\r\n${headerLines(headers)}`, 'utf8');
}

const headerLines = (headers: HeaderList) => headers.map(([n, v]) => `${n}:${v}\r\n`).join('');
