/**
 * A security server's own configuration (the reference's serverconf database): which server this
 * is, which clients (members, subsystems) it hosts, how each client's information systems connect
 * (HTTP, HTTPS with certificates, HTTPS without), which services a client provides and who may call
 * them. One JSON file, read at start and on change; the admin API of issue 6 writes it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { ApprovedTsa, GlobalGroup } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, parseClientId, parseSecurityServerId, sameClientId, type ClientId, type SecurityServerId } from '../protocol/identifiers.ts';

/** How a client's information systems reach the client proxy (seed 003). */
export type ConnectionType = 'HTTP' | 'HTTPS' | 'HTTPS_NO_AUTH';
export const CONNECTION_TYPES: readonly ConnectionType[] = ['HTTP', 'HTTPS', 'HTTPS_NO_AUTH'];

export interface ServiceConf {
  readonly code: string;
  readonly version?: string;
  readonly type: 'SOAP' | 'REST';
  /** Where the provider's information system answers. REST paths after the service code are appended. */
  readonly url: string;
  readonly timeoutSeconds: number;
  /** Who may call: client ids `INST/CLASS/CODE[/SUB]` or global groups `GLOBALGROUP:INST/code`. */
  readonly allowed: readonly string[];
  /**
   * For an https URL: whether the service's TLS certificate must be one of the internal TLS
   * certificates of the client that owns the service (the reference's sslAuthentication, on by
   * default). Off: any certificate is accepted.
   */
  readonly sslAuthentication?: boolean;
  /** Set when the administrator disabled the service: what callers are told (ServiceDisabled). */
  readonly disabledNotice?: string;
  /**
   * The service description the service came from (the reference's ServiceDescription): WSDL for
   * a SOAP service, OPENAPI3 or REST for a REST one, with the description's URL — what getWsdl and
   * getOpenAPI fetch. Absent: WSDL without a URL (SOAP), REST with the service's own URL (REST).
   */
  readonly description?: ServiceDescription;
}

/** The reference's DescriptionType values. */
export type DescriptionType = 'WSDL' | 'OPENAPI3' | 'REST';
const DESCRIPTION_TYPES: Record<ServiceConf['type'], readonly DescriptionType[]> = { SOAP: ['WSDL'], REST: ['OPENAPI3', 'REST'] };

export interface ServiceDescription {
  readonly type: DescriptionType;
  /** Where the WSDL or OpenAPI document is fetched from; for REST, the API's base URL. Only the default description of a SOAP service has none. */
  readonly url?: string;
}

export interface LocalClient {
  readonly id: ClientId;
  readonly connectionType: ConnectionType;
  /** Internal TLS certificates of the client's information systems (DER). */
  readonly isCerts: readonly Buffer[];
  readonly services: readonly ServiceConf[];
}

/** A timestamping service the administrator chose among the approved ones (UC SS_07). */
export interface ConfiguredTsa {
  readonly name: string;
  readonly url: string;
}

export interface ServerConf {
  readonly serverId: SecurityServerId;
  readonly clients: readonly LocalClient[];
  /** Used in this order by the message log; none configured means no timestamps (logging stops after the acceptable period). */
  readonly timestampingServices: readonly ConfiguredTsa[];
}

interface ServerConfFile {
  serverId: string;
  timestampingServices?: { name: string; url: string }[];
  clients?: {
    id: string;
    connectionType?: string;
    isCerts?: string[];
    services?: { code: string; version?: string; type?: string; url: string; timeoutSeconds?: number; allowed?: string[]; sslAuthentication?: boolean; disabledNotice?: string; description?: { type?: string; url?: string } }[];
  }[];
}

/** The reference's default for a new client: HTTPS with certificates (seed 003). */
const DEFAULT_CONNECTION_TYPE: ConnectionType = 'HTTPS';
const DEFAULT_SERVICE_TIMEOUT_SECONDS = 60;

