/**
 * Every change an administrator makes to the server configuration through the API or the CLI, as a
 * pure function `(conf, ...) => ServerConf` that either returns the changed configuration or throws
 * the reference's refusal (the checks of its admin service: ClientService, ServiceDescriptionService,
 * ServiceService, EndpointService, AccessRightService, LocalGroupService). The store runs them inside
 * one audited transaction; what needs I/O or global configuration (fetching and parsing a WSDL or
 * OpenAPI document, whether a member class or a service client exists, whether a client is
 * registered) is done by the caller and passed in.
 *
 * Each refusal is an XrdError whose details carry `referenceCode`, the reference's own error code
 * (`service_already_exists`, `duplicate_accessright`, …), for the API to show as the reference does.
 *
 * Where the reference addresses an endpoint or a local group by a database id, these functions
 * address it by what identifies it within its client: an endpoint by service code, method and path
 * (the reference refuses two equivalent endpoints), a local group by its code.
 */
import { createHash } from 'node:crypto';
import { XrdError, type ErrorCode, type ErrorDetails } from '../platform/errors.ts';
import { formatClientId, identifierPartProblem, sameClientId, type ClientId } from '../protocol/identifiers.ts';
import {
  ANY_METHOD, ANY_PATH, CONNECTION_TYPES, DEFAULT_CONNECTION_TYPE, DEFAULT_SERVICE_TIMEOUT_SECONDS,
  type AccessRightConf, type AccessSubject, type ClientStatus, type ConnectionType, type EndpointConf, type LocalClient,
  type LocalGroupConf, type ServerConf, type ServiceConf, type ServiceDescriptionConf,
} from './model.ts';

/** What a new description is disabled with until an administrator enables it (the reference's DEFAULT_DISABLED_NOTICE). */
const DEFAULT_DISABLED_NOTICE = 'Out of order';

/** The HTTP methods a REST endpoint may name (the reference's Endpoint.method enum), `*` for all. */
const ENDPOINT_METHODS: readonly string[] = [ANY_METHOD, 'GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE'];

/** One service a WSDL describes, as the WSDL parser reads it (the reference's WsdlParser.ServiceInfo). */
export interface ParsedWsdlService {
  readonly code: string;
  readonly version?: string;
  readonly title?: string;
  /** The service's address in the WSDL (soap:address). */
  readonly url: string;
}

/** One operation of an OpenAPI 3 description: an HTTP method in capitals and a path. */
export interface ParsedOperation {
  readonly method: string;
  readonly path: string;
}

/** A new description, its document already fetched and parsed by the caller. */
export type NewServiceDescription =
  | { readonly type: 'WSDL'; readonly url: string; readonly services: readonly ParsedWsdlService[] }
  /** `baseUrl`: the document's first server URL, where the service is called. */
  | { readonly type: 'OPENAPI3'; readonly url: string; readonly serviceCode: string; readonly baseUrl: string; readonly operations: readonly ParsedOperation[] }
  | { readonly type: 'REST'; readonly url: string; readonly serviceCode: string };

/** An endpoint of a client's service, as the administrator names it. */
export interface EndpointRef {
  readonly serviceCode: string;
  readonly method: string;
  readonly path: string;
}

/** What a refresh adds and removes: full service codes (WSDL) or `METHOD path` (OpenAPI 3), the reference's warnings. */
export interface DescriptionChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

function refuse(code: ErrorCode, referenceCode: string, details: ErrorDetails = {}): never {
  throw new XrdError(code, { ...details, referenceCode });
}

// --- Clients ------------------------------------------------------------------------------------

/** The member that owns the server: its id without the server code. */
export function ownerOf(conf: ServerConf): ClientId {
  const { instance, memberClass, memberCode } = conf.serverId;
  return { instance, memberClass, memberCode };
}

function isOwner(conf: ServerConf, id: ClientId): boolean {
  return sameClientId(ownerOf(conf), id);
}

/** @throws ClientNotFound */
export function findClient(conf: ServerConf, id: ClientId): LocalClient {
  return conf.clients.find((c) => sameClientId(c.id, id)) ?? refuse('ClientNotFound', 'client_not_found', { clientId: formatClientId(id) });
}

function replaceClient(conf: ServerConf, client: LocalClient): ServerConf {
  return { ...conf, clients: conf.clients.map((c) => (sameClientId(c.id, client.id) ? client : c)) };
}

function changeClient(conf: ServerConf, id: ClientId, change: (client: LocalClient) => LocalClient): ServerConf {
  return replaceClient(conf, change(findClient(conf, id)));
}

/**
 * Adds a member or subsystem of this server's instance (ClientService.addLocalClient): SAVED, or
 * REGISTERED when global configuration already lists it as a client of this server (`registered`).
 * The caller checks the member class against global configuration (invalid_member_class) and asks
 * about an unregistered member (the unregistered_member warning).
 * @throws InvalidInstanceIdentifier, InvalidIdentifier, ClientAlreadyExists, AdditionalMemberAlreadyExists
 */
export function addClient(conf: ServerConf, id: ClientId, options: { connectionType?: ConnectionType; registered?: boolean } = {}): ServerConf {
  if (id.instance !== conf.serverId.instance) refuse('InvalidInstanceIdentifier', 'invalid_instance_identifier', { instance: id.instance });
  for (const [name, part] of [['member class', id.memberClass], ['member code', id.memberCode], ['subsystem code', id.subsystem]] as const) {
    const problem = part === undefined ? undefined : identifierPartProblem(part);
    if (problem) throw new XrdError('InvalidIdentifier', { value: formatClientId(id), reason: `${name} ${problem}` });
  }
  const connectionType = options.connectionType ?? DEFAULT_CONNECTION_TYPE;
  if (!CONNECTION_TYPES.includes(connectionType)) refuse('InvalidConnectionType', 'invalid_connection_type', { connectionType, allowed: CONNECTION_TYPES.join(', ') });
  if (conf.clients.some((c) => sameClientId(c.id, id))) refuse('ClientAlreadyExists', 'client_already_exists', { clientId: formatClientId(id) });
  if (id.subsystem === undefined) {
    // A server holds its owner and at most one other member.
    const other = conf.clients.find((c) => c.id.subsystem === undefined && !isOwner(conf, c.id));
    if (other) refuse('AdditionalMemberAlreadyExists', 'additional_member_already_exists', { clientId: formatClientId(other.id) });
  }
  const client: LocalClient = {
    id,
    status: options.registered ? 'REGISTERED' : 'SAVED',
    connectionType,
    isCerts: [],
    serviceDescriptions: [],
    endpoints: [],
    accessRights: [],
    localGroups: [],
  };
  return { ...conf, clients: [...conf.clients, client] };
}

