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
import type { ApiKeyStore } from '../serverconf/api-keys.ts';
import { ROUTES, type RouteDef, type RouteRequest } from './api-routes.ts';
import { MAX_ARCHIVE_BYTES } from './backup.ts';
import { boundaryOf, parseMultipart } from '../protocol/multipart.ts';
import { API_BODY_LIMIT_BYTES, API_UPLOAD_LIMIT_BYTES, registerApiSecurity, type RateLimitOptions } from './api-security.ts';
import { registerSessionRoutes, SESSION_COOKIE, sessionOpenApiPaths } from './api-session.ts';
import type { FileDownload, ServerAdmin } from './server-admin.ts';
import { Sessions, type SessionOptions } from './sessions.ts';
import { UserStore, type UserDirectory } from './users.ts';
import { DEFAULT_UI_DIR, registerWebUi } from './web-ui.ts';

export const API_PREFIX = '/api/v1';

export interface AdminApiOptions {
  readonly admin: ServerAdmin;
  readonly keys: ApiKeyStore;
  /** The users who log in: default the local store `users.json` beside the keys' file (usersFile(dataDir)); or PamUsers. */
  readonly users?: UserDirectory;
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
  // Files (certificates, anchors, backups) arrive as they are (the reference's upload: application/octet-stream; PEM and XML as text too).
  app.addContentTypeParser(['application/octet-stream', 'application/pkix-cert', 'application/x-pem-file', 'application/xml', 'text/xml'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // The reference uploads backups as a form's `file` field; read here for those routes only (isForm).
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
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
      config: { roles: route.roles, sessionOnly: route.sessionOnly === true },
      schema: {
        ...(route.body && typeof route.body === 'object' ? { body: route.body } : {}),
        ...(route.query ? { querystring: { type: 'object', additionalProperties: false, properties: route.query, required: route.requiredQuery ?? [] } } : {}),
      },
      ...(route.body === 'certificate' ? { bodyLimit: API_UPLOAD_LIMIT_BYTES } : route.body === 'archive' ? { bodyLimit: MAX_ARCHIVE_BYTES } : {}),
      preValidation: async (req) => {
        if (route.body !== 'archive' && isForm(req.headers['content-type'])) throw new XrdError('UnsupportedMediaType', { contentType: req.headers['content-type'] ?? 'none' });
      },
      handler: async (req, reply) => {
        if ((route.body === 'certificate' || route.body === 'archive') && !Buffer.isBuffer(req.body)) {
          throw new XrdError('UnsupportedMediaType', { contentType: req.headers['content-type'] ?? 'none' });
        }
        // Changes are audited under the key's name (its id when it has none), or the logged-in user's.
        const admin = req.apiKey
          ? options.admin.as({ kind: 'api-key', name: req.apiKey.name ?? req.apiKey.id })
          : req.session
            ? options.admin.as({ kind: 'user', name: req.session.user })
            : options.admin;
        const query = req.query as RouteRequest['query'];
        const form = route.body === 'archive' && isForm(req.headers['content-type']) ? formFile(req.body as Buffer, req.headers['content-type']!) : undefined;
        const result = await route.handler(admin, {
          params: req.params as Record<string, string>,
          body: form ? form.data : req.body,
          // The form's file name names the upload unless ?filename= does (the reference's getOriginalFilename).
          query: form ? { ...query, filename: query.filename ?? form.filename } : query,
        });
        const status = route.status ?? 200;
        if (status === 204 || status === 202) return reply.code(status).send();
        if (route.produces) {
          const file = result as FileDownload;
          // Names come from identifiers and checked backup names; only plain characters reach the header.
          const filename = file.filename.replace(/[^A-Za-z0-9._-]/g, '_');
          return reply.code(status).header('content-type', file.contentType ?? route.produces).header('content-disposition', `attachment; filename="${filename}"`).send(file.data);
        }
        return reply.code(status).send(result);
      },
    });
  }
}

const isForm = (contentType: string | undefined) => /^multipart\/form-data\b/i.test(contentType ?? '');

/**
 * The `file` field of a multipart/form-data body (the reference's BackupArchive) and the file name
 * the browser or curl -F gave it.
 * @throws InvalidRequestBody when the body is not such a form
 */
function formFile(body: Buffer, contentType: string): { data: Buffer; filename?: string } {
  const invalid = (reason: string) => new XrdError('InvalidRequestBody', { reason });
  const boundary = boundaryOf(contentType);
  if (!boundary) throw invalid('multipart/form-data without a boundary');
  let parts;
  try {
    parts = parseMultipart(body, boundary, { maxParts: 8, maxHeaderBytes: 8192 });
  } catch (err) {
    throw invalid(`not a multipart/form-data body: ${(err as Error).message}`);
  }
  for (const part of parts) {
    const disposition = part.headers.get('content-disposition') ?? '';
    if (!/^form-data\b/i.test(disposition) || /\bname="?([^";]+)"?/i.exec(disposition)?.[1] !== 'file') continue;
    return { data: part.body, filename: /\bfilename="([^"]*)"/i.exec(disposition)?.[1] ?? /\bfilename=([^";\s]+)/i.exec(disposition)?.[1] };
  }
  throw invalid('the form has no "file" field');
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
    const parameters = [
      ...[...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      ...Object.entries(route.query ?? {}).map(([name, schema]) => ({ name, in: 'query', required: route.requiredQuery?.includes(name) ?? false, schema })),
    ];
    const binary = { schema: { type: 'string', format: 'binary' } };
    const requestBody =
      route.body === 'archive'
        ? { required: true, content: { 'application/octet-stream': binary, 'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } } } } } }
        : route.body === 'certificate'
        ? { required: true, content: { 'application/octet-stream': binary } }
        : route.body
          ? { required: true, content: { 'application/json': { schema: route.body } } }
          : undefined;
    const status = route.status ?? 200;
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = {
      summary: route.summary,
      'x-roles': route.roles,
      ...(route.sessionOnly ? { security: [{ Session: [] }] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses: {
        [status]:
          status === 204 || status === 202
            ? { description: status === 202 ? 'Sent on' : 'Done' }
            : route.produces
              ? { description: 'The file, as an attachment', content: { [route.produces]: binary } }
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
