/**
 * The server configuration as one JSON document: what `xrd serverconf export` writes and backups
 * carry, and what the store imports — once, from a serverconf.json of the days before the store.
 * That older form listed services per client with their callers (`services[].allowed`); it is read
 * into the reference's model: a description per WSDL/OpenAPI URL, rights on base endpoints.
 */
import { X509Certificate } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, formatSecurityServerId, parseClientId, parseSecurityServerId } from '../protocol/identifiers.ts';
import {
  ANY_METHOD,
  ANY_PATH,
  CLIENT_STATUSES,
  CONNECTION_TYPES,
  DEFAULT_CONNECTION_TYPE,
  DEFAULT_SERVICE_TIMEOUT_SECONDS,
  DESCRIPTION_TYPES,
  type AccessRightConf,
  type ClientStatus,
  type ConnectionType,
  type DescriptionType,
  type EndpointConf,
  type LocalClient,
  type LocalGroupConf,
  type ServerConf,
  type ServiceConf,
  type ServiceDescriptionConf,
} from './model.ts';

/** Bigger than any real configuration (thousands of services); a parser of a file an administrator may hand over is bounded. */
export const MAX_SERVERCONF_JSON_BYTES = 32 * 1024 * 1024;

type Raw = Record<string, unknown>;

/** @throws InvalidConfiguration naming the file and the field that is wrong */
export function parseServerConfJson(text: string, file = 'serverconf.json'): ServerConf {
  const bad = (reason: string) => new XrdError('InvalidConfiguration', { reason: `${file}: ${reason}` });
  if (text.length > MAX_SERVERCONF_JSON_BYTES) throw bad(`larger than ${MAX_SERVERCONF_JSON_BYTES} bytes`);
  let raw: Raw;
  try {
    raw = JSON.parse(text) as Raw;
  } catch (err) {
    throw bad((err as Error).message);
  }
  const r = new Reader(bad);
  if (typeof raw !== 'object' || raw === null) throw bad('not a JSON object');
  const serverId = r.id(parseSecurityServerId, raw.serverId, 'serverId');
  const clients = r.array(raw.clients, 'clients').map((c, i) => r.client(c as Raw, `clients[${i}]`));
  const ids = clients.flatMap((c) => c.serviceDescriptions.map((d) => d.id));
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
  if (repeated !== undefined) throw bad(`service description id ${repeated} is used twice (ids are unique on the server)`);
  const timestampingServices = r.array(raw.timestampingServices, 'timestampingServices').map((t, i) => ({ name: r.string((t as Raw)?.name, `timestampingServices[${i}].name`), url: r.string((t as Raw)?.url, `timestampingServices[${i}].url`) }));
  return { serverId, clients, timestampingServices };
}

