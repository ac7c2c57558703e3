/**
 * What a service administrator does with a client's services (seed 003, the reference's
 * ServiceDescriptionService, ServiceService, EndpointService, AccessRightService and
 * LocalGroupService behind its /api/v1): service descriptions from a WSDL, an OpenAPI 3 document or
 * a REST base URL, refreshed with the reference's warnings; services' URL, timeout and TLS
 * authentication; REST endpoints; access rights per service and per endpoint; local groups.
 *
 * The checks are changes.ts's, run inside the store's audited transaction; what they need from
 * outside (the fetched and parsed document, global configuration) is gathered here first. Views
 * use the reference's field names (snake_case), so the API answers in its shapes.
 *
 * Identifiers in paths as the reference's: clients `INSTANCE:CLASS:CODE[:SUBSYSTEM]`, services
 * `<client>:<full service code>`, descriptions by number. Endpoints and local groups, which the
 * reference numbers in its database, are named here by what identifies them within their client
 * (service code, method, path; group code), carried as an opaque URL-safe id.
 */
import { XrdError } from '../platform/errors.ts';
import { formatClientId, parseClientId, sameClientId, type ClientId } from '../protocol/identifiers.ts';
import * as changes from '../serverconf/changes.ts';
import { ANY_METHOD, ANY_PATH, type AccessRightConf, type AccessSubject, type EndpointConf, type LocalClient, type LocalGroupConf, type ServerConf, type ServiceConf, type ServiceDescriptionConf } from '../serverconf/model.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { checkServiceCodeNotReserved, fetchDescription, parseOpenApi, parseWsdl } from '../serverconf/service-descriptions.ts';

/** Fetches and reads a description's document. */
export interface DescriptionReader {
  wsdl(url: string): Promise<readonly changes.ParsedWsdlService[]>;
  /** `warnings`: what the parser reports without refusing (the reference's openapi_validation_warnings). */
  openApi(url: string): Promise<{ readonly baseUrl: string; readonly operations: readonly changes.ParsedOperation[]; readonly warnings: readonly string[] }>;
}

/**
 * The documents at their URLs, fetched and read as the reference reads them (service-descriptions.ts),
 * presenting the server's internal TLS key to a server that asks for a client certificate.
 */
export function documentReader(internalTls: () => { readonly cert: string; readonly key: string }): DescriptionReader {
  return {
    wsdl: async (url) => parseWsdl(await fetchDescription(url, 'WSDL', internalTls())),
    openApi: async (url) => {
      const d = parseOpenApi(await fetchDescription(url, 'OPENAPI3', internalTls()), url);
      return { baseUrl: d.baseUrl, operations: d.endpoints, warnings: d.warnings };
    },
  };
}

/** The store, the actor and global configuration, as ServerAdmin holds them. */
export interface ConfigurationAccess {
  read(): Promise<ServerConf>;
  change(action: string, detail: Record<string, unknown>, change: (conf: ServerConf) => ServerConf): Promise<ServerConf>;
  globalConf(): GlobalConf | undefined;
}

export interface ServiceDescriptionView {
  readonly id: string;
  readonly url: string;
  readonly type: ServiceDescriptionConf['type'];
  readonly disabled: boolean;
  readonly disabled_notice: string | null;
  readonly refreshed_at: string;
  readonly services: ServiceView[];
  readonly client_id: string;
}

export interface ServiceView {
  readonly id: string;
  readonly full_service_code: string;
  readonly service_code: string;
  readonly timeout: number;
  readonly title?: string;
  readonly ssl_auth: boolean;
  readonly url: string;
  readonly endpoints: EndpointView[];
}

export interface EndpointView {
  readonly id: string;
  readonly service_code: string;
  readonly method: string;
  readonly path: string;
  readonly generated: boolean;
}

export interface ServiceClientView {
  readonly id: string;
  readonly name?: string;
  readonly local_group_code?: string;
  readonly service_client_type: 'SUBSYSTEM' | 'GLOBALGROUP' | 'LOCALGROUP';
  readonly rights_given_at: string;
}

/** GET /clients/{id}/service-client-candidates's items: who could be given a right (no rights_given_at yet). */
export type ServiceClientCandidate = Omit<ServiceClientView, 'rights_given_at'>;

/**
 * The reference's candidate search (AccessRightService.findAccessRightHolderCandidates): each given
 * term must be contained in the candidate's field, ignoring case; absent or empty terms match all.
 */
