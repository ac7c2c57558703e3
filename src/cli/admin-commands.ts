/**
 * `xrd admin …`: the security server's administration from the command line. `api-key` manages the
 * admin REST API's keys in `<data dir>/admin/api-keys.json`, the file a running API re-reads, so a
 * key created or revoked here takes effect there at once.
 */
import { ApiKeyStore, apiKeysFile, isRole, ROLES, type ApiKeyView, type Role } from '../admin/api-keys.ts';
import type { CliValues } from './proxy-commands.ts';

export interface AdminContext {
  /** The proxy's data directory (--data-dir, $XRD_DATA_DIR or ./var). */
  readonly dataDir: string;
}

export const ADMIN_USAGE = `  xrd admin api-key create --roles R1,R2 [--name N] | list | revoke <id>
                    admin REST API keys in <data-dir>/admin/api-keys.json; a new key is printed once, stored as a hash;
                    roles (XROAD_ prefix optional): ${ROLES.map((r) => r.replace(/^XROAD_/, '')).join(', ')}`;

class AdminUsageError extends Error {}

/** `positionals` are the words after `admin`: `api-key create`, … */
export async function adminCommand(positionals: string[], values: CliValues, context: AdminContext): Promise<number> {
  const [command, ...rest] = positionals;
  try {
    switch (command) {
      case 'api-key':
        return apiKeyCommand(rest, values, context);
      default:
        throw new AdminUsageError(`unknown command "admin ${command ?? ''}"`.trimEnd());
    }
  } catch (err) {
    if (!(err instanceof AdminUsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${ADMIN_USAGE}\n`);
    return 2;
  }
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
      if (typeof values.roles !== 'string') throw new AdminUsageError(`--roles is required (${ROLES.join(', ')})`);
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
      if (!id) throw new AdminUsageError('missing <id> (see xrd admin api-key list)');
      const revoked = store.revoke(id);
      return out({ revoked }, `revoked ${describe(revoked)}`);
    }
    default:
      throw new AdminUsageError(`unknown command "admin api-key ${command ?? ''}"`.trimEnd());
  }
}

/** `security_officer,XROAD_SYSTEM_ADMINISTRATOR` → the reference's role names. */
function parseRoles(text: string): Role[] {
  const roles = text.split(',').map((r) => r.trim()).filter(Boolean).map((r) => {
    const upper = r.toUpperCase();
    const role = upper.startsWith('XROAD_') ? upper : `XROAD_${upper}`;
    if (!isRole(role)) throw new AdminUsageError(`unknown role ${r} (roles: ${ROLES.join(', ')})`);
    return role;
  });
  if (roles.length === 0) throw new AdminUsageError(`--roles needs at least one role (${ROLES.join(', ')})`);
  return roles;
}

function describe(k: ApiKeyView): string {
  return `${k.id}  ${k.roles.join(',')}  created ${k.createdAt}${k.name ? `  "${k.name}"` : ''}`;
}
