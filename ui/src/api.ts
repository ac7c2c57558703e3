/**
 * The admin API as the pages call it: same origin, `/api/v1`, JSON. The browser sends the HttpOnly
 * session cookie itself; changes carry the session's CSRF token in X-XSRF-TOKEN (docs/admin-api.md
 * "Users and sessions"). A refusal becomes an ApiError with the API's code (`AccountLocked`, …), so
 * pages show what the API said and decide by the code, never by the message.
 */
import { shallowRef } from 'vue';

const API_PREFIX = '/api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  /** Not (or no longer) logged in: the page goes back to login. */
  get unauthenticated(): boolean {
    return this.status === 401;
  }
}

export interface User {
  readonly username: string;
  readonly roles: readonly string[];
}

/** GET /clients's items (server-admin.ts ClientView), the fields the pages use. */
export interface Client {
  readonly id: string;
  readonly status: string;
  readonly connectionType: string;
}

/** The logged-in user, undefined before login and after logout or a refused session. */
export const currentUser = shallowRef<User | undefined>();
let csrfToken: string | undefined;

async function call<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== undefined) headers['x-xsrf-token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(API_PREFIX + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'NetworkError', 'The security server did not answer');
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    if (response.status === 401) forget();
    throw new ApiError(response.status, typeof error?.code === 'string' ? error.code : `HTTP${response.status}`, typeof error?.message === 'string' ? error.message : response.statusText);
  }
  return json as T;
}

interface UserAnswer extends User {
  readonly csrf_token?: string;
}

function remember(answer: UserAnswer): User {
  csrfToken = answer.csrf_token;
  currentUser.value = { username: answer.username, roles: answer.roles };
  return currentUser.value;
}

function forget(): void {
  csrfToken = undefined;
  currentUser.value = undefined;
}

export async function login(username: string, password: string): Promise<User> {
  return remember(await call<UserAnswer>('POST', '/login', { username, password }));
}

/** The session the browser already has (after a reload), or undefined. */
export async function resumeSession(): Promise<User | undefined> {
  if (currentUser.value) return currentUser.value;
  try {
    return remember(await call<UserAnswer>('GET', '/user'));
  } catch (err) {
    if (err instanceof ApiError && err.unauthenticated) return undefined;
    throw err;
  }
}

export async function logout(): Promise<void> {
  try {
    await call('POST', '/logout');
  } finally {
    forget();
  }
}

export const listClients = (): Promise<Client[]> => call<Client[]>('GET', '/clients');

/** Any thrown value as an ApiError, for showing it. */
export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'UnexpectedError', err instanceof Error ? err.message : String(err));
}
