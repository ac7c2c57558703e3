/**
 * Issue 12 item 8(b): our server proxy (ss1 of a local instance, started with
 * `--min-client-version 7.6.0`) fed requests written byte for byte as a reference client proxy
 * writes them (test/support/reference-client-proxy.ts: ProxyMessageEncoder's layout, Apache
 * HttpClient's chunked request, ss2's authentication certificate with its key on ss2's token,
 * ss2's member key signing). Each request is first checked as a reference server proxy would read
 * it — so the emulation itself is held to the reference's rules — and ss1's answer is read
 * independently as a reference client proxy reads it (test/support/reference-checks.ts); what the
 * provider's services received is checked through the instance's onServiceRequest hook and the
 * echo service.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globalConfReader } from '../../src/globalconf/global-conf.ts';
import { startLocalInstance, type LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { soapFault } from '../../src/protocol/faults.ts';
import { SignerConnection } from '../../src/signerapi/signer-client.ts';
import type { ReceivedRequest } from '../../src/dev/testservices/test-services.ts';
import { startEchoService, type EchoService } from '../support/echo-service.ts';
import { binaryAttachment, restPath as restOf, soapPackage, soapRequest } from '../support/information-system.ts';
import { addEchoServices, authOf, type ServerAuth } from '../support/local-peers.ts';
import { freeLocalPorts } from '../support/net.ts';
import { comparableParts, headerOf } from '../support/python-mime.ts';
import { ReferenceClientProxy, type EncodingOptions, type ReferencePart, type ReferenceRequest } from '../support/reference-client-proxy.ts';
import { checkRequestAsServerProxy, checkResponseAsClientProxy } from '../support/reference-checks.ts';

let instance: LocalInstance;
let echo: EchoService;
let ss2: ServerAuth;
let signer: SignerConnection;
let reference: ReferenceClientProxy;
const received: ReceivedRequest[] = [];
let CLIENT: string;

beforeAll(async () => {
  const ports = await freeLocalPorts();
  instance = await startLocalInstance({
    dir: join(process.env.TMPDIR ?? '/tmp', `xrd-conformance-receives-${process.pid}`),
    ports,
    logger: silentLogger(),
    proxyArgs: ['--min-client-version', '7.6.0'],
    onServiceRequest: (r) => received.push(r),
  });
  CLIENT = instance.clientIs.client;
  echo = await startEchoService();
  await addEchoServices(instance, echo);
  ss2 = await authOf(instance.consumer);
  signer = new SignerConnection(instance.consumer.signerSocket, { timeoutMs: 30_000 });
  reference = new ReferenceClientProxy({ host: instance.provider.address, port: ports.serverProxy, auth: ss2, signer, globalConf: globalConfReader(instance.pki.globalConfDir) });
}, 240_000);

afterAll(async () => {
  signer?.close();
  await echo?.close();
  await instance?.close();
  if (instance) rmSync(instance.dir, { recursive: true, force: true });
});

const restPath = (service: string) => restOf(instance, service);

/**
 * Sends the request as the reference client proxy would; returns the rules it breaks on the way in
 * (none for what the reference sends), and ss1's answer read as the reference client proxy reads it.
 */
async function send(request: ReferenceRequest, encoding: EncodingOptions = {}) {
  const answer = await reference.post(request, encoding);
  const sent = await checkRequestAsServerProxy({ method: 'POST', headers: answer.sentHeaders, body: answer.sentBody, clientCert: ss2.cert });
  const read = await checkResponseAsClientProxy(answer, sent.facts);
  return { answer, sentRules: sent.violations.map((v) => v.rule), requestFacts: sent.facts, violations: read.violations, facts: read.facts };
}

const getRandom = (id: string, soapAction?: string) =>
  reference.soap({ packageContentType: 'text/xml; charset=UTF-8', soap: soapRequest(instance, 'getRandom', id), soapContentType: 'text/xml; charset=UTF-8', client: CLIENT, ...(soapAction ? { soapAction } : {}) });

