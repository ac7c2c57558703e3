/**
 * The administrator's changes to the server configuration (src/serverconf/changes.ts), each named
 * after the reference admin service rule it follows (ClientService, ServiceDescriptionService,
 * ServiceService, EndpointService, AccessRightService, LocalGroupService, GlobalConfChecker) and
 * checked for the reference's error code.
 */
import { describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { parseClientId, type ClientId } from '../../src/protocol/identifiers.ts';
import * as ch from '../../src/serverconf/changes.ts';
import type { LocalClient, ServerConf } from '../../src/serverconf/model.ts';

const T0 = new Date('2026-01-02T03:04:05.000Z');
const OWNER = parseClientId('LOCAL/GOV/1111');
const SUB = parseClientId('LOCAL/GOV/1111/PROVIDER');
const CALLER = 'LOCAL/COM/2222/NEWSUB';
const GROUP = 'GLOBALGROUP:LOCAL/security-server-owners';
const known = (s: string) => s === CALLER || s === GROUP;

function client(id: ClientId, status: LocalClient['status'] = 'REGISTERED'): LocalClient {
  return { id, status, connectionType: 'HTTPS', isCerts: [], serviceDescriptions: [], endpoints: [], accessRights: [], localGroups: [] };
}

function base(): ServerConf {
  return { serverId: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', serverCode: 'ss1' }, clients: [client(OWNER), client(SUB)], timestampingServices: [] };
}

function refusal(fn: () => unknown): { code: string; ref: unknown } {
  try {
    fn();
  } catch (err) {
    if (err instanceof XrdError) return { code: err.code, ref: err.details.referenceCode };
    throw err;
  }
  throw new Error('expected a refusal');
}

const sub = (conf: ServerConf, id: ClientId = SUB) => conf.clients.find((c) => c.id.subsystem === id.subsystem && c.id.memberCode === id.memberCode)!;

const WSDL = { type: 'WSDL' as const, url: 'http://provider/wsdl', services: [{ code: 'getRandom', version: 'v1', title: 'Random', url: 'http://provider/soap' }, { code: 'helloService', version: 'v1', url: 'http://provider/soap' }] };
const OPENAPI = { type: 'OPENAPI3' as const, url: 'http://provider/openapi.yaml', serviceCode: 'pets', baseUrl: 'http://provider/api', operations: [{ method: 'GET', path: '/pets' }, { method: 'POST', path: '/pets' }] };
const REST = { type: 'REST' as const, url: 'https://provider/rest', serviceCode: 'rest' };

/** The owner and PROVIDER with a WSDL (id 1), an OpenAPI 3 (id 2) and a REST (id 3) description. */
function withServices(): ServerConf {
  let conf = ch.addServiceDescription(base(), SUB, WSDL, T0);
  conf = ch.addServiceDescription(conf, SUB, OPENAPI, T0);
  return ch.addServiceDescription(conf, SUB, REST, T0);
}

describe('clients (ClientService)', () => {
  it('addLocalClient: a new subsystem is SAVED with the chosen connection type, REGISTERED when global configuration lists it', () => {
    const id = parseClientId('LOCAL/GOV/1111/NEWSUB');
    const conf = ch.addClient(base(), id, { connectionType: 'HTTP' });
    expect(sub(conf, id)).toMatchObject({ status: 'SAVED', connectionType: 'HTTP', serviceDescriptions: [] });
    expect(sub(ch.addClient(base(), id, { registered: true }), id).status).toBe('REGISTERED');
    expect(sub(ch.addClient(base(), id), id).connectionType).toBe('HTTPS');
  });

  it('addLocalClient: client_already_exists, invalid_instance_identifier, identifier parts checked', () => {
    expect(refusal(() => ch.addClient(base(), SUB))).toEqual({ code: 'ClientAlreadyExists', ref: 'client_already_exists' });
    expect(refusal(() => ch.addClient(base(), parseClientId('OTHER/GOV/1111/X')))).toEqual({ code: 'InvalidInstanceIdentifier', ref: 'invalid_instance_identifier' });
    expect(refusal(() => ch.addClient(base(), { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', subsystem: 'a:b' })).code).toBe('InvalidIdentifier');
  });

  it('addLocalClient: additional_member_already_exists — the owner and at most one other member', () => {
    const conf = ch.addClient(base(), parseClientId('LOCAL/COM/2222'));
    expect(refusal(() => ch.addClient(conf, parseClientId('LOCAL/COM/3333')))).toEqual({ code: 'AdditionalMemberAlreadyExists', ref: 'additional_member_already_exists' });
    // subsystems of any member are not limited
    expect(sub(ch.addClient(conf, parseClientId('LOCAL/COM/3333/SUB')), parseClientId('LOCAL/COM/3333/SUB')).status).toBe('SAVED');
  });

  it('deleteLocalClient: only SAVED, DELETION_IN_PROGRESS or GLOBAL_ERROR, never the owner (cannot_delete_owner, action_not_possible)', () => {
    const conf = base();
    expect(refusal(() => ch.deleteClient(conf, SUB))).toEqual({ code: 'ActionNotPossible', ref: 'action_not_possible' });
    expect(refusal(() => ch.deleteClient(ch.setClientStatus(conf, OWNER, 'SAVED'), OWNER))).toEqual({ code: 'CannotDeleteOwner', ref: 'cannot_delete_owner' });
    for (const status of ['SAVED', 'DELETION_IN_PROGRESS', 'GLOBAL_ERROR'] as const) {
      expect(ch.deleteClient(ch.setClientStatus(conf, SUB, status), SUB).clients).toHaveLength(1);
    }
    expect(refusal(() => ch.deleteClient(conf, parseClientId('LOCAL/GOV/1111/NONE')))).toEqual({ code: 'ClientNotFound', ref: 'client_not_found' });
  });

  it("deleteLocalClient: the deleted client's access rights and local group memberships go unless it is a client of another server", () => {
    const id = parseClientId('LOCAL/GOV/1111/CONSUMER');
    let conf = ch.addClient(withServices(), id);
    conf = ch.addServiceAccessRights(conf, SUB, 'getRandom.v1', ['LOCAL/GOV/1111/CONSUMER'], () => true, T0);
    conf = ch.addLocalGroup(conf, SUB, 'g1', 'group', T0);
    conf = ch.addLocalGroupMembers(conf, SUB, 'g1', [id], () => true, T0);
    const gone = ch.deleteClient(conf, id);
    expect(sub(gone).accessRights).toEqual([]);
    expect(sub(gone).localGroups[0]!.members).toEqual([]);
    const kept = ch.deleteClient(conf, id, { registeredOnOtherServers: true });
    expect(sub(kept).accessRights).toHaveLength(1);
    expect(sub(kept).localGroups[0]!.members).toHaveLength(1);
  });

  it('registerClient: only a SAVED client that is not the owner becomes REGISTRATION_IN_PROGRESS', () => {
    const saved = ch.setClientStatus(base(), SUB, 'SAVED');
    expect(sub(ch.registerClient(saved, SUB)).status).toBe('REGISTRATION_IN_PROGRESS');
    expect(refusal(() => ch.registerClient(base(), SUB))).toEqual({ code: 'ActionNotPossible', ref: 'action_not_possible' });
    expect(refusal(() => ch.registerClient(ch.setClientStatus(base(), OWNER, 'SAVED'), OWNER))).toEqual({ code: 'CannotRegisterOwner', ref: 'cannot_register_owner' });
  });

  it('unregisterClient: REGISTERED, REGISTRATION_IN_PROGRESS or DISABLED become DELETION_IN_PROGRESS; never the owner', () => {
    for (const status of ['REGISTERED', 'REGISTRATION_IN_PROGRESS', 'DISABLED'] as const) {
      expect(sub(ch.unregisterClient(ch.setClientStatus(base(), SUB, status), SUB)).status).toBe('DELETION_IN_PROGRESS');
    }
    expect(refusal(() => ch.unregisterClient(ch.setClientStatus(base(), SUB, 'SAVED'), SUB))).toEqual({ code: 'ActionNotPossible', ref: 'action_not_possible' });
    expect(refusal(() => ch.unregisterClient(base(), OWNER))).toEqual({ code: 'CannotUnregisterOwner', ref: 'cannot_unregister_owner' });
  });

  it('disableClient/enableClient: REGISTERED → DISABLING_IN_PROGRESS, DISABLED → ENABLING_IN_PROGRESS; never the management service provider', () => {
    expect(sub(ch.disableClient(base(), SUB)).status).toBe('DISABLING_IN_PROGRESS');
    expect(refusal(() => ch.disableClient(base(), SUB, SUB))).toEqual({ code: 'ForbiddenDisableManagementServiceClient', ref: 'forbidden_disable_management_service_client' });
    expect(refusal(() => ch.enableClient(base(), SUB))).toEqual({ code: 'ActionNotPossible', ref: 'action_not_possible' });
    expect(sub(ch.enableClient(ch.setClientStatus(base(), SUB, 'DISABLED'), SUB)).status).toBe('ENABLING_IN_PROGRESS');
  });

  it('changeOwner: only a REGISTERED member other than the owner (member_already_owner, action_not_possible)', () => {
    const other = parseClientId('LOCAL/COM/2222');
    const conf = ch.setClientStatus(ch.addClient(base(), other), other, 'REGISTERED');
    expect(() => ch.checkOwnerChange(conf, other)).not.toThrow();
    expect(refusal(() => ch.checkOwnerChange(conf, OWNER))).toEqual({ code: 'MemberAlreadyOwner', ref: 'member_already_owner' });
    expect(refusal(() => ch.checkOwnerChange(conf, SUB))).toEqual({ code: 'ActionNotPossible', ref: 'action_not_possible' });
    expect(refusal(() => ch.checkOwnerChange(ch.setClientStatus(conf, other, 'SAVED'), other))).toEqual({ code: 'ActionNotPossible', ref: 'action_not_possible' });
  });

  it('GlobalConfChecker.updateClientStatuses: listed → REGISTERED, REGISTERED unlisted → GLOBAL_ERROR, DISABLING_IN_PROGRESS unlisted → DISABLED', () => {
    let conf = ch.setClientStatus(base(), SUB, 'REGISTRATION_IN_PROGRESS');
    expect(sub(ch.updateClientStatuses(conf, () => true)).status).toBe('REGISTERED');
    conf = ch.updateClientStatuses(base(), (id) => id.subsystem === undefined);
    expect(sub(conf).status).toBe('GLOBAL_ERROR');
    expect(sub(ch.updateClientStatuses(ch.setClientStatus(base(), SUB, 'DISABLING_IN_PROGRESS'), () => false)).status).toBe('DISABLED');
    expect(sub(ch.updateClientStatuses(ch.setClientStatus(base(), SUB, 'DELETION_IN_PROGRESS'), () => false)).status).toBe('DELETION_IN_PROGRESS');
    const same = base();
    expect(ch.updateClientStatuses(same, () => true)).toBe(same);
  });

  it('updateConnectionType: one of HTTP, HTTPS, HTTPS_NO_AUTH (invalid_connection_type)', () => {
    expect(sub(ch.setConnectionType(base(), SUB, 'HTTPS_NO_AUTH')).connectionType).toBe('HTTPS_NO_AUTH');
    expect(refusal(() => ch.setConnectionType(base(), SUB, 'NOSSL'))).toEqual({ code: 'InvalidConnectionType', ref: 'invalid_connection_type' });
  });

  it('addTlsCertificate/deleteTlsCertificate: certificate_already_exists, certificate_not_found, named by hash in any case', () => {
    const der = Buffer.from('30030201', 'hex');
    const conf = ch.addTlsCertificate(base(), SUB, der);
    expect(sub(conf).isCerts).toEqual([der]);
    expect(refusal(() => ch.addTlsCertificate(conf, SUB, der))).toEqual({ code: 'TlsCertificateExists', ref: 'certificate_already_exists' });
    expect(sub(ch.deleteTlsCertificate(conf, SUB, ch.tlsCertificateHash(der).toLowerCase())).isCerts).toEqual([]);
    expect(refusal(() => ch.deleteTlsCertificate(base(), SUB, 'AB'))).toEqual({ code: 'TlsCertificateNotFound', ref: 'certificate_not_found' });
  });
});

describe('service descriptions (ServiceDescriptionService)', () => {
  it('addWsdlServiceDescription: services with default timeout, a base endpoint each, disabled with "Out of order"', () => {
    const c = sub(ch.addServiceDescription(base(), SUB, WSDL, T0));
    expect(c.serviceDescriptions).toEqual([{
      id: 1, type: 'WSDL', url: WSDL.url, disabled: true, disabledNotice: 'Out of order', refreshedAt: T0.toISOString(),
      services: [
        { code: 'getRandom', version: 'v1', title: 'Random', url: 'http://provider/soap', timeoutSeconds: 60 },
        { code: 'helloService', version: 'v1', title: undefined, url: 'http://provider/soap', timeoutSeconds: 60 },
      ],
    }]);
    expect(c.endpoints).toEqual([
      { serviceCode: 'getRandom', method: '*', path: '**', generated: true },
      { serviceCode: 'helloService', method: '*', path: '**', generated: true },
    ]);
  });

  it('addOpenApi3ServiceDescription: one service at the base URL, generated base and operation endpoints; REST: base endpoint, TLS authentication for https', () => {
    const conf = withServices();
    const c = sub(conf);
    expect(c.serviceDescriptions.map((d) => d.id)).toEqual([1, 2, 3]);
    expect(c.serviceDescriptions[1]!.services).toEqual([{ code: 'pets', url: 'http://provider/api', timeoutSeconds: 60 }]);
    expect(c.endpoints.filter((e) => e.serviceCode === 'pets').map((e) => `${e.method} ${e.path} ${e.generated}`)).toEqual(['* ** true', 'GET /pets true', 'POST /pets true']);
    expect(c.serviceDescriptions[2]!.services).toEqual([{ code: 'rest', url: 'https://provider/rest', timeoutSeconds: 60, sslAuthentication: true }]);
    expect(c.endpoints.filter((e) => e.serviceCode === 'rest')).toEqual([{ serviceCode: 'rest', method: '*', path: '**', generated: true }]);
    expect(ch.nextServiceDescriptionId(conf)).toBe(4);
  });

  it('add: wsdl_exists (URL in any case), service_already_exists (full code in any case), invalid_service_url, malformed_url, invalid_wsdl_service_identifier', () => {
    const conf = withServices();
    expect(refusal(() => ch.addServiceDescription(conf, SUB, { ...WSDL, url: 'http://provider/WSDL' }))).toEqual({ code: 'WsdlExists', ref: 'wsdl_exists' });
    expect(refusal(() => ch.addServiceDescription(conf, SUB, { ...WSDL, url: 'http://provider/other', services: [{ code: 'GETRANDOM', version: 'V1', url: 'http://x' }] }))).toEqual({ code: 'ServiceAlreadyExists', ref: 'service_already_exists' });
    expect(refusal(() => ch.addServiceDescription(base(), SUB, { ...WSDL, services: [{ code: 'a', url: 'ftp://x' }] }))).toEqual({ code: 'InvalidServiceUrl', ref: 'invalid_service_url' });
    expect(refusal(() => ch.addServiceDescription(base(), SUB, { ...WSDL, url: 'file:///etc/passwd' }))).toEqual({ code: 'MalformedUrl', ref: 'malformed_url' });
    expect(refusal(() => ch.addServiceDescription(base(), SUB, { ...WSDL, services: [{ code: 'a/b', url: 'http://x' }] }))).toEqual({ code: 'InvalidWsdlServiceIdentifier', ref: 'invalid_wsdl_service_identifier' });
  });

  it('add REST/OPENAPI3: missing_parameter, url_already_exists, service_code_already_exists (code in any case)', () => {
    const conf = withServices();
    expect(refusal(() => ch.addServiceDescription(conf, SUB, { ...REST, serviceCode: '' }))).toEqual({ code: 'MissingParameter', ref: 'missing_parameter' });
    expect(refusal(() => ch.addServiceDescription(conf, SUB, { ...REST, serviceCode: 'other' }))).toEqual({ code: 'UrlAlreadyExists', ref: 'url_already_exists' });
    expect(refusal(() => ch.addServiceDescription(conf, SUB, { ...REST, url: 'http://provider/x', serviceCode: 'PETS' }))).toEqual({ code: 'ServiceCodeAlreadyExists', ref: 'service_code_already_exists' });
    expect(refusal(() => ch.addServiceDescription(conf, SUB, { ...OPENAPI, url: 'http://provider/o2', serviceCode: 'getRandom' }))).toEqual({ code: 'ServiceCodeAlreadyExists', ref: 'service_code_already_exists' });
  });

  it('deleteServiceDescription: its services\' endpoints and access rights go, except of codes another description also has', () => {
    let conf = ch.addServiceAccessRights(withServices(), SUB, 'getRandom.v1', [CALLER], known, T0);
    conf = ch.addServiceAccessRights(conf, SUB, 'pets', [CALLER], known, T0);
    const after = sub(ch.deleteServiceDescription(conf, 1));
    expect(after.serviceDescriptions.map((d) => d.id)).toEqual([2, 3]);
    expect(after.endpoints.some((e) => e.serviceCode === 'getRandom' || e.serviceCode === 'helloService')).toBe(false);
    expect(after.accessRights.map((r) => r.serviceCode)).toEqual(['pets']);
    expect(refusal(() => ch.deleteServiceDescription(conf, 9))).toEqual({ code: 'ServiceDescriptionNotFound', ref: 'service_description_not_found' });
  });

  it('enable/disable: the notice is what callers get; enabling keeps it', () => {
    const enabled = ch.enableServiceDescription(withServices(), 1);
    expect(sub(enabled).serviceDescriptions[0]).toMatchObject({ disabled: false, disabledNotice: 'Out of order' });
    expect(sub(ch.disableServiceDescription(enabled, 1, 'Maintenance until noon')).serviceDescriptions[0]).toMatchObject({ disabled: true, disabledNotice: 'Maintenance until noon' });
  });

  it('refreshWSDLServiceDescription: remaining services keep settings and rights; removed lose endpoints and rights; new get base endpoints', () => {
    let conf = ch.updateService(withServices(), SUB, 'getRandom.v1', { url: 'https://provider/soap2', timeoutSeconds: 5, sslAuthentication: true });
    conf = ch.addServiceAccessRights(conf, SUB, 'getRandom.v1', [CALLER], known, T0);
    conf = ch.addServiceAccessRights(conf, SUB, 'helloService.v1', [CALLER], known, T0);
    const parsed = [{ code: 'getRandom', version: 'v1', url: 'http://provider/soap' }, { code: 'newService', version: 'v1', url: 'http://provider/soap' }];
    expect(ch.wsdlRefreshChanges(conf, 1, parsed)).toEqual({ added: ['newService.v1'], removed: ['helloService.v1'] });
    const T1 = new Date('2026-02-01T00:00:00.000Z');
    const c = sub(ch.refreshWsdlDescription(conf, 1, parsed, T1));
    expect(c.serviceDescriptions[0]!.services).toEqual([
      { code: 'getRandom', version: 'v1', title: undefined, url: 'https://provider/soap2', timeoutSeconds: 5, sslAuthentication: true },
      { code: 'newService', version: 'v1', title: undefined, url: 'http://provider/soap', timeoutSeconds: 60 },
    ]);
    expect(c.serviceDescriptions[0]!.refreshedAt).toBe(T1.toISOString());
    expect(c.accessRights.map((r) => r.serviceCode)).toEqual(['getRandom']);
    expect(c.endpoints.filter((e) => e.method === '*').map((e) => e.serviceCode)).toEqual(['getRandom', 'pets', 'rest', 'newService']);
  });

  it('refresh: a code another description of the client still has keeps its endpoints and rights (the guard of the reference\'s delete, which its refresh lacks)', () => {
    let conf = ch.addServiceDescription(withServices(), SUB, { ...WSDL, url: 'http://provider/w3', services: [{ code: 'helloService', version: 'v2', url: 'http://p' }] }, T0);
    conf = ch.addServiceAccessRights(conf, SUB, 'helloService.v2', [CALLER], known, T0);
    const c = sub(ch.refreshWsdlDescription(conf, 1, [{ code: 'getRandom', version: 'v1', url: 'http://provider/soap' }], T0));
    expect(c.serviceDescriptions[0]!.services.map((s) => s.code)).toEqual(['getRandom']);
    expect(c.accessRights.filter((r) => r.serviceCode === 'helloService').map((r) => r.subject)).toEqual([CALLER]);
    expect(c.endpoints.filter((e) => e.serviceCode === 'helloService')).toHaveLength(1);
  });

  it('refresh: a version change keeps the rights of the service code (removedServiceCodes ∖ newServiceCodes); a new URL must be free; only WSDL', () => {
    let conf = ch.addServiceAccessRights(withServices(), SUB, 'helloService.v1', [CALLER], known, T0);
    const parsed = [{ code: 'helloService', version: 'v2', url: 'http://provider/soap' }];
    const c = sub(ch.refreshWsdlDescription(conf, 1, parsed, T0, 'http://provider/wsdl2'));
    expect(c.serviceDescriptions[0]!.url).toBe('http://provider/wsdl2');
    expect(c.accessRights.map((r) => r.serviceCode)).toEqual(['helloService']);
    expect(c.endpoints.filter((e) => e.serviceCode === 'helloService')).toHaveLength(1);
    conf = ch.addServiceDescription(conf, SUB, { ...WSDL, url: 'http://provider/w3', services: [{ code: 'x', url: 'http://p' }] }, T0);
    expect(refusal(() => ch.refreshWsdlDescription(conf, 1, parsed, T0, 'http://provider/w3'))).toEqual({ code: 'WsdlExists', ref: 'wsdl_exists' });
    expect(refusal(() => ch.refreshWsdlDescription(conf, 1, [{ code: 'x', url: 'http://p' }], T0))).toEqual({ code: 'ServiceAlreadyExists', ref: 'service_already_exists' });
    expect(refusal(() => ch.refreshWsdlDescription(conf, 2, parsed, T0))).toEqual({ code: 'WrongServiceDescriptionType', ref: 'wrong_servicedescription_type' });
  });

  it('refreshOpenApi3ServiceDescription: generated endpoints replaced, their rights kept where they stay, hand-made ones kept or adopted', () => {
    let conf = ch.addEndpoint(withServices(), SUB, 'pets', 'GET', '/owners');
    conf = ch.addEndpoint(conf, SUB, 'pets', 'DELETE', '/pets/{id}');
    for (const ep of [{ method: 'GET', path: '/pets' }, { method: 'POST', path: '/pets' }, { method: 'GET', path: '/owners' }]) {
      conf = ch.addEndpointAccessRights(conf, SUB, { serviceCode: 'pets', ...ep }, [CALLER], known, T0);
    }
    const operations = [{ method: 'GET', path: '/pets' }, { method: 'GET', path: '/owners' }, { method: 'PUT', path: '/pets' }];
    expect(ch.openApiRefreshChanges(conf, 2, operations)).toEqual({ added: ['PUT /pets'], removed: ['POST /pets'] });
    const c = sub(ch.refreshOpenApiDescription(conf, 2, operations, T0));
    expect(c.endpoints.filter((e) => e.serviceCode === 'pets').map((e) => `${e.method} ${e.path} ${e.generated}`)).toEqual(['* ** true', 'GET /pets true', 'GET /owners true', 'DELETE /pets/{id} false', 'PUT /pets true']);
    expect(c.accessRights.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /pets', 'GET /owners']);
    expect(c.serviceDescriptions[1]!.services[0]!.url).toBe('http://provider/api');
  });

  it('updateOpenApi3ServiceDescription: a new service code carries endpoints and rights; the code and URL must be free', () => {
    let conf = ch.addServiceAccessRights(withServices(), SUB, 'pets', [CALLER], known, T0);
    const c = sub(ch.refreshOpenApiDescription(conf, 2, OPENAPI.operations, T0, { url: 'http://provider/v2.yaml', serviceCode: 'animals' }));
    expect(c.serviceDescriptions[1]).toMatchObject({ url: 'http://provider/v2.yaml', services: [{ code: 'animals' }] });
    expect(c.endpoints.filter((e) => e.serviceCode === 'animals')).toHaveLength(3);
    expect(c.accessRights.map((r) => r.serviceCode)).toEqual(['animals']);
    conf = withServices();
    expect(refusal(() => ch.refreshOpenApiDescription(conf, 2, [], T0, { serviceCode: 'rest' }))).toEqual({ code: 'ServiceCodeAlreadyExists', ref: 'service_code_already_exists' });
    expect(refusal(() => ch.refreshOpenApiDescription(conf, 2, [], T0, { url: REST.url }))).toEqual({ code: 'UrlAlreadyExists', ref: 'url_already_exists' });
  });

  it('updateRestServiceDescription: URL of the description and its service, service code with endpoints and rights; REST only', () => {
    const conf = ch.addServiceAccessRights(withServices(), SUB, 'rest', [CALLER], known, T0);
    const c = sub(ch.updateRestDescription(conf, 3, { url: 'http://provider/rest2', serviceCode: 'rest2' }, T0));
    expect(c.serviceDescriptions[2]).toMatchObject({ url: 'http://provider/rest2', services: [{ code: 'rest2', url: 'http://provider/rest2' }] });
    expect(c.accessRights.map((r) => r.serviceCode)).toEqual(['rest2']);
    expect(refusal(() => ch.updateRestDescription(conf, 1, { url: 'http://x' }))).toEqual({ code: 'WrongServiceDescriptionType', ref: 'wrong_servicedescription_type' });
    expect(refusal(() => ch.updateRestDescription(conf, 3, { url: OPENAPI.url }))).toEqual({ code: 'UrlAlreadyExists', ref: 'url_already_exists' });
  });
});

describe('services and endpoints (ServiceService, EndpointService)', () => {
  it('updateService: one service, or all of its description with url_all/timeout_all/ssl_auth_all; TLS authentication only for https', () => {
    const conf = withServices();
    let c = sub(ch.updateService(conf, SUB, 'getRandom.v1', { url: 'https://p/s', timeoutSeconds: 10, sslAuthentication: false }));
    expect(c.serviceDescriptions[0]!.services.map((s) => [s.url, s.timeoutSeconds, s.sslAuthentication])).toEqual([['https://p/s', 10, false], ['http://provider/soap', 60, undefined]]);
    c = sub(ch.updateService(conf, SUB, 'getRandom.v1', { url: 'https://p/s', timeoutSeconds: 10, sslAuthentication: true, timeoutAll: true, sslAuthenticationAll: true }));
    // helloService keeps its http URL, so it gets no TLS authentication
    expect(c.serviceDescriptions[0]!.services.map((s) => [s.url, s.timeoutSeconds, s.sslAuthentication])).toEqual([['https://p/s', 10, true], ['http://provider/soap', 10, undefined]]);
    expect(refusal(() => ch.updateService(conf, SUB, 'getRandom.v1', { url: 'http://p/s', timeoutSeconds: 10, sslAuthentication: true }))).toEqual({ code: 'InvalidHttpsUrl', ref: 'invalid_https_url' });
    expect(refusal(() => ch.updateService(conf, SUB, 'getRandom', { url: 'http://p/s', timeoutSeconds: 10, sslAuthentication: false }))).toEqual({ code: 'ServiceNotFound', ref: 'service_not_found' });
    expect(refusal(() => ch.updateService(conf, SUB, 'getRandom.v1', { url: 'p/s', timeoutSeconds: 10, sslAuthentication: false }))).toEqual({ code: 'MalformedUrl', ref: 'malformed_url' });
  });

  it('updateService: a REST service\'s URL is its description\'s too (url_already_exists)', () => {
    const conf = withServices();
    expect(sub(ch.updateService(conf, SUB, 'rest', { url: 'http://p/r', timeoutSeconds: 60, sslAuthentication: false })).serviceDescriptions[2]!.url).toBe('http://p/r');
    expect(refusal(() => ch.updateService(conf, SUB, 'rest', { url: OPENAPI.url, timeoutSeconds: 60, sslAuthentication: false }))).toEqual({ code: 'UrlAlreadyExists', ref: 'url_already_exists' });
  });

  it('addEndpoint: not to a WSDL service; no equivalent endpoint (endpoint_already_exists); hand-made', () => {
    const conf = withServices();
    expect(sub(ch.addEndpoint(conf, SUB, 'rest', 'GET', '/a/*')).endpoints.at(-1)).toEqual({ serviceCode: 'rest', method: 'GET', path: '/a/*', generated: false });
    expect(refusal(() => ch.addEndpoint(conf, SUB, 'getRandom.v1', 'GET', '/a'))).toEqual({ code: 'WrongServiceDescriptionType', ref: 'wrong_servicedescription_type' });
    expect(refusal(() => ch.addEndpoint(conf, SUB, 'pets', 'GET', '/pets'))).toEqual({ code: 'EndpointAlreadyExists', ref: 'endpoint_already_exists' });
    expect(refusal(() => ch.addEndpoint(conf, SUB, 'pets', 'FETCH', '/x')).code).toBe('InvalidRequestBody');
  });

  it('updateEndpoint/deleteEndpoint: generated endpoints cannot be changed (illegal_generated_endpoint_update/remove); rights follow or go', () => {
    let conf = ch.addEndpoint(withServices(), SUB, 'rest', 'GET', '/a');
    conf = ch.addEndpointAccessRights(conf, SUB, { serviceCode: 'rest', method: 'GET', path: '/a' }, [CALLER], known, T0);
    const moved = sub(ch.updateEndpoint(conf, SUB, { serviceCode: 'rest', method: 'GET', path: '/a' }, { path: '/b' }));
    expect(moved.endpoints.at(-1)).toMatchObject({ method: 'GET', path: '/b' });
    expect(moved.accessRights[0]).toMatchObject({ method: 'GET', path: '/b' });
    expect(refusal(() => ch.updateEndpoint(conf, SUB, { serviceCode: 'pets', method: 'GET', path: '/pets' }, { path: '/x' }))).toEqual({ code: 'IllegalGeneratedEndpointUpdate', ref: 'illegal_generated_endpoint_update' });
    expect(refusal(() => ch.updateEndpoint(conf, SUB, { serviceCode: 'rest', method: 'GET', path: '/a' }, { method: '*', path: '**' }))).toEqual({ code: 'EndpointAlreadyExists', ref: 'endpoint_already_exists' });
    expect(refusal(() => ch.deleteEndpoint(conf, SUB, { serviceCode: 'rest', method: '*', path: '**' }))).toEqual({ code: 'IllegalGeneratedEndpointRemove', ref: 'illegal_generated_endpoint_remove' });
    expect(refusal(() => ch.deleteEndpoint(conf, SUB, { serviceCode: 'rest', method: 'GET', path: '/zz' }))).toEqual({ code: 'EndpointNotFound', ref: 'endpoint_not_found' });
    const deleted = sub(ch.deleteEndpoint(conf, SUB, { serviceCode: 'rest', method: 'GET', path: '/a' }));
    expect(deleted.accessRights).toEqual([]);
    expect(deleted.endpoints.some((e) => e.path === '/a')).toBe(false);
  });
});

describe('access rights (AccessRightService)', () => {
  it('addSoapServiceAccessRights: subsystems and global groups known to global configuration, the client\'s local groups; to the base endpoint', () => {
    let conf = ch.addLocalGroup(withServices(), SUB, 'g1', 'group', T0);
    conf = ch.addServiceAccessRights(conf, SUB, 'getRandom.v1', [CALLER, GROUP, 'LOCALGROUP:g1'], known, T0);
    expect(sub(conf).accessRights).toEqual([CALLER, GROUP, 'LOCALGROUP:g1'].map((subject) => ({ subject, serviceCode: 'getRandom', method: '*', path: '**', grantedAt: T0.toISOString() })));
    expect(refusal(() => ch.addServiceAccessRights(conf, SUB, 'getRandom.v1', [CALLER], known))).toEqual({ code: 'DuplicateAccessRight', ref: 'duplicate_accessright' });
    expect(refusal(() => ch.addServiceAccessRights(conf, SUB, 'helloService.v1', ['LOCAL/COM/9999/X'], known))).toEqual({ code: 'ServiceClientNotFound', ref: 'service_client_not_found' });
    expect(refusal(() => ch.addServiceAccessRights(conf, SUB, 'helloService.v1', ['LOCALGROUP:nope'], known))).toEqual({ code: 'ServiceClientNotFound', ref: 'service_client_not_found' });
    // members are not service clients
    expect(refusal(() => ch.addServiceAccessRights(conf, SUB, 'helloService.v1', ['LOCAL/COM/2222'], () => true))).toEqual({ code: 'InvalidServiceClientId', ref: 'invalid_service_client_id' });
    expect(refusal(() => ch.addServiceAccessRights(conf, SUB, 'helloService.v1', ['GLOBALGROUP:LOCAL/none'], known))).toEqual({ code: 'ServiceClientNotFound', ref: 'service_client_not_found' });
    expect(refusal(() => ch.addServiceAccessRights(conf, SUB, 'nope.v1', [CALLER], known))).toEqual({ code: 'ServiceNotFound', ref: 'service_not_found' });
  });

  it('deleteSoapServiceAccessRights: all of the given subjects must have the right, or nothing is removed (accessright_not_found)', () => {
    const conf = ch.addServiceAccessRights(withServices(), SUB, 'getRandom.v1', [CALLER], known, T0);
    expect(refusal(() => ch.deleteServiceAccessRights(conf, SUB, 'getRandom.v1', [CALLER, GROUP]))).toEqual({ code: 'AccessRightNotFound', ref: 'accessright_not_found' });
    expect(sub(ch.deleteServiceAccessRights(conf, SUB, 'getRandom.v1', [CALLER])).accessRights).toEqual([]);
  });

  it('addEndpointAccessRights/deleteEndpointAccessRights: rights to one REST endpoint', () => {
    const ep = { serviceCode: 'pets', method: 'GET', path: '/pets' };
    const conf = ch.addEndpointAccessRights(withServices(), SUB, ep, [CALLER], known, T0);
    expect(sub(conf).accessRights).toEqual([{ subject: CALLER, ...ep, grantedAt: T0.toISOString() }]);
    expect(refusal(() => ch.addEndpointAccessRights(conf, SUB, { ...ep, path: '/none' }, [CALLER], known))).toEqual({ code: 'EndpointNotFound', ref: 'endpoint_not_found' });
    expect(sub(ch.deleteEndpointAccessRights(conf, SUB, ep, [CALLER])).accessRights).toEqual([]);
  });

  it('addServiceClientAccessRights/deleteServiceClientAccessRights: one subject, several services by code; deleting takes endpoint rights too', () => {
    let conf = ch.addServiceClientAccessRights(withServices(), SUB, CALLER, ['getRandom', 'pets'], known, T0);
    expect(sub(conf).accessRights.map((r) => `${r.serviceCode} ${r.method} ${r.path}`)).toEqual(['getRandom * **', 'pets * **']);
    conf = ch.addEndpointAccessRights(conf, SUB, { serviceCode: 'pets', method: 'GET', path: '/pets' }, [CALLER], known, T0);
    expect(sub(ch.deleteServiceClientAccessRights(conf, SUB, CALLER, ['pets'])).accessRights.map((r) => r.serviceCode)).toEqual(['getRandom']);
    expect(refusal(() => ch.deleteServiceClientAccessRights(conf, SUB, CALLER, ['rest']))).toEqual({ code: 'AccessRightNotFound', ref: 'accessright_not_found' });
    expect(refusal(() => ch.addServiceClientAccessRights(conf, SUB, CALLER, ['nope'], known))).toEqual({ code: 'ServiceNotFound', ref: 'service_not_found' });
  });
});

describe('local groups (LocalGroupService)', () => {
  const MEMBER = parseClientId(CALLER);

  it('addLocalGroup: code unique per client (local_group_code_already_exists); other clients may use it', () => {
    const conf = ch.addLocalGroup(base(), SUB, 'g1', 'First', T0);
    expect(sub(conf).localGroups).toEqual([{ code: 'g1', description: 'First', updatedAt: T0.toISOString(), members: [] }]);
    expect(refusal(() => ch.addLocalGroup(conf, SUB, 'g1', 'Again'))).toEqual({ code: 'LocalGroupCodeAlreadyExists', ref: 'local_group_code_already_exists' });
    // LocalGroupAdd.description: ^[a-zA-Z0-9-_,.;:!? ]*$, 1–255 characters
    expect(refusal(() => ch.addLocalGroup(conf, SUB, 'g2', 'Ä group')).code).toBe('InvalidRequestBody');
    expect(refusal(() => ch.addLocalGroup(conf, SUB, 'g2', '')).code).toBe('InvalidRequestBody');
    expect(sub(ch.addLocalGroup(conf, OWNER, 'g1', 'Owners group', T0), OWNER).localGroups).toHaveLength(1);
  });

  it('updateDescription, deleteLocalGroup (its access rights go), local_group_not_found', () => {
    let conf = ch.addLocalGroup(withServices(), SUB, 'g1', 'First', T0);
    const T1 = new Date('2026-03-01T00:00:00.000Z');
    expect(sub(ch.updateLocalGroupDescription(conf, SUB, 'g1', 'Renamed', T1)).localGroups[0]).toMatchObject({ description: 'Renamed', updatedAt: T1.toISOString() });
    conf = ch.addServiceAccessRights(conf, SUB, 'getRandom.v1', ['LOCALGROUP:g1', CALLER], known, T0);
    const after = sub(ch.deleteLocalGroup(conf, SUB, 'g1'));
    expect(after.localGroups).toEqual([]);
    expect(after.accessRights.map((r) => r.subject)).toEqual([CALLER]);
    expect(refusal(() => ch.deleteLocalGroup(base(), SUB, 'g1'))).toEqual({ code: 'LocalGroupNotFound', ref: 'local_group_not_found' });
  });

  it('addLocalGroupMembers/deleteGroupMembers: known clients only, no duplicates, all or none removed', () => {
    let conf = ch.addLocalGroup(base(), SUB, 'g1', 'First', T0);
    conf = ch.addLocalGroupMembers(conf, SUB, 'g1', [MEMBER, OWNER], (id) => id.memberCode === '2222', T0);
    expect(sub(conf).localGroups[0]!.members).toEqual([{ id: MEMBER, addedAt: T0.toISOString() }, { id: OWNER, addedAt: T0.toISOString() }]);
    expect(refusal(() => ch.addLocalGroupMembers(conf, SUB, 'g1', [MEMBER], () => true))).toEqual({ code: 'LocalGroupMemberAlreadyExists', ref: 'local_group_member_already_exists' });
    // an id given twice in one request counts once; none given is refused
    const g2 = ch.addLocalGroup(base(), SUB, 'g2', 'Second', T0);
    expect(sub(ch.addLocalGroupMembers(g2, SUB, 'g2', [MEMBER, MEMBER], () => true, T0)).localGroups[0]!.members).toHaveLength(1);
    expect(refusal(() => ch.addLocalGroupMembers(g2, SUB, 'g2', [], () => true))).toEqual({ code: 'InvalidRequestBody', ref: 'missing_member_id' });
    expect(refusal(() => ch.addLocalGroupMembers(conf, SUB, 'g1', [parseClientId('LOCAL/COM/9/X')], () => false))).toEqual({ code: 'LocalGroupMemberNotFound', ref: 'local_group_member_not_found' });
    expect(refusal(() => ch.deleteLocalGroupMembers(conf, SUB, 'g1', [MEMBER, parseClientId('LOCAL/COM/9/X')]))).toEqual({ code: 'LocalGroupMemberNotFound', ref: 'local_group_member_not_found' });
    expect(sub(ch.deleteLocalGroupMembers(conf, SUB, 'g1', [MEMBER])).localGroups[0]!.members.map((m) => m.id)).toEqual([OWNER]);
  });
});
