/**
 * The operational monitoring queries of pr-opmon, answered from our store as the reference's
 * monitoring daemon answers them (QueryRequestProcessor, OperationalDataRequestHandler,
 * HealthDataRequestHandler):
 *
 * - `getSecurityServerOperationalData`: the records stored (monitoringDataTs, Unix seconds) from
 *   `recordsFrom` to `recordsTo`, optionally of one service provider (`searchCriteria/client`),
 *   with the fields of `outputSpec` (all when empty), as `{"records":[…]}` gzipped in the
 *   attachment `operational-monitoring-data.json.gz` of a multipart/related answer. Records of the
 *   last `recordsAvailableOffsetSeconds` (60) are not available yet: a range reaching into them ends
 *   before them and the answer's `nextRecordsFrom` says where to continue.
 * - `getSecurityServerHealthData`: health-data.ts's statistics, of one provider's services when
 *   `filterCriteria/client` names it.
 *
 * Who sees what (OperationalDataRequestHandler.getClientForFilter): the owner of the server the
 * request names in `xroad:securityServer` and the central monitoring client of global
 * configuration's monitoring parameters see every record; any other client only the records where
 * it is the client or the service provider, without the non-public fields. The server proxy
 * decides which requests are queries (isOpMonitoringQuery, as OpMonitoringServiceHandlerImpl).
 *
 * The request body is read strictly against op-monitoring.xsd (elements, order, xs:long); what does
 * not fit is `Client.InvalidRequest`, as the reference's schema-validating unmarshaller reports it.
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { XrdError, toXrdError } from '../platform/errors.ts';
import { escapeXml, faultCodeIn, type FaultCodeStyle, type SoapFault } from '../protocol/faults.ts';
import { sameClientId, type ClientId, type SecurityServerId } from '../protocol/identifiers.ts';
import type { MimeHeaders } from '../protocol/multipart.ts';
import { IDENTIFIERS_NS, SOAP_ENV_NS } from '../protocol/namespaces.ts';
import { clientIdOfElement, type ServiceId, type SoapHeader } from '../protocol/soap-message.ts';
import { canonicalize } from '../xml/c14n.ts';
import { child, childElements, parseXml, textOf, type XmlElement } from '../xml/xml-tree.ts';
import type { HealthReport, Statistics } from './health-data.ts';
import type { OpMonitor } from './op-monitor.ts';
import { RECORD_FIELDS } from './record.ts';

export const OP_MONITORING_NS = 'http://x-road.eu/xsd/op-monitoring.xsd';
export const OPERATIONAL_DATA = 'getSecurityServerOperationalData';
export const HEALTH_DATA = 'getSecurityServerHealthData';
/** The content id of the records attachment (OperationalDataRequestHandler.CID). */
export const RECORDS_CID = 'operational-monitoring-data.json.gz';

/** Every field a query may ask for (OperationalDataOutputSpecFields.OUTPUT_FIELDS). */
export const OUTPUT_FIELDS: ReadonlySet<string> = new Set(RECORD_FIELDS.map((f) => f.name));

/**
 * Whether a request is a monitoring query this server answers itself: one of the two service codes,
 * addressed to the server's owner (OpMonitoringServiceHandlerImpl.canHandle).
 */
export function isOpMonitoringQuery(service: ServiceId, owner: ClientId): boolean {
  return (service.serviceCode === OPERATIONAL_DATA || service.serviceCode === HEALTH_DATA) && sameClientId(service.provider, owner);
}

export interface QueryAccess {
  /** The owner of a security server in global configuration (GlobalConfProvider.getServerOwner). */
  serverOwner(server: SecurityServerId): ClientId | undefined;
  /** The central monitoring client of global configuration's monitoring parameters. */
  readonly monitoringClient?: ClientId;
}

export interface QueryOptions {
  /** The reference's op-monitor.records-available-timestamp-offset-seconds; default 60. */
  readonly recordsAvailableOffsetSeconds?: number;
  /** Clock (Unix ms) for tests. */
  readonly now?: () => number;
}

