/**
 * The server proxy's pipeline in memory (buildServerProxy), every fault path with the code the
 * reference's server proxy answers a client proxy with: HTTP 200 and the fault as text/xml
 * (HandlerBase.sendErrorResponse), read failures under ServiceFailed, access and signature checks
 * not (ServerMessageProcessor). Requests are built in the real wire format (encodeProxyMessage);
 * the signer, the calling server's certificate check, the provider's information system, the
 * message log and the clock are fakes (test/support/proxy-pipeline.ts).
 */
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { encodeProxyMessage, signedPartsOf, type ProxyContent, type ProxyMessage } from '../../src/protocol/proxy-message.ts';
import { restRequestHeaderPart } from '../../src/protocol/rest-message.ts';
import { PROXY_VERSION } from '../../src/proxy/shared/exchange.ts';
import { answerBytes, CLIENT, echoingSoapService, FakeSigning, pipelines, soapMessage, type Pipelines } from '../support/proxy-pipeline.ts';

const soapContent = (message = soapMessage()): ProxyContent => ({ kind: 'soap', soap: Buffer.from(message), contentType: 'text/xml; charset=UTF-8' });

const restContent = (path = '/r1/LOCAL/GOV/1111/PROVIDER/rest-test/random'): ProxyContent => ({
  kind: 'rest',
  role: 'request',
  headerPart: restRequestHeaderPart('GET', path, [['x-road-client', 'LOCAL/COM/2222/CLIENT'], ['x-road-id', 'q-1'], ['x-road-request-id', 'r-1']]),
});

/** A client proxy's request, signed by the fake signer unless `signature` says otherwise. */
async function send(p: Pipelines, content: ProxyContent, options: { unsigned?: boolean; extra?: Partial<ProxyMessage>; method?: string; headers?: Record<string, string>; body?: Buffer } = {}) {
  const signature = options.unsigned ? undefined : await new FakeSigning().sign(CLIENT, signedPartsOf(content), 'Server.ClientProxy');
  const encoded = signature
    ? encodeProxyMessage({ content, signature, proxyVersion: PROXY_VERSION, requestId: 'r-1', ...options.extra })
    : encodeProxyMessage({ content, fault: { faultCode: 'Server.ClientProxy.CannotCreateSignature', faultString: 'no signature' }, proxyVersion: PROXY_VERSION });
  const chunks: Buffer[] = [];
  for (const piece of encoded.pieces) chunks.push(piece as Buffer);
  const answer = await p.server.handle({
    method: options.method ?? 'POST',
    headers: { ...encoded.headers, 'content-type': encoded.contentType, ...options.headers },
    body: Readable.from([options.body ?? Buffer.concat(chunks)]),
    socket: {} as TLSSocket,
  });
  const body = await answerBytes(answer);
  const contentType = answer.headers.find(([n]) => n === 'content-type')?.[1];
  return { status: answer.status, contentType, text: body.toString(), faultCode: contentType?.startsWith('text/xml') ? /<faultcode>([^<]*)</.exec(body.toString())?.[1] : undefined };
}

/** The reference's server proxy answers a fault with HTTP 200 and the bare fault as text/xml. */
function expectFault(answer: Awaited<ReturnType<typeof send>>, code: string): void {
  expect(answer.status).toBe(200);
  expect(answer.contentType).toBe('text/xml; charset=UTF-8');
  expect(answer.faultCode).toBe(code);
}

