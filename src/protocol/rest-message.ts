/**
 * X-Road REST messages (pr-rest): how an information system's HTTP request becomes the signed
 * header part (`/message.xml`) and back, and how the provider's HTTP response becomes its header
 * part with the request hash. Hop-by-hop headers and those naming the local hop (Host, User-Agent,
 * Server, Content-Length, Expect) are not part of the message; everything else — Authorization,
 * X-Road-Represented-Party, the service's own headers — travels and is signed as it came.
 */
import { createHash, randomUUID } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { parseClientId, type ClientId } from './identifiers.ts';
import { restRequestHeaderPart, restResponseHeaderPart } from './message-header.ts';
import type { ServiceId } from './soap-message.ts';

export type HeaderList = readonly (readonly [string, string])[];

/** Headers that belong to one HTTP hop or are set by whoever sends the next hop. */
const NOT_FORWARDED = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade',
  'host', 'user-agent', 'server', 'content-length', 'expect',
  'x-road-request-id', 'x-road-request-hash',
]);

/** The end-to-end headers; `keep` names X-Road headers that belong to this hop after all. */
export function forwardableHeaders(headers: HeaderList, keep: readonly string[] = []): [string, string][] {
  const named = new Set(headers.filter(([n]) => n.toLowerCase() === 'connection').flatMap(([, v]) => v.split(',').map((x) => x.trim().toLowerCase())));
  const drop = (n: string) => (NOT_FORWARDED.has(n) && !keep.includes(n)) || named.has(n);
  return headers.filter(([n]) => !drop(n.toLowerCase())).map(([n, v]) => [n, v]);
}

/** Node's rawHeaders (`[name, value, name, value, …]`) as pairs, repeated headers kept in order. */
export function headerPairs(raw: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}

export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** `INST/CLASS/MEMBER/SUBSYS` with each part percent-encoded (pr-rest). */
export const encodeIdHeader = (parts: readonly (string | undefined)[]): string =>
  parts.filter((p): p is string => p !== undefined).map(encodeURIComponent).join('/');

function decodeIdHeader(value: string, what: string): string {
  try {
    return value.split('/').map(decodeURIComponent).join('/');
  } catch {
    throw new XrdError('InvalidClientIdentifier', { reason: `${what} is not correctly percent-encoded: ${value}` });
  }
}

export interface RestRequest {
  readonly method: string;
  readonly client: ClientId;
  readonly service: ServiceId;
  /** What follows the service code: `/path?query` (may be empty). */
  readonly servicePath: string;
  readonly queryId: string;
  /** The requesting side's id of this exchange, used to pair request and response. */
  readonly requestId: string;
  readonly representedParty?: string;
  readonly userId?: string;
  /** The header part `/message.xml`. */
  readonly headerPart: Buffer;
  /** Headers in the header part, in order. */
  readonly headers: HeaderList;
}

/**
 * Reads an information system's REST call.
 * @throws InvalidRequest (path not /r1/…), MissingHeaderField (no X-Road-Client), InvalidClientIdentifier
 */
export function readRestRequest(method: string, pathAndQuery: string, received: HeaderList): RestRequest {
  const [path = '', query] = splitQuery(pathAndQuery);
  const segments = path.split('/');
  if (segments[1] !== 'r1' || segments.length < 7 || segments.slice(2, 7).some((s) => s === '')) {
    throw new XrdError('InvalidRequest', { reason: `Invalid REST path ${path}: expected /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE[/path]` });
  }
  // `.` and `..` (also percent-encoded) would climb out of the service's URL on the provider's
  // host, past the access rights given for this one service.
  if (segments.slice(2).some((s) => /^(\.|%2e){1,2}$/i.test(s))) {
    throw new XrdError('InvalidRequest', { reason: `Invalid REST path ${path}: dot segments are not allowed` });
  }
  const decoded = segments.slice(2, 7).map((s) => decodeIdHeader(s, 'service path'));
  const provider = { instance: decoded[0]!, memberClass: decoded[1]!, memberCode: decoded[2]!, subsystem: decoded[3]! };
  const clientHeader = headerValue(received, 'x-road-client');
  if (!clientHeader) throw new XrdError('MissingHeaderField', { field: 'X-Road-Client' });
  const client = parseClientIdHeader(clientHeader);
  const queryId = headerValue(received, 'x-road-id') ?? randomUUID();
  const requestId = randomUUID();
  const headers = [
    ...forwardableHeaders(received).filter(([n]) => n.toLowerCase() !== 'x-road-id'),
    ['x-road-id', queryId] as [string, string],
    ['x-road-request-id', requestId] as [string, string],
  ];
  const rest = segments.slice(7).join('/');
  return {
    method,
    client,
    service: { provider, serviceCode: decoded[4]! },
    servicePath: (rest ? `/${rest}` : '') + (query !== undefined ? `?${query}` : ''),
    queryId,
    requestId,
    representedParty: headerValue(received, 'x-road-represented-party'),
    userId: headerValue(received, 'x-road-userid'),
    headerPart: restRequestHeaderPart(method, pathAndQuery, headers),
    headers,
  };
}

