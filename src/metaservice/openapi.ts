/**
 * What getOpenAPI hands out (the reference's Openapi3Anonymiser): the provider's OpenAPI 3
 * description with the origin taken out of every `servers[].url` that has no variables — only the
 * path is kept, as java.net.URI.getPath gives it — so callers see the API, not where the
 * provider's information system listens. A description that says it is not OpenAPI 3 is refused.
 *
 * JSON only: YAML descriptions need a YAML parser and writer, and none is among our dependencies
 * yet (docs/metaservices.md); a YAML description is refused rather than handed out unchanged with
 * its origins in it.
 */
import { XrdError } from '../platform/errors.ts';

export type OpenapiFiletype = 'JSON' | 'YAML';

/**
 * JSON when the Content-Type says `application/json` (anywhere in it), YAML when it is exactly
 * `application/x-yaml`, else by the URL's path ending in `.json` (RestMetadataServiceHandlerImpl.getFileType).
 */
export function openapiFiletype(contentTypes: readonly string[], url: string): OpenapiFiletype {
  if (contentTypes.some((t) => t.includes('application/json'))) return 'JSON';
  if (contentTypes.some((t) => t === 'application/x-yaml')) return 'YAML';
  return new URL(url).pathname.endsWith('.json') ? 'JSON' : 'YAML';
}

/**
 * @throws InternalError (not JSON, a YAML description, not OpenAPI 3, a server URL that is no URI)
 */
export function anonymiseOpenapi(document: Buffer, filetype: OpenapiFiletype, descriptionUrl: string): Buffer {
  if (filetype === 'YAML') throw new XrdError('InternalError', { reason: `Failed overwriting origin URL for the openapi servers for ${descriptionUrl}: YAML descriptions are not supported yet` });
  const failed = () => new XrdError('InternalError', { reason: `Failed overwriting origin URL for the openapi servers for ${descriptionUrl}` });
  let tree: unknown;
  try {
    tree = JSON.parse(document.toString('utf8'));
  } catch {
    throw failed();
  }
  anonymise(tree);
  try {
    return Buffer.from(JSON.stringify(tree), 'utf8');
  } catch {
    // Nesting deeper than the stack allows (JSON.parse takes it, JSON.stringify recurses).
    throw failed();
  }
}

function anonymise(tree: unknown): void {
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) return;
  const doc = tree as Record<string, unknown>;
  const version = doc.openapi;
  // Jackson's JsonNode.toString: a text node in quotes, so only a string "3.…" passes.
  if (version !== undefined && !(typeof version === 'string' && version.startsWith('3.'))) {
    throw new XrdError('InternalError', { reason: `Incompatible openapi version. Openapi version 3 or greater expected. Given openapi document is of version ${JSON.stringify(version)}` });
  }
  const servers = doc.servers;
  if (!Array.isArray(servers)) return;
  for (const server of servers) {
    if (typeof server !== 'object' || server === null || Array.isArray(server)) continue;
    const url = (server as Record<string, unknown>).url;
    if (typeof url === 'string' && !(url.includes('{') && url.includes('}'))) (server as Record<string, unknown>).url = uriPath(url);
  }
}

// RFC 3986 appendix B, and the characters java.net.URI accepts (RFC 2396 with its escapes).
const URI_PARTS = /^(?:([^:/?#]+):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?[^#]*)?(?:#.*)?$/;
const URI_CHARS = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#[\]]|%[0-9A-Fa-f]{2})*$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** java.net.URI(url).getPath(): null for an opaque URI (`mailto:x`). @throws InternalError "Can't parse url string" */
function uriPath(url: string): string | null {
  const parts = URI_PARTS.exec(url);
  if (!parts || !URI_CHARS.test(url) || (parts[1] !== undefined && !SCHEME.test(parts[1]))) {
    throw new XrdError('InternalError', { reason: `Can't parse url string: ${url}` });
  }
  const [, scheme, authority, path] = parts;
  if (scheme !== undefined && authority === undefined && !path!.startsWith('/')) return null;
  return decodeURIComponentSafe(path!);
}

/** getPath() is the decoded path. */
function decodeURIComponentSafe(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
