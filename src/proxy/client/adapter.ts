/**
 * What the client proxy's pipeline asks of a protocol (client-proxy.ts runs the stages; the SOAP and
 * REST adapters beside this file know their message): read the request as far as who calls whom,
 * then the rest of it once the caller is authenticated, check that the provider's response answers
 * it, and turn that response into the information system's answer. Each message is parsed once, by
 * its adapter, into the protocol's own types (protocol/soap-message.ts, rest-message.ts), and the
 * same content object goes from the information system to the wire.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { DecodedProxyMessage, ProxyContent, ProxyMessage } from '../../protocol/proxy-message.ts';
import type { Pieces } from '../../platform/spool.ts';
import type { MessageSettings, ExchangeBodies } from '../shared/exchange.ts';
import type { MessageIdentity } from '../shared/message-recorder.ts';
import type { IsConnection } from './is-authentication.ts';
import type { ProviderTarget } from './provider-link.ts';

/** An information system's request as the pipeline takes it, apart from HTTP's server objects (tests build one in memory). */
export interface IsRequest {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  /** Lower-case names, as Node gives them. */
  readonly headers: IncomingHttpHeaders;
  /** Name/value pairs as sent, repeated names kept. */
  readonly rawHeaders: readonly string[];
  readonly body: AsyncIterable<Buffer>;
  /** How the information system is connected (asked only once the client is known). */
  readonly connection: () => IsConnection;
}

export interface AdapterContext {
  readonly settings: MessageSettings;
  readonly bodies: ExchangeBodies;
  /** The client proxy's id of this exchange (`x-road-request-id`). */
  readonly requestId: string;
  /** A new `x-road-id` when a REST information system sent none: `<instance>-<UUID>`. */
  readonly newQueryId: () => string;
}

/** The information system's answer, as the pipeline hands it to the HTTP binding. */
export interface IsAnswer {
  readonly status: number;
  readonly headers: [string, string][];
  readonly pieces: Pieces;
  readonly size: number;
  /** REST: the service's HTTP status, for monitoring. */
  readonly statusCode?: number;
}

/** A request read as far as who calls whom. */
export interface ReceivedRequest {
  readonly identity: MessageIdentity;
  readonly target: ProviderTarget;
  /** The rest of the message (REST: its body, read after the caller is authenticated), with its size and transport headers. */
  complete(): Promise<{ readonly content: ProxyContent; readonly size: number; readonly transport: Pick<ProxyMessage, 'originalContentType' | 'originalSoapAction'> }>;
  /** The response answers this request (MESS_04: same header, request hash). @throws InconsistentResponse, ServiceFailed.… */
  checkAnswers(response: DecodedProxyMessage): void;
  /** What the information system gets: the response as the provider's service wrote it. */
  answer(response: DecodedProxyMessage): IsAnswer;
}

export interface ClientAdapter {
  readonly kind: 'soap' | 'rest';
  readonly protocol: 'SOAP' | 'REST';
  /** @throws Client.… for what the information system sent wrong */
  receive(request: IsRequest, context: AdapterContext): Promise<ReceivedRequest>;
}
