/**
 * The server proxy (MESS_06/07): where other security servers send signed requests for the
 * services this server's clients provide. Over mutually authenticated TLS (our authentication key
 * stays on the HSM; the handshake signature comes from the signer), it checks the calling server's
 * authentication certificate, verifies the request's signature, checks the service exists and the
 * caller may use it, calls the provider's information system, signs the response with the
 * provider member's key and logs both.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { TEXT_XML_UTF8, readSoapFault, soapFault, type SoapFault } from '../protocol/faults.ts';
import { encodeProxyMessage } from '../protocol/proxy-message.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import { forwardableHeaders, headerValue, parseRestHeaderPart, readRestRequest, restResponseParts } from '../protocol/rest-message.ts';
import { checkResponseHeader, formatServiceId, parseSoapHeader, withRequestHash, type ServiceId, type SoapHeader } from '../protocol/soap-message.ts';
import { findService, inGlobalGroup, isCallAllowed, serviceUrl, type ServerConf, type ServiceConf } from '../serverconf/server-conf.ts';
import type { MemberSigning } from './member-signing.ts';
import type { ExchangeFacts, MessageRecorder } from './message-recorder.ts';
import type { PeerVerifier } from './peer-verifier.ts';
import { readBody } from './body.ts';
import { callService } from './service-call.ts';
import { faultFor } from './replies.ts';
import { readSoapBody, writeSoapBody } from './soap-body.ts';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './transport.ts';
import { verifyEnvelope } from './verification.ts';

export interface ServerProxyDeps {
  readonly serverConf: () => ServerConf;
  readonly globalConf: () => GlobalConf;
  readonly signing: MemberSigning;
  readonly peers: PeerVerifier;
  readonly recorder: MessageRecorder;
  readonly logger: Logger;
  readonly maxMessageBytes: number;
}

export async function startServerProxy(deps: ServerProxyDeps, listen: { host: string; port: number; tls: () => Promise<SecureContextOptions> }): Promise<{ close(): Promise<void> }> {
  const server = https.createServer({ requestCert: true, rejectUnauthorized: false, keepAliveTimeout: 60_000 }, (req, res) => {
    void handle(deps, req, res);
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
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const TLS_REFRESH_MS = 10_000;

/** Room for what the transport adds to a message: signature, OCSP responses, hash chains, MIME. */
const TRANSPORT_OVERHEAD_BYTES = 1024 * 1024;

async function handle(deps: ServerProxyDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = Date.now();
  const facts: ExchangeFacts = { protocol: 'SOAP', requestSize: 0 };
  let answer: { contentType: string; body: Buffer; headers?: Record<string, string> };
  let fault: SoapFault | undefined;
  try {
    answer = await process(deps, req, facts);
  } catch (err) {
    fault = faultFor(err, 'Server.ServerProxy', deps.logger, facts.queryId);
    // The reference answers the client proxy's request with HTTP 200 and the fault as text/xml.
    answer = { contentType: TEXT_XML_UTF8, body: soapFault(fault.faultCode, fault.faultString, fault.detail) };
    // A request refused before it was read to its end leaves the connection unusable.
    if (!req.complete) answer.headers = { connection: 'close' };
  }
  deps.recorder.monitor({ ...facts, side: 'Producer', started, succeeded: fault === undefined, faultCode: fault?.faultCode, faultString: fault?.faultString });
  res.writeHead(200, { 'content-type': answer.contentType, ...answer.headers });
  res.end(answer.body);
}

