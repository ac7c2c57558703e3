/**
 * The admin API's security layer on a small fastify app built here: every refusal a caller can meet,
 * in the one error shape, and one real HTTPS call by curl with the reference's header form.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY_SCHEME, ApiKeyStore, type Role } from '../../src/serverconf/api-keys.ts';
import { DEFAULT_RATE_LIMIT, RateLimiter, addressFilter, registerApiSecurity, type ApiSecurityOptions } from '../../src/admin/api-security.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { openssl } from '../support/openssl.ts';

const OFFICER: Role = 'XROAD_SECURITY_OFFICER';
const OBSERVER: Role = 'XROAD_SECURESERVER_OBSERVER';
const BODY_LIMIT = 1024;

const dir = mkdtempSync(join(tmpdir(), 'xrd-api-security-'));
const store = new ApiKeyStore(join(dir, 'admin', 'api-keys.json'));
const officer = store.create([OFFICER], 'officer');
const observer = store.create([OBSERVER], 'observer');
const everything = store.create(['XROAD_SECURITY_OFFICER', 'XROAD_REGISTRATION_OFFICER', 'XROAD_SERVICE_ADMINISTRATOR', 'XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SECURESERVER_OBSERVER']);
const auth = (key: string) => ({ authorization: `X-Road-ApiKey token=${key}` });

const logLines: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });

async function buildApp(options: Partial<ApiSecurityOptions> = {}, https?: { key: Buffer; cert: Buffer }): Promise<FastifyInstance> {
  // One instance type for both: the routes below do not depend on the server underneath.
  const app = (https ? Fastify({ bodyLimit: BODY_LIMIT, https }) : Fastify({ bodyLimit: BODY_LIMIT })) as unknown as FastifyInstance;
  registerApiSecurity(app, { keys: store, logger, rateLimit: { perSecond: 1000, perMinute: 100_000 }, ...options });
  app.get('/api/v1/tokens', { config: { roles: [OFFICER, OBSERVER] }, schema: { querystring: { type: 'object', properties: { limit: { type: 'integer' } } } } }, async (request) => ({ tokens: [], caller: request.apiKey?.id }));
  app.post(
    '/api/v1/tokens/:id/keys',
    {
      config: { roles: [OFFICER] },
      schema: { body: { type: 'object', required: ['label'], additionalProperties: false, properties: { label: { type: 'string', maxLength: 100 } } } },
    },
    async (request, reply) => reply.code(201).send({ label: (request.body as { label: string }).label }),
  );
  app.get('/api/v1/unguarded', async () => ({ leaked: true }));
  app.get('/api/v1/openapi.json', { config: { public: true } }, async () => ({ openapi: '3.0.3' }));
  app.get('/api/v1/keys/:id', { config: { roles: [OBSERVER] } }, async (request) => {
    throw new XrdError('KeyNotFound', { keyId: (request.params as { id: string }).id });
  });
  app.get('/api/v1/boom', { config: { roles: [OBSERVER] } }, async () => {
    throw new Error('connect ECONNREFUSED /var/lib/xrd/signer.sock');
  });
  app.put('/api/v1/certificate', { config: { roles: [OFFICER] } }, async (_request, reply) => reply.code(415).send());
  await app.ready();
  return app;
}

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp();
});
afterAll(async () => {
  await app.close();
});

describe('authentication', () => {
  it('refuses a request without a key with 401 ApiKeyMissing and a challenge', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/tokens' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe(API_KEY_SCHEME);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ status: 401, error: { code: 'ApiKeyMissing', message: 'An API key is required: Authorization: X-Road-ApiKey token=KEY' } });
  });

  it('treats another scheme as no key and a malformed X-Road-ApiKey header as an invalid key', async () => {
    const bearer = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { authorization: `Bearer ${officer.key}` } });
    expect([bearer.statusCode, bearer.json().error.code]).toEqual([401, 'ApiKeyMissing']);
    for (const authorization of [`X-Road-ApiKey ${officer.key}`, 'X-Road-ApiKey token=', `X-Road-ApiKey token=${officer.key} extra`]) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { authorization } });
      expect([res.statusCode, res.json().error.code], authorization).toEqual([401, 'ApiKeyInvalid']);
      expect(res.headers['www-authenticate']).toBe(API_KEY_SCHEME);
    }
  });

  it('refuses an unknown key with 401 ApiKeyInvalid', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth('A'.repeat(43)) });
    expect(res.json()).toEqual({ status: 401, error: { code: 'ApiKeyInvalid', message: 'The API key is malformed, unknown or revoked' } });
  });

  it('accepts a key, the scheme in any case, and tells the route who called', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { authorization: `x-road-apikey TOKEN=${observer.key}` } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ tokens: [], caller: observer.id });
  });

  it('refuses a key once it is revoked', async () => {
    const temp = store.create([OBSERVER]);
    expect((await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(temp.key) })).statusCode).toBe(200);
    store.revoke(temp.id);
    const res = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(temp.key) });
    expect([res.statusCode, res.json().error.code]).toEqual([401, 'ApiKeyInvalid']);
  });

  it('serves a public route without a key', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    expect([res.statusCode, res.json()]).toEqual([200, { openapi: '3.0.3' }]);
  });
});

describe('authorisation', () => {
  it('refuses a key without one of the route’s roles with 403 PermissionDenied', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/tokens/0/keys', headers: auth(observer.key), payload: { label: 'sign' } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({
      status: 403,
      error: { code: 'PermissionDenied', message: `API key ${observer.id} may not call POST /api/v1/tokens/:id/keys; roles allowed: XROAD_SECURITY_OFFICER` },
    });
  });

  it('lets a key with the role through', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/tokens/0/keys', headers: auth(officer.key), payload: { label: 'sign' } });
    expect([res.statusCode, res.json()]).toEqual([201, { label: 'sign' }]);
  });

  it('refuses a route that declares no roles to every key (fail closed)', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/unguarded', headers: auth(everything.key) });
    expect([res.statusCode, res.json().error.code]).toEqual([403, 'PermissionDenied']);
    expect(res.json().error.message).toContain('roles allowed: none');
  });

  it('refuses to register a route naming a role that does not exist', async () => {
    const bad = Fastify();
    registerApiSecurity(bad, { keys: store, logger });
    expect(() => bad.get('/x', { config: { roles: ['XROAD_SECURITY_OFFICR' as Role] } }, async () => 'x')).toThrow(/unknown roles XROAD_SECURITY_OFFICR/);
    await bad.close();
  });
});

describe('client addresses', () => {
  it('refuses a caller outside loopback with 403 AddressNotAllowed, even with a valid key', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(officer.key), remoteAddress: '192.0.2.10' });
    expect(res.json()).toEqual({ status: 403, error: { code: 'AddressNotAllowed', message: 'Requests from 192.0.2.10 are not allowed' } });
    const publicRoute = await app.inject({ method: 'GET', url: '/api/v1/openapi.json', remoteAddress: '2001:db8::1' });
    expect(publicRoute.statusCode).toBe(403);
  });

  it('allows loopback in its IPv4, IPv6 and IPv4-mapped forms', async () => {
    for (const remoteAddress of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(officer.key), remoteAddress });
      expect(res.statusCode, remoteAddress).toBe(200);
    }
  });

  it('takes the allow-list from the options, and refuses entries that are not addresses or ranges', async () => {
    const allowed = addressFilter(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7']);
    expect([allowed('10.1.2.3'), allowed('::ffff:10.1.2.3'), allowed('2001:db8::5'), allowed('192.0.2.7'), allowed('192.0.2.8'), allowed('127.0.0.1'), allowed(undefined)]).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(() => addressFilter(['10.0.0.0/33'])).toThrow(XrdError);
    expect(() => addressFilter(['localhost'])).toThrow(XrdError);
    const lan = await buildApp({ allowedAddresses: ['192.0.2.0/24'] });
    expect((await lan.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(officer.key), remoteAddress: '192.0.2.10' })).statusCode).toBe(200);
    expect((await lan.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(officer.key) })).statusCode).toBe(403);
    await lan.close();
  });
});

describe('limits', () => {
  it('refuses a body over the limit with 413 RequestTooLarge, and unauthenticated ones before reading them', async () => {
    const payload = JSON.stringify({ label: 'x'.repeat(BODY_LIMIT) });
    const res = await app.inject({ method: 'POST', url: '/api/v1/tokens/0/keys', headers: { ...auth(officer.key), 'content-type': 'application/json' }, payload });
    expect(res.json()).toEqual({ status: 413, error: { code: 'RequestTooLarge', message: `Request body exceeds the limit of ${BODY_LIMIT} bytes` } });
    const anonymous = await app.inject({ method: 'POST', url: '/api/v1/tokens/0/keys', headers: { 'content-type': 'application/json' }, payload });
    expect(anonymous.statusCode).toBe(401);
  });

  it('answers 429 with Retry-After past the per-second and per-minute rates, and lets the client in again after the wait', async () => {
    let now = 0;
    const limited = await buildApp({ rateLimit: { perSecond: 3, perMinute: 5, now: () => now } });
    const call = (remoteAddress = '127.0.0.1') => limited.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(officer.key), remoteAddress });
    for (let i = 0; i < 3; i++) expect((await call()).statusCode).toBe(200);
    const burst = await call();
    expect(burst.statusCode).toBe(429);
    expect(burst.headers['retry-after']).toBe('1');
    expect(burst.json()).toEqual({ status: 429, error: { code: 'RateLimited', message: 'Too many requests from 127.0.0.1; retry after 1 s' } });
    // Per client address: another loopback address is not held back.
    expect((await call('127.0.0.2')).statusCode).toBe(200);

    now += 1000;
    expect((await call()).statusCode).toBe(200);
    expect((await call()).statusCode).toBe(200);
    // Five in the minute: the per-minute bucket (one back every 12 s) is what holds now.
    const minute = await call();
    expect(minute.statusCode).toBe(429);
    expect(Number(minute.headers['retry-after'])).toBeGreaterThan(1);
    now += Number(minute.headers['retry-after']) * 1000;
    expect((await call()).statusCode).toBe(200);
    await limited.close();
  });

  it("10 loopback addresses share the admin API's global budget: the defaults let 100 a second through, not 10 × 20", async () => {
    let now = 0;
    const limited = await buildApp({ rateLimit: { ...DEFAULT_RATE_LIMIT, now: () => now } });
    const call = (remoteAddress: string) => limited.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(officer.key), remoteAddress });
    const addresses = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 1}`);
    const statuses: number[] = [];
    for (let round = 0; round < DEFAULT_RATE_LIMIT.perSecond; round++) for (const a of addresses) statuses.push((await call(a)).statusCode);
    expect(statuses.filter((s) => s === 200)).toHaveLength(DEFAULT_RATE_LIMIT.global!.perSecond);
    const refused = await call('127.0.0.11');
    expect([refused.statusCode, refused.headers['retry-after']]).toEqual([429, '1']);
    expect(refused.json()).toEqual({ status: 429, error: { code: 'RateLimitedOverall', message: 'Too many requests from all clients together; retry after 1 s' } });

    // A second later the budget is back, and an address refused for the global budget lost nothing of its own.
    now += 1000;
    expect((await call('127.0.0.11')).statusCode).toBe(200);
    await limited.close();
  });

  it('a request the global budget refuses takes nothing from its address, and one its address refuses nothing from the global budget', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 2, perMinute: 600, global: { perSecond: 3, perMinute: 600 } }, () => now);
    // a's third request, refused by a's own budget, leaves the global one for b.
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([{ allowed: true }, { allowed: true }, { allowed: false, retryAfterSeconds: 1 }]);
    expect([limiter.take('b'), limiter.take('c')]).toEqual([{ allowed: true }, { allowed: false, retryAfterSeconds: 1, overall: true }]);
    now += 400;
    // 1.2 tokens back in the global bucket: enough for one request, which c, refused before, may make.
    expect([limiter.take('c'), limiter.take('b')]).toEqual([{ allowed: true }, { allowed: false, retryAfterSeconds: 1, overall: true }]);
    expect(() => new RateLimiter({ perSecond: 2, perMinute: 600, global: { perSecond: 0, perMinute: 600 } })).toThrowError(expect.objectContaining({ code: 'InvalidConfiguration' }));
  });

  it('limits unauthenticated callers too (the counting comes before the key check)', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 2, perMinute: 600 }, () => now);
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([{ allowed: true }, { allowed: true }, { allowed: false, retryAfterSeconds: 1 }]);
    now += 500;
    expect(limiter.take('a')).toEqual({ allowed: true });
  });
});

describe('request bodies and routes', () => {
  it('refuses malformed JSON with 400 InvalidRequestBody', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/tokens/0/keys', headers: { ...auth(officer.key), 'content-type': 'application/json' }, payload: '{"label": ' });
    expect(res.statusCode).toBe(400);
    expect(res.json().status).toBe(400);
    expect(res.json().error.code).toBe('InvalidRequestBody');
  });

  it('refuses a body that fails the route’s schema with 400 InvalidRequestBody and the violations as metadata', async () => {
    const missing = await app.inject({ method: 'POST', url: '/api/v1/tokens/0/keys', headers: auth(officer.key), payload: { name: 'sign' } });
    expect(missing.json()).toEqual({
      status: 400,
      error: { code: 'InvalidRequestBody', message: "Request body is not valid: body must have required property 'label'", metadata: ["body must have required property 'label'"] },
    });
    const tooLong = await app.inject({ method: 'POST', url: '/api/v1/tokens/0/keys', headers: auth(officer.key), payload: { label: 'x'.repeat(101) } });
    expect([tooLong.statusCode, tooLong.json().error.metadata]).toEqual([400, ['body/label must NOT have more than 100 characters']]);
  });

  it('refuses query parameters that fail their schema with 400 InvalidRequest', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/tokens?limit=many', headers: auth(officer.key) });
    expect(res.json()).toEqual({ status: 400, error: { code: 'InvalidRequest', message: 'querystring/limit must be integer', metadata: ['querystring/limit must be integer'] } });
  });

  it('refuses an unsupported content type with 415 UnsupportedMediaType, also when a route answers 415 without a body', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/tokens/0/keys', headers: { ...auth(officer.key), 'content-type': 'application/x-whatever' }, payload: 'x' });
    expect(res.json()).toEqual({ status: 415, error: { code: 'UnsupportedMediaType', message: 'Unsupported content type application/x-whatever' } });
    const empty = await app.inject({ method: 'PUT', url: '/api/v1/certificate', headers: { ...auth(officer.key), 'content-type': 'text/plain' }, payload: 'pem' });
    expect(empty.json()).toEqual({ status: 415, error: { code: 'UnsupportedMediaType', message: 'Unsupported content type text/plain' } });
  });

  it('answers an unknown route 401 without a key and 404 RouteNotFound with one', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/nothing-here' })).statusCode).toBe(401);
    const res = await app.inject({ method: 'GET', url: '/api/v1/nothing-here?x=1', headers: auth(observer.key) });
    expect(res.json()).toEqual({ status: 404, error: { code: 'RouteNotFound', message: 'No route GET /api/v1/nothing-here' } });
  });

  it('answers an XrdError from a route with its registry status, code and message', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/keys/abc', headers: auth(observer.key) });
    expect(res.json()).toEqual({ status: 404, error: { code: 'KeyNotFound', message: 'Key abc not found' } });
  });

  it('answers any other error 500 InternalError with an error id and nothing of the error itself', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/boom', headers: auth(observer.key) });
    expect(res.statusCode).toBe(500);
    const body = res.json();
    expect(body.error.code).toBe('InternalError');
    expect(body.error.message).toMatch(/^Internal error: error id [0-9a-f-]{36}$/);
    expect(res.body).not.toContain('ECONNREFUSED');
    const errorId = body.error.message.split(' ').pop();
    expect(logLines.some((l) => l.includes(errorId) && l.includes('ECONNREFUSED'))).toBe(true);
  });
});

describe('request log', () => {
  it('logs key id, route and status of each request, never the key', async () => {
    logLines.length = 0;
    await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(officer.key) });
    await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: auth(`${officer.key}x`) });
    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === 'admin API request');
    expect(entries.map((e) => [e.keyId, e.method, e.route, e.status, e.code])).toEqual([
      [officer.id, 'GET', '/api/v1/tokens', 200, undefined],
      [undefined, 'GET', '/api/v1/tokens', 401, 'ApiKeyInvalid'],
    ]);
    expect(logLines.join('\n')).not.toContain(officer.key);
  });
});

describe('over HTTPS', () => {
  it('authenticates curl’s Authorization: X-Road-ApiKey token=… on a real TLS listener', async () => {
    const tls = mkdtempSync(join(tmpdir(), 'xrd-api-tls-'));
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tls, 'key.pem'), '-out', join(tls, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const https = await buildApp({}, { key: readFileSync(join(tls, 'key.pem')), cert: readFileSync(join(tls, 'cert.pem')) });
    await https.listen({ host: '127.0.0.1', port: 0 });
    const { port } = https.server.address() as { port: number };
    const curl = async (...headers: string[]) => {
      const args = ['-sS', '--max-time', '10', '--cacert', join(tls, 'cert.pem'), ...headers.flatMap((h) => ['-H', h]), '-w', '\n%{http_code}', `https://127.0.0.1:${port}/api/v1/tokens`];
      const { stdout } = await promisify(execFile)('curl', args);
      const [body, status] = [stdout.slice(0, stdout.lastIndexOf('\n')), stdout.slice(stdout.lastIndexOf('\n') + 1)];
      return { status: Number(status), body: JSON.parse(body) as unknown };
    };
    try {
      expect(await curl(`Authorization: X-Road-ApiKey token=${officer.key}`)).toEqual({ status: 200, body: { tokens: [], caller: officer.id } });
      expect(await curl()).toEqual({ status: 401, body: { status: 401, error: { code: 'ApiKeyMissing', message: 'An API key is required: Authorization: X-Road-ApiKey token=KEY' } } });
    } finally {
      await https.close();
    }
  });
});
