/**
 * The reference's metaservice test cases (src/addons/metaservice/src/test/.../testsuite/testcases:
 * ListMethodsMessage, AllowedMethodsMessage, GetWSDLMessage, GetListClientsMessage) replayed with
 * its own queries (../shared/xroad-vectors/metaservices) through both of our security servers: the
 * information system calls ss2's client proxy, ss1's server proxy answers for the provider — and
 * the REST ones (pr-mrest) the same way. The provider's description server is the harness's
 * dummy service, over HTTP. 7.8's fault codes (`--fault-codes snake`), as the README prints them.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { WSDL_ENDPOINT_ADDRESS } from '../../src/metaservice/wsdl.ts';
import { readZip } from '../../src/platform/zip.ts';
import { boundaryOf, parseMultipart } from '../../src/protocol/multipart.ts';
import { IDENTIFIERS_NS, SOAP_ENV_NS, XROAD_NS } from '../../src/protocol/namespaces.ts';
import { parseSoapHeader } from '../../src/protocol/soap-message.ts';
import type { LocalLayout } from '../../src/dev/testpki/local-layout.ts';
import { child, childElements, parseXml, textOf, type XmlElement } from '../../src/xml/xml-tree.ts';
import { EE_LAYOUT, ProxyQueryHarness, faultOf, type IsAnswer } from '../support/proxy-queries.ts';
import { VECTORS } from '../support/vectors.ts';

const DIR = join(VECTORS, 'metaservices');
const metaQuery = (name: string) => readFileSync(join(DIR, 'queries', name));
const file = (name: string) => readFileSync(join(DIR, '__files', name));

/** The providers the queries name: EE/BUSINESS/producer/SUB (listMethods) and EE/BUSINESS/producer; the caller EE/BUSINESS/consumer. */
const LAYOUT: LocalLayout = {
  ...EE_LAYOUT,
  members: EE_LAYOUT.members.map((m) => (m.code === 'producer' ? { ...m, subsystems: ['SUB'] } : m)),
  provider: { owner: 'producer', clients: ['producer', 'producer/SUB'] },
};

let h: ProxyQueryHarness;

beforeAll(async () => {
  h = await ProxyQueryHarness.start(join(process.env.TMPDIR ?? '/tmp', `xrd-metaservices-${process.pid}`), ['--fault-codes', 'snake'], { layout: LAYOUT });
  const wsdl = { type: 'WSDL' as const, url: `${h.serviceUrl}/wsdlMock` };
  const consumer = ['EE/BUSINESS/consumer'];
  await h.configure([
    { provider: 'producer/SUB', code: 'getRandom', description: wsdl },
    { provider: 'producer/SUB', code: 'helloService', description: wsdl },
    { provider: 'producer/SUB', code: 'ListMembers', description: wsdl, allowed: [] },
    { provider: 'producer/SUB', code: 'petstore', type: 'REST', url: `${h.serviceUrl}/api`, allowed: consumer, description: { type: 'OPENAPI3', url: `${h.serviceUrl}/petstore.json` } },
    { provider: 'producer', code: 'getRandom', description: wsdl, allowed: consumer },
    { provider: 'producer', code: 'helloService', description: wsdl, allowed: ['EE/BUSINESS/joining'] },
    { provider: 'producer', code: 'noWsdl', allowed: consumer },
  ]);
}, 300_000);

afterAll(async () => {
  await h?.close();
});

/** The ids in a methodList answer (`…/service[/version]`). */
function methodList(soap: Buffer, element: string): string[] {
  const list = childElements(child(parseXml(soap), SOAP_ENV_NS, 'Body')!);
  expect(list.map((e) => [e.namespace, e.localName])).toEqual([[XROAD_NS, element]]);
  return childElements(list[0]!).map((s) => `${s.attributes.find((a) => a.namespace === IDENTIFIERS_NS)?.value}:${childElements(s).map(textOf).join('/')}`);
}

/** The answer's header answers the query the information system sent. */
function expectAnswers(answer: Buffer, sent: Buffer): void {
  const [got, asked] = [parseSoapHeader(answer), parseSoapHeader(sent)];
  expect({ client: got.client, service: got.service, id: got.id }).toEqual({ client: asked.client, service: asked.service, id: asked.id });
}

/** The query sent as it is (a Buffer keeps its own xroad:id). */
async function sendQuery(name: string): Promise<{ answer: IsAnswer; sent: Buffer }> {
  return { answer: await h.send(metaQuery(name)), sent: metaQuery(name) };
}

function get(path: string, headers: Record<string, string> = {}): Promise<IsAnswer> {
  const target = new URL(h.instance.consumer.httpUrl);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: target.hostname, port: target.port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
  });
}

