/**
 * The X-Road SOAP header as the proxies check it (MESS_04, pr-mess): client, service, id and
 * protocolVersion are required, each at most once; userId and issue are optional; the
 * representation extension of seed 004 (repr:representedParty) is read for monitoring; it and the
 * security-token extension (extsec:securityToken) otherwise travel untouched in the message bytes. A response must repeat the request's header (the reference's
 * "InconsistentResponse" check).
 */
import { createHash } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { XmlError, XmlLimitError, child, childElements, parseXml, textOf, type XmlElement, type XmlParseOptions } from '../xml/xml-tree.ts';
import { formatClientId, identifierPartProblem, sameClientId, type ClientId, type SecurityServerId } from './identifiers.ts';
import { IDENTIFIERS_NS, SOAP_ENV_NS, XROAD_NS } from './namespaces.ts';

export const REPRESENTATION_NS = 'http://x-road.eu/xsd/representation.xsd';

/**
 * How a whole SOAP message is parsed where only its envelope matters: the Header, the Body's child
 * elements and a SOAP Fault are kept; what the Body's payload element holds (any size, up to the
 * SOAP part's limit) is checked but not kept, so the tree stays a few hundred nodes. A message
 * whose kept part is over `maxNodes` is a flood (a header or body of countless elements), not
 * X-Road. docs/security.md "Parser bounds".
 */
export const SOAP_ENVELOPE: XmlParseOptions = {
  limits: { maxNodes: 100_000 },
  skipContent: (element, depth) =>
    depth === 3 && element.parent!.namespace === SOAP_ENV_NS && element.parent!.localName === 'Body' && !(element.namespace === SOAP_ENV_NS && element.localName === 'Fault'),
};

export interface ServiceId {
  readonly provider: ClientId;
  readonly serviceCode: string;
  readonly serviceVersion?: string;
}

export interface SoapHeader {
  readonly client: ClientId;
  readonly service: ServiceId;
  readonly id: string;
  readonly userId?: string;
  readonly issue?: string;
  readonly protocolVersion: string;
  /** A response's `xrd:requestHash`: base64 SHA-512 of the request as the client's server sent it. */
  readonly requestHash?: string;
  /** `CLASS/CODE` (or `CODE`) of repr:representedParty. */
  readonly representedParty?: string;
  /** `xrd:securityServer`: the one server of a clustered provider the request is meant for. */
  readonly securityServer?: SecurityServerId;
}

/** In the order the reference's parser checks them (SaxSoapParserImpl.validateHeader). */
const REQUIRED = ['protocolVersion', 'client', 'id', 'service'] as const;
const SINGLE = ['client', 'service', 'id', 'userId', 'issue', 'protocolVersion', 'requestHash', 'securityServer'] as const;

/**
 * Reads and checks the X-Road header as the reference's SOAP parser (SaxSoapParserImpl) does, with
 * its codes: the envelope, its Header (MissingHeader) and Body (MissingBody), each header field at
 * most once, the required ones present, the protocol version, and a Body of exactly one element
 * (InvalidBody) whose name starts with the service code (InconsistentHeaders).
 * @throws InvalidSoap, MissingHeader, MissingBody, InvalidBody, InconsistentHeaders,
 *   MissingHeaderField, DuplicateHeaderField, InvalidProtocolVersion, InvalidXml, InvalidClientIdentifier
 */
export function parseSoapHeader(message: Buffer | string): SoapHeader {
  return headerOf(parseEnvelope(message));
}

