/**
 * Login sessions of the administration interface: a password checked against the user store opens a
 * session kept in memory (a restart logs everyone out, as the reference's), known to the browser only
 * by a random 256-bit id in a cookie. A session ends on logout, after an idle time (the reference's
 * 30 minutes) and after an absolute lifetime; it also ends when its user is deleted or their password
 * changes. Each session holds its own CSRF token (the synchronizer pattern: the token is bound to the
 * session on the server, not merely compared with a cookie).
 *
 * Wrong passwords are counted per user name, known or not, so answers do not tell which names exist;
 * the limit-th wrong password locks the name for a while. The reference leaves lockout to PAM
 * (pam_faillock, typically deny=3 or 5 and a 10–15 minute unlock time); here it is built in.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { Role } from '../serverconf/api-keys.ts';
import type { UserDirectory } from './users.ts';

export interface SessionOptions {
  /** Idle time after which a session ends; default 30 minutes (the reference's). */
  readonly idleMs?: number;
  /** Time after login after which a session ends however busy; default 8 hours. */
  readonly lifetimeMs?: number;
  /** Wrong passwords in a row that lock a user name; default 5. */
  readonly maxFailures?: number;
  /** How long a locked name stays locked; default 15 minutes. */
  readonly lockMs?: number;
  /** Sessions kept at most; past it the oldest ends. Default 1000. */
  readonly maxSessions?: number;
  /** User names whose wrong passwords are remembered at most, so trying names cannot grow memory without bound. Default 10 000. */
  readonly maxTrackedNames?: number;
  /** Milliseconds; tests move time instead of sleeping. */
  readonly now?: () => number;
}

export const DEFAULT_SESSION_OPTIONS = { idleMs: 30 * 60_000, lifetimeMs: 8 * 3_600_000, maxFailures: 5, lockMs: 15 * 60_000, maxSessions: 1000, maxTrackedNames: 10_000 } as const;

/** A session as a request sees it: the user's roles are the store's at this request. */
export interface SessionUser {
  /** The session id (the cookie's value). */
  readonly id: string;
  readonly user: string;
  readonly roles: Role[];
  readonly csrfToken: string;
}

interface Session {
  readonly user: string;
  readonly credential: string;
  readonly csrfToken: string;
  readonly createdAt: number;
  lastSeen: number;
}

interface Failures {
  count: number;
  lockedUntil?: number;
}

export class Sessions {
  /** By the SHA-256 of the id, so a lookup's timing says nothing about the ids. */
  private readonly sessions = new Map<string, Session>();
  private readonly failures = new Map<string, Failures>();
  private readonly options: Required<SessionOptions>;

  constructor(
    readonly users: UserDirectory,
    private readonly log: Logger,
    options: SessionOptions = {},
  ) {
    this.options = { ...DEFAULT_SESSION_OPTIONS, now: () => Date.now(), ...options };
  }

  /**
   * Opens a session when the password is the user's.
   * @throws AccountLocked while the name is locked (the password is not even checked)
   * @throws InvalidCredentials
   */
  async login(name: string, password: string, address: string): Promise<SessionUser> {
    const { maxFailures, lockMs, now } = this.options;
    let failures = this.failures.get(name);
    if (failures?.lockedUntil !== undefined && failures.lockedUntil <= now()) failures = undefined;
    if (failures && failures.count >= maxFailures) {
      failures.lockedUntil ??= now() + lockMs;
      const retryAfter = Math.ceil((failures.lockedUntil - now()) / 1000);
      this.log.warn({ user: name, client: address, retryAfter }, 'admin login refused: user locked');
      throw new XrdError('AccountLocked', { name, failures: maxFailures, retryAfter });
    }
    // Counted before the (slow) check, so guesses sent in parallel cannot pass the limit.
    failures ??= { count: 0 };
    failures.count += 1;
    this.failures.delete(name);
    this.failures.set(name, failures);
    if (this.failures.size > this.options.maxTrackedNames) this.forgetOne();

    const user = await this.users.verify(name, password);
    if (!user) {
      if (failures.count >= maxFailures) failures.lockedUntil = now() + lockMs;
      this.log.warn({ user: name, client: address, failures: failures.count, locked: failures.lockedUntil !== undefined }, 'admin login failed');
      throw new XrdError('InvalidCredentials');
    }
    this.failures.delete(name);

    this.sweep();
    if (this.sessions.size >= this.options.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const session: Session = { user: user.name, credential: user.credential, csrfToken: randomBytes(32).toString('base64url'), createdAt: now(), lastSeen: now() };
    this.sessions.set(digest(id), session);
    this.log.info({ user: user.name, client: address, roles: user.roles }, 'admin login');
    return { id, user: user.name, roles: user.roles, csrfToken: session.csrfToken };
  }

  /**
   * The live session with this id, its idle time restarted.
   * @throws SessionExpired when it is unknown, ended, or its user was deleted or has a new password
   */
  authenticate(id: string): SessionUser {
    const key = digest(id);
    const session = this.sessions.get(key);
    const user = session && this.live(session) ? this.users.current(session.user) : undefined;
    if (!session || !user || user.credential !== session.credential) {
      if (session) this.sessions.delete(key);
      throw new XrdError('SessionExpired');
    }
    session.lastSeen = this.options.now();
    return { id, user: user.name, roles: user.roles, csrfToken: session.csrfToken };
  }

  /** Whether `presented` is the session's CSRF token (compared in constant time). */
  static csrfMatches(session: SessionUser, presented: string | undefined): boolean {
    return presented !== undefined && timingSafeEqual(Buffer.from(digest(presented), 'hex'), Buffer.from(digest(session.csrfToken), 'hex'));
  }

  /** Ends the session; an unknown id is already ended. */
  logout(id: string, address: string): void {
    const key = digest(id);
    const session = this.sessions.get(key);
    if (!session) return;
    this.sessions.delete(key);
    this.log.info({ user: session.user, client: address }, 'admin logout');
  }

  /**
   * Forgets the least recently tried name that is not locked, so that trying many names cannot push
   * a locked one out and unlock it early; only when every name is locked, the oldest.
   */
  private forgetOne(): void {
    const now = this.options.now();
    for (const [name, f] of this.failures) {
      if (f.lockedUntil === undefined || f.lockedUntil <= now) {
        this.failures.delete(name);
        return;
      }
    }
    this.failures.delete(this.failures.keys().next().value!);
  }

  private live(s: Session): boolean {
    const now = this.options.now();
    return now - s.lastSeen < this.options.idleMs && now - s.createdAt < this.options.lifetimeMs;
  }

  private sweep(): void {
    for (const [key, s] of this.sessions) if (!this.live(s)) this.sessions.delete(key);
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
