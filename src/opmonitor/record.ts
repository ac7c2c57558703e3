/**
 * An operational monitoring record (MESS_16): one message mediated by a security server, with the
 * field names, meanings and JSON form of the reference's operational monitoring protocol (its
 * query_operational_data_response_payload_schema, "Annex B"), so the records we keep read the same
 * as a reference server's `getSecurityServerOperationalData` payload.
 */
import type { ClientId } from '../protocol/identifiers.ts';

/** `Client`: recorded by the client's security server (client proxy); `Producer`: by the provider's (server proxy). */
export type SecurityServerType = 'Client' | 'Producer';

export interface OpMonitoringRecord {
  /** Unix time in seconds when the record was stored; set by `store` when absent. */
  monitoringDataTs?: number;
  securityServerInternalIp?: string;
  securityServerType: SecurityServerType;
  /** Unix ms: the request reached this security server (before it was decoded). */
  requestInTs: number;
  /** Unix ms: the request was sent on (client proxy: to the provider's server; server proxy: to the provider's IS). */
  requestOutTs?: number;
  /** Unix ms: the response came back to this security server. */
  responseInTs?: number;
  /** Unix ms: the response was sent back to the caller. */
  responseOutTs?: number;
  clientXRoadInstance?: string;
  clientMemberClass?: string;
  clientMemberCode?: string;
  clientSubsystemCode?: string;
  serviceXRoadInstance?: string;
  serviceMemberClass?: string;
  serviceMemberCode?: string;
  serviceSubsystemCode?: string;
  serviceCode?: string;
  serviceVersion?: string;
  /** REST only: the HTTP method and the path after the service code. */
  restMethod?: string;
  restPath?: string;
  representedPartyClass?: string;
  representedPartyCode?: string;
  messageId?: string;
  messageUserId?: string;
  messageIssue?: string;
  messageProtocolVersion?: string;
  clientSecurityServerAddress?: string;
  serviceSecurityServerAddress?: string;
  /** Bytes of the SOAP message or REST body, without attachments. */
  requestSize?: number;
  /** Bytes of the whole MIME container (message and attachments), when there is one. */
  requestMimeSize?: number;
  requestAttachmentCount?: number;
  responseSize?: number;
  responseMimeSize?: number;
  responseAttachmentCount?: number;
  /** Whether mediation succeeded (a SOAP fault or X-Road error from anywhere on the path is false). */
  succeeded: boolean;
  faultCode?: string;
  faultString?: string;
  /** `WSDL` for SOAP services, `REST` or `OPENAPI3` for REST services. */
  serviceType?: string;
  /** REST: the HTTP status of the response. */
  statusCode?: number;
  /** The X-Request-Id that ties the two security servers' records of one message together. */
  xRequestId?: string;
  xRoadVersion?: string;
}

type Kind = 'text' | 'int' | 'bool';

/**
 * Every field, in the reference's order, with its storage kind and the reference's length limit
 * for strings (255, faultString 2048): one list drives the table, the insert and the JSON.
 */
export const RECORD_FIELDS: readonly { readonly name: keyof OpMonitoringRecord; readonly kind: Kind; readonly maxLength?: number }[] = [
  { name: 'monitoringDataTs', kind: 'int' },
  { name: 'securityServerInternalIp', kind: 'text', maxLength: 255 },
  { name: 'securityServerType', kind: 'text', maxLength: 255 },
  { name: 'requestInTs', kind: 'int' },
  { name: 'requestOutTs', kind: 'int' },
  { name: 'responseInTs', kind: 'int' },
  { name: 'responseOutTs', kind: 'int' },
  { name: 'clientXRoadInstance', kind: 'text', maxLength: 255 },
  { name: 'clientMemberClass', kind: 'text', maxLength: 255 },
  { name: 'clientMemberCode', kind: 'text', maxLength: 255 },
  { name: 'clientSubsystemCode', kind: 'text', maxLength: 255 },
  { name: 'serviceXRoadInstance', kind: 'text', maxLength: 255 },
  { name: 'serviceMemberClass', kind: 'text', maxLength: 255 },
  { name: 'serviceMemberCode', kind: 'text', maxLength: 255 },
  { name: 'serviceSubsystemCode', kind: 'text', maxLength: 255 },
  { name: 'serviceCode', kind: 'text', maxLength: 255 },
  { name: 'serviceVersion', kind: 'text', maxLength: 255 },
  { name: 'restMethod', kind: 'text', maxLength: 255 },
  { name: 'restPath', kind: 'text', maxLength: 255 },
  { name: 'representedPartyClass', kind: 'text', maxLength: 255 },
  { name: 'representedPartyCode', kind: 'text', maxLength: 255 },
  { name: 'messageId', kind: 'text', maxLength: 255 },
  { name: 'messageUserId', kind: 'text', maxLength: 255 },
  { name: 'messageIssue', kind: 'text', maxLength: 255 },
  { name: 'messageProtocolVersion', kind: 'text', maxLength: 255 },
  { name: 'clientSecurityServerAddress', kind: 'text', maxLength: 255 },
  { name: 'serviceSecurityServerAddress', kind: 'text', maxLength: 255 },
  { name: 'requestSize', kind: 'int' },
  { name: 'requestMimeSize', kind: 'int' },
  { name: 'requestAttachmentCount', kind: 'int' },
  { name: 'responseSize', kind: 'int' },
  { name: 'responseMimeSize', kind: 'int' },
  { name: 'responseAttachmentCount', kind: 'int' },
  { name: 'succeeded', kind: 'bool' },
  { name: 'faultCode', kind: 'text', maxLength: 255 },
  { name: 'faultString', kind: 'text', maxLength: 2048 },
  { name: 'serviceType', kind: 'text', maxLength: 255 },
  { name: 'statusCode', kind: 'int' },
  { name: 'xRequestId', kind: 'text', maxLength: 255 },
  { name: 'xRoadVersion', kind: 'text', maxLength: 255 },
];

/** The client fields of a record for a client identifier. */
export function clientFields(id: ClientId): Pick<OpMonitoringRecord, 'clientXRoadInstance' | 'clientMemberClass' | 'clientMemberCode' | 'clientSubsystemCode'> {
  return { clientXRoadInstance: id.instance, clientMemberClass: id.memberClass, clientMemberCode: id.memberCode, clientSubsystemCode: id.subsystem };
}

/** The service fields of a record for a provider, service code and optional version. */
export function serviceFields(
  provider: ClientId,
  serviceCode: string,
  serviceVersion?: string,
): Pick<OpMonitoringRecord, 'serviceXRoadInstance' | 'serviceMemberClass' | 'serviceMemberCode' | 'serviceSubsystemCode' | 'serviceCode' | 'serviceVersion'> {
  return {
    serviceXRoadInstance: provider.instance,
    serviceMemberClass: provider.memberClass,
    serviceMemberCode: provider.memberCode,
    serviceSubsystemCode: provider.subsystem,
    serviceCode,
    serviceVersion,
  };
}

/** `INST/CLASS/MEMBER[/SUBSYSTEM]/CODE` of a record's service, or undefined when it was never known. */
export function serviceLabel(r: OpMonitoringRecord): string | undefined {
  if (!r.serviceXRoadInstance || !r.serviceCode) return undefined;
  return [r.serviceXRoadInstance, r.serviceMemberClass, r.serviceMemberCode, r.serviceSubsystemCode, r.serviceCode].filter((x) => x !== undefined).join('/');
}