/** The states a client may be deleted in (ClientService.deleteLocalClient). */
const DELETABLE: readonly ClientStatus[] = ['SAVED', 'DELETION_IN_PROGRESS', 'GLOBAL_ERROR'];

/**
 * Deletes a client that is not the owner and is SAVED, DELETION_IN_PROGRESS or GLOBAL_ERROR. Unless
 * it is still a client of another security server (`registeredOnOtherServers`, from global
 * configuration), its access rights to other clients' services and its local group memberships go
 * too, as the reference removes them.
 * @throws ClientNotFound, CannotDeleteOwner, ActionNotPossible
 */
export function deleteClient(conf: ServerConf, id: ClientId, options: { registeredOnOtherServers?: boolean } = {}): ServerConf {
  const client = findClient(conf, id);
  if (isOwner(conf, id)) refuse('CannotDeleteOwner', 'cannot_delete_owner', { clientId: formatClientId(id) });
  if (!DELETABLE.includes(client.status)) refuse('ActionNotPossible', 'action_not_possible', { reason: `cannot delete client with status ${client.status}` });
  const clients = conf.clients.filter((c) => c !== client);
  if (options.registeredOnOtherServers) return { ...conf, clients };
  const subject = formatClientId(id);
  return {
    ...conf,
    clients: clients.map((c) => ({
      ...c,
      accessRights: c.accessRights.filter((r) => r.subject !== subject),
      localGroups: c.localGroups.map((g) => ({ ...g, members: g.members.filter((m) => !sameClientId(m.id, id)) })),
    })),
  };
}

/** Sets a client's state as it is, without checks (the store's import, the management request outcome). */
export function setClientStatus(conf: ServerConf, id: ClientId, status: ClientStatus): ServerConf {
  return changeClient(conf, id, (c) => ({ ...c, status }));
}

/**
 * Before a clientReg request is sent: only a SAVED client of this instance that is not the owner.
 * The caller checks the member class against global configuration first (invalid_member_class).
 * @throws ClientNotFound, InvalidInstanceIdentifier, CannotRegisterOwner, ActionNotPossible
 */
export function registerClient(conf: ServerConf, id: ClientId): ServerConf {
  const client = findClient(conf, id);
  if (id.instance !== conf.serverId.instance) refuse('InvalidInstanceIdentifier', 'invalid_instance_identifier', { instance: id.instance });
  if (isOwner(conf, id)) refuse('CannotRegisterOwner', 'cannot_register_owner', { clientId: formatClientId(id) });
  if (client.status !== 'SAVED') refuse('ActionNotPossible', 'action_not_possible', { reason: "only clients with status 'saved' can be registered" });
  return replaceClient(conf, { ...client, status: 'REGISTRATION_IN_PROGRESS' });
}

const UNREGISTRABLE: readonly ClientStatus[] = ['REGISTERED', 'REGISTRATION_IN_PROGRESS', 'DISABLED'];

/**
 * Before a clientDeletion request is sent: a REGISTERED, REGISTRATION_IN_PROGRESS or DISABLED client
 * that is not the owner; it becomes DELETION_IN_PROGRESS.
 * @throws ClientNotFound, ActionNotPossible, CannotUnregisterOwner
 */
export function unregisterClient(conf: ServerConf, id: ClientId): ServerConf {
  const client = findClient(conf, id);
  if (!UNREGISTRABLE.includes(client.status)) refuse('ActionNotPossible', 'action_not_possible', { reason: `cannot unregister client with status ${client.status}` });
  if (isOwner(conf, id)) refuse('CannotUnregisterOwner', 'cannot_unregister_owner', { clientId: formatClientId(id) });
  return replaceClient(conf, { ...client, status: 'DELETION_IN_PROGRESS' });
}

/**
 * Before a clientDisable request is sent: only a REGISTERED client, never the management service
 * provider named in global configuration; it becomes DISABLING_IN_PROGRESS.
 * @throws ClientNotFound, ActionNotPossible, ForbiddenDisableManagementServiceClient
 */
export function disableClient(conf: ServerConf, id: ClientId, managementServiceProvider?: ClientId): ServerConf {
  const client = findClient(conf, id);
  if (client.status !== 'REGISTERED') refuse('ActionNotPossible', 'action_not_possible', { reason: `cannot disable client with status ${client.status}` });
  if (managementServiceProvider && sameClientId(id, managementServiceProvider)) refuse('ForbiddenDisableManagementServiceClient', 'forbidden_disable_management_service_client', { clientId: formatClientId(id) });
  return replaceClient(conf, { ...client, status: 'DISABLING_IN_PROGRESS' });
}

/**
 * Before a clientEnable request is sent: only a DISABLED client; it becomes ENABLING_IN_PROGRESS.
 * @throws ClientNotFound, ActionNotPossible
 */
export function enableClient(conf: ServerConf, id: ClientId): ServerConf {
  const client = findClient(conf, id);
  if (client.status !== 'DISABLED') refuse('ActionNotPossible', 'action_not_possible', { reason: `cannot enable client with status ${client.status}` });
  return replaceClient(conf, { ...client, status: 'ENABLING_IN_PROGRESS' });
}

/**
 * Before an ownerChange request is sent: the new owner is a REGISTERED member of this server other
 * than the owner. Nothing changes locally until global configuration names the new owner.
 * @throws ActionNotPossible, ClientNotFound, MemberAlreadyOwner
 */
export function checkOwnerChange(conf: ServerConf, id: ClientId): void {
  if (id.subsystem !== undefined) refuse('ActionNotPossible', 'action_not_possible', { reason: 'only a member can be an owner' });
  const client = findClient(conf, id);
  if (isOwner(conf, id)) refuse('MemberAlreadyOwner', 'member_already_owner', { clientId: formatClientId(id) });
  if (client.status !== 'REGISTERED') refuse('ActionNotPossible', 'action_not_possible', { reason: "only a member with status 'registered' can become owner" });
}

/**
 * Follows global configuration as the reference's GlobalConfChecker does: a client it lists for this
 * server becomes REGISTERED (from SAVED, REGISTRATION_IN_PROGRESS, GLOBAL_ERROR, ENABLING_IN_PROGRESS);
 * a REGISTERED client it no longer lists is GLOBAL_ERROR, a DISABLING_IN_PROGRESS one DISABLED.
 * Returns `conf` itself when nothing changes.
 */
