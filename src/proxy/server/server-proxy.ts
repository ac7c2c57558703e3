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
 * (src/metaservice). Codes follow the reference (server-errors.ts).
 *
 * `buildServerProxy` is that pipeline — one sequence of named stages (shared/pipeline.ts) for both
 * protocols, each protocol's part in its adapter (soap-adapter.ts, rest-adapter.ts) — as a function
 * from a request to an answer, which tests drive in memory with fakes of the signer, the peer check
 * and the clock; `startServerProxy` puts it behind the TLS listener.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import semver from 'semver';
import type { GlobalConf } from '../../globalconf/global-conf.ts';
import type { FetchedDescription, MetaserviceContext } from '../../metaservice/soap-metaservices.ts';
import type { OpMonitor } from '../../opmonitor/op-monitor.ts';
import { answerQuery, isOpMonitoringQuery, queryFault } from '../../opmonitor/queries.ts';
import { XrdError, toXrdError } from '../../platform/errors.ts';
import type { Logger } from '../../platform/logger.ts';
import { PROXY_SERVER_LIMITS, capConnections, serverLimits, serverTimeouts, type ServerLimits } from '../../platform/server-limits.ts';
import { memoryBody, readBounded, type Body } from '../../platform/spool.ts';
import { TEXT_XML_UTF8, type SoapFault } from '../../protocol/faults.ts';
import { javaClientId, javaServerId, memberOf, sameSecurityServerId, type ClientId, type SecurityServerId } from '../../protocol/identifiers.ts';
import { bodiesOf, decodeProxyMessage, encodeProxyMessage, randomLetters, signedPartsOf, type DecodedProxyMessage, type EncodedProxyMessage } from '../../protocol/proxy-message.ts';
import { headerValue } from '../../protocol/rest-message.ts';
import type { ServiceId, SoapHeader } from '../../protocol/soap-message.ts';
import type { SoapPackage } from '../../protocol/soap-package.ts';
import type { InternalTls } from '../../serverconf/internal-tls.ts';
import { verifyAccess, type RestCall } from '../../serverconf/access.ts';
import { inGlobalGroup, localClient, resolveService, type ServerConf, type ResolvedService } from '../../serverconf/server-conf.ts';
import { ExchangeBodies, sendAnswer, type MessageSettings, type ProxyAnswer } from '../shared/exchange.ts';
import type { MessageSigning } from '../shared/member-signing.ts';
import type { ExchangeFacts, MessageRecorder } from '../shared/message-recorder.ts';
import type { PeerVerifier } from '../shared/peer-verifier.ts';
import { StageTimer, SYSTEM_CLOCK, type Clock } from '../shared/pipeline.ts';
import { faultFor } from '../shared/replies.ts';
import { EXCHANGES_PER_TURN, TurnAdmission } from '../shared/turn-admission.ts';
import { verifyMessage } from '../shared/verification.ts';
import type { PeerRequest, ServerAdapter, ServerContext } from './adapter.ts';
import { REST_ADAPTER } from './rest-adapter.ts';
import { readFailure, serviceFailure } from './server-errors.ts';
import { callService, type ServiceRequest, type ServiceResponse, type ServiceTls } from './service-call.ts';
import { SOAP_ADAPTER } from './soap-adapter.ts';

export interface ServerProxyDeps {
  readonly serverConf: () => ServerConf;
  readonly globalConf: () => GlobalConf;
  readonly signing: MessageSigning;
  /** The checks of the calling server's certificate (PeerVerifier; a fake in tests). */
  readonly peers: Pick<PeerVerifier, 'verifyClient' | 'admitClientServer'>;
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
  /** Clocks of the monitoring record and the stage durations (tests pin them). */
  readonly clock?: Clock;
  /** Checks the client's signature (verification.ts; tests may fake it). */
  readonly verify?: typeof verifyMessage;
  /** Calls the provider's information system (service-call.ts; tests may fake it). */
  readonly callService?: typeof callService;
}

