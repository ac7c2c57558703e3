/**
 * Reading service descriptions (src/serverconf/service-descriptions.ts) as the reference's admin
 * does: its WsdlParserTest and OpenApiParserTest cases on our own documents (test/fixtures/
 * service-descriptions) and on the shared vectors, the checks ServiceDescriptionService makes when a
 * description is added, and the refresh diffs of ServiceChangeChecker and EndpointEntityChangeChecker.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { fetchBounded } from '../../src/platform/http-client.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import type { LocalClient, ServiceDescriptionConf } from '../../src/serverconf/model.ts';
import {
  MAX_DESCRIPTION_BYTES, checkDescriptionUrl, checkRestDescription, checkServiceCodeNotReserved, checkWsdlServices, checkWsdlUrl, endpointChanges, fetchDescription,
  fullServiceCode, openApiEndpoints, wsdlServiceConfs, parseOpenApi, parseWsdl, refreshWarnings, serviceChanges,
} from '../../src/serverconf/service-descriptions.ts';
import { VECTORS } from '../support/vectors.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/service-descriptions');
const fixture = (name: string) => readFileSync(join(FIXTURES, name));
const vector = (name: string) => readFileSync(join(VECTORS, 'metaservices/__files', name));
const AT = '2026-01-01T00:00:00Z';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof XrdError) return err.code;
    throw err;
  }
  throw new Error('expected a refusal');
}

async function asyncCodeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof XrdError) return err.code;
    throw err;
  }
  throw new Error('expected a refusal');
}

function description(id: number, type: ServiceDescriptionConf['type'], url: string, services: [string, string?][]): ServiceDescriptionConf {
  return { id, type, url, disabled: true, disabledNotice: 'Out of order', refreshedAt: AT, services: services.map(([code, version]) => ({ code, version, url: 'http://is.example/', timeoutSeconds: 60 })) };
}

function client(extra: Partial<LocalClient> = {}): LocalClient {
  return {
    id: parseClientId('DEV/COM/1111/PROVIDER'), status: 'REGISTERED', connectionType: 'HTTPS', isCerts: [],
    serviceDescriptions: [description(1, 'WSDL', 'http://IS.example/weather?wsdl', [['forecast', 'v1'], ['ping']]), description(2, 'REST', 'http://is.example/rest', [['pets']])],
    endpoints: [], accessRights: [], localGroups: [], ...extra,
  };
}

describe('WsdlParser', () => {
  it('WsdlParserTest.readValidWsdl: each binding operation of a SOAP-over-HTTP port is a service with its version, title and address', () => {
    expect(parseWsdl(fixture('provider.wsdl'))).toEqual([
      { code: 'forecast', version: 'v1', title: 'Weather forecast for a town', url: 'http://weather.example:8080/soap' },
      { code: 'observations', version: 'v2', url: 'http://weather.example:8080/soap' },
      { code: 'ping', url: 'http://weather.example:8080/soap' },
      { code: 'forecast', version: 'v12', title: 'Weather forecast for a town', url: 'https://weather.example/soap12' },
    ]);
  });

  it('WsdlParser: the shared vector wsdl.wsdl gives getRandom and helloService, version v1 from id:version, at its soap:address', () => {
    const url = 'https://172.28.128.2:8084/mocktestServiceBinding';
    expect(parseWsdl(vector('wsdl.wsdl'))).toEqual([{ code: 'getRandom', version: 'v1', url }, { code: 'helloService', version: 'v1', url }]);
  });

  it('WsdlParser: a code and version met twice is one service, the last one read', () => {
    const twice = readFileSync(join(FIXTURES, 'provider.wsdl'), 'utf8').replace('<xrd:version>v12</xrd:version>', '<xrd:version>v1</xrd:version>');
    const services = parseWsdl(Buffer.from(twice));
    expect(services.filter((s) => fullServiceCode(s) === 'forecast.v1')).toEqual([{ code: 'forecast', version: 'v1', title: 'Weather forecast for a town', url: 'https://weather.example/soap12' }]);
  });

  it('WsdlParser: a WSDL without a SOAP-over-HTTP port describes no services (the reference accepts it)', () => {
    expect(parseWsdl(Buffer.from('<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" targetNamespace="urn:x"/>'))).toEqual([]);
  });

  it('WsdlParserTest.readInvalidWsdl: a document that is not XML is InvalidWsdl', () => {
    expect(codeOf(() => parseWsdl(Buffer.from('<definitions xmlns="http://schemas.xmlsoap.org/wsdl/">')))).toBe('InvalidWsdl');
    expect(codeOf(() => parseWsdl(Buffer.from('this is not a WSDL')))).toBe('InvalidWsdl');
  });

  it('WsdlParserTest.readFaultInsteadOfWsdl: an XML document that is not WSDL definitions is InvalidWsdl', () => {
    expect(codeOf(() => parseWsdl(fixture('fault.xml')))).toBe('InvalidWsdl');
  });

  it('WsdlParserTest.readValidWsdlWithExternalEntity: a DTD is refused, no entity is read', () => {
    expect(codeOf(() => parseWsdl(fixture('external-entity.wsdl')))).toBe('InvalidWsdl');
  });

  it('WsdlParser.clarifyWsdlParsingException: a binding operation that two port type operations answer violates the specification', () => {
    expect(() => parseWsdl(fixture('duplicate-operation.wsdl'))).toThrow(expect.objectContaining({ code: 'InvalidWsdl', message: expect.stringContaining('Duplicate operation with name=same') }));
  });

  it('WSDL4J PortType.getOperation: overloaded operations are told apart by the input name the binding gives', () => {
    const wsdl = (bindingInput: string) => Buffer.from(`<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:t="urn:o" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" targetNamespace="urn:o">
      <portType name="P">
        <operation name="find"><documentation><xrd:title>By name</xrd:title></documentation><input name="byName" message="t:m"/></operation>
        <operation name="find"><documentation><xrd:title>By id</xrd:title></documentation><input name="byId" message="t:m"/></operation>
      </portType>
      <binding name="B" type="t:P"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
        <operation name="find"><xrd:version>v1</xrd:version>${bindingInput}</operation>
      </binding>
      <service name="S"><port name="Q" binding="t:B"><soap:address location="http://o.example/"/></port></service>
    </definitions>`);
    expect(parseWsdl(wsdl('<input name="byId"/>'))).toEqual([{ code: 'find', version: 'v1', title: 'By id', url: 'http://o.example/' }]);
    expect(codeOf(() => parseWsdl(wsdl('<input/>')))).toBe('InvalidWsdl');
  });

  it('WsdlParser.MAX_DESCRIPTION_SIZE: a document over 10 MiB is InvalidWsdl; the XML parser\'s depth bound holds', () => {
    expect(codeOf(() => parseWsdl(Buffer.alloc(MAX_DESCRIPTION_BYTES + 1, 0x20)))).toBe('InvalidWsdl');
    const deep = `<definitions xmlns="http://schemas.xmlsoap.org/wsdl/">${'<a>'.repeat(5000)}${'</a>'.repeat(5000)}</definitions>`;
    expect(codeOf(() => parseWsdl(Buffer.from(deep)))).toBe('InvalidWsdl');
  });
});

describe('ServiceDescriptionService checks when a WSDL is added or refreshed', () => {
  it('processWsdl.checkForExistingWsdl: a URL another description has, ignoring case, is WsdlExists; the refreshed one itself is not', () => {
    expect(codeOf(() => checkWsdlUrl(client(), 'http://is.example/WEATHER?wsdl'))).toBe('WsdlExists');
    expect(() => checkWsdlUrl(client(), 'http://is.example/weather?wsdl', 1)).not.toThrow();
    expect(codeOf(() => checkWsdlUrl(client(), 'ftp://is.example/weather.wsdl'))).toBe('MalformedUrl');
  });

  it('validateServiceIdentifierFields: codes and versions outside the strict characters are InvalidWsdlServiceIdentifier', () => {
    expect(() => checkWsdlServices(client(), [{ code: "get(Random)+,-.=?'", version: 'v1', url: '' }])).not.toThrow();
    expect(() => checkWsdlServices(client(), [{ code: 'get Random', version: 'v/1', url: '' }])).toThrow(expect.objectContaining({ code: 'InvalidWsdlServiceIdentifier', details: { identifiers: 'get Random, v/1' } }));
  });

  it('checkForExistingServices: a code and version in another description, ignoring case, is ServiceAlreadyExists; a REST code without version is not compared by code alone', () => {
    expect(codeOf(() => checkWsdlServices(client(), [{ code: 'FORECAST', version: 'V1', url: '' }]))).toBe('ServiceAlreadyExists');
    expect(codeOf(() => checkWsdlServices(client(), [{ code: 'ping', url: '' }]))).toBe('ServiceAlreadyExists');
    expect(() => checkWsdlServices(client(), [{ code: 'forecast', version: 'v1', url: '' }], 1)).not.toThrow();
    expect(() => checkWsdlServices(client(), [{ code: 'pets', version: 'v1', url: '' }])).not.toThrow();
  });

  it('validateServiceCodeNotReserved: the metaservices\' codes are ServiceCodeReserved', () => {
    expect(codeOf(() => checkWsdlServices(client(), [{ code: 'getWsdl', url: '' }]))).toBe('ServiceCodeReserved');
    expect(codeOf(() => checkServiceCodeNotReserved('listMethods'))).toBe('ServiceCodeReserved');
  });

  it('validateServiceUrls: a service address that is not http(s) is InvalidServiceUrl; none at all is allowed', () => {
    expect(codeOf(() => checkWsdlServices(client(), [{ code: 'queued', url: 'jms:queue' }]))).toBe('InvalidServiceUrl');
    expect(() => checkWsdlServices(client(), [{ code: 'queued', url: '' }])).not.toThrow();
  });
});

describe('ServiceDescriptionService checks when an OpenAPI or REST description is added', () => {
  it('FormatUtils.isValidUrl: http:// or https:// with a host name', () => {
    for (const ok of ['http://is.example/api', 'https://10.0.0.1:8443/x', 'https://xn--caf-dma.example/']) expect(() => checkDescriptionUrl(ok)).not.toThrow();
    for (const bad of ['HTTP://is.example/', 'ftp://is.example/', 'https://[::1]/x', 'https://under_score.example/', 'is.example/api', 'http://']) expect(codeOf(() => checkDescriptionUrl(bad)), bad).toBe('MalformedUrl');
  });

  it('checkDuplicateUrl: the same URL exactly is UrlAlreadyExists', () => {
    expect(codeOf(() => checkRestDescription(client(), 'http://is.example/rest', 'other'))).toBe('UrlAlreadyExists');
    expect(() => checkRestDescription(client(), 'http://is.example/REST', 'other')).not.toThrow();
    expect(() => checkRestDescription(client(), 'http://is.example/rest', 'pets', 2)).not.toThrow();
  });

  it('checkDuplicateServiceCodes: a code used by another description, by code or by code.version, ignoring case, is ServiceCodeAlreadyExists', () => {
    expect(codeOf(() => checkRestDescription(client(), 'http://is.example/new', 'PETS'))).toBe('ServiceCodeAlreadyExists');
    expect(codeOf(() => checkRestDescription(client(), 'http://is.example/new', 'forecast'))).toBe('ServiceCodeAlreadyExists');
    expect(codeOf(() => checkRestDescription(client(), 'http://is.example/new', 'forecast.v1'))).toBe('ServiceCodeAlreadyExists');
    expect(() => checkRestDescription(client(), 'http://is.example/new', 'owners')).not.toThrow();
  });
});

describe('OpenApiParser', () => {
  it('OpenApiParserTest.shouldParseOpenApiYaml: base URL from servers[0] resolved against the description\'s URL, operations per path, {parameters} as *', () => {
    const parsed = parseOpenApi(fixture('pets.yaml'), 'https://is.example/docs/pets.yaml');
    expect(parsed.baseUrl).toBe('https://is.example/api/v1');
    expect(parsed.warnings).toEqual([]);
    expect(parsed.endpoints).toEqual([
      { method: 'GET', path: '/pets' },
      { method: 'POST', path: '/pets' },
      { method: 'GET', path: '/pets/*' },
      { method: 'DELETE', path: '/pets/*' },
      { method: 'GET', path: '/pets/*/photos/*' },
      { method: 'GET', path: '/owners/*' },
    ]);
  });

  it('OpenApiParserTest.shouldParseOpenApi31Json: JSON, openapi 3.1.0, an absolute server URL kept as written', () => {
    const parsed = parseOpenApi(fixture('pets-3.1.json'), 'https://is.example/pets.json');
    expect(parsed).toEqual({ baseUrl: 'https://pets.example/api', endpoints: [{ method: 'GET', path: '/pets' }, { method: 'PUT', path: '/pets' }, { method: 'PATCH', path: '/pets/*' }], warnings: [] });
  });

  it('OpenApiParserTest.shouldHaveWarnings: a templated server URL is kept as it is, and a document without info or paths gives warnings', () => {
    const parsed = parseOpenApi(fixture('warnings.yaml'), 'https://is.example/warnings.yaml');
    expect(parsed.baseUrl).toBe('https://{securityserver}/r1');
    expect(parsed.endpoints).toEqual([]);
    expect(parsed.warnings).toEqual(['attribute info is missing', 'attribute paths is missing']);
  });

  it('OpenApiParser: the shared petstore vectors — YAML with broken later servers (warnings), JSON with a templated second server', () => {
    const yaml = parseOpenApi(vector('petstore.yaml'), 'http://is.example/petstore.yaml');
    expect(yaml.baseUrl).toBe('http://petstore.swagger.io/v1/cats');
    expect(yaml.endpoints.map((e) => `${e.method} ${e.path}`)).toEqual(expect.arrayContaining(['GET /pets', 'POST /pets']));
    expect(yaml.warnings.length).toBeGreaterThan(0);
    expect(parseOpenApi(vector('petstore.json'), 'http://is.example/petstore.json').baseUrl).toBe('https://petstore.swagger.io/v2');
  });

  it('OpenApiParser: no servers means "/", resolved against the description\'s URL; an uploaded file keeps it relative', () => {
    const doc = Buffer.from('openapi: 3.0.0\ninfo: {title: t, version: "1"}\npaths: {}\n');
    expect(parseOpenApi(doc, 'https://is.example:8443/docs/api.yaml').baseUrl).toBe('https://is.example:8443/');
    expect(parseOpenApi(doc).baseUrl).toBe('/');
  });

  it('OpenApiParserTest.shouldFailOnUnsupportedOpenApiVersionYaml/Json: only 3.0.x and exactly 3.1.0 are read', () => {
    expect(codeOf(() => parseOpenApi(vector('openapi_incompatible_version.yaml')))).toBe('UnsupportedOpenapiVersion');
    for (const v of ['"3.1.1"', '"2.0"', '"4.0.0"']) expect(codeOf(() => parseOpenApi(Buffer.from(`openapi: ${v}\npaths: {}\n`))), v).toBe('UnsupportedOpenapiVersion');
    expect(codeOf(() => parseOpenApi(Buffer.from('{"swagger": "2.0", "paths": {}}')))).toBe('UnsupportedOpenapiVersion');
    expect(parseOpenApi(Buffer.from('openapi: 3.0\npaths: {}\ninfo: {}\n')).warnings).toEqual([]);
  });

  it('OpenApiParserTest.shouldFailIfDuplicateEndpoint: the reference fails that case only for its file: URL; a repeated key is read, the last one counting', () => {
    const doc = 'openapi: 3.0.2\ninfo: {title: t, version: "1"}\npaths:\n  /test:\n    get: {responses: {}}\n    post: {responses: {}}\n    get: {summary: again, responses: {}}\n';
    expect(parseOpenApi(Buffer.from(doc)).endpoints).toEqual([{ method: 'GET', path: '/test' }, { method: 'POST', path: '/test' }]);
  });

  it('OpenApiParser: what is not YAML/JSON, not an object, too deep or an alias bomb is OpenapiParsingError, and the process survives', () => {
    expect(codeOf(() => parseOpenApi(Buffer.from('openapi: [3.0\n')))).toBe('OpenapiParsingError');
    expect(codeOf(() => parseOpenApi(Buffer.from('just a string')))).toBe('OpenapiParsingError');
    expect(codeOf(() => parseOpenApi(Buffer.from(`openapi: 3.0.0\nx: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`)))).toBe('OpenapiParsingError');
    const bomb = ['openapi: 3.0.0', 'a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
    expect(codeOf(() => parseOpenApi(Buffer.from(bomb)))).toBe('OpenapiParsingError');
    expect(codeOf(() => parseOpenApi(Buffer.alloc(MAX_DESCRIPTION_BYTES + 1, 0x20)))).toBe('OpenapiParsingError');
  });

  it('ServiceDescriptionService.addOpenApi3ServiceDescription: the base endpoint and one generated endpoint per operation', () => {
    const parsed = parseOpenApi(fixture('pets-3.1.json'));
    expect(openApiEndpoints('pets', parsed)).toEqual([
      { serviceCode: 'pets', method: '*', path: '**', generated: true },
      { serviceCode: 'pets', method: 'GET', path: '/pets', generated: true },
      { serviceCode: 'pets', method: 'PUT', path: '/pets', generated: true },
      { serviceCode: 'pets', method: 'PATCH', path: '/pets/*', generated: true },
    ]);
  });
});

describe('refresh', () => {
  it('ServiceChangeChecker: added and removed services by code.version, shown as adding_services / deleting_services warnings', () => {
    const old = description(1, 'WSDL', 'u', [['forecast', 'v1'], ['ping'], ['old', 'v1']]).services;
    const changes = serviceChanges(old, [{ code: 'forecast', version: 'v1', url: '' }, { code: 'ping', url: '' }, { code: 'forecast', version: 'v2', url: '' }]);
    expect(changes.added.map(fullServiceCode)).toEqual(['forecast.v2']);
    expect(changes.removed.map(fullServiceCode)).toEqual(['old.v1']);
    expect(refreshWarnings(changes)).toEqual([{ code: 'adding_services', metadata: ['forecast.v2'] }, { code: 'deleting_services', metadata: ['old.v1'] }]);
    expect(refreshWarnings(serviceChanges(old, old))).toEqual([]);
  });

  it('ServiceDescriptionService.updateServiceProperties: a refreshed service that stays keeps its URL, timeout and TLS setting; a new one gets the default timeout', () => {
    const old = [{ code: 'forecast', version: 'v1', url: 'https://internal.example/ws', timeoutSeconds: 120, sslAuthentication: false }];
    expect(wsdlServiceConfs([{ code: 'forecast', version: 'v1', title: 'T', url: 'http://weather.example:8080/soap' }, { code: 'forecast', version: 'v2', url: 'http://weather.example:8080/soap' }], 60, old)).toEqual([
      { code: 'forecast', version: 'v1', title: 'T', url: 'https://internal.example/ws', timeoutSeconds: 120, sslAuthentication: false },
      { code: 'forecast', version: 'v2', url: 'http://weather.example:8080/soap', timeoutSeconds: 60 },
    ]);
  });

  it('EndpointEntityChangeChecker: generated endpoints the new document lacks go with their rights, hand-made ones stay, new ones are added', () => {
    const c = client({
      endpoints: [
        { serviceCode: 'pets', method: '*', path: '**', generated: true },
        { serviceCode: 'pets', method: 'GET', path: '/pets', generated: true },
        { serviceCode: 'pets', method: 'DELETE', path: '/pets/*', generated: true },
        { serviceCode: 'pets', method: 'GET', path: '/admin', generated: false },
      ],
      accessRights: [
        { subject: 'DEV/COM/2222/NEWSUB', serviceCode: 'pets', method: 'DELETE', path: '/pets/*', grantedAt: AT },
        { subject: 'DEV/COM/2222/NEWSUB', serviceCode: 'pets', method: 'GET', path: '/pets', grantedAt: AT },
      ],
    });
    const fresh = openApiEndpoints('pets', parseOpenApi(fixture('pets-3.1.json')));
    const changes = endpointChanges(c, 'pets', fresh);
    expect(changes.added.map((e) => `${e.method} ${e.path}`)).toEqual(['PUT /pets', 'PATCH /pets/*']);
    expect(changes.removed.map((e) => `${e.method} ${e.path}`)).toEqual(['DELETE /pets/*']);
    expect(changes.removedRights.map((r) => `${r.method} ${r.path}`)).toEqual(['DELETE /pets/*']);
    expect(refreshWarnings(changes, ['w'])).toEqual([
      { code: 'openapi_validation_warnings', metadata: ['w'] },
      { code: 'adding_endpoints', metadata: ['PUT /pets', 'PATCH /pets/*'] },
      { code: 'deleting_endpoints', metadata: ['DELETE /pets/*'] },
    ]);
  });
});

describe('fetching a description (loopback)', () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  async function serve(handler: RequestListener, tls?: { cert: Buffer; key: Buffer }): Promise<string> {
    const server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('WsdlParser.TrustAllSslCertsWsdlLocator: reads the body over http and over https with a self-signed certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xrd-desc-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=is.example', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const wsdl = fixture('provider.wsdl');
    const plain = await serve((_, res) => res.end(wsdl));
    const secure = await serve((_, res) => res.end(wsdl), { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) });
    expect(await fetchDescription(`${plain}/weather?wsdl`, 'WSDL')).toEqual(wsdl);
    expect(parseWsdl(await fetchDescription(`${secure}/weather?wsdl`, 'WSDL'))).toHaveLength(4);
    // The same server is refused by a call that checks certificates: trusting any is this call's choice.
    expect(await asyncCodeOf(fetchBounded(`${secure}/weather?wsdl`, { maxBytes: 1024 * 1024, deadlineMs: 10_000 }))).toBe('NetworkError');
  });

  it('WsdlParserTest.readWsdlFromInvalidUrl / tryReadNotFoundWsdl: no server or an HTTP error is WsdlDownloadFailed; for OpenAPI OpenapiParsingError', async () => {
    const base = await serve((_, res) => {
      res.statusCode = 404;
      res.end('not here');
    });
    expect(await asyncCodeOf(fetchDescription(`${base}/missing.wsdl`, 'WSDL'))).toBe('WsdlDownloadFailed');
    expect(await asyncCodeOf(fetchDescription(`${base}/missing.yaml`, 'OPENAPI3'))).toBe('OpenapiParsingError');
    const closed = await serve(() => undefined);
    servers.splice(0).forEach((s) => s.close());
    expect(await asyncCodeOf(fetchDescription(`${closed}/gone.wsdl`, 'WSDL'))).toBe('WsdlDownloadFailed');
  });

  it('OpenApiParserTest.shouldFailIfInvalidProtocol and MAX_DESCRIPTION_SIZE: only http(s); an answer over 10 MiB is refused', async () => {
    expect(await asyncCodeOf(fetchDescription('file:///etc/passwd', 'OPENAPI3'))).toBe('OpenapiParsingError');
    expect(await asyncCodeOf(fetchDescription('file:///etc/passwd', 'WSDL'))).toBe('WsdlDownloadFailed');
    const big = await serve((_, res) => {
      res.setHeader('Content-Length', String(MAX_DESCRIPTION_BYTES + 1));
      res.end();
    });
    expect(await asyncCodeOf(fetchDescription(`${big}/big.wsdl`, 'WSDL'))).toBe('InvalidWsdl');
    expect(await asyncCodeOf(fetchDescription(`${big}/big.yaml`, 'OPENAPI3'))).toBe('OpenapiParsingError');
  });
});
