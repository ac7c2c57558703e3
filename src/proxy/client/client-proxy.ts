/**
 * The client proxy (MESS_02/03): where a client's information systems send SOAP (`POST /`) and REST
 * (`/r1/…`) requests over HTTP or HTTPS, as the reference's ClientMessageProcessor and
 * ClientRestMessageProcessor take them. For each request it reads the message as it arrives
 * (attachments and REST bodies into the spool), checks the X-Road header and the caller (connection
 * type, internal TLS certificates), signs the message with the client member's key through the
 * signer, sends it to the provider's security server with the reference's transport headers,
 * verifies the signed response, checks it answers the request, logs both, and hands the response
 * back as the provider's service wrote it (a SOAP package rebuilt with its own Content-Type).
 *
 * `buildClientProxy` is that pipeline — one sequence of named stages (shared/pipeline.ts) for both
 * protocols, each protocol's part in its adapter (soap-adapter.ts, rest-adapter.ts) — as a function
 * from a request to an answer, which tests drive in memory with fakes of the signer, the provider
 * link and the clock; `startClientProxy` puts it behind the HTTP and HTTPS listeners.
 */
import { X509Certificate, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { GlobalConf } from '../../globalconf/global-conf.ts';
import { LIST_CLIENTS, listClients } from '../../metaservice/list-clients.ts';
import { VERIFICATIONCONF, VERIFICATIONCONF_HEADERS, verificationConf } from '../../metaservice/verification-conf.ts';
import { XrdError } from '../../platform/errors.ts';
import type { Logger } from '../../platform/logger.ts';
import { PROXY_SERVER_LIMITS, capConnections, serverLimits, serverTimeouts, type ServerLimits } from '../../platform/server-limits.ts';
import type { Pieces } from '../../platform/spool.ts';
import type { SoapFault } from '../../protocol/faults.ts';
import { javaClientId, type ClientId } from '../../protocol/identifiers.ts';
import { bodiesOf, signedPartsOf, type ProxyContent } from '../../protocol/proxy-message.ts';
import type { InternalTls } from '../../serverconf/internal-tls.ts';
import { localClient, type ServerConf } from '../../serverconf/server-conf.ts';
import { ExchangeBodies, PROXY_VERSION, sendAnswer, type MessageSettings, type ProxyAnswer } from '../shared/exchange.ts';
import type { MessageSigning } from '../shared/member-signing.ts';
import type { ExchangeFacts, MessageRecorder } from '../shared/message-recorder.ts';
import { StageTimer, SYSTEM_CLOCK, type Clock } from '../shared/pipeline.ts';
import { faultFor, restErrorReply, soapFaultReply } from '../shared/replies.ts';
import { EXCHANGES_PER_TURN, TurnAdmission } from '../shared/turn-admission.ts';
import { verifyMessage } from '../shared/verification.ts';
import type { ClientAdapter, IsRequest } from './adapter.ts';
import { authenticateInformationSystem, type IsConnection } from './is-authentication.ts';
import { RemoteFault, type ProviderLink } from './provider-link.ts';
import { REST_ADAPTER } from './rest-adapter.ts';
import { SOAP_ADAPTER } from './soap-adapter.ts';

/** PFS suites of seed 003 for the information-system side. */
export const IS_CIPHERS = [
  'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-SHA384',
  'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES128-SHA256', 'DHE-RSA-AES256-SHA256', 'DHE-RSA-AES256-GCM-SHA384',
].join(':');

export interface ClientProxyDeps {
  readonly serverConf: () => ServerConf;
  readonly globalConf: () => GlobalConf;
  readonly signing: MessageSigning;
  /** The link to providers' security servers (ProviderLink; a fake in tests). */
  readonly providers: Pick<ProviderLink, 'send'>;
  readonly recorder: MessageRecorder;
  readonly logger: Logger;
  readonly settings: MessageSettings;
  /** The global configuration directory, for `GET /verificationconf`; without it that is not served. */
  readonly globalConfDir?: string;
  /** This server's internal TLS certificate (DER) in force, set from the listeners: a client showing it is the server itself. */
  readonly internalCertDer?: () => Buffer;
  /** The time configuration expiry and the provider's signature are checked for (tests pin it). */
  readonly now?: () => Date;
  /** Clocks of the monitoring record and the stage durations (tests pin them). */
  readonly clock?: Clock;
  /** Checks the provider's signature (verification.ts; tests may fake it). */
  readonly verify?: typeof verifyMessage;
}

export interface ClientProxyListeners {
  readonly host: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  /**
   * The internal TLS certificate and key in force (internal-tls.ts's internalTlsReader): asked at
   * each new HTTPS connection, and a new pair serves from that handshake on, without a restart.
   */
  readonly internalTls: () => InternalTls;
  /** Timeouts and connection caps of both listeners (default PROXY_SERVER_LIMITS). */
  readonly limits?: Partial<ServerLimits>;
}

/** Listens on both ports; the ports it answers are the ones bound (a port given as 0 is chosen by the kernel). */
export async function startClientProxy(deps: ClientProxyDeps, listen: ClientProxyListeners): Promise<{ readonly httpPort: number; readonly httpsPort: number; close(): Promise<void> }> {
  let tls = listen.internalTls();
  let internalCertDer = Buffer.from(new X509Certificate(tls.certPem).raw);
  const proxy = buildClientProxy({ ...deps, internalCertDer: () => internalCertDer });
  const handler = (req: IncomingMessage, res: ServerResponse) => void serve(proxy, req, res, () => internalCertDer);
  const limits = serverLimits(PROXY_SERVER_LIMITS, listen.limits);
  const plain = http.createServer(serverTimeouts(limits), handler);
  const contextOptions = (pair: InternalTls) => ({
    key: pair.keyPem,
    cert: pair.certPem,
    minVersion: 'TLSv1.2' as const,
    ciphers: IS_CIPHERS,
  });
  const secure = https.createServer(
    {
      ...serverTimeouts(limits),
      ...contextOptions(tls),
      // Certificates are asked for but checked against the client's IS certificates, not a CA.
      requestCert: true,
      rejectUnauthorized: false,
    },
    handler,
  );
  // Before tls.Server's own listener wraps the socket: the handshake then uses the context set here.
  secure.prependListener('connection', () => {
    const next = listen.internalTls();
    if (next === tls) return;
    try {
      secure.setSecureContext(contextOptions(next));
      const cert = new X509Certificate(next.certPem);
      internalCertDer = Buffer.from(cert.raw);
      deps.logger.info({ hash: cert.fingerprint256.replaceAll(':', '') }, 'internal TLS certificate changed; new connections get the new one');
    } catch (err) {
      deps.logger.error({ err }, 'the new internal TLS certificate cannot be used; the previous one stays in force');
    }
    tls = next;
  });
  capConnections(plain, limits);
  capConnections(secure, limits);
  const servers = [
    [plain, listen.httpPort],
    [secure, listen.httpsPort],
  ] as const;
  for (const [server, port] of servers) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, listen.host, () => resolve());
      });
    } catch (err) {
      // The HTTPS port taken: the HTTP listener already bound must not stay open behind the error.
      for (const [other] of servers) if (other.listening) other.close();
      throw err;
    }
  }
  const portOf = (server: Server) => (server.address() as AddressInfo).port;
  return {
    httpPort: portOf(plain),
    httpsPort: portOf(secure),
    close: async () => {
      await Promise.all(
        servers.map(
          ([server]) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}

/** The client proxy's pipeline: an information system's request in, its answer out. */
export interface ClientProxy {
  handle(request: IsRequest): Promise<ProxyAnswer>;
}

/** The client proxy without listeners: what `startClientProxy` serves, and what tests call directly. */
export function buildClientProxy(deps: ClientProxyDeps): ClientProxy {
  const admission = new TurnAdmission(EXCHANGES_PER_TURN);
  return { handle: (request) => handle(deps, request, admission) };
}

/** One HTTP request through the pipeline; a request refused before it was read to its end closes the connection. */
async function serve(proxy: ClientProxy, req: IncomingMessage, res: ServerResponse, internalCertDer: () => Buffer): Promise<void> {
  const answer = await proxy.handle({
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body: req,
    connection: () => connectionOf(req.socket as TLSSocket, internalCertDer()),
  });
  const headers = [...answer.headers];
  if (!req.complete) {
    headers.push(['connection', 'close']);
    req.resume();
  }
  sendAnswer(res, answer.status, headers, answer.pieces, answer.done);
}

const isConnections = new WeakMap<TLSSocket, IsConnection>();

/** How the information system is connected; one answer per kept-alive connection: asking OpenSSL for the certificate is not cheap. */
function connectionOf(socket: TLSSocket, own: Buffer): IsConnection {
  if (!socket.encrypted) return { tls: false };
  let connection = isConnections.get(socket);
  if (!connection) {
    const peer = socket.getPeerCertificate();
    const clientCert = peer && peer.raw ? Buffer.from(peer.raw) : undefined;
    connection = { tls: true, clientCert, local: clientCert !== undefined && clientCert.equals(own) };
    isConnections.set(socket, connection);
  }
  return connection;
}

async function handle(deps: ClientProxyDeps, req: IsRequest, admission: TurnAdmission): Promise<ProxyAnswer> {
  const clock = deps.clock ?? SYSTEM_CLOCK;
  const started = clock.wall();
  const path = req.url;
  // The metaservices the client proxy answers from global configuration (the reference's MetadataHandler: GET only).
  const [target, query = ''] = path.split('?', 2) as [string, string?];
  if (req.method === 'GET' && target === `/${LIST_CLIENTS}`) return answerMetaservice(deps, () => listClientsAnswer(deps, req, query));
  if (req.method === 'GET' && target === `/${VERIFICATIONCONF}` && deps.globalConfDir !== undefined) {
    const dir = deps.globalConfDir;
    return answerMetaservice(deps, () => ({ status: 200, headers: VERIFICATIONCONF_HEADERS, pieces: [verificationConf(dir)] }), 500);
  }
  const adapter = path.startsWith('/r1/') ? REST_ADAPTER : path === '/' || path.startsWith('/?') ? SOAP_ADAPTER : undefined;
  const bodies = new ExchangeBodies();
  const timer = new StageTimer(clock);
  const exchange = new ClientExchange(deps, req, adapter ?? REST_ADAPTER, bodies, timer);
  const turn = adapter && admission.enter();
  if (turn) await timer.run('receive', () => turn);
  const answer = adapter
    ? await exchange.run()
    : exchange.refuse(new XrdError('InvalidRequest', { reason: `No X-Road interface at ${path}: use POST / for SOAP or /r1/… for REST` }, { prefix: 'Client' }));
  if (adapter) {
    deps.recorder.monitor({ ...exchange.facts, side: 'Client', started, stages: exchange.timer, succeeded: exchange.fault === undefined, faultCode: exchange.fault?.faultCode, faultString: exchange.fault?.faultString }, clock.wall());
  }
  return { ...answer, done: () => bodies.dispose() };
}

interface Answer {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly pieces: Pieces;
}

/**
 * A metaservice the client proxy answers from configuration (`GET /listClients`, `GET
 * /verificationconf`); a failure is a SOAP fault, with `failureStatus` (the reference answers
 * 500 for /verificationconf).
 */
function answerMetaservice(deps: ClientProxyDeps, answer: () => Answer, failureStatus = 200): ProxyAnswer {
  let reply: Answer;
  try {
    reply = answer();
  } catch (err) {
    const fault = soapFaultReply(faultFor(err, 'Server.ClientProxy', deps.logger, undefined, deps.settings.faultCodes));
    reply = { status: failureStatus, headers: Object.entries(fault.headers), pieces: [fault.body] };
  }
  return { ...reply, done: () => undefined };
}

/** `GET /listClients` (MetadataClientRequestProcessor). */
function listClientsAnswer(deps: ClientProxyDeps, req: IsRequest, query: string): Answer {
  const accept = req.headers.accept;
  const list = listClients(deps.globalConf(), query, accept === undefined ? [] : [accept]);
  return { status: 200, headers: [['content-type', list.contentType]], pieces: [list.body] };
}

/**
 * One exchange through the client proxy's stages: receive (read and parse the request, once),
 * authenticate (the client hosted here and registered, its information system allowed to speak for
 * it), receive the rest (REST's body), sign, log, send (to the provider's security server and
 * back), verify (the provider's signature, and that the response answers this request), log, and
 * the answer; operational monitoring takes the facts afterwards.
 */
class ClientExchange {
  readonly facts: ExchangeFacts;
  /** The fault the information system got, if the exchange failed. */
  fault: SoapFault | undefined;

  constructor(
    private readonly deps: ClientProxyDeps,
    private readonly req: IsRequest,
    private readonly adapter: ClientAdapter,
    private readonly bodies: ExchangeBodies,
    readonly timer: StageTimer,
  ) {
    this.facts = { protocol: adapter.protocol, requestSize: 0 };
  }

  async run(): Promise<Answer> {
    try {
      return await this.stages();
    } catch (err) {
      // The provider's server answered with a fault: passed on as it came (SOAP) or in REST's form.
      if (err instanceof RemoteFault) return this.answerFault(err.fault);
      return this.refuse(err);
    }
  }

  refuse(err: unknown): Answer {
    return this.answerFault(faultFor(err, 'Server.ClientProxy', this.deps.logger, this.facts.identity?.queryId, this.deps.settings.faultCodes));
  }

  private answerFault(fault: SoapFault): Answer {
    this.fault = fault;
    const reply = this.adapter.kind === 'soap' ? soapFaultReply(fault) : restErrorReply(fault, this.req.headers.accept);
    return { status: reply.status, headers: Object.entries(reply.headers), pieces: [reply.body] };
  }

  private async stages(): Promise<Answer> {
    const { deps, req, adapter, timer, facts } = this;
    const prefix = 'Server.ClientProxy';
    const requestId = randomUUID();
    const context = { settings: deps.settings, bodies: this.bodies, requestId, newQueryId: () => `${deps.globalConf().instanceIdentifier}-${randomUUID()}` };
    const received = await timer.run('receive', () => adapter.receive(req, context));
    const identity = (facts.identity = received.identity);
    await timer.run('authenticate', () => this.checkClient(identity.client));
    const { content, size, transport } = await timer.run('receive', () => received.complete());
    facts.requestSize = size;

    const signed = await timer.run('sign', () => deps.signing.sign(identity.client, signedPartsOf(content), prefix));
    await timer.run('log', () => deps.recorder.log(content, signed, identity, requestId, false, 'client'));
    const response = await timer.send(() => deps.providers.send(received.target, { content, signature: signed, ...transport, proxyVersion: PROXY_VERSION, requestId }, adapter.kind));
    this.bodies.add(...bodiesOf(response.content));
    const answer: ProxyContent = await timer.run('verify', () => {
      const answered = response.content!;
      if (answered.kind !== adapter.kind) throw new XrdError(adapter.kind === 'soap' ? 'MissingSoap' : 'MissingRest', { message: 'Response' }, { prefix });
      // Signature first: a tampered answer is a signature failure, not an inconsistent one.
      (deps.verify ?? verifyMessage)(answered, response.signature!, deps.globalConf(), identity.service.provider, prefix, this.now());
      received.checkAnswers(response);
      return answered;
    });
    await timer.run('log', () => deps.recorder.log(answer, response.signature!, identity, requestId, true, 'client'));
    const out = received.answer(response);
    facts.responseSize = out.size;
    if (out.statusCode !== undefined) facts.statusCode = out.statusCode;
    return out;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /**
   * The client must be hosted here and registered (the reference's verifyClientStatus), and its
   * information system may speak for it (seed 003). Registered means the REGISTERED state, or
   * global configuration listing it here already — the state follows it within seconds.
   */
  private checkClient(client: ClientId): void {
    const conf = this.deps.serverConf();
    const local = localClient(conf, client);
    if (!local || (local.status !== 'REGISTERED' && !this.deps.globalConf().isSecurityServerClient(client, conf.serverId))) {
      throw new XrdError('UnknownMember', { reason: `Client '${javaClientId(client)}' not found` }, { prefix: 'Server.ClientProxy' });
    }
    authenticateInformationSystem(conf, client, this.req.connection());
    this.deps.globalConf().checkUpToDate(this.now());
  }
}