export interface CandidateQuery {
  /** A member's name or a group's description. */
  readonly name?: string;
  readonly type?: ServiceClientView['service_client_type'];
  readonly instance?: string;
  readonly memberClass?: string;
  /** A member code or a group code. */
  readonly memberGroupCode?: string;
  readonly subsystemCode?: string;
}

export interface AccessRightView {
  readonly service_code: string;
  readonly service_title?: string;
  readonly rights_given_at: string;
}

export interface LocalGroupView {
  readonly id: string;
  readonly code: string;
  readonly description: string;
  readonly member_count: number;
  readonly updated_at: string;
  readonly members: { id: string; member_name?: string; created_at: string }[];
}

export interface AddDescriptionRequest {
  readonly url: string;
  readonly type: 'WSDL' | 'OPENAPI3' | 'REST';
  readonly restServiceCode?: string;
  readonly ignoreWarnings?: boolean;
}

export interface UpdateDescriptionRequest extends AddDescriptionRequest {
  readonly newRestServiceCode?: string;
}

export class ServicesAdmin {
  constructor(
    private readonly conf: ConfigurationAccess,
    private readonly reader: DescriptionReader,
  ) {}

  // --- Service descriptions ---------------------------------------------------------------------

  async serviceDescriptions(clientId: string): Promise<ServiceDescriptionView[]> {
    const client = this.client(await this.conf.read(), clientId);
    return client.serviceDescriptions.map((d) => descriptionView(client, d));
  }

  async serviceDescription(id: string): Promise<ServiceDescriptionView> {
    const { client, description } = this.description(await this.conf.read(), id);
    return descriptionView(client, description);
  }

  /**
   * Adds a description, disabled until enabled (the reference's default). The document is fetched
   * and read first; nothing is stored when that fails.
   * @throws ClientNotFound, MalformedUrl, the reader's errors, WsdlExists, ServiceAlreadyExists, UrlAlreadyExists, ServiceCodeAlreadyExists, MissingParameter
   */
  async addServiceDescription(clientId: string, r: AddDescriptionRequest): Promise<ServiceDescriptionView> {
    const id = parseApiClientId(clientId);
    if (r.type !== 'WSDL' && !r.restServiceCode) throw new XrdError('MissingParameter', { parameter: 'rest_service_code', referenceCode: 'missing_parameter' });
    changes.checkDescriptionUrl(await this.conf.read(), id, r.type, r.url);
    const added = await this.read(r.type, r.url, r.restServiceCode, r.ignoreWarnings);
    const conf = await this.conf.change('ADD_SERVICE_DESCRIPTION', { clientId: formatClientId(id), type: r.type, url: r.url, serviceCode: r.restServiceCode }, (c) => changes.addServiceDescription(c, id, added));
    const client = this.client(conf, clientId);
    return descriptionView(client, client.serviceDescriptions.at(-1)!);
  }

  /**
   * Reads the description's document again (from a new URL, or with a new service code, when
   * given) and applies it; without `ignoreWarnings`, services or endpoints that would come or go are
   * refused as the reference's warnings_detected.
   * @throws ServiceDescriptionNotFound, WrongServiceDescriptionType, WarningsDetected, the reader's errors
   */
  async refreshServiceDescription(id: string, r: { ignoreWarnings?: boolean } = {}): Promise<ServiceDescriptionView> {
    const { description } = this.description(await this.conf.read(), id);
    return this.updateServiceDescription(id, { type: description.type, url: description.url, ignoreWarnings: r.ignoreWarnings });
  }

