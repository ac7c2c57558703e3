/**
 * The provider test services over real HTTP. curl is the client where a user would use it (seed
 * 003's `curl -d @getRandom.xml --header "Content-Type: text/xml" -X POST`), and responses are read
 * with @xmldom/xmldom, a parser independent of ours.
 */
import { DOMParser, type Element } from '@xmldom/xmldom';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymiseOpenapi } from '../../src/metaservice/openapi.ts';
import { WSDL_ENDPOINT_ADDRESS, overwriteSoapAddress } from '../../src/metaservice/wsdl.ts';
import { startTestServices, type ReceivedRequest, type TestServices } from '../../src/dev/testservices/test-services.ts';

const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
const XRD = 'http://x-road.eu/xsd/xroad.xsd';
const ID = 'http://x-road.eu/xsd/identifiers';
const REPR = 'http://x-road.eu/xsd/representation.xsd';
const EXTSEC = 'http://x-road.eu/xsd/security-token.xsd';
const PRODUCER = 'http://test.x-road.fi/producer';

/** A request as an information system writes it: header with the seed 004 extensions, prefixes of its own. */
function soapRequest(body: string, opts: { envPrefix?: string } = {}): string {
  const p = opts.envPrefix ?? 'SOAP-ENV';
  return `<?xml version="1.0" encoding="UTF-8"?>
<${p}:Envelope xmlns:${p}="${SOAP_ENV}" xmlns:id="${ID}" xmlns:xrd="${XRD}" xmlns:repr="${REPR}" xmlns:extsec="${EXTSEC}" xmlns:prod="${PRODUCER}">
  <${p}:Header>
    <xrd:client id:objectType="SUBSYSTEM">
      <id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass>
      <id:memberCode>2222</id:memberCode><id:subsystemCode>CLIENT</id:subsystemCode>
    </xrd:client>
    <xrd:service id:objectType="SERVICE">
      <id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass>
      <id:memberCode>1111</id:memberCode><id:subsystemCode>PROVIDER</id:subsystemCode>
      <id:serviceCode>getRandom</id:serviceCode><id:serviceVersion>v1</id:serviceVersion>
    </xrd:service>
    <repr:representedParty><repr:partyClass>MUN</repr:partyClass><repr:partyCode>0000000-0</repr:partyCode></repr:representedParty>
    <extsec:securityToken tokenType="urn:ietf:params:oauth:token-type:jwt">eyJhbGciOiJIUzI1NiJ9.eyJuYW1lIjoiVGVzdCJ9</extsec:securityToken>
    <xrd:userId>EE1234567890</xrd:userId>
    <xrd:id>ID-${Math.random().toString(36).slice(2)}</xrd:id>
    <xrd:issue>issue-17</xrd:issue>
    <xrd:protocolVersion>4.0</xrd:protocolVersion>
  </${p}:Header>
  <${p}:Body>${body}</${p}:Body>
</${p}:Envelope>
`;
}

interface Curl {
  status: number;
  headers: string;
  body: string;
}

/** Runs curl with `-s -i` and splits its output. */
function curl(args: string[], input?: string): Promise<Curl> {
  return new Promise((resolve, reject) => {
    const child = execFile('curl', ['-s', '-i', ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      if (err) return reject(err);
      const split = stdout.indexOf('\r\n\r\n');
      const headers = stdout.slice(0, split);
      resolve({ status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(headers)?.[1]), headers, body: stdout.slice(split + 4) });
    });
    child.stdin!.end(input ?? '');
  });
}

function dom(xml: string): Element {
  const errors: string[] = [];
  const doc = new DOMParser({ onError: (level, msg) => void (level !== 'warning' && errors.push(msg)) }).parseFromString(xml, 'text/xml');
  expect(errors).toEqual([]);
  return doc.documentElement!;
}

function only(parent: Element, ns: string, local: string): Element {
  const found = Array.from(parent.getElementsByTagNameNS(ns, local));
  expect(found, `${local} elements`).toHaveLength(1);
  return found[0]!;
}

/** The X-Road header's fields as a reader of the header sees them. */
function headerFields(envelope: Element): Record<string, string> {
  const header = only(envelope, SOAP_ENV, 'Header');
  // An identifier's parts joined by '/', a simple field's text; '|' between repeated fields.
  const value = (e: Element): string => {
    const parts = Array.from(e.childNodes).filter((n): n is Element => n.nodeType === 1);
    return parts.length === 0 ? e.textContent!.trim() : parts.map(value).join('/');
  };
  const text = (ns: string, local: string) => Array.from(header.getElementsByTagNameNS(ns, local)).map(value).join('|');
  return {
    client: text(XRD, 'client'),
    clientType: only(header, XRD, 'client').getAttributeNS(ID, 'objectType')!,
    service: text(XRD, 'service'),
    serviceType: only(header, XRD, 'service').getAttributeNS(ID, 'objectType')!,
    id: text(XRD, 'id'),
    userId: text(XRD, 'userId'),
    issue: text(XRD, 'issue'),
    protocolVersion: text(XRD, 'protocolVersion'),
    representedParty: text(REPR, 'representedParty'),
    securityToken: text(EXTSEC, 'securityToken'),
    tokenType: only(header, EXTSEC, 'securityToken').getAttribute('tokenType')!,
  };
}

