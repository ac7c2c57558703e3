/**
 * What the server proxy's pipeline asks of a protocol (server-proxy.ts runs the stages; the SOAP and
 * REST adapters beside this file know their message): the identity of a request the decoder has
 * read (and parsed once), the checks the reference makes while reading it, whether it is answered
 * here (metaservices, monitoring queries) or by a service, and the signed response's content built
 * from what answered — the same content object the message log and the wire get.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Body } from '../../platform/spool.ts';
import type { SoapFault } from '../../protocol/faults.ts';
import type { ClientId, SecurityServerId } from '../../protocol/identifiers.ts';
import type { DecodedProxyMessage, ProxyContent } from '../../protocol/proxy-message.ts';
import type { MetaserviceContext } from '../../metaservice/soap-metaservices.ts';
import type { RestCall } from '../../serverconf/access.ts';
import type { ResolvedService } from '../../serverconf/server-conf.ts';
import type { SoapHeader } from '../../protocol/soap-message.ts';
import type { SoapPackage } from '../../protocol/soap-package.ts';
import type { MessageSettings } from '../shared/exchange.ts';
import type { MessageIdentity } from '../shared/message-recorder.ts';
import type { ServiceRequest, ServiceResponse } from './service-call.ts';

/** A calling security server's request as the pipeline takes it, apart from HTTP's server objects (tests build one in memory). */
export interface PeerRequest {
  readonly method: string;
  /** Lower-case names, as Node gives them. */
  readonly headers: IncomingHttpHeaders;
  readonly body: AsyncIterable<Buffer>;
  /** The calling server's TLS connection: its certificate chain is what PeerVerifier checks. */
  readonly socket: TLSSocket;
}

/** What the adapters may use of the exchange they run in. */
export interface ServerContext {
  /** Calls the provider's information system. @throws ServiceFailed.… */
  call(service: ResolvedService, url: URL, request: ServiceRequest): Promise<ServiceResponse>;
  /** A service's response body into the spool (kept for disposal). */
  spoolBody(response: ServiceResponse): Promise<Body>;
  /** Keeps bodies for disposal once the answer has gone out. */
  keep(...bodies: Body[]): void;
  metaserviceContext(caller: ClientId): MetaserviceContext;
  /** A pr-opmon query to the owner, answered from the monitoring store; a refused query is a fault. */
  answerQuery(soap: Buffer, header: SoapHeader): Promise<SoapPackage | { fault: SoapFault }>;
  readonly settings: MessageSettings;
}

/** The response's content, before it is signed, and what travels beside it. */
export interface ServerResponse {
  readonly content: ProxyContent;
  readonly originalContentType?: string;
  readonly size: number;
  /** REST: the service's HTTP status, for monitoring. */
  readonly statusCode?: number;
}

export interface AcceptedRequest {
  readonly identity: MessageIdentity;
  /** The one server the request names, if it names one. */
  readonly securityServer?: SecurityServerId;
  /** The client proxy's id of the exchange, sent back with the response. */
  readonly requestId: string | undefined;
  /** What the reference checks while reading the message. @throws (reported as read failures) */
  check(): void;
  /** Answered here (a metaservice, or a monitoring query to the owner) rather than by a service: no access check. */
  answeredHere(ownerQuery: boolean): boolean;
  /** The service call as access rules see it (REST: method and path). */
  readonly restCall?: RestCall;
  /** What answers: the service (when given) or this server; a fault passes on unsigned. */
  respond(service: ResolvedService | undefined, ownerQuery: boolean): Promise<ServerResponse | { fault: SoapFault }>;
}

export interface ServerAdapter {
  readonly protocol: 'SOAP' | 'REST';
  /** @throws MissingSoap, MissingRest */
  accept(request: DecodedProxyMessage, context: ServerContext): AcceptedRequest;
}
