/**
 * What the proxies keep about each exchange: the signed messages in the message log (MESS_09, with
 * batch timestamps) and an operational monitoring record (MESS_16), with the time each pipeline
 * stage took for the per-stage histogram. Logging happens before a message goes on (a request
 * before it is sent, a response before the caller gets it), so nothing is answered that is not
 * logged; a message log that refuses (timestamping failed too long) fails the exchange with its code.
 */
import { toXrdError, type FaultPrefix } from '../../platform/errors.ts';
import type { MessageLog } from '../../messagelog/message-log.ts';
import type { OpMonitor } from '../../opmonitor/op-monitor.ts';
import { clientFields, serviceFields } from '../../opmonitor/record.ts';
import type { ClientId } from '../../protocol/identifiers.ts';
import { signedPartsOf, type ProxyContent, type ProxySignature } from '../../protocol/proxy-message.ts';
import type { ServiceId } from '../../protocol/soap-message.ts';
import type { StageDurations, StageTimer } from './pipeline.ts';

/**
 * Who calls whom in one exchange, read once from the request (its SOAP header or REST header part)
 * and used from there on by every stage: the checks, the message log, operational monitoring.
 */
export interface MessageIdentity {
  readonly client: ClientId;
  readonly service: ServiceId;
  readonly queryId: string;
  readonly userId?: string;
  readonly representedParty?: string;
  /** REST only: the request's method. */
  readonly restMethod?: string;
}

/** Facts about one exchange for operational monitoring, filled in as the exchange goes on. */
export interface ExchangeFacts {
  protocol: 'SOAP' | 'REST';
  identity?: MessageIdentity;
  requestSize: number;
  responseSize?: number;
  statusCode?: number;
}

export interface FinishedExchange extends ExchangeFacts {
  /** 'Client': the client's security server; 'Producer': the provider's. */
  readonly side: 'Client' | 'Producer';
  /** Wall-clock ms the request arrived. */
  readonly started: number;
  readonly stages: StageTimer;
  readonly succeeded: boolean;
  readonly faultCode?: string;
  readonly faultString?: string;
}

/** Where the durations of each exchange's stages go (opmonitor/proxy-metrics.ts). */
export interface StageObserver {
  observeStages(side: 'Client' | 'Producer', durations: StageDurations): void;
}

export class MessageRecorder {
  constructor(
    private readonly messageLog: Pick<MessageLog, 'log'> | undefined,
    private readonly opMonitor: Pick<OpMonitor, 'store'> | undefined,
    private readonly stageObserver?: StageObserver,
  ) {}

  /**
   * Resolves once the record is committed (records of one event-loop turn share a transaction).
   * `requestId` is the client proxy's id of the exchange (`x-road-request-id`), pairing a request with its response.
   * @throws LoggingFailed (message log refuses or fails), with the logging proxy's prefix
   */
  async log(content: ProxyContent, signature: ProxySignature, identity: MessageIdentity, requestId: string | undefined, response: boolean, side: 'client' | 'server'): Promise<void> {
    if (!this.messageLog) return;
    const prefix: FaultPrefix = side === 'client' ? 'Server.ClientProxy' : 'Server.ServerProxy';
    const parts = signedPartsOf(content);
    try {
      await this.messageLog.log({
        queryId: identity.queryId,
        client: identity.client,
        serviceProvider: identity.service.provider,
        serviceCode: identity.service.serviceCode,
        isResponse: response,
        side,
        message: parts.message,
        attachments: parts.attachments,
        signature,
        xRequestId: requestId,
      });
    } catch (err) {
      throw toXrdError(err).withPrefix(prefix);
    }
  }

  /** One operational monitoring record (MESS_16) and the stage durations; monitoring never fails an exchange. */
  monitor(e: FinishedExchange, responseOutTs: number): void {
    this.stageObserver?.observeStages(e.side, e.stages.durations);
    if (!this.opMonitor) return;
    const id = e.identity;
    const [partyClass, partyCode] = id?.representedParty?.includes('/') ? id.representedParty.split('/', 2) : [undefined, id?.representedParty];
    this.opMonitor.store({
      securityServerType: e.side,
      requestInTs: e.started,
      requestOutTs: e.stages.requestOutTs,
      responseInTs: e.stages.responseInTs,
      responseOutTs,
      ...(id ? clientFields(id.client) : {}),
      ...(id ? serviceFields(id.service.provider, id.service.serviceCode, id.service.serviceVersion) : {}),
      representedPartyClass: partyClass,
      representedPartyCode: partyCode,
      messageId: id?.queryId,
      messageUserId: id?.userId,
      messageProtocolVersion: e.protocol === 'SOAP' ? '4.0' : undefined,
      restMethod: id?.restMethod,
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