export async function startServerProxy(deps: ServerProxyDeps, listen: { host: string; port: number; tls: () => Promise<SecureContextOptions>; limits?: Partial<ServerLimits> }): Promise<{ readonly port: number; close(): Promise<void> }> {
  const limits = serverLimits(PROXY_SERVER_LIMITS, listen.limits);
  const proxy = buildServerProxy(deps);
  const server = https.createServer({ ...serverTimeouts(limits), requestCert: true, rejectUnauthorized: false }, (req, res) => {
    void serve(proxy, req, res);
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

/** The server proxy's pipeline: a calling server's request in, its answer out. */
export interface ServerProxy {
  handle(request: PeerRequest): Promise<ProxyAnswer>;
}

/** The server proxy without its listener: what `startServerProxy` serves, and what tests call directly. */
export function buildServerProxy(deps: ServerProxyDeps): ServerProxy {
  const admission = new TurnAdmission(EXCHANGES_PER_TURN);
  return { handle: (request) => handle(deps, request, admission) };
}

/** One HTTP request through the pipeline; a request refused before it was read to its end closes the connection. */
async function serve(proxy: ServerProxy, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const answer = await proxy.handle({ method: req.method ?? '', headers: req.headers, body: req, socket: req.socket as TLSSocket });
  const headers = [...answer.headers];
  if (!req.complete) {
    headers.push(['connection', 'close']);
    req.resume();
  }
  sendAnswer(res, answer.status, headers, answer.pieces, answer.done);
}

async function handle(deps: ServerProxyDeps, req: PeerRequest, admission: TurnAdmission): Promise<ProxyAnswer> {
  const clock = deps.clock ?? SYSTEM_CLOCK;
  const started = clock.wall();
  const facts: ExchangeFacts = { protocol: 'SOAP', requestSize: 0 };
  const bodies = new ExchangeBodies();
  const timer = new StageTimer(clock);
  let answer: EncodedProxyMessage;
  let fault: SoapFault | undefined;
  const turn = admission.enter();
  if (turn) await timer.run('receive', () => turn);
  try {
    answer = await new ServerExchange(deps, req, facts, bodies, timer).run();
  } catch (err) {
    fault = faultFor(err, 'Server.ServerProxy', deps.logger, facts.identity?.queryId, deps.settings.faultCodes);
    // The reference answers the client proxy's request with HTTP 200 and the fault as text/xml.
    answer = encodeProxyMessage({ fault });
  }
  deps.recorder.monitor({ ...facts, side: 'Producer', started, stages: timer, succeeded: fault === undefined, faultCode: fault?.faultCode, faultString: fault?.faultString }, clock.wall());
  return { status: 200, headers: [['content-type', answer.contentType], ...Object.entries(answer.headers)], pieces: answer.pieces, done: () => bodies.dispose() };
}

/**
 * One exchange through the server proxy's stages: receive (the request decoded as it arrives, its
 * message parsed once), authenticate (the server named, the provider hosted here, the calling
 * server's certificate for the client), authorize (the service and the caller's access, unless
 * answered here), verify (the client's signature), log, send (to the provider's information system,
 * or answered here), answer (the response parsed once and given the request hash, or its REST
 * header part), sign, log.
 */
class ServerExchange implements ServerContext {
  constructor(
    private readonly deps: ServerProxyDeps,
    private readonly req: PeerRequest,
    private readonly facts: ExchangeFacts,
    private readonly bodies: ExchangeBodies,
    private readonly timer: StageTimer,
  ) {}

  get settings(): MessageSettings {
    return this.deps.settings;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  async run(): Promise<EncodedProxyMessage> {
    const { deps, req, facts, timer } = this;
    const prefix = 'Server.ServerProxy';
    const request = await timer.run('receive', async () => {
      if (req.method !== 'POST') throw new XrdError('InvalidHttpMethod', { method: req.method }, { prefix });
      deps.globalConf().checkUpToDate(this.now());
      this.checkClientVersion();
      return this.read();
    });
    const adapter: ServerAdapter = request.soapHeader ? SOAP_ADAPTER : REST_ADAPTER;
    const accepted = adapter.accept(request, this);
    facts.protocol = adapter.protocol;
    const identity = (facts.identity = accepted.identity);
    const { client, service } = identity;
    const ownerQuery = await timer.run('authenticate', () => {
      accepted.check();
      const query = adapter.protocol === 'SOAP' && deps.opMonitor !== undefined && isOpMonitoringQuery(service, memberOf(deps.serverConf().serverId));
      this.checkRequestFor(client, service.provider, accepted.securityServer, request.ocspResponses, query);
      return query;
    });
    const resolved = await timer.run('authorize', () => (accepted.answeredHere(ownerQuery) ? undefined : this.serviceFor(client, service, accepted.restCall)));
    await timer.run('verify', () => (deps.verify ?? verifyMessage)(request.content!, request.signature!, deps.globalConf(), client, prefix, this.now()));
    await timer.run('log', () => deps.recorder.log(request.content!, request.signature!, identity, accepted.requestId, false, 'server'));

    const answered = await timer.send(() => accepted.respond(resolved, ownerQuery));
    if ('fault' in answered) return encodeProxyMessage({ fault: answered.fault });
    const signed = await timer.run('sign', () => deps.signing.sign(service.provider, signedPartsOf(answered.content), prefix));
    await timer.run('log', () => deps.recorder.log(answered.content, signed, identity, accepted.requestId, true, 'server'));
    facts.responseSize = answered.size;
    if (answered.statusCode !== undefined) facts.statusCode = answered.statusCode;
    return timer.run('answer', () => encodeProxyMessage({ content: answered.content, signature: signed, ...(answered.originalContentType !== undefined ? { originalContentType: answered.originalContentType } : {}) }));
  }

  /** The reference's ClientProxyVersionVerifier. @throws ClientProxyVersionNotSupported */
  private checkClientVersion(): void {
    const min = this.deps.minClientVersion;
    if (min === undefined) return;
    const sent = headerValue(Object.entries(this.req.headers).map(([n, v]) => [n, String(v)]), 'x-proxy-version');
    const version = sent === undefined ? null : semver.valid(sent.trim());
    if (!version || semver.lt(version, min)) throw new XrdError('ClientProxyVersionNotSupported', { version: min });
  }

  /** The request as it arrives, its message parsed once by the decoder; its bodies are kept for disposal. */
  private async read(): Promise<DecodedProxyMessage> {
    const { settings } = this.deps;
    try {
      const request = await decodeProxyMessage(this.req.headers['content-type'] ?? '', this.req.body, this.req.headers, {
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
  private checkRequestFor(client: ClientId, provider: ClientId, server: SecurityServerId | undefined, ocspResponses: readonly Buffer[], ownerQuery: boolean): void {
    try {
      const conf = this.deps.serverConf();
      if (server && !sameSecurityServerId(server, conf.serverId)) {
        throw new XrdError('InvalidSecurityServer', { reason: `Invalid security server identifier '${javaServerId(server)}' expected '${javaServerId(conf.serverId)}'` });
      }
      // The owner is always a registered client of its server (the reference lists it in serverconf).
      if (!ownerQuery && !localClient(conf, provider)) throw new XrdError('UnknownMember', { reason: `Client '${javaClientId(provider)}' not found` });
      this.deps.peers.verifyClient(this.req.socket, client, ocspResponses);
    } catch (err) {
      throw readFailure(err);
    }
  }

  /**
   * A pr-opmon query answered from our store, in place of the reference's monitoring daemon (which
   * its server proxy calls over HTTP); a refused query is the daemon's fault, passed on unsigned.
   */
  async answerQuery(soap: Buffer, header: SoapHeader): Promise<SoapPackage | { fault: SoapFault }> {
    const { deps } = this;
    const global = deps.globalConf();
    try {
      const answer = await answerQuery(soap, header, deps.opMonitor!, {
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

  metaserviceContext(caller: ClientId): MetaserviceContext {
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
    const response = await (this.deps.callService ?? callService)(target, { method: 'GET', headers: [] }, { timeoutMs: service.timeoutSeconds * 1000, ...this.tlsFor(service, target) });
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
  call(service: ResolvedService, url: URL, request: ServiceRequest): Promise<ServiceResponse> {
    return serviceFailure(() => (this.deps.callService ?? callService)(url, request, { timeoutMs: service.timeoutSeconds * 1000, ...this.tlsFor(service, url) }));
  }

  /** HTTPS as the reference's CustomSSLSocketFactory: our internal certificate, the owner's IS certificates trusted unless the service turned that off. */
  private tlsFor(service: ResolvedService, url: URL): { tls?: ServiceTls } {
    if (url.protocol !== 'https:') return {};
    const owner = localClient(this.deps.serverConf(), this.facts.identity!.service.provider);
    return { tls: { internal: this.deps.internalTls(), ...(service.sslAuthentication !== false ? { trusted: owner?.isCerts ?? [] } : {}) } };
  }

  keep(...bodies: Body[]): void {
    this.bodies.add(...bodies);
  }

  async spoolBody(response: ServiceResponse): Promise<Body> {
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
