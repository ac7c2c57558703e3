/**
 * What getOpenAPI hands out (the reference's Openapi3Anonymiser): the provider's OpenAPI 3
 * description with the origin taken out of every `servers[].url` that has no variables — only the
 * path is kept, as java.net.URI.getPath gives it — so callers see the API, not where the
 * provider's information system listens. A description that says it is not OpenAPI 3 is refused.
 *
 * YAML is read and written with `yaml` (eemeli/yaml, no dependencies, YAML 1.2 core schema) rather
 * than a parser of our own: a description is the provider's, not an outsider's, but it still passes
 * through with alias expansion bounded (`maxAliasCount`) and any failure a coded InternalError.
 * Written as the reference's Jackson YAMLFactory writes: a `---` line, strings in double quotes,
 * keys plain.
 */
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
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
 * @throws InternalError (not JSON or YAML, not OpenAPI 3, a server URL that is no URI)
 */
export function anonymiseOpenapi(document: Buffer, filetype: OpenapiFiletype, descriptionUrl: string): Buffer {
  const failed = () => new XrdError('InternalError', { reason: `Failed overwriting origin URL for the openapi servers for ${descriptionUrl}` });
  const text = document.toString('utf8');
  let tree: unknown;
  try {
    tree = filetype === 'JSON' ? JSON.parse(text) : parseYaml(text, YAML_READ);
  } catch {
    throw failed();
  }
  anonymise(tree);
  try {
    return Buffer.from(filetype === 'JSON' ? JSON.stringify(tree) : `---\n${stringifyYaml(tree, YAML_WRITE)}`, 'utf8');
  } catch {
    // Nesting deeper than the stack allows (the parsers take it, the writers recurse).
    throw failed();
  }
}

/** Aliases expand to at most 100 nodes each (a "billion laughs" document is refused); duplicate keys refused. */
const YAML_READ = { maxAliasCount: 100, uniqueKeys: true, prettyErrors: false } as const;
/** Jackson's YAMLFactory defaults: strings double-quoted, keys plain, null as `null`; no line folding. */
const YAML_WRITE = { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', nullStr: 'null', lineWidth: 0 } as const;

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
