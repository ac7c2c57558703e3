/**
 * `xrd admin …`: the security server's administration from the command line. `api-key` manages the
 * admin REST API's keys in `<data dir>/admin/api-keys.json` and `user` its login users in
 * `<data dir>/admin/users.json`, files a running API re-reads, so a key or user created or removed
 * here takes effect there at once. Passwords come from a file, an environment variable or a prompt
 * (secrets.ts), never from the command line.
 */
import { ApiKeyStore, apiKeysFile, isRole, ROLES, type ApiKeyView, type Role } from '../serverconf/api-keys.ts';
import { join } from 'node:path';
import { openApiDocument, startAdminApi } from '../admin/api-server.ts';
import { DEFAULT_ALLOWED_ADDRESSES } from '../admin/api-security.ts';
import { ServerAdmin } from '../admin/server-admin.ts';
import { DEFAULT_SESSION_OPTIONS, type SessionOptions } from '../admin/sessions.ts';
import { PamUsers } from '../admin/pam-users.ts';
import { UserStore, usersFile, type UserDirectory, type UserView } from '../admin/users.ts';
import { globalConfReader } from '../globalconf/global-conf.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { ensureInternalTls } from '../serverconf/internal-tls.ts';
import { SERVER_LIMITS_USAGE, serverLimitsOf, type CliValues } from './proxy-commands.ts';
import { readSecret } from './secrets.ts';
import { databaseUrl } from './options.ts';
import { UsageError } from './usage-error.ts';

export interface AdminContext {
  /** The proxy's data directory (--data-dir, $XRD_DATA_DIR or ./var). */
  readonly dataDir: string;
  /** The signer's socket and the global configuration directory, for `admin start`. */
  readonly socketPath?: string;
  readonly globalConfDir?: string;
  readonly devicesIni?: string;
}

/** How often client states are compared with global configuration (the reference checks every minute). */
const CLIENT_STATUS_SYNC_MS = 5_000;

export const ADMIN_USAGE = `  xrd admin start [--data-dir D] [--socket P] [--conf DIR] [--admin-host 127.0.0.1] [--admin-port 4000] [--admin-allow CIDR,…]
                  [--signer-dir D] [--devices F]   (the signer's data, for POST /backups)
                  [--client-proxy-url http://127.0.0.1:8080]   (this server's client proxy: management requests go through it)
                  [--auth local|pam] [--pam-service xroad] [--pam-role-groups ROLE=group+group,…]
                    (who logs in: the users of \`xrd admin user\` (default), or the system's through PAM with roles from
                    their groups xroad-security-officer, …, as the reference; pam needs Debian's pamtester)
                  [--anchor F]   (the configuration anchor the signer downloads from: /system/anchor shows and replaces it)
                  [--session-idle-minutes ${DEFAULT_SESSION_OPTIONS.idleMs / 60_000}] [--session-lifetime-minutes ${DEFAULT_SESSION_OPTIONS.lifetimeMs / 60_000}] [--login-lock-minutes ${DEFAULT_SESSION_OPTIONS.lockMs / 60_000}]
                  ${SERVER_LIMITS_USAGE}
                    the admin REST API (/api/v1, HTTPS with a self-signed certificate in <data-dir>/admin/)
                    and the web interface at / (npm run build:ui builds it; docs/admin-ui.md)
  xrd admin openapi                 print the API's OpenAPI document (docs/openapi.json)
  xrd admin api-key create --roles R1,R2 [--name N] | list | revoke <id>
                    admin REST API keys in <data-dir>/admin/api-keys.json; a new key is printed once, stored as a hash;
                    roles (XROAD_ prefix optional): ${ROLES.map((r) => r.replace(/^XROAD_/, '')).join(', ')}
  xrd admin user add NAME --roles R1,R2 | passwd NAME | roles NAME --roles R1,R2 | delete NAME | list
                  [--password-file F | --password-env VAR]   (else asked on the terminal or read from stdin)
                    users who log in to the admin API in <data-dir>/admin/users.json (scrypt hashes)`;


