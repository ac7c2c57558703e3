/**
 * The local users of the administration interface, the embedded default where the reference uses
 * the operating system's users through PAM (pam-users.ts, `xrd admin start --auth pam`). One JSON file beside the API keys, `<data dir>/admin/users.json` (0600), shared by
 * the API server and the CLI (`xrd admin user …`). Passwords are kept as scrypt hashes with a
 * per-user random salt (Node's own scrypt: memory-hard, no dependency); the cost parameters are
 * stored with each hash so they can be raised later without invalidating the old ones.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { checkRoles, isRole, type Role } from '../serverconf/api-keys.ts';
import { SharedJsonFile } from '../platform/shared-json-file.ts';

/** What the API and the CLI show of a user: never the hash nor the salt. */
export interface UserView {
  readonly name: string;
  readonly roles: Role[];
  /** ISO 8601. */
  readonly createdAt: string;
  readonly passwordChangedAt: string;
}

export interface AuthenticatedUser {
  readonly name: string;
  readonly roles: Role[];
  /** Changes whenever the password does, so sessions opened with the old one can be ended. */
  readonly credential: string;
}

/** Where login users and their roles come from: this file (UserStore) or the operating system (PamUsers). */
export interface UserDirectory {
  /** The user when `password` is theirs (and they have a role), else undefined. */
  verify(name: string, password: string): Promise<AuthenticatedUser | undefined>;
  /** The user as a session should see them now, or undefined once they may no longer log in. */
  current(name: string): AuthenticatedUser | undefined;
}

interface ScryptCost {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

interface StoredUser extends UserView {
  readonly scrypt: ScryptCost;
  /** base64 */
  readonly salt: string;
  /** base64 of HASH_BYTES */
  readonly hash: string;
}

interface UserFile {
  readonly version: 1;
  readonly users: StoredUser[];
}

/**
 * One of OWASP's equivalent scrypt minimums (N=2^15, r=8, p=3): 32 MiB per hash rather than the
 * 128 MiB of N=2^17, so a few concurrent logins stay well within the admin process's memory.
 */
const COST: ScryptCost = { N: 2 ** 15, r: 8, p: 3 };
const HASH_BYTES = 64;
const SALT_BYTES = 16;
/** The reference refuses user names and passwords longer than 255 characters before asking PAM. */
export const MAX_CREDENTIAL_LENGTH = 255;
export const MIN_PASSWORD_LENGTH = 8;
/** Letters, digits and `_ . @ -`: safe in logs, file names and the audit log. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$/;

/** `<proxy data dir>/admin/users.json`. */
export function usersFile(dataDir: string): string {
  return join(dataDir, 'admin', 'users.json');
}

/** Whether `name` is a user name this API accepts (also what keeps it from being read as a command option). */
export function isUserName(name: string): boolean {
  return NAME.test(name);
}

export class UserStore implements UserDirectory {
  private readonly shared: SharedJsonFile<UserFile>;
  /** Hashed against when the name is unknown, so the time taken does not tell which names exist. */
  private decoy: Promise<StoredUser> | undefined;

  constructor(readonly file: string) {
    this.shared = new SharedJsonFile<UserFile>(file, { version: 1, users: [] }, (json) => parseUserFile(file, json));
  }

  /** @throws UserExists, InvalidUser */
  async add(name: string, password: string, roles: readonly Role[]): Promise<UserView> {
    checkName(name);
    const checked = checkRoles(roles, 'InvalidUser');
    const hashed = await hashPassword(checkPassword(password));
    return this.modify((users) => {
      if (users.some((u) => u.name === name)) throw new XrdError('UserExists', { name });
      const now = new Date().toISOString();
      const entry: StoredUser = { name, roles: checked, createdAt: now, passwordChangedAt: now, ...hashed };
      return { users: [...users, entry], result: view(entry) };
    });
  }

  list(): UserView[] {
    return this.shared.read().users.map(view);
  }

  /** @throws UserNotFound */
  get(name: string): UserView {
    return view(this.find(this.shared.read().users, name));
  }

  /** A new password: sessions opened with the old one end at their next request. */
  async setPassword(name: string, password: string): Promise<UserView> {
    const hashed = await hashPassword(checkPassword(password));
    return this.update(name, (u) => ({ ...u, ...hashed, passwordChangedAt: new Date().toISOString() }));
  }

  /** New roles; open sessions have them from their next request. */
  setRoles(name: string, roles: readonly Role[]): UserView {
    const checked = checkRoles(roles, 'InvalidUser');
    return this.update(name, (u) => ({ ...u, roles: checked }));
  }