describe('SOAP metaservices through both security servers (pr-meta)', () => {
  it('ListMethodsMessage: text/xml; charset=UTF-8, exactly the WSDL-described services of EE/BUSINESS/producer/SUB, the header the request’s; the provider’s IS is not called', async () => {
    const before = h.received.length;
    const { answer, sent } = await sendQuery('listMethods.query');
    expect(faultOf(answer.body)).toBeUndefined();
    expect(answer.headers['content-type']).toMatch(/^text\/xml; ?charset=utf-8$/i);
    expect(methodList(answer.body, 'listMethodsResponse').sort()).toEqual(['SERVICE:EE/BUSINESS/producer/SUB/ListMembers', 'SERVICE:EE/BUSINESS/producer/SUB/getRandom', 'SERVICE:EE/BUSINESS/producer/SUB/helloService']);
    expectAnswers(answer.body, sent);
    expect(h.received.length).toBe(before);
  });

  it('AllowedMethodsMessage: of EE/BUSINESS/producer’s WSDL services, exactly the ones EE/BUSINESS/consumer may call', async () => {
    const { answer, sent } = await sendQuery('allowedMethods.query');
    expect(faultOf(answer.body)).toBeUndefined();
    expect(methodList(answer.body, 'allowedMethodsResponse').sort()).toEqual(['SERVICE:EE/BUSINESS/producer/getRandom', 'SERVICE:EE/BUSINESS/producer/noWsdl']);
    expectAnswers(answer.body, sent);
  });

  it('GetWSDLMessage: multipart/related; type="text/xml"; charset=UTF-8, the SOAP response then the WSDL from the description URL with operations getRandom and helloService, soap:address replaced', async () => {
    h.answerWith({ body: file('wsdl.wsdl'), contentType: 'text/xml' });
    const { answer, sent } = await sendQuery('getWsdl.query');
    const type = String(answer.headers['content-type']);
    expect(type).toMatch(/^multipart\/related; type="text\/xml"; charset=UTF-8; boundary=\S+$/);
    const [soap, wsdl, ...rest] = parseMultipart(answer.body, boundaryOf(type)!);
    expect(rest).toEqual([]);
    expectAnswers(soap!.body, sent);
    expect(parseSoapHeader(soap!.body).service.serviceCode).toBe('getWsdl');
    expect([wsdl!.headers.get('content-type'), wsdl!.headers.get('content-id')]).toEqual(['text/xml', expect.stringMatching(/^<wsdl=[0-9a-f-]{36}@x-road\.eu>$/)]);
    const got = h.received.at(-1)!;
    expect([got.method, got.headers.host?.startsWith('127.0.0.1')]).toEqual(['GET', true]);
    const definitions = parseXml(wsdl!.body);
    const all = (e: XmlElement): XmlElement[] => [e, ...childElements(e).flatMap(all)];
    expect(new Set(all(definitions).filter((e) => e.localName === 'operation' && e.namespace === 'http://schemas.xmlsoap.org/wsdl/').map((e) => e.attributes.find((a) => a.name === 'name')!.value))).toEqual(new Set(['getRandom', 'helloService']));
    const locations = all(definitions).filter((e) => e.localName === 'address' && e.namespace === 'http://schemas.xmlsoap.org/wsdl/soap/').map((e) => e.attributes.find((a) => a.name === 'location')!.value);
    expect(locations.length).toBeGreaterThan(0);
    expect(new Set(locations)).toEqual(new Set([WSDL_ENDPOINT_ADDRESS]));
  });

  it('getWsdl for a service without a WSDL URL: server.serverproxy.unknown_service "Could not find wsdl URL for service"', async () => {
    const answer = await h.send(Buffer.from(metaQuery('getWsdl.query').toString('utf8').replace('>getRandom<', '>noWsdl<')));
    expect(faultOf(answer.body)).toEqual({ code: 'server.serverproxy.unknown_service', string: 'Could not find wsdl URL for service SERVICE:EE/BUSINESS/producer/noWsdl' });
  });

  it('getWsdl when the description server answers 403: server.serverproxy.internal_error "…Received HTTP error: 403 - Forbidden"', async () => {
    h.answerWith({ body: Buffer.from('no'), status: 403, contentType: 'text/plain' });
    const answer = await h.send(metaQuery('getWsdl.query'));
    const fault = faultOf(answer.body);
    expect(fault?.code).toBe('server.serverproxy.internal_error');
    expect(fault?.string).toContain('Received HTTP error: 403 - Forbidden');
  });
});

