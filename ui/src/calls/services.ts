/**
 * A client's services, access rights and local groups (docs/admin-api.md, the rows from
 * `/clients/{id}/service-descriptions` to `/local-groups/{group_id}/members`): the views as
 * src/admin/services-admin.ts answers them (the reference's field names) and one function per call.
 * Ids travel in paths, so each is encoded (client and service ids hold colons, others are opaque).
 */
import { call, hasRole } from '../api.ts';

export type DescriptionType = 'WSDL' | 'OPENAPI3' | 'REST';
export type ServiceClientType = 'SUBSYSTEM' | 'GLOBALGROUP' | 'LOCALGROUP';

export interface Endpoint {
  readonly id: string;
  readonly service_code: string;
  readonly method: string;
  readonly path: string;
  readonly generated: boolean;
}

export interface Service {
  readonly id: string;
  readonly full_service_code: string;
  readonly service_code: string;
  readonly timeout: number;
  readonly title?: string;
  readonly ssl_auth: boolean;
  readonly url: string;
  readonly endpoints: readonly Endpoint[];
}

export interface ServiceDescription {
  readonly id: string;
  readonly url: string;
  readonly type: DescriptionType;
  readonly disabled: boolean;
  readonly disabled_notice: string | null;
  readonly refreshed_at: string;
  readonly services: readonly Service[];
  readonly client_id: string;
}

export interface ServiceClient {
  readonly id: string;
  readonly name?: string;
  readonly local_group_code?: string;
  readonly service_client_type: ServiceClientType;
  readonly rights_given_at?: string;
}

export interface AccessRight {
  readonly service_code: string;
  readonly service_title?: string;
  readonly rights_given_at: string;
}

export interface LocalGroup {
  readonly id: string;
  readonly code: string;
  readonly description: string;
  readonly member_count: number;
  readonly updated_at: string;
  readonly members: readonly { id: string; member_name?: string; created_at: string }[];
}

/** The roles of the change routes (src/admin/api-routes.ts: SERVICE_ADMINISTRATOR); observers only see. */
export const canChangeServices = (): boolean => hasRole('XROAD_SERVICE_ADMINISTRATOR');

const e = encodeURIComponent;
const ids = (list: readonly string[]) => ({ items: list.map((id) => ({ id })) });

// Service descriptions
export const listDescriptions = (clientId: string) => call<ServiceDescription[]>('GET', `/clients/${e(clientId)}/service-descriptions`);
export const addDescription = (clientId: string, d: { type: DescriptionType; url: string; rest_service_code?: string; ignore_warnings?: boolean }) =>
  call<ServiceDescription>('POST', `/clients/${e(clientId)}/service-descriptions`, d);
export const editDescription = (id: string, d: { type: DescriptionType; url: string; rest_service_code?: string; new_rest_service_code?: string; ignore_warnings?: boolean }) =>
  call<ServiceDescription>('PATCH', `/service-descriptions/${e(id)}`, d);
export const refreshDescription = (id: string, ignoreWarnings: boolean) => call<ServiceDescription>('PUT', `/service-descriptions/${e(id)}/refresh`, { ignore_warnings: ignoreWarnings });
export const enableDescription = (id: string) => call<void>('PUT', `/service-descriptions/${e(id)}/enable`);
export const disableDescription = (id: string, notice: string) => call<void>('PUT', `/service-descriptions/${e(id)}/disable`, notice ? { disabled_notice: notice } : {});
export const deleteDescription = (id: string) => call<void>('DELETE', `/service-descriptions/${e(id)}`);

// Services and endpoints
export const getService = (id: string) => call<Service>('GET', `/services/${e(id)}`);
export const updateService = (id: string, s: { url: string; timeout: number; ssl_auth: boolean; url_all: boolean; timeout_all: boolean; ssl_auth_all: boolean }) => call<Service>('PATCH', `/services/${e(id)}`, s);
export const addEndpoint = (serviceId: string, method: string, path: string) => call<Endpoint>('POST', `/services/${e(serviceId)}/endpoints`, { method, path });
export const getEndpoint = (id: string) => call<Endpoint>('GET', `/endpoints/${e(id)}`);
export const updateEndpoint = (id: string, method: string, path: string) => call<Endpoint>('PATCH', `/endpoints/${e(id)}`, { method, path });
export const deleteEndpoint = (id: string) => call<void>('DELETE', `/endpoints/${e(id)}`);

