/**
 * The SOAP metaservices a provider's security server answers itself (pr-meta; the reference's
 * MetadataServiceHandlerImpl): a request to a provider hosted here whose service code is
 * `listMethods`, `allowedMethods` or `getWsdl` never reaches the provider's information system.
 *  - listMethods: the provider's services that come from WSDL descriptions;
 *  - allowedMethods: of those, the ones the calling client may use (access rights, not the
 *    disabled state);
 *  - getWsdl: the WSDL of the service named in the body (`xroad:serviceCode`, optional
 *    `xroad:serviceVersion`), fetched from its description URL, its soap:address locations
 *    replaced, as the second part of a multipart answer.
 * Answers are X-Road responses to the request: its header (the server proxy adds requestHash and
 * signs them like any response) and a body of the reference's elements.
 */
import { randomUUID } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { TEXT_XML_UTF8, escapeXml } from '../protocol/faults.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import { IDENTIFIERS_NS, SOAP_ENV_NS, XROAD_NS } from '../protocol/namespaces.ts';
import { randomLetters } from '../protocol/proxy-message.ts';
import { javaServiceId, type SoapHeader, type ServiceId } from '../protocol/soap-message.ts';
import { allowedServicesByDescriptionType, findService, servicesByDescriptionType, type ServerConf, type ResolvedService } from '../serverconf/server-conf.ts';
import { canonicalize } from '../xml/c14n.ts';
import { child, childElements, parseXml, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { overwriteSoapAddress } from './wsdl.ts';

export const LIST_METHODS = 'listMethods';
export const ALLOWED_METHODS = 'allowedMethods';
export const GET_WSDL = 'getWsdl';
const SOAP_METASERVICES: readonly string[] = [LIST_METHODS, ALLOWED_METHODS, GET_WSDL];

/** Whether the server proxy answers this service itself (MetadataServiceHandlerImpl.canHandle). */
export const isSoapMetaservice = (serviceCode: string): boolean => SOAP_METASERVICES.includes(serviceCode);

/** A description document as its server gave it. */
export interface FetchedDescription {
  readonly status: number;
  readonly reason: string;
  readonly contentType?: string;
  readonly body: Buffer;
}

export interface MetaserviceContext {
  readonly conf: ServerConf;
  /** Whether the calling client is in the global group `INST/code`. */
  readonly isMember: (group: string) => boolean;
  /** Fetches a service's description (its WSDL or OpenAPI document), bounded in size and time, as the service's own calls go (TLS settings, timeout). */
  readonly fetchDescription: (url: string, service: ResolvedService) => Promise<FetchedDescription>;
  /** The most bytes of a description accepted (the parser's bound too). */
  readonly maxDescriptionBytes: number;
}

export interface SoapMetaserviceAnswer {
  /** The response envelope, without requestHash. */
  readonly soap: Buffer;
  /** `text/xml; charset=UTF-8`, or the multipart/related package type of a getWsdl answer. */
  readonly packageContentType: string;
  readonly attachments: readonly { contentType: string; headers: [string, string][]; body: Buffer }[];
}

/**
 * @throws InvalidRequest (getWsdl without serviceCode), UnknownService (no WSDL URL for the
 *   service), ServiceType (a REST service), InternalError (the WSDL's server did not answer 200 or
 *   sent no well-formed XML)
 */
export async function answerSoapMetaservice(request: Buffer, header: SoapHeader, ctx: MetaserviceContext): Promise<SoapMetaserviceAnswer> {
  const envelope = parseXml(request);
  const provider = header.service.provider;
  switch (header.service.serviceCode) {
    case LIST_METHODS:
      return simple(responseEnvelope(envelope, methodList('listMethodsResponse', provider, servicesByDescriptionType(ctx.conf, provider, ['WSDL']))));
    case ALLOWED_METHODS:
      return simple(responseEnvelope(envelope, methodList('allowedMethodsResponse', provider, allowedServicesByDescriptionType(ctx.conf, provider, header.client, ['WSDL'], ctx.isMember))));
    case GET_WSDL:
      return getWsdl(envelope, provider, ctx);
    default:
      throw new XrdError('InternalError', { reason: `${header.service.serviceCode} is not a metaservice` });
  }
}

const simple = (soap: Buffer): SoapMetaserviceAnswer => ({ soap, packageContentType: TEXT_XML_UTF8, attachments: [] });

async function getWsdl(envelope: XmlElement, provider: ClientId, ctx: MetaserviceContext): Promise<SoapMetaserviceAnswer> {
  const operation = childElements(child(envelope, SOAP_ENV_NS, 'Body')!)[0]!;
  // The body is read as the reference's WsdlRequestData: the element's name is not looked at.
  const code = optionalText(operation, 'serviceCode');
  if (code === undefined || code.trim() === '') throw new XrdError('InvalidRequest', { reason: 'Missing serviceCode in message body' });
  const version = optionalText(operation, 'serviceVersion');
  const wanted: ServiceId = { provider, serviceCode: code, ...(version !== undefined ? { serviceVersion: version } : {}) };
  const service = findService(ctx.conf, provider, code, version);
  const description = service && service.description;
  if (description && description.type !== 'WSDL') throw new XrdError('ServiceType', { reason: 'Service is a REST service and does not have a WSDL' });
  if (!service || !description?.url) throw new XrdError('UnknownService', { reason: `Could not find wsdl URL for service ${javaServiceId(wanted)}` });
  const fetched = await ctx.fetchDescription(description.url, service);
  if (fetched.status !== 200) throw new XrdError('InternalError', { reason: `Received HTTP error: ${fetched.status} - ${fetched.reason}` });
  const wsdl = overwriteSoapAddress(fetched.body, undefined, ctx.maxDescriptionBytes);
  // The reference's SoapUtils.toResponse: the request's body element renamed `…Response` in its
  // namespace (declared on it), its content kept (canonical, so each child declares what it uses).
  const name = `${operation.prefix === '' ? '' : `${operation.prefix}:`}${operation.localName}Response`;
  const xmlns = operation.prefix === '' ? 'xmlns' : `xmlns:${operation.prefix}`;
  const content = operation.children.map((n) => (n.kind === 'element' ? canonicalize(n) : n.kind === 'text' ? escapeXml(n.value) : '')).join('');
  return {
    soap: responseEnvelope(envelope, `<${name} ${xmlns}="${escapeXml(operation.namespace)}">${content}</${name}>`),
    packageContentType: `multipart/related; type="text/xml"; charset=UTF-8; boundary=xroad${randomLetters(30)}`,
    attachments: [{ contentType: 'text/xml', headers: [['content-transfer-encoding', 'binary'], ['content-id', `<wsdl=${randomUUID()}@x-road.eu>`]], body: wsdl }],
  };
}

function optionalText(parent: XmlElement, name: string): string | undefined {
  const e = child(parent, XROAD_NS, name);
  return e && textOf(e);
}

/** The request's envelope with its header as it came (canonical form: every namespace it uses declared in it) and `body` as the Body's content. */
function responseEnvelope(envelope: XmlElement, body: string): Buffer {
  const header = child(envelope, SOAP_ENV_NS, 'Header')!;
  const p = envelope.prefix === '' ? '' : `${envelope.prefix}:`;
  const xmlns = envelope.prefix === '' ? 'xmlns' : `xmlns:${envelope.prefix}`;
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?><${p}Envelope ${xmlns}="${SOAP_ENV_NS}">${canonicalize(header)}<${p}Body>${body}</${p}Body></${p}Envelope>`, 'utf8');
}

/** `xroad:listMethodsResponse` / `xroad:allowedMethodsResponse` (service-metainfo.xsd MethodListType). */
function methodList(element: string, provider: ClientId, services: readonly ResolvedService[]): string {
  return `<xroad:${element} xmlns:xroad="${XROAD_NS}" xmlns:id="${IDENTIFIERS_NS}">${services.map((s) => serviceIdXml(provider, s)).join('')}</xroad:${element}>`;
}

/** An `xroad:service` of type id:XRoadServiceIdentifierType. */
function serviceIdXml(provider: ClientId, s: ResolvedService): string {
  const field = (name: string, value: string | undefined) => (value === undefined ? '' : `<id:${name}>${escapeXml(value)}</id:${name}>`);
  return (
    `<xroad:service id:objectType="SERVICE">` +
    field('xRoadInstance', provider.instance) +
    field('memberClass', provider.memberClass) +
    field('memberCode', provider.memberCode) +
    field('subsystemCode', provider.subsystem) +
    field('serviceCode', s.code) +
    field('serviceVersion', s.version) +
    `</xroad:service>`
  );
}

