/**
 * Issue 12 item 8(a): what our client proxy sends, checked by a strict peer as a reference server
 * proxy checks it on receipt, and what our server proxy answers, checked as a reference client
 * proxy reads it (test/support/reference-checks.ts names each rule after its reference source).
 *
 * The local instance starts ss1's real server proxy on a port of its own (`--server-port`; ss2's
 * client proxy still calls the published port, `--remote-server-port`), and the strict relay
 * (test/support/strict-relay.ts) listens on ss1's published address and port with ss1's
 * authentication certificate, its key on ss1's token. Every exchange goes ss2 client proxy →
 * relay (checks) → ss1 server proxy → relay (checks) → ss2; each test asserts the call worked and
 * the relay found nothing.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalInstance, type LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import type { ReceivedRequest } from '../../src/dev/testservices/test-services.ts';
import { startEchoService, type EchoService } from '../support/echo-service.ts';
import { binaryAttachment, callClientProxy, restPath as restOf, soapPackage, soapRequest } from '../support/information-system.ts';
import { addEchoServices, authOf } from '../support/local-peers.ts';
import { freeLocalPorts, freePort } from '../support/net.ts';
import { comparableParts, headerOf } from '../support/python-mime.ts';
import { startStrictRelay, type RelayedExchange, type StrictRelay } from '../support/strict-relay.ts';

let instance: LocalInstance;
let relay: StrictRelay;
let echo: EchoService;
const received: ReceivedRequest[] = [];

beforeAll(async () => {
  const ports = await freeLocalPorts();
  const realServerPort = await freePort();
  instance = await startLocalInstance({
    dir: join(process.env.TMPDIR ?? '/tmp', `xrd-conformance-sends-${process.pid}`),
    ports,
    logger: silentLogger(),
    proxyArgs: ['--server-port', String(realServerPort)],
    onServiceRequest: (r) => received.push(r),
  });
  const [ss1, ss2] = await Promise.all([authOf(instance.provider), authOf(instance.consumer)]);
  relay = await startStrictRelay({
    host: instance.provider.address,
    port: ports.serverProxy,
    tls: ss1.tls,
    upstream: { host: instance.provider.address, port: realServerPort, tls: ss2.tls },
  });
  echo = await startEchoService();
  await addEchoServices(instance, echo);
}, 240_000);

afterAll(async () => {
  await relay?.close();
  await echo?.close();
  await instance?.close();
  if (instance) rmSync(instance.dir, { recursive: true, force: true });
});

const soapPost = (body: Buffer, contentType = 'text/xml; charset=UTF-8') => ({ method: 'POST', headers: { 'Content-Type': contentType }, body });
const restPath = (service: string) => restOf(instance, service);

/** Runs one call and returns its answer with the one exchange the relay saw for it. */
async function exchange<T>(call: () => Promise<T>): Promise<{ answer: T; relayed: RelayedExchange }> {
  const before = relay.exchanges.length;
  const answer = await call();
  expect(relay.exchanges.length - before, 'exchanges through the relay').toBe(1);
  return { answer, relayed: relay.exchanges[before]! };
}

const expectNoViolations = (relayed: RelayedExchange) => expect(relayed.violations).toEqual([]);

