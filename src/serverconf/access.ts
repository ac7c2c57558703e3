/**
 * The server proxy's access decision, as the reference makes it (ServerConfImpl.isQueryAllowed and
 * ServerMessageProcessor / ServerRestMessageProcessor.verifyAccess): pure functions over model.ts.
 *
 * A caller may call one of a provider's services when one of the provider's access rights to that
 * service code names the caller and its endpoint matches the request:
 *  - subjects: the caller's own id (exactly: a member's right does not cover its subsystems, nor a
 *    subsystem's its member), a global group `GLOBALGROUP:INST/code` that lists the caller exactly
 *    (answered by the caller's global configuration), a local group `LOCALGROUP:code` of the provider
 *    that lists the caller exactly;
 *  - SOAP: no method and no path, so only a right to the base endpoint (`*` `**`) matches;
 *  - REST: the method matches when the endpoint's is `*` or equal ignoring case; the path when the
 *    endpoint's is `**` or its glob (pathGlobMatches) matches the request path after the reference's
 *    decoding and normalisation (normalizeRequestPath). A path that still holds `..` is refused.
 *
 * The path handling copies the reference's quirks on purpose, since a right must mean here what it
 * means on a reference server (docs/services.md "How access is decided"): `*` in a glob is possessive
 * (`/*.json` never matches), an unescaped `?` makes the character before it optional, `%2F` decodes to
 * a separator, percent escapes are decoded twice.
 */
import { XrdError } from '../platform/errors.ts';
import { parseClientId, sameClientId, type ClientId } from '../protocol/identifiers.ts';
import { javaServiceId, type ServiceId } from '../protocol/soap-message.ts';
import { normalizeRequestPath } from './java-uri.ts';
import { ANY_METHOD, ANY_PATH, type AccessRightConf, type LocalClient, type ServiceConf, type ServiceDescriptionConf } from './model.ts';

export type AccessSubjectRef =
  | { readonly kind: 'client'; readonly id: ClientId }
  | { readonly kind: 'globalGroup'; readonly instance: string; readonly code: string }
  | { readonly kind: 'localGroup'; readonly code: string };

/** Whether the caller is listed in a global group of its global configuration (the reference's isSubjectInGlobalGroup). */
export type GlobalGroupMembership = (caller: ClientId, instance: string, groupCode: string) => boolean;

/**
 * A REST call's method and its service path as the reference's RestRequest takes it: `/` and what
 * follows the service code in the request path, still percent-encoded, without the query; '' when nothing follows.
 */
export interface RestCall {
  readonly method: string;
  readonly path: string;
}

const GLOBAL_GROUP = 'GLOBALGROUP:';
const LOCAL_GROUP = 'LOCALGROUP:';

/** @throws InvalidIdentifier */
export function parseAccessSubject(subject: string): AccessSubjectRef {
  if (subject.startsWith(GLOBAL_GROUP)) {
    const rest = subject.slice(GLOBAL_GROUP.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1 || rest.indexOf('/', slash + 1) !== -1) {
      throw new XrdError('InvalidIdentifier', { value: subject, reason: 'expected GLOBALGROUP:INSTANCE/CODE' });
    }
    return { kind: 'globalGroup', instance: rest.slice(0, slash), code: rest.slice(slash + 1) };
  }
  if (subject.startsWith(LOCAL_GROUP)) {
    const code = subject.slice(LOCAL_GROUP.length);
    if (code === '' || code.includes('/')) throw new XrdError('InvalidIdentifier', { value: subject, reason: 'expected LOCALGROUP:CODE' });
    return { kind: 'localGroup', code };
  }
  return { kind: 'client', id: parseClientId(subject) };
}

/** The reference's subjectMatches: identity, global group or local group of the provider, each exact. */
function subjectMatches(provider: LocalClient, subject: string, caller: ClientId, inGlobalGroup: GlobalGroupMembership): boolean {
  const ref = parseAccessSubject(subject);
  switch (ref.kind) {
    case 'client':
      return sameClientId(ref.id, caller);
    case 'globalGroup':
      return inGlobalGroup(caller, ref.instance, ref.code);
    case 'localGroup':
      return provider.localGroups.some((g) => g.code === ref.code && g.members.some((m) => sameClientId(m.id, caller)));
  }
}

/**
 * The reference's BaseEndpoint.matches. `method` and `path` are undefined for SOAP, which then
 * matches only the base endpoint; `path` must already be normalised (normalizeRequestPath).
 * (The reference throws on a SOAP call checked against a right to a narrower endpoint of the same
 * service code; that right simply does not match here.)
 */
export function endpointMatches(endpoint: { readonly method: string; readonly path: string }, method: string | undefined, path: string | undefined): boolean {
  const methodOk = endpoint.method === ANY_METHOD || (method !== undefined && endpoint.method.toUpperCase() === method.toUpperCase());
  return methodOk && (endpoint.path === ANY_PATH || (path !== undefined && pathGlobMatches(endpoint.path, path)));
}