function parseClientIdHeader(value: string): ClientId {
  try {
    return parseClientId(decodeIdHeader(value, 'X-Road-Client'));
  } catch (err) {
    if (err instanceof XrdError && err.code === 'InvalidClientIdentifier') throw err;
    throw new XrdError('InvalidClientIdentifier', { reason: `X-Road-Client must be INSTANCE/CLASS/MEMBER/SUBSYSTEM, not ${value}` });
  }
}

/** Reads a header part back (server proxy: the request; client proxy: the response). */
export function parseRestHeaderPart(part: Buffer): { startLine: [string, string]; headers: [string, string][] } {
  const lines = part.toString('utf8').split('\r\n');
  if (lines.length < 3) throw new XrdError('InvalidRequest', { reason: 'REST header part is truncated' });
  const headers: [string, string][] = [];
  for (const line of lines.slice(2)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new XrdError('InvalidRequest', { reason: `REST header part has a malformed header line` });
    headers.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return { startLine: [lines[0]!, lines[1]!], headers };
}

/**
 * The provider's response as its header part: status and reason, the service's forwardable
 * headers, then the X-Road ones, ending with the hash of the request this answers
 * (`restRequestHash`).
 */
export function restResponseParts(
  request: { headerPart: Buffer; body?: Buffer; client: ClientId; service: ServiceId; queryId: string; requestId: string },
  status: number,
  reason: string,
  serviceHeaders: HeaderList,
): { headerPart: Buffer; headers: HeaderList; requestHash: string } {
  const requestHash = restRequestHash(request.headerPart, request.body);
  const xroad = new Set(['x-road-id', 'x-road-client', 'x-road-service', 'x-road-request-id', 'x-road-request-hash']);
  const p = request.service.provider;
  const headers: [string, string][] = [
    ...forwardableHeaders(serviceHeaders).filter(([n]) => !xroad.has(n.toLowerCase())),
    ['x-road-id', request.queryId],
    ['x-road-client', encodeIdHeader([request.client.instance, request.client.memberClass, request.client.memberCode, request.client.subsystem])],
    ['x-road-service', encodeIdHeader([p.instance, p.memberClass, p.memberCode, p.subsystem, request.service.serviceCode])],
    ['x-road-request-id', request.requestId],
    ['x-road-request-hash', requestHash],
  ];
  return { headerPart: restResponseHeaderPart(status, reason, headers), headers, requestHash };
}

/** pr-rest §4.3: over the header part alone when the request had no body. */
export function restRequestHash(headerPart: Buffer, body?: Buffer): string {
  const sha512 = (b: Buffer) => createHash('sha512').update(b).digest();
  return (body === undefined || body.length === 0 ? sha512(headerPart) : sha512(Buffer.concat([sha512(headerPart), sha512(body)]))).toString('base64');
}

function splitQuery(pathAndQuery: string): [string, string | undefined] {
  const q = pathAndQuery.indexOf('?');
  return q < 0 ? [pathAndQuery, undefined] : [pathAndQuery.slice(0, q), pathAndQuery.slice(q + 1)];
}