  async updateServiceDescription(id: string, r: UpdateDescriptionRequest): Promise<ServiceDescriptionView> {
    const number = parseNumber(id);
    const { client, description } = this.description(await this.conf.read(), id);
    if (description.type !== r.type) throw new XrdError('WrongServiceDescriptionType', { type: r.type, referenceCode: 'wrong_servicedescription_type' });
    if (r.type === 'REST' && description.url === r.url && !r.newRestServiceCode) return descriptionView(client, description);
    changes.checkDescriptionUrl(await this.conf.read(), client.id, r.type, r.url, number);
    const detail = { id: number, url: r.url, type: r.type, newServiceCode: r.newRestServiceCode };
    let conf: ServerConf;
    if (r.type === 'WSDL') {
      const parsed = await this.reader.wsdl(r.url);
      conf = await this.conf.change(description.url === r.url ? 'REFRESH_SERVICE_DESCRIPTION' : 'EDIT_SERVICE_DESCRIPTION', detail, (c) => {
        if (!r.ignoreWarnings) warnIfAny(changes.wsdlRefreshChanges(c, number, parsed, r.url), 'services');
        return changes.refreshWsdlDescription(c, number, parsed, new Date(), r.url);
      });
    } else if (r.type === 'OPENAPI3') {
      const { operations, warnings } = await this.reader.openApi(r.url);
      if (warnings.length && !r.ignoreWarnings) warn([{ code: 'openapi_validation_warnings', metadata: [...warnings] }]);
      conf = await this.conf.change(description.url === r.url ? 'REFRESH_SERVICE_DESCRIPTION' : 'EDIT_SERVICE_DESCRIPTION', detail, (c) => {
        if (!r.ignoreWarnings) warnIfAny(changes.openApiRefreshChanges(c, number, operations), 'endpoints');
        return changes.refreshOpenApiDescription(c, number, operations, new Date(), { url: r.url, ...(r.newRestServiceCode ? { serviceCode: r.newRestServiceCode } : {}) });
      });
    } else {
      conf = await this.conf.change('EDIT_SERVICE_DESCRIPTION', detail, (c) => changes.updateRestDescription(c, number, { url: r.url, ...(r.newRestServiceCode ? { serviceCode: r.newRestServiceCode } : {}) }));
    }
    const found = this.description(conf, id);
    return descriptionView(found.client, found.description);
  }

  async enableServiceDescription(id: string): Promise<void> {
    const number = parseNumber(id);
    await this.conf.change('ENABLE_SERVICE_DESCRIPTION', { id: number }, (c) => changes.enableServiceDescription(c, number));
  }

  /** Callers of its services are told `notice` (ServiceDisabled). */
  async disableServiceDescription(id: string, notice?: string): Promise<void> {
    const number = parseNumber(id);
    await this.conf.change('DISABLE_SERVICE_DESCRIPTION', { id: number, notice }, (c) => changes.disableServiceDescription(c, number, notice));
  }

  async deleteServiceDescription(id: string): Promise<void> {
    const number = parseNumber(id);
    await this.conf.change('DELETE_SERVICE_DESCRIPTION', { id: number }, (c) => changes.deleteServiceDescription(c, number));
  }

  // --- Services and endpoints -------------------------------------------------------------------

  async service(serviceId: string): Promise<ServiceView> {
    const { client, full } = await this.serviceRef(serviceId);
    return serviceView(client, findService(client, full));
  }

  /** @throws MalformedUrl, InvalidHttpsUrl, ServiceNotFound, UrlAlreadyExists */
  async updateService(serviceId: string, update: changes.ServiceUpdate): Promise<ServiceView> {
    const { client, full } = await this.serviceRef(serviceId);
    const conf = await this.conf.change('EDIT_SERVICE', { serviceId, ...update }, (c) => changes.updateService(c, client.id, full, update));
    return serviceView(localClientOf(conf, client.id), findService(localClientOf(conf, client.id), full));
  }

  /** @throws WrongServiceDescriptionType (a SOAP service), EndpointAlreadyExists */
  async addEndpoint(serviceId: string, method: string, path: string): Promise<EndpointView> {
    const { client, full } = await this.serviceRef(serviceId);
    const code = findService(client, full).code;
    await this.conf.change('ADD_ENDPOINT', { serviceId, method, path }, (c) => changes.addEndpoint(c, client.id, full, method, path));
    return endpointView(client.id, { serviceCode: code, method, path, generated: false });
  }

  async endpoint(id: string): Promise<EndpointView> {
    const { client, endpoint } = this.endpointRef(await this.conf.read(), id);
    return endpointView(client.id, endpoint);
  }

  /** @throws EndpointNotFound, IllegalGeneratedEndpointUpdate, EndpointAlreadyExists */
  async updateEndpoint(id: string, change: { method: string; path: string }): Promise<EndpointView> {
    const { client, endpoint } = this.endpointRef(await this.conf.read(), id);
    await this.conf.change('EDIT_ENDPOINT', { clientId: formatClientId(client.id), ...endpoint, to: change }, (c) => changes.updateEndpoint(c, client.id, endpoint, change));
    return endpointView(client.id, { ...endpoint, ...change });
  }

