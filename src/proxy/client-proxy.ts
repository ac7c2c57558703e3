/**
 * The client proxy (MESS_02/03): where a client's information systems send SOAP (`POST /`) and REST
 * (`/r1/…`) requests over HTTP or HTTPS. For each request it checks the caller (connection type,
 * internal TLS certificates), checks the X-Road header, signs the message with the client
 * member's key through the signer, sends it to the provider's security server, verifies the signed
 * response and logs both before handing the response back.
 */
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { TEXT_XML_UTF8, type SoapFault } from '../protocol/faults.ts';
import { encodeIdHeader, forwardableHeaders, headerPairs, headerValue, parseRestHeaderPart, readRestRequest, restRequestHash } from '../protocol/rest-message.ts';
import { checkResponseHeader, parseSoapHeader, soapRequestHash } from '../protocol/soap-message.ts';
import type { ServerConf } from '../serverconf/server-conf.ts';
import { authenticateInformationSystem, type IsConnection } from './is-authentication.ts';
import type { MemberSigning } from './member-signing.ts';
import type { ExchangeFacts, MessageRecorder } from './message-recorder.ts';
import { RemoteFault, type ProviderLink } from './provider-link.ts';
import { faultFor, restErrorReply, soapFaultReply, type Reply } from './replies.ts';
import { readSoapBody, writeSoapBody } from './soap-body.ts';
import type { Envelope } from './transport.ts';
import { verifyEnvelope } from './verification.ts';

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
  readonly maxMessageBytes: number;
}

export interface ClientProxyListeners {
  readonly host: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly internalTls: { certPem: string; keyPem: string };
}

export async function startClientProxy(deps: ClientProxyDeps, listen: ClientProxyListeners): Promise<{ close(): Promise<void> }> {
  const http = buildApp(deps, undefined);
  const https = buildApp(deps, {
    key: listen.internalTls.keyPem,
    cert: listen.internalTls.certPem,
    // Certificates are asked for but checked against the client's IS certificates, not a CA.
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ciphers: IS_CIPHERS,
  });
  await http.listen({ host: listen.host, port: listen.httpPort });
  await https.listen({ host: listen.host, port: listen.httpsPort });
  return { close: async () => void (await Promise.all([http.close(), https.close()])) };
}

