/**
 * The admin REST API server: fastify over HTTPS (port 4000, loopback only by default, as the
 * reference), the routes of api-routes.ts behind api-security.ts (API keys or login sessions with
 * roles, size and rate limits, one error shape), login and logout (api-session.ts), the OpenAPI
 * document generated from the same route table, and the web interface at `/` (web-ui.ts). The
 * server's timeouts and connection caps are platform/server-limits.ts's.
 */
import { dirname, join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { ADMIN_SERVER_LIMITS, capConnections, serverLimits, serverTimeouts, type ServerLimits } from '../platform/server-limits.ts';
import type { ApiKeyStore } from './api-keys.ts';
import { ROUTES, type FileDownload, type RouteDef, type RouteRequest } from './api-routes.ts';
import { API_BODY_LIMIT_BYTES, API_UPLOAD_LIMIT_BYTES, registerApiSecurity, type RateLimitOptions } from './api-security.ts';
import { registerSessionRoutes, SESSION_COOKIE, sessionOpenApiPaths } from './api-session.ts';
import type { ServerAdmin } from './server-admin.ts';
import { Sessions, type SessionOptions } from './sessions.ts';
import { UserStore } from './users.ts';
import { DEFAULT_UI_DIR, registerWebUi } from './web-ui.ts';

export const API_PREFIX = '/api/v1';

export interface AdminApiOptions {
  readonly admin: ServerAdmin;
  readonly keys: ApiKeyStore;
  /** The users who log in; default `users.json` beside the keys' file (usersFile(dataDir)). */
  readonly users?: UserStore;
  /** Idle timeout, lifetime and lockout of login sessions (sessions.ts's defaults). */
  readonly sessions?: SessionOptions;
  readonly logger: Logger;
  /** HTTPS; without it (tests with inject) the app is plain. */
  readonly https?: { cert: string; key: string };
  /** Client addresses allowed besides loopback's default. */
  readonly allowedAddresses?: readonly string[];
  readonly rateLimit?: RateLimitOptions;
  readonly bodyLimit?: number;
  /** Timeouts and connection caps (default ADMIN_SERVER_LIMITS). */
  readonly limits?: Partial<ServerLimits>;
  /** The built web interface served at `/` (default DEFAULT_UI_DIR, ui/dist). */
  readonly uiDir?: string;
}

/** The app with every route registered, not listening (tests call `inject`). */
export async function buildAdminApi(options: AdminApiOptions): Promise<FastifyInstance> {
  const limits = serverLimits(ADMIN_SERVER_LIMITS, options.limits);
  // Fastify sets the request and keep-alive timeouts itself (its request timeout is none by default).
  const { requestTimeout, keepAliveTimeout, ...timeouts } = serverTimeouts(limits);
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? API_BODY_LIMIT_BYTES,
    // Service and endpoint ids name a client, a code and a path pattern of up to 255 characters each.
    maxParamLength: 2048,
    requestTimeout,
    keepAliveTimeout,
    ...(options.https ? { https: { ...options.https, ...timeouts } } : { http: timeouts }),
    forceCloseConnections: true,
    // Refuse what the schemas forbid instead of quietly dropping unknown fields or turning 7 into "7".
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  capConnections(app.server, limits);
  registerAdminRoutes(app, options);
  return app;
}

/** The security layer, the routes, the OpenAPI document and the web interface on `app`. */
export function registerAdminRoutes(app: FastifyInstance, options: AdminApiOptions): void {
  // Files (certificates, anchors) arrive as they are (the reference's upload: application/octet-stream; PEM and XML as text too).
  app.addContentTypeParser(['application/octet-stream', 'application/pkix-cert', 'application/x-pem-file', 'application/xml', 'text/xml'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const sessions = new Sessions(options.users ?? new UserStore(join(dirname(options.keys.file), 'users.json')), options.logger, options.sessions);
  registerApiSecurity(app, { keys: options.keys, sessions, allowedAddresses: options.allowedAddresses, rateLimit: options.rateLimit, logger: options.logger });

  const document = openApiDocument();
  app.get(`${API_PREFIX}/openapi.json`, { config: { public: true } }, async () => document);
  registerSessionRoutes(app, API_PREFIX, sessions);
  registerWebUi(app, options.uiDir ?? DEFAULT_UI_DIR);
  for (const route of ROUTES) {
    app.route({
      method: route.method,
      url: API_PREFIX + route.path.replace(/\{(\w+)\}/g, ':$1'),
      config: { roles: route.roles },
      schema: route.body && route.body !== 'certificate' ? { body: route.body } : undefined,
      ...(route.body === 'certificate' ? { bodyLimit: API_UPLOAD_LIMIT_BYTES } : {}),
      handler: async (req, reply) => {
        if (route.body === 'certificate' && !Buffer.isBuffer(req.body)) {
          throw new XrdError('UnsupportedMediaType', { contentType: req.headers['content-type'] ?? 'none' });
        }
        // Changes are audited under the key's name (its id when it has none), or the logged-in user's.
        const admin = req.apiKey
          ? options.admin.as({ kind: 'api-key', name: req.apiKey.name ?? req.apiKey.id })
          : req.session
            ? options.admin.as({ kind: 'user', name: req.session.user })
            : options.admin;
        const result = await route.handler(admin, { params: req.params as Record<string, string>, body: req.body, query: req.query as RouteRequest['query'] });
        const status = route.status ?? 200;
        if (status === 204 || status === 202) return reply.code(status).send();
        if (route.produces) {
          const file = result as FileDownload;
          return reply.code(status).type(route.produces).header('content-disposition', `attachment; filename="${file.filename}"`).send(file.data);
        }
        return reply.code(status).send(result);
      },
    });
  }
}

/** Listens on `host:port` (127.0.0.1:4000 by default). */
export async function startAdminApi(options: AdminApiOptions & { host?: string; port?: number }): Promise<{ url: string; app: FastifyInstance; close(): Promise<void> }> {
  const app = await buildAdminApi(options);
  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 4000 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { url: `${options.https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}${API_PREFIX}`, app, close: () => app.close() };
}

/** OpenAPI 3.0 for the routes; docs/openapi.json is this, checked in (`xrd admin openapi`). */
export function openApiDocument(routes: readonly RouteDef[] = ROUTES): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {
    '/openapi.json': { get: { summary: 'This document (no API key needed)', security: [], responses: { 200: { description: 'OpenAPI 3.0 document', content: { 'application/json': { schema: { type: 'object' } } } } } } },
  };
  const errorResponse = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  Object.assign(paths, sessionOpenApiPaths(errorResponse));
  for (const route of routes) {
    const parameters = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    const requestBody =
      route.body === 'certificate'
        ? { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }
        : route.body
          ? { required: true, content: { 'application/json': { schema: route.body } } }
          : undefined;
    const status = route.status ?? 200;
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = {
      summary: route.summary,
      'x-roles': route.roles,
      ...(parameters.length ? { parameters } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses: {
        [status]:
          status === 204 || status === 202
            ? { description: status === 202 ? 'Sent on' : 'Done' }
            : route.produces
              ? { description: 'The file, as an attachment', content: { [route.produces]: { schema: { type: 'string', format: 'binary' } } } }
              : { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } },
        400: errorResponse,
        401: errorResponse,
        403: errorResponse,
        404: errorResponse,
        409: errorResponse,
        413: errorResponse,
        429: errorResponse,
        500: errorResponse,
      },
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'xrd security server admin API', version: '1', description: 'Shaped like the X-Road reference admin API /api/v1. See docs/admin-api.md.' },
    servers: [{ url: `https://localhost:4000${API_PREFIX}` }],
    security: [{ ApiKey: [] }, { Session: [] }],
    components: {
      securitySchemes: {
        ApiKey: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'X-Road-ApiKey token=<key>' },
        Session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'From POST /login; changes also need the X-XSRF-TOKEN header' },
      },
      schemas: {
        Error: {
          type: 'object',
          properties: { status: { type: 'integer' }, error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
        },
      },
    },
    paths,
  };
}
