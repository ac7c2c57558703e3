/**
 * The server proxy (MESS_06/07): where other security servers send signed requests for the
 * services this server's clients provide, as the reference's ServerProxyHandler,
 * ServerMessageProcessor and ServerRestMessageProcessor handle them. Over mutually authenticated
 * TLS (our authentication key stays on the HSM; the handshake signature comes from the signer), it
 * reads the request as it arrives (attachments and REST bodies into the spool), checks the calling
 * server's authentication certificate, that the request is for this server and a client it hosts,
 * that the service exists and the caller may use it, verifies the signature, calls the provider's
 * information system, signs its response with the provider member's key and logs both. The
 * metaservices (listMethods, allowedMethods, getWsdl, REST getOpenAPI) it answers itself
 * (src/metaservice).
 *
 * Codes follow the reference: what goes wrong while reading the request — the message itself, the
 * security server it names, the provider, the caller's certificate — and everything about the
 * service's answer is reported under ServiceFailed (`Server.ServerProxy.ServiceFailed.InvalidSoap`);
 * missing parts, access and signature checks are not.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import semver from 'semver';
import type { GlobalConf } from '../../globalconf/global-conf.ts';
import { answerRestMetaservice, isRestMetaservice } from '../../metaservice/rest-metaservices.ts';
import { answerSoapMetaservice, isSoapMetaservice, type FetchedDescription, type MetaserviceContext } from '../../metaservice/soap-metaservices.ts';
import type { OpMonitor } from '../../opmonitor/op-monitor.ts';
import { answerQuery, isOpMonitoringQuery, queryFault } from '../../opmonitor/queries.ts';
import { XrdError, toXrdError } from '../../platform/errors.ts';
import type { Logger } from '../../platform/logger.ts';
import { PROXY_SERVER_LIMITS, capConnections, serverLimits, serverTimeouts, type ServerLimits } from '../../platform/server-limits.ts';
import { memoryBody, readBounded, type Body } from '../../platform/spool.ts';
import { TEXT_XML_UTF8, readSoapFault, type SoapFault } from '../../protocol/faults.ts';
import { javaClientId, javaServerId, memberOf, sameSecurityServerId, type ClientId, type SecurityServerId } from '../../protocol/identifiers.ts';
import { bodiesOf, decodeProxyMessage, encodeProxyMessage, randomLetters, type DecodedProxyMessage, type EncodedProxyMessage, type RestContent, type SoapContent } from '../../protocol/proxy-message.ts';
import { headerValue, restResponseParts, serviceRequestHeaders, type HeaderList, type RestRequest } from '../../protocol/rest-message.ts';
import { checkRequestHeader, checkSoapAction, parseSoapHeader, withRequestHash, type ServiceId, type SoapHeader } from '../../protocol/soap-message.ts';
import { readSoapPackage, soapPackagePieces, type SoapPackage } from '../../protocol/soap-package.ts';
import type { InternalTls } from '../../serverconf/internal-tls.ts';
import { verifyAccess, type RestCall } from '../../serverconf/access.ts';
import { inGlobalGroup, localClient, resolveService, serviceUrl, type ServerConf, type ResolvedService } from '../../serverconf/server-conf.ts';
import { ExchangeBodies, sendAnswer, type MessageSettings } from '../shared/exchange.ts';
import type { MemberSigning } from '../shared/member-signing.ts';
import type { ExchangeFacts, MessageRecorder } from '../shared/message-recorder.ts';
import type { PeerVerifier } from '../shared/peer-verifier.ts';
import { faultFor } from '../shared/replies.ts';
import { callService, type ServiceResponse, type ServiceTls } from './service-call.ts';
import { verifyMessage } from '../shared/verification.ts';

export interface ServerProxyDeps {
  readonly serverConf: () => ServerConf;
  readonly globalConf: () => GlobalConf;
  readonly signing: MemberSigning;
  readonly peers: PeerVerifier;
  readonly recorder: MessageRecorder;
  readonly logger: Logger;
  readonly settings: MessageSettings;
  /** Our internal TLS certificate: presented to services over HTTPS. */
  readonly internalTls: () => InternalTls;
  /** The reference's `server-min-supported-client-version`: older client proxies are refused. */
  readonly minClientVersion?: string;
  /** The time configuration expiry, certificates and OCSP responses are checked for (tests pin it). */
  readonly now?: () => Date;
  /** The operational monitoring store that answers pr-opmon queries to the owner; without it they are ordinary calls. */
  readonly opMonitor?: OpMonitor;
  /** The reference's op-monitor.records-available-timestamp-offset-seconds: records younger are not given yet (60). */
  readonly recordsAvailableOffsetSeconds?: number;
}

