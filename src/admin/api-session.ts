/**
 * Login, logout and the logged-in user on the admin API (`POST /login`, `POST /logout`,
 * `GET /user`, as the reference's `/api/v1/user`), and the cookies a session travels in:
 * - `__Host-xrd-session`: the session id; HttpOnly, Secure, SameSite=Strict, Path=/ (the `__Host-`
 *   prefix makes browsers refuse it without Secure and Path=/ or with a Domain).
 * - `XSRF-TOKEN`: the session's CSRF token, readable by the page (not HttpOnly) so it can send it back
 *   in the `X-XSRF-TOKEN` header, the reference's names (Angular's and axios's defaults).
 * Both are browser-session cookies (no Max-Age): the server ends sessions, not the cookie's age.
 * Cookies are read here with a few lines rather than a plugin: one name, no signing, no options.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { MAX_CREDENTIAL_LENGTH } from './users.ts';
import { ROLES } from '../serverconf/api-keys.ts';
import type { Sessions, SessionUser } from './sessions.ts';

export const SESSION_COOKIE = '__Host-xrd-session';
export const CSRF_COOKIE = 'XSRF-TOKEN';
export const CSRF_HEADER = 'x-xsrf-token';

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const LOGIN_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['username', 'password'],
  properties: { username: { type: 'string', minLength: 1, maxLength: MAX_CREDENTIAL_LENGTH }, password: { type: 'string', minLength: 1, maxLength: MAX_CREDENTIAL_LENGTH } },
};

/** What login and GET /user answer for a session (the reference's User, with the CSRF token beside it). */
const USER_RESPONSE = {
  type: 'object',
  properties: { username: { type: 'string' }, roles: { type: 'array', items: { type: 'string', enum: [...ROLES] } }, csrf_token: { type: 'string' } },
};

const userBody = (s: SessionUser) => ({ username: s.user, roles: s.roles, csrf_token: s.csrfToken });

/** Registers the three routes under `prefix`; api-security.ts authenticates the session cookie. Logout and GET /user are for every role. */
export function registerSessionRoutes(app: FastifyInstance, prefix: string, sessions: Sessions): void {
  app.post(`${prefix}/login`, { config: { public: true }, schema: { body: LOGIN_BODY } }, async (request, reply) => {
    const { username, password } = request.body as { username: string; password: string };
    const session = await sessions.login(username, password, request.ip);
    setCookies(reply, [`${SESSION_COOKIE}=${session.id}; HttpOnly`, `${CSRF_COOKIE}=${session.csrfToken}`]);
    return userBody(session);
  });

  app.post(`${prefix}/logout`, { config: { roles: ROLES } }, async (request, reply) => {
    if (request.session) sessions.logout(request.session.id, request.ip);
    setCookies(reply, [`${SESSION_COOKIE}=; HttpOnly; Max-Age=0`, `${CSRF_COOKIE}=; Max-Age=0`]);
    return reply.code(204).send();
  });

  app.get(`${prefix}/user`, { config: { roles: ROLES } }, async (request) => {
    if (request.session) return userBody(request.session);
    // An API key: its name (or id) and roles, no CSRF token (keys need none).
    const key = request.apiKey!;
    return { username: key.name ?? key.id, roles: key.roles };
  });
}

function setCookies(reply: FastifyReply, cookies: string[]): void {
  reply.header('set-cookie', cookies.map((c) => `${c}; Secure; SameSite=Strict; Path=/`));
}

/** The three routes in docs/openapi.json. */
export function sessionOpenApiPaths(errorResponse: unknown): Record<string, Record<string, unknown>> {
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 429: errorResponse };
  const user = { description: 'The user, their roles and the CSRF token for X-XSRF-TOKEN', content: { 'application/json': { schema: USER_RESPONSE } } };
  return {
    '/login': {
      post: {
        summary: `Log in with a user name and password: sets the session cookie (${SESSION_COOKIE}) and ${CSRF_COOKIE}`,
        security: [],
        requestBody: { required: true, content: { 'application/json': { schema: LOGIN_BODY } } },
        responses: { 200: user, ...errors },
      },
    },
    '/logout': { post: { summary: 'End the session and clear its cookies', 'x-roles': ROLES, responses: { 204: { description: 'Done' }, ...errors } } },
    '/user': { get: { summary: 'The logged-in user (or the API key) and its roles', 'x-roles': ROLES, responses: { 200: user, ...errors } } },
  };
}
