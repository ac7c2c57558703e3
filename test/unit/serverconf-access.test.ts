/**
 * The server proxy's access decision (src/serverconf/access.ts) against the reference's rules: its
 * PathGlobTest and UriUtilsTest cases, BaseEndpoint.matches, ServerConfImpl.isQueryAllowed's subjects
 * and the order of ServerMessageProcessor.verifyAccess's refusals.
 */
import { describe, expect, it } from 'vitest';
import { parseClientId, type ClientId } from '../../src/protocol/identifiers.ts';
import { endpointMatches, isQueryAllowed, parseAccessSubject, pathGlobMatches, verifyAccess, type GlobalGroupMembership } from '../../src/serverconf/access.ts';
import { normalizeRequestPath, resolveUri } from '../../src/serverconf/java-uri.ts';
import type { AccessRightConf, LocalClient, ServiceDescriptionConf } from '../../src/serverconf/model.ts';

const PROVIDER = parseClientId('DEV/COM/1111/PROVIDER');
const MEMBER = parseClientId('DEV/COM/2222');
const SUBSYSTEM = parseClientId('DEV/COM/2222/NEWSUB');
const OTHER = parseClientId('DEV/COM/3333/OTHER');
const AT = '2026-01-01T00:00:00Z';

function right(subject: string, serviceCode: string, method = '*', path = '**'): AccessRightConf {
  return { subject, serviceCode, method, path, grantedAt: AT };
}

function description(id: number, type: ServiceDescriptionConf['type'], codes: [string, string?][], disabled = false, disabledNotice?: string): ServiceDescriptionConf {
  return { id, type, url: `http://is.example/${id}`, disabled, disabledNotice, refreshedAt: AT, services: codes.map(([code, version]) => ({ code, version, url: 'http://is.example/', timeoutSeconds: 60 })) };
}

function provider(accessRights: AccessRightConf[], extra: Partial<LocalClient> = {}): LocalClient {
  return {
    id: PROVIDER, status: 'REGISTERED', connectionType: 'HTTPS', isCerts: [],
    serviceDescriptions: [description(1, 'WSDL', [['getRandom', 'v1'], ['helloService', 'v1']]), description(2, 'OPENAPI3', [['pets']]), description(3, 'REST', [['quiet']], true)],
    endpoints: [], accessRights, localGroups: [], ...extra,
  };
}

const noGroups: GlobalGroupMembership = () => false;

describe('PathGlob (the reference\'s PathGlobTest cases)', () => {
  const cases: [string, string, boolean][] = [
    ['**', '', true],
    ['***', 'match/anything/*', true],
    ['**', '/a/b/c', true],
    ['/*/', '/a/', true],
    ['/*/', '/a/b/', false],
    ['', '', true],
    ['', ' ', false],
    ['.^$+{[]|()', '.^$+{[]|()', true],
    ['**/bar/**', 'a/b/c/bar/e/f', true],
    ['**/bar/**', 'a/b/c/foo/e/f', false],
    ['**\\*', '/what/ever*', true],
    ['**\\*', '/what/ever!', false],
    ['simple', 'simple', true],
    ['simple', 'prefix.simple.suffix', false],
    ['**/*/**', 'something/bar/something/else', true],
    ['**/*/**', '/bar/', true],
    ['**/*/**', '//', true],
    ['**/*/**', 'something/else', false],
    ['\\A', '\\A', true],
    ['\\*', '*', true],
    ['\\*', '\\*', false],
    ['\\\\', '\\', true],
    ['aa\\', 'aa\\', true],
  ];
  for (const [glob, path, expected] of cases) {
    it(`PathGlobTest: <${glob}> matches <${path}> is ${expected}`, () => expect(pathGlobMatches(glob, path)).toBe(expected));
  }

  it('PathGlob: * is possessive ([^/]*+), so a * followed by anything but / never matches', () => {
    expect(pathGlobMatches('/files/*.json', '/files/a.json')).toBe(false);
    expect(pathGlobMatches('/files/*', '/files/a.json')).toBe(true);
    expect(pathGlobMatches('/files/**.json', '/files/a.json')).toBe(true);
    expect(pathGlobMatches('/pets/*/photos', '/pets/12/photos')).toBe(true);
    expect(pathGlobMatches('/pets/*', '/pets/12/photos')).toBe(false);
  });

  it('PathGlob: an unescaped ? goes into the pattern as the reference\'s does (the character before it is optional)', () => {
    expect(pathGlobMatches('/pets?', '/pet')).toBe(true);
    expect(pathGlobMatches('/pets?', '/pets')).toBe(true);
    expect(pathGlobMatches('?', '?')).toBe(false);
  });

  it('PathGlob: a trailing slash is a character like any other', () => {
    expect(pathGlobMatches('/pets', '/pets/')).toBe(false);
    expect(pathGlobMatches('/pets/', '/pets')).toBe(false);
    expect(pathGlobMatches('/pets/**', '/pets/')).toBe(true);
    expect(pathGlobMatches('/pets/**', '/pets')).toBe(false);
  });
});