export function updateClientStatuses(conf: ServerConf, isRegistered: (id: ClientId) => boolean): ServerConf {
  let changed = false;
  const clients = conf.clients.map((c) => {
    const registered = isRegistered(c.id);
    let status = c.status;
    if (registered && ['SAVED', 'REGISTRATION_IN_PROGRESS', 'GLOBAL_ERROR', 'ENABLING_IN_PROGRESS'].includes(status)) status = 'REGISTERED';
    else if (!registered && status === 'REGISTERED') status = 'GLOBAL_ERROR';
    else if (!registered && status === 'DISABLING_IN_PROGRESS') status = 'DISABLED';
    if (status === c.status) return c;
    changed = true;
    return { ...c, status };
  });
  return changed ? { ...conf, clients } : conf;
}

/** @throws ClientNotFound, InvalidConnectionType */
export function setConnectionType(conf: ServerConf, id: ClientId, connectionType: string): ServerConf {
  if (!CONNECTION_TYPES.includes(connectionType as ConnectionType)) refuse('InvalidConnectionType', 'invalid_connection_type', { connectionType, allowed: CONNECTION_TYPES.join(', ') });
  return changeClient(conf, id, (c) => ({ ...c, connectionType: connectionType as ConnectionType }));
}

/** How TLS certificates are named in the API and the CLI: SHA-256 of the DER, upper-case hex. */
export function tlsCertificateHash(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex').toUpperCase();
}

/**
 * Adds an internal TLS certificate (DER, already parsed by the caller) of the client's information systems.
 * @throws ClientNotFound, TlsCertificateExists
 */
export function addTlsCertificate(conf: ServerConf, id: ClientId, der: Buffer): ServerConf {
  return changeClient(conf, id, (c) => {
    if (c.isCerts.some((d) => d.equals(der))) refuse('TlsCertificateExists', 'certificate_already_exists', { hash: tlsCertificateHash(der) });
    return { ...c, isCerts: [...c.isCerts, der] };
  });
}

/** @throws ClientNotFound, TlsCertificateNotFound */
export function deleteTlsCertificate(conf: ServerConf, id: ClientId, hash: string): ServerConf {
  return changeClient(conf, id, (c) => {
    const kept = c.isCerts.filter((d) => tlsCertificateHash(d) !== hash.toUpperCase());
    if (kept.length === c.isCerts.length) refuse('TlsCertificateNotFound', 'certificate_not_found', { hash });
    return { ...c, isCerts: kept };
  });
}

// --- Service descriptions -------------------------------------------------------------------------

/** `code.version`, or the code of a service without a version (the reference's ServiceFormatter). */
export function fullServiceCode(service: { readonly code: string; readonly version?: string }): string {
  return service.version ? `${service.code}.${service.version}` : service.code;
}

const HOST = /^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$/;

/** An http or https URL whose host is a name or an IPv4 address (the reference's FormatUtils.isValidUrl). */
function isValidServiceUrl(url: string): boolean {
  if (!url.startsWith('http://') && !url.startsWith('https://')) return false;
  try {
    return HOST.test(new URL(url).hostname);
  } catch {
    return false;
  }
}

function checkUrl(url: string): void {
  if (!isValidServiceUrl(url)) refuse('MalformedUrl', 'malformed_url', { url });
}

/**
 * What the reference checks before it fetches a document (processWsdl: validateUrl, then
 * checkForExistingWsdl): a malformed URL, and for a WSDL one the client already has. The same
 * checks run again inside the change.
 * @throws ClientNotFound, MalformedUrl, WsdlExists
 */
export function checkDescriptionUrl(conf: ServerConf, clientId: ClientId, type: ServiceDescriptionConf['type'], url: string, replacing?: number): void {
  checkUrl(url);
  if (type === 'WSDL') checkWsdlUrlFree(findClient(conf, clientId), url, replacing);
}

/** The id the next added description gets: one more than the largest on the server. */
export function nextServiceDescriptionId(conf: Pick<ServerConf, 'clients'>): number {
  return Math.max(0, ...conf.clients.flatMap((c) => c.serviceDescriptions.map((d) => d.id))) + 1;
}

function findDescription(conf: ServerConf, id: number): { client: LocalClient; description: ServiceDescriptionConf } {
  for (const client of conf.clients) {
    const description = client.serviceDescriptions.find((d) => d.id === id);
    if (description) return { client, description };
  }
  return refuse('ServiceDescriptionNotFound', 'service_description_not_found', { id });
}

function withDescription(client: LocalClient, description: ServiceDescriptionConf): LocalClient {
  return { ...client, serviceDescriptions: client.serviceDescriptions.map((d) => (d.id === description.id ? description : d)) };
}

function otherServices(client: LocalClient, skipId?: number): ServiceConf[] {
  return client.serviceDescriptions.filter((d) => d.id !== skipId).flatMap((d) => d.services);
}

const sameEndpoint = (a: EndpointRef, b: EndpointRef) => a.serviceCode === b.serviceCode && a.method === b.method && a.path === b.path;
const baseEndpoint = (serviceCode: string): EndpointConf => ({ serviceCode, method: ANY_METHOD, path: ANY_PATH, generated: true });

/** Base endpoints for services that have none yet (resolveNewEndpoints). */
function withBaseEndpoints(endpoints: readonly EndpointConf[], services: readonly ServiceConf[]): EndpointConf[] {
  const result = [...endpoints];
  for (const s of services) {
    const base = baseEndpoint(s.code);
    if (!result.some((e) => sameEndpoint(e, base) && e.generated)) result.push(base);
  }
  return result;
}

/** WSDL service codes and versions must be valid identifier parts (invalid_wsdl_service_identifier). */
function checkWsdlServices(client: LocalClient, services: readonly ParsedWsdlService[], skipId?: number): void {
  const invalid = services.flatMap((s) => [s.code, ...(s.version === undefined ? [] : [s.version])]).filter((part) => identifierPartProblem(part) !== undefined);
  if (invalid.length) refuse('InvalidWsdlServiceIdentifier', 'invalid_wsdl_service_identifier', { identifiers: invalid.join(', ') });
  const existing = otherServices(client, skipId);
  const conflicts = existing.filter((e) => services.some((s) => fullServiceCode(s).toLowerCase() === fullServiceCode(e).toLowerCase()));
  if (conflicts.length) {
    const where = conflicts.map((e) => `${fullServiceCode(e)} (${client.serviceDescriptions.find((d) => d.services.includes(e))!.url})`);
    refuse('ServiceAlreadyExists', 'service_already_exists', { services: where.join(', ') });
  }
}

function checkWsdlUrlFree(client: LocalClient, url: string, skipId?: number): void {
  if (client.serviceDescriptions.some((d) => d.id !== skipId && d.url.toLowerCase() === url.toLowerCase())) refuse('WsdlExists', 'wsdl_exists', { url });
}