describe('the server proxy pipeline (buildServerProxy), in memory', () => {
  it('a signed SOAP request: the service called with the message as sent, the answer signed with the request hash', async () => {
    const p = pipelines();
    p.service = echoingSoapService;
    const answer = await send(p, soapContent());
    expect(answer.contentType).toMatch(/^multipart\/mixed/);
    expect(answer.text).toContain('<data>42</data>');
    expect(answer.text).toContain('xrd:requestHash');
    expect(p.serviceCalls.map((c) => c.url)).toEqual(['http://provider.test/soap']);
    expect(p.serverSigning.signed).toEqual(['GOV/1111']);
    const record = p.records.find((r) => r.securityServerType === 'Producer')!;
    expect(record).toMatchObject({ succeeded: true, serviceCode: 'getRandom', messageId: 'q-1' });
    expect(record.requestInTs < record.requestOutTs! && record.requestOutTs! < record.responseInTs! && record.responseInTs! < record.responseOutTs!).toBe(true);
    expect(Object.keys(p.stages[0]!.durations).sort()).toEqual(['answer', 'authenticate', 'authorize', 'log', 'receive', 'send', 'sign', 'verify']);
  });

  it('a signed REST request: the service called at its URL, its status and body signed in the response', async () => {
    const p = pipelines();
    p.service = () => ({ status: 404, headers: [['content-type', 'text/plain']], body: 'none' });
    const answer = await send(p, restContent());
    expect(answer.text).toContain('application/x-road-rest-response');
    expect(answer.text).toContain('404');
    expect(p.serviceCalls).toEqual([{ url: 'http://provider.test/rest/random', method: 'GET', body: '' }]);
    expect(p.records[0]).toMatchObject({ succeeded: true, statusCode: 404, restMethod: 'GET' });
  });

  describe('reading the request', () => {
    it('GET: Server.ServerProxy.InvalidHttpMethod', async () => {
      expectFault(await send(pipelines(), soapContent(), { method: 'GET' }), 'Server.ServerProxy.InvalidHttpMethod');
    });

    it('a client proxy older than server-min-supported-client-version: Server.ServerProxy.ClientProxyVersionNotSupported', async () => {
      expectFault(await send(pipelines({ minClientVersion: '7.9.0' }), soapContent()), 'Server.ServerProxy.ClientProxyVersionNotSupported');
    });

    it('not a proxy message: Server.ServerProxy.ServiceFailed.InvalidContentType', async () => {
      expectFault(await send(pipelines(), soapContent(), { headers: { 'content-type': 'text/plain' } }), 'Server.ServerProxy.ServiceFailed.InvalidContentType');
    });

    it('malformed multipart: Server.ServerProxy.ServiceFailed.…', async () => {
      const answer = await send(pipelines(), soapContent(), { body: Buffer.from('--xtopnope\r\nno headers end') });
      expect(answer.faultCode).toMatch(/^Server\.ServerProxy\.(ServiceFailed\.|MissingSoap)/);
    });

    it('no X-Road header in the message: Server.ServerProxy.ServiceFailed.MissingHeader', async () => {
      const bare = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><x/></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
      expectFault(await send(pipelines(), soapContent(bare)), 'Server.ServerProxy.ServiceFailed.MissingHeader');
    });

    it('no signature (a fault in its place): Server.ServerProxy.MissingSignature', async () => {
      expectFault(await send(pipelines(), soapContent(), { unsigned: true }), 'Server.ServerProxy.MissingSignature');
    });

    it('over the size limit: Server.ServerProxy.MessageTooLarge', async () => {
      expectFault(await send(pipelines({ maxMessageBytes: 300 }), soapContent()), 'Server.ServerProxy.MessageTooLarge');
    });

    it('another security server named: Server.ServerProxy.ServiceFailed.InvalidSecurityServer', async () => {
      const named = '<xrd:securityServer id:objectType="SERVER"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>GOV</id:memberClass><id:memberCode>1111</id:memberCode><id:serverCode>ss9</id:serverCode></xrd:securityServer>';
      expectFault(await send(pipelines(), soapContent(soapMessage({ extra: named }))), 'Server.ServerProxy.ServiceFailed.InvalidSecurityServer');
    });

    it('a provider this server does not host: Server.ServerProxy.ServiceFailed.UnknownMember', async () => {
      expectFault(await send(pipelines(), soapContent(soapMessage({ service: 'LOCAL/GOV/1111/ELSEWHERE/getRandom' }))), 'Server.ServerProxy.ServiceFailed.UnknownMember');
    });

    it('the calling server’s certificate refused for the client: Server.ServerProxy.ServiceFailed.SslAuthenticationFailed', async () => {
      const p = pipelines();
      p.peerRefusal = new XrdError('SslAuthenticationFailed', { reason: 'Client is not authorized to send messages on behalf of the client' });
      expectFault(await send(p, soapContent()), 'Server.ServerProxy.ServiceFailed.SslAuthenticationFailed');
    });
  });

  describe('the service and access to it', () => {
    it('an unknown service: Server.ServerProxy.UnknownService', async () => {
      expectFault(await send(pipelines(), soapContent(soapMessage({ service: 'LOCAL/GOV/1111/PROVIDER/nothing' }))), 'Server.ServerProxy.UnknownService');
    });

    it('a disabled service: Server.ServerProxy.ServiceDisabled with the administrator’s notice', async () => {
      const answer = await send(pipelines(), soapContent(soapMessage({ service: 'LOCAL/GOV/1111/PROVIDER/switchedOff' })));
      expectFault(answer, 'Server.ServerProxy.ServiceDisabled');
      expect(answer.text).toContain('out for maintenance');
    });

    it('no access right: Server.ServerProxy.AccessDenied, for SOAP and REST; the service never called', async () => {
      const p = pipelines();
      expectFault(await send(p, soapContent(soapMessage({ service: 'LOCAL/GOV/1111/PROVIDER/private' }))), 'Server.ServerProxy.AccessDenied');
      expect(p.serviceCalls).toEqual([]);
    });

    it('a signature that does not match the message: Server.ServerProxy.SignatureVerification.InvalidSignatureValue', async () => {
      const p = pipelines();
      const content = soapContent();
      const signature = await new FakeSigning().sign(CLIENT, signedPartsOf(soapContent(soapMessage({ id: 'other' }))), 'Server.ClientProxy');
      const encoded = encodeProxyMessage({ content, signature, proxyVersion: PROXY_VERSION });
      const answer = await p.server.handle({ method: 'POST', headers: { ...encoded.headers, 'content-type': encoded.contentType }, body: Readable.from([Buffer.concat(encoded.pieces as Buffer[])]), socket: {} as TLSSocket });
      const text = (await answerBytes(answer)).toString();
      expect(/<faultcode>([^<]*)</.exec(text)![1]).toBe('Server.ServerProxy.SignatureVerification.InvalidSignatureValue');
      expect(p.serviceCalls).toEqual([]);
    });

    it('the message log refuses: Server.ServerProxy.LoggingFailed, the service never called', async () => {
      const p = pipelines();
      p.serverLog.fail = new XrdError('LoggingFailed', { reason: 'timestamping failed for too long' });
      const answer = await send(p, soapContent());
      expect(answer.faultCode).toMatch(/^Server\.ServerProxy\.LoggingFailed/);
      expect(p.serviceCalls).toEqual([]);
    });
  });

  describe('the service’s answer', () => {
    it('the service cannot be reached: Server.ServerProxy.ServiceFailed.NetworkError', async () => {
      const p = pipelines();
      p.service = (url) => new XrdError('NetworkError', { target: url.origin, reason: 'connect ECONNREFUSED' });
      expectFault(await send(p, soapContent()), 'Server.ServerProxy.ServiceFailed.NetworkError');
      expectFault(await send(p, restContent()), 'Server.ServerProxy.ServiceFailed.NetworkError');
    });

    it('the service times out: Server.ServerProxy.ServiceFailed.NetworkError', async () => {
      const p = pipelines();
      p.service = (url) => new XrdError('NetworkError', { target: url.origin, reason: 'no response within 5000 ms' });
      expectFault(await send(p, soapContent()), 'Server.ServerProxy.ServiceFailed.NetworkError');
    });

    it('an HTTP status other than 200 or 500: Server.ServerProxy.ServiceFailed.HttpError', async () => {
      const p = pipelines();
      p.service = () => ({ status: 404, body: 'not here' });
      expectFault(await send(p, soapContent()), 'Server.ServerProxy.ServiceFailed.HttpError');
    });

    it('an answer that is not SOAP: Server.ServerProxy.ServiceFailed.InvalidSoap', async () => {
      const p = pipelines();
      p.service = () => ({ status: 200, headers: [['content-type', 'text/xml']], body: '<not-closed' });
      expectFault(await send(p, soapContent()), 'Server.ServerProxy.ServiceFailed.InvalidSoap');
    });

    it('an answer without the X-Road header: Server.ServerProxy.ServiceFailed.MissingHeader', async () => {
      const p = pipelines();
      p.service = () => ({ status: 200, headers: [['content-type', 'text/xml']], body: `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><x/></SOAP-ENV:Body></SOAP-ENV:Envelope>` });
      expectFault(await send(p, soapContent()), 'Server.ServerProxy.ServiceFailed.MissingHeader');
    });

    it('an empty answer: Server.ServerProxy.ServiceFailed.InvalidMessage', async () => {
      const p = pipelines();
      p.service = () => ({ status: 200, headers: [['content-type', 'multipart/related; boundary=b']], body: '' });
      expectFault(await send(p, soapContent()), 'Server.ServerProxy.ServiceFailed.InvalidMessage');
    });

    it('the service’s fault goes back as it came, unsigned', async () => {
      const p = pipelines();
      p.service = () => ({ status: 500, headers: [['content-type', 'text/xml']], body: `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>no luck</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>` });
      expectFault(await send(p, soapContent()), 'SOAP-ENV:Server');
      expect(p.serverSigning.signed).toEqual([]);
    });

    it('the signer refuses the response: Server.ServerProxy.CannotCreateSignature.TokenNotActive', async () => {
      const p = pipelines();
      p.service = echoingSoapService;
      p.serverSigning.fail = new XrdError('TokenNotActive', { token: '0' }).within('CannotCreateSignature');
      expectFault(await send(p, soapContent()), 'Server.ServerProxy.CannotCreateSignature.TokenNotActive');
    });
  });
});
