/**
 * The metaservices (pr-meta, pr-mrest) against the reference's own vectors
 * (../shared/xroad-vectors/metaservices, README "metaservices/"), each test named after the
 * reference's test case it follows: MetadataServiceHandlerTest, RestMetadataServiceHandlerTest,
 * MetadataClientRequestProcessorTest and the testsuite's ListMethodsMessage, AllowedMethodsMessage,
 * GetWSDLMessage, GetListClientsMessage. The description server is a fake here (a function);
 * test/conformance/metaservices.test.ts fetches over HTTP through both security servers.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { listClients, acceptsJson } from '../../src/metaservice/list-clients.ts';
import { anonymiseOpenapi, openapiFiletype } from '../../src/metaservice/openapi.ts';
import { answerRestMetaservice } from '../../src/metaservice/rest-metaservices.ts';
import { answerSoapMetaservice, type FetchedDescription, type MetaserviceContext } from '../../src/metaservice/soap-metaservices.ts';
import { WSDL_ENDPOINT_ADDRESS, overwriteSoapAddress } from '../../src/metaservice/wsdl.ts';
import { verificationConf } from '../../src/metaservice/verification-conf.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { readZip } from '../../src/platform/zip.ts';
import { parseClientId, type ClientId } from '../../src/protocol/identifiers.ts';
import { IDENTIFIERS_NS, SOAP_ENV_NS, XROAD_NS } from '../../src/protocol/namespaces.ts';
import { parseSoapHeader } from '../../src/protocol/soap-message.ts';
import { servicesOf, type ServerConf } from '../../src/serverconf/server-conf.ts';
import { parseServerConfJson as parseServerConf, serializeServerConfJson as serializeServerConf } from '../../src/serverconf/serverconf-json.ts';
import { canonicalizeDocument } from '../../src/xml/c14n.ts';
import { child, childElements, parseXml, parseXmlDocument, textOf, type XmlElement } from '../../src/xml/xml-tree.ts';
import { VECTORS } from '../support/vectors.ts';

const DIR = join(VECTORS, 'metaservices');
const queryFile = (name: string) => readFileSync(join(DIR, 'queries', name));
const file = (name: string) => readFileSync(join(DIR, '__files', name));

const CONSUMER = 'EE/BUSINESS/consumer';
const WSDL_URL = 'http://wsdl.example/wsdlMock';

/** The providers the vectors call: EE/BUSINESS/producer/SUB (listMethods) and EE/BUSINESS/producer. */
function conf(): ServerConf {
  const soap = (code: string, allowed: string[], description: object | null = { type: 'WSDL', url: WSDL_URL }) => ({ code, url: 'http://is.example/service', allowed, ...(description ? { description } : {}) });
  const rest = (code: string, type: 'REST' | 'OPENAPI3', url: string, allowed: string[]) => ({ code, type: 'REST', url: 'http://is.example/api', allowed, description: { type, url } });
  return parseServerConf(
    JSON.stringify({
      serverId: 'EE/BUSINESS/producer/ss1',
      clients: [
        {
          id: 'EE/BUSINESS/producer/SUB',
          services: [soap('getRandom', [CONSUMER]), soap('helloService', [CONSUMER]), soap('ListMembers', []), rest('pets', 'OPENAPI3', 'http://openapi.example/petstore.json', [CONSUMER])],
        },
        {
          id: 'EE/BUSINESS/producer',
          services: [
            soap('getRandom', [CONSUMER]),
            soap('helloService', ['GLOBALGROUP:EE/consumers']),
            soap('secret', ['EE/BUSINESS/other']),
            soap('someServiceWithoutWsdl', [CONSUMER], null),
            rest('restApi', 'REST', 'http://is.example/api', [CONSUMER]),
            rest('json', 'OPENAPI3', 'http://openapi.example/petstore.json', [CONSUMER]),
            rest('yaml', 'OPENAPI3', 'http://openapi.example/petstore.yaml', [CONSUMER]),
            rest('closed', 'OPENAPI3', 'http://openapi.example/forbidden.json', [CONSUMER]),
            rest('plainType', 'OPENAPI3', 'http://openapi.example/plain', [CONSUMER]),
          ],
        },
      ],
    }),
  );
}

