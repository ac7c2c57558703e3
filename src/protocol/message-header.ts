/**
 * Who sent a message, read from what `/message.xml` holds: a SOAP envelope's X-Road header
 * (`xrd:client`, `xrd:service`, `xrd:id`), or a REST message's header part (request:
 * `VERB\r\npath\r\n` then `name:value\r\n` lines; response: `status\r\nreason\r\n` then lines).
 * A request is signed by its client, a response by the service's provider (MESS_11).
 */
import { XrdError } from '../platform/errors.ts';
import { XmlError, child, childElements, parseXml, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { parseClientId, type ClientId } from './identifiers.ts';

export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const XROAD_NS = 'http://x-road.eu/xsd/xroad.xsd';
export const IDENTIFIERS_NS = 'http://x-road.eu/xsd/identifiers';

export interface MessageHeader {
  readonly kind: 'soap' | 'rest';
  readonly isResponse: boolean;
  readonly client: ClientId;
  /** The service's provider subsystem (or member). */
  readonly serviceProvider: ClientId;
  readonly serviceCode: string;
  readonly queryId: string;
}

/** The member whose signature a message must carry. */
export const signerOf = (h: MessageHeader): ClientId => (h.isResponse ? h.serviceProvider : h.client);

/** @throws InvalidIdentifier when neither a SOAP nor a REST X-Road message can be read */
export function readMessageHeader(message: Buffer): MessageHeader {
  const first = message.subarray(0, 64).toString('latin1').trimStart();
  return first.startsWith('<') ? readSoapHeader(message) : readRestHeader(message);
}

function readSoapHeader(message: Buffer): MessageHeader {
  const bad = (reason: string) => new XrdError('InvalidIdentifier', { value: '/message.xml', reason });
  let envelope: XmlElement;
  try {
    envelope = parseXml(message);
  } catch (err) {
    throw new XrdError('InvalidIdentifier', { value: '/message.xml', reason: (err as XmlError).message }, { cause: err });
  }
  const header = child(envelope, SOAP_ENV_NS, 'Header');
  const body = child(envelope, SOAP_ENV_NS, 'Body');
  if (envelope.localName !== 'Envelope' || !header || !body) throw bad('not a SOAP envelope with Header and Body');
  const client = child(header, XROAD_NS, 'client');
  const service = child(header, XROAD_NS, 'service');
  if (!client || !service) throw bad('the X-Road header has no client or service');
  const id = (e: XmlElement, names: string[]) => names.map((n) => child(e, IDENTIFIERS_NS, n)).map((x) => (x ? textOf(x).trim() : undefined));
  const [ci, cc, cm, cs] = id(client, ['xRoadInstance', 'memberClass', 'memberCode', 'subsystemCode']);
  const [si, sc, sm, ss, code] = id(service, ['xRoadInstance', 'memberClass', 'memberCode', 'subsystemCode', 'serviceCode']);
  if (!ci || !cc || !cm || !si || !sc || !sm || !code) throw bad('incomplete client or service identifier');
  const bodyElement = childElements(body)[0];
  return {
    kind: 'soap',
    isResponse: bodyElement?.localName.endsWith('Response') ?? false,
    client: { instance: ci, memberClass: cc, memberCode: cm, subsystem: cs },
    serviceProvider: { instance: si, memberClass: sc, memberCode: sm, subsystem: ss },
    serviceCode: code,
    queryId: textOf(child(header, XROAD_NS, 'id') ?? header).trim(),
  };
}

function readRestHeader(message: Buffer): MessageHeader {
  const lines = message.toString('utf8').split('\r\n');
  const isResponse = /^[1-9]/.test(lines[0] ?? '');
  const headers = new Map<string, string>();
  for (const line of lines.slice(2)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const decode = (v: string | undefined) => v?.split('/').map(decodeURIComponent).join('/');
  const clientText = decode(headers.get('x-road-client'));
  if (!clientText) throw new XrdError('InvalidIdentifier', { value: '/message.xml', reason: 'REST message without X-Road-Client' });
  const client = parseClientId(clientText);
  let serviceProvider: ClientId;
  let serviceCode = '';
  const service = decode(headers.get('x-road-service'));
  if (service) {
    const parts = service.split('/');
    serviceProvider = parseClientId(parts.slice(0, 4).join('/'));
    serviceCode = parts[4] ?? '';
  } else {
    // A request names its service in the path: /r1/INST/CLASS/MEMBER/SUBSYSTEM/SERVICECODE/…
    const path = (lines[1] ?? '').split('?')[0]!.split('/').map(decodeURIComponent);
    if (isResponse || path[1] !== 'r1' || path.length < 7) throw new XrdError('InvalidIdentifier', { value: '/message.xml', reason: 'REST message does not name its service' });
    serviceProvider = parseClientId(path.slice(2, 6).join('/'));
    serviceCode = path[6]!;
  }
  return { kind: 'rest', isResponse, client, serviceProvider, serviceCode, queryId: headers.get('x-road-id') ?? '' };
}

/**
 * The `/message.xml` a REST request is signed as (pr-rest): `VERB\r\npath?query\r\n`, then each
 * header as `name:value\r\n`, in the order given.
 */
export function restRequestHeaderPart(method: string, pathAndQuery: string, headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.from(`${method}\r\n${pathAndQuery}\r\n${headers.map(([n, v]) => `${n}:${v}\r\n`).join('')}`, 'utf8');
}

/** The `/message.xml` of a REST response: `status\r\nreason\r\n`, then the headers. */
export function restResponseHeaderPart(status: number, reason: string, headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.from(`${status}\r\n${reason}\r\n${headers.map(([n, v]) => `${n}:${v}\r\n`).join('')}`, 'utf8');
}
