/**
 * Login users from the operating system, as the reference's PamAuthenticationProvider: the password
 * is checked by PAM (service `xroad` by default, the reference's /etc/pam.d/xroad: pam_unix for auth
 * and account), and the user's Unix groups give the roles (`xroad-security-officer` →
 * XROAD_SECURITY_OFFICER, …, plus groups an administrator maps besides, the reference's
 * complementary role mappings). A user in none of those groups is refused, as there.
 *
 * PAM is reached through Debian's `pamtester` (package pamtester), run once per login with the
 * password on its standard input (never in its arguments, where `ps` would show it), rather than an
 * npm binding: the bindings on npm are native add-ons that need libpam's headers and a compiler at
 * install and load into the admin process; pamtester keeps PAM's modules (and any crash or hang of
 * theirs) in a child process with a deadline. Groups are read with `id -Gn`, so they come from NSS
 * (local files, LDAP, SSSD) as getgrouplist gives them to the reference.
 *
 * Roles are those of the login, for the whole session, as in the reference (its authorities are set
 * at login); the local user store (users.ts) is the embedded default for a machine without PAM.
 */
import { spawn } from 'node:child_process';
import { XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { Role } from '../serverconf/api-keys.ts';
import { isUserName, MAX_CREDENTIAL_LENGTH, type AuthenticatedUser, type UserDirectory } from './users.ts';

/** The reference's AdminServiceProperties.getUserRoleMappings. */
export const DEFAULT_ROLE_GROUPS: Readonly<Record<Role, readonly string[]>> = {
  XROAD_SECURITY_OFFICER: ['xroad-security-officer'],
  XROAD_REGISTRATION_OFFICER: ['xroad-registration-officer'],
  XROAD_SERVICE_ADMINISTRATOR: ['xroad-service-administrator'],
  XROAD_SYSTEM_ADMINISTRATOR: ['xroad-system-administrator'],
  XROAD_SECURESERVER_OBSERVER: ['xroad-securityserver-observer'],
};

export interface PamOptions {
  /** The PAM service (a file in /etc/pam.d); the reference's is `xroad`. */
  readonly service?: string;
  /** More groups per role, besides DEFAULT_ROLE_GROUPS (the reference's complementaryUserRoleMappings). */
  readonly extraRoleGroups?: Partial<Record<Role, readonly string[]>>;
  /** How long one PAM conversation may take (pam_unix waits ~2 s after a wrong password). */
  readonly timeoutMs?: number;
  readonly pamtester?: string;
}

const OUTPUT_LIMIT = 64 * 1024;

/** The roles of a user in `groups`, by the role mapping (default and extra groups). */
export function rolesOfGroups(groups: readonly string[], extra: PamOptions['extraRoleGroups'] = {}): Role[] {
  return (Object.keys(DEFAULT_ROLE_GROUPS) as Role[]).filter((role) => [...DEFAULT_ROLE_GROUPS[role], ...(extra[role] ?? [])].some((g) => groups.includes(g)));
}

export class PamUsers implements UserDirectory {
  private readonly service: string;
  private readonly timeoutMs: number;
  /** Who logged in, with the roles of their login: sessions live on them. */
  private readonly loggedIn = new Map<string, AuthenticatedUser>();

  constructor(
    private readonly log: Logger,
    private readonly options: PamOptions = {},
  ) {
    this.service = options.service ?? 'xroad';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(this.service)) throw new XrdError('InvalidConfiguration', { reason: `PAM service "${this.service}" is not a file name in /etc/pam.d` });
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  async verify(name: string, password: string): Promise<AuthenticatedUser | undefined> {
    // The reference refuses over-long credentials before PAM; the name is also a command argument here.
    if (!isUserName(name) || password.length > MAX_CREDENTIAL_LENGTH || password.includes('\n')) return undefined;
    const pam = await run(this.options.pamtester ?? 'pamtester', [this.service, name, 'authenticate', 'acct_mgmt'], `${password}\n`, this.timeoutMs);
    if (pam.code !== 0) {
      this.log.info({ user: name, service: this.service, exit: pam.code, timedOut: pam.timedOut }, 'PAM refused the login');
      return undefined;
    }
    const ids = await run('id', ['-Gn', '--', name], '', 5_000);
    const groups = ids.code === 0 ? ids.stdout.trim().split(/\s+/) : [];
    const roles = rolesOfGroups(groups, this.options.extraRoleGroups);
    if (roles.length === 0) {
      this.log.warn({ user: name, groups }, "PAM login refused: the user is in none of the groups mapped to X-Road roles");
      return undefined;
    }
    const user: AuthenticatedUser = { name, roles, credential: 'pam' };
    this.loggedIn.set(name, user);
    return user;
  }

  current(name: string): AuthenticatedUser | undefined {
    return this.loggedIn.get(name);
  }
}

/** A child process with `input` on its stdin, bounded in time and output; spawn failures are code -1. */
function run(command: string, args: readonly string[], input: string, timeoutMs: number): Promise<{ code: number; stdout: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
    let stdout = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < OUTPUT_LIMIT) stdout += chunk.toString('utf8');
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    child.on('error', () => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, timedOut });
    });
  });
}