/** REST and OpenAPI 3: no other description with the same URL (url_already_exists). */
function checkUrlFree(client: LocalClient, description: ServiceDescriptionConf): void {
  if (client.serviceDescriptions.some((d) => d.id !== description.id && d.url === description.url)) refuse('UrlAlreadyExists', 'url_already_exists', { url: description.url });
}

/** REST and OpenAPI 3: the service code is not the code or full code of another service (service_code_already_exists). */
function checkServiceCodesFree(client: LocalClient, description: ServiceDescriptionConf): void {
  const existing = otherServices(client, description.id);
  const clash = description.services.filter((s) => existing.some((e) => e.code.toLowerCase() === s.code.toLowerCase() || fullServiceCode(e).toLowerCase() === fullServiceCode(s).toLowerCase()));
  if (clash.length) refuse('ServiceCodeAlreadyExists', 'service_code_already_exists', { services: clash.map((s) => `${fullServiceCode(s)} (${description.url})`).join(', ') });
}

function wsdlService(parsed: ParsedWsdlService): ServiceConf {
  return { code: parsed.code, version: parsed.version, title: parsed.title, url: parsed.url, timeoutSeconds: DEFAULT_SERVICE_TIMEOUT_SECONDS };
}

/**
 * Adds a description to a client with the id nextServiceDescriptionId(conf), disabled with the
 * notice "Out of order" until an administrator enables it, as the reference does. WSDL: one service
 * per operation, each with a base endpoint; OPENAPI3: one service at the document's base URL with a
 * base endpoint and one endpoint per operation, all generated; REST: one service at the URL with a
 * base endpoint, TLS authentication on for https. The caller asks about the parser's warnings
 * (wsdl_validation_warnings, openapi_validation_warnings) before.
 * @throws ClientNotFound, MissingParameter, MalformedUrl, WsdlExists, InvalidWsdlServiceIdentifier,
 *   ServiceAlreadyExists, InvalidServiceUrl, UrlAlreadyExists, ServiceCodeAlreadyExists
 */
export function addServiceDescription(conf: ServerConf, clientId: ClientId, added: NewServiceDescription, now = new Date()): ServerConf {
  const client = findClient(conf, clientId);
  const base = { id: nextServiceDescriptionId(conf), url: added.url, disabled: true, disabledNotice: DEFAULT_DISABLED_NOTICE, refreshedAt: now.toISOString() };
  if (added.type === 'WSDL') {
    checkUrl(added.url);
    checkWsdlUrlFree(client, added.url);
    checkWsdlServices(client, added.services);
    const badUrls = added.services.map((s) => s.url).filter((u) => !u.startsWith('http://') && !u.startsWith('https://'));
    if (badUrls.length) refuse('InvalidServiceUrl', 'invalid_service_url', { urls: badUrls.join(', ') });
    const description: ServiceDescriptionConf = { ...base, type: 'WSDL', services: added.services.map(wsdlService) };
    return replaceClient(conf, { ...client, serviceDescriptions: [...client.serviceDescriptions, description], endpoints: withBaseEndpoints(client.endpoints, description.services) });
  }
  if (!added.serviceCode) refuse('MissingParameter', 'missing_parameter', { parameter: 'service_code' });
  checkUrl(added.url);
  const service: ServiceConf = added.type === 'REST'
    ? { code: added.serviceCode, url: added.url, timeoutSeconds: DEFAULT_SERVICE_TIMEOUT_SECONDS, ...(added.url.startsWith('https://') ? { sslAuthentication: true } : {}) }
    : { code: added.serviceCode, url: added.baseUrl, timeoutSeconds: DEFAULT_SERVICE_TIMEOUT_SECONDS };
  const description: ServiceDescriptionConf = { ...base, type: added.type, services: [service] };
  checkUrlFree(client, description);
  checkServiceCodesFree(client, description);
  const endpoints = added.type === 'REST' ? [baseEndpoint(service.code)] : openApiEndpoints(service.code, added.operations);
  return replaceClient(conf, { ...client, serviceDescriptions: [...client.serviceDescriptions, description], endpoints: [...client.endpoints, ...endpoints] });
}

function openApiEndpoints(serviceCode: string, operations: readonly ParsedOperation[]): EndpointConf[] {
  return [baseEndpoint(serviceCode), ...operations.map((o) => ({ serviceCode, method: o.method, path: o.path, generated: true }))];
}

/**
 * Deletes a description with the endpoints and access rights of its services, except of services
 * whose code another description of the client also has.
 * @throws ServiceDescriptionNotFound
 */
export function deleteServiceDescription(conf: ServerConf, id: number): ServerConf {
  const { client, description } = findDescription(conf, id);
  const elsewhere = new Set(otherServices(client, id).map((s) => s.code));
  const gone = new Set(description.services.map((s) => s.code).filter((code) => !elsewhere.has(code)));
  return replaceClient(conf, {
    ...client,
    serviceDescriptions: client.serviceDescriptions.filter((d) => d !== description),
    endpoints: client.endpoints.filter((e) => !gone.has(e.serviceCode)),
    accessRights: client.accessRights.filter((r) => !gone.has(r.serviceCode)),
  });
}

/**
 * Disables a description's services; callers get ServiceDisabled with the notice (none: no notice).
 * @throws ServiceDescriptionNotFound
 */
export function disableServiceDescription(conf: ServerConf, id: number, notice?: string): ServerConf {
  const { client, description } = findDescription(conf, id);
  return replaceClient(conf, withDescription(client, { ...description, disabled: true, disabledNotice: notice }));
}

/** Enables a description's services; its last notice is kept for the next disable, as in the reference. @throws ServiceDescriptionNotFound */
export function enableServiceDescription(conf: ServerConf, id: number): ServerConf {
  const { client, description } = findDescription(conf, id);
  return replaceClient(conf, withDescription(client, { ...description, disabled: false }));
}

function wsdlRefresh(conf: ServerConf, id: number, parsed: readonly ParsedWsdlService[], url: string) {
  const { client, description } = findDescription(conf, id);
  if (description.type !== 'WSDL') refuse('WrongServiceDescriptionType', 'wrong_servicedescription_type', { id, expected: 'WSDL', actual: description.type });
  checkUrl(url);
  checkWsdlUrlFree(client, url, id);
  checkWsdlServices(client, parsed, id);
  // A service that stays keeps its URL, timeout and TLS authentication.
  const services = parsed.map((p) => {
    const old = description.services.find((s) => fullServiceCode(s) === fullServiceCode(p));
    return old ? { ...wsdlService(p), url: old.url, timeoutSeconds: old.timeoutSeconds, sslAuthentication: old.sslAuthentication } : wsdlService(p);
  });
  const newFull = new Set(services.map(fullServiceCode));
  const oldFull = new Set(description.services.map(fullServiceCode));
  const removed = description.services.filter((s) => !newFull.has(fullServiceCode(s)));
  const added = services.filter((s) => !oldFull.has(fullServiceCode(s)));
  return { client, description, services, removed, added };
}