  async deleteEndpoint(id: string): Promise<void> {
    const { client, endpoint } = this.endpointRef(await this.conf.read(), id);
    await this.conf.change('DELETE_ENDPOINT', { clientId: formatClientId(client.id), ...endpoint }, (c) => changes.deleteEndpoint(c, client.id, endpoint));
  }

  // --- Access rights ----------------------------------------------------------------------------

  /** Who may call the whole service (rights on its base endpoint). */
  async serviceClients(serviceId: string): Promise<ServiceClientView[]> {
    const { client, full } = await this.serviceRef(serviceId);
    return this.rightsOn(client, { serviceCode: findService(client, full).code, method: ANY_METHOD, path: ANY_PATH });
  }

  /** @throws InvalidServiceClientId, ServiceClientNotFound, DuplicateAccessRight */
  async addServiceClients(serviceId: string, ids: readonly string[]): Promise<ServiceClientView[]> {
    const { client, full } = await this.serviceRef(serviceId);
    const subjects = this.subjects(client, ids);
    const conf = await this.conf.change('ADD_SERVICE_ACCESS_RIGHTS', { serviceId, subjects }, (c) => changes.addServiceAccessRights(c, client.id, full, subjects, this.known()));
    return this.rightsOn(localClientOf(conf, client.id), { serviceCode: findService(client, full).code, method: ANY_METHOD, path: ANY_PATH });
  }

  /** @throws AccessRightNotFound (none removed then) */
  async deleteServiceClients(serviceId: string, ids: readonly string[]): Promise<void> {
    const { client, full } = await this.serviceRef(serviceId);
    const subjects = this.subjects(client, ids);
    await this.conf.change('DELETE_SERVICE_ACCESS_RIGHTS', { serviceId, subjects }, (c) => changes.deleteServiceAccessRights(c, client.id, full, subjects));
  }

  async endpointServiceClients(id: string): Promise<ServiceClientView[]> {
    const { client, endpoint } = this.endpointRef(await this.conf.read(), id);
    return this.rightsOn(client, endpoint);
  }

  async addEndpointServiceClients(id: string, ids: readonly string[]): Promise<ServiceClientView[]> {
    const { client, endpoint } = this.endpointRef(await this.conf.read(), id);
    const subjects = this.subjects(client, ids);
    const conf = await this.conf.change('ADD_ENDPOINT_ACCESS_RIGHTS', { clientId: formatClientId(client.id), ...endpoint, subjects }, (c) => changes.addEndpointAccessRights(c, client.id, endpoint, subjects, this.known()));
    return this.rightsOn(localClientOf(conf, client.id), endpoint);
  }

  async deleteEndpointServiceClients(id: string, ids: readonly string[]): Promise<void> {
    const { client, endpoint } = this.endpointRef(await this.conf.read(), id);
    const subjects = this.subjects(client, ids);
    await this.conf.change('DELETE_ENDPOINT_ACCESS_RIGHTS', { clientId: formatClientId(client.id), ...endpoint, subjects }, (c) => changes.deleteEndpointAccessRights(c, client.id, endpoint, subjects));
  }

  /** Everyone with a right to some whole service of the client, once each. */
  async clientServiceClients(clientId: string): Promise<ServiceClientView[]> {
    const client = this.client(await this.conf.read(), clientId);
    const seen = new Map<string, AccessRightConf>();
    for (const r of client.accessRights) if (r.method === ANY_METHOD && r.path === ANY_PATH && !seen.has(r.subject)) seen.set(r.subject, r);
    return [...seen.values()].map((r) => this.serviceClientView(client, r));
  }

  /** The whole services a subject may call. */
  async serviceClientAccessRights(clientId: string, serviceClientId: string): Promise<AccessRightView[]> {
    const client = this.client(await this.conf.read(), clientId);
    const [subject] = this.subjects(client, [serviceClientId]);
    const rights = client.accessRights.filter((r) => r.subject === subject && r.method === ANY_METHOD && r.path === ANY_PATH);
    if (rights.length === 0 && !client.localGroups.some((g) => changes.localGroupSubject(g.code) === subject) && !this.known()(subject!)) {
      throw new XrdError('ServiceClientNotFound', { subject: subject!, referenceCode: 'service_client_not_found' });
    }
    return rights.map((r) => accessRightView(client, r));
  }