export function serializeServerConfJson(conf: ServerConf): string {
  const doc = {
    serverId: formatSecurityServerId(conf.serverId),
    timestampingServices: conf.timestampingServices.map((t) => ({ name: t.name, url: t.url })),
    clients: conf.clients.map((c) => ({
      id: formatClientId(c.id),
      status: c.status,
      connectionType: c.connectionType,
      isCerts: c.isCerts.map((der) => new X509Certificate(der).toString()),
      serviceDescriptions: c.serviceDescriptions,
      endpoints: c.endpoints,
      accessRights: c.accessRights,
      localGroups: c.localGroups.map((g) => ({ ...g, members: g.members.map((m) => ({ id: formatClientId(m.id), addedAt: m.addedAt })) })),
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

class Reader {
  /** Ids for the descriptions of a client in the older form, which had none. */
  nextDescriptionId = 1;

  constructor(private readonly bad: (reason: string) => XrdError) {}

  id<T>(parse: (v: string) => T, value: unknown, what: string): T {
    const text = this.string(value, what);
    try {
      return parse(text);
    } catch (err) {
      throw this.bad(`${what}: ${(err as Error).message}`);
    }
  }

  string(value: unknown, what: string): string {
    if (typeof value !== 'string') throw this.bad(`${what} is missing`);
    return value;
  }

  optionalString(value: unknown, what: string): string | undefined {
    return value === undefined ? undefined : this.string(value, what);
  }

  array(value: unknown, what: string): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw this.bad(`${what} must be a list`);
    return value;
  }

  oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T, what: string): T {
    if (value === undefined) return fallback;
    if (!allowed.includes(value as T)) throw this.bad(`${what} must be one of ${allowed.join(', ')}`);
    return value as T;
  }

  url(value: unknown, what: string): string {
    const text = this.string(value, what);
    try {
      new URL(text);
    } catch {
      throw this.bad(`${what} is not a URL: ${text}`);
    }
    return text;
  }

  time(value: unknown, what: string): string {
    const text = this.string(value, what);
    if (Number.isNaN(Date.parse(text))) throw this.bad(`${what} is not a time: ${text}`);
    return text;
  }

  subject(value: unknown, what: string): string {
    const text = this.string(value, what);
    if (text.startsWith('GLOBALGROUP:')) {
      if (!/^GLOBALGROUP:[^/]+\/[^/]+$/.test(text)) throw this.bad(`${what}: a global group is GLOBALGROUP:INSTANCE/code`);
    } else if (text.startsWith('LOCALGROUP:')) {
      if (text.length === 'LOCALGROUP:'.length) throw this.bad(`${what}: a local group is LOCALGROUP:code`);
    } else this.id(parseClientId, text, what);
    return text;
  }

  service(s: Raw, where: string): ServiceConf {
    if (typeof s !== 'object' || s === null) throw this.bad(`${where} is not an object`);
    const code = this.string(s.code, `${where}.code`);
    if (code === '') throw this.bad(`${where}.code is missing`);
    const timeout = s.timeoutSeconds ?? DEFAULT_SERVICE_TIMEOUT_SECONDS;
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0) throw this.bad(`${where}.timeoutSeconds must be a whole number of seconds`);
    if (s.sslAuthentication !== undefined && typeof s.sslAuthentication !== 'boolean') throw this.bad(`${where}.sslAuthentication must be true or false`);
    const version = this.optionalString(s.version, `${where}.version`);
    const title = this.optionalString(s.title, `${where}.title`);
    return {
      code,
      ...(version !== undefined ? { version } : {}),
      ...(title !== undefined ? { title } : {}),
      url: this.url(s.url, `${where}.url`),
      timeoutSeconds: timeout,
      ...(s.sslAuthentication !== undefined ? { sslAuthentication: s.sslAuthentication as boolean } : {}),
    };
  }

  client(c: Raw, where: string): LocalClient {
    if (typeof c !== 'object' || c === null) throw this.bad(`${where} is not an object`);
    const id = this.id(parseClientId, c.id, `${where}.id`);
    const connectionType = this.oneOf<ConnectionType>(c.connectionType, CONNECTION_TYPES, DEFAULT_CONNECTION_TYPE, `${where}.connectionType`);
    // Clients written before client states were kept were all in use: registered.
    const status = this.oneOf<ClientStatus>(c.status, CLIENT_STATUSES, 'REGISTERED', `${where}.status`);
    const isCerts = this.array(c.isCerts, `${where}.isCerts`).map((pem, j) => {
      try {
        return Buffer.from(new X509Certificate(this.string(pem, `${where}.isCerts[${j}]`)).raw);
      } catch (err) {
        throw this.bad(`${where}.isCerts[${j}]: ${(err as Error).message}`);
      }
    });
    const base = { id, status, connectionType, isCerts };
    if (c.services !== undefined) {
      // Numbered after those of the clients before it: ids are unique on the server.
      const legacy = this.legacyServices(this.array(c.services, `${where}.services`) as Raw[], `${where}.services`);
      const first = this.nextDescriptionId;
      this.nextDescriptionId += legacy.serviceDescriptions.length;
      return { ...base, ...legacy, serviceDescriptions: legacy.serviceDescriptions.map((d, k) => ({ ...d, id: first + k })) };
    }
    const serviceDescriptions = this.array(c.serviceDescriptions, `${where}.serviceDescriptions`).map((d, j): ServiceDescriptionConf => {
      const w = `${where}.serviceDescriptions[${j}]`;
      const raw = d as Raw;
      if (typeof raw !== 'object' || raw === null) throw this.bad(`${w} is not an object`);
      if (typeof raw.id !== 'number' || !Number.isInteger(raw.id) || raw.id < 1) throw this.bad(`${w}.id must be a positive whole number`);
      this.nextDescriptionId = Math.max(this.nextDescriptionId, raw.id + 1);
      const type = this.oneOf<DescriptionType>(raw.type, DESCRIPTION_TYPES, 'WSDL', `${w}.type`);
      if (typeof raw.disabled !== 'boolean') throw this.bad(`${w}.disabled must be true or false`);
      const disabledNotice = this.optionalString(raw.disabledNotice, `${w}.disabledNotice`);
      return {
        id: raw.id,
        type,
        url: raw.url === '' && type === 'WSDL' ? '' : this.url(raw.url, `${w}.url`),
        disabled: raw.disabled,
        ...(disabledNotice !== undefined ? { disabledNotice } : {}),
        refreshedAt: this.time(raw.refreshedAt, `${w}.refreshedAt`),
        services: this.array(raw.services, `${w}.services`).map((s, k) => this.service(s as Raw, `${w}.services[${k}]`)),
      };
    });
    const endpoints = this.array(c.endpoints, `${where}.endpoints`).map((e, j): EndpointConf => {
      const w = `${where}.endpoints[${j}]`;
      const raw = e as Raw;
      return { serviceCode: this.string(raw?.serviceCode, `${w}.serviceCode`), method: this.string(raw.method, `${w}.method`), path: this.string(raw.path, `${w}.path`), generated: raw.generated === true };
    });
    const accessRights = this.array(c.accessRights, `${where}.accessRights`).map((a, j): AccessRightConf => {
      const w = `${where}.accessRights[${j}]`;
      const raw = a as Raw;
      return { subject: this.subject(raw?.subject, `${w}.subject`), serviceCode: this.string(raw.serviceCode, `${w}.serviceCode`), method: this.string(raw.method, `${w}.method`), path: this.string(raw.path, `${w}.path`), grantedAt: this.time(raw.grantedAt, `${w}.grantedAt`) };
    });
    const localGroups = this.array(c.localGroups, `${where}.localGroups`).map((g, j): LocalGroupConf => {
      const w = `${where}.localGroups[${j}]`;
      const raw = g as Raw;
      return {
        code: this.string(raw?.code, `${w}.code`),
        description: this.string(raw.description, `${w}.description`),
        updatedAt: this.time(raw.updatedAt, `${w}.updatedAt`),
        members: this.array(raw.members, `${w}.members`).map((m, k) => ({ id: this.id(parseClientId, (m as Raw)?.id, `${w}.members[${k}].id`), addedAt: this.time((m as Raw).addedAt, `${w}.members[${k}].addedAt`) })),
      };
    });
    return { ...base, serviceDescriptions, endpoints, accessRights, localGroups };
  }

  /** The older form: services with their callers (ServiceSpec). */
  private legacyServices(services: Raw[], where: string): Pick<LocalClient, 'serviceDescriptions' | 'endpoints' | 'accessRights' | 'localGroups'> {
    const specs = services.map((s, j): ServiceSpec => {
      const w = `${where}[${j}]`;
      const service = this.service(s, w);
      const type = this.oneOf(s.type, ['SOAP', 'REST'] as const, 'SOAP', `${w}.type`);
      const allowedTypes: readonly DescriptionType[] = type === 'SOAP' ? ['WSDL'] : ['OPENAPI3', 'REST'];
      const raw = s.description as Raw | undefined;
      if (raw !== undefined && (typeof raw !== 'object' || raw === null || !allowedTypes.includes(raw.type as DescriptionType))) throw this.bad(`${w}.description.type must be ${allowedTypes.join(' or ')} for a ${type} service`);
      const description = raw && { type: raw.type as DescriptionType, url: this.url(raw.url, `${w}.description.url`) };
      const disabledNotice = this.optionalString(s.disabledNotice, `${w}.disabledNotice`);
      const allowed = this.array(s.allowed, `${w}.allowed`).map((subject, k) => this.subject(subject, `${w}.allowed[${k}]`));
      return { ...service, type, allowed, ...(description ? { description } : {}), ...(disabledNotice !== undefined ? { disabledNotice } : {}) };
    });
    return describedServices(specs);
  }
}

/**
 * A service as the older serverconf.json listed it: with its protocol, its description and its
 * callers. The local instance and tests describe their services this way too.
 */
export interface ServiceSpec extends ServiceConf {
  readonly type?: 'SOAP' | 'REST';
  /** Absent: WSDL without a URL (SOAP), REST with the service's own URL (REST). */
  readonly description?: { readonly type: DescriptionType; readonly url: string };
  readonly disabledNotice?: string;
  /** Subjects given the right to call the service (its base endpoint). */
  readonly allowed?: readonly string[];
}

/**
 * The reference's model of services given as specs: services from the same description (type,
 * URL, disabled notice) share one; a REST service is a description of its own, as in the
 * reference; every service code gets its base endpoint and its callers rights on it.
 */
export function describedServices(specs: readonly ServiceSpec[], at = new Date().toISOString()): Pick<LocalClient, 'serviceDescriptions' | 'endpoints' | 'accessRights' | 'localGroups'> {
  const descriptions: { key: string; d: Omit<ServiceDescriptionConf, 'services'>; services: ServiceConf[] }[] = [];
  const endpoints: EndpointConf[] = [];
  const accessRights: AccessRightConf[] = [];
  specs.forEach((spec, j) => {
    const { type: protocol = 'SOAP', description, disabledNotice, allowed = [], ...service } = spec;
    const type = description?.type ?? (protocol === 'SOAP' ? 'WSDL' : 'REST');
    const url = description?.url ?? (protocol === 'SOAP' ? '' : service.url);
    const key = protocol === 'REST' ? `REST ${j}` : JSON.stringify([type, url, disabledNotice]);
    let group = descriptions.find((g) => g.key === key);
    if (!group) {
      group = { key, d: { id: descriptions.length + 1, type, url, disabled: disabledNotice !== undefined, ...(disabledNotice !== undefined ? { disabledNotice } : {}), refreshedAt: at }, services: [] };
      descriptions.push(group);
    }
    group.services.push(service);
    // Rights are to a service code, whatever its versions (the reference's endpoints name no version).
    if (!endpoints.some((e) => e.serviceCode === service.code)) endpoints.push({ serviceCode: service.code, method: ANY_METHOD, path: ANY_PATH, generated: true });
    for (const subject of allowed) {
      if (!accessRights.some((r) => r.serviceCode === service.code && r.subject === subject)) accessRights.push({ subject, serviceCode: service.code, method: ANY_METHOD, path: ANY_PATH, grantedAt: at });
    }
  });
  return { serviceDescriptions: descriptions.map((g) => ({ ...g.d, services: g.services })), endpoints, accessRights, localGroups: [] };
}

/**
 * A client given with its services as specs (status REGISTERED unless told). Its descriptions are
 * numbered from `firstDescriptionId`: ids are unique on the server, so a second client's start
 * after the first's (changes.ts `nextServiceDescriptionId`).
 */
export function clientWithServices(client: { id: LocalClient['id']; connectionType?: LocalClient['connectionType']; isCerts?: readonly Buffer[]; status?: ClientStatus }, services: readonly ServiceSpec[] = [], firstDescriptionId = 1): LocalClient {
  const described = describedServices(services);
  return {
    id: client.id,
    status: client.status ?? 'REGISTERED',
    connectionType: client.connectionType ?? DEFAULT_CONNECTION_TYPE,
    isCerts: client.isCerts ?? [],
    ...described,
    serviceDescriptions: described.serviceDescriptions.map((d, i) => ({ ...d, id: firstDescriptionId + i })),
  };
}