function faultOf(xml: string): { code: string; text: string } {
  const env = dom(xml);
  const f = only(env, SOAP_ENV, 'Fault');
  const code = Array.from(f.getElementsByTagName('faultcode'))[0]!.textContent!;
  // A fault code is a QName: its prefix must be bound to the SOAP envelope namespace.
  const [prefix, local] = code.split(':');
  expect(f.lookupNamespaceURI(prefix!)).toBe(SOAP_ENV);
  return { code: local!, text: Array.from(f.getElementsByTagName('faultstring'))[0]!.textContent! };
}

let services: TestServices;
const received: ReceivedRequest[] = [];
const dir = mkdtempSync(join(tmpdir(), 'xrd-testservices-'));

beforeAll(async () => {
  services = await startTestServices({ onRequest: (r) => received.push(r), maxBodyBytes: 256 * 1024 });
});
afterAll(async () => {
  await services?.close();
});

describe('SOAP test services', () => {
  it('answers getRandom (seed 003 curl call) with a number in 0..100 and the request header unchanged', async () => {
    const request = soapRequest('<prod:getRandom/>');
    writeFileSync(join(dir, 'getRandom.xml'), request);
    const res = await curl(['-d', `@${join(dir, 'getRandom.xml')}`, '--header', 'Content-Type: text/xml', '-X', 'POST', `${services.url}/`]);
    expect(res.status).toBe(200);
    expect(res.headers).toMatch(/content-type: text\/xml/i);
    const env = dom(res.body);
    expect(headerFields(env)).toEqual(headerFields(dom(request)));
    expect(headerFields(env)).toMatchObject({
      client: 'LOCAL/COM/2222/CLIENT',
      service: 'LOCAL/COM/1111/PROVIDER/getRandom/v1',
      representedParty: 'MUN/0000000-0',
      userId: 'EE1234567890',
      issue: 'issue-17',
      protocolVersion: '4.0',
      tokenType: 'urn:ietf:params:oauth:token-type:jwt',
    });
    const response = only(env, PRODUCER, 'getRandomResponse');
    expect(response.parentNode!.namespaceURI).toBe(SOAP_ENV);
    only(response, PRODUCER, 'request');
    const data = Number(only(only(response, PRODUCER, 'response'), PRODUCER, 'data').textContent);
    expect(Number.isInteger(data) && data >= 0 && data <= 100).toBe(true);
  });

  it('gives numbers spread over 0..100, not one value', async () => {
    const values = await Promise.all(
      Array.from({ length: 60 }, async () => {
        const res = await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], soapRequest('<prod:getRandom/>'));
        return Number(only(dom(res.body), PRODUCER, 'data').textContent);
      }),
    );
    expect(values.every((v) => Number.isInteger(v) && v >= 0 && v <= 100)).toBe(true);
    expect(new Set(values).size).toBeGreaterThan(15);
  });

  it('answers helloService with the greeting and echoes the input, escaping XML characters', async () => {
    const name = 'Tëst & <Ltd> "quoted"';
    const request = soapRequest(`<prod:helloService><prod:name>Tëst &amp; &lt;Ltd&gt; "quoted"</prod:name></prod:helloService>`, { envPrefix: 'soapenv' });
    const res = await curl(['-H', 'Content-Type: text/xml; charset=utf-8', '--data-binary', '@-', `${services.url}/`], request);
    expect(res.status).toBe(200);
    const env = dom(res.body);
    expect(env.prefix).toBe('soapenv');
    expect(headerFields(env)).toEqual(headerFields(dom(request)));
    const response = only(env, PRODUCER, 'helloServiceResponse');
    expect(only(only(response, PRODUCER, 'response'), PRODUCER, 'message').textContent).toBe(`Hello ${name}! Greetings from adapter server!`);
    expect(only(only(response, PRODUCER, 'request'), PRODUCER, 'name').textContent).toBe(name);
  });

  it('reads the name from an X-Road 6 request wrapper too', async () => {
    const res = await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], soapRequest('<prod:helloService><prod:request><prod:name>Wrapped</prod:name></prod:request></prod:helloService>'));
    expect(only(dom(res.body), PRODUCER, 'message').textContent).toBe('Hello Wrapped! Greetings from adapter server!');
  });

  it('answers an unknown operation with a Client fault naming it', async () => {
    const res = await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], soapRequest('<prod:listPeople/>'));
    expect(res.status).toBe(500);
    const f = faultOf(res.body);
    expect(f.code).toBe('Client');
    expect(f.text).toContain('Unknown operation {http://test.x-road.fi/producer}listPeople');
  });

  it('answers malformed XML, a missing X-Road header and a wrong content type with Client faults', async () => {
    const post = (body: string, type = 'text/xml') => curl(['-H', `Content-Type: ${type}`, '--data-binary', '@-', `${services.url}/`], body);
    const malformed = faultOf((await post('<SOAP-ENV:Envelope xmlns:SOAP-ENV="x"><unclosed>')).body);
    expect(malformed).toMatchObject({ code: 'Client' });
    expect(malformed.text).toMatch(/^Malformed SOAP message: /);

    const noHeader = await post(`<e:Envelope xmlns:e="${SOAP_ENV}"><e:Body><p:getRandom xmlns:p="${PRODUCER}"/></e:Body></e:Envelope>`);
    expect(noHeader.status).toBe(500);
    expect(faultOf(noHeader.body).text).toContain('must have a Header and a Body');

    const json = await post('{"getRandom":{}}', 'application/json');
    expect(faultOf(json.body)).toEqual({ code: 'Client', text: 'Invalid content type application/json: SOAP requests must be text/xml' });
  });

  it('refuses DTDs: no entity is expanded, no file is read', async () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + soapRequest('<prod:helloService><prod:name>&x;</prod:name></prod:helloService>').replace(/^<\?xml[^>]*>/, '');
    const res = await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], xxe);
    expect(res.status).toBe(500);
    expect(faultOf(res.body).text).toContain('DTDs and entity declarations are not accepted');
    expect(res.body).not.toContain('root:');
  });

  it('refuses a name over 256 characters and a hello without a name', async () => {
    const ok = await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], soapRequest(`<prod:helloService><prod:name>${'n'.repeat(256)}</prod:name></prod:helloService>`));
    expect(ok.status).toBe(200);
    const long = await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], soapRequest(`<prod:helloService><prod:name>${'n'.repeat(257)}</prod:name></prod:helloService>`));
    expect(faultOf(long.body)).toEqual({ code: 'Client', text: 'helloService: Name is too long. Max length is 256 characters.' });
    const none = await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], soapRequest('<prod:helloService/>'));
    expect(faultOf(none.body).text).toBe('helloService: the request has no name element');
  });

  it('answers a body over the limit with 413 and a SOAP fault', async () => {
    const big = soapRequest(`<prod:helloService><prod:name>${'x'.repeat(300 * 1024)}</prod:name></prod:helloService>`);
    const res = await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], big);
    expect(res.status).toBe(413);
    expect(faultOf(res.body).code).toBe('Client');
  });
});