export interface QueryAnswer {
  /** The response envelope: the request's header, the response element as body. */
  readonly soap: Buffer;
  readonly attachments: readonly { readonly contentType: string; readonly headers: MimeHeaders; readonly body: Buffer }[];
}

/**
 * Answers one query; `header` is the request's, already checked by the proxy.
 * @throws XrdError InvalidRequest (prefix Client) for a request the reference refuses, with its faultString
 */
export async function answerQuery(request: Buffer, header: SoapHeader, store: OpMonitor, access: QueryAccess, options: QueryOptions = {}): Promise<QueryAnswer> {
  let envelope: XmlElement;
  try {
    envelope = parseXml(request);
  } catch (err) {
    // The proxy has read this envelope already; only a bound of the full parse can refuse it here.
    throw invalid((err as Error).message);
  }
  const headerElement = child(envelope, SOAP_ENV_NS, 'Header')!;
  const operation = childElements(child(envelope, SOAP_ENV_NS, 'Body')!)[0];
  const code = header.service.serviceCode;
  if (code !== OPERATIONAL_DATA && code !== HEALTH_DATA) throw invalid(`Unknown service: '${code}'`);
  if (!operation || operation.namespace !== OP_MONITORING_NS || operation.localName !== code) throw invalid(`expected element {${OP_MONITORING_NS}}${code} in the SOAP body`);
  const body = code === OPERATIONAL_DATA ? await operationalData(operation, header, store, access, options) : healthData(operation, store);
  const p = envelope.prefix === '' ? '' : `${envelope.prefix}:`;
  const xml =
    `<?xml version="1.0" encoding="UTF-8"?><${p}Envelope ${envelope.prefix === '' ? 'xmlns' : `xmlns:${envelope.prefix}`}="${SOAP_ENV_NS}">` +
    `${canonicalize(headerElement)}<${p}Body>${body.xml}</${p}Body></${p}Envelope>`;
  return { soap: Buffer.from(xml, 'utf8'), attachments: body.attachments };
}

/**
 * The fault a refused query gets: the daemon's code under `Server.ServerProxy.OpMonitor`
 * (OpMonitorDaemonRequestHandler: translateWithPrefix(SERVER_SERVER_PROXY_OPMONITOR_X)), e.g.
 * `Server.ServerProxy.OpMonitor.Client.InvalidRequest`, 7.8's `server.serverproxy.opmonitor.client.invalid_request`.
 */
export function queryFault(err: unknown, style: FaultCodeStyle): SoapFault {
  const e = toXrdError(err);
  const client = e.prefix === 'Client';
  const faultCode =
    style === 'camel'
      ? `Server.ServerProxy.OpMonitor.${client ? 'Client.' : ''}${e.fullCode}`
      : `server.serverproxy.opmonitor.${client ? 'client.' : ''}${faultCodeIn(`Client.${e.fullCode}`, 'snake').slice('client.'.length)}`;
  return { faultCode, faultString: e.message, detail: randomUUID() };
}

const invalid = (reason: string) => new XrdError('InvalidRequest', { reason }, { prefix: 'Client' });

