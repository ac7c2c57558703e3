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
import { MAX_DESCRIPTION_BYTES, checkServiceCodeNotReserved, fetchDescription, parseOpenApi, parseWsdl } from '../../src/serverconf/service-descriptions.ts';
import { VECTORS } from '../support/vectors.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/service-descriptions');
const fixture = (name: string) => readFileSync(join(FIXTURES, name));
const vector = (name: string) => readFileSync(join(VECTORS, 'metaservices/__files', name));

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
    expect(services.filter((s) => s.code === 'forecast' && s.version === 'v1')).toEqual([{ code: 'forecast', version: 'v1', title: 'Weather forecast for a town', url: 'https://weather.example/soap12' }]);
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

describe('ServiceDescriptionService.validateServiceCodeNotReserved', () => {
  it('validateServiceCodeNotReserved: the metaservices\' codes are ServiceCodeReserved', () => {
    expect(codeOf(() => checkServiceCodeNotReserved('listMethods'))).toBe('ServiceCodeReserved');
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