  async addServiceClientAccessRights(clientId: string, serviceClientId: string, serviceCodes: readonly string[]): Promise<AccessRightView[]> {
    const client = this.client(await this.conf.read(), clientId);
    const [subject] = this.subjects(client, [serviceClientId]);
    const conf = await this.conf.change('ADD_SERVICE_CLIENT_ACCESS_RIGHTS', { clientId: formatClientId(client.id), subject, serviceCodes }, (c) => changes.addServiceClientAccessRights(c, client.id, subject!, serviceCodes, this.known()));
    const after = localClientOf(conf, client.id);
    return after.accessRights.filter((r) => r.subject === subject && serviceCodes.includes(r.serviceCode) && r.method === ANY_METHOD && r.path === ANY_PATH).map((r) => accessRightView(after, r));
  }

  async deleteServiceClientAccessRights(clientId: string, serviceClientId: string, serviceCodes: readonly string[]): Promise<void> {
    const client = this.client(await this.conf.read(), clientId);
    const [subject] = this.subjects(client, [serviceClientId]);
    await this.conf.change('DELETE_SERVICE_CLIENT_ACCESS_RIGHTS', { clientId: formatClientId(client.id), subject, serviceCodes }, (c) => changes.deleteServiceClientAccessRights(c, client.id, subject!, serviceCodes));
  }

  /**
   * Who could be given rights to the client's services, as the reference lists them: the
   * subsystems of every instance's global configuration (members cannot hold rights), its global
   * groups and the client's local groups, narrowed by `q`. A subsystem's name is its name in global
   * configuration (v5), else its code; `name` searches that and its member's name.
   * @throws ClientNotFound
   */
  async serviceClientCandidates(clientId: string, q: CandidateQuery = {}): Promise<ServiceClientCandidate[]> {
    const client = this.client(await this.conf.read(), clientId);
    const global = this.conf.globalConf();
    /** Each candidate with the fields the terms search: `names` the name term's (a subsystem's own and its member's). */
    const candidates: { view: ServiceClientCandidate; names: string[]; instance?: string; memberClass?: string; code: string; subsystem?: string }[] = [];
    for (const instance of global?.instanceIdentifiers() ?? []) {
      const shared = global!.sharedOf(instance);
      if (!shared) continue;
      for (const member of shared.members) {
        for (const subsystem of member.subsystems) {
          const view = { id: apiClientId({ ...member.id, subsystem }), name: member.subsystemNames?.[subsystem] ?? subsystem, service_client_type: 'SUBSYSTEM' as const };
          candidates.push({ view, names: [view.name, member.name], instance, memberClass: member.id.memberClass, code: member.id.memberCode, subsystem });
        }
      }
      for (const g of shared.globalGroups) candidates.push({ view: { id: `${instance}:${g.groupCode}`, name: g.description, service_client_type: 'GLOBALGROUP' }, names: [g.description], instance, code: g.groupCode });
    }
    for (const g of client.localGroups) {
      candidates.push({ view: { id: encodeRef([formatClientId(client.id), g.code]), name: g.description, local_group_code: g.code, service_client_type: 'LOCALGROUP' }, names: [g.description], code: g.code });
    }
    const has = (value: string | undefined, term: string | undefined) => !term || (value ?? '').toLowerCase().includes(term.toLowerCase());
    return candidates
      .filter((c) => (!q.type || c.view.service_client_type === q.type) && c.names.some((name) => has(name, q.name)) && has(c.instance, q.instance) && has(c.memberClass, q.memberClass) && has(c.code, q.memberGroupCode) && has(c.subsystem, q.subsystemCode))
      .map((c) => c.view);
  }

  // --- Local groups -----------------------------------------------------------------------------

  async localGroups(clientId: string): Promise<LocalGroupView[]> {
    const client = this.client(await this.conf.read(), clientId);
    return client.localGroups.map((g) => this.localGroupView(client, g));
  }

  async localGroup(id: string): Promise<LocalGroupView> {
    const { client, group } = this.groupRef(await this.conf.read(), id);
    return this.localGroupView(client, group);
  }

  /** @throws LocalGroupCodeAlreadyExists */
  async addLocalGroup(clientId: string, code: string, description: string): Promise<LocalGroupView> {
    const id = parseApiClientId(clientId);
    const conf = await this.conf.change('ADD_LOCAL_GROUP', { clientId: formatClientId(id), code, description }, (c) => changes.addLocalGroup(c, id, code, description));
    const client = localClientOf(conf, id);
    return this.localGroupView(client, client.localGroups.find((g) => g.code === code)!);
  }

