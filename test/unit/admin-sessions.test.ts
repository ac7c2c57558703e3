/**
 * Users and login sessions of the admin API (docs/admin-api.md "Users and sessions") over real HTTPS
 * on loopback: login and its cookies, the session-bound CSRF token on changes (the reference's
 * X-XSRF-TOKEN), roles from the route table, lockout after wrong passwords, idle timeout and
 * lifetime on an injected clock, logout, API keys untouched, and the audit row under the user's name.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, type Role } from '../../src/serverconf/api-keys.ts';
import { startAdminApi } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { DEFAULT_SESSION_OPTIONS, Sessions } from '../../src/admin/sessions.ts';
import { UserStore, usersFile, type AuthenticatedUser } from '../../src/admin/users.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import type { LocalClient } from '../../src/serverconf/model.ts';
import { changeServerConfIn, openServerConfStore } from '../../src/serverconf/store.ts';
import { openssl } from '../support/openssl.ts';

const SERVICE_ADMINISTRATOR: Role = 'XROAD_SERVICE_ADMINISTRATOR';
const OBSERVER: Role = 'XROAD_SECURESERVER_OBSERVER';
const PASSWORD = 'correct horse battery';
const OWNER = parseClientId('LOCAL/GOV/1111');
const GROUPS = '/clients/LOCAL:GOV:1111/local-groups';

const dir = mkdtempSync(join(tmpdir(), 'xrd-sessions-'));
const users = new UserStore(join(dir, 'admin', 'users.json'));
const keys = new ApiKeyStore(join(dir, 'admin', 'api-keys.json'));
const serviceKey = keys.create([SERVICE_ADMINISTRATOR], 'automation');
const logLines: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
let clock = 1_000_000;
let api: Awaited<ReturnType<typeof startAdminApi>>;
let admin: ServerAdmin;
let ca: Buffer;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** One HTTPS request; `session` sends its cookie (and its CSRF token unless `csrf` says otherwise). */
function call(method: string, path: string, options: { body?: unknown; session?: Session; csrf?: string | null; key?: string } = {}): Promise<Answer> {
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const csrf = options.csrf === undefined ? options.session?.csrf : options.csrf;
  const headers: Record<string, string | number> = {
    ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
    ...(options.session ? { cookie: `XSRF-TOKEN=${options.session.csrf}; __Host-xrd-session=${options.session.id}` } : {}),
    ...(csrf ? { 'x-xsrf-token': csrf } : {}),
    ...(options.key ? { authorization: `X-Road-ApiKey token=${options.key}` } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = https.request(`${api.url}${path}`, { method, ca, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
    req.end(payload);
  });
}

interface Session {
  id: string;
  csrf: string;
  answer: Answer;
}

async function login(username: string, password = PASSWORD): Promise<Session> {
  const answer = await call('POST', '/login', { body: { username, password } });
  const cookies = answer.headers['set-cookie'] ?? [];
  const value = (name: string) => cookies.find((c) => c.startsWith(`${name}=`))?.split(';')[0]!.slice(name.length + 1) ?? '';
  return { id: value('__Host-xrd-session'), csrf: value('XSRF-TOKEN'), answer };
}

const code = (a: Answer) => [a.status, a.json?.error?.code];

async function lastAudit(action: string) {
  const store = await openServerConfStore(dir);
  try {
    return (await store.auditLog({ action, limit: 1 }))[0];
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  const client = (id: LocalClient['id']): LocalClient => ({ id, status: 'REGISTERED', connectionType: 'HTTPS', isCerts: [], serviceDescriptions: [], endpoints: [], accessRights: [], localGroups: [] });
  await changeServerConfIn(dir, { kind: 'system', name: 'test' }, 'SEED', () => ({ serverId: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', serverCode: 'ss1' }, clients: [client(OWNER)], timestampingServices: [] }));
  await users.add('alice', PASSWORD, [SERVICE_ADMINISTRATOR]);
  await users.add('watcher', PASSWORD, [OBSERVER]);
  await users.add('mallory-target', PASSWORD, [OBSERVER]);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1']);
  ca = readFileSync(join(dir, 'cert.pem'));
  // Nothing here calls the signer or global configuration: the socket is never connected.
  admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  api = await startAdminApi({
    admin,
    keys,
    users,
    logger,
    sessions: { now: () => clock },
    https: { cert: ca.toString(), key: readFileSync(join(dir, 'key.pem'), 'utf8') },
    port: 0,
    rateLimit: { perSecond: 1000, perMinute: 100_000 },
  });
}, 60_000);

afterAll(async () => {
  await api?.close();
  await admin?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the user store', () => {
  it('keeps users in a 0600 file with scrypt hashes and per-user salts, never the password', () => {
    const file = readFileSync(users.file, 'utf8');
    expect(statSync(users.file).mode & 0o777).toBe(0o600);
    expect(file).not.toContain(PASSWORD);
    const stored = JSON.parse(file).users as { salt: string; hash: string; scrypt: { N: number } }[];
    expect(new Set(stored.map((u) => u.salt)).size).toBe(stored.length);
    expect(new Set(stored.map((u) => u.hash)).size).toBe(stored.length);
    expect(stored[0]!.scrypt.N).toBeGreaterThanOrEqual(2 ** 15);
  });

  it('refuses a short password, an unknown role and a name taken, with coded errors', async () => {
    await expect(users.add('bob', 'short', [OBSERVER])).rejects.toMatchObject({ code: 'InvalidUser' });
    await expect(users.add('bob', PASSWORD, ['XROAD_NOBODY' as Role])).rejects.toMatchObject({ code: 'InvalidUser' });
    await expect(users.add('../bob', PASSWORD, [OBSERVER])).rejects.toMatchObject({ code: 'InvalidUser' });
    await expect(users.add('alice', PASSWORD, [OBSERVER])).rejects.toMatchObject({ code: 'UserExists' });
    expect(() => users.delete('nobody')).toThrow(expect.objectContaining({ code: 'UserNotFound' }));
  });
});

describe('xrd admin user', () => {
  const cliDir = join(dir, 'cli');
  const xrd = (args: string[], options: { env?: Record<string, string>; input?: string } = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      const child = execFile(process.execPath, ['scripts/xrd.mjs', 'admin', 'user', ...args, '--data-dir', cliDir], { cwd: resolve(import.meta.dirname, '../..'), timeout: 30_000, env: { ...process.env, ...options.env } }, (err, stdout, stderr) =>
        done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin!.end(options.input ?? '');
    });

  it('adds a user with the password from a file, an environment variable or standard input, never the command line', async () => {
    writeFileSync(join(dir, 'pw'), `${PASSWORD}\n`, { mode: 0o600 });
    expect((await xrd(['add', 'ops', '--roles', 'security_officer,SECURESERVER_OBSERVER', '--password-file', join(dir, 'pw')])).code).toBe(0);
    const cliUsers = new UserStore(usersFile(cliDir));
    expect(await cliUsers.verify('ops', PASSWORD)).toMatchObject({ name: 'ops', roles: ['XROAD_SECURITY_OFFICER', OBSERVER] });
    expect((await xrd(['passwd', 'ops', '--password-env', 'XRD_TEST_PW'], { env: { XRD_TEST_PW: 'from the environment' } })).code).toBe(0);
    expect(await cliUsers.verify('ops', 'from the environment')).toBeDefined();
    expect((await xrd(['passwd', 'ops'], { input: 'from standard input\n' })).code).toBe(0);
    expect(await cliUsers.verify('ops', 'from standard input')).toBeDefined();
    expect(await cliUsers.verify('ops', PASSWORD)).toBeUndefined();
    const listed = await xrd(['list', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: 'ops', roles: ['XROAD_SECURITY_OFFICER', OBSERVER] })]);
    expect(listed.stdout).not.toMatch(/hash|salt/);
    // There is no flag that takes the password itself.
    expect((await xrd(['add', 'eve', '--roles', 'observer', '--password', PASSWORD])).code).not.toBe(0);
    expect((await xrd(['add', 'eve', '--roles', 'nobody'], { input: `${PASSWORD}\n` })).code).toBe(2);
    expect((await xrd(['delete', 'ops'])).code).toBe(0);
    expect(cliUsers.list()).toEqual([]);
  }, 60_000);
});

describe('login', () => {
  it('answers the user, roles and CSRF token and sets the session cookie HttpOnly, Secure, SameSite=Strict, Path=/', async () => {
    const s = await login('alice');
    expect(s.answer.status).toBe(200);
    expect(s.answer.json).toEqual({ username: 'alice', roles: [SERVICE_ADMINISTRATOR], csrf_token: s.csrf });
    // 32 random bytes, base64url.
    expect(s.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [sessionCookie, csrfCookie] = s.answer.headers['set-cookie']!;
    expect(sessionCookie!.split('; ').slice(1).sort()).toEqual(['HttpOnly', 'Path=/', 'SameSite=Strict', 'Secure']);
    // The page reads the CSRF token from its cookie, so that one is not HttpOnly.
    expect(csrfCookie!.split('; ').slice(1).sort()).toEqual(['Path=/', 'SameSite=Strict', 'Secure']);
    const user = await call('GET', '/user', { session: s });
    expect([user.status, user.json]).toEqual([200, { username: 'alice', roles: [SERVICE_ADMINISTRATOR], csrf_token: s.csrf }]);
  });

  it('refuses a wrong password and an unknown name alike with 401 InvalidCredentials, logging the name and address but never the password', async () => {
    const wrong = await login('alice', 'not the password');
    const unknown = await login('nobody', 'not the password');
    expect([wrong.answer.status, wrong.answer.json]).toEqual([401, { status: 401, error: { code: 'InvalidCredentials', message: 'Wrong user name or password' } }]);
    expect(unknown.answer.json).toEqual(wrong.answer.json);
    expect(wrong.answer.headers['set-cookie']).toBeUndefined();
    const failures = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'admin login failed');
    expect(failures).toContainEqual(expect.objectContaining({ user: 'alice', client: '127.0.0.1' }));
    expect(failures).toContainEqual(expect.objectContaining({ user: 'nobody', client: '127.0.0.1' }));
    expect(logLines.join('\n')).not.toContain('not the password');
    expect(logLines.join('\n')).not.toContain(PASSWORD);
    // A success resets the count: the earlier wrong password does not bring alice nearer the lock.
    expect((await login('alice')).answer.status).toBe(200);
  });

  it('locks a user for 15 minutes after 5 wrong passwords, even against the right one; a success resets the count', async () => {
    for (let i = 0; i < 4; i++) expect(code((await login('mallory-target', 'guess')).answer)).toEqual([401, 'InvalidCredentials']);
    expect((await login('mallory-target')).answer.status).toBe(200);
    for (let i = 0; i < 5; i++) expect(code((await login('mallory-target', 'guess')).answer)).toEqual([401, 'InvalidCredentials']);
    const locked = await login('mallory-target');
    expect(code(locked.answer)).toEqual([403, 'AccountLocked']);
    expect(locked.answer.json.error.message).toBe('User mallory-target is locked after 5 wrong passwords; retry after 900 s');
    clock += DEFAULT_SESSION_OPTIONS.lockMs - 1000;
    expect(code((await login('mallory-target')).answer)).toEqual([403, 'AccountLocked']);
    clock += 1000;
    expect((await login('mallory-target')).answer.status).toBe(200);
  }, 60_000);
});

describe('a session', () => {
  it('needs the CSRF token in X-XSRF-TOKEN for a change (403 CsrfTokenInvalid without it or with another), and the change is audited under the user', async () => {
    const s = await login('alice');
    const other = await login('watcher');
    const body = { code: 'callers', description: 'Callers' };
    expect(code(await call('POST', GROUPS, { session: s, csrf: null, body }))).toEqual([403, 'CsrfTokenInvalid']);
    // A token of another session, and the cookie's value replayed as the header by a forged page that cannot read it.
    expect(code(await call('POST', GROUPS, { session: s, csrf: other.csrf, body }))).toEqual([403, 'CsrfTokenInvalid']);
    expect(code(await call('POST', GROUPS, { session: s, csrf: 'x', body }))).toEqual([403, 'CsrfTokenInvalid']);
    const added = await call('POST', GROUPS, { session: s, body });
    expect(added.status, JSON.stringify(added.json)).toBe(201);
    expect(await lastAudit('ADD_LOCAL_GROUP')).toMatchObject({ actor: { kind: 'user', name: 'alice' }, detail: { code: 'callers' } });
    // Reading needs no token.
    expect((await call('GET', GROUPS, { session: s, csrf: null })).status).toBe(200);
  });

  it("has its user's roles from the route table: an observer reads but cannot change", async () => {
    const s = await login('watcher');
    expect((await call('GET', GROUPS, { session: s })).status).toBe(200);
    const refused = await call('POST', GROUPS, { session: s, body: { code: 'nope', description: 'No' } });
    expect(refused.json).toEqual({ status: 403, error: { code: 'PermissionDenied', message: `User watcher may not call POST /api/v1/clients/:id/local-groups; roles allowed: ${SERVICE_ADMINISTRATOR}` } });
  });

  it('ends after 30 idle minutes, lives on while used, and ends at its lifetime however busy', async () => {
    const idle = await login('alice');
    const busy = await login('alice');
    clock += DEFAULT_SESSION_OPTIONS.idleMs - 1000;
    expect((await call('GET', '/user', { session: busy })).status).toBe(200);
    clock += 1000;
    expect(code(await call('GET', '/user', { session: idle }))).toEqual([401, 'SessionExpired']);
    for (let t = 0; t + 20 * 60_000 < DEFAULT_SESSION_OPTIONS.lifetimeMs; t += 20 * 60_000) {
      expect((await call('GET', '/user', { session: busy })).status).toBe(200);
      clock += 20 * 60_000;
    }
    clock += DEFAULT_SESSION_OPTIONS.lifetimeMs;
    expect(code(await call('GET', '/user', { session: busy }))).toEqual([401, 'SessionExpired']);
  });

  it('ends at logout, which clears both cookies', async () => {
    const s = await login('alice');
    expect(code(await call('POST', '/logout', { session: s, csrf: null }))).toEqual([403, 'CsrfTokenInvalid']);
    const out = await call('POST', '/logout', { session: s });
    expect(out.status).toBe(204);
    expect(out.headers['set-cookie']).toEqual(['__Host-xrd-session=; HttpOnly; Max-Age=0; Secure; SameSite=Strict; Path=/', 'XSRF-TOKEN=; Max-Age=0; Secure; SameSite=Strict; Path=/']);
    expect(code(await call('GET', '/user', { session: s }))).toEqual([401, 'SessionExpired']);
  });

  it("ends when the user's password changes or the user is deleted; new roles apply at the next request", async () => {
    await users.add('carol', PASSWORD, [OBSERVER]);
    const s = await login('carol');
    users.setRoles('carol', [SERVICE_ADMINISTRATOR]);
    expect((await call('GET', '/user', { session: s })).json.roles).toEqual([SERVICE_ADMINISTRATOR]);
    await users.setPassword('carol', 'another password');
    expect(code(await call('GET', '/user', { session: s }))).toEqual([401, 'SessionExpired']);
    const again = await login('carol', 'another password');
    users.delete('carol');
    expect(code(await call('GET', '/user', { session: again }))).toEqual([401, 'SessionExpired']);
  });
});

describe('API keys beside sessions', () => {
  it('work as before: no CSRF token, audited under the key, and a key wins over a cookie sent with it', async () => {
    const body = { code: 'by-key', description: 'By key' };
    const s = await login('watcher');
    const added = await call('POST', GROUPS, { key: serviceKey.key, session: s, csrf: null, body });
    expect(added.status, JSON.stringify(added.json)).toBe(201);
    expect(await lastAudit('ADD_LOCAL_GROUP')).toMatchObject({ actor: { kind: 'api-key', name: 'automation' }, detail: { code: 'by-key' } });
    expect(await call('GET', '/user', { key: serviceKey.key }).then((a) => a.json)).toEqual({ username: 'automation', roles: [SERVICE_ADMINISTRATOR] });
  });

  it('without a key or a session a request is refused as before (401 ApiKeyMissing); a forged cookie is 401 SessionExpired', async () => {
    expect(code(await call('GET', GROUPS))).toEqual([401, 'ApiKeyMissing']);
    expect(code(await call('GET', GROUPS, { session: { id: 'forged', csrf: 'forged', answer: undefined as never } }))).toEqual([401, 'SessionExpired']);
  });
});

describe('the lockout bookkeeping (a fake user store: only the counting is under test)', () => {
  it('trying many other names cannot push a locked name out and unlock it early', async () => {
    const target: AuthenticatedUser = { name: 'target', roles: [OBSERVER], credential: 'c' };
    const fake = { verify: async (name: string, password: string) => (name === 'target' && password === PASSWORD ? target : undefined), current: () => target } as unknown as UserStore;
    let now = 0;
    const sessions = new Sessions(fake, silentLogger(), { maxTrackedNames: 3, now: () => now });
    const attempt = (name: string, password = 'guess') => sessions.login(name, password, '127.0.0.1').then(() => 'ok', (err: { code: string }) => err.code);
    for (let i = 0; i < 5; i++) expect(await attempt('target')).toBe('InvalidCredentials');
    for (let i = 0; i < 20; i++) expect(await attempt(`other${i}`)).toBe('InvalidCredentials');
    expect(await attempt('target', PASSWORD)).toBe('AccountLocked');
    now += DEFAULT_SESSION_OPTIONS.lockMs;
    expect(await attempt('target', PASSWORD)).toBe('ok');
  });

  it('guesses sent in parallel count before they are checked: the 6th of a burst is refused as locked', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fake = { verify: async () => gate.then(() => undefined), current: () => undefined } as unknown as UserStore;
    const sessions = new Sessions(fake, silentLogger(), {});
    const burst = Array.from({ length: 7 }, () => sessions.login('target', 'guess', '127.0.0.1').then(() => 'ok', (err: { code: string }) => err.code));
    release();
    expect((await Promise.all(burst)).sort()).toEqual(['AccountLocked', 'AccountLocked', 'InvalidCredentials', 'InvalidCredentials', 'InvalidCredentials', 'InvalidCredentials', 'InvalidCredentials']);
  });
});