async function process(deps: ServerProxyDeps, req: IncomingMessage, facts: ExchangeFacts): Promise<{ contentType: string; body: Buffer; headers?: Record<string, string> }> {
  const limit = deps.maxMessageBytes + TRANSPORT_OVERHEAD_BYTES;
  // Past the limit the rest is read and dropped, so the fault can still be answered.
  const body = await readBody(req, limit, () => new XrdError('MessageTooLarge', { limit }, { prefix: 'Server.ServerProxy' }));
  facts.requestSize = body.length;
  const request = decodeEnvelope(req.headers['content-type'] ?? '', body, req.headers, 'request');
  if ('faultCode' in request) throw new XrdError('InvalidRequest', { reason: 'a request must not be a fault' }, { prefix: 'Server.ServerProxy' });
  facts.protocol = request.kind === 'soap' ? 'SOAP' : 'REST';
  const conf = deps.globalConf();
  conf.checkUpToDate();
  const socket = req.socket as TLSSocket;

  if (request.kind === 'soap') {
    const header = parseSoapHeader(request.message);
    Object.assign(facts, { client: header.client, service: header.service, queryId: header.id, userId: header.userId, representedParty: header.representedParty });
    await deps.peers.verifyClient(socket, header.client, request.ocspResponses);
    verifyEnvelope(request, conf, header.client, 'Server.ServerProxy');
    const service = serviceFor(deps, header.client, header.service, 'SOAP');
    await deps.recorder.log(request, { queryId: header.id, client: header.client, service: header.service, response: false }, 'server');
    const outgoing = writeSoapBody({ message: request.message, contentType: request.contentType ?? TEXT_XML_UTF8, attachments: request.attachments });
    const response = await callService(formatServiceId(header.service), new URL(service.url), {
      method: 'POST',
      headers: [['content-type', outgoing.contentType], ...(request.soapAction !== undefined ? [['soapaction', request.soapAction] as [string, string]] : [])],
      body: outgoing.body,
    }, { timeoutMs: service.timeoutSeconds * 1000, maxBytes: deps.maxMessageBytes });
    if (response.status !== 200 && response.status !== 500) {
      throw new XrdError('ServiceFailed', { service: formatServiceId(header.service), reason: `the service answered HTTP ${response.status}` }, { prefix: 'Server.ServerProxy' });
    }
    const serviceAnswer = readSoapBody(headerValue(response.headers, 'content-type'), response.body, 'Server.ServerProxy');
    const serviceFault = readSoapFault(serviceAnswer.message);
    // A fault from the service goes back as it is, unsigned, as the reference sends it.
    if (serviceFault) return encodeProxyMessage({ fault: serviceFault });
    let message: Buffer;
    let answered: SoapHeader;
    try {
      message = withRequestHash(serviceAnswer.message, request.message);
      answered = parseSoapHeader(message);
    } catch (err) {
      throw new XrdError('ServiceFailed', { service: formatServiceId(header.service), reason: `the service's answer is not an X-Road SOAP message: ${(err as Error).message}` }, { prefix: 'Server.ServerProxy', cause: err });
    }
    checkResponseHeader(header, answered);
    const signed = await deps.signing.sign(header.service.provider, { message, attachments: serviceAnswer.attachments.map((a) => a.body) }, 'Server.ServerProxy');
    const envelope: Envelope = { kind: 'soap', message, contentType: serviceAnswer.contentType, attachments: serviceAnswer.attachments, signed, ocspResponses: [] };
    await deps.recorder.log(envelope, { queryId: header.id, client: header.client, service: header.service, response: true }, 'server');
    facts.responseSize = message.length;
    return encodeEnvelope(envelope);
  }

  const { startLine, headers } = parseRestHeaderPart(request.message);
  const rest = readRestRequest(startLine[0], startLine[1], headers);
  // The client proxy chose the ids; keep them rather than the fresh ones readRestRequest makes.
  const queryId = headerValue(headers, 'x-road-id') ?? rest.queryId;
  const requestId = headerValue(headers, 'x-road-request-id') ?? rest.requestId;
  Object.assign(facts, { client: rest.client, service: rest.service, queryId, userId: rest.userId, representedParty: rest.representedParty, restMethod: rest.method });
  await deps.peers.verifyClient(socket, rest.client, request.ocspResponses);
  verifyEnvelope(request, conf, rest.client, 'Server.ServerProxy');
  const service = serviceFor(deps, rest.client, rest.service, 'REST');
  await deps.recorder.log(request, { queryId, client: rest.client, service: rest.service, response: false }, 'server');
  const requestBody = request.attachments[0]?.body;
  const target = serviceUrl(service, rest.servicePath);
  const forwarded = forwardableHeaders(headers);
  if (request.attachments[0] && !headerValue(forwarded, 'content-type')) forwarded.push(['content-type', request.attachments[0].contentType]);
  const response = await callService(formatServiceId(rest.service), target, { method: rest.method, headers: forwarded, body: requestBody }, { timeoutMs: service.timeoutSeconds * 1000, maxBytes: deps.maxMessageBytes });
  const parts = restResponseParts({ headerPart: request.message, body: requestBody, client: rest.client, service: rest.service, queryId, requestId }, response.status, response.reason, response.headers);
  const responseBody = response.body.length ? response.body : undefined;
  const signed = await deps.signing.sign(rest.service.provider, { message: parts.headerPart, attachments: responseBody ? [responseBody] : [] }, 'Server.ServerProxy');
  const bodyType = headerValue(response.headers, 'content-type') ?? 'application/octet-stream';
  const envelope: Envelope = { kind: 'rest', message: parts.headerPart, attachments: responseBody ? [{ contentType: bodyType, body: responseBody }] : [], signed, ocspResponses: [] };
  await deps.recorder.log(envelope, { queryId, client: rest.client, service: rest.service, response: true }, 'server');
  facts.responseSize = response.body.length;
  facts.statusCode = response.status;
  return encodeEnvelope(envelope);
}

/** @throws UnknownService, AccessDenied (the reference's texts) */
function serviceFor(deps: ServerProxyDeps, client: ClientId, service: ServiceId, type: 'SOAP' | 'REST'): ServiceConf {
  const found = findService(deps.serverConf(), service.provider, service.serviceCode, service.serviceVersion);
  const name = formatServiceId(service);
  if (!found) throw new XrdError('UnknownService', { service: name }, { prefix: 'Server.ServerProxy' });
  if (found.type !== type) throw new XrdError('InvalidRequest', { reason: `Service is a ${found.type} service and cannot be called using ${type} interface` }, { prefix: 'Server.ServerProxy' });
  const shared = deps.globalConf().shared;
  const isMember = (group: string) => inGlobalGroup(shared, group, client);
  if (!isCallAllowed(found, client, isMember)) throw new XrdError('AccessDenied', { service: name }, { prefix: 'Server.ServerProxy' });
  return found;
}