/** @throws InvalidConfiguration naming the file and what is wrong */
export function parseServerConf(text: string, file = 'serverconf.json'): ServerConf {
  const bad = (reason: string) => new XrdError('InvalidConfiguration', { reason: `${file}: ${reason}` });
  let raw: ServerConfFile;
  try {
    raw = JSON.parse(text) as ServerConfFile;
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (typeof raw?.serverId !== 'string') throw bad('serverId is missing');
  const id = <T>(parse: (v: string) => T, value: unknown, what: string): T => {
    if (typeof value !== 'string') throw bad(`${what} is missing`);
    try {
      return parse(value);
    } catch (err) {
      throw bad(`${what}: ${(err as Error).message}`);
    }
  };
  const serverId = id(parseSecurityServerId, raw.serverId, 'serverId');
  const clients = (raw.clients ?? []).map((c, i): LocalClient => {
    const clientId = id(parseClientId, c.id, `clients[${i}].id`);
    const connectionType = (c.connectionType ?? DEFAULT_CONNECTION_TYPE) as ConnectionType;
    if (!CONNECTION_TYPES.includes(connectionType)) throw bad(`clients[${i}].connectionType must be one of ${CONNECTION_TYPES.join(', ')}`);
    const isCerts = (c.isCerts ?? []).map((pem, j) => {
      try {
        return Buffer.from(new X509Certificate(pem).raw);
      } catch (err) {
        throw bad(`clients[${i}].isCerts[${j}]: ${(err as Error).message}`);
      }
    });
    const services = (c.services ?? []).map((s, j): ServiceConf => {
      const where = `clients[${i}].services[${j}]`;
      if (typeof s.code !== 'string' || s.code === '') throw bad(`${where}.code is missing`);
      try {
        new URL(s.url);
      } catch {
        throw bad(`${where}.url is not a URL: ${s.url}`);
      }
      const type = s.type ?? 'SOAP';
      if (type !== 'SOAP' && type !== 'REST') throw bad(`${where}.type must be SOAP or REST`);
      for (const subject of s.allowed ?? []) {
        if (!subject.startsWith('GLOBALGROUP:')) id(parseClientId, subject, `${where}.allowed`);
      }
      if (s.sslAuthentication !== undefined && typeof s.sslAuthentication !== 'boolean') throw bad(`${where}.sslAuthentication must be true or false`);
      if (s.disabledNotice !== undefined && typeof s.disabledNotice !== 'string') throw bad(`${where}.disabledNotice must be a string`);
      const description = s.description === undefined ? undefined : parseDescription(s.description, type, `${where}.description`, bad);
      return {
        code: s.code,
        version: s.version,
        type,
        url: s.url,
        timeoutSeconds: s.timeoutSeconds ?? DEFAULT_SERVICE_TIMEOUT_SECONDS,
        allowed: s.allowed ?? [],
        ...(s.sslAuthentication !== undefined ? { sslAuthentication: s.sslAuthentication } : {}),
        ...(s.disabledNotice !== undefined ? { disabledNotice: s.disabledNotice } : {}),
        ...(description ? { description } : {}),
      };
    });
    return { id: clientId, connectionType, isCerts, services };
  });
  const timestampingServices = (raw.timestampingServices ?? []).map((t, i): ConfiguredTsa => {
    if (typeof t?.name !== 'string' || typeof t.url !== 'string') throw bad(`timestampingServices[${i}] needs a name and a url`);
    return { name: t.name, url: t.url };
  });
  return { serverId, clients, timestampingServices };
}

function parseDescription(raw: { type?: string; url?: string }, serviceType: ServiceConf['type'], where: string, bad: (reason: string) => XrdError): ServiceDescription {
  const allowed = DESCRIPTION_TYPES[serviceType];
  if (typeof raw !== 'object' || raw === null || !allowed.includes(raw.type as DescriptionType)) throw bad(`${where}.type must be ${allowed.join(' or ')} for a ${serviceType} service`);
  try {
    new URL(raw.url ?? '');
  } catch {
    throw bad(`${where}.url is not a URL: ${raw.url}`);
  }
  return { type: raw.type as DescriptionType, url: raw.url! };
}

export function serializeServerConf(conf: ServerConf): string {
  const file: ServerConfFile = {
    serverId: [conf.serverId.instance, conf.serverId.memberClass, conf.serverId.memberCode, conf.serverId.serverCode].join('/'),
    clients: conf.clients.map((c) => ({
      id: formatClientId(c.id),
      connectionType: c.connectionType,
      isCerts: c.isCerts.map((der) => new X509Certificate(der).toString()),
      services: c.services.map((s) => ({ ...s, allowed: [...s.allowed] })),
    })),
    timestampingServices: conf.timestampingServices.map((t) => ({ name: t.name, url: t.url })),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * The configuration as a function to call for every message: the file is looked at most once a
 * second (`recheckMs`) and parsed again when it changed. A broken edit keeps the last good
 * configuration in force (reported through `onError`); only a broken file at start throws.
 */
export function serverConfReader(file: string, options: { recheckMs?: number; onError?: (err: XrdError) => void } = {}): () => ServerConf {
  const recheckMs = options.recheckMs ?? 1000;
  let cached: { mtimeMs: number; conf: ServerConf; checkedAt: number } | undefined;
  return () => {
    const now = Date.now();
    if (cached && now - cached.checkedAt < recheckMs) return cached.conf;
    const mtimeMs = statSync(file).mtimeMs;
    if (cached?.mtimeMs === mtimeMs) {
      cached.checkedAt = now;
      return cached.conf;
    }
    try {
      cached = { mtimeMs, conf: parseServerConf(readFileSync(file, 'utf8'), file), checkedAt: now };
    } catch (err) {
      if (!cached) throw err;
      options.onError?.(err as XrdError);
      cached = { ...cached, mtimeMs, checkedAt: now };
    }
    return cached.conf;
  };
}

/**
 * The configured timestamping services with their certificates from global configuration, in the
 * administrator's order. One no longer approved is left out: its tokens would not verify.
 */
export function configuredTsas(conf: ServerConf, global: { readonly own: { readonly approvedTsas: readonly ApprovedTsa[] } }): { url: string; cert: Buffer }[] {
  return conf.timestampingServices.flatMap((t) => global.own.approvedTsas.filter((a) => a.url === t.url).map((a) => ({ url: a.url, cert: a.cert })));
}

/** Compared part by part: a member code holding '/' never reads as a subsystem. */
export const sameClient = sameClientId;

export function localClient(conf: ServerConf, id: ClientId): LocalClient | undefined {
  return conf.clients.find((c) => sameClient(c.id, id));
}

/** The service a provider subsystem offers under exactly this code and version (the reference's ServiceId equality). */
export function findService(conf: ServerConf, provider: ClientId, code: string, version?: string): ServiceConf | undefined {
  return localClient(conf, provider)?.services.find((s) => s.code === code && s.version === version);
}

/**
 * Whether `client` is listed in the global group `INST/code` — exactly: a listed member does not
 * bring its subsystems in (the reference's isSubjectInGlobalGroup).
 */
export function inGlobalGroup(shared: ReadonlyMap<string, { readonly globalGroups: readonly GlobalGroup[] }>, group: string, client: ClientId): boolean {
  const slash = group.indexOf('/');
  return shared.get(group.slice(0, slash))?.globalGroups.find((g) => g.groupCode === group.slice(slash + 1))?.members.some((m) => sameClientId(m, client)) ?? false;
}

/**
 * Whether `caller` may call `service` (the reference's isQueryAllowed): the caller itself is listed,
 * or a global group it belongs to (`isMember(group)` answers from global configuration).
 */
export function isCallAllowed(service: ServiceConf, caller: ClientId, isMember: (group: string) => boolean): boolean {
  // A listed subject is parsed, so it is compared as an identifier too, part by part.
  return service.allowed.some((subject) => (subject.startsWith('GLOBALGROUP:') ? isMember(subject.slice('GLOBALGROUP:'.length)) : sameClientId(parseClientId(subject), caller)));
}

/**
 * Where a REST call goes: the service's URL with the path after the service code appended. It must
 * stay under that URL — the client proxy refuses dot segments, but a request may come from any
 * security server.
 * @throws AccessDenied when the path leaves the service's URL
 */
export function serviceUrl(service: ServiceConf, servicePath: string): URL {
  const base = new URL(service.url);
  const target = new URL(service.url.replace(/\/$/, '') + servicePath);
  const basePath = base.pathname.replace(/\/$/, '');
  if (target.origin !== base.origin || (target.pathname !== basePath && !target.pathname.startsWith(`${basePath}/`))) {
    throw new XrdError('AccessDenied', { service: `${service.code} (the path ${servicePath} leaves the service's URL)` }, { prefix: 'Server.ServerProxy' });
  }
  return target;
}

// The reads the metaservices make (the reference's ServerConfProvider methods of the same names),
// together so that a store behind this model changes them in one place.

/** The description a service came from, with the defaults of ServiceConf.description. */
export function descriptionOf(service: ServiceConf): ServiceDescription {
  return service.description ?? (service.type === 'SOAP' ? { type: 'WSDL' } : { type: 'REST', url: service.url });
}

/** The provider's services whose description is one of `types` (getServicesByDescriptionType); none when the provider is not hosted here. */
export function servicesByDescriptionType(conf: ServerConf, provider: ClientId, types: readonly DescriptionType[]): ServiceConf[] {
  return (localClient(conf, provider)?.services ?? []).filter((s) => types.includes(descriptionOf(s).type));
}

/** Of those, the ones `caller` may call (getAllowedServicesByDescriptionType: access rights only, a disabled service still counts). */
export function allowedServicesByDescriptionType(conf: ServerConf, provider: ClientId, caller: ClientId, types: readonly DescriptionType[], isMember: (group: string) => boolean): ServiceConf[] {
  return servicesByDescriptionType(conf, provider, types).filter((s) => isCallAllowed(s, caller, isMember));
}
