/**
 * The client proxy's pipeline in memory (buildClientProxy), every fault path with the code and HTTP
 * status the reference gives an information system: a SOAP fault (HTTP 200, text/xml) or REST's
 * error JSON with X-Road-Error and its status. The provider's side is the server proxy's pipeline in
 * memory behind the real wire format (test/support/proxy-pipeline.ts); the signer, the message log
 * and the clock are fakes. The local instance's e2e tests prove the same paths through real sockets.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { STAGES } from '../../src/proxy/shared/pipeline.ts';
import { answerBytes, echoingSoapService, faultCodeOf, FIXED_CLOCK_START, IS_CERT, isRequest, pipelines, soapMessage, type Pipelines } from '../support/proxy-pipeline.ts';

const XML = { 'Content-Type': 'text/xml; charset=UTF-8' };

async function call(p: Pipelines, request: ReturnType<typeof isRequest>) {
  const answer = await p.client.handle(request);
  const body = await answerBytes(answer);
  const header = (name: string) => answer.headers.find(([n]) => n.toLowerCase() === name)?.[1];
  return { status: answer.status, body, header, faultCode: faultCodeOf(answer, body), text: body.toString() };
}

const soap = (p: Pipelines, message = soapMessage(), headers: Record<string, string> = XML, connection?: Parameters<typeof isRequest>[4]) => call(p, isRequest('POST', '/', headers, message, connection));
const rest = (p: Pipelines, path = '/r1/LOCAL/GOV/1111/PROVIDER/rest-test/random', headers: Record<string, string> = { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT' }, method = 'GET', body = '') =>
  call(p, isRequest(method, path, headers, body));

/** A SOAP fault goes to the information system with HTTP 200, text/xml (the reference's HandlerBase). */
function expectSoapFault(answer: Awaited<ReturnType<typeof call>>, code: string): void {
  expect(answer.status).toBe(200);
  expect(answer.header('content-type')).toBe('text/xml; charset=UTF-8');
  expect(answer.faultCode).toBe(code);
}