/** What refreshing (or re-pointing) a WSDL description would add and remove: the adding_services and deleting_services warnings. @throws as refreshWsdlDescription */
export function wsdlRefreshChanges(conf: ServerConf, id: number, parsed: readonly ParsedWsdlService[], url?: string): DescriptionChanges {
  const r = wsdlRefresh(conf, id, parsed, url ?? findDescription(conf, id).description.url);
  return { added: r.added.map(fullServiceCode), removed: r.removed.map(fullServiceCode) };
}

/**
 * Replaces a WSDL description's services with those read again from `url` (its own on refresh, a
 * new one on edit). Services that stay keep their settings and access rights; removed services lose
 * their endpoints and, unless a new service has the same code, their access rights; new services get
 * base endpoints. The caller asks about wsdlRefreshChanges first unless warnings are ignored.
 * @throws ServiceDescriptionNotFound, WrongServiceDescriptionType, MalformedUrl, WsdlExists,
 *   InvalidWsdlServiceIdentifier, ServiceAlreadyExists
 */
export function refreshWsdlDescription(conf: ServerConf, id: number, parsed: readonly ParsedWsdlService[], now = new Date(), url?: string): ServerConf {
  const { client, description, services, removed } = wsdlRefresh(conf, id, parsed, url ?? findDescription(conf, id).description.url);
  // A code that stays here or in another description of the client keeps its endpoints and rights
  // (the guard the reference's delete has; its refresh lacks it and strips the other description's).
  const kept = new Set([...services, ...otherServices(client, id)].map((s) => s.code));
  const gone = new Set(removed.map((s) => s.code).filter((code) => !kept.has(code)));
  const refreshed: ServiceDescriptionConf = { ...description, url: url ?? description.url, refreshedAt: now.toISOString(), services };
  return replaceClient(conf, {
    ...withDescription(client, refreshed),
    accessRights: client.accessRights.filter((r) => !gone.has(r.serviceCode)),
    endpoints: withBaseEndpoints(client.endpoints.filter((e) => !gone.has(e.serviceCode)), services),
  });
}

/** A rename of a REST or OpenAPI 3 service: its endpoints and their access rights follow it. */
function renameService(client: LocalClient, description: ServiceDescriptionConf, newCode: string | undefined): { client: LocalClient; description: ServiceDescriptionConf } {
  const oldCode = description.services[0]!.code;
  if (newCode === undefined || newCode === oldCode) return { client, description };
  const renamed: ServiceDescriptionConf = { ...description, services: description.services.map((s) => (s.code === oldCode ? { ...s, code: newCode } : s)) };
  return {
    description: renamed,
    client: {
      ...withDescription(client, renamed),
      endpoints: client.endpoints.map((e) => (e.serviceCode === oldCode ? { ...e, serviceCode: newCode } : e)),
      accessRights: client.accessRights.map((r) => (r.serviceCode === oldCode ? { ...r, serviceCode: newCode } : r)),
    },
  };
}

function openApiRefresh(client: LocalClient, description: ServiceDescriptionConf, operations: readonly ParsedOperation[]) {
  const codes = new Set(description.services.map((s) => s.code));
  const parsed = openApiEndpoints(description.services[0]!.code, operations);
  // A hand-made endpoint the document now describes becomes generated.
  const endpoints = client.endpoints.map((e) => (codes.has(e.serviceCode) && !e.generated && parsed.some((p) => sameEndpoint(p, e)) ? { ...e, generated: true } : e));
  const removed = endpoints.filter((e) => codes.has(e.serviceCode) && e.generated && !parsed.some((p) => sameEndpoint(p, e)));
  const added = parsed.filter((p) => !endpoints.some((e) => sameEndpoint(e, p)));
  return { endpoints, removed, added };
}

function openApiTarget(conf: ServerConf, id: number) {
  const found = findDescription(conf, id);
  if (found.description.type !== 'OPENAPI3') refuse('WrongServiceDescriptionType', 'wrong_servicedescription_type', { id, expected: 'OPENAPI3', actual: found.description.type });
  return found;
}

/** What refreshing an OpenAPI 3 description would add and remove (`METHOD path`): the adding_endpoints and deleting_endpoints warnings. @throws ServiceDescriptionNotFound, WrongServiceDescriptionType */
export function openApiRefreshChanges(conf: ServerConf, id: number, operations: readonly ParsedOperation[]): DescriptionChanges {
  const { client, description } = openApiTarget(conf, id);
  const r = openApiRefresh(client, description, operations);
  const label = (e: EndpointRef) => `${e.method} ${e.path}`;
  return { added: r.added.map(label), removed: r.removed.map(label) };
}

/**
 * Replaces an OpenAPI 3 description's generated endpoints with the operations read again from its
 * document (refresh), or from a new URL and under a new service code (edit). Endpoints that stay keep
 * their access rights; removed generated endpoints lose theirs; hand-made endpoints stay. The
 * service's URL is not changed (the reference keeps it).
 * @throws ServiceDescriptionNotFound, WrongServiceDescriptionType, MalformedUrl, ServiceCodeAlreadyExists, UrlAlreadyExists
 */
export function refreshOpenApiDescription(conf: ServerConf, id: number, operations: readonly ParsedOperation[], now = new Date(), edit: { url?: string; serviceCode?: string } = {}): ServerConf {
  const found = openApiTarget(conf, id);
  const url = edit.url ?? found.description.url;
  checkUrl(url);
  const { client, description } = renameService(found.client, found.description, edit.serviceCode);
  const { endpoints, removed, added } = openApiRefresh(client, description, operations);
  const refreshed: ServiceDescriptionConf = { ...description, url, refreshedAt: now.toISOString() };
  const isRemoved = (r: EndpointRef) => removed.some((e) => sameEndpoint(e, r));
  const result: LocalClient = {
    ...withDescription(client, refreshed),
    endpoints: [...endpoints.filter((e) => !removed.includes(e)), ...added],
    accessRights: client.accessRights.filter((r) => !isRemoved(r)),
  };
  // Only an edit checks for clashes; a plain refresh changes neither the code nor the URL (as the reference).
  if (edit.url !== undefined || edit.serviceCode !== undefined) {
    checkServiceCodesFree(result, refreshed);
    checkUrlFree(result, refreshed);
  }
  return replaceClient(conf, result);
}