async function operationalData(operation: XmlElement, header: SoapHeader, store: OpMonitor, access: QueryAccess, options: QueryOptions): Promise<{ xml: string; attachments: QueryAnswer['attachments'] }> {
  const parts = sequence(operation, [['searchCriteria', 1, 1], ['outputSpec', 0, 1]]);
  const criteria = sequence(parts.get('searchCriteria')![0]!, [['recordsFrom', 1, 1], ['recordsTo', 1, 1], ['client', 0, 1]]);
  const recordsFrom = xsLong(criteria.get('recordsFrom')![0]!);
  const recordsTo = xsLong(criteria.get('recordsTo')![0]!);
  const providerElement = criteria.get('client')?.[0];
  const serviceProvider = providerElement ? clientId(providerElement) : undefined;
  const specElement = parts.get('outputSpec')?.[0];
  const outputFields = new Set(specElement ? (sequence(specElement, [['outputField', 0, Infinity]]).get('outputField') ?? []).map(textOnly) : []);

  // OperationalDataRequestHandler.checkTimestamps and checkOutputFields, in its order and words.
  const now = options.now?.() ?? Date.now();
  const availableBefore = BigInt(Math.floor(now / 1000) - (options.recordsAvailableOffsetSeconds ?? 60));
  if (recordsFrom < 0n) throw invalid('Records from timestamp is a negative number');
  if (recordsTo < 0n) throw invalid('Records to timestamp is a negative number');
  if (recordsTo < recordsFrom) throw invalid('Records to timestamp is earlier than records from timestamp');
  if (recordsFrom >= availableBefore) throw invalid(`Records not available from ${recordsFrom} yet`);
  for (const field of outputFields) if (!OUTPUT_FIELDS.has(field)) throw invalid(`Unknown output field in search criteria: ${field}`);

  let to = recordsTo;
  let nextRecordsFrom: bigint | undefined;
  if (recordsTo >= availableBefore) {
    to = availableBefore - 1n;
    nextRecordsFrom = availableBefore;
  }
  const answer = await store.operationalData({ recordsFrom: Number(recordsFrom), recordsTo: Number(to), client: clientForFilter(header, access), serviceProvider, outputFields });
  if (answer.nextRecordsFrom !== undefined) nextRecordsFrom = BigInt(answer.nextRecordsFrom);
  const payload = gzipSync(Buffer.from(JSON.stringify({ records: answer.records }), 'utf8'));
  const xml =
    `<om:${OPERATIONAL_DATA}Response xmlns:om="${OP_MONITORING_NS}">` +
    `<om:recordsCount>${answer.records.length}</om:recordsCount><om:records>cid:${RECORDS_CID}</om:records>` +
    (nextRecordsFrom !== undefined ? `<om:nextRecordsFrom>${nextRecordsFrom}</om:nextRecordsFrom>` : '') +
    `</om:${OPERATIONAL_DATA}Response>`;
  const headers: MimeHeaders = [
    ['content-transfer-encoding', 'binary'],
    ['content-id', `<${RECORDS_CID}>`],
  ];
  return { xml, attachments: [{ contentType: 'application/gzip', headers, body: payload }] };
}

/** Whose records alone the caller may see, or undefined for all (OperationalDataRequestHandler.getClientForFilter). */
function clientForFilter(header: SoapHeader, access: QueryAccess): ClientId | undefined {
  const caller = header.client;
  if (access.monitoringClient && sameClientId(caller, access.monitoringClient)) return undefined;
  const owner = header.securityServer ? access.serverOwner(header.securityServer) : undefined;
  if (owner && sameClientId(caller, owner)) return undefined;
  return caller;
}

function healthData(operation: XmlElement, store: OpMonitor): { xml: string; attachments: QueryAnswer['attachments'] } {
  const criteria = sequence(operation, [['filterCriteria', 0, 1]]).get('filterCriteria')?.[0];
  const clientElement = criteria ? sequence(criteria, [['client', 0, 1]]).get('client')?.[0] : undefined;
  const report = store.health.report(clientElement ? clientId(clientElement) : undefined);
  return { xml: healthXml(report), attachments: [] };
}

