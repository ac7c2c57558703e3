/**
 * The client proxy (MESS_02/03): where a client's information systems send SOAP (`POST /`) and REST
 * (`/r1/…`) requests over HTTP or HTTPS, as the reference's ClientMessageProcessor and
 * ClientRestMessageProcessor take them. For each request it reads the message as it arrives
 * (attachments and REST bodies into the spool), checks the X-Road header and the caller (connection
 * type, internal TLS certificates), signs the message with the client member's key through the
 * signer, sends it to the provider's security server with the reference's transport headers,
 * verifies the signed response, checks it answers the request, logs both, and hands the response
 * back as the provider's service wrote it (a SOAP package rebuilt with its own Content-Type).
 */
import { X509Certificate, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { GlobalConf } from '../../globalconf/global-conf.ts';
import { LIST_CLIENTS, listClients } from '../../metaservice/list-clients.ts';
import { VERIFICATIONCONF, VERIFICATIONCONF_HEADERS, verificationConf } from '../../metaservice/verification-conf.ts';
import { XrdError, toXrdError } from '../../platform/errors.ts';
import type { Logger } from '../../platform/logger.ts';
import { PROXY_SERVER_LIMITS, capConnections, serverLimits, serverTimeouts, type ServerLimits } from '../../platform/server-limits.ts';
import { type Body } from '../../platform/spool.ts';
import { faultCodeIn, readSoapFault, type SoapFault } from '../../protocol/faults.ts';
import { javaClientId, sameClientId, type ClientId } from '../../protocol/identifiers.ts';
import { bodiesOf, type DecodedProxyMessage, type RestContent } from '../../protocol/proxy-message.ts';
import { headerPairs, readRestRequest, restRequestHash } from '../../protocol/rest-message.ts';
import { checkRequestHeader, checkResponseHeader, checkSoapAction, parseSoapHeader, sameServiceId, soapRequestHash } from '../../protocol/soap-message.ts';
import { readSoapPackage, soapPackagePieces } from '../../protocol/soap-package.ts';
import type { InternalTls } from '../../serverconf/internal-tls.ts';
import { localClient, type ServerConf } from '../../serverconf/server-conf.ts';
import { ExchangeBodies, PROXY_VERSION, sendAnswer, type MessageSettings } from '../shared/exchange.ts';
import { authenticateInformationSystem, type IsConnection } from './is-authentication.ts';
import type { MemberSigning } from '../shared/member-signing.ts';
import type { ExchangeFacts, MessageRecorder } from '../shared/message-recorder.ts';
import { RemoteFault, type ProviderLink } from './provider-link.ts';
import { faultFor, restErrorReply, soapFaultReply } from '../shared/replies.ts';
import { verifyMessage } from '../shared/verification.ts';

/** PFS suites of seed 003 for the information-system side. */
export const IS_CIPHERS = [
  'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-SHA384',
  'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES128-SHA256', 'DHE-RSA-AES256-SHA256', 'DHE-RSA-AES256-GCM-SHA384',
].join(':');

export interface ClientProxyDeps {
  readonly serverConf: () => ServerConf;
  readonly globalConf: () => GlobalConf;
  readonly signing: MemberSigning;
  readonly providers: ProviderLink;
  readonly recorder: MessageRecorder;
  readonly logger: Logger;
  readonly settings: MessageSettings;
  /** The global configuration directory, for `GET /verificationconf`; without it that is not served. */
  readonly globalConfDir?: string;
  /** This server's internal TLS certificate (DER) in force, set from the listeners: a client showing it is the server itself. */
  readonly internalCertDer?: () => Buffer;
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
  const withCert: ClientProxyDeps = { ...deps, internalCertDer: () => internalCertDer };
  const handler = (req: IncomingMessage, res: ServerResponse) => void handle(withCert, req, res);
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

interface Answer {
  readonly status: number;
  /** Raw header pairs, repeated names kept (a REST service's Set-Cookie). */
  readonly headers: [string, string][];
  readonly pieces: readonly (Buffer | Body)[];
}

async function handle(deps: ClientProxyDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = Date.now();
  const path = req.url ?? '/';
  // The metaservices the client proxy answers from global configuration (the reference's MetadataHandler: GET only).
  const [target, query = ''] = path.split('?', 2) as [string, string?];
  if (req.method === 'GET' && target === `/${LIST_CLIENTS}`) return answerMetaservice(deps, req, res, () => listClientsAnswer(deps, req, query));
  if (req.method === 'GET' && target === `/${VERIFICATIONCONF}` && deps.globalConfDir !== undefined) {
    const dir = deps.globalConfDir;
    return answerMetaservice(deps, req, res, () => ({ status: 200, headers: VERIFICATIONCONF_HEADERS, pieces: [verificationConf(dir)] }), 500);
  }
  const kind = path.startsWith('/r1/') ? 'rest' : path === '/' || path.startsWith('/?') ? 'soap' : undefined;
  const bodies = new ExchangeBodies();
  const exchange = new ClientExchange(deps, req, kind ?? 'rest', bodies);
  const answer = kind
    ? await exchange.run()
    : exchange.refuse(new XrdError('InvalidRequest', { reason: `No X-Road interface at ${path}: use POST / for SOAP or /r1/… for REST` }, { prefix: 'Client' }));
  if (kind) deps.recorder.monitor({ ...exchange.facts, side: 'Client', started, succeeded: exchange.fault === undefined, faultCode: exchange.fault?.faultCode, faultString: exchange.fault?.faultString });
  const headers = [...answer.headers];
  // A request refused before it was read to its end leaves the connection unusable.
  if (!req.complete) {
    headers.push(['connection', 'close']);
    req.resume();
  }
  sendAnswer(res, answer.status, headers, answer.pieces, () => bodies.dispose());
}

/**
 * A metaservice the client proxy answers from configuration (`GET /listClients`, `GET
 * /verificationconf`); a failure is a SOAP fault, with `failureStatus` (the reference answers
 * 500 for /verificationconf).
 */
function answerMetaservice(deps: ClientProxyDeps, req: IncomingMessage, res: ServerResponse, answer: () => Answer, failureStatus = 200): void {
  let reply: Answer;
  try {
    reply = answer();
  } catch (err) {
    const fault = soapFaultReply(faultFor(err, 'Server.ClientProxy', deps.logger, undefined, deps.settings.faultCodes));
    reply = { status: failureStatus, headers: Object.entries(fault.headers), pieces: [fault.body] };
  }
  req.resume();
  sendAnswer(res, reply.status, reply.headers, reply.pieces, () => undefined);
}

/** `GET /listClients` (MetadataClientRequestProcessor). */
function listClientsAnswer(deps: ClientProxyDeps, req: IncomingMessage, query: string): Answer {
  const list = listClients(deps.globalConf(), query, req.headersDistinct.accept ?? []);
  return { status: 200, headers: [['content-type', list.contentType]], pieces: [list.body] };
}

const isConnections = new WeakMap<TLSSocket, IsConnection>();

class ClientExchange {
  readonly facts: ExchangeFacts;
  /** The fault the information system got, if the exchange failed. */
  fault: SoapFault | undefined;

  constructor(
    private readonly deps: ClientProxyDeps,
    private readonly req: IncomingMessage,
    private readonly kind: 'soap' | 'rest',
    private readonly bodies: ExchangeBodies,
  ) {
    this.facts = { protocol: kind === 'soap' ? 'SOAP' : 'REST', requestSize: 0 };
  }

  async run(): Promise<Answer> {
    try {
      return this.kind === 'soap' ? await this.soap() : await this.rest();
    } catch (err) {
      // The provider's server answered with a fault: passed on as it came (SOAP) or in REST's form.
      if (err instanceof RemoteFault) return this.answerFault(err.fault);
      return this.refuse(err);
    }
  }

  refuse(err: unknown): Answer {
    return this.answerFault(faultFor(err, 'Server.ClientProxy', this.deps.logger, this.facts.queryId, this.deps.settings.faultCodes));
  }

  private answerFault(fault: SoapFault): Answer {
    this.fault = fault;
    const reply = this.kind === 'soap' ? soapFaultReply(fault) : restErrorReply(fault, this.req.headers.accept);
    return { status: reply.status, headers: Object.entries(reply.headers), pieces: [reply.body] };
  }

  private connection(): IsConnection {
    const socket = this.req.socket as TLSSocket;
    if (!socket.encrypted) return { tls: false };
    // One answer per kept-alive connection: asking OpenSSL for the certificate is not cheap.
    let connection = isConnections.get(socket);
    if (!connection) {
      const peer = socket.getPeerCertificate();
      const clientCert = peer && peer.raw ? Buffer.from(peer.raw) : undefined;
      const own = this.deps.internalCertDer?.();
      connection = { tls: true, clientCert, local: clientCert !== undefined && own !== undefined && clientCert.equals(own) };
      isConnections.set(socket, connection);
    }
    return connection;
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
    authenticateInformationSystem(conf, client, this.connection());
    this.deps.globalConf().checkUpToDate();
  }

  private async soap(): Promise<Answer> {
    const { deps, req } = this;
    const { settings } = deps;
    if (req.method !== 'POST') throw new XrdError('InvalidHttpMethod', { method: req.method ?? '' }, { prefix: 'Client' });
    const soapAction = clientError(() => checkSoapAction(header(req, 'soapaction')));
    const pkg = await clientErrorAsync(() => readSoapPackage(req.headers['content-type'], req, { spool: settings.spool, maxSoapBytes: settings.maxSoapBytes, maxBytes: settings.maxMessageBytes }));
    this.bodies.add(...pkg.attachments.map((a) => a.body));
    this.facts.requestSize = pkg.soap.length + pkg.attachments.reduce((n, a) => n + a.body.size, 0);
    // An information system that sends a fault gets it back as the client's own (SoapFaultToClientProxy).
    const sentFault = readSoapFault(pkg.soap);
    if (sentFault) throw new RemoteFault({ faultCode: faultCodeIn(`Client.${sentFault.faultCode}`, settings.faultCodes), faultString: sentFault.faultString, detail: sentFault.detail });
    const request = clientError(() => parseSoapHeader(pkg.soap));
    clientError(() => checkRequestHeader(request));
    Object.assign(this.facts, { client: request.client, service: request.service, queryId: request.id, userId: request.userId, representedParty: request.representedParty });
    this.checkClient(request.client);

    const signed = await deps.signing.sign(request.client, { message: pkg.soap, attachments: pkg.attachments.map((a) => a.body) }, 'Server.ClientProxy');
    const requestId = randomUUID();
    const meta = { queryId: request.id, client: request.client, service: request.service, requestId };
    await deps.recorder.log(pkg, signed, { ...meta, response: false }, 'client');
    const response = await this.send(
      { provider: request.service.provider, server: request.securityServer },
      { content: pkg, signature: signed, originalContentType: pkg.packageContentType, originalSoapAction: soapAction, proxyVersion: PROXY_VERSION, requestId },
      'soap',
    );
    const content = response.content!;
    if (content.kind !== 'soap') throw new XrdError('MissingSoap', { message: 'Response' }, { prefix: 'Server.ClientProxy' });
    // Signature first: a tampered answer is a signature failure, not an inconsistent one.
    verifyMessage(content, response.signature!, deps.globalConf(), request.service.provider, 'Server.ClientProxy');
    const answered = response.soapHeader!;
    try {
      checkResponseHeader(request, answered);
    } catch (err) {
      throw toXrdError(err).within('ServiceFailed').withPrefix('Server.ClientProxy');
    }
    if (answered.requestHash === undefined) throw new XrdError('InconsistentResponse', { reason: 'Response from server proxy is missing request message hash' }, { prefix: 'Server.ClientProxy' });
    if (answered.requestHash !== soapRequestHash(pkg.soap)) throw new XrdError('InconsistentResponse', { reason: 'Request message hash does not match request message' }, { prefix: 'Server.ClientProxy' });
    await deps.recorder.log(content, response.signature!, { ...meta, response: true }, 'client');
    const out = soapPackagePieces(content, response.originalContentType);
    this.facts.responseSize = content.soap.length + (content.attachments ?? []).reduce((n, a) => n + a.body.size, 0);
    return { status: 200, headers: [['content-type', out.contentType]], pieces: out.pieces };
  }

  private async rest(): Promise<Answer> {
    const { deps, req } = this;
    const requestId = randomUUID();
    const rest = clientError(() =>
      readRestRequest(req.method ?? 'GET', req.url ?? '/', headerPairs(req.rawHeaders), { requestId, newQueryId: () => `${deps.globalConf().instanceIdentifier}-${randomUUID()}` }),
    );
    Object.assign(this.facts, { client: rest.client, service: rest.service, queryId: rest.queryId, userId: rest.userId, representedParty: rest.representedParty, restMethod: rest.method });
    this.checkClient(rest.client);
    const body = await this.restBody();
    this.facts.requestSize = rest.headerPart.length + (body?.size ?? 0);

    const signed = await deps.signing.sign(rest.client, { message: rest.headerPart, attachments: body ? [body] : [] }, 'Server.ClientProxy');
    const content: RestContent = { kind: 'rest', role: 'request', headerPart: rest.headerPart, ...(body ? { body } : {}) };
    const meta = { queryId: rest.queryId, client: rest.client, service: rest.service, requestId };
    await deps.recorder.log(content, signed, { ...meta, response: false }, 'client');
    const contentType = header(req, 'content-type');
    const response = await this.send(
      { provider: rest.service.provider, server: rest.securityServer },
      { content, signature: signed, proxyVersion: PROXY_VERSION, requestId, ...(contentType !== undefined ? { originalContentType: contentType } : {}) },
      'rest',
    );
    const answer = response.content!;
    if (answer.kind !== 'rest') throw new XrdError('MissingRest', { message: 'Response' }, { prefix: 'Server.ClientProxy' });
    verifyMessage(answer, response.signature!, deps.globalConf(), rest.service.provider, 'Server.ClientProxy');
    // ClientRestMessageProcessor.checkConsistency: identifiers compared decoded, then the request hash.
    const r = response.restResponse!;
    const inconsistent = (reason: string) => new XrdError('InconsistentResponse', { reason }, { prefix: 'Server.ClientProxy' });
    if (!r.client || !sameClientId(r.client, rest.client)) throw inconsistent('Response client id does not match request message');
    if (r.queryId !== rest.queryId) throw inconsistent('Response message id does not match request message');
    if (!r.service || !sameServiceId(r.service, rest.service)) throw inconsistent('Response service id does not match request message');
    if (r.requestId !== requestId) throw inconsistent('Response message request id does not match request message');
    if (!restRequestHash(rest.headerPart, body).equals(r.requestHash)) throw inconsistent('Response message hash does not match request message');
    await deps.recorder.log(answer, response.signature!, { ...meta, response: true }, 'client');
    this.facts.responseSize = answer.headerPart.length + (answer.body?.size ?? 0);
    this.facts.statusCode = r.status;
    return { status: r.status, headers: r.headers.map(([n, v]) => [n, v]), pieces: answer.body ? [answer.body] : [] };
  }

  /** The information system's body, if it sent at least one byte (the reference's rule for a body part). */
  private async restBody(): Promise<Body | undefined> {
    const writer = this.deps.settings.spool.writer(this.deps.settings.maxMessageBytes);
    try {
      for await (const chunk of this.req) writer.write(chunk as Buffer);
    } catch (err) {
      writer.abort();
      throw err instanceof XrdError ? err.withPrefix('Client') : new XrdError('IOError', { reason: `the request broke off: ${(err as Error).message}` }, { prefix: 'Client', cause: err });
    }
    if (writer.received === 0) {
      writer.abort();
      return undefined;
    }
    const body = writer.end();
    this.bodies.add(body);
    return body;
  }

  private async send(...args: Parameters<ProviderLink['send']>): Promise<DecodedProxyMessage> {
    const response = await this.deps.providers.send(...args);
    this.bodies.add(...bodiesOf(response.content));
    return response;
  }
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

/** Errors in what the information system sent are the client's (`Client.…`). */
function clientError<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw toXrdError(err).withPrefix('Client');
  }
}

async function clientErrorAsync<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw toXrdError(err).withPrefix('Client');
  }
}