describe('UriUtils.decodeAndNormalize (the reference\'s UriUtilsTest cases)', () => {
  it('UriUtilsTest.shouldAcceptSafeChars', () => {
    const safe = "!$&'()*+,;=:@-._~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    expect(normalizeRequestPath(`/${safe}`)).toBe(`/${safe}`);
  });

  it('UriUtilsTest.shouldAcceptEmpty', () => expect(normalizeRequestPath('')).toBe(''));

  it('UriUtilsTest.shouldRejectInvalidChars / shouldRejectInvalidEncoding / shouldRejectIncompleteEncoding', () => {
    for (const bad of ['/not a valid segment', '/%XY', '/Test%', '/ä', '/a"b']) {
      expect(() => normalizeRequestPath(bad)).toThrow(expect.objectContaining({ code: 'InvalidRequest' }));
    }
  });

  it('UriUtilsTest.shouldKeepPathSeparator: %2d is kept encoded by the decoder, and URI.getPath decodes it', () => {
    expect(normalizeRequestPath('/foo/bar/zy%2dggy')).toBe('/foo/bar/zy-ggy');
  });

  it('UriUtilsTest.shouldSuccessfullyNormalizeTraversalPaths', () => {
    const cases: [string, string][] = [
      ['/a/b/c', '/a/b/c'],
      ['/a/b/./c', '/a/b/c'],
      ['/a/b/d/../c', '/a/b/c'],
      ['/a/b/../../c', '/c'],
      ['/a/b/%2e/c', '/a/b/c'],
      ['/a/b/d/%2e%2e/c', '/a/b/c'],
      ['/a/b/%2e%2e/%2e%2e/c', '/c'],
      ['/a/b/../../%2e%2e/c/d', '/../c/d'],
    ];
    for (const [raw, normalized] of cases) expect(normalizeRequestPath(raw), raw).toBe(normalized);
  });

  it('UriUtils.decodeAndNormalize: %2F becomes a separator, repeated slashes collapse, trailing slashes stay, escapes are decoded twice', () => {
    expect(normalizeRequestPath('/pets%2F12')).toBe('/pets/12');
    expect(normalizeRequestPath('/pets//12/')).toBe('/pets/12/');
    expect(normalizeRequestPath('/a/b/..')).toBe('/a/');
    expect(normalizeRequestPath('/a%2541')).toBe('/aA');
    expect(normalizeRequestPath('/caf%C3%A9')).toBe('/café');
    expect(normalizeRequestPath('/a%3Fb')).toBe('/a');
    expect(() => normalizeRequestPath('/a%20b')).toThrow(expect.objectContaining({ code: 'InvalidRequest' }));
  });
});

describe('BaseEndpoint.matches', () => {
  it('BaseEndpoint.matches: * matches any method, others equal ignoring case', () => {
    expect(endpointMatches({ method: '*', path: '/pets' }, 'DELETE', '/pets')).toBe(true);
    expect(endpointMatches({ method: 'GET', path: '/pets' }, 'get', '/pets')).toBe(true);
    expect(endpointMatches({ method: 'GET', path: '/pets' }, 'POST', '/pets')).toBe(false);
  });

  it('BaseEndpoint.matches: ** matches any path, even none (SOAP)', () => {
    expect(endpointMatches({ method: '*', path: '**' }, undefined, undefined)).toBe(true);
    expect(endpointMatches({ method: 'GET', path: '**' }, undefined, undefined)).toBe(false);
    expect(endpointMatches({ method: '*', path: '/pets' }, undefined, undefined)).toBe(false);
    expect(endpointMatches({ method: 'GET', path: '**' }, 'GET', '/any/thing')).toBe(true);
  });
});