describe('the client proxy pipeline (buildClientProxy), in memory', () => {
  it('a SOAP call goes through every stage: signed on both sides, logged four times, answered with the service’s data', async () => {
    const p = pipelines();
    p.service = echoingSoapService;
    const answer = await soap(p);
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('<data>42</data>');
    expect(answer.text).toContain('xrd:requestHash');
    expect(p.clientSigning.signed).toEqual(['COM/2222']);
    expect(p.serverSigning.signed).toEqual(['GOV/1111']);
    expect(p.clientLog.logged.map((l) => l.isResponse)).toEqual([false, true]);
    expect(p.serverLog.logged.map((l) => l.isResponse)).toEqual([false, true]);
    // Each proxy's record has the four timestamps, and each stage it ran was timed.
    const client = p.records.find((r) => r.securityServerType === 'Client')!;
    expect(client).toMatchObject({ succeeded: true, messageId: 'q-1', serviceCode: 'getRandom', requestInTs: FIXED_CLOCK_START });
    expect(client.requestOutTs! < client.responseInTs! && client.responseInTs! < client.responseOutTs!).toBe(true);
    const clientStages = p.stages.find((s) => s.side === 'Client')!.durations;
    expect(Object.keys(clientStages).sort()).toEqual(['authenticate', 'log', 'receive', 'send', 'sign', 'verify']);
    expect(Object.keys(p.stages.find((s) => s.side === 'Producer')!.durations).every((s) => (STAGES as readonly string[]).includes(s))).toBe(true);
  });

  it('a REST call goes through the same stages and comes back with the service’s status and body', async () => {
    const p = pipelines();
    p.service = () => ({ status: 201, headers: [['content-type', 'application/json']], body: '{"n":7}' });
    const answer = await rest(p, '/r1/LOCAL/GOV/1111/PROVIDER/rest-test/random', { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT', 'Content-Type': 'application/json' }, 'POST', '{"q":1}');
    expect(answer.status).toBe(201);
    expect(answer.text).toBe('{"n":7}');
    expect(answer.header('x-road-request-hash')).toBeDefined();
    expect(p.serviceCalls).toEqual([{ url: 'http://provider.test/rest/random', method: 'POST', body: '{"q":1}' }]);
    expect(p.records.find((r) => r.securityServerType === 'Client')).toMatchObject({ succeeded: true, restMethod: 'POST', statusCode: 201, serviceType: 'REST' });
  });

  describe('what the information system sent wrong is Client.…', () => {
    it('no X-Road header: Client.MissingHeader', async () => {
      const bare = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><x/></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
      expectSoapFault(await soap(pipelines(), bare), 'Client.MissingHeader');
    });

    it('a header without xrd:id: Client.MissingHeaderField', async () => {
      expectSoapFault(await soap(pipelines(), soapMessage().replace(/<xrd:id>.*<\/xrd:id>/, '')), 'Client.MissingHeaderField');
    });

    it('a body element not named after the service: Client.InconsistentHeaders', async () => {
      expectSoapFault(await soap(pipelines(), soapMessage({ body: '<ns:other xmlns:ns="urn:t"/>' })), 'Client.InconsistentHeaders');
    });

    it('protocol version 3.1: Client.InvalidProtocolVersion', async () => {
      expectSoapFault(await soap(pipelines(), soapMessage().replace('>4.0<', '>3.1<')), 'Client.InvalidProtocolVersion');
    });

    it('malformed XML: Client.InvalidSoap', async () => {
      expectSoapFault(await soap(pipelines(), '<SOAP-ENV:Envelope'), 'Client.InvalidSoap');
    });

    it('a request carrying xrd:requestHash: Client.InvalidSoap', async () => {
      expectSoapFault(await soap(pipelines(), soapMessage({ extra: '<xrd:requestHash>x</xrd:requestHash>' })), 'Client.InvalidSoap');
    });

    it('a multipart package without a boundary: Client.InvalidContentType', async () => {
      expectSoapFault(await soap(pipelines(), soapMessage(), { 'Content-Type': 'multipart/related' }), 'Client.InvalidContentType');
    });

    it('a body over the limit: Client.MessageTooLarge', async () => {
      expectSoapFault(await soap(pipelines({ maxMessageBytes: 200 }), soapMessage()), 'Client.MessageTooLarge');
    });

    it('GET on the SOAP address: Client.InvalidHttpMethod', async () => {
      expectSoapFault(await call(pipelines(), isRequest('GET', '/', {})), 'Client.InvalidHttpMethod');
    });

    it('a SOAPAction that is no quoted URI: Client.InvalidSoapAction', async () => {
      expectSoapFault(await soap(pipelines(), soapMessage(), { ...XML, SOAPAction: 'no quotes' }), 'Client.InvalidSoapAction');
    });

    it('REST without X-Road-Client: 400 Client.MissingHeaderField', async () => {
      const answer = await rest(pipelines(), undefined, {});
      expect(answer.status).toBe(400);
      expect(answer.faultCode).toBe('Client.MissingHeaderField');
    });

    it('REST with a malformed X-Road-Client: 400 Client.InvalidClientIdentifier', async () => {
      const answer = await rest(pipelines(), undefined, { 'X-Road-Client': 'LOCAL/COM' });
      expect(answer.status).toBe(400);
      expect(answer.faultCode).toBe('Client.InvalidClientIdentifier');
    });

    it('REST at a path that is no service: 400 Client.InvalidRequest', async () => {
      const answer = await rest(pipelines(), '/r1/LOCAL/GOV/1111/PROVIDER/rest-test/../../x');
      expect(answer.status).toBe(400);
      expect(answer.faultCode).toBe('Client.InvalidRequest');
    });

    it('no X-Road interface at the path: Client.InvalidRequest, in REST’s form', async () => {
      const answer = await call(pipelines(), isRequest('GET', '/elsewhere', {}));
      expect(answer.status).toBe(400);
      expect(answer.faultCode).toBe('Client.InvalidRequest');
    });
  });

  describe('who may speak for the client (seed 003)', () => {
    it('a client this server does not host: Server.ClientProxy.UnknownMember (SOAP) and 500 for REST', async () => {
      expectSoapFault(await soap(pipelines(), soapMessage({ client: 'LOCAL/COM/9999/NOBODY' })), 'Server.ClientProxy.UnknownMember');
      const answer = await rest(pipelines(), undefined, { 'X-Road-Client': 'LOCAL/COM/9999/NOBODY' });
      expect([answer.status, answer.faultCode]).toEqual([500, 'Server.ClientProxy.UnknownMember']);
    });

    it('plain HTTP for a client with connection type HTTPS: Server.ClientProxy.SslAuthenticationFailed', async () => {
      expectSoapFault(await soap(pipelines(), soapMessage({ client: 'LOCAL/COM/2222/SECURE' })), 'Server.ClientProxy.SslAuthenticationFailed');
    });

    it('TLS with a certificate that is not one of its IS certificates: refused; with its own: through', async () => {
      const p = pipelines();
      p.service = echoingSoapService;
      const other = await soap(p, soapMessage({ client: 'LOCAL/COM/2222/SECURE' }), XML, { tls: true, clientCert: Buffer.from('another certificate') });
      expectSoapFault(other, 'Server.ClientProxy.SslAuthenticationFailed');
      expect(other.text).toContain('TLS certificate does not match any IS certificates');
      const own = await soap(p, soapMessage({ client: 'LOCAL/COM/2222/SECURE' }), XML, { tls: true, clientCert: IS_CERT });
      expect(own.text).toContain('<data>42</data>');
    });

    it('an information system that sends a fault gets it back as its own: Client.<its code>', async () => {
      const fault = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>Boom</faultcode><faultstring>it broke</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
      expectSoapFault(await soap(pipelines(), fault), 'Client.Boom');
    });
  });

  describe('faults on the way and back', () => {
    it('the signer refuses: Server.ClientProxy.CannotCreateSignature.…, nothing sent or logged', async () => {
      const p = pipelines();
      p.clientSigning.fail = new XrdError('TokenNotActive', { token: '0' }).within('CannotCreateSignature');
      expectSoapFault(await soap(p), 'Server.ClientProxy.CannotCreateSignature.TokenNotActive');
      expect(p.serviceCalls).toEqual([]);
      expect(p.clientLog.logged).toEqual([]);
      const answer = await rest(p);
      expect([answer.status, answer.faultCode]).toEqual([500, 'Server.ClientProxy.CannotCreateSignature.TokenNotActive']);
    });

    it('the message log refuses the request: Server.ClientProxy.LoggingFailed…, nothing sent', async () => {
      const p = pipelines();
      p.clientLog.fail = new XrdError('LoggingFailed', { reason: 'timestamping failed for too long' });
      const answer = await soap(p);
      expect(answer.faultCode).toMatch(/^Server\.ClientProxy\.LoggingFailed/);
      expect(p.serviceCalls).toEqual([]);
    });

    it('the provider cannot be reached: Server.ClientProxy.NetworkError as the link reports it', async () => {
      const p = pipelines();
      p.link = async () => {
        throw new XrdError('NetworkError', { target: '127.0.0.2:5500', reason: 'connect ECONNREFUSED' }, { prefix: 'Server.ClientProxy' });
      };
      expectSoapFault(await soap(p), 'Server.ClientProxy.NetworkError');
      const answer = await rest(p);
      expect(answer.faultCode).toBe('Server.ClientProxy.NetworkError');
      expect(p.records.filter((r) => r.securityServerType === 'Client').every((r) => !r.succeeded && r.faultCode === 'Server.ClientProxy.NetworkError')).toBe(true);
    });

    it('the provider’s service answers a fault: passed on as it came (SOAP), in REST’s form for REST', async () => {
      const p = pipelines();
      p.service = () => ({ status: 500, headers: [['content-type', 'text/xml']], body: `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>no luck</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>` });
      const answer = await soap(p);
      expectSoapFault(answer, 'SOAP-ENV:Server');
      expect(answer.text).toContain('no luck');
    });

    it('a response whose signature does not match it: Server.ClientProxy.SignatureVerification.InvalidSignatureValue, not logged', async () => {
      const p = pipelines();
      p.service = echoingSoapService;
      p.tamper = (answer) => Buffer.from(answer.toString('latin1').replace('<data>42</data>', '<data>43</data>'), 'latin1');
      expectSoapFault(await soap(p), 'Server.ClientProxy.SignatureVerification.InvalidSignatureValue');
      expect(p.clientLog.logged.map((l) => l.isResponse)).toEqual([false]);
    });

    it('a response that does not answer the request (another id): Server.ClientProxy.ServiceFailed.InconsistentResponse', async () => {
      const p = pipelines();
      p.service = (url, request, body) => {
        const answer = echoingSoapService(url, request, body) as { status: number; body: string };
        return { ...answer, body: answer.body.replace('<xrd:id>q-1</xrd:id>', '<xrd:id>q-2</xrd:id>') };
      };
      expectSoapFault(await soap(p), 'Server.ClientProxy.ServiceFailed.InconsistentResponse');
    });

    it('a REST response for another request id: Server.ClientProxy.InconsistentResponse', async () => {
      const p = pipelines();
      p.service = () => ({ status: 200, body: 'ok' });
      expect((await rest(p)).status).toBe(200);
      // The provider's server is sent another x-road-request-id than the client proxy's, and answers with it.
      const server = p.server;
      p.link = async (encoded) => {
        const headers = { ...encoded.headers, 'x-road-request-id': 'someone-else' };
        const served = await server.handle({ method: 'POST', headers, body: Readable.from([encoded.body]), socket: {} as never });
        return { body: await answerBytes(served), contentType: String(served.headers.find(([n]) => n === 'content-type')![1]) };
      };
      const other = await rest(p);
      expect([other.status, other.faultCode]).toEqual([500, 'Server.ClientProxy.InconsistentResponse']);
    });

    it('an answer that is not a proxy message: Server.ClientProxy.ServiceFailed.…', async () => {
      const p = pipelines();
      p.link = async () => ({ body: Buffer.from('not multipart'), contentType: 'application/octet-stream' });
      const answer = await soap(p);
      expect(answer.faultCode).toMatch(/^Server\.ClientProxy\.ServiceFailed\.InvalidContentType/);
    });
  });
});