describe('GET /listClients on the client proxy (GetListClientsMessage)', () => {
  it('XML, text/xml; charset=UTF-8: every member and subsystem of EE', async () => {
    const answer = await get('/listClients?xRoadInstance=EE', { accept: 'text/xml, */*' });
    expect([answer.status, answer.headers['content-type']]).toEqual([200, 'text/xml; charset=UTF-8']);
    const ids = childElements(parseXml(answer.body)).map((m) => childElements(child(m, XROAD_NS, 'id')!).map(textOf).join('/'));
    expect(ids).toEqual(['EE/BUSINESS/producer', 'EE/BUSINESS/producer/SUB', 'EE/BUSINESS/consumer', 'EE/BUSINESS/consumer/subsys1', 'EE/BUSINESS/joining']);
  });

  it('JSON when Accept lists application/json (application/json;q=0.9 , text/*): application/json; charset=utf-8, snake_case', async () => {
    const answer = await get('/listClients?xRoadInstance=EE', { accept: 'application/json;q=0.9 , text/*' });
    expect([answer.status, answer.headers['content-type']]).toEqual([200, 'application/json; charset=utf-8']);
    const json = JSON.parse(answer.body.toString('utf8')) as { member: unknown[] };
    expect(json.member[1]).toEqual({ id: { member_class: 'BUSINESS', member_code: 'producer', object_type: 'SUBSYSTEM', subsystem_code: 'SUB', xroad_instance: 'EE' }, name: 'Producer' });
  });
});

describe('GET /verificationconf on the client proxy (AsicContainerClientRequestProcessor)', () => {
  it('assertVerificationConfiguration: application/zip, verificationconf.zip; unpacked, a configuration directory the container verifier (xrd asic verify --conf) loads', async () => {
    const answer = await get('/verificationconf');
    expect([answer.status, answer.headers['content-type'], answer.headers['content-disposition']]).toEqual([200, 'application/zip', 'filename="verificationconf.zip"']);
    const entries = readZip(answer.body);
    expect(entries.map((e) => e.name)).toEqual(['verificationconf/EE/shared-params.xml', 'verificationconf/EE/shared-params.xml.metadata', 'verificationconf/instance-identifier']);
    expect(JSON.parse(entries[1]!.data.toString('utf8'))).toEqual({ configurationVersion: expect.stringMatching(/^\d+$/) });
    const dir = mkdtempSync(join(tmpdir(), 'xrd-verificationconf-'));
    try {
      for (const e of entries) {
        mkdirSync(dirname(join(dir, e.name)), { recursive: true });
        writeFileSync(join(dir, e.name), e.data);
      }
      const conf = loadGlobalConf(join(dir, 'verificationconf'));
      expect([conf.instanceIdentifier, conf.members('EE').length]).toEqual(['EE', 5]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('REST metaservices through both security servers (pr-mrest)', () => {
  const rest = (path: string) => get(`/r1/EE/BUSINESS/producer/SUB/${path}`, { 'x-road-client': 'EE/BUSINESS/consumer' });

  it('listMethods and allowedMethods: 200, application/json, the OPENAPI3 service with its endpoint_list', async () => {
    for (const code of ['listMethods', 'allowedMethods']) {
      const answer = await rest(code);
      expect([code, answer.status, answer.headers['content-type']]).toEqual([code, 200, 'application/json']);
      expect(JSON.parse(answer.body.toString('utf8'))).toEqual({ service: [{ xroad_instance: 'EE', member_class: 'BUSINESS', member_code: 'producer', subsystem_code: 'SUB', service_code: 'petstore', endpoint_list: [], object_type: 'SERVICE', service_type: 'OPENAPI' }] });
    }
  });

  it('getOpenAPI?serviceCode=petstore: petstore.json without its origin, the Content-Type its server gave', async () => {
    h.answerWith({ body: file('petstore.json'), contentType: 'application/json' });
    const answer = await rest('getOpenAPI?serviceCode=petstore');
    expect([answer.status, answer.headers['content-type']]).toEqual([200, 'application/json']);
    const json = answer.body.toString('utf8');
    expect(json).not.toContain('https://petstore.swagger.io/v2');
    expect(json).toContain('"/v2"');
    expect(json).toContain('https://{username}.petstore.swagger.io:{port}/{basePath}');
  });

  it('getOpenAPI without serviceCode: 500, X-Road-Error server.serverproxy.invalid_request', async () => {
    const answer = await rest('getOpenAPI');
    expect([answer.status, answer.headers['x-road-error']]).toEqual([500, 'server.serverproxy.invalid_request']);
    expect(JSON.parse(answer.body.toString('utf8')).message).toBe('Missing serviceCode in message body');
  });
});
