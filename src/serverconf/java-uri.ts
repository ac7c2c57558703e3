/**
 * How the reference's Java code reads URIs, where our answer must be the same as its: the server
 * proxy's request path (UriUtils.decodeAndNormalize, then java.net.URI) and an OpenAPI description's
 * relative server URL (java.net.URI.resolve). WHATWG URL, which Node offers, differs in each:
 * it keeps "%2F", decodes once, keeps repeated slashes, and resolves "" to the document itself.
 */
import { XrdError } from '../platform/errors.ts';

/**
 * The reference's UriUtils.decodeAndNormalize: percent-decode (only the characters a URI path may hold
 * are accepted; `%2D` is kept encoded, `%2F` becomes `/`), read the result as a URI reference
 * (`?` and `#` end the path, a leading `//` starts an authority), remove dot segments and repeated
 * slashes, and decode what is left once more.
 * @throws InvalidRequest where the reference throws (and answers an internal error): a character or
 *   escape a URI path cannot hold, before or after the first decoding
 */
export function normalizeRequestPath(raw: string): string {
  const decoded = percentDecodePath(raw);
  return decodeEscapes(javaNormalize(javaUriPath(decoded)));
}

function invalidPath(reason: string): XrdError {
  return new XrdError('InvalidRequest', { reason: `Invalid request path: ${reason}` });
}

const SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

function hex(ch: string | undefined): number {
  return ch !== undefined && /^[0-9A-Fa-f]$/.test(ch) ? parseInt(ch, 16) : -1;
}

/** UriUtils.uriPathPercentDecode(src, true). */
function percentDecodePath(src: string): string {
  if (!src.includes('%')) {
    for (const ch of src) if (ch !== '/' && !SAFE.test(ch)) throw invalidPath('invalid character in path segment');
    return src;
  }
  const bytes: number[] = [];
  for (let i = 0; i < src.length; ) {
    const ch = src[i]!;
    if (ch === '%') {
      if (i + 2 >= src.length) throw invalidPath('incomplete percent encoding');
      const d1 = hex(src[i + 1]);
      const d2 = hex(src[i + 2]);
      if (d1 === -1 || d2 === -1) throw invalidPath('invalid percent encoding');
      // The reference keeps "%2D" (it meant %2F) encoded; the URI's getPath decodes it later anyway.
      if (d1 === 0x2 && d2 === 0xd) bytes.push(0x25, 0x32, 0x44);
      else bytes.push((d1 << 4) + d2);
      i += 3;
    } else if (ch === '/' || SAFE.test(ch)) {
      bytes.push(ch.charCodeAt(0));
      i++;
    } else {
      throw invalidPath('invalid character in path segment');
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

// java.net.URI's character classes for a path (pchar, ";" and "/") and for a query or fragment
// (reserved, unreserved and escaped). "Other" characters (non-ASCII, not control, not space) are allowed.
const PATH_CHAR = /[A-Za-z0-9\-_.!~*'():@&=+$,;/]/;
const URIC_CHAR = /[A-Za-z0-9\-_.!~*'();/?:@&=+$,[\]]/;

function javaAllowed(s: string, allowed: RegExp): boolean {
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '%') {
      if (hex(s[i + 1]) === -1 || hex(s[i + 2]) === -1) return false;
      i += 2;
    } else if (ch.charCodeAt(0) < 0x80 ? !allowed.test(ch) : /[\p{Cc}\p{Z}]/u.test(ch)) {
      return false;
    }
  }
  return true;
}

/** The path of `URI.create(s)` for the strings decoding can give; what it refuses is refused here. */
function javaUriPath(s: string): string {
  const pathEnd = s.search(/[?#]/);
  let path = pathEnd === -1 ? s : s.slice(0, pathEnd);
  // What follows the path: a query (which may hold "?") and a fragment, each of URI characters.
  const rest = pathEnd === -1 ? [] : s.slice(pathEnd + 1).split('#');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(path)) throw invalidPath('the decoded path reads as an absolute URI');
  if (path.startsWith('//')) {
    const slash = path.indexOf('/', 2);
    path = slash === -1 ? '' : path.slice(slash);
  }
  const fragmentParts = s[pathEnd] === '#' ? 1 : 2;
  if (!javaAllowed(path, PATH_CHAR) || rest.length > fragmentParts || !rest.every((part) => javaAllowed(part, URIC_CHAR))) {
    throw invalidPath('the decoded path is not a valid URI');
  }
  return path;
}

/**
 * java.net.URI.normalize on a path: repeated slashes and "." segments go, a ".." takes the segment
 * before it with it (a leading ".." stays, even in an absolute path), and each segment keeps the
 * slash that followed it.
 */
function javaNormalize(path: string): string {
  const parts = path.split('/').filter((seg) => seg !== '');
  const segments = parts.map((seg, i) => ({ seg, slash: i < parts.length - 1 || path.endsWith('/') }));
  const kept: typeof segments = [];
  for (const s of segments) {
    if (s.seg === '.') continue;
    if (s.seg === '..' && kept.length > 0 && kept.at(-1)!.seg !== '..') kept.pop();
    else kept.push(s);
  }
  const absolute = path.startsWith('/');
  // A relative path whose first segment holds ":" would read as a scheme: Java puts "./" before it.
  if (!absolute && kept[0]?.seg.includes(':')) kept.unshift({ seg: '.', slash: true });
  return (absolute ? '/' : '') + kept.map((s) => s.seg + (s.slash ? '/' : '')).join('');
}

/** URI.getPath's decoding: %XX sequences as UTF-8. */
function decodeEscapes(s: string): string {
  if (!s.includes('%')) return s;
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'));
}

/**
 * java.net.URI.resolve of `ref` against an absolute http(s) `base`: an absolute `ref` as it is; an
 * empty one gives the base's directory (RFC 2396, not 3986); otherwise the merged, normalised path
 * with the reference's own query and fragment. The authority is kept as written.
 */
export function resolveUri(base: string, ref: string): string {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(ref)) return ref;
  const b = /^([A-Za-z][A-Za-z0-9+.-]*:)(\/\/[^/?#]*)?([^?#]*)/.exec(base);
  if (!b) return ref;
  const [, scheme, authority = '', basePath] = b;
  if (ref.startsWith('//')) return scheme + ref;
  const end = ref.search(/[?#]/);
  const refPath = end === -1 ? ref : ref.slice(0, end);
  const tail = end === -1 ? '' : ref.slice(end);
  const merged = refPath.startsWith('/') ? refPath : basePath!.slice(0, basePath!.lastIndexOf('/') + 1) + refPath;
  return scheme + authority + javaNormalize(merged || '/') + tail;
}
