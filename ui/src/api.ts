/**
 * The admin API as the pages call it: same origin, `/api/v1`, JSON (certificates and backups as
 * bytes). The browser sends the HttpOnly
 * session cookie itself; changes carry the session's CSRF token in X-XSRF-TOKEN (docs/admin-api.md
 * "Users and sessions"). A refusal becomes an ApiError with the API's code (`AccountLocked`, …), so
 * pages show what the API said and decide by the code, never by the message.
 */
import { shallowRef } from 'vue';

const API_PREFIX = '/api/v1';
/** 401s that refuse a token PIN, not the session (src/platform/errors.ts). */
const WRONG_PIN = new Set(['PinIncorrect', 'PinFinalTry']);

/** One of the reference's warnings (warnings_detected): a code and what it is about. */
export interface ApiWarning {
  readonly code: string;
  readonly metadata: readonly string[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The reference's warnings of a WarningsDetected refusal: the caller may resend with ignore_warnings. */
    readonly warnings: readonly ApiWarning[] = [],
  ) {
    super(message);
  }

  /**
   * Not (or no longer) logged in: the page goes back to login. Other 401s are not about the
   * session (a wrong token PIN answers PinIncorrect with 401): the page shows them and stays.
   */
  get unauthenticated(): boolean {
    return this.status === 401 && !WRONG_PIN.has(this.code);
  }
}

export interface User {
  readonly username: string;
  readonly roles: readonly string[];
}

/** The reference's five roles (src/admin/api-keys.ts Role). */
export type Role = 'XROAD_SECURITY_OFFICER' | 'XROAD_REGISTRATION_OFFICER' | 'XROAD_SERVICE_ADMINISTRATOR' | 'XROAD_SYSTEM_ADMINISTRATOR' | 'XROAD_SECURESERVER_OBSERVER';

/** The logged-in user, undefined before login and after logout or a refused session. */
export const currentUser = shallowRef<User | undefined>();
let csrfToken: string | undefined;

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One API call with a JSON body (or none); the answer's JSON, or undefined for 202/204. */
export function call<T>(method: Method, path: string, body?: unknown): Promise<T> {
  return send<T>(method, path, body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) });
}

/** One API call with bytes as the body (a certificate, a backup): `application/octet-stream`. */
export function upload<T>(method: Method, path: string, data: Blob): Promise<T> {
  return send<T>(method, path, { type: 'application/octet-stream', data });
}

/**
 * A file the API answers with (a CSR, a certificate, a backup), saved by the browser under its name;
 * with `body`, the file is made by a POST with that JSON body (POST /system/certificate/csr).
 */
export async function download(path: string, fallbackName: string, body?: unknown): Promise<void> {
  const response = await request(body === undefined ? 'GET' : 'POST', path, body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) }, '*/*');
  if (!response.ok) throw await refusal(response);
  const name = /filename="?([^";]+)"?/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? fallbackName;
  saveFile(await response.blob(), name);
}

/** Hands bytes made or fetched by the page to the browser as a download named `name`. */
export function saveFile(data: Blob, name: string): void {
  const url = URL.createObjectURL(data);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function request(method: Method, path: string, body: { type: string; data: BodyInit } | undefined, accept = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { accept };
  if (body) headers['content-type'] = body.type;
  if (method !== 'GET' && csrfToken !== undefined) headers['x-xsrf-token'] = csrfToken;
  try {
    return await fetch(API_PREFIX + path, { method, headers, body: body?.data, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'NetworkError', 'The security server did not answer');
  }
}

/** A refused call as an ApiError with the API's code; one that says the session ended also forgets it. */
async function refusal(response: Response): Promise<ApiError> {
  const body = parseJson(await response.text()) as { error?: { code?: unknown; message?: unknown }; warnings?: unknown } | undefined;
  const error = body?.error;
  const warnings = Array.isArray(body?.warnings) ? (body.warnings as ApiWarning[]).filter((w) => typeof w?.code === 'string' && Array.isArray(w.metadata)) : [];
  const refused = new ApiError(response.status, typeof error?.code === 'string' ? error.code : `HTTP${response.status}`, typeof error?.message === 'string' ? error.message : response.statusText, warnings);
  if (refused.unauthenticated) forget();
  return refused;
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

async function send<T>(method: Method, path: string, body?: { type: string; data: BodyInit }): Promise<T> {
  const response = await request(method, path, body);
  if (!response.ok) throw await refusal(response);
  return parseJson(await response.text()) as T;
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

/** Whether the logged-in user has one of `roles`: pages offer a change only to those the API lets make it. */
export function hasRole(...roles: readonly Role[]): boolean {
  return roles.some((role) => currentUser.value?.roles.includes(role));
}

/** Any thrown value as an ApiError, for showing it. */
export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'UnexpectedError', err instanceof Error ? err.message : String(err));
}