describe('REST test services', () => {
  it('rest-test/random gives {"randomNumber": 0..100} under both path forms', async () => {
    for (const path of ['/rest-test/random', '/random']) {
      const values: number[] = [];
      for (let i = 0; i < 30; i++) {
        const res = await curl([`${services.url}${path}`]);
        expect(res.status).toBe(200);
        expect(res.headers).toMatch(/content-type: application\/json/i);
        const body = JSON.parse(res.body) as Record<string, unknown>;
        expect(Object.keys(body)).toEqual(['randomNumber']);
        values.push(body.randomNumber as number);
      }
      expect(values.every((v) => Number.isInteger(v) && v >= 0 && v <= 100)).toBe(true);
      expect(new Set(values).size).toBeGreaterThan(5);
    }
  });

  it('rest-test/hello greets the name given, or no one', async () => {
    const named = await curl(['-G', '--data-urlencode', 'name=Gandalf the Grëy & co', `${services.url}/rest-test/hello`]);
    expect(JSON.parse(named.body)).toEqual({ greeting: 'Hello Gandalf the Grëy & co! Greetings from adapter server!' });
    const plain = await curl([`${services.url}/hello?name=X`]);
    expect(JSON.parse(plain.body)).toEqual({ greeting: 'Hello X! Greetings from adapter server!' });
    const anonymous = await curl([`${services.url}/rest-test/hello`]);
    expect(JSON.parse(anonymous.body)).toEqual({ greeting: 'Hello! Greetings from adapter server!' });
  });

  it('rejects names over 256 characters with 400 and a JSON error', async () => {
    expect((await curl([`${services.url}/rest-test/hello?name=${'a'.repeat(256)}`])).status).toBe(200);
    const res = await curl([`${services.url}/rest-test/hello?name=${'a'.repeat(257)}`]);
    expect(res.status).toBe(400);
    expect(res.headers).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(res.body)).toEqual({ type: 'ValidationError', message: 'Name is too long. Max length is 256 characters.' });
  });

  it('answers an unknown path with 404 and a JSON error', async () => {
    const res = await curl([`${services.url}/rest-test/nothing?x=1`]);
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toEqual({ type: 'NotFound', message: 'No test service at GET /rest-test/nothing' });
  });
});

