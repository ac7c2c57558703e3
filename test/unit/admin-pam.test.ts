/**
 * Login with the operating system's users through PAM (src/admin/pam-users.ts, `xrd admin start
 * --auth pam`), as the reference's PamAuthenticationProvider: real users and groups made for the
 * test (useradd, groupadd, chpasswd: the test runs as root, as CI does), a PAM service file of the
 * reference's xroad.pam shape (pam_unix), Debian's pamtester (scripts/bootstrap.sh installs it), and
 * the admin API's own login route. Roles come from the user's groups; a user in none is refused.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/serverconf/api-keys.ts';
import { buildAdminApi } from '../../src/admin/api-server.ts';
import { PamUsers, rolesOfGroups } from '../../src/admin/pam-users.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { silentLogger } from '../../src/platform/logger.ts';

const tag = `xrdt${process.pid}`;
const SERVICE = `xrd-test-${process.pid}`;
const PAM_FILE = `/etc/pam.d/${SERVICE}`;
const OFFICER_GROUP = `${tag}so`;
const OBSERVER_GROUP = `${tag}ob`;
const PASSWORD = 'Pam-test-password-1';
const users = { officer: `${tag}a`, observer: `${tag}b`, nobody: `${tag}c` };
const isRoot = process.getuid?.() === 0;

const dir = mkdtempSync(join(tmpdir(), 'xrd-pam-'));
let app: FastifyInstance;
const sh = (command: string, args: string[], input?: string) => execFileSync(command, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

beforeAll(async () => {
  if (!isRoot) return;
  writeFileSync(PAM_FILE, '#%PAM-1.0\nauth required pam_unix.so\naccount required pam_unix.so\npassword required pam_deny.so\nsession required pam_deny.so\n');
  sh('groupadd', [OFFICER_GROUP]);
  sh('groupadd', [OBSERVER_GROUP]);
  sh('useradd', ['-M', '-N', '-s', '/usr/sbin/nologin', '-G', `${OFFICER_GROUP},${OBSERVER_GROUP}`, users.officer]);
  sh('useradd', ['-M', '-N', '-s', '/usr/sbin/nologin', '-G', OBSERVER_GROUP, users.observer]);
  sh('useradd', ['-M', '-N', '-s', '/usr/sbin/nologin', users.nobody]);
  sh('chpasswd', [], Object.values(users).map((u) => `${u}:${PASSWORD}`).join('\n'));
  const admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  app = await buildAdminApi({
    admin,
    keys: new ApiKeyStore(join(dir, 'admin', 'api-keys.json')),
    // The test's own groups stand for the reference's xroad-* groups, as its complementary mappings allow.
    users: new PamUsers(silentLogger(), { service: SERVICE, extraRoleGroups: { XROAD_SECURITY_OFFICER: [OFFICER_GROUP], XROAD_SECURESERVER_OBSERVER: [OBSERVER_GROUP] } }),
    logger: silentLogger(),
  });
}, 30_000);

afterAll(async () => {
  await app?.close();
  if (isRoot) {
    for (const user of Object.values(users)) {
      try {
        sh('userdel', [user]);
      } catch {
        // not made (setup failed before it)
      }
    }
    for (const group of [OFFICER_GROUP, OBSERVER_GROUP]) {
      try {
        sh('groupdel', [group]);
      } catch {
        // not made
      }
    }
    rmSync(PAM_FILE, { force: true });
  }
  rmSync(dir, { recursive: true, force: true });
});

const login = (username: string, password: string) => app.inject({ method: 'POST', url: '/api/v1/login', payload: { username, password } });

describe('roles from Unix groups (the reference AdminServiceProperties.getUserRoleMappings)', () => {
  it('maps each xroad-* group to its role, adds complementary groups, and gives none for other groups', () => {
    expect(rolesOfGroups(['users', 'xroad-security-officer', 'xroad-securityserver-observer'])).toEqual(['XROAD_SECURITY_OFFICER', 'XROAD_SECURESERVER_OBSERVER']);
    expect(rolesOfGroups(['xroad-registration-officer', 'xroad-service-administrator', 'xroad-system-administrator'])).toEqual(['XROAD_REGISTRATION_OFFICER', 'XROAD_SERVICE_ADMINISTRATOR', 'XROAD_SYSTEM_ADMINISTRATOR']);
    expect(rolesOfGroups(['wheel'], { XROAD_SYSTEM_ADMINISTRATOR: ['wheel'] })).toEqual(['XROAD_SYSTEM_ADMINISTRATOR']);
    expect(rolesOfGroups(['users', 'sudo'])).toEqual([]);
  });
});

describe.runIf(isRoot)('PAM login through the admin API (the reference PamAuthenticationProvider)', () => {
  it("logs a system user in with their password, with the roles of their groups, and the session works", async () => {
    const answer = await login(users.officer, PASSWORD);
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.json()).toMatchObject({ username: users.officer, roles: ['XROAD_SECURITY_OFFICER', 'XROAD_SECURESERVER_OBSERVER'] });
    const cookie = String(answer.headers['set-cookie']).match(/__Host-xrd-session=[^;]+/)![0];
    const me = await app.inject({ method: 'GET', url: '/api/v1/user', headers: { cookie } });
    expect(me.json()).toMatchObject({ username: users.officer, roles: ['XROAD_SECURITY_OFFICER', 'XROAD_SECURESERVER_OBSERVER'] });
  });

  it('refuses a wrong password, an unknown user and a user in no mapped group with InvalidCredentials', async () => {
    for (const [user, password] of [[users.officer, 'Wrong-password-1'], [`${tag}zz`, PASSWORD], [users.nobody, PASSWORD]] as const) {
      const answer = await login(user, password);
      expect(answer.statusCode).toBe(401);
      expect(answer.json().error.code).toBe('InvalidCredentials');
    }
  }, 30_000);

  it("an observer's session may look but not change: POST /clients is 403", async () => {
    const answer = await login(users.observer, PASSWORD);
    expect(answer.json().roles).toEqual(['XROAD_SECURESERVER_OBSERVER']);
    const cookie = String(answer.headers['set-cookie']).match(/__Host-xrd-session=[^;]+/)![0];
    const csrf = answer.json().csrf_token as string;
    const change = await app.inject({ method: 'POST', url: '/api/v1/clients', headers: { cookie: `${cookie}; XSRF-TOKEN=${csrf}`, 'x-xsrf-token': csrf }, payload: { client: { member_class: 'GOV', member_code: '1' } } });
    expect(change.statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/api/v1/user', headers: { cookie } })).statusCode).toBe(200);
  });
});