/**
 * Changes a REST description's URL (also its service's) and service code (endpoints and access rights follow).
 * @throws ServiceDescriptionNotFound, WrongServiceDescriptionType, MalformedUrl, ServiceCodeAlreadyExists, UrlAlreadyExists
 */
export function updateRestDescription(conf: ServerConf, id: number, edit: { url: string; serviceCode?: string }, now = new Date()): ServerConf {
  const found = findDescription(conf, id);
  if (found.description.type !== 'REST') refuse('WrongServiceDescriptionType', 'wrong_servicedescription_type', { id, expected: 'REST', actual: found.description.type });
  checkUrl(edit.url);
  const { client, description } = renameService(found.client, found.description, edit.serviceCode);
  const updated: ServiceDescriptionConf = { ...description, url: edit.url, refreshedAt: now.toISOString(), services: description.services.map((s) => ({ ...s, url: edit.url })) };
  const result = withDescription(client, updated);
  checkServiceCodesFree(result, updated);
  checkUrlFree(result, updated);
  return replaceClient(conf, result);
}

// --- Services and endpoints ---------------------------------------------------------------------

/** A client's service by its full code (`code.version`, or `code` without a version). @throws ServiceNotFound */
export function findServiceByFullCode(client: LocalClient, full: string): { description: ServiceDescriptionConf; service: ServiceConf } {
  for (const description of client.serviceDescriptions) {
    const service = description.services.find((s) => fullServiceCode(s) === full);
    if (service) return { description, service };
  }
  return refuse('ServiceNotFound', 'service_not_found', { service: full, clientId: formatClientId(client.id) });
}

export interface ServiceUpdate {
  readonly url: string;
  readonly timeoutSeconds: number;
  readonly sslAuthentication: boolean;
  /** Apply to every service of the same description (the reference's url_all, timeout_all, ssl_auth_all). */
  readonly urlAll?: boolean;
  readonly timeoutAll?: boolean;
  readonly sslAuthenticationAll?: boolean;
}

/**
 * Sets a service's URL, timeout and TLS authentication, each optionally for every service of its
 * description. TLS authentication is kept only for https URLs. A REST description's URL follows its
 * service's. The caller tests the TLS connection first unless warnings are ignored
 * (internal_server_ssl_handshake_error, internal_server_ssl_error).
 * @throws MalformedUrl, InvalidHttpsUrl, ClientNotFound, ServiceNotFound, UrlAlreadyExists
 */
export function updateService(conf: ServerConf, clientId: ClientId, full: string, update: ServiceUpdate): ServerConf {
  checkUrl(update.url);
  if (update.sslAuthentication && !update.url.startsWith('https://')) refuse('InvalidHttpsUrl', 'invalid_https_url', { url: update.url });
  const client = findClient(conf, clientId);
  const { description, service: target } = findServiceByFullCode(client, full);
  const services = description.services.map((s) => {
    const match = s === target;
    const url = update.urlAll || match ? update.url : s.url;
    const changed: ServiceConf = {
      ...s,
      url,
      timeoutSeconds: update.timeoutAll || match ? update.timeoutSeconds : s.timeoutSeconds,
    };
    if (!update.sslAuthenticationAll && !match) return changed;
    const { sslAuthentication: _, ...rest } = changed;
    return url.startsWith('https://') ? { ...rest, sslAuthentication: update.sslAuthentication } : rest;
  });
  const updated: ServiceDescriptionConf = { ...description, services, ...(description.type === 'REST' ? { url: update.url } : {}) };
  const result = withDescription(client, updated);
  if (description.type === 'REST') checkUrlFree(result, updated);
  return replaceClient(conf, result);
}

function checkEndpointShape(method: string, path: string): void {
  if (!ENDPOINT_METHODS.includes(method)) throw new XrdError('InvalidRequestBody', { reason: `method must be one of ${ENDPOINT_METHODS.join(', ')}`, referenceCode: 'validation_failure' });
  if (path === '') throw new XrdError('InvalidRequestBody', { reason: 'path must not be empty', referenceCode: 'validation_failure' });
}

function findEndpoint(client: LocalClient, ref: EndpointRef): EndpointConf {
  return client.endpoints.find((e) => sameEndpoint(e, ref)) ?? refuse('EndpointNotFound', 'endpoint_not_found', { endpoint: `${ref.serviceCode} ${ref.method} ${ref.path}` });
}

/**
 * Adds a hand-made endpoint to a REST or OpenAPI 3 service (never a WSDL one).
 * @throws ClientNotFound, ServiceNotFound, WrongServiceDescriptionType, InvalidRequestBody, EndpointAlreadyExists
 */
export function addEndpoint(conf: ServerConf, clientId: ClientId, full: string, method: string, path: string): ServerConf {
  const client = findClient(conf, clientId);
  const { description, service } = findServiceByFullCode(client, full);
  if (description.type === 'WSDL') refuse('WrongServiceDescriptionType', 'wrong_servicedescription_type', { id: description.id, expected: 'OPENAPI3 or REST', actual: 'WSDL' });
  checkEndpointShape(method, path);
  const endpoint: EndpointConf = { serviceCode: service.code, method, path, generated: false };
  if (client.endpoints.some((e) => sameEndpoint(e, endpoint))) refuse('EndpointAlreadyExists', 'endpoint_already_exists', { endpoint: `${method} ${path}` });
  return replaceClient(conf, { ...client, endpoints: [...client.endpoints, endpoint] });
}

/**
 * Changes a hand-made endpoint's method and/or path; its access rights follow it. Generated
 * endpoints belong to their description and cannot be edited.
 * @throws ClientNotFound, InvalidRequestBody, EndpointNotFound, IllegalGeneratedEndpointUpdate, EndpointAlreadyExists
 */
export function updateEndpoint(conf: ServerConf, clientId: ClientId, ref: EndpointRef, change: { method?: string; path?: string }): ServerConf {
  const client = findClient(conf, clientId);
  if (change.method === undefined && change.path === undefined) throw new XrdError('InvalidRequestBody', { reason: 'method or path is required', referenceCode: 'validation_failure' });
  const endpoint = findEndpoint(client, ref);
  if (endpoint.generated) refuse('IllegalGeneratedEndpointUpdate', 'illegal_generated_endpoint_update', { endpoint: `${ref.method} ${ref.path}` });
  const updated: EndpointConf = { ...endpoint, method: change.method ?? endpoint.method, path: change.path ?? endpoint.path };
  checkEndpointShape(updated.method, updated.path);
  if (client.endpoints.some((e) => e !== endpoint && sameEndpoint(e, updated))) refuse('EndpointAlreadyExists', 'endpoint_already_exists', { endpoint: `${updated.method} ${updated.path}` });
  return replaceClient(conf, {
    ...client,
    endpoints: client.endpoints.map((e) => (e === endpoint ? updated : e)),
    accessRights: client.accessRights.map((r) => (sameEndpoint(r, endpoint) ? { ...r, method: updated.method, path: updated.path } : r)),
  });
}