/** Access rights on a whole service or on one endpoint: the same three calls under either. */
export interface RightsTarget {
  readonly kind: 'services' | 'endpoints';
  readonly id: string;
}
export const listRights = (t: RightsTarget) => call<ServiceClient[]>('GET', `/${t.kind}/${e(t.id)}/service-clients`);
export const addRights = (t: RightsTarget, subjects: readonly string[]) => call<ServiceClient[]>('POST', `/${t.kind}/${e(t.id)}/service-clients`, ids(subjects));
export const removeRights = (t: RightsTarget, subjects: readonly string[]) => call<void>('POST', `/${t.kind}/${e(t.id)}/service-clients/delete`, ids(subjects));

// Service clients of the client
export const listServiceClients = (clientId: string) => call<ServiceClient[]>('GET', `/clients/${e(clientId)}/service-clients`);
export const listCandidates = (clientId: string, type?: ServiceClientType) =>
  call<ServiceClient[]>('GET', `/clients/${e(clientId)}/service-client-candidates${type ? `?service_client_type=${type}` : ''}`);
export const listAccessRights = (clientId: string, scId: string) => call<AccessRight[]>('GET', `/clients/${e(clientId)}/service-clients/${e(scId)}/access-rights`);
export const addAccessRights = (clientId: string, scId: string, codes: readonly string[]) =>
  call<AccessRight[]>('POST', `/clients/${e(clientId)}/service-clients/${e(scId)}/access-rights`, { items: codes.map((service_code) => ({ service_code })) });
export const removeAccessRights = (clientId: string, scId: string, codes: readonly string[]) =>
  call<void>('POST', `/clients/${e(clientId)}/service-clients/${e(scId)}/access-rights/delete`, { items: codes.map((service_code) => ({ service_code })) });

// Local groups
export const listLocalGroups = (clientId: string) => call<LocalGroup[]>('GET', `/clients/${e(clientId)}/local-groups`);
export const addLocalGroup = (clientId: string, code: string, description: string) => call<LocalGroup>('POST', `/clients/${e(clientId)}/local-groups`, { code, description });
export const getLocalGroup = (id: string) => call<LocalGroup>('GET', `/local-groups/${e(id)}`);
export const editLocalGroup = (id: string, description: string) => call<LocalGroup>('PATCH', `/local-groups/${e(id)}`, { description });
export const deleteLocalGroup = (id: string) => call<void>('DELETE', `/local-groups/${e(id)}`);
export const addGroupMembers = (id: string, members: readonly string[]) => call<unknown>('POST', `/local-groups/${e(id)}/members`, { items: members });
export const removeGroupMembers = (id: string, members: readonly string[]) => call<void>('POST', `/local-groups/${e(id)}/members/delete`, { items: members });

/** The service codes of `descriptions` (once each, with a title where one has it), less those in `except`. */
export function serviceCodes(descriptions: readonly ServiceDescription[], except: readonly string[] = []): { code: string; title?: string }[] {
  const byCode = new Map<string, string | undefined>();
  for (const s of descriptions.flatMap((d) => d.services)) if (!except.includes(s.service_code)) byCode.set(s.service_code, byCode.get(s.service_code) ?? s.title);
  return [...byCode].map(([code, title]) => ({ code, ...(title ? { title } : {}) }));
}

/**
 * How a subject reads in a list: a local group by its code, others by id, with the name beside
 * unless it says nothing more (a subsystem without a name in global configuration is named by its code).
 */
export function subjectLabel(s: ServiceClient): string {
  const id = s.service_client_type === 'LOCALGROUP' ? (s.local_group_code ?? s.id) : s.id;
  return s.name && s.name !== id.split(':').at(-1) ? `${id} (${s.name})` : id;
}

export const DESCRIPTION_TYPES: Record<DescriptionType, string> = { WSDL: 'WSDL', OPENAPI3: 'OpenAPI 3', REST: 'REST' };
export const SUBJECT_TYPES: Record<ServiceClientType, string> = { SUBSYSTEM: 'Subsystem', GLOBALGROUP: 'Global group', LOCALGROUP: 'Local group' };

/** A time the API gives (ISO 8601, UTC) as people read it: `2026-12-06 18:28:37 UTC`. */
export const formatTime = (iso: string | undefined): string => (iso ? iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC') : '');
