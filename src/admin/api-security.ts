/**
 * The admin REST API's security layer, in the order a request meets it: client address allow-list,
 * rate limit per client address and for all clients together, API key
 * (`Authorization: X-Road-ApiKey token=<key>`) or else a login session's cookie (sessions.ts, with
 * the session's CSRF token in `X-XSRF-TOKEN` on every method but GET, HEAD and OPTIONS), the
 * route's roles (and a session, not a key, where the route is session-only: API key management).
 * Then fastify's body limit, JSON
 * parsing and schema validation, and the one error body shape for every refusal and failure:
 * `{ status, error: { code, message, metadata? } }`.
 * docs/admin-api.md "Security" is the user's view of the same; call `registerApiSecurity` before
 * registering routes, and leave the error and not-found handlers to it.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyTypeProvider, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerBase } from 'fastify';
import { XrdError } from '../platform/errors.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { API_KEY_SCHEME, authenticateHeader, isRole, requireRole, ROLES, type ApiKeyStore, type AuthenticatedKey, type Role } from '../serverconf/api-keys.ts';
import { cookieValue, CSRF_HEADER, SESSION_COOKIE } from './api-session.ts';
import { Sessions, type SessionUser } from './sessions.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles any one of which lets a key call the route; a route without roles is refused to every key. */
    roles?: readonly Role[];
    /** Callable without a key (the OpenAPI document); the address check and the rate limit still apply. */
    public?: boolean;
    /** Callable in a login session only, never with an API key (API key management, as the reference). */
    sessionOnly?: boolean;
  }
  interface FastifyRequest {
    /** The key that authenticated the request (undefined on public routes and refused requests). */
    apiKey?: AuthenticatedKey;
    /** The login session that authenticated the request, when no key did. */
    session?: SessionUser;
  }
}

/** Body limit of ordinary (JSON) requests: the reference's `request-size-limit-regular`, 50 KB. */
export const API_BODY_LIMIT_BYTES = 50 * 1024;
/** Body limit for routes that take a file (certificate, anchor): the reference's `request-size-limit-binary-upload`, 10 MB. */
export const API_UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024;
/** Loopback only: 127.0.0.0/8 and ::1 (IPv4-mapped ::ffff:127.x match the IPv4 range). */
export const DEFAULT_ALLOWED_ADDRESSES: readonly string[] = ['127.0.0.0/8', '::1'];
/**
 * The reference's `rate-limit-requests-per-second` and `-per-minute`, per client address; and a
 * budget for all clients together, five addresses' worth, since the loopback range alone gives a
 * local caller 16 million addresses.
 */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { perSecond: 20, perMinute: 600, global: { perSecond: 100, perMinute: 3000 } };

export interface RateLimits {
  readonly perSecond: number;
  readonly perMinute: number;
}

/**
 * Limits per client address, and under `global` for all clients together (five times the
 * per-address limits when not given); `now` (milliseconds) lets tests move time instead of sleeping.
 */
export type RateLimitOptions = RateLimits & { readonly global?: RateLimits; readonly now?: () => number };

/** The body of every error answer; `code` is a code of src/platform/errors.ts (docs/errors.md). */
export interface ApiErrorBody {
  readonly status: number;
  readonly error: {
    readonly code: string;
    readonly message: string;
    /** Details a caller can act on, as the reference's `metadata`: the schema violations of a 400. */
    readonly metadata?: string[];
    /** The reference's error code for the same refusal, where it has one. */
    readonly reference_code?: string;
  };
  /** What warnings_detected found (the reference's `warnings`). */
  readonly warnings?: { code: string; metadata: string[] }[];
}

export interface ApiSecurityOptions {
  readonly keys: ApiKeyStore;
  /** Addresses and CIDR ranges (IPv4 and IPv6) allowed to call; default DEFAULT_ALLOWED_ADDRESSES. */
  readonly allowedAddresses?: readonly string[];
  /** Default DEFAULT_RATE_LIMIT. */
  readonly rateLimit?: RateLimitOptions;
  readonly logger?: Logger;
  /** Login sessions; without them only API keys authenticate. */
  readonly sessions?: Sessions;
}