describe('service descriptions (what getWsdl and getOpenAPI hand out for the local instance)', () => {
  const WSDL = 'http://schemas.xmlsoap.org/wsdl/';
  const WSDL_SOAP = 'http://schemas.xmlsoap.org/wsdl/soap/';

  it('GET /wsdl: a WSDL with the operations getRandom and helloService (version v1) whose soap:address is this server; the metaservice replaces only that', async () => {
    const res = await curl([`${services.url}/wsdl`]);
    expect([res.status, /^content-type: (.*)$/im.exec(res.headers)?.[1]?.trim()]).toEqual([200, 'text/xml; charset=UTF-8']);
    const root = dom(res.body);
    expect(root.getAttribute('targetNamespace')).toBe(PRODUCER);
    const binding = Array.from(root.getElementsByTagNameNS(WSDL, 'binding'))[0]!;
    expect(Array.from(binding.getElementsByTagNameNS(WSDL, 'operation')).map((o) => [o.getAttribute('name'), o.getElementsByTagNameNS(XRD, 'version')[0]?.textContent])).toEqual([['getRandom', 'v1'], ['helloService', 'v1']]);
    const location = (xml: string) => Array.from(dom(xml).getElementsByTagNameNS(WSDL_SOAP, 'address')).map((a) => a.getAttribute('location'));
    expect(location(res.body)).toEqual([`${services.url}/`]);
    expect(location(overwriteSoapAddress(Buffer.from(res.body)).toString('utf8'))).toEqual([WSDL_ENDPOINT_ADDRESS]);
  });

  it('GET /rest-test/openapi.json: OpenAPI 3 with /random and /hello under this server\'s /rest-test; the metaservice keeps only the path', async () => {
    const res = await curl([`${services.url}/rest-test/openapi.json`]);
    expect(res.status).toBe(200);
    const doc = JSON.parse(res.body) as { openapi: string; servers: { url: string }[]; paths: Record<string, unknown> };
    expect([doc.openapi, doc.servers, Object.keys(doc.paths)]).toEqual(['3.0.0', [{ url: `${services.url}/rest-test` }], ['/random', '/hello']]);
    expect((JSON.parse(anonymiseOpenapi(Buffer.from(res.body), 'JSON', `${services.url}/rest-test/openapi.json`).toString('utf8')) as typeof doc).servers).toEqual([{ url: '/rest-test' }]);
  });
});

describe('what the provider sees', () => {
  it('shows a test the headers and body that reached the service, untouched', async () => {
    received.length = 0;
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJuYW1lIjoiVGVzdCJ9';
    await curl(['-H', 'X-Road-Represented-Party: MUN/0000000-0', '-H', `Authorization: Bearer ${jwt}`, `${services.url}/rest-test/hello?name=Ann`]);
    const body = soapRequest('<prod:getRandom/>');
    await curl(['-H', 'Content-Type: text/xml', '--data-binary', '@-', `${services.url}/`], body);
    expect(received).toHaveLength(2);
    expect(received[0]).toMatchObject({ method: 'GET', url: '/rest-test/hello?name=Ann' });
    expect(received[0]!.headers['x-road-represented-party']).toBe('MUN/0000000-0');
    expect(received[0]!.headers.authorization).toBe(`Bearer ${jwt}`);
    expect(received[1]!.method).toBe('POST');
    expect(received[1]!.body.equals(Buffer.from(body))).toBe(true);
  });

  it('keeps connections alive for a pooling caller', async () => {
    // Two requests in one curl run: the second reuses the first one's connection.
    const out = await new Promise<string>((resolve, reject) =>
      execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{num_connects}\\n', `${services.url}/random`, '-o', '/dev/null', `${services.url}/rest-test/random`], (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    expect(out.trim().split('\n')).toEqual(['1', '0']);
  });

  it('frees its port on close', async () => {
    const other = await startTestServices();
    expect((await curl([`${other.url}/random`])).status).toBe(200);
    await other.close();
    await expect(curl([`${other.url}/random`])).rejects.toThrow();
  });
});