describe('ServerConfImpl.isQueryAllowed', () => {
  const allowed = (p: LocalClient, code: string, caller: ClientId | undefined, rest?: { method: string; path: string }, groups: GlobalGroupMembership = noGroups) => isQueryAllowed(p, code, caller, rest, groups);

  it('isQueryAllowed: the subject must be the caller exactly — a member\'s right does not cover its subsystems, nor a subsystem\'s its member', () => {
    expect(allowed(provider([right('DEV/COM/2222/NEWSUB', 'getRandom')]), 'getRandom', SUBSYSTEM)).toBe(true);
    expect(allowed(provider([right('DEV/COM/2222', 'getRandom')]), 'getRandom', SUBSYSTEM)).toBe(false);
    expect(allowed(provider([right('DEV/COM/2222/NEWSUB', 'getRandom')]), 'getRandom', MEMBER)).toBe(false);
    expect(allowed(provider([right('DEV/COM/2222', 'getRandom')]), 'getRandom', MEMBER)).toBe(true);
  });

  it('isQueryAllowed: no caller is never allowed; a right to another service code does not count', () => {
    expect(allowed(provider([right('DEV/COM/2222/NEWSUB', 'getRandom')]), 'getRandom', undefined)).toBe(false);
    expect(allowed(provider([right('DEV/COM/2222/NEWSUB', 'helloService')]), 'getRandom', SUBSYSTEM)).toBe(false);
  });

  it('isQueryAllowed: a global group subject asks the caller\'s global configuration, with the group\'s instance and code', () => {
    const asked: string[] = [];
    const groups: GlobalGroupMembership = (caller, instance, code) => {
      asked.push(`${instance}/${code}`);
      return code === 'security-server-owners' && caller.subsystem === 'NEWSUB';
    };
    const p = provider([right('GLOBALGROUP:DEV/security-server-owners', 'getRandom')]);
    expect(allowed(p, 'getRandom', SUBSYSTEM, undefined, groups)).toBe(true);
    expect(allowed(p, 'getRandom', OTHER, undefined, groups)).toBe(false);
    expect(asked).toEqual(['DEV/security-server-owners', 'DEV/security-server-owners']);
  });

  it('isQueryAllowed: a local group subject is one of the provider\'s own groups, its members exact', () => {
    const p = provider([right('LOCALGROUP:friends', 'getRandom')], { localGroups: [{ code: 'friends', description: 'Friends', updatedAt: AT, members: [{ id: SUBSYSTEM, addedAt: AT }] }] });
    expect(allowed(p, 'getRandom', SUBSYSTEM)).toBe(true);
    expect(allowed(p, 'getRandom', MEMBER)).toBe(false);
    expect(allowed(provider([right('LOCALGROUP:friends', 'getRandom')]), 'getRandom', SUBSYSTEM)).toBe(false);
  });

  it('isQueryAllowed: SOAP checks the rights to the base endpoint only', () => {
    expect(allowed(provider([right('DEV/COM/2222/NEWSUB', 'getRandom', 'GET', '/x')]), 'getRandom', SUBSYSTEM)).toBe(false);
    expect(allowed(provider([right('DEV/COM/2222/NEWSUB', 'getRandom', 'GET', '/x'), right('DEV/COM/2222/NEWSUB', 'getRandom')]), 'getRandom', SUBSYSTEM)).toBe(true);
  });

  it('isQueryAllowed: REST matches method and path glob against the normalised path', () => {
    const p = provider([right('DEV/COM/2222/NEWSUB', 'pets', 'GET', '/pets/*')]);
    expect(allowed(p, 'pets', SUBSYSTEM, { method: 'GET', path: '/pets/12' })).toBe(true);
    expect(allowed(p, 'pets', SUBSYSTEM, { method: 'POST', path: '/pets/12' })).toBe(false);
    expect(allowed(p, 'pets', SUBSYSTEM, { method: 'GET', path: '/pets/12/photos' })).toBe(false);
    expect(allowed(p, 'pets', SUBSYSTEM, { method: 'GET', path: '/other/../pets/12' })).toBe(true);
    expect(allowed(p, 'pets', SUBSYSTEM, { method: 'GET', path: '/pets/%31%32' })).toBe(true);
  });

  it('isQueryAllowed: a path that keeps ".." after normalisation is refused, even inside a segment and even under **', () => {
    const p = provider([right('DEV/COM/2222/NEWSUB', 'pets')]);
    expect(allowed(p, 'pets', SUBSYSTEM, { method: 'GET', path: '/../secret' })).toBe(false);
    expect(allowed(p, 'pets', SUBSYSTEM, { method: 'GET', path: '/a..b' })).toBe(false);
    expect(allowed(p, 'pets', SUBSYSTEM, { method: 'GET', path: '/a.b' })).toBe(true);
  });
});