  async updateLocalGroup(id: string, description: string): Promise<LocalGroupView> {
    const { client, group } = this.groupRef(await this.conf.read(), id);
    const conf = await this.conf.change('EDIT_LOCAL_GROUP_DESC', { clientId: formatClientId(client.id), code: group.code, description }, (c) => changes.updateLocalGroupDescription(c, client.id, group.code, description));
    const after = localClientOf(conf, client.id);
    return this.localGroupView(after, after.localGroups.find((g) => g.code === group.code)!);
  }

  async deleteLocalGroup(id: string): Promise<void> {
    const { client, group } = this.groupRef(await this.conf.read(), id);
    await this.conf.change('DELETE_LOCAL_GROUP', { clientId: formatClientId(client.id), code: group.code }, (c) => changes.deleteLocalGroup(c, client.id, group.code));
  }

  /** Members may be members or subsystems, of this server or in global configuration. @throws LocalGroupMemberNotFound, LocalGroupMemberAlreadyExists */
  async addLocalGroupMembers(id: string, members: readonly string[]): Promise<{ items: string[] }> {
    const { client, group } = this.groupRef(await this.conf.read(), id);
    const ids = [...new Set(members)].map(parseApiClientId);
    const global = this.conf.globalConf();
    await this.conf.change('ADD_LOCAL_GROUP_MEMBERS', { clientId: formatClientId(client.id), code: group.code, members: ids.map(formatClientId) }, (c) =>
      changes.addLocalGroupMembers(c, client.id, group.code, ids, (m) => c.clients.some((x) => sameClientId(x.id, m)) || inGlobalConf(global, m)),
    );
    return { items: [...members] };
  }

  async deleteLocalGroupMembers(id: string, members: readonly string[]): Promise<void> {
    const { client, group } = this.groupRef(await this.conf.read(), id);
    const ids = members.map(parseApiClientId);
    await this.conf.change('DELETE_LOCAL_GROUP_MEMBERS', { clientId: formatClientId(client.id), code: group.code, members: ids.map(formatClientId) }, (c) => changes.deleteLocalGroupMembers(c, client.id, group.code, ids));
  }

  // --- Lookups ----------------------------------------------------------------------------------

  /** The document read, its service codes none of the metaservices'. @throws ServiceCodeReserved, WarningsDetected (OpenAPI validation warnings, unless ignored) */
  private async read(type: AddDescriptionRequest['type'], url: string, serviceCode: string | undefined, ignoreWarnings: boolean | undefined): Promise<changes.NewServiceDescription> {
    if (type === 'WSDL') {
      const services = await this.reader.wsdl(url);
      for (const s of services) checkServiceCodeNotReserved(s.code);
      return { type, url, services };
    }
    checkServiceCodeNotReserved(serviceCode!);
    if (type === 'OPENAPI3') {
      const { baseUrl, operations, warnings } = await this.reader.openApi(url);
      if (warnings.length && !ignoreWarnings) warn([{ code: 'openapi_validation_warnings', metadata: [...warnings] }]);
      return { type, url, serviceCode: serviceCode!, baseUrl, operations };
    }
    return { type, url, serviceCode: serviceCode! };
  }

  private client(conf: ServerConf, clientId: string): LocalClient {
    return localClientOf(conf, parseApiClientId(clientId));
  }

  private description(conf: ServerConf, id: string): { client: LocalClient; description: ServiceDescriptionConf } {
    const number = parseNumber(id);
    for (const client of conf.clients) {
      const description = client.serviceDescriptions.find((d) => d.id === number);
      if (description) return { client, description };
    }
    throw new XrdError('ServiceDescriptionNotFound', { id, referenceCode: 'service_description_not_found' });
  }

  /** `<client id>:<full service code>`: the client id is everything before the last colon. */
  private async serviceRef(serviceId: string): Promise<{ client: LocalClient; full: string }> {
    const colon = serviceId.lastIndexOf(':');
    if (colon < 0) throw new XrdError('ServiceNotFound', { service: serviceId, clientId: '', referenceCode: 'service_not_found' });
    const client = this.client(await this.conf.read(), serviceId.slice(0, colon));
    const full = serviceId.slice(colon + 1);
    findService(client, full);
    return { client, full };
  }