/** `positionals` are the words after `admin`: `api-key create`, … */
export async function adminCommand(positionals: string[], values: CliValues, context: AdminContext): Promise<number> {
  const [command, ...rest] = positionals;
  try {
    switch (command) {
      case 'api-key':
        return apiKeyCommand(rest, values, context);
      case 'user':
        return await userCommand(rest, values, context);
      case 'start':
        return await adminStart(values, context);
      case 'openapi':
        process.stdout.write(`${JSON.stringify(openApiDocument(), null, 2)}\n`);
        return 0;
      default:
        throw new UsageError(`unknown command "admin ${command ?? ''}"`.trimEnd());
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${ADMIN_USAGE}\n`);
    return 2;
  }
}

/** Runs the admin REST API until a signal stops it. */
async function adminStart(values: CliValues, context: AdminContext): Promise<number> {
  const logger = createLogger('admin');
  const signerDataDir = typeof values['signer-dir'] === 'string' ? values['signer-dir'] : undefined;
  const clientProxyUrl = typeof values['client-proxy-url'] === 'string' ? values['client-proxy-url'] : undefined;
  const anchorFile = typeof values.anchor === 'string' ? values.anchor : undefined;
  const admin = new ServerAdmin({ proxyDataDir: context.dataDir, databaseUrl: databaseUrl(), signerSocket: context.socketPath!, globalConf: globalConfReader(context.globalConfDir!, { recheckMs: 1000 }), logger, signerDataDir, devicesIni: context.devicesIni, clientProxyUrl, anchorFile, globalConfDir: context.globalConfDir });
  // Its own self-signed certificate: the API's TLS key is not an X-Road key, as the reference's UI certificate.
  const host = typeof values['admin-host'] === 'string' ? values['admin-host'] : '127.0.0.1';
  const tls = ensureInternalTls(join(context.dataDir, 'admin'), undefined, { name: 'api', ip: host });
  const allowed = typeof values['admin-allow'] === 'string' ? values['admin-allow'].split(',').map((a) => a.trim()).filter(Boolean) : undefined;
  const api = await startAdminApi({
    admin,
    keys: new ApiKeyStore(apiKeysFile(context.dataDir)),
    users: userDirectoryOf(values, context, logger),
    logger,
    https: { cert: tls.certPem, key: tls.keyPem },
    host,
    port: typeof values['admin-port'] === 'string' ? Number(values['admin-port']) : 4000,
    allowedAddresses: allowed && [...DEFAULT_ALLOWED_ADDRESSES, ...allowed],
    limits: serverLimitsOf(values),
    sessions: sessionOptionsOf(values),
  });
  // Client states and the owner follow global configuration (the reference's GlobalConfChecker, here every few seconds).
  // One at a time: a sync that waits for the database is not joined by the next one, and a stop waits for it.
  let syncing: Promise<void> | undefined;
  const syncStatuses = () => {
    syncing ??= admin
      .syncWithGlobalConf()
      .catch((err: unknown) => logger.warn({ err }, 'client states and owner not updated from global configuration'))
      .finally(() => (syncing = undefined));
  };
  syncStatuses();
  const statusTimer = setInterval(syncStatuses, CLIENT_STATUS_SYNC_MS);
  const stop = async (signal: string) => {
    clearInterval(statusTimer);
    logger.info({ signal }, 'admin API stopping');
    await syncing;
    await api.close();
    await admin.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.stdout.write(`admin API listening on ${api.url}, web interface at ${api.url.replace(/api\/v1$/, '')}\n`);
  return new Promise<number>(() => {
    // Runs until a signal stops it.
  });
}

function apiKeyCommand(rest: string[], values: CliValues, context: AdminContext): number {
  const [command, id] = rest;
  const store = new ApiKeyStore(apiKeysFile(context.dataDir));
  const out = (json: unknown, human: string): number => {
    process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
    return 0;
  };
  switch (command) {
    case 'create': {
      if (typeof values.roles !== 'string') throw new UsageError(`--roles is required (${ROLES.join(', ')})`);
      const roles = parseRoles(values.roles);
      const name = typeof values.name === 'string' ? values.name : undefined;
      const created = store.create(roles, name);
      return out(
        { ...created, ...(name ? { name } : {}) },
        `API key ${created.id}${name ? ` "${name}"` : ''} with roles ${created.roles.join(', ')}:\n${created.key}\n` +
          'It is shown only now; send it as: Authorization: X-Road-ApiKey token=<key>',
      );
    }
    case 'list': {
      const keys = store.list();
      return out(keys, keys.length === 0 ? 'no API keys' : keys.map(describe).join('\n'));
    }
    case 'revoke': {
      if (!id) throw new UsageError('missing <id> (see xrd admin api-key list)');
      const revoked = store.revoke(id);
      return out({ revoked }, `revoked ${describe(revoked)}`);
    }
    default:
      throw new UsageError(`unknown command "admin api-key ${command ?? ''}"`.trimEnd());
  }
}

async function userCommand(rest: string[], values: CliValues, context: AdminContext): Promise<number> {
  const [command, name] = rest;
  const store = new UserStore(usersFile(context.dataDir));
  const out = (json: unknown, human: string): number => {
    process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
    return 0;
  };
  if (command === 'list') {
    const users = store.list();
    return out(users, users.length === 0 ? 'no users' : users.map(describeUser).join('\n'));
  }
  if (!['add', 'passwd', 'roles', 'delete'].includes(command ?? '')) throw new UsageError(`unknown command "admin user ${command ?? ''}"`.trimEnd());
  if (!name) throw new UsageError(`missing NAME (xrd admin user ${command} NAME)`);
  const roles = () => {
    if (typeof values.roles !== 'string') throw new UsageError(`--roles is required (${ROLES.join(', ')})`);
    return parseRoles(values.roles);
  };
  const password = async () => {
    const source = { file: typeof values['password-file'] === 'string' ? values['password-file'] : undefined, env: typeof values['password-env'] === 'string' ? values['password-env'] : undefined };
    const value = await readSecret(source, `Password for ${name}: `, true);
    if (!value) throw new UsageError('a password is required (--password-file, --password-env or the prompt)');
    return value;
  };
  switch (command) {
    case 'add': {
      const r = roles();
      const user = await store.add(name, await password(), r);
      return out(user, `added ${describeUser(user)}`);
    }
    case 'passwd': {
      const user = await store.setPassword(name, await password());
      return out(user, `new password for ${user.name}; their open sessions end`);
    }
    case 'roles': {
      const user = store.setRoles(name, roles());
      return out(user, `roles of ${describeUser(user)}`);
    }
    default: {
      const user = store.delete(name);
      return out({ deleted: user }, `deleted ${user.name}; their open sessions end`);
    }
  }
}

/** --auth local (the users of `xrd admin user`) or pam (the operating system's, pam-users.ts). */
function userDirectoryOf(values: CliValues, context: AdminContext, logger: Logger): UserDirectory {
  const auth = values.auth ?? 'local';
  if (auth === 'local') return new UserStore(usersFile(context.dataDir));
  if (auth !== 'pam') throw new UsageError(`--auth is local or pam, not ${String(auth)}`);
  const extraRoleGroups: Partial<Record<Role, string[]>> = {};
  const mappings = typeof values['pam-role-groups'] === 'string' ? values['pam-role-groups'].split(',').filter(Boolean) : [];
  for (const mapping of mappings) {
    const [role, groups] = mapping.split('=');
    if (!role || !groups) throw new UsageError(`--pam-role-groups takes ROLE=group+group, not ${mapping}`);
    extraRoleGroups[parseRoles(role)[0]!] = groups.split('+').filter(Boolean);
  }
  return new PamUsers(logger, { service: typeof values['pam-service'] === 'string' ? values['pam-service'] : undefined, extraRoleGroups });
}

/** --session-idle-minutes, --session-lifetime-minutes, --login-lock-minutes. */
function sessionOptionsOf(values: CliValues): SessionOptions {
  const minutes = (flag: string): number | undefined => {
    const v = values[flag];
    if (typeof v !== 'string') return undefined;
    const n = Number(v);
    if (!(Number.isFinite(n) && n > 0)) throw new UsageError(`--${flag} must be a positive number of minutes, not ${v}`);
    return n * 60_000;
  };
  const idleMs = minutes('session-idle-minutes');
  const lifetimeMs = minutes('session-lifetime-minutes');
  const lockMs = minutes('login-lock-minutes');
  return { ...(idleMs ? { idleMs } : {}), ...(lifetimeMs ? { lifetimeMs } : {}), ...(lockMs ? { lockMs } : {}) };
}

function describeUser(u: UserView): string {
  return `${u.name}  ${u.roles.join(',')}  created ${u.createdAt}, password set ${u.passwordChangedAt}`;
}

/** `security_officer,XROAD_SYSTEM_ADMINISTRATOR` → the reference's role names. */
function parseRoles(text: string): Role[] {
  const roles = text.split(',').map((r) => r.trim()).filter(Boolean).map((r) => {
    const upper = r.toUpperCase();
    const role = upper.startsWith('XROAD_') ? upper : `XROAD_${upper}`;
    if (!isRole(role)) throw new UsageError(`unknown role ${r} (roles: ${ROLES.join(', ')})`);
    return role;
  });
  if (roles.length === 0) throw new UsageError(`--roles needs at least one role (${ROLES.join(', ')})`);
  return roles;
}

function describe(k: ApiKeyView): string {
  return `${k.id}  ${k.roles.join(',')}  created ${k.createdAt}${k.name ? `  "${k.name}"` : ''}`;
}
