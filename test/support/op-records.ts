/** Operational monitoring records as the proxies store them, for the opmonitor tests and bench:opmonitor. */
import { clientFields, serviceFields, type OpMonitoringRecord } from '../../src/opmonitor/record.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';

export const CLIENT = parseClientId('LOCAL/COM/2222/CLIENT');
export const PROVIDER = parseClientId('LOCAL/COM/1111/PROVIDER');
export const OTHER_CLIENT = parseClientId('LOCAL/COM/2222/BATCH');

/** A record as a client proxy writes it for a SOAP call, with every timestamp and size. */
export function soapRecord(at: number, overrides: Partial<OpMonitoringRecord> = {}): OpMonitoringRecord {
  return {
    securityServerType: 'Client',
    securityServerInternalIp: '127.0.0.2',
    requestInTs: at,
    requestOutTs: at + 3,
    responseInTs: at + 40,
    responseOutTs: at + 45,
    ...clientFields(CLIENT),
    ...serviceFields(PROVIDER, 'getRandom', 'v1'),
    representedPartyClass: 'MUN',
    representedPartyCode: '0000000-0',
    messageId: `id-${at}`,
    messageUserId: 'EE1234567890',
    messageProtocolVersion: '4.0',
    clientSecurityServerAddress: '127.0.0.2',
    serviceSecurityServerAddress: '127.0.0.1',
    requestSize: 1629,
    requestAttachmentCount: 0,
    responseSize: 1518,
    responseAttachmentCount: 0,
    succeeded: true,
    serviceType: 'WSDL',
    xRequestId: `req-${at}`,
    ...overrides,
  };
}

/** A record as a server proxy writes it for a REST call of OTHER_CLIENT. */
export function restRecord(at: number, overrides: Partial<OpMonitoringRecord> = {}): OpMonitoringRecord {
  return {
    securityServerType: 'Producer',
    requestInTs: at,
    requestOutTs: at + 2,
    responseInTs: at + 12,
    responseOutTs: at + 14,
    ...clientFields(OTHER_CLIENT),
    ...serviceFields(PROVIDER, 'rest-test'),
    restMethod: 'GET',
    restPath: '/random',
    messageId: `rest-${at}`,
    requestSize: 0,
    responseSize: 19,
    succeeded: true,
    serviceType: 'REST',
    statusCode: 200,
    ...overrides,
  };
}
