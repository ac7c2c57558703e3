/**
 * The administration web interface (ui/, docs/admin-ui.md) served by the admin API process on its
 * own port, beside `/api/v1`, and the security headers of every answer on that port.
 *
 * The built files (`npm run build:ui` → ui/dist) are read into memory once when the server starts
 * and served from that map, rather than with @fastify/static: they are a handful of files fixed at
 * build time, and a lookup in a map means no part of a request's path ever reaches the file system
 * (no traversal to guard against, no symlinks to follow). Paths that are not a file answer
 * index.html, so the page's own routes (/clients, /login) survive a reload; only `/assets/` (the
 * hashed bundles) answers 404 for a missing file, so a stale page fails loudly instead of running
 * HTML as script. Everything under `/api/` stays the API's: unknown API paths keep answering
 * RouteNotFound to authenticated callers only (api-security.ts).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { XrdError } from '../platform/errors.ts';
import { ROLES } from '../serverconf/api-keys.ts';

/** Where `npm run build:ui` writes the interface (vite.config.ts's outDir). */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../ui/dist/', import.meta.url));

/**
 * The page's policy: its own scripts, styles, images and fonts only (Vite emits no inline script or
 * style; Vue sets styles through the CSSOM, which CSP does not govern), fetches to its own origin
 * only, no plugins, no <base>, forms post to itself, and no framing (clickjacking).
 */
export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** JSON answers load nothing and are never a page: the strictest policy. */
export const API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'";

const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

interface UiFile {
  readonly body: Buffer;
  readonly type: string;
  /** Vite names the bundles by their content hash, so they never change under their name. */
  readonly immutable: boolean;
}

/** The built files by URL path (`/index.html`, `/assets/index-3f2a.js`); undefined when there is no build. */
export function loadUiFiles(dir: string): Map<string, UiFile> | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const files = new Map<string, UiFile>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        const url = '/' + relative(dir, path).split(sep).join('/');
        files.set(url, { body: readFileSync(path), type: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream', immutable: url.startsWith('/assets/') });
      }
    }
  };
  walk(dir);
  return files;
}

/**
 * Registers the interface on `app`: GET `/` and every path outside `/api/`, public (the page holds
 * nothing secret; what it shows comes from the API behind login), and the security headers on
 * every answer. Without a build, the interface's paths answer AdminUiNotBuilt.
 */
export function registerWebUi(app: FastifyInstance, dir: string = DEFAULT_UI_DIR): void {
  const files = loadUiFiles(dir);

  app.addHook('onSend', async (request, reply, payload) => {
    reply.headers(COMMON_HEADERS);
    reply.header('content-security-policy', request.routeOptions.config.ui === true ? UI_CONTENT_SECURITY_POLICY : API_CONTENT_SECURITY_POLICY);
    return payload;
  });

  const send = (reply: FastifyReply, file: UiFile): FastifyReply =>
    reply
      .code(200)
      .type(file.type)
      .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(file.body);

  app.get('/*', { config: { public: true, ui: true } }, async (request, reply) => {
    if (!files) throw new XrdError('AdminUiNotBuilt', { dir });
    const path = decodeURIComponentOrNull(request.url.split('?')[0]!);
    const file = path === null ? undefined : files.get(path);
    if (file) return send(reply, file);
    if (path === null || path.startsWith('/assets/')) return reply.callNotFound();
    return send(reply, files.get('/index.html')!);
  });

  // Without this, `/*` would catch unknown API paths too and answer them with the page, unauthenticated.
  app.all('/api/*', { config: { roles: ROLES } }, async (_request, reply) => reply.callNotFound());
}

function decodeURIComponentOrNull(path: string): string | null {
  try {
    return decodeURIComponent(path);
  } catch {
    return null;
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route serves the web interface (its Content-Security-Policy rather than the API's). */
    ui?: boolean;
  }
}