/** parseSoapHeader's checks on an envelope already parsed (soap-parsed.ts). */
export function headerOf(envelope: XmlElement): SoapHeader {
  if (envelope.namespace !== SOAP_ENV_NS || envelope.localName !== 'Envelope') {
    throw new XrdError('InvalidSoap', { reason: 'envelope missing: the root element is not a SOAP 1.1 Envelope' });
  }
  const elements = childElements(envelope);
  const header = child(envelope, SOAP_ENV_NS, 'Header');
  const body = child(envelope, SOAP_ENV_NS, 'Body');
  if (!header) throw new XrdError('MissingHeader');

  const fields = childElements(header).filter((e) => e.namespace === XROAD_NS);
  for (const name of SINGLE) {
    if (fields.filter((e) => e.localName === name).length > 1) throw new XrdError('DuplicateHeaderField', { where: 'SOAP header', field: name });
  }
  for (const name of REQUIRED) {
    if (!fields.some((e) => e.localName === name)) throw new XrdError('MissingHeaderField', { field: name });
  }
  const field = (name: string) => fields.find((e) => e.localName === name);
  const text = (name: string) => {
    const e = field(name);
    return e ? textOf(e).trim() : undefined;
  };
  const protocolVersion = text('protocolVersion')!;
  if (protocolVersion !== '4.0') throw new XrdError('InvalidProtocolVersion', { version: protocolVersion });
  const id = text('id')!;
  if (id === '') throw new XrdError('MissingHeaderField', { field: 'id' });

  if (!body) throw new XrdError('MissingBody');
  if (elements.length !== 2 || elements[0] !== header) throw new XrdError('InvalidSoap', { reason: 'the envelope must hold exactly a Header followed by a Body' });
  const bodyElements = childElements(body);
  if (bodyElements.length !== 1) throw new XrdError('InvalidBody');
  const client = identifier(field('client')!, ['MEMBER', 'SUBSYSTEM'], 'client');
  const { serviceCode, serviceVersion, ...provider } = identifier(field('service')!, ['SERVICE'], 'service');
  if (!serviceCode) throw new XrdError('InvalidClientIdentifier', { reason: 'service identifier has no serviceCode' });
  if (!bodyElements[0]!.localName.startsWith(serviceCode)) throw new XrdError('InconsistentHeaders', { reason: 'service code does not match in header and body' });

  const serverElement = field('securityServer');
  const securityServer = serverElement && securityServerIdentifier(serverElement);
  const representations = childElements(header).filter((e) => e.namespace === REPRESENTATION_NS && e.localName === 'representedParty');
  if (representations.length > 1) throw new XrdError('DuplicateHeaderField', { where: 'SOAP header', field: 'representedParty' });
  const party = representations[0] && partsOf(representations[0], REPRESENTATION_NS, ['partyClass', 'partyCode'], 'representedParty');
  const partyClass = party?.get('partyClass');
  const partyCode = party?.get('partyCode');
  if (party && !partyCode) throw new XrdError('MissingHeaderField', { field: 'representedParty/partyCode' });
  return {
    client,
    service: { provider, serviceCode, serviceVersion },
    id,
    userId: text('userId'),
    issue: text('issue'),
    protocolVersion,
    requestHash: text('requestHash'),
    representedParty: partyCode ? [partyClass, partyCode].filter(Boolean).join('/') : undefined,
    ...(securityServer ? { securityServer } : {}),
  };
}

/**
 * The parts of an identifier element, read strictly so that every reader sees the same identity:
 * only the expected children, each once, in the identifiers namespace, holding text alone (no
 * elements, comments or processing instructions), trimmed of XML whitespace only, and each a valid
 * identifier part. A message a data-binding library would read differently from us is refused.
 * @throws InvalidClientIdentifier naming what is wrong
 */
function partsOf(element: XmlElement, ns: string, allowed: readonly string[], what: string): Map<string, string> {
  const bad = (reason: string) => new XrdError('InvalidClientIdentifier', { reason: `${what}: ${reason}` });
  const parts = new Map<string, string>();
  for (const node of element.children) {
    if (node.kind === 'text') {
      if (!isXmlWhitespace(node.value)) throw bad('text outside the identifier parts');
      continue;
    }
    if (node.kind !== 'element') throw bad(`a ${node.kind === 'comment' ? 'comment' : 'processing instruction'} between the identifier parts`);
    if (node.namespace !== ns || !allowed.includes(node.localName)) throw bad(`unexpected element ${node.name}${node.namespace !== ns ? ` in namespace '${node.namespace}'` : ''}`);
    if (parts.has(node.localName)) throw bad(`${node.localName} appears twice`);
    if (node.children.some((c) => c.kind !== 'text')) throw bad(`${node.localName} holds markup, not only text`);
    const value = trimXmlWhitespace(textOf(node));
    const problem = identifierPartProblem(value);
    if (problem) throw bad(`${node.localName} ${problem}`);
    parts.set(node.localName, value);
  }
  return parts;
}

const XML_WHITESPACE = /^[ \t\r\n]*$/;
const isXmlWhitespace = (text: string) => XML_WHITESPACE.test(text);
/** Only XML's whitespace (space, tab, CR, LF): a no-break or other Unicode space is part of the value, and refused there. */
const trimXmlWhitespace = (text: string) => text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');

/**
 * The envelope with its payload checked but not kept (SOAP_ENVELOPE). Not XML, or over a parser
 * bound, is the reference's InvalidSoap; a bound names itself in `limit`.
 * @throws InvalidSoap
 */