function packageRequest(pkg: ReturnType<typeof soapPackage>) {
  return reference.soap({ packageContentType: pkg.contentType, soap: pkg.root.body, soapContentType: pkg.root.contentType, soapHeaders: pkg.root.headers, attachments: pkg.attachments, client: CLIENT });
}

const swa = (id: string) =>
  soapPackage('MIMEBoundaryReference', 'multipart/related; type="text/xml"; start="<root>"; boundary=MIMEBoundaryReference', { contentType: 'text/xml; charset=UTF-8', headers: [['Content-ID', '<root>']], body: soapRequest(instance, 'swaEcho', id) }, [
    { contentType: 'application/octet-stream', headers: [['Content-Transfer-Encoding', 'binary'], ['Content-ID', '<data.bin>']], body: binaryAttachment(5000) },
    { contentType: 'text/plain; charset=UTF-8', headers: [['Content-Transfer-Encoding', '8bit'], ['Content-ID', '<note.txt>'], ['Content-Disposition', 'attachment; filename="note.txt"']], body: Buffer.from('öäü\r\nline two\n') },
    { contentType: 'application/pdf', headers: [['Content-Transfer-Encoding', 'base64'], ['Content-ID', '<doc.pdf>']], body: Buffer.from('JVBERi0xLjQKJcfsj6IK\r\n') },
  ]);