/**
 * Deletes a hand-made endpoint with its access rights.
 * @throws ClientNotFound, EndpointNotFound, IllegalGeneratedEndpointRemove
 */
export function deleteEndpoint(conf: ServerConf, clientId: ClientId, ref: EndpointRef): ServerConf {
  const client = findClient(conf, clientId);
  const endpoint = findEndpoint(client, ref);
  if (endpoint.generated) refuse('IllegalGeneratedEndpointRemove', 'illegal_generated_endpoint_remove', { endpoint: `${ref.method} ${ref.path}` });
  return replaceClient(conf, {
    ...client,
    endpoints: client.endpoints.filter((e) => e !== endpoint),
    accessRights: client.accessRights.filter((r) => !sameEndpoint(r, endpoint)),
  });
}

// --- Access rights --------------------------------------------------------------------------------

const LOCAL_GROUP_PREFIX = 'LOCALGROUP:';
const GLOBAL_GROUP_PREFIX = 'GLOBALGROUP:';

/** The subject that names one of the client's local groups. */
export function localGroupSubject(code: string): AccessSubject {
  return `${LOCAL_GROUP_PREFIX}${code}`;
}

/**
 * Who may be given access (ServiceClientIdentifierConverter, AccessRightService.verifyServiceClientObjectsExist):
 * a subsystem or a global group that `known` (global configuration) confirms, or one of the client's
 * local groups. Members are not service clients in the reference (invalid_service_client_id).
 */
function checkSubjects(client: LocalClient, subjects: readonly AccessSubject[], known: (subject: AccessSubject) => boolean): void {
  if (subjects.length === 0) throw new XrdError('InvalidRequestBody', { reason: 'no service clients given', referenceCode: 'validation_failure' });
  for (const subject of subjects) {
    const local = subject.startsWith(LOCAL_GROUP_PREFIX);
    if (!local && !subject.startsWith(GLOBAL_GROUP_PREFIX) && subject.split('/').length !== 4) refuse('InvalidServiceClientId', 'invalid_service_client_id', { subject });
    const ok = local ? client.localGroups.some((g) => localGroupSubject(g.code) === subject) : known(subject);
    if (!ok) refuse('ServiceClientNotFound', 'service_client_not_found', { subject });
  }
}

function grant(client: LocalClient, endpoints: readonly EndpointRef[], subjects: readonly AccessSubject[], now: Date): LocalClient {
  const grantedAt = now.toISOString();
  const added: AccessRightConf[] = [];
  for (const e of endpoints) {
    for (const subject of subjects) {
      if ([...client.accessRights, ...added].some((r) => r.subject === subject && sameEndpoint(r, e))) {
        refuse('DuplicateAccessRight', 'duplicate_accessright', { subject, endpoint: `${e.serviceCode} ${e.method} ${e.path}` });
      }
      added.push({ subject, serviceCode: e.serviceCode, method: e.method, path: e.path, grantedAt });
    }
  }
  return { ...client, accessRights: [...client.accessRights, ...added] };
}

/** Every right given must exist, or none is removed (accessright_not_found). */
function revoke(client: LocalClient, endpoints: readonly EndpointRef[], subjects: readonly AccessSubject[]): LocalClient {
  for (const e of endpoints) {
    for (const subject of subjects) {
      if (!client.accessRights.some((r) => r.subject === subject && sameEndpoint(r, e))) refuse('AccessRightNotFound', 'accessright_not_found', { subject, endpoint: `${e.serviceCode} ${e.method} ${e.path}` });
    }
  }
  return { ...client, accessRights: client.accessRights.filter((r) => !(subjects.includes(r.subject) && endpoints.some((e) => sameEndpoint(r, e)))) };
}

/** The base endpoint of a service code, where SOAP rights and whole-service REST rights are given. */
function baseEndpointOf(client: LocalClient, serviceCode: string): EndpointConf {
  return client.endpoints.find((e) => e.serviceCode === serviceCode && e.method === ANY_METHOD && e.path === ANY_PATH)
    ?? refuse('ServiceNotFound', 'service_not_found', { service: serviceCode, clientId: formatClientId(client.id) });
}

/**
 * Gives subjects access to a whole service (its base endpoint), by full service code.
 * @throws ClientNotFound, ServiceNotFound, InvalidRequestBody, ServiceClientNotFound, DuplicateAccessRight
 */
export function addServiceAccessRights(conf: ServerConf, clientId: ClientId, full: string, subjects: readonly AccessSubject[], known: (subject: AccessSubject) => boolean, now = new Date()): ServerConf {
  const client = findClient(conf, clientId);
  const base = baseEndpointOf(client, findServiceByFullCode(client, full).service.code);
  checkSubjects(client, subjects, known);
  return replaceClient(conf, grant(client, [base], subjects, now));
}

/** @throws ClientNotFound, ServiceNotFound, AccessRightNotFound */
export function deleteServiceAccessRights(conf: ServerConf, clientId: ClientId, full: string, subjects: readonly AccessSubject[]): ServerConf {
  const client = findClient(conf, clientId);
  const base = baseEndpointOf(client, findServiceByFullCode(client, full).service.code);
  return replaceClient(conf, revoke(client, [base], subjects));
}

/** Gives subjects access to one REST endpoint. @throws ClientNotFound, EndpointNotFound, InvalidRequestBody, ServiceClientNotFound, DuplicateAccessRight */
export function addEndpointAccessRights(conf: ServerConf, clientId: ClientId, ref: EndpointRef, subjects: readonly AccessSubject[], known: (subject: AccessSubject) => boolean, now = new Date()): ServerConf {
  const client = findClient(conf, clientId);
  const endpoint = findEndpoint(client, ref);
  checkSubjects(client, subjects, known);
  return replaceClient(conf, grant(client, [endpoint], subjects, now));
}