export function parseEnvelope(message: Buffer | string): XmlElement {
  try {
    return parseXml(message, SOAP_ENVELOPE);
  } catch (err) {
    throw new XrdError('InvalidSoap', { reason: (err as XmlError).message, limit: err instanceof XmlLimitError ? err.limit : undefined }, { cause: err });
  }
}

function securityServerIdentifier(element: XmlElement): SecurityServerId {
  if (objectTypeOf(element, 'securityServer') !== 'SERVER') throw new XrdError('InvalidXml', { reason: 'Unexpected objectType of securityServer' });
  const p = partsOf(element, IDENTIFIERS_NS, ['xRoadInstance', 'memberClass', 'memberCode', 'serverCode'], 'securityServer');
  const [instance, memberClass, memberCode, serverCode] = ['xRoadInstance', 'memberClass', 'memberCode', 'serverCode'].map((n) => p.get(n));
  if (!instance || !memberClass || !memberCode || !serverCode) throw new XrdError('InvalidClientIdentifier', { reason: 'securityServer identifier is incomplete' });
  return { instance, memberClass, memberCode, serverCode };
}

const OBJECT_TYPES = ['MEMBER', 'SUBSYSTEM', 'SERVICE', 'SERVER', 'GLOBALGROUP', 'LOCALGROUP', 'CENTRALSERVICE'];

/** The identifier's objectType attribute (InvalidXml when missing or unknown, as the reference's parser). */
function objectTypeOf(element: XmlElement, what: string): string {
  const typeAttr = element.attributes.find((a) => a.localName === 'objectType' && a.namespace === IDENTIFIERS_NS)?.value;
  if (!typeAttr) throw new XrdError('InvalidXml', { reason: `Missing objectType attribute of ${what}` });
  if (!OBJECT_TYPES.includes(typeAttr)) throw new XrdError('InvalidXml', { reason: `Unknown objectType: ${typeAttr}` });
  return typeAttr;
}

const CLIENT_PARTS = ['xRoadInstance', 'memberClass', 'memberCode', 'subsystemCode'];
const SERVICE_PARTS = [...CLIENT_PARTS, 'serviceCode', 'serviceVersion'];

/**
 * A MEMBER or SUBSYSTEM identifier element outside the header (e.g. a query's `client`), read as
 * strictly as the header's. @throws InvalidXml, InvalidClientIdentifier
 */
export function clientIdOfElement(element: XmlElement, what: string): ClientId {
  const { instance, memberClass, memberCode, subsystem } = identifier(element, ['MEMBER', 'SUBSYSTEM'], what);
  return { instance, memberClass, memberCode, ...(subsystem !== undefined ? { subsystem } : {}) };
}

/** A client or service identifier; for a service, its code and version too. */
function identifier(element: XmlElement, objectTypes: readonly string[], what: string): ClientId & { serviceCode?: string; serviceVersion?: string } {
  const typeAttr = objectTypeOf(element, what);
  if (!objectTypes.includes(typeAttr)) throw new XrdError('InvalidXml', { reason: `Unexpected objectType: ${typeAttr}` });
  const p = partsOf(element, IDENTIFIERS_NS, typeAttr === 'SERVICE' ? SERVICE_PARTS : CLIENT_PARTS, what);
  const [instance, memberClass, memberCode, subsystem] = CLIENT_PARTS.map((n) => p.get(n));
  if (!instance || !memberClass || !memberCode) throw new XrdError('InvalidClientIdentifier', { reason: `${what} identifier is incomplete` });
  if (typeAttr === 'SUBSYSTEM' && !subsystem) throw new XrdError('InvalidClientIdentifier', { reason: `${what} is a SUBSYSTEM without subsystemCode` });
  if (typeAttr === 'MEMBER' && subsystem) throw new XrdError('InvalidClientIdentifier', { reason: `${what} is a MEMBER with a subsystemCode` });
  return { instance, memberClass, memberCode, ...(subsystem !== undefined ? { subsystem } : {}), ...(p.has('serviceCode') ? { serviceCode: p.get('serviceCode') } : {}), ...(p.has('serviceVersion') ? { serviceVersion: p.get('serviceVersion') } : {}) };
}

/**
 * A request carries no `xrd:requestHash`: only the provider's security server adds one, to its
 * response, and a request that held one would be read as a response wherever it is archived.
 * @throws InvalidSoap
 */
export function checkRequestHeader(header: SoapHeader): void {
  if (header.requestHash !== undefined) throw new XrdError('InvalidSoap', { reason: 'a request must not carry xrd:requestHash' });
}

export const formatServiceId = (s: ServiceId): string =>
  [formatClientId(s.provider), s.serviceCode, s.serviceVersion].filter((x) => x !== undefined).join('/');

