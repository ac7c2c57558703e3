/**
 * The checks the proxies make before anything is signed or sent: the X-Road SOAP header (MESS_04),
 * the REST header part and request hash (pr-rest), the response's request hash, who may speak for
 * a client (seed 003's connection types and texts), access rights and serverconf.json.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatClientId, parseClientId } from '../../src/protocol/identifiers.ts';
import { readMessageHeader, signerOf } from '../../src/protocol/message-header.ts';
import { forwardableHeaders, parseRestHeaderPart, parseRestRequestPart, parseRestResponsePart, readRestRequest, restRequestHash, restRequestHeaderPart, restResponseHeaderPart, restResponseParts, serviceRequestHeaders } from '../../src/protocol/rest-message.ts';
import { checkResponseHeader, parseSoapHeader, soapRequestHash, withRequestHash } from '../../src/protocol/soap-message.ts';
import { authenticateInformationSystem } from '../../src/proxy/client/is-authentication.ts';
import { importInternalTls, ensureInternalTls } from '../../src/serverconf/internal-tls.ts';
import { isQueryAllowed } from '../../src/serverconf/access.ts';
import { inGlobalGroup, serviceUrl } from '../../src/serverconf/server-conf.ts';
import { clientWithServices, parseServerConfJson as parseServerConf, serializeServerConfJson as serializeServerConf } from '../../src/serverconf/serverconf-json.ts';

const header = (fields: string, body = '<prod:ProviderServiceCode xmlns:prod="http://test.x-road.fi/producer"/>') =>
  `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:repr="http://x-road.eu/xsd/representation.xsd"><SOAP-ENV:Header>${fields}</SOAP-ENV:Header><SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;
const CLIENT = '<xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>FI-TEST</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1234567-8</id:memberCode><id:subsystemCode>TestClient</id:subsystemCode></xrd:client>';
const SERVICE = '<xrd:service id:objectType="SERVICE"><id:xRoadInstance>FI-TEST</id:xRoadInstance><id:memberClass>GOV</id:memberClass><id:memberCode>8765432-1</id:memberCode><id:subsystemCode>ProviderSubsystem</id:subsystemCode><id:serviceCode>ProviderServiceCode</id:serviceCode><id:serviceVersion>v1</id:serviceVersion></xrd:service>';
const REPR = '<repr:representedParty><repr:partyClass>MUN</repr:partyClass><repr:partyCode>0000000-0</repr:partyCode></repr:representedParty>';
const ID = '<xrd:id>ID11234</xrd:id>';
const VERSION = '<xrd:protocolVersion>4.0</xrd:protocolVersion>';

describe('the X-Road SOAP header (MESS_04)', () => {
  it("reads seed 004's identification query header with its representation extension", () => {
    const h = parseSoapHeader(header(CLIENT + SERVICE + REPR + '<xrd:userId>test</xrd:userId>' + ID + VERSION));
    expect(h.client).toEqual({ instance: 'FI-TEST', memberClass: 'COM', memberCode: '1234567-8', subsystem: 'TestClient' });
    expect(h.service).toEqual({ provider: { instance: 'FI-TEST', memberClass: 'GOV', memberCode: '8765432-1', subsystem: 'ProviderSubsystem' }, serviceCode: 'ProviderServiceCode', serviceVersion: 'v1' });
    expect(h).toMatchObject({ id: 'ID11234', userId: 'test', protocolVersion: '4.0', representedParty: 'MUN/0000000-0' });
  });

  it('refuses what the reference refuses, with its codes', () => {
    const code = (xml: string) => {
      try {
        parseSoapHeader(xml);
        return 'accepted';
      } catch (err) {
        return `${(err as { code: string }).code}: ${(err as Error).message}`;
      }
    };
    expect(code(header(CLIENT + SERVICE + VERSION))).toBe("MissingHeaderField: Required field 'id' is missing");
    expect(code(header(CLIENT + SERVICE + ID))).toBe("MissingHeaderField: Required field 'protocolVersion' is missing");
    expect(code(header(SERVICE + ID + VERSION))).toBe("MissingHeaderField: Required field 'client' is missing");
    expect(code(header(CLIENT + SERVICE + ID + ID + VERSION))).toBe("DuplicateHeaderField: SOAP header contains duplicate field 'id'");
    expect(code(header(CLIENT + SERVICE + ID + '<xrd:protocolVersion>3.1</xrd:protocolVersion>'))).toBe('InvalidProtocolVersion: Unsupported protocol version: 3.1');
    // SaxSoapParserImpl: an identifier of the wrong kind, or without objectType, is invalid XML.
    expect(code(header(CLIENT.replace('SUBSYSTEM', 'SERVICE') + SERVICE + ID + VERSION))).toBe('InvalidXml: Unexpected objectType: SERVICE');
    expect(code(header(CLIENT + SERVICE.replace(' id:objectType="SERVICE"', '') + ID + VERSION))).toBe('InvalidXml: Missing objectType attribute of service');
    // A Body of exactly one element whose name starts with the service code (SoapUtils.validateServiceName).
    expect(code(header(CLIENT + SERVICE + ID + VERSION, '<a/><b/>'))).toBe('InvalidBody: Malformed SOAP message: body must have exactly one child element');
    expect(code(header(CLIENT + SERVICE + ID + VERSION, ''))).toBe('InvalidBody: Malformed SOAP message: body must have exactly one child element');
    expect(code(header(CLIENT + SERVICE + ID + VERSION, '<prod:other xmlns:prod="urn:x"/>'))).toBe('InconsistentHeaders: Malformed SOAP message: service code does not match in header and body');
    expect(code(header(CLIENT + SERVICE + ID + VERSION).replace(/<SOAP-ENV:Body>.*<\/SOAP-ENV:Body>/, ''))).toBe('MissingBody: Malformed SOAP message: body missing');
    expect(code(header(CLIENT + SERVICE + ID + VERSION).replace(/<SOAP-ENV:Header>.*<\/SOAP-ENV:Header>/, ''))).toBe('MissingHeader: Malformed SOAP message: header missing');
    // Seed 004's sample as printed has a stray '>' after the extsec declaration: not XML a proxy may accept.
    expect(code('<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">\nxmlns:repr="http://x-road.eu/xsd/representation.xsd"><SOAP-ENV:Header/></SOAP-ENV:Envelope>')).toBe("MissingHeaderField: Required field 'protocolVersion' is missing");
    expect(code('<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>')).toMatch(/^InvalidSoap/);
  });

  it('reads identifiers strictly, so that every reader of the message sees the same parties', () => {
    const code = (client: string, extra = '') => {
      try {
        return JSON.stringify(parseSoapHeader(header(client + SERVICE + extra + ID + VERSION)).client);
      } catch (err) {
        return `${(err as { code: string }).code}: ${(err as Error).message}`;
      }
    };
    // XML whitespace around a part is layout; anything else around or inside it is not.
    expect(code(CLIENT.replace('>COM<', '>\n  COM\t<'))).toBe('{"instance":"FI-TEST","memberClass":"COM","memberCode":"1234567-8","subsystem":"TestClient"}');
    expect(code(CLIENT.replace('>COM<', '>\u00a0COM<'))).toMatch(/^InvalidClientIdentifier: .*memberClass holds U\+00A0/);
    expect(code(CLIENT.replace('<id:memberCode>', '<id:memberCode>12<!-- x -->'))).toMatch(/^InvalidClientIdentifier: .*memberCode holds markup/);
    expect(code(CLIENT.replace('<id:memberCode>', '<id:memberCode><b>1</b>'))).toMatch(/^InvalidClientIdentifier: .*memberCode holds markup/);
    expect(code(CLIENT.replace('</xrd:client>', '<id:memberCode>666</id:memberCode></xrd:client>'))).toMatch(/^InvalidClientIdentifier: .*memberCode appears twice/);
    expect(code(CLIENT.replace('</xrd:client>', '<x:memberCode xmlns:x="urn:other">666</x:memberCode></xrd:client>'))).toMatch(/^InvalidClientIdentifier: .*unexpected element x:memberCode in namespace 'urn:other'/);
    expect(code(CLIENT.replace('</xrd:client>', '<id:serviceCode>s</id:serviceCode></xrd:client>'))).toMatch(/^InvalidClientIdentifier: .*unexpected element id:serviceCode/);
    expect(code(CLIENT.replace('</xrd:client>', 'EE</xrd:client>'))).toMatch(/^InvalidClientIdentifier: .*text outside the identifier parts/);
    expect(code(CLIENT.replace('>TestClient<', '>Test/Client<'))).toMatch(/^InvalidClientIdentifier: .*subsystemCode holds "\/"/);
    expect(code(CLIENT.replace('>TestClient<', '><'))).toMatch(/^InvalidClientIdentifier: .*subsystemCode is empty/);
    expect(code(CLIENT, REPR + REPR)).toBe("DuplicateHeaderField: SOAP header contains duplicate field 'representedParty'");
  });

  it("an archived message.xml is read by the proxies' readers: what they refuse, a container verifier refuses", () => {
    const read = (xml: string) => {
      try {
        const h = readMessageHeader(Buffer.from(xml));
        return `${h.isResponse ? 'response' : 'request'} signed by ${formatClientId(signerOf(h))}`;
      } catch (err) {
        return `${(err as { code: string }).code}: ${(err as Error).message}`;
      }
    };
    const request = header(CLIENT + SERVICE + ID + VERSION);
    expect(read(request)).toBe('request signed by FI-TEST/COM/1234567-8/TestClient');
    expect(read(header(CLIENT + SERVICE + ID + VERSION, '<prod:ProviderServiceCodeResponse xmlns:prod="http://test.x-road.fi/producer"/>'))).toBe('request signed by FI-TEST/COM/1234567-8/TestClient');
    expect(read(withRequestHash(Buffer.from(request), Buffer.from(request)).toString())).toBe('response signed by FI-TEST/GOV/8765432-1/ProviderSubsystem');
    expect(read(header(CLIENT.replace('</xrd:client>', '<id:memberCode>666</id:memberCode></xrd:client>') + SERVICE + ID + VERSION))).toMatch(/^InvalidMessage: .*memberCode appears twice/);
    expect(read('GET\r\n/r1/A/B/C/D/E\r\nx-road-client:A/B/C/D\r\nx-road-client:A/B/X/D\r\nx-road-id:q\r\n')).toMatch(/^InvalidMessage: .*DuplicateHeaderField/);
    expect(read('GET\r\n/r1/A/B/C/D/E\r\nx-road-client:A/B/C/D\r\nx-road-id:q\r\n')).toBe('request signed by A/B/C/D');
  });

  it('a response must repeat the request header and carry the hash of exactly the request sent', () => {
    const request = Buffer.from(header(CLIENT + SERVICE + '<xrd:userId>test</xrd:userId>' + ID + VERSION));
    const response = Buffer.from(header(CLIENT + SERVICE + '<xrd:userId>test</xrd:userId>' + ID + '<xrd:requestHash>forged</xrd:requestHash>' + VERSION, '<prod:ProviderServiceCodeResponse xmlns:prod="http://test.x-road.fi/producer"/>'));
    const hashed = withRequestHash(response, request);
    const h = parseSoapHeader(hashed);
    expect(h.requestHash).toBe(createHash('sha512').update(request).digest('base64'));
    expect(h.requestHash).toBe(soapRequestHash(request));
    expect(hashed.toString().match(/requestHash/g)).toHaveLength(2); // one element, its start and end tags
    expect(() => checkResponseHeader(parseSoapHeader(request), h)).not.toThrow();
    const otherUser = parseSoapHeader(header(CLIENT + SERVICE + '<xrd:userId>mallory</xrd:userId>' + ID + VERSION));
    expect(() => checkResponseHeader(parseSoapHeader(request), otherUser)).toThrow("userId is 'mallory', the request's is 'test'");
  });
});

describe('REST messages (pr-rest)', () => {
  const received: [string, string][] = [
    ['Host', 'ss.example'], ['User-Agent', 'curl'], ['Connection', 'keep-alive, X-Hop'], ['X-Hop', 'drop me'],
    ['X-Road-Client', 'FI-TEST/COM/1234567-8/TestClient'], ['X-Road-Represented-Party', 'MUN/0000000-0'], ['Authorization', 'Bearer eyJ'], ['Accept', 'application/json'],
  ];

  it('the header part keeps end-to-end headers (Authorization, X-Road-Represented-Party) and drops hop-by-hop ones', () => {
    const r = readRestRequest('POST', '/r1/FI-TEST/GOV/8765432-1/ProviderSubsystem/ProviderServiceCode/authenticate?x=1', received);
    expect(r.service).toEqual({ provider: parseClientId('FI-TEST/GOV/8765432-1/ProviderSubsystem'), serviceCode: 'ProviderServiceCode' });
    expect(r.servicePath).toBe('/authenticate?x=1');
    expect(r.representedParty).toBe('MUN/0000000-0');
    const part = parseRestHeaderPart(r.headerPart);
    expect(part.startLine).toEqual(['POST', '/r1/FI-TEST/GOV/8765432-1/ProviderSubsystem/ProviderServiceCode/authenticate?x=1']);
    // As the reference's RestRequest: the information system's headers as sent, then x-road-request-id, then a generated x-road-id.
    expect(part.headers.map(([n]) => n.toLowerCase())).toEqual(['x-road-client', 'x-road-represented-party', 'authorization', 'accept', 'x-road-request-id', 'x-road-id']);
  });

  it('dot segments, plain or percent-encoded, cannot climb out of the service', () => {
    for (const path of ['/r1/A/B/C/D/E/../admin', '/r1/A/B/C/D/E/%2e%2e/admin', '/r1/A/B/C/D/E/%2E./x', '/r1/A/B/C/D/./E', '/r1/A/B/C/D/E/..;x/admin', '/r1/A/B/C/D/E/%2e%2e%3bx/admin']) {
      expect(() => readRestRequest('GET', path, received), path).toThrow('dot segments are not allowed');
    }
    expect(readRestRequest('GET', '/r1/A/B/C/D/E/..x/y.z', received).servicePath).toBe('/..x/y.z');
  });

  it('attack: paths a provider could read as another path are refused as Jetty 12 refuses them for the reference (UriCompliance.DEFAULT with AMBIGUOUS_PATH_SEPARATOR)', () => {
    const refused = (path: string) => {
      try {
        readRestRequest('GET', path, received);
        return 'accepted';
      } catch (err) {
        return `${(err as { code: string }).code}: ${(err as Error).message.replace(/^.*: /, '')}`;
      }
    };
    expect(refused('/r1/A/B/C/D/E/%252e%252e/admin')).toBe('InvalidRequest: an encoded % (double encoding) is not allowed');
    expect(refused('/r1/A/B/C/D/E/x%5C..%5Cadmin')).toBe('InvalidRequest: backslashes and control characters are not allowed');
    expect(refused('/r1/A/B/C/D/E/x\\admin')).toBe('InvalidRequest: backslashes and control characters are not allowed');
    expect(refused('/r1/A/B/C/D/E/x%00.json')).toBe('InvalidRequest: backslashes and control characters are not allowed');
    expect(refused('/r1/A/B/C/D/E/a//b')).toBe('InvalidRequest: empty segments are not allowed');
    expect(refused('/r1/A/B/C/D/E/%C0%AE%C0%AE/admin')).toBe('InvalidRequest: it is not percent-encoded UTF-8');
    // An encoded slash is allowed, as the reference allows it, and reaches the provider as sent.
    expect(readRestRequest('GET', '/r1/A/B/C/D/E/files/a%2Fb?x=%25', received).servicePath).toBe('/files/a%2Fb?x=%25');
    expect(readRestRequest('GET', '/r1/A/B/C/D/E/', received).servicePath).toBe('/');
    expect(readRestRequest('GET', '/r1/A/B/C/D/E', received).servicePath).toBe('');
  });

  it('paths and clients that are not X-Road REST are refused with codes', () => {
    expect(() => readRestRequest('GET', '/r1/FI-TEST/GOV', received)).toThrow(/Invalid REST path/);
    expect(() => readRestRequest('GET', '/r1/A/B/C/D/E', [])).toThrow("Required field 'X-Road-Client' is missing");
    expect(() => readRestRequest('GET', '/r1/A/B/C/D/E', [['X-Road-Client', 'only/two']])).toThrow(/X-Road-Client must be/);
  });

  it('attack: a second X-Road-Client (or any X-Road header given twice) is refused, wherever the message is read', () => {
    const path = '/r1/FI-TEST/GOV/8765432-1/ProviderSubsystem/ProviderServiceCode';
    const twice: [string, string][] = [...received, ['x-road-client', 'FI-TEST/GOV/8765432-1/Other']];
    const code = (f: () => unknown) => {
      try {
        f();
        return 'accepted';
      } catch (err) {
        return `${(err as { code: string }).code}: ${(err as Error).message}`;
      }
    };
    expect(code(() => readRestRequest('GET', path, twice))).toBe("DuplicateHeaderField: REST message contains duplicate field 'x-road-client'");
    expect(code(() => parseRestRequestPart(restRequestHeaderPart('GET', path, [...forwardableHeaders(twice), ['x-road-id', 'q']])))).toBe("DuplicateHeaderField: REST message contains duplicate field 'x-road-client'");
    expect(code(() => readRestRequest('GET', path, [...received, ['X-Road-UserId', 'a'], ['x-road-userid', 'b']]))).toBe("DuplicateHeaderField: REST message contains duplicate field 'x-road-userid'");
    const response = restResponseHeaderPart(200, 'OK', [['x-road-id', 'q'], ['x-road-request-hash', 'aGFzaA=='], ['x-road-service', 'A/B/C/D/E'], ['X-Road-Service', 'A/B/C/X/E']]);
    expect(code(() => parseRestResponsePart(response))).toBe("DuplicateHeaderField: REST message contains duplicate field 'X-Road-Service'");
  });

  it("attack: an information system's own X-Road-Service is not signed, and the provider's service gets the identity headers of the verified message only", () => {
    const path = '/r1/FI-TEST/GOV/8765432-1/ProviderSubsystem/ProviderServiceCode/x';
    const r = readRestRequest('GET', path, [...received, ['X-Road-Service', 'FI-TEST/GOV/0000000-0/Forged/code']], { requestId: 'r-1' });
    expect(parseRestHeaderPart(r.headerPart).headers.map(([n]) => n.toLowerCase())).not.toContain('x-road-service');
    // A header part written by another client proxy may still carry one; the service never sees it.
    const part = restRequestHeaderPart('GET', path, [['X-Road-Client', 'FI-TEST/COM/1234567-8/TestClient'], ['X-Road-Service', 'FI-TEST/GOV/0000000-0/Forged/code'], ['X-Road-Request-Hash', 'forged'], ['Accept', '*/*'], ['x-road-id', 'q-1'], ['x-road-request-id', 'r-1']]);
    expect(serviceRequestHeaders(parseRestRequestPart(part))).toEqual([
      ['Accept', '*/*'],
      ['x-road-client', 'FI-TEST/COM/1234567-8/TestClient'],
      ['x-road-service', 'FI-TEST/GOV/8765432-1/ProviderSubsystem/ProviderServiceCode'],
      ['x-road-id', 'q-1'],
      ['x-road-request-id', 'r-1'],
    ]);
  });

  it('the request hash is over the header part alone without a body, and over both with one', () => {
    const part = Buffer.from('GET\r\n/r1/A/B/C/D/E\r\n');
    const sha = (b: Buffer) => createHash('sha512').update(b).digest();
    expect(restRequestHash(part)).toEqual(sha(part));
    expect(restRequestHash(part, Buffer.from('{}'))).toEqual(sha(Buffer.concat([sha(part), sha(Buffer.from('{}'))])));
    // A body part that is there but empty still counts (ServerRestMessageProcessor: restBodyDigest is set).
    expect(restRequestHash(part, Buffer.alloc(0))).toEqual(sha(Buffer.concat([sha(part), sha(Buffer.alloc(0))])));
    const response = restResponseParts(
      { headerPart: part, client: parseClientId('A/B/C/D'), service: { provider: parseClientId('A/B/C/D'), serviceCode: 'E' }, queryId: 'q', requestId: 'r' },
      200,
      'OK',
      [['Content-Type', 'application/json'], ['X-Road-Request-Hash', 'forged'], ['Transfer-Encoding', 'chunked']],
    );
    expect(parseRestHeaderPart(response.headerPart).headers).toEqual([
      ['Content-Type', 'application/json'], ['x-road-id', 'q'], ['x-road-client', 'A/B/C/D'], ['x-road-service', 'A/B/C/D/E'], ['x-road-request-id', 'r'], ['x-road-request-hash', restRequestHash(part).toString('base64')],
    ]);
  });
});