/** Methods that change nothing, so a session needs no CSRF token for them. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The two token buckets of one budget: one refilled over a second, one over a minute. */
interface Buckets {
  second: number;
  minute: number;
  at: number;
}

/**
 * Two token buckets per client — one refilled over a second, one over a minute — so bursts up to
 * `perSecond` pass while the sustained rate stays under `perMinute`, and the same two for all
 * clients together. A request takes a token from its client's buckets and from the global ones, or
 * from neither. Clients are kept in LRU order and the least recently seen are forgotten past
 * `maxClients` (the reference's rate-limit cache).
 */
export class RateLimiter {
  private readonly clients = new Map<string, Buckets>();
  private readonly global: RateLimits;
  private all: Buckets | undefined;

  constructor(
    private readonly limits: RateLimits & { readonly global?: RateLimits },
    private readonly now: () => number = () => performance.now(),
    private readonly maxClients = 10_000,
  ) {
    this.global = limits.global ?? { perSecond: 5 * limits.perSecond, perMinute: 5 * limits.perMinute };
    for (const l of [limits, this.global]) {
      if (!(l.perSecond >= 1 && l.perMinute >= 1)) throw new XrdError('InvalidConfiguration', { reason: 'rate limits must be at least 1 request' });
    }
  }

  /**
   * Counts one request; refused with the whole seconds after which one would be allowed again, and
   * `overall` when it is the budget of all clients together that is spent.
   */
  take(client: string): { allowed: true } | { allowed: false; retryAfterSeconds: number; overall?: true } {
    const now = this.now();
    const own = refill(this.clients.get(client), this.limits, now);
    this.clients.delete(client);
    this.clients.set(client, own);
    if (this.clients.size > this.maxClients) this.clients.delete(this.clients.keys().next().value!);
    const all = (this.all = refill(this.all, this.global, now));
    if (!hasToken(own)) return { allowed: false, retryAfterSeconds: waitSeconds(own, this.limits) };
    if (!hasToken(all)) return { allowed: false, retryAfterSeconds: waitSeconds(all, this.global), overall: true };
    for (const b of [own, all]) {
      b.second -= 1;
      b.minute -= 1;
    }
    return { allowed: true };
  }
}

function refill(prev: Buckets | undefined, limits: RateLimits, now: number): Buckets {
  const elapsed = prev ? Math.max(0, now - prev.at) : 0;
  return {
    second: Math.min(limits.perSecond, (prev?.second ?? limits.perSecond) + (elapsed * limits.perSecond) / 1000),
    minute: Math.min(limits.perMinute, (prev?.minute ?? limits.perMinute) + (elapsed * limits.perMinute) / 60_000),
    at: now,
  };
}

function hasToken(b: Buckets): boolean {
  return b.second >= 1 && b.minute >= 1;
}

function waitSeconds(b: Buckets, limits: RateLimits): number {
  const waitMs = Math.max(b.second >= 1 ? 0 : ((1 - b.second) * 1000) / limits.perSecond, b.minute >= 1 ? 0 : ((1 - b.minute) * 60_000) / limits.perMinute);
  return Math.max(1, Math.ceil(waitMs / 1000));
}

/** A predicate over client addresses from a list of addresses and CIDR ranges. */
export function addressFilter(allowed: readonly string[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of allowed) {
    const [net, bits, extra] = entry.trim().split('/');
    const type = isIPv4(net ?? '') ? 'ipv4' : isIPv6(net ?? '') ? 'ipv6' : undefined;
    const prefix = bits === undefined ? undefined : Number(bits);
    if (!type || extra !== undefined || (prefix !== undefined && !(Number.isInteger(prefix) && prefix >= 0 && prefix <= (type === 'ipv4' ? 32 : 128)))) {
      throw new XrdError('InvalidConfiguration', { reason: `not an address or CIDR range: ${entry}` });
    }
    if (prefix === undefined) list.addAddress(net!, type);
    else list.addSubnet(net!, prefix, type);
  }
  // BlockList matches IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against the IPv4 entries.
  return (address) => address !== undefined && (isIPv4(address) ? list.check(address, 'ipv4') : isIPv6(address) && list.check(address, 'ipv6'));
}