describe('our client proxy as a reference server proxy receives it, our server proxy as a reference client proxy reads it', () => {
  it('SOAP: OCSP parts, the message, the signature; headers as ClientMessageProcessor sends them; a signed answer with the request hash', async () => {
    const soap = soapRequest(instance, 'getRandom', 'conf-soap');
    const { answer, relayed } = await exchange(() => callClientProxy(instance, '/', { ...soapPost(soap), headers: { 'Content-Type': 'text/xml; charset=UTF-8', SOAPAction: '"urn:getRandom"' } }));
    expect(answer.status).toBe(200);
    expect(answer.body.toString()).toMatch(/<[\w:]*data>\d{1,3}<\/[\w:]*data>/);
    expectNoViolations(relayed);
    const { requestFacts, request, responseFacts } = relayed;
    expect(requestFacts.partTypes).toEqual([...requestFacts.ocspResponses.map(() => 'application/ocsp-response'), 'text/xml', 'signature/bdoc-1.0/ts']);
    expect(requestFacts.soap).toEqual(soap);
    expect(headerOf(request, 'x-original-soapaction')).toBe('"urn:getRandom"');
    expect(headerOf(request, 'x-original-content-type')).toBe('text/xml; charset=UTF-8');
    expect(responseFacts?.partTypes).toEqual(['text/xml', 'signature/bdoc-1.0/ts']);
    expect(received.at(-1)?.body).toEqual(soap);
  });

  it('SOAP with attachments: nested multipart/mixed with each attachment and its headers, the hash chain pair, then the signature; the package comes back whole', async () => {
    const boundary = 'MIMEBoundaryConformance';
    const pkg = soapPackage(boundary, `multipart/related; type="text/xml"; start="<root>"; boundary=${boundary}`, {
      contentType: 'text/xml; charset=UTF-8',
      headers: [['Content-ID', '<root>']],
      body: soapRequest(instance, 'swaEcho', 'conf-swa'),
    }, [
      { contentType: 'application/octet-stream', headers: [['Content-Transfer-Encoding', 'binary'], ['Content-ID', '<data.bin>']], body: binaryAttachment(3000) },
      { contentType: 'text/plain; charset=UTF-8', headers: [['Content-ID', '<note.txt>']], body: Buffer.from('first line\r\nsecond line\n') },
    ]);
    const { answer, relayed } = await exchange(() => callClientProxy(instance, '/', soapPost(pkg.body, pkg.contentType)));
    expect(answer.status).toBe(200);
    expectNoViolations(relayed);
    const { requestFacts, request, responseFacts } = relayed;
    expect(requestFacts.partTypes.filter((t) => t !== 'application/ocsp-response')).toEqual(['text/xml', 'multipart/mixed', 'application/hash-chain-result', 'application/hash-chain', 'signature/bdoc-1.0/ts']);
    expect(requestFacts.attachments?.map((a) => [a.type, a.headers.filter(([n]) => n.toLowerCase() !== 'content-type'), a.body])).toEqual(
      pkg.attachments.map((a) => [a.contentType.split(';')[0], a.headers, a.body]),
    );
    expect(headerOf(request, 'x-original-content-type')).toBe(pkg.contentType);
    // The service got the package under the information system's Content-Type, each part with its headers and bytes.
    const atService = echo.received.at(-1)!;
    expect(headerOf(atService, 'content-type')).toBe(pkg.contentType);
    expect(await comparableParts(headerOf(atService, 'content-type')!, atService.body)).toEqual(await comparableParts(pkg.contentType, pkg.body));
    expect(responseFacts?.partTypes).toEqual(['text/xml', 'multipart/mixed', 'application/hash-chain-result', 'application/hash-chain', 'signature/bdoc-1.0/ts']);
    // …and the information system gets it back under the same Content-Type, attachments intact.
    expect(answer.contentType).toBe(pkg.contentType);
    const back = await comparableParts(answer.contentType, answer.body);
    expect(back.slice(1)).toEqual((await comparableParts(pkg.contentType, pkg.body)).slice(1));
  });

  it('REST GET: the header part as RestRequest(byte[]) reads it, no body part; the response header part with the request id and request hash', async () => {
    const { answer, relayed } = await exchange(() => callClientProxy(instance, `${restPath('rest-test/hello')}?name=Conformance`, { headers: { 'X-Road-Client': instance.clientIs.client, Accept: 'application/json' } }));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body.toString())).toEqual({ greeting: 'Hello Conformance! Greetings from adapter server!' });
    expectNoViolations(relayed);
    const { requestFacts, request, responseFacts } = relayed;
    expect(requestFacts.partTypes.filter((t) => t !== 'application/ocsp-response')).toEqual(['application/x-road-rest-request', 'signature/bdoc-1.0/ts']);
    expect(requestFacts.rest?.startLine).toEqual(['GET', `${restPath('rest-test/hello')}?name=Conformance`]);
    expect(headerOf(request, 'x-road-message-type')).toBe('REST');
    expect(responseFacts?.partTypes).toEqual(['application/x-road-rest-response', 'application/x-road-rest-body', 'application/hash-chain-result', 'application/hash-chain', 'signature/bdoc-1.0/ts']);
    expect(headerOf(responseFacts!.rest!, 'x-road-request-id')).toBe(headerOf(request, 'x-road-request-id'));
    expect(received.at(-1)?.url).toBe('/rest-test/hello?name=Conformance');
  });

  it('REST POST with a body: the body part after the header part, signed through the hash chain; the service gets the body and its Content-Type', async () => {
    const body = JSON.stringify({ conformance: true, text: 'äö\r\n' });
    const { answer, relayed } = await exchange(() =>
      callClientProxy(instance, `${restPath('restEcho')}/items`, { method: 'POST', headers: { 'X-Road-Client': instance.clientIs.client, 'Content-Type': 'application/json' }, body }),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.toString()).toBe(body);
    expectNoViolations(relayed);
    const { requestFacts, request } = relayed;
    expect(requestFacts.partTypes.filter((t) => t !== 'application/ocsp-response')).toEqual(['application/x-road-rest-request', 'application/x-road-rest-body', 'application/hash-chain-result', 'application/hash-chain', 'signature/bdoc-1.0/ts']);
    expect(requestFacts.restBody?.toString()).toBe(body);
    expect(headerOf(request, 'x-original-content-type')).toBe('application/json');
    const atService = echo.received.at(-1)!;
    expect([atService.method, atService.url, headerOf(atService, 'content-type'), atService.body.toString()]).toEqual(['POST', '/items', 'application/json', body]);
  });

  it('a fault from the provider: the server proxy answers text/xml with the fault, and the information system gets it (HTTP 200, as HandlerBase.sendErrorResponse)', async () => {
    const { answer, relayed } = await exchange(() => callClientProxy(instance, '/', soapPost(soapRequest(instance, 'helloService', 'conf-fault'))));
    expect(answer.status).toBe(200);
    expect(answer.body.toString()).toContain('helloService: the request has no name element');
    expectNoViolations(relayed);
    expect(relayed.responseFacts?.fault?.string).toBe('helloService: the request has no name element');
  });
});