/** A description server: each URL answers as the map says; the calls made are kept. */
function context(answers: Record<string, Partial<FetchedDescription>> = {}, groups: string[] = []): MetaserviceContext & { fetched: string[] } {
  const fetched: string[] = [];
  return {
    conf: conf(),
    isMember: (group) => groups.includes(group),
    maxDescriptionBytes: 1024 * 1024,
    fetched,
    fetchDescription: async (url) => {
      fetched.push(url);
      const a = answers[url];
      if (!a) return { status: 404, reason: 'Not Found', body: Buffer.alloc(0) };
      return { status: 200, reason: 'OK', body: Buffer.alloc(0), ...a };
    },
  };
}

/** The `xroad:service` ids in a method list response body, as `INST/CLASS/CODE[/SUB]/service[/version]`. */
function methodList(soap: Buffer, element: string): string[] {
  const body = child(parseXml(soap), SOAP_ENV_NS, 'Body')!;
  const [list, ...rest] = childElements(body);
  expect(rest).toEqual([]);
  expect([list!.namespace, list!.localName]).toEqual([XROAD_NS, element]);
  return childElements(list!).map((s) => {
    expect([s.namespace, s.localName]).toEqual([XROAD_NS, 'service']);
    expect(s.attributes.find((a) => a.localName === 'objectType' && a.namespace === IDENTIFIERS_NS)?.value).toBe('SERVICE');
    return childElements(s).map((e) => textOf(e)).join('/');
  });
}

async function thrown(run: () => Promise<unknown>): Promise<XrdError> {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(XrdError);
  return err as XrdError;
}