/** As the reference's ServiceId.toString() writes it into fault strings: `SERVICE:INST/CLASS/CODE/SUB/code[/version]`. */
export const javaServiceId = (s: ServiceId): string => `SERVICE:${formatServiceId(s)}`;

/** Same provider, service code and version, compared as identifiers, never as formatted text. */
export const sameServiceId = (a: ServiceId, b: ServiceId): boolean =>
  sameClientId(a.provider, b.provider) && a.serviceCode === b.serviceCode && a.serviceVersion === b.serviceVersion;

/**
 * A service's response must carry the request's client, service, id, userId, issue and represented
 * party (the reference's SoapUtils.checkConsistency: the header fields marked @CheckConsistency).
 * @throws InconsistentResponse naming the first field that differs
 */
export function checkResponseHeader(request: SoapHeader, response: SoapHeader): void {
  const differs = (name: string, expected: string | undefined, actual: string | undefined) =>
    new XrdError('InconsistentResponse', { reason: `${name} is '${actual ?? ''}', the request's is '${expected ?? ''}'` });
  if (!sameClientId(request.client, response.client)) throw differs('client', formatClientId(request.client), formatClientId(response.client));
  if (!sameServiceId(request.service, response.service)) throw differs('service', formatServiceId(request.service), formatServiceId(response.service));
  const pairs: [string, string | undefined, string | undefined][] = [
    ['id', request.id, response.id],
    ['userId', request.userId, response.userId],
    ['issue', request.issue, response.issue],
    ['representedParty', request.representedParty, response.representedParty],
  ];
  for (const [name, expected, actual] of pairs) if (expected !== actual) throw differs(name, expected, actual);
}

const SHA512_URI = 'http://www.w3.org/2001/04/xmlenc#sha512';

export const soapRequestHash = (request: Buffer): string => createHash('sha512').update(request).digest('base64');

/**
 * The provider's response as it is signed: `xrd:requestHash` over the request inserted right after
 * `xrd:id` (any the service wrote in the header is replaced), so the client's server can tell the
 * response answers exactly what it sent (pr-mess; the reference's server proxy does the same). Only
 * the header is touched: the body is the service's.
 * @throws InvalidSoap when the response is not XML or has no xrd:id to put the hash after
 */
export function withRequestHash(response: Buffer, request: Buffer): Buffer {
  const text = response.toString('utf8');
  return insertRequestHash(text, parseEnvelope(text), request);
}

/** withRequestHash on an envelope already parsed (soap-parsed.ts). */
export function insertRequestHash(text: string, envelope: XmlElement, request: Buffer): Buffer {
  const header = child(envelope, SOAP_ENV_NS, 'Header');
  const id = header && child(header, XROAD_NS, 'id');
  const headerEnd = header ? text.indexOf(`</${header.name}>`) : -1;
  if (!header || !id || headerEnd < 0) throw new XrdError('InvalidSoap', { reason: 'the response has no SOAP header with xrd:id' });
  let head = text.slice(0, headerEnd);
  for (const name of new Set(childElements(header).filter((e) => e.namespace === XROAD_NS && e.localName === 'requestHash').map((e) => e.name))) {
    head = head.replace(new RegExp(`<${name}(\\s[^>]*)?(/>|>[^<]*</${name}>)`, 'g'), '');
  }
  const close = `</${id.name}>`;
  const at = head.indexOf(close) + close.length;
  const qualified = id.prefix ? `${id.prefix}:requestHash` : 'requestHash';
  const element = `<${qualified} algorithmId="${SHA512_URI}">${soapRequestHash(request)}</${qualified}>`;
  return Buffer.from(head.slice(0, at) + element + head.slice(at) + text.slice(headerEnd), 'utf8');
}

/**
 * The SOAPAction header as SOAP 1.1 allows it (the reference's validateSoapActionHeader): missing,
 * empty, `""`, or a quoted URI reference; it travels to the service as `x-original-soapaction`.
 * @throws InvalidSoapAction
 */
export function checkSoapAction(soapAction: string | undefined): string | undefined {
  if (soapAction === undefined || soapAction === '' || soapAction === '""') return soapAction;
  if (soapAction.length > 2 && soapAction.startsWith('"') && soapAction.endsWith('"')) {
    try {
      new URL(soapAction.slice(1, -1), 'http://relative.invalid/');
      if (!/[\s"<>\\^`{|}]/.test(soapAction.slice(1, -1))) return soapAction;
    } catch {
      // refused below
    }
  }
  throw new XrdError('InvalidSoapAction');
}