function healthXml(report: HealthReport): string {
  const el = (name: string, value: string | number | undefined) => (value === undefined ? '' : `<om:${name}>${typeof value === 'string' ? escapeXml(value) : value}</om:${name}>`);
  const id = (name: string, value: string | undefined) => (value === undefined ? '' : `<id:${name}>${escapeXml(value)}</id:${name}>`);
  const stats = (prefix: string, suffix: string, s: Statistics | undefined) =>
    s ? el(`${prefix}Min${suffix}`, s.min) + el(`${prefix}Average${suffix}`, javaDouble(s.mean)) + el(`${prefix}Max${suffix}`, s.max) + el(`${prefix}${suffix}StdDev`, javaDouble(s.stdDev)) : '';
  const events = report.services.map((s) => {
    const v = s.service;
    return (
      `<om:serviceEvents><om:service id:objectType="SERVICE">${id('xRoadInstance', v.instance)}${id('memberClass', v.memberClass)}${id('memberCode', v.memberCode)}${id('subsystemCode', v.subsystem)}${id('serviceCode', v.serviceCode)}${id('serviceVersion', v.serviceVersion)}</om:service>` +
      el('lastSuccessfulRequestTimestamp', s.lastSuccessfulRequestTimestamp) +
      el('lastUnsuccessfulRequestTimestamp', s.lastUnsuccessfulRequestTimestamp) +
      el('serviceType', s.serviceType) +
      `<om:lastPeriodStatistics>${el('successfulRequestCount', s.successfulRequestCount)}${el('unsuccessfulRequestCount', s.unsuccessfulRequestCount)}` +
      stats('request', 'Duration', s.requestDuration) +
      stats('request', 'Size', s.requestSize) +
      stats('response', 'Size', s.responseSize) +
      `</om:lastPeriodStatistics></om:serviceEvents>`
    );
  });
  return (
    `<om:${HEALTH_DATA}Response xmlns:om="${OP_MONITORING_NS}" xmlns:id="${IDENTIFIERS_NS}">` +
    el('monitoringStartupTimestamp', report.monitoringStartupTimestamp) +
    el('statisticsPeriodSeconds', report.statisticsPeriodSeconds) +
    `<om:servicesEvents>${events.join('')}</om:servicesEvents></om:${HEALTH_DATA}Response>`
  );
}

/** xs:double as JAXB prints a Java double: integral values with `.0`. */
const javaDouble = (n: number): string => (Number.isInteger(n) ? `${n}.0` : String(n));

/**
 * The op-monitoring elements under `parent`, checked against an xs:sequence of [name, minOccurs,
 * maxOccurs]: only those elements, in that order, as often as allowed; no text but whitespace.
 */
function sequence(parent: XmlElement, spec: readonly (readonly [string, number, number])[]): Map<string, XmlElement[]> {
  const found = new Map<string, XmlElement[]>();
  let at = 0;
  for (const node of parent.children) {
    if (node.kind === 'text') {
      if (!/^[ \t\r\n]*$/.test(node.value)) throw invalid(`${parent.localName} holds text`);
      continue;
    }
    if (node.kind !== 'element') continue;
    while (at < spec.length && !(node.namespace === OP_MONITORING_NS && node.localName === spec[at]![0])) {
      if ((found.get(spec[at]![0])?.length ?? 0) < spec[at]![1]) throw invalid(`${parent.localName} lacks ${spec[at]![0]}`);
      at++;
    }
    if (at === spec.length) throw invalid(`unexpected element ${node.name} in ${parent.localName}`);
    const list = found.get(node.localName) ?? [];
    if (list.length === spec[at]![2]) throw invalid(`${node.localName} appears more than ${spec[at]![2]} time(s) in ${parent.localName}`);
    list.push(node);
    found.set(node.localName, list);
  }
  for (; at < spec.length; at++) if ((found.get(spec[at]![0])?.length ?? 0) < spec[at]![1]) throw invalid(`${parent.localName} lacks ${spec[at]![0]}`);
  return found;
}

function textOnly(element: XmlElement): string {
  if (element.children.some((c) => c.kind === 'element')) throw invalid(`${element.localName} holds elements`);
  return textOf(element);
}

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

/** An xs:long (whitespace collapsed, optional sign, digits) in Java's long range. */
function xsLong(element: XmlElement): bigint {
  const text = textOnly(element).replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  if (!/^[+-]?[0-9]+$/.test(text)) throw invalid(`${element.localName} is not an xs:long: '${text}'`);
  const value = BigInt(text);
  if (value < LONG_MIN || value > LONG_MAX) throw invalid(`${element.localName} is out of the xs:long range: ${text}`);
  return value;
}

function clientId(element: XmlElement): ClientId {
  try {
    return clientIdOfElement(element, element.localName);
  } catch (err) {
    throw invalid(toXrdError(err).message);
  }
}
