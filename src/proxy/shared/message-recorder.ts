/**
 * What the proxies keep about each exchange: the signed messages in the message log (MESS_09, with
 * batch timestamps) and an operational monitoring record (MESS_16). Logging happens before a
 * message goes on (a request before it is sent, a response before the caller gets it), so nothing
 * is answered that is not logged; a message log that refuses (timestamping failed too long) fails
 * the exchange with its code.
 */
import { toXrdError, type FaultPrefix } from '../../platform/errors.ts';
import type { MessageLog } from '../../messagelog/message-log.ts';
import type { OpMonitor } from '../../opmonitor/op-monitor.ts';
import { clientFields, serviceFields } from '../../opmonitor/record.ts';
import type { ClientId } from '../../protocol/identifiers.ts';
import { signedPartsOf, type ProxyContent, type ProxySignature } from '../../protocol/proxy-message.ts';
import type { ServiceId } from '../../protocol/soap-message.ts';

export interface ExchangeMeta {
  readonly queryId: string;
  readonly client: ClientId;
  readonly service: ServiceId;
  readonly response: boolean;
  /** The client proxy's id of the exchange (`x-road-request-id`), pairing a request with its response. */
  readonly requestId?: string;
}

/** Facts about one exchange for operational monitoring, filled in as the exchange goes on. */
export interface ExchangeFacts {
  client?: ClientId;
  service?: ServiceId;
  queryId?: string;
  userId?: string;
  protocol: 'SOAP' | 'REST';
  representedParty?: string;
  restMethod?: string;
  requestSize: number;
  responseSize?: number;
  statusCode?: number;
}

export interface FinishedExchange extends ExchangeFacts {
  /** 'Client': the client's security server; 'Producer': the provider's. */
  readonly side: 'Client' | 'Producer';
  readonly started: number;
  readonly succeeded: boolean;
  readonly faultCode?: string;
  readonly faultString?: string;
}

export class MessageRecorder {
  constructor(
    private readonly messageLog: MessageLog | undefined,
    private readonly opMonitor: OpMonitor | undefined,
  ) {}

  /**
   * Resolves once the record is committed (records of one event-loop turn share a transaction).
   * @throws LoggingFailed (message log refuses or fails), with the logging proxy's prefix
   */
  async log(content: ProxyContent, signature: ProxySignature, meta: ExchangeMeta, side: 'client' | 'server'): Promise<void> {
    if (!this.messageLog) return;
    const prefix: FaultPrefix = side === 'client' ? 'Server.ClientProxy' : 'Server.ServerProxy';
    const parts = signedPartsOf(content);
    try {
      await this.messageLog.logCommitted({
        queryId: meta.queryId,
        client: meta.client,
        serviceProvider: meta.service.provider,
        serviceCode: meta.service.serviceCode,
        isResponse: meta.response,
        side,
        message: parts.message,
        attachments: parts.attachments,
        signature,
        xRequestId: meta.requestId,
      });
    } catch (err) {
      throw toXrdError(err).withPrefix(prefix);
    }
  }

  /** One operational monitoring record (MESS_16); monitoring never fails an exchange. */
  monitor(e: FinishedExchange): void {
    if (!this.opMonitor) return;
    const [partyClass, partyCode] = e.representedParty?.includes('/') ? e.representedParty.split('/', 2) : [undefined, e.representedParty];
    this.opMonitor.store({
      securityServerType: e.side,
      requestInTs: e.started,
      responseOutTs: Date.now(),
      ...(e.client ? clientFields(e.client) : {}),
      ...(e.service ? serviceFields(e.service.provider, e.service.serviceCode, e.service.serviceVersion) : {}),
      representedPartyClass: partyClass,
      representedPartyCode: partyCode,
      messageId: e.queryId,
      messageUserId: e.userId,
      messageProtocolVersion: e.protocol === 'SOAP' ? '4.0' : undefined,
      restMethod: e.restMethod,
      requestSize: e.requestSize,
      responseSize: e.responseSize,
      succeeded: e.succeeded,
      faultCode: e.faultCode,
      faultString: e.faultString,
      serviceType: e.protocol === 'SOAP' ? 'WSDL' : 'REST',
      statusCode: e.statusCode,
    });
  }
}