describe('SOAP metaservices (MetadataServiceHandlerImpl)', () => {
  it('ListMethodsMessage, shouldHandleListMethods: listMethods.query lists exactly the WSDL-described services of EE/BUSINESS/producer/SUB; the header answers the request', async () => {
    const request = queryFile('listMethods.query');
    const header = parseSoapHeader(request);
    const answer = await answerSoapMetaservice(request, header, context());
    expect(answer.packageContentType).toBe('text/xml; charset=UTF-8');
    expect(answer.attachments).toEqual([]);
    expect(methodList(answer.soap, 'listMethodsResponse').sort()).toEqual(['EE/BUSINESS/producer/SUB/getRandom', 'EE/BUSINESS/producer/SUB/helloService', 'EE/BUSINESS/producer/SUB/ListMembers'].sort());
    const got = parseSoapHeader(answer.soap);
    expect({ client: got.client, service: got.service, id: got.id, userId: got.userId }).toEqual({ client: header.client, service: header.service, id: header.id, userId: header.userId });
  });

  it('AllowedMethodsMessage, shouldHandleAllowedMethods: allowedMethods.query lists the WSDL services EE/BUSINESS/consumer may call, directly or through a global group', async () => {
    const request = queryFile('allowedMethods.query');
    const header = parseSoapHeader(request);
    expect(methodList((await answerSoapMetaservice(request, header, context())).soap, 'allowedMethodsResponse').sort()).toEqual(['EE/BUSINESS/producer/getRandom', 'EE/BUSINESS/producer/someServiceWithoutWsdl']);
    expect(methodList((await answerSoapMetaservice(request, header, context({}, ['EE/consumers']))).soap, 'allowedMethodsResponse').sort()).toEqual(['EE/BUSINESS/producer/getRandom', 'EE/BUSINESS/producer/helloService', 'EE/BUSINESS/producer/someServiceWithoutWsdl']);
  });

  it('GetWSDLMessage, shouldHandleGetWsdl: getWsdl.query gets the SOAP response and the WSDL from the description URL, operations getRandom and helloService, soap:address replaced', async () => {
    const request = queryFile('getWsdl.query');
    const ctx = context({ [WSDL_URL]: { body: file('wsdl.wsdl'), contentType: 'text/xml' } });
    const answer = await answerSoapMetaservice(request, parseSoapHeader(request), ctx);
    expect(ctx.fetched).toEqual([WSDL_URL]);
    expect(answer.packageContentType).toMatch(/^multipart\/related; type="text\/xml"; charset=UTF-8; boundary=xroad[A-Za-z]{30}$/);
    const envelope = parseXml(answer.soap);
    const response = childElements(child(envelope, SOAP_ENV_NS, 'Body')!)[0]!;
    expect([response.namespace, response.localName, textOf(child(response, XROAD_NS, 'serviceCode')!)]).toEqual([XROAD_NS, 'getWsdlResponse', 'getRandom']);
    expect(parseSoapHeader(answer.soap).service.serviceCode).toBe('getWsdl');
    const [wsdlPart] = answer.attachments;
    expect(wsdlPart!.contentType).toBe('text/xml');
    expect(wsdlPart!.headers).toEqual([['content-transfer-encoding', 'binary'], ['content-id', expect.stringMatching(/^<wsdl=[0-9a-f-]{36}@x-road\.eu>$/)]]);
    const wsdl = parseXml(wsdlPart!.body);
    const operations = elements(wsdl, 'http://schemas.xmlsoap.org/wsdl/', 'operation').map((o) => o.attributes.find((a) => a.name === 'name')!.value);
    expect(new Set(operations)).toEqual(new Set(['getRandom', 'helloService']));
    const addresses = elements(wsdl, 'http://schemas.xmlsoap.org/wsdl/soap/', 'address');
    expect(addresses.length).toBeGreaterThan(0);
    for (const a of addresses) expect(a.attributes.find((x) => x.name === 'location')!.value).toBe(WSDL_ENDPOINT_ADDRESS);
  });

  it('getWsdl with the body in a default namespace: the response element stays in the request element\'s namespace', async () => {
    const request = Buffer.from(queryFile('getWsdl.query').toString('utf8').replace(/<xroad:getWsdl>[\s\S]*<\/xroad:getWsdl>/, '<getWsdl xmlns="http://x-road.eu/xsd/xroad.xsd"><serviceCode>getRandom</serviceCode></getWsdl>'));
    const answer = await answerSoapMetaservice(request, parseSoapHeader(request), context({ [WSDL_URL]: { body: file('wsdl.wsdl') } }));
    const response = childElements(child(parseXml(answer.soap), SOAP_ENV_NS, 'Body')!)[0]!;
    expect([response.namespace, response.localName, textOf(child(response, XROAD_NS, 'serviceCode')!)]).toEqual([XROAD_NS, 'getWsdlResponse', 'getRandom']);
  });

  it('getWsdlShouldModifyOnlyEndpointAddress: replacing soap:address with its own value leaves the WSDL identical; replacing it changes nothing else', () => {
    const original = file('wsdl.wsdl');
    const canonical = (xml: Buffer | string) => canonicalizeDocument(parseXmlDocument(xml), { exclusive: false, comments: true });
    expect(canonical(overwriteSoapAddress(original, 'https://172.28.128.2:8084/mocktestServiceBinding'))).toBe(canonical(original));
    const replaced = original.toString('utf8').replaceAll('location="https://172.28.128.2:8084/mocktestServiceBinding"', 'location="expected-location"');
    expect(replaced).not.toBe(original.toString('utf8'));
    expect(canonical(overwriteSoapAddress(original, 'expected-location'))).toBe(canonical(replaced));
  });

  it('shouldThrowWhenMissingServiceCodeInWsdlRequestBody: invalid_request "Missing serviceCode in message body"', async () => {
    const request = Buffer.from(queryFile('getWsdl.query').toString('utf8').replace('<xroad:serviceCode>getRandom</xroad:serviceCode>', '<ns1:request xmlns:ns1="http://test.x-road.fi/producer"/>'));
    const err = await thrown(() => answerSoapMetaservice(request, parseSoapHeader(request), context()));
    expect([err.code, err.message]).toEqual(['InvalidRequest', 'Missing serviceCode in message body']);
  });

  it('shouldThrowUnknownServiceWhenWsdlUrlNotFound: unknown_service "Could not find wsdl URL for service" (no such service, or one without a WSDL URL)', async () => {
    for (const code of ['someServiceWithoutWsdl', 'noSuchService']) {
      const request = Buffer.from(queryFile('getWsdl.query').toString('utf8').replace('>getRandom<', `>${code}<`));
      const err = await thrown(() => answerSoapMetaservice(request, parseSoapHeader(request), context()));
      expect(err.code).toBe('UnknownService');
      expect(err.message).toBe(`Could not find wsdl URL for service SERVICE:EE/BUSINESS/producer/${code}`);
    }
  });

  it('shouldThrowRuntimeExWhenWsdlUrlNotOk200: internal_error "Received HTTP error: 403 - Forbidden"', async () => {
    const request = queryFile('getWsdl.query');
    const ctx = { ...context(), fetchDescription: async () => ({ status: 403, reason: 'Forbidden', body: Buffer.alloc(0) }) };
    const err = await thrown(() => answerSoapMetaservice(request, parseSoapHeader(request), ctx));
    expect([err.code, err.details.reason]).toEqual(['InternalError', 'Received HTTP error: 403 - Forbidden']);
  });

  it('getWsdl for a REST service: service_type', async () => {
    const request = Buffer.from(queryFile('getWsdl.query').toString('utf8').replace('>getRandom<', '>restApi<'));
    const err = await thrown(() => answerSoapMetaservice(request, parseSoapHeader(request), context()));
    expect([err.code, err.message]).toEqual(['ServiceType', 'Service is a REST service and does not have a WSDL']);
  });

  it('getWsdl of a WSDL that is not well-formed XML: internal_error, nothing handed out', async () => {
    const request = queryFile('getWsdl.query');
    const err = await thrown(() => answerSoapMetaservice(request, parseSoapHeader(request), context({ [WSDL_URL]: { body: Buffer.from('<wsdl:definitions') } })));
    expect(err.code).toBe('InternalError');
  });
});