  private endpointRef(conf: ServerConf, id: string): { client: LocalClient; endpoint: EndpointConf } {
    const ref = decodeRef(id);
    const client = ref && conf.clients.find((c) => formatClientId(c.id) === ref[0]);
    const endpoint = client?.endpoints.find((e) => e.serviceCode === ref![1] && e.method === ref![2] && e.path === ref![3]);
    if (!client || !endpoint) throw new XrdError('EndpointNotFound', { id, referenceCode: 'endpoint_not_found' });
    return { client, endpoint };
  }

  private groupRef(conf: ServerConf, id: string): { client: LocalClient; group: LocalGroupConf } {
    const ref = decodeRef(id);
    const client = ref && conf.clients.find((c) => formatClientId(c.id) === ref[0]);
    const group = client?.localGroups.find((g) => g.code === ref![1]);
    if (!client || !group) throw new XrdError('LocalGroupNotFound', { id, referenceCode: 'local_group_not_found' });
    return { client, group };
  }

  /**
   * Service client ids as the reference's API writes them: a subsystem `INST:CLASS:CODE:SUB`, a
   * global group `INST:code`, a local group by its id. @throws InvalidServiceClientId
   */
  private subjects(client: LocalClient, ids: readonly string[]): AccessSubject[] {
    return ids.map((id) => {
      const local = decodeRef(id);
      if (local?.length === 2 && local[0] === formatClientId(client.id)) return changes.localGroupSubject(local[1]!);
      const parts = id.split(':');
      if (parts.length === 2 && parts.every((p) => p !== '')) return `GLOBALGROUP:${parts[0]}/${parts[1]}`;
      if (parts.length === 4 && parts.every((p) => p !== '')) return parts.join('/');
      throw new XrdError('InvalidServiceClientId', { subject: id, referenceCode: 'invalid_service_client_id' });
    });
  }

  /** Whether a subsystem or global group exists in global configuration. */
  private known(): (subject: AccessSubject) => boolean {
    const global = this.conf.globalConf();
    return (subject) => {
      if (!global) return false;
      if (subject.startsWith('GLOBALGROUP:')) {
        const [instance, code] = subject.slice('GLOBALGROUP:'.length).split('/');
        return global.shared.get(instance!)?.globalGroups.some((g) => g.groupCode === code) ?? false;
      }
      const id = parseClientId(subject);
      return id.subsystem !== undefined && inGlobalConf(global, id);
    };
  }

  private rightsOn(client: LocalClient, endpoint: { serviceCode: string; method: string; path: string }): ServiceClientView[] {
    return client.accessRights.filter((r) => r.serviceCode === endpoint.serviceCode && r.method === endpoint.method && r.path === endpoint.path).map((r) => this.serviceClientView(client, r));
  }

  private serviceClientView(client: LocalClient, r: AccessRightConf): ServiceClientView {
    const global = this.conf.globalConf();
    if (r.subject.startsWith('LOCALGROUP:')) {
      const code = r.subject.slice('LOCALGROUP:'.length);
      const group = client.localGroups.find((g) => g.code === code);
      return { id: encodeRef([formatClientId(client.id), code]), name: group?.description, local_group_code: code, service_client_type: 'LOCALGROUP', rights_given_at: r.grantedAt };
    }
    if (r.subject.startsWith('GLOBALGROUP:')) {
      const [instance, code] = r.subject.slice('GLOBALGROUP:'.length).split('/') as [string, string];
      const description = global?.shared.get(instance)?.globalGroups.find((g) => g.groupCode === code)?.description;
      return { id: `${instance}:${code}`, ...(description ? { name: description } : {}), service_client_type: 'GLOBALGROUP', rights_given_at: r.grantedAt };
    }
    const id = parseClientId(r.subject);
    const name = id.subsystem === undefined ? id.memberCode : (global?.member(id)?.subsystemNames?.[id.subsystem] ?? id.subsystem);
    return { id: apiClientId(id), name, service_client_type: 'SUBSYSTEM', rights_given_at: r.grantedAt };
  }