/**
 * The error body for an XrdError; what every refusal of this layer and every route failure sends.
 * Our code and message, with the reference's own code beside them where the check is one of its
 * admin service's (`reference_code`, e.g. service_already_exists) and its warnings when the
 * refusal is warnings_detected, so clients written for the reference find what they look for.
 */
export function errorBody(err: XrdError, metadata?: string[]): ApiErrorBody {
  const { referenceCode, warningsJson } = err.details;
  return {
    status: err.httpStatus,
    error: { code: err.fullCode, message: err.message, ...(metadata?.length ? { metadata } : {}), ...(typeof referenceCode === 'string' ? { reference_code: referenceCode } : {}) },
    ...(typeof warningsJson === 'string' ? { warnings: JSON.parse(warningsJson) as ApiErrorBody['warnings'] } : {}),
  };
}

/** Over HTTP/1.1 or HTTPS alike (fastify's instance type differs by server). */
export function registerApiSecurity<S extends RawServerBase, T extends FastifyTypeProvider>(
  server: FastifyInstance<S, RawRequestDefaultExpression<S>, RawReplyDefaultExpression<S>, FastifyBaseLogger, T>,
  options: ApiSecurityOptions,
): void {
  // The hooks use nothing that differs between the HTTP/1.1 and HTTPS request types.
  const app = server as unknown as FastifyInstance;
  const log = options.logger ?? createLogger('admin-api');
  const allowed = addressFilter(options.allowedAddresses ?? DEFAULT_ALLOWED_ADDRESSES);
  const limiter = new RateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT, options.rateLimit?.now);
  const codes = new WeakMap<FastifyRequest, string>();

  const refuse = (request: FastifyRequest, reply: FastifyReply, err: XrdError, headers: Record<string, string> = {}, metadata?: string[]): FastifyReply => {
    codes.set(request, err.fullCode);
    return reply.code(err.httpStatus).headers(headers).type('application/json; charset=utf-8').send(errorBody(err, metadata));
  };

  app.decorateRequest('apiKey', undefined);
  app.decorateRequest('session', undefined);

  // A typo in a route's roles would otherwise only show as every call being refused.
  app.addHook('onRoute', (route) => {
    const roles: unknown = route.config?.roles;
    if (roles === undefined) return;
    const bad = Array.isArray(roles) ? roles.filter((r) => typeof r !== 'string' || !isRole(r)) : [roles];
    if (bad.length > 0) throw new XrdError('InvalidConfiguration', { reason: `route ${route.method} ${route.url} names unknown roles ${bad.join(', ')} (roles: ${ROLES.join(', ')})` });
  });

  app.addHook('onRequest', async (request, reply) => {
    const address = request.ip;
    if (!allowed(address)) return refuse(request, reply, new XrdError('AddressNotAllowed', { address }));

    const rate = limiter.take(address);
    if (!rate.allowed) {
      const err = rate.overall ? new XrdError('RateLimitedOverall', { retryAfter: rate.retryAfterSeconds }) : new XrdError('RateLimited', { address, retryAfter: rate.retryAfterSeconds });
      return refuse(request, reply, err, { 'retry-after': String(rate.retryAfterSeconds) });
    }

    const config = request.routeOptions.config;
    if (!request.is404 && config.public === true) return;

    // A key when the request presents one (automation, unchanged by sessions), else a session cookie.
    const sessionId = options.sessions && request.headers.authorization === undefined ? cookieValue(request.headers.cookie, SESSION_COOKIE) : undefined;
    let caller: AuthenticatedKey | { user: string; roles: Role[] };
    try {
      if (sessionId !== undefined) {
        const session = options.sessions!.authenticate(sessionId);
        const presented = request.headers[CSRF_HEADER];
        if (!SAFE_METHODS.has(request.method) && !Sessions.csrfMatches(session, typeof presented === 'string' ? presented : undefined)) {
          throw new XrdError('CsrfTokenInvalid');
        }
        request.session = session;
        caller = { user: session.user, roles: session.roles };
      } else {
        caller = request.apiKey = authenticateHeader(options.keys, request.headers.authorization);
      }
    } catch (err) {
      const code = (err as XrdError).code;
      return refuse(request, reply, err as XrdError, code === 'ApiKeyMissing' || code === 'ApiKeyInvalid' ? { 'www-authenticate': API_KEY_SCHEME } : {});
    }

    // Unknown routes answer 404 only to a caller who is authenticated, so the route list cannot be probed without it.
    if (request.is404) return;
    try {
      requireRole(caller, config.roles ?? [], `${request.method} ${request.routeOptions.url}`);
      if (config.sessionOnly && !request.session) throw new XrdError('SessionRequired', { route: `${request.method} ${request.routeOptions.url}` });
    } catch (err) {
      return refuse(request, reply, err as XrdError);
    }
  });

  app.setNotFoundHandler((request, reply) => {
    refuse(request, reply, new XrdError('RouteNotFound', { method: request.method, url: request.url.split('?')[0] }));
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { err, metadata, errorId } = classify(error, request);
    if (errorId) log.error({ err: error, errorId, route: request.routeOptions.url }, 'admin API request failed');
    else if (err.httpStatus >= 500) log.error({ faultCode: err.faultCode, message: err.message, route: request.routeOptions.url }, 'admin API request failed');
    refuse(request, reply, err, {}, metadata);
  });

  // A route that answers an error status without a body still answers in the one shape.
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode < 400 || (payload !== undefined && payload !== null && payload !== '')) return payload;
    const err =
      reply.statusCode === 415
        ? new XrdError('UnsupportedMediaType', { contentType: request.headers['content-type'] ?? 'none' })
        : new XrdError(reply.statusCode >= 500 ? 'InternalError' : 'InvalidRequest', { reason: STATUS_CODES[reply.statusCode] ?? String(reply.statusCode) });
    codes.set(request, err.fullCode);
    reply.type('application/json; charset=utf-8');
    return JSON.stringify({ ...errorBody(err), status: reply.statusCode });
  });

  app.addHook('onResponse', async (request, reply) => {
    log.info(
      {
        keyId: request.apiKey?.id,
        user: request.session?.user,
        method: request.method,
        route: request.routeOptions.url ?? null,
        ...(request.is404 ? { url: request.url.split('?')[0] } : {}),
        status: reply.statusCode,
        code: codes.get(request),
        client: request.ip,
        ms: Math.round(reply.elapsedTime),
      },
      'admin API request',
    );
  });
}