describe('who may speak for a client (seed 003)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-is-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '2', '-subj', '/CN=is'], { stdio: 'pipe' });
  const isCert = Buffer.from(new X509Certificate(readFileSync(join(dir, 'c.pem'))).raw);
  const otherCert = Buffer.from(new X509Certificate(ensureInternalTls(join(dir, 'other')).certPem).raw);
  const conf = parseServerConf(JSON.stringify({
    serverId: 'FI-DEV/GOV/0245437-2/ss',
    clients: [
      { id: 'FI-DEV/GOV/0245437-2/TestClient', connectionType: 'HTTPS', isCerts: [readFileSync(join(dir, 'c.pem'), 'utf8')] },
      { id: 'FI-DEV/GOV/0245437-2/NoCerts', connectionType: 'HTTPS' },
      { id: 'FI-DEV/GOV/0245437-2/NoAuth', connectionType: 'HTTPS_NO_AUTH' },
      { id: 'FI-DEV/GOV/0245437-2/Plain', connectionType: 'HTTP' },
    ],
  }));
  const check = (client: string, connection: { tls: boolean; clientCert?: Buffer }) => {
    try {
      authenticateInformationSystem(conf, parseClientId(client), connection);
      return 'ok';
    } catch (err) {
      return `${(err as { faultCode: string }).faultCode}: ${(err as Error).message}`;
    }
  };

  it('gives the texts of seed 003 and the security server guide', () => {
    expect(check('FI-DEV/GOV/0245437-2/TestClient', { tls: true })).toBe('Server.ClientProxy.SslAuthenticationFailed: Client (SUBSYSTEM:FI-DEV/GOV/0245437-2/TestClient) specifies HTTPS but did not supply TLS certificate');
    expect(check('FI-DEV/GOV/0245437-2/TestClient', { tls: false })).toMatch(/specifies HTTPS but did not supply TLS certificate$/);
    expect(check('FI-DEV/GOV/0245437-2/TestClient', { tls: true, clientCert: otherCert })).toBe('Server.ClientProxy.SslAuthenticationFailed: Client (SUBSYSTEM:FI-DEV/GOV/0245437-2/TestClient) TLS certificate does not match any IS certificates');
    expect(check('FI-DEV/GOV/0245437-2/TestClient', { tls: true, clientCert: isCert })).toBe('ok');
    expect(check('FI-DEV/GOV/0245437-2/NoCerts', { tls: true, clientCert: isCert })).toBe('Server.ClientProxy.SslAuthenticationFailed: Client (SUBSYSTEM:FI-DEV/GOV/0245437-2/NoCerts) has no IS certificates');
    expect(check('FI-DEV/GOV/0245437-2/NoAuth', { tls: false })).toBe('Server.ClientProxy.SslAuthenticationFailed: Client (SUBSYSTEM:FI-DEV/GOV/0245437-2/NoAuth) specifies HTTPS NO AUTH but client made plaintext connection');
    expect(check('FI-DEV/GOV/0245437-2/NoAuth', { tls: true })).toBe('ok');
    expect(check('FI-DEV/GOV/0245437-2/Plain', { tls: false })).toBe('ok');
    expect(check('FI-DEV/GOV/9999999-9/Stranger', { tls: true, clientCert: isCert })).toBe("Client.UnknownMember: Client 'SUBSYSTEM:FI-DEV/GOV/9999999-9/Stranger' not found");
  });

  it('a REST service path stays under the service URL on the provider side too', () => {
    const service = { code: 'rest-test', type: 'REST' as const, url: 'http://127.0.0.1:8091/rest-test', timeoutSeconds: 1, allowed: [] };
    expect(serviceUrl(service, '/hello?name=x').href).toBe('http://127.0.0.1:8091/rest-test/hello?name=x');
    expect(serviceUrl(service, '').href).toBe('http://127.0.0.1:8091/rest-test');
    for (const path of ['/../admin', '/%2e%2e/admin', '/%2E%2E/%2e%2e/etc', '@evil.example/x']) {
      expect(() => serviceUrl(service, path), path).toThrow(/leaves the service's URL/);
    }
    expect(() => serviceUrl({ ...service, url: 'http://127.0.0.1:8091/rest' }, '-test/x')).toThrow(/leaves/);
  });

  it('serverconf.json (export and import) round-trips, and broken ones are refused naming the field', () => {
    expect(parseServerConf(serializeServerConf(conf))).toEqual(conf);
    expect(() => parseServerConf('{"serverId":"A/B/C/D","clients":[{"id":"A/B/C/D","connectionType":"SSLAUTH"}]}')).toThrow('clients[0].connectionType must be one of HTTP, HTTPS, HTTPS_NO_AUTH');
    expect(() => parseServerConf('{"serverId":"A/B/C/D","clients":[{"id":"A/B/C/D","services":[{"code":"x","url":"not a url"}]}]}')).toThrow('clients[0].services[0].url is not a URL');
    expect(() => parseServerConf('{"serverId":"A/B"}')).toThrow(/serverId/);
  });

  it('access rights name subsystems or global groups; a listed member does not bring its subsystems', () => {
    const shared = new Map([['A', { globalGroups: [{ groupCode: 'owners', description: '', members: [parseClientId('A/B/C'), parseClientId('A/B/X/Y')] }] }]]);
    const provider = clientWithServices({ id: parseClientId('A/B/P/S') }, [{ code: 's', type: 'SOAP', url: 'http://x/', timeoutSeconds: 1, allowed: ['A/B/C/D', 'GLOBALGROUP:A/owners'] }]);
    const allowed = (client: string) => isQueryAllowed(provider, 's', parseClientId(client), undefined, (caller, instance, code) => inGlobalGroup(shared, `${instance}/${code}`, caller));
    expect(allowed('A/B/C/D')).toBe(true); // listed itself
    expect(allowed('A/B/X/Y')).toBe(true); // through the group
    expect(allowed('A/B/C')).toBe(true); // the member, through the group
    expect(allowed('A/B/C/E')).toBe(false); // a subsystem of a listed member is not the member
    expect(allowed('A/B/Z/Y')).toBe(false);
    expect(inGlobalGroup(shared, 'OTHER/owners', parseClientId('A/B/C'))).toBe(false);
  });

  it("the internal TLS certificate is replaced only by a PEM holding the certificate with its own key", () => {
    const pem = readFileSync(join(dir, 'c.pem'), 'utf8') + readFileSync(join(dir, 'k.pem'), 'utf8');
    expect(importInternalTls(join(dir, 'mine'), pem).certPem).toContain('BEGIN CERTIFICATE');
    expect(() => importInternalTls(join(dir, 'mine'), readFileSync(join(dir, 'c.pem'), 'utf8'))).toThrow('the PEM must hold the certificate and its private key');
    expect(() => importInternalTls(join(dir, 'mine'), ensureInternalTls(join(dir, 'other')).certPem + readFileSync(join(dir, 'k.pem'), 'utf8'))).toThrow('the private key does not belong to the certificate');
  });
});