describe('ServerMessageProcessor.verifyAccess order and faults', () => {
  const soap = { provider: PROVIDER, serviceCode: 'getRandom', serviceVersion: 'v1' };
  const rest = (serviceCode: string) => ({ provider: PROVIDER, serviceCode });
  const GET = { method: 'GET', path: '/' };
  const fault = (result: ReturnType<typeof verifyAccess>) => ('refusal' in result ? { code: result.refusal.code, faultCode: result.refusal.faultCode, message: result.refusal.message } : undefined);

  it('verifyAccess: an unknown service (code or version) is UnknownService before anything else', () => {
    expect(fault(verifyAccess(provider([]), { ...soap, serviceVersion: 'v2' }, SUBSYSTEM, undefined, noGroups))).toEqual({ code: 'UnknownService', faultCode: 'Server.ServerProxy.UnknownService', message: 'Unknown service: SERVICE:DEV/COM/1111/PROVIDER/getRandom/v2' });
    expect(fault(verifyAccess(undefined, soap, SUBSYSTEM, undefined, noGroups))?.code).toBe('UnknownService');
  });

  it('verifyAccess: a REST service called over SOAP and a SOAP service over REST are ServiceType', () => {
    expect(fault(verifyAccess(provider([]), rest('pets'), SUBSYSTEM, undefined, noGroups))?.code).toBe('ServiceType');
    expect(fault(verifyAccess(provider([]), soap, SUBSYSTEM, GET, noGroups))?.code).toBe('ServiceType');
  });

  it('verifyAccess: without a matching right the call is AccessDenied ("Request is not allowed: SERVICE:…", the ServiceId as its toString writes it), before the disabled check', () => {
    expect(fault(verifyAccess(provider([]), rest('quiet'), SUBSYSTEM, GET, noGroups))).toEqual({ code: 'AccessDenied', faultCode: 'Server.ServerProxy.AccessDenied', message: 'Request is not allowed: SERVICE:DEV/COM/1111/PROVIDER/quiet' });
  });

  it('verifyAccess: an allowed call to a disabled description is ServiceDisabled with its notice or the reference\'s default', () => {
    const rights = [right('DEV/COM/2222/NEWSUB', 'quiet')];
    expect(fault(verifyAccess(provider(rights), rest('quiet'), SUBSYSTEM, GET, noGroups))?.message).toBe("Service SERVICE:DEV/COM/1111/PROVIDER/quiet is disabled: Service 'SERVICE:DEV/COM/1111/PROVIDER/quiet' is disabled");
    const withNotice = provider(rights, { serviceDescriptions: [description(3, 'REST', [['quiet']], true, 'Out of order')] });
    expect(fault(verifyAccess(withNotice, rest('quiet'), SUBSYSTEM, GET, noGroups))?.message).toBe('Service SERVICE:DEV/COM/1111/PROVIDER/quiet is disabled: Out of order');
  });

  it('verifyAccess: an allowed call to an enabled service goes on with the service and its description', () => {
    const result = verifyAccess(provider([right('DEV/COM/2222/NEWSUB', 'getRandom')]), soap, SUBSYSTEM, undefined, noGroups);
    expect('service' in result && [result.service.code, result.service.version, result.description.id]).toEqual(['getRandom', 'v1', 1]);
  });
});

describe('access subjects', () => {
  it('reads client ids, GLOBALGROUP:INST/code and LOCALGROUP:code, and refuses malformed ones', () => {
    expect(parseAccessSubject('DEV/COM/2222')).toEqual({ kind: 'client', id: MEMBER });
    expect(parseAccessSubject('GLOBALGROUP:DEV/owners')).toEqual({ kind: 'globalGroup', instance: 'DEV', code: 'owners' });
    expect(parseAccessSubject('LOCALGROUP:friends')).toEqual({ kind: 'localGroup', code: 'friends' });
    for (const bad of ['GLOBALGROUP:owners', 'GLOBALGROUP:DEV/', 'LOCALGROUP:', 'DEV/COM']) {
      expect(() => parseAccessSubject(bad)).toThrow(expect.objectContaining({ code: 'InvalidIdentifier' }));
    }
  });
});

describe('java.net.URI.resolve (OpenApiParser\'s base URL)', () => {
  it('URI.resolve: an absolute URL stays as written; a relative one merges with the description\'s directory; "" gives that directory', () => {
    const base = 'https://IS.example:8443/docs/openapi.yaml?x=1';
    expect(resolveUri(base, 'https://example.org/api')).toBe('https://example.org/api');
    expect(resolveUri(base, '/v1')).toBe('https://IS.example:8443/v1');
    expect(resolveUri(base, 'v1/')).toBe('https://IS.example:8443/docs/v1/');
    expect(resolveUri(base, '../v1')).toBe('https://IS.example:8443/v1');
    expect(resolveUri(base, '')).toBe('https://IS.example:8443/docs/');
    expect(resolveUri(base, '//other.example/v2')).toBe('https://other.example/v2');
  });
});