/** Turns whatever a route or fastify threw into a coded error; unknown errors only by an error id. */
function classify(error: FastifyError, request: FastifyRequest): { err: XrdError; metadata?: string[]; errorId?: string } {
  if (error instanceof XrdError) return { err: error };
  if (error.validation) {
    const metadata = error.validation.map((v) => `${error.validationContext ?? 'request'}${v.instancePath || ''} ${v.message ?? 'is not valid'}`.trim());
    const reason = metadata.join('; ');
    return { err: error.validationContext === 'body' ? new XrdError('InvalidRequestBody', { reason }) : new XrdError('InvalidRequest', { reason }), metadata };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { err: new XrdError('RequestTooLarge', { limit: request.routeOptions.bodyLimit }) };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { err: new XrdError('UnsupportedMediaType', { contentType: request.headers['content-type'] ?? 'none' }) };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { err: new XrdError('InvalidRequestBody', { reason: error.message }) };
  }
  // Other client errors fastify raises (its messages name the request's fault, not our internals).
  if (error.code?.startsWith('FST_') && error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return { err: new XrdError('InvalidRequest', { reason: error.message }) };
  }
  const errorId = randomUUID();
  return { err: new XrdError('InternalError', { reason: `error id ${errorId}` }, { cause: error }), errorId };
}