  /** Removes the user; their sessions end at their next request. */
  delete(name: string): UserView {
    return this.modify((users) => {
      const entry = this.find(users, name);
      return { users: users.filter((u) => u !== entry), result: view(entry) };
    });
  }

  /**
   * The user when `password` is theirs, else undefined. An unknown name costs the same hash as a
   * known one, and hashes are compared in constant time.
   */
  async verify(name: string, password: string): Promise<AuthenticatedUser | undefined> {
    if (name.length > MAX_CREDENTIAL_LENGTH || password.length > MAX_CREDENTIAL_LENGTH) return undefined;
    // Made at the first check, whatever its name, so no single answer takes longer for an unknown one.
    this.decoy ??= hashPassword(randomBytes(16).toString('hex')).then((h) => ({ name: '', roles: [], createdAt: '', passwordChangedAt: '', ...h }));
    const decoy = await this.decoy;
    const entry = this.shared.read().users.find((u) => u.name === name);
    const against = entry ?? decoy;
    const expected = Buffer.from(against.hash, 'base64');
    const presented = await scrypt(password.normalize('NFC'), Buffer.from(against.salt, 'base64'), expected.length, against.scrypt);
    return timingSafeEqual(presented, expected) && entry ? authenticated(entry) : undefined;
  }

  /** The user as stored now (their roles, and whether their password changed), or undefined once deleted. */
  current(name: string): AuthenticatedUser | undefined {
    const entry = this.shared.read().users.find((u) => u.name === name);
    return entry && authenticated(entry);
  }

  private find(users: StoredUser[], name: string): StoredUser {
    const entry = users.find((u) => u.name === name);
    if (!entry) throw new XrdError('UserNotFound', { name });
    return entry;
  }

  private update(name: string, change: (u: StoredUser) => StoredUser): UserView {
    return this.modify((users) => {
      const updated = change(this.find(users, name));
      return { users: users.map((u) => (u.name === name ? updated : u)), result: view(updated) };
    });
  }

  private modify<T>(change: (users: StoredUser[]) => { users: StoredUser[]; result: T }): T {
    return this.shared.modify((current) => {
      const { users, result } = change(current.users);
      return { value: { version: 1, users }, result };
    });
  }
}

function scrypt(password: string, salt: Buffer, length: number, cost: ScryptCost): Promise<Buffer> {
  // Node refuses parameters needing more than maxmem (32 MiB by default); 128·N·r is what they need.
  const options: ScryptOptions = { ...cost, maxmem: 2 * 128 * cost.N * cost.r };
  return new Promise((resolve, reject) => scryptCallback(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key))));
}

async function hashPassword(password: string): Promise<Pick<StoredUser, 'scrypt' | 'salt' | 'hash'>> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await scrypt(password.normalize('NFC'), salt, HASH_BYTES, COST);
  return { scrypt: COST, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new XrdError('InvalidUser', { reason: `user name "${name.slice(0, 80)}" must be 1–64 letters, digits or _ . @ - (not starting with . @ -)` });
}

function checkPassword(password: string): string {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH || length > MAX_CREDENTIAL_LENGTH) {
    throw new XrdError('InvalidUser', { reason: `a password has ${MIN_PASSWORD_LENGTH}–${MAX_CREDENTIAL_LENGTH} characters` });
  }
  return password;
}

function parseUserFile(file: string, parsed: unknown): UserFile {
  const users = (parsed as Partial<UserFile> | null)?.users;
  const valid =
    Array.isArray(users) &&
    users.every(
      (u: Partial<StoredUser>) =>
        typeof u.name === 'string' &&
        typeof u.salt === 'string' &&
        typeof u.hash === 'string' &&
        Array.isArray(u.roles) &&
        u.roles.every((r) => isRole(r)) &&
        typeof u.scrypt === 'object' &&
        u.scrypt !== null &&
        [u.scrypt.N, u.scrypt.r, u.scrypt.p].every((n) => Number.isSafeInteger(n) && n > 0),
    );
  if (!valid) throw new XrdError('InvalidConfiguration', { reason: `${file} is not a user file` });
  return { version: 1, users: users as StoredUser[] };
}

function view(u: StoredUser): UserView {
  return { name: u.name, roles: [...u.roles], createdAt: u.createdAt, passwordChangedAt: u.passwordChangedAt };
}

function authenticated(u: StoredUser): AuthenticatedUser {
  return { name: u.name, roles: [...u.roles], credential: u.salt };
}