describe('our server proxy, fed as a reference client proxy feeds it', () => {
  it('ClientMessageProcessor: a SOAP request is answered with the signed response; the service gets the message and SOAPAction', async () => {
    const request = await getRandom('ref-soap', '"urn:getRandom"');
    const { answer, sentRules, violations, facts } = await send(request);
    expect(sentRules).toEqual([]);
    expect(answer.status).toBe(200);
    expect(violations).toEqual([]);
    expect(facts.partTypes).toEqual(['text/xml', 'signature/bdoc-1.0/ts']);
    expect(facts.soap!.toString()).toMatch(/<[\w:]*data>\d{1,3}<\/[\w:]*data>/);
    const atService = received.at(-1)!;
    expect(atService.body).toEqual(request.parts.find((p) => p.contentType === 'text/xml; charset=UTF-8')!.body);
    expect(atService.headers.soapaction).toBe('"urn:getRandom"');
  });

  it('ProxyMessageEncoder.attachment: SOAP with attachments (Content-Transfer-Encoding, Content-ID) reaches the service as the package the information system sent', async () => {
    const pkg = swa('ref-swa');
    const { answer, sentRules, violations, facts } = await send(await packageRequest(pkg));
    expect(sentRules).toEqual([]);
    expect(answer.status).toBe(200);
    expect(violations).toEqual([]);
    expect(facts.partTypes).toEqual(['text/xml', 'multipart/mixed', 'application/hash-chain-result', 'application/hash-chain', 'signature/bdoc-1.0/ts']);
    const atService = echo.received.at(-1)!;
    expect(headerOf(atService, 'content-type')).toBe(pkg.contentType);
    // No SOAPAction from the information system: the reference sends x-original-soapaction empty, and passes it on so.
    expect(headerOf(atService, 'soapaction')).toBe('');
    expect(await comparableParts(pkg.contentType, atService.body)).toEqual(await comparableParts(pkg.contentType, pkg.body));
    expect(facts.attachments?.map((a) => a.body)).toEqual(pkg.attachments.map((a) => a.body));
    expect(headerOf(answer, 'x-original-content-type')).toBe(pkg.contentType);
  });

  it('ProxyMessageDecoder.handleSoap: an MTOM package (application/xop+xml root) reaches the service under exactly its Content-Type', async () => {
    const contentType = 'multipart/related; type="application/xop+xml"; start="<root.message@cxf.apache.org>"; start-info="text/xml"; boundary="uuid:6b62cda8-2a35-4a8b-9e6f-0f43b7b3c6a1"';
    const xop = '<prod:swaEcho><prod:data><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:payload@cxf.apache.org"/></prod:data></prod:swaEcho>';
    const pkg = soapPackage('uuid:6b62cda8-2a35-4a8b-9e6f-0f43b7b3c6a1', contentType, {
      contentType: 'application/xop+xml; charset=UTF-8; type="text/xml"',
      headers: [['Content-Transfer-Encoding', 'binary'], ['Content-ID', '<root.message@cxf.apache.org>']],
      body: soapRequest(instance, 'swaEcho', 'ref-mtom', xop),
    }, [{ contentType: 'application/octet-stream', headers: [['Content-Transfer-Encoding', 'binary'], ['Content-ID', '<payload@cxf.apache.org>']], body: binaryAttachment(7000) }]);
    const { answer, sentRules, violations, facts } = await send(await packageRequest(pkg));
    expect(sentRules).toEqual([]);
    expect(answer.status).toBe(200);
    expect(violations).toEqual([]);
    expect(facts.partTypes[0]).toBe('application/xop+xml');
    const atService = echo.received.at(-1)!;
    expect(headerOf(atService, 'content-type')).toBe(contentType);
    expect(await comparableParts(contentType, atService.body)).toEqual(await comparableParts(contentType, pkg.body));
  });

  it('ClientRestMessageProcessor: REST GET without a body part; the service gets the request without the hop-by-hop headers', async () => {
    const request = await reference.rest({
      method: 'GET',
      pathAndQuery: `${restPath('rest-test/hello')}?name=Reference`,
      headers: [['Host', '127.0.0.1:8080'], ['User-Agent', 'curl/8.5.0'], ['Accept', 'application/json'], ['X-Road-Client', CLIENT]],
      client: CLIENT,
    });
    const { answer, sentRules, violations, facts, requestFacts } = await send(request);
    expect(sentRules).toEqual([]);
    expect(requestFacts.partTypes.filter((t) => t !== 'application/ocsp-response')).toEqual(['application/x-road-rest-request', 'signature/bdoc-1.0/ts']);
    expect(violations).toEqual([]);
    expect(answer.status).toBe(200);
    expect(facts.rest?.startLine[0]).toBe('200');
    expect(JSON.parse(facts.restBody!.toString())).toEqual({ greeting: 'Hello Reference! Greetings from adapter server!' });
    expect(headerOf(facts.rest!, 'x-road-request-id')).toBe(request.requestId);
    const atService = received.at(-1)!;
    expect([atService.method, atService.url, atService.headers.accept, atService.headers['x-road-client'], atService.headers['user-agent']]).toEqual(['GET', '/rest-test/hello?name=Reference', 'application/json', CLIENT, undefined]);
  });

  it('ClientRestMessageProcessor.ProxyMessageEntity: REST POST with a body part; the service gets the body and its Content-Type', async () => {
    const body = Buffer.from(JSON.stringify({ reference: true, text: 'õ\r\n' }));
    const request = await reference.rest({ method: 'POST', pathAndQuery: `${restPath('restEcho')}/items?x=1`, headers: [['Content-Type', 'application/json'], ['X-Road-Client', CLIENT]], body, client: CLIENT });
    const { answer, sentRules, violations, facts } = await send(request);
    expect(sentRules).toEqual([]);
    expect(answer.status).toBe(200);
    expect(violations).toEqual([]);
    expect(facts.restBody).toEqual(body);
    const atService = echo.received.at(-1)!;
    expect([atService.method, atService.url, headerOf(atService, 'content-type'), atService.body]).toEqual(['POST', '/items?x=1', 'application/json', body]);
  });

  it('ProxyMessageDecoder.handleRestBody: REST POST with an empty body part is a request with an empty body, its hash over the empty body', async () => {
    const request = await reference.rest({ method: 'POST', pathAndQuery: `${restPath('restEcho')}/empty`, headers: [['Content-Type', 'text/plain'], ['X-Road-Client', CLIENT]], body: Buffer.alloc(0), client: CLIENT });
    const { answer, sentRules, violations, requestFacts } = await send(request);
    expect(sentRules).toEqual([]);
    expect(requestFacts.restBody).toEqual(Buffer.alloc(0));
    expect(answer.status).toBe(200);
    // checkResponseAsClientProxy compared x-road-request-hash with SHA-512(SHA-512(header part) ‖ SHA-512('')).
    expect(violations).toEqual([]);
    const atService = echo.received.at(-1)!;
    expect([atService.method, atService.url, atService.body.length]).toEqual(['POST', '/empty', 0]);
  });

  it('Jetty HttpFields: transport header names in any case (X-Hash-Algorithm, X-Proxy-Version, …) and Content-Type part headers', async () => {
    const request = await packageRequest(swa('ref-case'));
    const capital = (n: string) => n.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
    const upper = (p: ReferencePart): ReferencePart => ({
      contentType: null,
      headers: [`Content-Type: ${p.contentType}`, ...(p.headers ?? [])],
      ...(p.body ? { body: p.body } : {}),
      ...(p.nested ? { nested: { ...p.nested, parts: p.nested.parts.map(upper) } } : {}),
    });
    const renamed = { ...request, headers: request.headers.map(([n, v]) => [capital(n), v] as const), parts: request.parts.map(upper) };
    expect(renamed.headers.map(([n]) => n)).toContain('X-Hash-Algorithm');
    const { answer, sentRules, violations } = await send(renamed);
    expect(sentRules).toEqual([]);
    expect(answer.status).toBe(200);
    expect(violations).toEqual([]);
  });

  it('mime4j: LF-only line ends and transport padding after each delimiter', async () => {
    const pkg = swa('ref-lf');
    const { answer, sentRules, violations, facts } = await send(await packageRequest(pkg), { lineEnd: '\n', padding: ' \t ' });
    expect(sentRules).toEqual([]);
    expect(answer.status).toBe(200);
    expect(violations).toEqual([]);
    expect(facts.attachments?.map((a) => a.body)).toEqual(pkg.attachments.map((a) => a.body));
  });

  it('ServerMessageProcessor.checkRequest: a fault in place of the signature is a request without signature → MissingSignature, the service not called', async () => {
    const request = await getRandom('ref-unsigned');
    const calls = received.length;
    const unsigned = { ...request, parts: [...request.parts.slice(0, -1), { contentType: 'text/xml; charset=UTF-8', body: soapFault('Server.ClientProxy.CannotCreateSignature', 'token logged out') }] };
    const { answer, sentRules, violations, facts } = await send(unsigned);
    expect(sentRules).toEqual(['ServerMessageProcessor.checkRequest: a request is signed (X_MISSING_SIGNATURE)']);
    expect(answer.status).toBe(200);
    expect(violations).toEqual([]);
    expect(facts.fault?.code).toBe('Server.ServerProxy.MissingSignature');
    expect(received.length).toBe(calls);
  });

  it('ClientProxyVersionVerifier: with server-min-supported-client-version 7.6.0, x-proxy-version 7.5.0 or none → ClientProxyVersionNotSupported', async () => {
    const rule = 'ClientProxyVersionVerifier: x-proxy-version ≥ server-min-supported-client-version 7.6.0';
    const request = await getRandom('ref-old');
    for (const headers of [request.headers.map(([n, v]) => [n, n === 'x-proxy-version' ? '7.5.0' : v] as const), request.headers.filter(([n]) => n !== 'x-proxy-version')]) {
      const { answer, sentRules, violations, facts } = await send({ ...request, headers });
      expect(sentRules).toEqual([rule]);
      expect(answer.status).toBe(200);
      expect(violations).toEqual([]);
      expect(facts.fault?.code).toBe('Server.ServerProxy.ClientProxyVersionNotSupported');
      // The reference's text ends with a space after the version (ClientProxyVersionVerifierTest.shouldRaiseError).
      expect(facts.fault?.string.trimEnd()).toBe('The minimum supported version for client security server is: 7.6.0');
    }
  });
});