function buildApp(deps: ClientProxyDeps, tls: object | undefined): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: deps.maxMessageBytes, ...(tls ? { https: tls } : {}) } as never) as unknown as FastifyInstance;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const handle = (kind: 'soap' | 'rest') => async (request: FastifyRequest, reply: FastifyReply) => {
    const started = Date.now();
    const processor = new ClientRequest(deps, request, kind);
    const answer = await processor.run();
    deps.recorder.monitor({ ...processor.facts, side: 'Client', started, succeeded: processor.fault === undefined, faultCode: processor.fault?.faultCode, faultString: processor.fault?.faultString });
    void reply.code(answer.status).headers(answer.headers).send(answer.body);
  };
  app.route({ method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'], url: '/r1/*', handler: handle('rest') });
  app.route({ method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'], url: '/', handler: handle('soap') });
  app.setErrorHandler((err: Error & { code?: string }, request, reply) => {
    const fault = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? new XrdError('MessageTooLarge', { limit: deps.maxMessageBytes }, { prefix: 'Client' }) : toXrdError(err).withPrefix('Server.ClientProxy');
    const answer = request.url.startsWith('/r1/') ? restErrorReply(fault) : soapFaultReply(fault);
    void reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const answer = restErrorReply(new XrdError('InvalidRequest', { reason: `No X-Road interface at ${request.url}: use POST / for SOAP or /r1/… for REST` }, { prefix: 'Client' }));
    void reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
  return app;
}

const isConnections = new WeakMap<TLSSocket, IsConnection>();

class ClientRequest {
  readonly facts: ExchangeFacts;

  constructor(
    private readonly deps: ClientProxyDeps,
    private readonly request: FastifyRequest,
    private readonly kind: 'soap' | 'rest',
  ) {
    this.facts = { protocol: kind === 'soap' ? 'SOAP' : 'REST', requestSize: this.body.length };
  }

  private get body(): Buffer {
    return Buffer.isBuffer(this.request.body) ? this.request.body : Buffer.alloc(0);
  }

  /** The fault the information system got, if the exchange failed. */
  fault: SoapFault | undefined;

  async run(): Promise<Reply> {
    try {
      return this.kind === 'soap' ? await this.soap() : await this.rest();
    } catch (err) {
      if (err instanceof RemoteFault) {
        // The provider's server answered with a fault: passed on as it came (SOAP) or in REST's form.
        this.fault = err.fault;
        return this.kind === 'soap' ? soapFaultReply(err.fault) : restErrorReply(err.fault, this.accept);
      }
      this.fault = faultFor(err, 'Server.ClientProxy', this.deps.logger, this.facts.queryId);
      return this.kind === 'soap' ? soapFaultReply(this.fault) : restErrorReply(this.fault, this.accept);
    }
  }

  private get accept(): string | undefined {
    return this.request.headers.accept;
  }

  private connection(): IsConnection {
    const socket = this.request.raw.socket as TLSSocket;
    if (!socket.encrypted) return { tls: false };
    // One answer per kept-alive connection: asking OpenSSL for the certificate is not cheap.
    let connection = isConnections.get(socket);
    if (!connection) {
      const peer = socket.getPeerCertificate();
      connection = { tls: true, clientCert: peer && peer.raw ? Buffer.from(peer.raw) : undefined };
      isConnections.set(socket, connection);
    }
    return connection;
  }

  private async soap(): Promise<Reply> {
    if (this.request.method !== 'POST') throw new XrdError('InvalidHttpMethod', { method: this.request.method }, { prefix: 'Client' });
    const { message, contentType, attachments } = readSoapBody(this.request.headers['content-type'], this.body, 'Client');
    const header = clientError(() => parseSoapHeader(message));
    Object.assign(this.facts, { client: header.client, service: header.service, queryId: header.id, userId: header.userId, representedParty: header.representedParty });
    authenticateInformationSystem(this.deps.serverConf(), header.client, this.connection());
    this.deps.globalConf().checkUpToDate();
    const signed = await this.deps.signing.sign(header.client, { message, attachments: attachments.map((a) => a.body) }, 'Server.ClientProxy');
    const request: Envelope = { kind: 'soap', message, contentType, soapAction: this.request.headers.soapaction as string | undefined, attachments, signed, ocspResponses: [] };
    await this.deps.recorder.log(request, { queryId: header.id, client: header.client, service: header.service, response: false }, 'client');
    const response = await this.deps.providers.send(header.service.provider, request);
    if (response.kind !== 'soap') throw new XrdError('InvalidRequest', { reason: 'the provider answered a SOAP request with a REST message' }, { prefix: 'Server.ClientProxy' });
    // Signature first: a tampered answer is a signature failure, not an inconsistent one.
    verifyEnvelope(response, this.deps.globalConf(), header.service.provider, 'Server.ClientProxy');
    asClientProxy(() => {
      const answered = parseSoapHeader(response.message);
      checkResponseHeader(header, answered);
      if (answered.requestHash !== soapRequestHash(message)) throw new XrdError('InconsistentResponse', { reason: 'xrd:requestHash is missing or does not match the request sent' });
    });
    await this.deps.recorder.log(response, { queryId: header.id, client: header.client, service: header.service, response: true }, 'client');
    const body = writeSoapBody({ message: response.message, contentType: response.contentType ?? TEXT_XML_UTF8, attachments: response.attachments });
    this.facts.responseSize = body.body.length;
    return { status: 200, headers: { 'content-type': body.contentType }, body: body.body };
  }

  private async rest(): Promise<Reply> {
    const url = this.request.raw.url ?? this.request.url;
    const received = headerPairs(this.request.raw.rawHeaders);
    const rest = clientError(() => readRestRequest(this.request.method, url, received));
    Object.assign(this.facts, { client: rest.client, service: rest.service, queryId: rest.queryId, userId: rest.userId, representedParty: rest.representedParty, restMethod: rest.method });
    authenticateInformationSystem(this.deps.serverConf(), rest.client, this.connection());
    this.deps.globalConf().checkUpToDate();
    const body = this.body.length > 0 ? this.body : undefined;
    const signed = await this.deps.signing.sign(rest.client, { message: rest.headerPart, attachments: body ? [body] : [] }, 'Server.ClientProxy');
    const bodyType = headerValue(received, 'content-type') ?? 'application/octet-stream';
    const request: Envelope = { kind: 'rest', message: rest.headerPart, attachments: body ? [{ contentType: bodyType, body }] : [], signed, ocspResponses: [] };
    await this.deps.recorder.log(request, { queryId: rest.queryId, client: rest.client, service: rest.service, response: false }, 'client');
    const response = await this.deps.providers.send(rest.service.provider, request);
    if (response.kind !== 'rest') throw new XrdError('InvalidRequest', { reason: 'the provider answered a REST request with a SOAP message' }, { prefix: 'Server.ClientProxy' });
    verifyEnvelope(response, this.deps.globalConf(), rest.service.provider, 'Server.ClientProxy');
    const provider = rest.service.provider;
    const { startLine, headers } = asClientProxy(() => {
      const part = parseRestHeaderPart(response.message);
      const expected: [string, string][] = [
        ['x-road-id', rest.queryId],
        ['x-road-request-id', rest.requestId],
        ['x-road-client', encodeIdHeader([rest.client.instance, rest.client.memberClass, rest.client.memberCode, rest.client.subsystem])],
        ['x-road-service', encodeIdHeader([provider.instance, provider.memberClass, provider.memberCode, provider.subsystem, rest.service.serviceCode])],
        ['x-road-request-hash', restRequestHash(rest.headerPart, body)],
      ];
      for (const [name, value] of expected) {
        if (headerValue(part.headers, name) !== value) throw new XrdError('InconsistentResponse', { reason: `${name} does not match the request sent` });
      }
      return part;
    });
    await this.deps.recorder.log(response, { queryId: rest.queryId, client: rest.client, service: rest.service, response: true }, 'client');
    const responseBody = response.attachments[0]?.body ?? Buffer.alloc(0);
    this.facts.responseSize = responseBody.length;
    const out: Record<string, string> = {};
    // A peer's header part could name framing headers; only end-to-end ones reach the information system.
    for (const [name, value] of forwardableHeaders(headers, ['x-road-request-id', 'x-road-request-hash'])) out[name.toLowerCase()] = value;
    if (response.attachments[0]) out['content-type'] = response.attachments[0].contentType;
    this.facts.statusCode = Number(startLine[0]);
    return { status: this.facts.statusCode, headers: out, body: responseBody };
  }
}

/** Problems with the provider's answer are reported by the client proxy. */
function asClientProxy<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw toXrdError(err).withPrefix('Server.ClientProxy');
  }
}

/** Errors in what the information system sent are the client's (`Client.…`). */
function clientError<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw toXrdError(err).withPrefix('Client');
  }
}