/** @throws ClientNotFound, EndpointNotFound, AccessRightNotFound */
export function deleteEndpointAccessRights(conf: ServerConf, clientId: ClientId, ref: EndpointRef, subjects: readonly AccessSubject[]): ServerConf {
  const client = findClient(conf, clientId);
  return replaceClient(conf, revoke(client, [findEndpoint(client, ref)], subjects));
}

/**
 * Gives one subject access to several services at once, by service code (POST
 * /clients/{id}/service-clients/{sc}/access-rights).
 * @throws ClientNotFound, InvalidRequestBody, ServiceClientNotFound, ServiceNotFound, DuplicateAccessRight
 */
export function addServiceClientAccessRights(conf: ServerConf, clientId: ClientId, subject: AccessSubject, serviceCodes: readonly string[], known: (subject: AccessSubject) => boolean, now = new Date()): ServerConf {
  const client = findClient(conf, clientId);
  checkSubjects(client, [subject], known);
  return replaceClient(conf, grant(client, serviceCodes.map((code) => baseEndpointOf(client, code)), [subject], now));
}

/**
 * Takes a subject's access to whole services away, with its rights to their other endpoints.
 * @throws ClientNotFound, ServiceNotFound, AccessRightNotFound (no right to a base endpoint)
 */
export function deleteServiceClientAccessRights(conf: ServerConf, clientId: ClientId, subject: AccessSubject, serviceCodes: readonly string[]): ServerConf {
  const client = findClient(conf, clientId);
  const revoked = revoke(client, serviceCodes.map((code) => baseEndpointOf(client, code)), [subject]);
  return replaceClient(conf, { ...revoked, accessRights: revoked.accessRights.filter((r) => !(r.subject === subject && serviceCodes.includes(r.serviceCode))) });
}

// --- Local groups ---------------------------------------------------------------------------------

function findGroup(client: LocalClient, code: string): LocalGroupConf {
  return client.localGroups.find((g) => g.code === code) ?? refuse('LocalGroupNotFound', 'local_group_not_found', { code, clientId: formatClientId(client.id) });
}

function changeGroup(conf: ServerConf, clientId: ClientId, code: string, change: (group: LocalGroupConf) => LocalGroupConf): ServerConf {
  const client = findClient(conf, clientId);
  const group = findGroup(client, code);
  return replaceClient(conf, { ...client, localGroups: client.localGroups.map((g) => (g === group ? change(group) : g)) });
}

/** Descriptions as the reference's API bounds them (LocalGroupAdd, LocalGroupDescription). */
const GROUP_DESCRIPTION = /^[a-zA-Z0-9\-_,.;:!? ]{1,255}$/;

/** A code of 1–255 characters, a description of 1–255 letters, digits, spaces and `-_,.;:!?`. */
function checkGroupText(code: string | undefined, description: string): void {
  if (code !== undefined && (code.length === 0 || code.length > 255)) throw new XrdError('InvalidRequestBody', { reason: 'code must have 1 to 255 characters', referenceCode: 'validation_failure' });
  if (!GROUP_DESCRIPTION.test(description)) throw new XrdError('InvalidRequestBody', { reason: 'description must have 1 to 255 letters, digits, spaces or -_,.;:!?', referenceCode: 'validation_failure' });
}

/** @throws ClientNotFound, InvalidRequestBody, LocalGroupCodeAlreadyExists */
export function addLocalGroup(conf: ServerConf, clientId: ClientId, code: string, description: string, now = new Date()): ServerConf {
  const client = findClient(conf, clientId);
  checkGroupText(code, description);
  if (client.localGroups.some((g) => g.code === code)) refuse('LocalGroupCodeAlreadyExists', 'local_group_code_already_exists', { code });
  return replaceClient(conf, { ...client, localGroups: [...client.localGroups, { code, description, updatedAt: now.toISOString(), members: [] }] });
}

/** @throws ClientNotFound, LocalGroupNotFound, InvalidRequestBody */
export function updateLocalGroupDescription(conf: ServerConf, clientId: ClientId, code: string, description: string, now = new Date()): ServerConf {
  checkGroupText(undefined, description);
  return changeGroup(conf, clientId, code, (g) => ({ ...g, description, updatedAt: now.toISOString() }));
}

/** Deletes a local group with the access rights given to it. @throws ClientNotFound, LocalGroupNotFound */
export function deleteLocalGroup(conf: ServerConf, clientId: ClientId, code: string): ServerConf {
  const client = findClient(conf, clientId);
  const group = findGroup(client, code);
  const subject = localGroupSubject(code);
  return replaceClient(conf, {
    ...client,
    localGroups: client.localGroups.filter((g) => g !== group),
    accessRights: client.accessRights.filter((r) => r.subject !== subject),
  });
}

/**
 * Adds members: each a client that `known` confirms (a client of this server or one in global
 * configuration) and not already in the group; an id given twice counts once, as in the reference.
 * @throws ClientNotFound, LocalGroupNotFound, InvalidRequestBody (none given), LocalGroupMemberNotFound, LocalGroupMemberAlreadyExists
 */
export function addLocalGroupMembers(conf: ServerConf, clientId: ClientId, code: string, members: readonly ClientId[], known: (id: ClientId) => boolean, now = new Date()): ServerConf {
  if (members.length === 0) throw new XrdError('InvalidRequestBody', { reason: 'no members given', referenceCode: 'missing_member_id' });
  const unique = members.filter((id, i) => members.findIndex((other) => sameClientId(other, id)) === i);
  return changeGroup(conf, clientId, code, (g) => {
    const list = [...g.members];
    for (const id of unique) {
      if (!known(id) && !conf.clients.some((c) => sameClientId(c.id, id))) refuse('LocalGroupMemberNotFound', 'local_group_member_not_found', { member: formatClientId(id), code });
      if (list.some((m) => sameClientId(m.id, id))) refuse('LocalGroupMemberAlreadyExists', 'local_group_member_already_exists', { member: formatClientId(id), code });
      list.push({ id, addedAt: now.toISOString() });
    }
    return { ...g, members: list };
  });
}

/** Removes members, all or none. @throws ClientNotFound, LocalGroupNotFound, LocalGroupMemberNotFound */
export function deleteLocalGroupMembers(conf: ServerConf, clientId: ClientId, code: string, members: readonly ClientId[]): ServerConf {
  return changeGroup(conf, clientId, code, (g) => {
    const missing = members.length === 0 ? undefined : members.find((id) => !g.members.some((m) => sameClientId(m.id, id)));
    if (members.length === 0 || missing) refuse('LocalGroupMemberNotFound', 'local_group_member_not_found', { member: missing ? formatClientId(missing) : '', code });
    return { ...g, members: g.members.filter((m) => !members.some((id) => sameClientId(id, m.id))) };
  });
}