const GLOB_CACHE = new Map<string, RegExp | null>();
/** As the reference's PathGlob.MAXIMUM_CACHE_SIZE. */
const GLOB_CACHE_SIZE = 1000;
/** Characters the reference's PathGlob escapes; everything else but `*` and `\` goes into the pattern as it is. */
const REGEX_META = '.^$+{[]|()';
/** Java's `.`: anything but its line terminators. */
const JAVA_DOT = '[^\\n\\r\\u0085\\u2028\\u2029]';

/**
 * The reference's PathGlob: `*` is any run of characters but `/`, taken possessively (so a `*` followed
 * by something that is not `/` never matches, as in the reference), `**` (or more stars) any run of
 * characters, `\*` a star, `\\` a backslash. Built as a RegExp the way the reference builds its Java
 * Pattern; a glob whose pattern is not a valid expression (a leading `?`) matches nothing.
 */
export function pathGlobMatches(glob: string, path: string): boolean {
  let re = GLOB_CACHE.get(glob);
  if (re === undefined) {
    re = globToRegExp(glob);
    if (GLOB_CACHE.size >= GLOB_CACHE_SIZE) GLOB_CACHE.delete(GLOB_CACHE.keys().next().value!);
    GLOB_CACHE.set(glob, re);
  }
  return re !== null && re.test(path);
}

function globToRegExp(glob: string): RegExp | null {
  let out = '^';
  let groups = 0;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '\\') {
      const next = glob[i + 1];
      if (next === '*' || next === '\\') {
        out += `\\${next}`;
        i++;
      } else {
        out += '\\\\';
      }
    } else if (ch === '*') {
      if (glob[i + 1] === '*') {
        out += `${JAVA_DOT}*`;
        while (glob[i + 1] === '*') i++;
      } else {
        // Java's possessive `[^/]*+`: a look-ahead captures the run, the back-reference consumes it whole.
        groups++;
        out += `(?=([^/]*))\\${groups}`;
      }
    } else {
      out += (REGEX_META.includes(ch) ? '\\' : '') + ch;
    }
  }
  try {
    return new RegExp(`${out}$`);
  } catch {
    return null;
  }
}

/**
 * The reference's isQueryAllowed: whether one of `provider`'s access rights to `serviceCode` names
 * `caller` and its endpoint matches the call (`rest` undefined for SOAP).
 * @throws InvalidRequest (a REST path the reference cannot decode; it answers an internal error)
 */
export function isQueryAllowed(provider: LocalClient, serviceCode: string, caller: ClientId | undefined, rest: RestCall | undefined, inGlobalGroup: GlobalGroupMembership): boolean {
  if (!caller) return false;
  let path: string | undefined;
  if (rest) {
    path = normalizeRequestPath(rest.path);
    // The reference refuses any ".." left after normalisation, even inside a segment.
    if (path.includes('..')) return false;
  }
  return provider.accessRights.some((right: AccessRightConf) =>
    right.serviceCode === serviceCode && subjectMatches(provider, right.subject, caller, inGlobalGroup) && endpointMatches(right, rest?.method, path));
}

/** The description and service a provider serves under a service code and version (the reference's ServiceDAO.find). */
export function findService(provider: LocalClient, code: string, version: string | undefined): { description: ServiceDescriptionConf; service: ServiceConf } | undefined {
  for (const description of provider.serviceDescriptions) {
    const service = description.services.find((s) => s.code === code && s.version === version);
    if (service) return { description, service };
  }
  return undefined;
}

/**
 * The server proxy's verifyAccess, in the reference's order: the provider must serve the service code
 * and version (UnknownService), of the interface's kind (ServiceType), allowed to the caller
 * (AccessDenied), its description enabled (ServiceDisabled, with its notice or the reference's
 * default text). `provider` is the local client the service id names (undefined when there is none).
 * Returns the refusal under the Server.ServerProxy prefix, or the service when the call may go on.
 * @throws InvalidRequest (see isQueryAllowed)
 */
export function verifyAccess(
  provider: LocalClient | undefined,
  service: ServiceId,
  caller: ClientId,
  rest: RestCall | undefined,
  inGlobalGroup: GlobalGroupMembership,
): { readonly refusal: XrdError } | { readonly service: ServiceConf; readonly description: ServiceDescriptionConf } {
  const refuse = (code: 'UnknownService' | 'ServiceType' | 'AccessDenied' | 'ServiceDisabled', details: Record<string, string>) => ({ refusal: new XrdError(code, details, { prefix: 'Server.ServerProxy' }) });
  const name = javaServiceId(service);
  const found = provider && findService(provider, service.serviceCode, service.serviceVersion);
  if (!provider || !found) return refuse('UnknownService', { reason: `Unknown service: ${name}` });
  const type = found.description.type;
  if (rest && type === 'WSDL') return refuse('ServiceType', { reason: 'Service is a SOAP service and cannot be called using REST interface' });
  if (!rest && type !== 'WSDL') return refuse('ServiceType', { reason: 'Service is a REST service and cannot be called using SOAP interface' });
  if (!isQueryAllowed(provider, service.serviceCode, caller, rest, inGlobalGroup)) return refuse('AccessDenied', { service: name });
  if (found.description.disabled) return refuse('ServiceDisabled', { service: name, notice: found.description.disabledNotice ?? `Service '${name}' is disabled` });
  return found;
}
