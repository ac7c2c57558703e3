/**
 * API keys of the admin REST API, kept in one JSON file shared by the API server and the CLI
 * (`xrd admin api-key …`). The file holds SHA-256 hashes only: a key is 32 random bytes, so nothing
 * slower than one hash is needed to make the file useless to a reader, and the plaintext key is
 * shown once, at creation. Part of the server's own configuration (the reference keeps its API keys
 * in the serverconf database), so that the proxy's monitoring port checks the same keys without
 * importing the administration.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { SharedJsonFile } from '../platform/shared-json-file.ts';

/** The reference's user roles; an API key carries one or more of them. */
export const ROLES = [
  'XROAD_SECURITY_OFFICER',
  'XROAD_REGISTRATION_OFFICER',
  'XROAD_SERVICE_ADMINISTRATOR',
  'XROAD_SYSTEM_ADMINISTRATOR',
  'XROAD_SECURESERVER_OBSERVER',
] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** What the API and the CLI show of a key: never the key nor its hash. */
export interface ApiKeyView {
  readonly id: string;
  readonly name?: string;
  readonly roles: Role[];
  /** ISO 8601. */
  readonly createdAt: string;
}

export interface AuthenticatedKey {
  readonly id: string;
  readonly name?: string;
  readonly roles: Role[];
}

interface StoredKey extends ApiKeyView {
  /** Hex SHA-256 of the key's UTF-8 text. */
  readonly sha256: string;
}

interface KeyFile {
  readonly version: 1;
  readonly keys: StoredKey[];
}

/** The scheme of the Authorization header that carries a key: `Authorization: X-Road-ApiKey token=<key>`. */
export const API_KEY_SCHEME = 'X-Road-ApiKey';

/**
 * The key an Authorization header presents, checked against the store: what the admin API and the
 * proxy's monitoring port (GET /metrics, /opmonitor) both accept.
 * @throws ApiKeyMissing when there is no header or it is not of the X-Road-ApiKey scheme
 * @throws ApiKeyInvalid when the key is malformed, unknown or revoked
 */
export function authenticateHeader(keys: ApiKeyStore, header: string | undefined): AuthenticatedKey {
  const scheme = header?.trim().split(/\s+/, 1)[0];
  if (!header || scheme?.toLowerCase() !== API_KEY_SCHEME.toLowerCase()) throw new XrdError('ApiKeyMissing');
  const token = /^\S+\s+token=(\S+)\s*$/i.exec(header.trim())?.[1];
  const key = token === undefined ? undefined : keys.authenticate(token);
  if (!key) throw new XrdError('ApiKeyInvalid');
  return key;
}

/**
 * Refuses a key, or a logged-in user, that holds none of `roles` for `route` (a route without roles
 * is refused to everyone).
 * @throws PermissionDenied
 */
export function requireRole(caller: AuthenticatedKey | { readonly user: string; readonly roles: readonly Role[] }, roles: readonly Role[], route: string): void {
  if (!roles.some((r) => caller.roles.includes(r))) {
    const principal = 'user' in caller ? `User ${caller.user}` : `API key ${caller.id}`;
    throw new XrdError('PermissionDenied', { principal, route, roles: roles.length ? roles.join(', ') : 'none' });
  }
}

/** `<proxy data dir>/admin/api-keys.json`. */
export function apiKeysFile(dataDir: string): string {
  return join(dataDir, 'admin', 'api-keys.json');
}

// Longer is not one of our keys; refusing it early keeps a hostile header from being hashed at length.
const MAX_KEY_LENGTH = 256;

export class ApiKeyStore {
  private readonly shared: SharedJsonFile<KeyFile>;

  constructor(readonly file: string) {
    this.shared = new SharedJsonFile<KeyFile>(file, { version: 1, keys: [] }, (json) => parseKeyFile(file, json));
  }