  private localGroupView(client: LocalClient, g: LocalGroupConf): LocalGroupView {
    const global = this.conf.globalConf();
    return {
      id: encodeRef([formatClientId(client.id), g.code]),
      code: g.code,
      description: g.description,
      member_count: g.members.length,
      updated_at: g.updatedAt,
      members: g.members.map((m) => {
        const name = global?.member({ instance: m.id.instance, memberClass: m.id.memberClass, memberCode: m.id.memberCode })?.name;
        return { id: apiClientId(m.id), ...(name ? { member_name: name } : {}), created_at: m.addedAt };
      }),
    };
  }
}

/** `INSTANCE:CLASS:CODE[:SUBSYSTEM]` as the reference's API writes it; slashes work too. @throws InvalidIdentifier */
export function parseApiClientId(id: string): ClientId {
  try {
    return parseClientId(id.replaceAll(':', '/'));
  } catch (err) {
    throw new XrdError('InvalidIdentifier', { value: id, reason: (err as Error).message }, { cause: err });
  }
}

export function apiClientId(id: ClientId): string {
  return formatClientId(id).replaceAll('/', ':');
}

/** A member, or a subsystem of one, that global configuration lists. */
function inGlobalConf(global: GlobalConf | undefined, id: ClientId): boolean {
  const member = global?.member(id);
  return member !== undefined && (id.subsystem === undefined || member.subsystems.includes(id.subsystem));
}

const localClientOf = changes.findClient;

function findService(client: LocalClient, full: string): ServiceConf {
  return changes.findServiceByFullCode(client, full).service;
}

function parseNumber(id: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(id)) throw new XrdError('ServiceDescriptionNotFound', { id, referenceCode: 'service_description_not_found' });
  return Number(id);
}

/** Refused as the reference's warnings_detected unless ignored. */
function warnIfAny(found: changes.DescriptionChanges, what: 'services' | 'endpoints'): void {
  const warnings = [
    ...(found.added.length ? [{ code: `adding_${what}`, metadata: [...found.added] }] : []),
    ...(found.removed.length ? [{ code: `deleting_${what}`, metadata: [...found.removed] }] : []),
  ];
  if (warnings.length) warn(warnings);
}

function warn(warnings: readonly { code: string; metadata: string[] }[]): never {
  throw new XrdError('WarningsDetected', { warnings: warnings.map((w) => `${w.code}: ${w.metadata.join(', ')}`).join('; '), warningsJson: JSON.stringify(warnings), referenceCode: 'warnings_detected' });
}

function encodeRef(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

function decodeRef(id: string): string[] | undefined {
  try {
    const parts = JSON.parse(Buffer.from(id, 'base64url').toString('utf8')) as unknown;
    return Array.isArray(parts) && parts.every((p) => typeof p === 'string') ? parts : undefined;
  } catch {
    return undefined;
  }
}

function descriptionView(client: LocalClient, d: ServiceDescriptionConf): ServiceDescriptionView {
  return {
    id: String(d.id),
    url: d.url,
    type: d.type,
    disabled: d.disabled,
    disabled_notice: d.disabledNotice ?? null,
    refreshed_at: d.refreshedAt,
    services: d.services.map((s) => serviceView(client, s)),
    client_id: apiClientId(client.id),
  };
}

/** ssl_auth as the reference shows it: false for an http URL, otherwise as stored, on by default. */
function serviceView(client: LocalClient, s: ServiceConf): ServiceView {
  const full = changes.fullServiceCode(s);
  return {
    id: `${apiClientId(client.id)}:${full}`,
    full_service_code: full,
    service_code: s.code,
    timeout: s.timeoutSeconds,
    ...(s.title !== undefined ? { title: s.title } : {}),
    ssl_auth: s.url.startsWith('https://') ? s.sslAuthentication !== false : false,
    url: s.url,
    endpoints: client.endpoints.filter((e) => e.serviceCode === s.code).map((e) => endpointView(client.id, e)),
  };
}

function endpointView(clientId: ClientId, e: EndpointConf): EndpointView {
  return { id: encodeRef([formatClientId(clientId), e.serviceCode, e.method, e.path]), service_code: e.serviceCode, method: e.method, path: e.path, generated: e.generated };
}

function accessRightView(client: LocalClient, r: AccessRightConf): AccessRightView {
  const title = client.serviceDescriptions.flatMap((d) => d.services).filter((s) => s.code === r.serviceCode && s.title !== undefined).at(-1)?.title;
  return { service_code: r.serviceCode, ...(title ? { service_title: title } : {}), rights_given_at: r.grantedAt };
}