function elements(root: XmlElement, ns: string, name: string): XmlElement[] {
  const found: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    if (e.namespace === ns && e.localName === name) found.push(e);
    childElements(e).forEach(walk);
  };
  walk(root);
  return found;
}

describe('REST metaservices (RestMetadataServiceHandlerImpl)', () => {
  const producer = parseClientId('EE/BUSINESS/producer');
  const consumer: ClientId = parseClientId(CONSUMER);
  const services = (body: Buffer) => (JSON.parse(body.toString('utf8')) as { service: Record<string, unknown>[] }).service;

  it('shouldHandleListMethods: application/json, snake_case, the REST and OPENAPI3 services only, with endpoint_list', async () => {
    const answer = await answerRestMetaservice(producer, 'listMethods', '', consumer, context());
    expect(answer.headers).toEqual([['content-type', 'application/json']]);
    const list = services(answer.body);
    expect(list.map((s) => s.service_code)).toEqual(['restApi', 'json', 'yaml', 'closed', 'plainType']);
    expect(list[0]).toEqual({ xroad_instance: 'EE', member_class: 'BUSINESS', member_code: 'producer', service_code: 'restApi', endpoint_list: [], object_type: 'SERVICE', service_type: 'REST' });
    expect(list[1]!.service_type).toBe('OPENAPI');
  });

  it('shouldHandleAllowedMethods: only the services the caller may use', async () => {
    const sub = parseClientId('EE/BUSINESS/producer/SUB');
    expect(services((await answerRestMetaservice(sub, 'allowedMethods', '', consumer, context())).body).map((s) => [s.service_code, s.subsystem_code])).toEqual([['pets', 'SUB']]);
    expect(services((await answerRestMetaservice(sub, 'allowedMethods', '', parseClientId('EE/BUSINESS/other'), context())).body)).toEqual([]);
  });

  it('shouldOverrideServerUrlsForJson: petstore.json loses its origin, keeps "/v2" and the templated URL; the upstream Content-Type is passed on', async () => {
    const ctx = context({ 'http://openapi.example/petstore.json': { body: file('petstore.json'), contentType: 'application/json' } });
    const answer = await answerRestMetaservice(producer, 'getOpenAPI', '?serviceCode=json', consumer, ctx);
    expect(answer.headers).toEqual([['content-type', 'application/json']]);
    const json = answer.body.toString('utf8');
    expect(json).not.toContain('https://petstore.swagger.io/v2');
    expect(json).toContain('"/v2"');
    expect(json).toContain('https://{username}.petstore.swagger.io:{port}/{basePath}');
    // Only servers[].url changes: the rest of the document is the same.
    const [before, after] = [JSON.parse(file('petstore.json').toString('utf8')), JSON.parse(json)] as { servers: { url: string }[] }[];
    expect({ ...after, servers: undefined }).toEqual({ ...before, servers: undefined });
  });

  it('getOpenAPI: the Content-Type defaults to text/plain, and the file type then comes from the .json suffix', async () => {
    const ctx = context({ 'http://openapi.example/petstore.json': { body: file('petstore.json') } });
    const answer = await answerRestMetaservice(producer, 'getOpenAPI', '?serviceCode=json', consumer, ctx);
    expect(answer.headers).toEqual([['content-type', 'text/plain']]);
    expect(answer.body.toString('utf8')).toContain('"/v2"');
    expect([openapiFiletype(['application/json; charset=utf-8'], 'http://x/a.yaml'), openapiFiletype(['application/x-yaml'], 'http://x/a.json'), openapiFiletype([], 'http://x/a.json'), openapiFiletype(['text/plain'], 'http://x/a')]).toEqual(['JSON', 'YAML', 'JSON', 'YAML']);
  });

  it('shouldDetectUnsupportedOpenapiVersion: internal_error "Incompatible openapi version…" (the version check, on a JSON document)', () => {
    const err = (() => {
      try {
        anonymiseOpenapi(Buffer.from('{"openapi":"2.5.0","servers":[{"url":"http://a.example/b"}]}'), 'JSON', 'http://x/a.json');
      } catch (e) {
        return e as XrdError;
      }
      return undefined;
    })();
    expect([err?.code, err?.details.reason]).toEqual(['InternalError', 'Incompatible openapi version. Openapi version 3 or greater expected. Given openapi document is of version "2.5.0"']);
  });

  it('attack: a document nested deeper than the stack allows is refused with internal_error, not a crash', () => {
    const deep = Buffer.from(`{"openapi":"3.0.0","x":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`);
    expect(() => anonymiseOpenapi(deep, 'JSON', 'http://x/a.json')).toThrow(expect.objectContaining({ code: 'InternalError' }));
  });

  it('shouldOverrideServerUrlsForYaml: petstore.yaml through getOpenAPI loses its origin and keeps everything else as the reference writes it', async () => {
    const ctx = context({ 'http://openapi.example/petstore.yaml': { body: file('petstore.yaml'), contentType: 'application/x-yaml' } });
    const answer = await answerRestMetaservice(producer, 'getOpenAPI', '?serviceCode=yaml', consumer, ctx);
    expect(answer.headers).toEqual([['content-type', 'application/x-yaml']]);
    const out = answer.body.toString('utf8');
    const count = (needle: string) => out.split(needle).length - 1;
    expect(out).not.toContain('http://petstore.swagger.io/v1/cats');
    expect(count('/v1/cats')).toBe(1);
    expect(count('null')).toBe(2);
    for (const item of ['- "this"', '- "should"', '- "be"', '- "a string"', '- url: ""']) expect(out).toContain(item);
    // What is not a server URL is as it was: the same tree once read back.
    const { parse } = await import('yaml');
    const before = parse(file('petstore.yaml').toString('utf8')) as { servers: unknown[] };
    const after = parse(out) as { servers: unknown[] };
    expect({ ...after, servers: undefined }).toEqual({ ...before, servers: undefined });
    expect(after.servers).toEqual([{ url: '/v1/cats' }, { url: null }, { url: null }, { url: '' }, { url: ['this', 'should', 'be', 'a string'] }]);
  });

  it('shouldDetectUnsupportedOpenapiVersion: openapi_incompatible_version.yaml is refused with internal_error and the reference\'s text', () => {
    const err = (() => {
      try {
        anonymiseOpenapi(file('openapi_incompatible_version.yaml'), 'YAML', 'http://x/a.yaml');
      } catch (e) {
        return e as XrdError;
      }
      return undefined;
    })();
    expect([err?.code, err?.details.reason]).toEqual(['InternalError', 'Incompatible openapi version. Openapi version 3 or greater expected. Given openapi document is of version "2.5.0"']);
  });

  it('attack: a YAML "billion laughs" of nested aliases is refused with internal_error, not expanded', () => {
    const laughs = ['openapi: "3.0.0"', 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 0; i < 9; i++) laughs.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`);
    expect(() => anonymiseOpenapi(Buffer.from(laughs.join('\n')), 'YAML', 'http://x/a.yaml')).toThrow(expect.objectContaining({ code: 'InternalError' }));
  });

  it('getOpenAPI without serviceCode: invalid_request; a non-OPENAPI3 or unknown service: internal_error; the description server refusing: internal_error (the reference\'s texts)', async () => {
    const ctx = context();
    const cases: [string, string, string][] = [
      ['', 'InvalidRequest', 'Missing serviceCode in message body'],
      ['?serviceCode=', 'InvalidRequest', 'Missing serviceCode in message body'],
      ['?serviceCode=restApi', 'InternalError', 'Invalid service type: REST'],
      ['?serviceCode=none', 'InternalError', 'Service not found: SERVICE:EE/BUSINESS/producer/none'],
      ['?serviceCode=closed', 'InternalError', 'Failed reading service description from http://openapi.example/forbidden.json. Status: 404 Reason: Not Found'],
    ];
    for (const [path, code, message] of cases) {
      const err = await thrown(() => answerRestMetaservice(producer, 'getOpenAPI', path, consumer, ctx));
      expect([path, err.code, err.details.reason]).toEqual([path, code, message]);
    }
  });
});

describe('GET /listClients (MetadataClientRequestProcessor)', () => {
  const global = loadGlobalConf(join(VECTORS, 'globalconf'));
  const ALL = ['MEMBER:DEV/COM/1234', 'SUBSYSTEM:DEV/COM/1234/MANAGEMENT', 'SUBSYSTEM:DEV/COM/1234/TestService', 'MEMBER:DEV/COM/4321', 'SUBSYSTEM:DEV/COM/4321/TestClient'];

  it('GetListClientsMessage: XML (text/xml; charset=UTF-8) with every member and subsystem of the instance, the member name on each', () => {
    const answer = listClients(global, 'xRoadInstance=DEV', ['text/xml, */*']);
    expect(answer.contentType).toBe('text/xml; charset=UTF-8');
    const list = parseXml(answer.body);
    expect([list.namespace, list.localName]).toEqual([XROAD_NS, 'clientList']);
    const members = childElements(list).map((m) => {
      const id = child(m, XROAD_NS, 'id')!;
      const type = id.attributes.find((a) => a.localName === 'objectType' && a.namespace === IDENTIFIERS_NS)!.value;
      return `${type}:${childElements(id).map(textOf).join('/')} ${textOf(child(m, XROAD_NS, 'name')!)}`;
    });
    expect(members).toEqual(ALL.map((id) => `${id} ${id.includes('4321') ? 'Test client' : 'Test member'}`));
  });

  it('shouldReturnJson…: with Accept listing application/json, snake_case JSON as application/json; charset=utf-8', () => {
    const answer = listClients(global, 'xRoadInstance=DEV', ['application/json;q=0.9 , text/*']);
    expect(answer.contentType).toBe('application/json; charset=utf-8');
    const json = JSON.parse(answer.body.toString('utf8')) as { member: { id: Record<string, string>; name: string }[] };
    expect(json.member[0]).toEqual({ id: { member_class: 'COM', member_code: '1234', object_type: 'MEMBER', xroad_instance: 'DEV' }, name: 'Test member' });
    expect(json.member[1]).toEqual({ id: { member_class: 'COM', member_code: '1234', object_type: 'SUBSYSTEM', subsystem_code: 'MANAGEMENT', xroad_instance: 'DEV' }, name: 'Test member' });
    expect(json.member).toHaveLength(ALL.length);
  });

  it('acceptsJson: application/json anywhere in any Accept header, parameters and q ignored; text/xml, */* alone is not JSON', () => {
    expect(acceptsJson(['text/xml;q=1.0, application/json;q=0.9'])).toBe(true);
    expect(acceptsJson(['text/xml', 'Application/JSON'])).toBe(true);
    expect(acceptsJson(['text/xml, */*'])).toBe(false);
    expect(acceptsJson([])).toBe(false);
  });

  it('xRoadInstance absent or blank: our own instance; an instance not in global configuration: an empty list', () => {
    expect(listClients(global, '', []).body.toString()).toBe(listClients(global, 'xRoadInstance=DEV', []).body.toString());
    expect(listClients(global, 'xRoadInstance=%20', []).body.toString()).toBe(listClients(global, 'xRoadInstance=DEV', []).body.toString());
    expect(JSON.parse(listClients(global, 'xRoadInstance=EE', ['application/json']).body.toString())).toEqual({ member: [] });
  });
});

describe('GET /verificationconf (AsicContainerClientRequestProcessor.handleVerificationConfRequest)', () => {
  const entries = (zip: Buffer) => readZip(zip).map((e) => [e.name, e.data.toString('utf8')]);

  it('assertVerificationConfiguration: each instance\'s shared-params.xml as it is, metadata with only the configuration version, then instance-identifier', () => {
    const dir = join(VECTORS, 'globalconf');
    expect(entries(verificationConf(dir))).toEqual([
      ['verificationconf/DEV/shared-params.xml', readFileSync(join(dir, 'DEV', 'shared-params.xml'), 'utf8')],
      ['verificationconf/DEV/shared-params.xml.metadata', '{"configurationVersion":"3"}'],
      ['verificationconf/instance-identifier', 'DEV'],
    ]);
  });

  it('the instance is the one the metadata names (a downloaded part\'s), private parameters and other files left out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xrd-verificationconf-'));
    try {
      cpSync(join(VECTORS, 'globalconf'), dir, { recursive: true });
      writeFileSync(join(dir, 'DEV', 'shared-params.xml.metadata'), JSON.stringify({ contentIdentifier: 'SHARED-PARAMETERS', instanceIdentifier: 'DEV', configurationVersion: 3, expirationDate: '2020-01-01T00:00:00Z' }));
      writeFileSync(join(dir, 'DEV', 'private-params.xml'), '<private/>');
      writeFileSync(join(dir, 'DEV', 'private-params.xml.metadata'), JSON.stringify({ contentIdentifier: 'PRIVATE-PARAMETERS', instanceIdentifier: 'DEV' }));
      expect(entries(verificationConf(dir)).map(([name, data]) => (name!.endsWith('.metadata') ? `${name} ${data}` : name))).toEqual([
        'verificationconf/DEV/shared-params.xml',
        'verificationconf/DEV/shared-params.xml.metadata {"configurationVersion":"3"}',
        'verificationconf/instance-identifier',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serverconf.json of the days before the store: a service\'s description, imported (docs/proxy.md)', () => {
  const withService = (service: object) => JSON.stringify({ serverId: 'EE/BUSINESS/producer/ss1', clients: [{ id: 'EE/BUSINESS/producer', services: [{ code: 'x', url: 'http://is.example/', ...service }] }] });
  const refusal = (service: object) => {
    try {
      parseServerConf(withService(service));
    } catch (err) {
      return [(err as XrdError).code, (err as XrdError).message];
    }
    return undefined;
  };

  it('refuses a description type that does not fit the service, or one without a URL, naming the field', () => {
    expect(refusal({ description: { type: 'OPENAPI3', url: 'http://d.example/a.json' } })).toEqual(['InvalidConfiguration', 'Invalid configuration: serverconf.json: clients[0].services[0].description.type must be WSDL for a SOAP service']);
    expect(refusal({ type: 'REST', description: { type: 'WSDL', url: 'http://d.example/a.wsdl' } })?.[1]).toContain('description.type must be OPENAPI3 or REST for a REST service');
    expect(refusal({ description: { type: 'WSDL' } })?.[1]).toContain('clients[0].services[0].description.url is missing');
  });

  it('keeps it through serialisation, and the defaults stand without one', () => {
    const conf = parseServerConf(withService({ description: { type: 'WSDL', url: 'http://d.example/a.wsdl' } }));
    const first = (c: ServerConf) => servicesOf(c.clients[0]!)[0]!;
    expect(first(parseServerConf(serializeServerConf(conf))).description).toEqual({ type: 'WSDL', url: 'http://d.example/a.wsdl' });
    expect(first(parseServerConf(withService({}))).description).toEqual({ type: 'WSDL' });
    expect(first(parseServerConf(withService({ type: 'REST' }))).description).toEqual({ type: 'REST', url: 'http://is.example/' });
  });
});