  /** Creates a key with these roles; the returned `key` is the only copy of it there will be. */
  create(roles: readonly Role[], name?: string): { id: string; key: string; roles: Role[] } {
    const checked = checkRoles(roles);
    const key = randomBytes(32).toString('base64url');
    return this.modify((keys) => {
      let id: string;
      do id = randomBytes(6).toString('hex');
      while (keys.some((k) => k.id === id));
      const entry: StoredKey = { id, ...(name ? { name } : {}), roles: checked, createdAt: new Date().toISOString(), sha256: sha256(key) };
      return { keys: [...keys, entry], result: { id, key, roles: checked } };
    });
  }

  list(): ApiKeyView[] {
    return this.shared.read().keys.map(view);
  }

  get(id: string): ApiKeyView {
    const entry = this.shared.read().keys.find((k) => k.id === id);
    if (!entry) throw new XrdError('ApiKeyNotFound', { id, referenceCode: 'api_key_not_found' });
    return view(entry);
  }

  /** Replaces a key's roles (the reference's "edit the roles of an API key"). */
  updateRoles(id: string, roles: readonly Role[]): ApiKeyView {
    const checked = checkRoles(roles);
    return this.modify((keys) => {
      const i = keys.findIndex((k) => k.id === id);
      if (i < 0) throw new XrdError('ApiKeyNotFound', { id, referenceCode: 'api_key_not_found' });
      const updated = { ...keys[i]!, roles: checked };
      return { keys: keys.map((k, j) => (j === i ? updated : k)), result: view(updated) };
    });
  }

  /** Removes the key; it stops authenticating at once, here and in every process sharing the file. */
  revoke(id: string): ApiKeyView {
    return this.modify((keys) => {
      const entry = keys.find((k) => k.id === id);
      if (!entry) throw new XrdError('ApiKeyNotFound', { id, referenceCode: 'api_key_not_found' });
      return { keys: keys.filter((k) => k !== entry), result: view(entry) };
    });
  }

  /** The key's id, name and roles, or undefined for an unknown or revoked key. */
  authenticate(key: string): AuthenticatedKey | undefined {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) return undefined;
    const presented = Buffer.from(sha256(key), 'hex');
    let found: StoredKey | undefined;
    // Every entry is compared, so the time taken does not tell which one came close.
    for (const entry of this.shared.read().keys) {
      if (timingSafeEqual(presented, Buffer.from(entry.sha256, 'hex')) && !found) found = entry;
    }
    return found && { id: found.id, ...(found.name ? { name: found.name } : {}), roles: [...found.roles] };
  }

  private modify<T>(change: (keys: StoredKey[]) => { keys: StoredKey[]; result: T }): T {
    return this.shared.modify((current) => {
      const { keys, result } = change(current.keys);
      return { value: { version: 1, keys }, result };
    });
  }
}

function parseKeyFile(file: string, parsed: unknown): KeyFile {
  const keys = (parsed as Partial<KeyFile> | null)?.keys;
  const valid =
    Array.isArray(keys) &&
    keys.every((k: Partial<StoredKey>) => typeof k.id === 'string' && typeof k.sha256 === 'string' && /^[0-9a-f]{64}$/.test(k.sha256) && Array.isArray(k.roles) && k.roles.every((r) => isRole(r)));
  if (!valid) throw new XrdError('InvalidConfiguration', { reason: `${file} is not an API key file` });
  return { version: 1, keys: keys as StoredKey[] };
}

/** The roles without repeats; an API key and a user need at least one, all of them the reference's. */
export function checkRoles(roles: readonly Role[], error: 'InvalidApiKeyRoles' | 'InvalidUser' = 'InvalidApiKeyRoles'): Role[] {
  // The reference's code for an API key's roles (ApiKeysController: invalid_role).
  const referenceCode = error === 'InvalidApiKeyRoles' ? 'invalid_role' : undefined;
  const unknown = roles.filter((r) => !isRole(r));
  if (unknown.length > 0) throw new XrdError(error, { reason: `unknown role ${unknown.join(', ')} (roles: ${ROLES.join(', ')})`, referenceCode });
  if (roles.length === 0) throw new XrdError(error, { reason: 'at least one role is needed', referenceCode });
  return [...new Set(roles)];
}

function view(k: StoredKey): ApiKeyView {
  return { id: k.id, ...(k.name ? { name: k.name } : {}), roles: [...k.roles], createdAt: k.createdAt };
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