export async function startServerProxy(deps: ServerProxyDeps, listen: { host: string; port: number; tls: () => Promise<SecureContextOptions>; limits?: Partial<ServerLimits> }): Promise<{ readonly port: number; close(): Promise<void> }> {
  const limits = serverLimits(PROXY_SERVER_LIMITS, listen.limits);
  const server = https.createServer({ ...serverTimeouts(limits), requestCert: true, rejectUnauthorized: false }, (req, res) => {
    void handle(deps, req, res);
  });
  capConnections(server, limits);
  // Nothing is read from a peer that is not a registered security server with an approved
  // certificate (the reference refuses it in the handshake, AuthTrustManager): the check costs a
  // hash for a known server, and an unknown caller gets no parser, no spool and no signature check.
  server.on('secureConnection', (socket: TLSSocket) => {
    try {
      deps.peers.admitClientServer(socket);
    } catch (err) {
      const e = toXrdError(err);
      deps.logger.warn({ remoteAddress: socket.remoteAddress, faultCode: e.faultCode, reason: e.message }, 'connection closed before reading: the peer is not an approved security server');
      socket.destroy();
    }
  });
  // The authentication key may not be usable yet (token not logged in) or may change (a new
  // certificate registered): the TLS context follows the signer's answer.
  let presented: unknown;
  const refreshTls = async () => {
    try {
      const options = await listen.tls();
      if (options.cert !== presented) {
        server.setSecureContext(options);
        presented = options.cert;
        deps.logger.info('server proxy presents the authentication certificate');
      }
    } catch (err) {
      if (presented !== null) deps.logger.warn({ faultCode: toXrdError(err).faultCode }, 'no usable authentication certificate; other security servers cannot connect');
      presented = null;
    }
  };
  await refreshTls();
  const timer = setInterval(() => void refreshTls(), TLS_REFRESH_MS).unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    // Port 0 asks for any free port: this is the one taken.
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const TLS_REFRESH_MS = 10_000;

/** What answers a REST request: the provider's service, or a metaservice answered here. */
interface RestAnswer {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  readonly body?: Body;
}

/** Codes the reference reports after reading the request (checkRequest), not as a failure to read it. */
const NOT_READ_FAILURES = new Set(['MissingSoap', 'MissingRest', 'MissingSignature', 'MessageTooLarge', 'ClientProxyVersionNotSupported']);

async function handle(deps: ServerProxyDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = Date.now();
  const facts: ExchangeFacts = { protocol: 'SOAP', requestSize: 0 };
  const bodies = new ExchangeBodies();
  let answer: EncodedProxyMessage;
  let fault: SoapFault | undefined;
  try {
    answer = await new ServerExchange(deps, req, facts, bodies).run();
  } catch (err) {
    fault = faultFor(err, 'Server.ServerProxy', deps.logger, facts.queryId, deps.settings.faultCodes);
    // The reference answers the client proxy's request with HTTP 200 and the fault as text/xml.
    answer = encodeProxyMessage({ fault });
  }
  deps.recorder.monitor({ ...facts, side: 'Producer', started, succeeded: fault === undefined, faultCode: fault?.faultCode, faultString: fault?.faultString });
  // A request refused before it was read to its end leaves the connection unusable.
  const headers: [string, string][] = [['content-type', answer.contentType], ...Object.entries(answer.headers)];
  if (!req.complete) {
    headers.push(['connection', 'close']);
    req.resume();
  }
  sendAnswer(res, 200, headers, answer.pieces, () => bodies.dispose());
}

class ServerExchange {
  constructor(
    private readonly deps: ServerProxyDeps,
    private readonly req: IncomingMessage,
    private readonly facts: ExchangeFacts,
    private readonly bodies: ExchangeBodies,
  ) {}

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  async run(): Promise<EncodedProxyMessage> {
    const { deps, req } = this;
    if (req.method !== 'POST') throw new XrdError('InvalidHttpMethod', { method: req.method ?? '' }, { prefix: 'Server.ServerProxy' });
    deps.globalConf().checkUpToDate(this.now());
    this.checkClientVersion();
    const request = await this.read();
    return request.soapHeader ? this.soap(request) : this.rest(request);
  }

  /** The reference's ClientProxyVersionVerifier. @throws ClientProxyVersionNotSupported */
  private checkClientVersion(): void {
    const min = this.deps.minClientVersion;
    if (min === undefined) return;
    const sent = headerValue(Object.entries(this.req.headers).map(([n, v]) => [n, String(v)]), 'x-proxy-version');
    const version = sent === undefined ? null : semver.valid(sent.trim());
    if (!version || semver.lt(version, min)) throw new XrdError('ClientProxyVersionNotSupported', { version: min });
  }

  /** The request as it arrives; its bodies are kept for disposal. */
  private async read(): Promise<DecodedProxyMessage> {
    const { settings } = this.deps;
    try {
      const request = await decodeProxyMessage(this.req.headers['content-type'] ?? '', this.req, this.req.headers, {
        direction: 'request',
        spool: settings.spool,
        maxBytes: settings.maxMessageBytes,
        maxPartBytes: settings.maxSoapBytes,
      });
      this.bodies.add(...bodiesOf(request.content));
      this.facts.requestSize = request.content ? (request.content.kind === 'soap' ? request.content.soap.length : request.content.headerPart.length) + bodiesOf(request.content).reduce((n, b) => n + b.size, 0) : 0;
      return request;
    } catch (err) {
      throw readFailure(err);
    }
  }

  /** What the reference checks while reading: the server named, the provider hosted here, the caller's certificate. */
  private checkRequestFor(client: ClientId, provider: ClientId, server: SecurityServerId | undefined, ocspResponses: readonly Buffer[], ownerQuery = false): void {
    try {
      const conf = this.deps.serverConf();
      if (server && !sameSecurityServerId(server, conf.serverId)) {
        throw new XrdError('InvalidSecurityServer', { reason: `Invalid security server identifier '${javaServerId(server)}' expected '${javaServerId(conf.serverId)}'` });
      }
      // The owner is always a registered client of its server (the reference lists it in serverconf).
      if (!ownerQuery && !localClient(conf, provider)) throw new XrdError('UnknownMember', { reason: `Client '${javaClientId(provider)}' not found` });
      this.deps.peers.verifyClient(this.req.socket as TLSSocket, client, ocspResponses);
    } catch (err) {
      throw readFailure(err);
    }
  }

  private async soap(request: DecodedProxyMessage): Promise<EncodedProxyMessage> {
    const { deps, facts } = this;
    const header = request.soapHeader!;
    const content = request.content as SoapContent;
    Object.assign(facts, { client: header.client, service: header.service, queryId: header.id, userId: header.userId, representedParty: header.representedParty });
    const soapAction = failedReading(() => checkSoapAction(request.originalSoapAction));
    failedReading(() => checkRequestHeader(header));
    const owner = memberOf(deps.serverConf().serverId);
    const query = deps.opMonitor !== undefined && isOpMonitoringQuery(header.service, owner);
    this.checkRequestFor(header.client, header.service.provider, header.securityServer, request.ocspResponses, query);
    const metaservice = !query && isSoapMetaservice(header.service.serviceCode);
    // Queries and metaservices are answered here to anyone whose signature verifies: what each
    // caller sees is decided by the answer (OpMonitoringServiceHandlerImpl and
    // MetadataServiceHandlerImpl: shouldVerifyAccess is false).
    const service = query || metaservice ? undefined : this.serviceFor(header.client, header.service);
    verifyMessage(content, request.signature!, deps.globalConf(), header.client, 'Server.ServerProxy', this.now());
    const meta = { queryId: header.id, client: header.client, service: header.service, requestId: request.requestId };
    await deps.recorder.log(content, request.signature!, { ...meta, response: false }, 'server');

    const answered = service
      ? await this.callSoapService(service, content, request.originalContentType, soapAction)
      : query
        ? this.answerQuery(content, header)
        : await this.answerMetaservice(content, header);
    if ('fault' in answered) return encodeProxyMessage({ fault: answered.fault });
    const message = serviceFailure(() => {
      parseSoapHeader(answered.soap);
      // The request hash goes in right after xrd:id, any the service wrote is dropped (pr-mess).
      return withRequestHash(answered.soap, content.soap);
    });
    const signed = await deps.signing.sign(header.service.provider, { message, attachments: answered.attachments.map((a) => a.body) }, 'Server.ServerProxy');
    const answer: SoapContent = { kind: 'soap', soap: message, contentType: answered.contentType, partHeaders: answered.partHeaders, attachments: answered.attachments };
    await deps.recorder.log(answer, signed, { ...meta, response: true }, 'server');
    facts.responseSize = message.length + answered.attachments.reduce((n, a) => n + a.body.size, 0);
    return encodeProxyMessage({ content: answer, signature: signed, originalContentType: answered.packageContentType });
  }

  /** The provider's answer, or its fault (which goes back as it is, unsigned, as the reference sends it). */
  private async callSoapService(service: ResolvedService, content: SoapContent, originalContentType: string | undefined, soapAction: string | undefined): Promise<SoapPackage | { fault: SoapFault }> {
    const { deps } = this;
    const outgoing = soapPackagePieces(content, originalContentType);
    const response = await this.call(service, new URL(service.url), {
      method: 'POST',
      headers: [['content-type', outgoing.contentType], ...(soapAction !== undefined ? [['soapaction', soapAction] as [string, string]] : [])],
      body: outgoing.pieces,
    });
    if (response.status !== 200 && response.status !== 500) {
      response.body.resume();
      throw serviceFailed(new XrdError('HttpError', { status: response.status, reason: response.reason }));
    }
    const answered = headerValue(response.headers, 'content-type');
    const pkg = await serviceFailure(async () => {
      try {
        return await readSoapPackage(answered, response.body, { spool: deps.settings.spool, maxSoapBytes: deps.settings.maxSoapBytes, maxBytes: deps.settings.maxMessageBytes });
      } catch (err) {
        // An empty package from the service: no response message (ServerMessageProcessor).
        if (err instanceof XrdError && err.code === 'MissingSoap') throw new XrdError('InvalidMessage', { reason: 'No response message received from service' });
        throw err;
      }
    });
    this.bodies.add(...pkg.attachments.map((a) => a.body));
    const serviceFault = readSoapFault(pkg.soap);
    return serviceFault ? { fault: serviceFault } : pkg;
  }

  /**
   * A pr-opmon query answered from our store, in place of the reference's monitoring daemon (which
   * its server proxy calls over HTTP); a refused query is the daemon's fault, passed on unsigned.
   */
  private answerQuery(content: SoapContent, header: SoapHeader): SoapPackage | { fault: SoapFault } {
    const { deps } = this;
    const global = deps.globalConf();
    try {
      const answer = answerQuery(content.soap, header, deps.opMonitor!, {
        serverOwner: (server) => global.securityServer(server)?.owner,
        monitoringClient: global.extensions.monitoringClient,
      }, { recordsAvailableOffsetSeconds: deps.recordsAvailableOffsetSeconds });
      const attachments = answer.attachments.map((a) => ({ contentType: a.contentType, headers: a.headers, body: memoryBody(a.body) }));
      const packaged = attachments.length > 0;
      return { kind: 'soap', soap: answer.soap, contentType: TEXT_XML_UTF8, attachments, packaged, packageContentType: packaged ? `multipart/related; type="text/xml"; charset=UTF-8; boundary=xatt${randomLetters(30)}` : TEXT_XML_UTF8 };
    } catch (err) {
      const fault = queryFault(err, deps.settings.faultCodes);
      deps.logger.info({ faultCode: fault.faultCode, errorId: fault.detail, queryId: header.id }, 'operational monitoring query refused');
      return { fault };
    }
  }

  private async rest(request: DecodedProxyMessage): Promise<EncodedProxyMessage> {
    const { deps, facts } = this;
    const rest = request.restRequest!;
    const content = request.content!;
    if (content.kind !== 'rest') throw new XrdError('MissingRest', { message: 'Request' }, { prefix: 'Server.ServerProxy' });
    Object.assign(facts, { protocol: 'REST', client: rest.client, service: rest.service, queryId: rest.queryId, userId: rest.userId, representedParty: rest.representedParty, restMethod: rest.method });
    this.checkRequestFor(rest.client, rest.service.provider, rest.securityServer, request.ocspResponses);
    // Metaservices are answered here to anyone whose signature verifies (RestMetadataServiceHandlerImpl: no access check).
    const service = isRestMetaservice(rest.method, rest.service.serviceCode) ? undefined : this.serviceFor(rest.client, rest.service, { method: rest.method, path: rest.servicePath.split('?', 1)[0]! });
    verifyMessage(content, request.signature!, deps.globalConf(), rest.client, 'Server.ServerProxy', this.now());
    // The reference answers with the x-road-request-id the client proxy sent as an HTTP header.
    const requestId = request.requestId ?? rest.requestId;
    const meta = { queryId: rest.queryId, client: rest.client, service: rest.service, requestId };
    await deps.recorder.log(content, request.signature!, { ...meta, response: false }, 'server');

    const answered = service ? await this.callRestService(service, rest, content) : await this.answerRestMetaservice(rest);
    const parts = restResponseParts({ headerPart: content.headerPart, body: content.body, client: rest.client, service: rest.service, queryId: rest.queryId, requestId }, answered.status, answered.reason, answered.headers);
    const signed = await deps.signing.sign(rest.service.provider, { message: parts.headerPart, attachments: answered.body ? [answered.body] : [] }, 'Server.ServerProxy');
    const answer = { kind: 'rest' as const, role: 'response' as const, headerPart: parts.headerPart, ...(answered.body ? { body: answered.body } : {}) };
    await deps.recorder.log(answer, signed, { ...meta, response: true }, 'server');
    facts.responseSize = parts.headerPart.length + (answered.body?.size ?? 0);
    facts.statusCode = answered.status;
    return encodeProxyMessage({ content: answer, signature: signed });
  }

  /** The provider's REST answer, its body spooled when one is expected. */
  private async callRestService(service: ResolvedService, rest: RestRequest, content: RestContent): Promise<RestAnswer> {
    const target = serviceUrl(service, rest.servicePath);
    const response = await this.call(service, target, { method: rest.method, headers: serviceRequestHeaders(rest), body: content.body && rest.method !== 'GET' && rest.method !== 'HEAD' ? [content.body] : undefined });
    const body = restBodyExpected(rest.method, response.status)
      ? await serviceFailure(() => this.spoolBody(response))
      : (response.body.resume(), undefined);
    return { status: response.status, reason: response.reason, headers: response.headers, ...(body ? { body } : {}) };
  }

  /** REST listMethods, allowedMethods, getOpenAPI (RestMetadataServiceHandlerImpl), answered here instead of by the provider's information system. */
  private async answerRestMetaservice(rest: RestRequest): Promise<RestAnswer> {
    const answer = await answerRestMetaservice(rest.service.provider, rest.service.serviceCode, rest.servicePath, rest.client, this.metaserviceContext(rest.client));
    return { status: 200, reason: 'OK', headers: answer.headers, body: memoryBody(answer.body) };
  }

  /** listMethods, allowedMethods, getWsdl (MetadataServiceHandlerImpl), answered here instead of by the provider's information system. */
  private async answerMetaservice(content: SoapContent, header: SoapHeader): Promise<SoapPackage> {
    const answer = await answerSoapMetaservice(content.soap, header, this.metaserviceContext(header.client));
    const attachments = answer.attachments.map((a) => ({ contentType: a.contentType, headers: a.headers, body: memoryBody(a.body) }));
    return { kind: 'soap', soap: answer.soap, contentType: TEXT_XML_UTF8, attachments, packaged: attachments.length > 0, packageContentType: answer.packageContentType };
  }

  private metaserviceContext(caller: ClientId): MetaserviceContext {
    const shared = this.deps.globalConf().shared;
    return {
      conf: this.deps.serverConf(),
      isMember: (group) => inGlobalGroup(shared, group, caller),
      maxDescriptionBytes: this.deps.settings.maxSoapBytes,
      fetchDescription: (url, service) => this.fetchDescription(url, service),
    };
  }

  /** A WSDL or OpenAPI document, fetched as the service itself is called (its TLS settings and timeout), held in memory up to maxSoapBytes. */
  private async fetchDescription(url: string, service: ResolvedService): Promise<FetchedDescription> {
    const target = new URL(url);
    const response = await callService(target, { method: 'GET', headers: [] }, { timeoutMs: service.timeoutSeconds * 1000, ...this.tlsFor(service, target) });
    const body = await readBounded(response.body, this.deps.settings.maxSoapBytes);
    const contentType = headerValue(response.headers, 'content-type');
    return { status: response.status, reason: response.reason, body, ...(contentType !== undefined ? { contentType } : {}) };
  }

  /** The service and whether the caller may use it (the reference's verifyAccess). @throws UnknownService, ServiceType, AccessDenied, ServiceDisabled */
  private serviceFor(client: ClientId, service: ServiceId, rest?: RestCall): ResolvedService {
    const conf = this.deps.serverConf();
    const shared = this.deps.globalConf().shared;
    const verdict = verifyAccess(localClient(conf, service.provider), service, client, rest, (caller, instance, code) => inGlobalGroup(shared, `${instance}/${code}`, caller));
    if ('refusal' in verdict) throw verdict.refusal;
    return resolveService(verdict.description, verdict.service);
  }

  /** Calls the provider's information system; HTTPS as the reference's CustomSSLSocketFactory. @throws ServiceFailed.… */
  private async call(service: ResolvedService, url: URL, request: Parameters<typeof callService>[1]): Promise<ServiceResponse> {
    return serviceFailure(() => callService(url, request, { timeoutMs: service.timeoutSeconds * 1000, ...this.tlsFor(service, url) }));
  }

  /** HTTPS as the reference's CustomSSLSocketFactory: our internal certificate, the owner's IS certificates trusted unless the service turned that off. */
  private tlsFor(service: ResolvedService, url: URL): { tls?: ServiceTls } {
    if (url.protocol !== 'https:') return {};
    const owner = localClient(this.deps.serverConf(), this.facts.service!.provider);
    return { tls: { internal: this.deps.internalTls(), ...(service.sslAuthentication !== false ? { trusted: owner?.isCerts ?? [] } : {}) } };
  }

  private async spoolBody(response: ServiceResponse) {
    const writer = this.deps.settings.spool.writer(this.deps.settings.maxMessageBytes);
    try {
      for await (const chunk of response.body) writer.write(chunk as Buffer);
      if (!response.body.complete) throw new XrdError('IOError', { reason: 'the service closed the connection before the end of its response' });
    } catch (err) {
      writer.abort();
      throw err instanceof XrdError ? err : new XrdError('IOError', { reason: (err as Error).message }, { cause: err });
    }
    const body = writer.end();
    this.bodies.add(body);
    return body;
  }
}

/** Whether an HTTP response has a body (as Apache HttpClient decides it has an entity). */
const restBodyExpected = (method: string, status: number): boolean => method !== 'HEAD' && status >= 200 && status !== 204 && status !== 205 && status !== 304;

/** A failure to read the request, as the reference reports it (e.g. ServiceFailed.InvalidSoap). */
function readFailure(err: unknown): XrdError {
  const e = toXrdError(err);
  return (NOT_READ_FAILURES.has(e.code) ? e : e.within('ServiceFailed')).withPrefix('Server.ServerProxy');
}

function failedReading<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw readFailure(err);
  }
}

const serviceFailed = (err: unknown): XrdError => toXrdError(err).within('ServiceFailed').withPrefix('Server.ServerProxy');

/** Runs a step about the service's answer; what goes wrong is ServiceFailed. */
function serviceFailure<T>(step: () => T): T {
  try {
    const result = step();
    return (result instanceof Promise ? result.catch((err: unknown) => Promise.reject(serviceFailed(err))) : result) as T;
  } catch (err) {
    throw serviceFailed(err);
  }
}

