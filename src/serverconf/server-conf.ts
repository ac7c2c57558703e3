/**
 * The questions the running parts ask of the server configuration (model.ts): which client is
 * hosted here, which service answers a call and where, who may call it, what the metaservices
 * list. The configuration itself lives in the store (store.ts); serverconf-json.ts reads and
 * writes its JSON form (import, backup, export).
 */
import type { ApprovedTsa, GlobalGroup } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { sameClientId, type ClientId } from '../protocol/identifiers.ts';
import { findService as findServiceOf, isQueryAllowed } from './access.ts';
import { type DescriptionType, type LocalClient, type ServerConf, type ServiceConf, type ServiceDescriptionConf } from './model.ts';

export * from './model.ts';

/**
 * A service as the proxy and the metaservices see it: its settings with what it takes from its
 * description (the protocol, the description's type and URL).
 */
export interface ResolvedService extends ServiceConf {
  readonly type: 'SOAP' | 'REST';
  readonly description: { readonly type: DescriptionType; readonly url?: string };
}

/** A service with what it takes from its description. */
export function resolveService(d: ServiceDescriptionConf, s: ServiceConf): ResolvedService {
  return {
    ...s,
    type: d.type === 'WSDL' ? 'SOAP' : 'REST',
    description: d.url === '' ? { type: d.type } : { type: d.type, url: d.url },
  };
}

/** Every service of a client, from all its descriptions. */
export function servicesOf(client: LocalClient): ResolvedService[] {
  return client.serviceDescriptions.flatMap((d) => d.services.map((s) => resolveService(d, s)));
}

/**
 * The configured timestamping services with their certificates from global configuration, in the
 * administrator's order. One no longer approved is left out: its tokens would not verify.
 */
export function configuredTsas(conf: ServerConf, global: { readonly own: { readonly approvedTsas: readonly ApprovedTsa[] } }): { url: string; cert: Buffer }[] {
  return conf.timestampingServices.flatMap((t) => global.own.approvedTsas.filter((a) => a.url === t.url).map((a) => ({ url: a.url, cert: a.cert })));
}

export function localClient(conf: ServerConf, id: ClientId): LocalClient | undefined {
  return conf.clients.find((c) => sameClientId(c.id, id));
}

/** The service a provider subsystem offers under exactly this code and version (the reference's ServiceId equality). */
export function findService(conf: ServerConf, provider: ClientId, code: string, version?: string): ResolvedService | undefined {
  const client = localClient(conf, provider);
  const found = client && findServiceOf(client, code, version);
  return found && resolveService(found.description, found.service);
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

// The reads the metaservices make (the reference's ServerConfProvider methods of the same names).

/** The provider's services whose description is one of `types` (getServicesByDescriptionType); none when the provider is not hosted here. */
export function servicesByDescriptionType(conf: ServerConf, provider: ClientId, types: readonly DescriptionType[]): ResolvedService[] {
  const client = localClient(conf, provider);
  return client ? servicesOf(client).filter((s) => types.includes(s.description.type)) : [];
}

/** Of those, the ones `caller` may call (getAllowedServicesByDescriptionType: access rights only, a disabled service still counts). */
export function allowedServicesByDescriptionType(conf: ServerConf, provider: ClientId, caller: ClientId, types: readonly DescriptionType[], isMember: (group: string) => boolean): ResolvedService[] {
  const client = localClient(conf, provider);
  return client ? servicesOf(client).filter((s) => types.includes(s.description.type) && isQueryAllowed(client, s.code, caller, undefined, (_, instance, code) => isMember(`${instance}/${code}`))) : [];
}
