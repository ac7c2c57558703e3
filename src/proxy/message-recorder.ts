/**
 * What the proxies keep about each exchange: the signed messages in the message log (MESS_09, with
 * batch timestamps) and an operational monitoring record (MESS_16). Logging happens before a
 * message goes on (a request before it is sent, a response before the caller gets it), so nothing
 * is answered that is not logged; a message log that refuses (timestamping failed too long) fails
 * the exchange with its code.
 */
import { toXrdError, type FaultPrefix } from '../platform/errors.ts';
import type { MessageLog } from '../messagelog/message-log.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import type { ServiceId } from '../protocol/soap-message.ts';
import type { Envelope } from './transport.ts';

export interface ExchangeMeta {
  readonly queryId: string;
  readonly client: ClientId;
  readonly service: ServiceId;
  readonly response: boolean;
}

/** Facts about one exchange for operational monitoring. */
export interface ExchangeFacts {
  client?: string;
  service?: string;
  queryId?: string;
  protocol: 'SOAP' | 'REST';
  representedParty?: string;
  requestSize: number;
  responseSize?: number;
}

export interface FinishedExchange extends ExchangeFacts {
  /** 'Client': the client's security server; 'Producer': the provider's. */
  readonly side: 'Client' | 'Producer';
  readonly started: number;
  readonly succeeded: boolean;
  readonly faultCode?: string;
  readonly faultString?: string;
}

export interface OpMonitorSink {
  record(exchange: FinishedExchange): void;
}

export class MessageRecorder {
  constructor(
    private readonly messageLog: MessageLog | undefined,
    private readonly opMonitor: OpMonitorSink | undefined,
  ) {}

  /** @throws LoggingFailed (message log refuses or fails), with the logging proxy's prefix */
  log(envelope: Envelope, meta: ExchangeMeta, side: 'client' | 'server'): void {
    if (!this.messageLog) return;
    const prefix: FaultPrefix = side === 'client' ? 'Server.ClientProxy' : 'Server.ServerProxy';
    try {
      this.messageLog.log({
        queryId: meta.queryId,
        client: meta.client,
        serviceProvider: meta.service.provider,
        serviceCode: meta.service.serviceCode,
        isResponse: meta.response,
        side,
        message: envelope.message,
        attachments: envelope.attachments.map((a) => a.body),
        signature: envelope.signed,
      });
    } catch (err) {
      throw toXrdError(err).withPrefix(prefix);
    }
  }

  monitor(exchange: FinishedExchange): void {
    this.opMonitor?.record(exchange);
  }
}
