/**
 * Seed 003's services half end to end, through the admin API only (issue 14 items 3, 4 and 7): ss1's
 * administrator describes the services of LOCAL/COM/1111/SERVICES — a subsystem of the provider
 * that ss1 hosts and global configuration lists, with no services yet — from the test services'
 * own WSDL and OpenAPI 3 document, enables them and grants LOCAL/COM/2222/CLIENT one SOAP service
 * and one REST endpoint; the information system of 2222/CLIENT then calls through ss2's client
 * proxy with its TLS certificate, and ss1's server proxy decides as the reference's verifyAccess
 * does (ServerMessageProcessor, ServerRestMessageProcessor). No file is edited and nothing is
 * written to a store by the test: the store is only read, for its audit log.
 *
 * Why a subsystem of its own: PROVIDER already has the test services' WSDL (getRandom,
 * helloService) and OpenAPI document, and the reference refuses a second description with the same
 * service codes; the test services answer only those operations, and the client proxy requires the
 * SOAP body's element to be named for the service code. ss1's other clients will not do either:
 * 0000/MANAGEMENT provides the management services, and the owner 1111 is a member, while
 * descriptions are added to subsystems only (UC SERVICE_08).
 *
 * The proxy reads a change within a second (serverConfReader): every call after a change polls
 * with a deadline.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { readSoapFault } from '../../src/protocol/faults.ts';
import { openServerConfStore } from '../../src/serverconf/store.ts';
import { adminApi, type AdminAnswer } from '../support/admin-api.ts';
import { eventually } from '../support/eventually.ts';
import { callClientProxy, restPath, soapRequest, type IsAnswer } from '../support/information-system.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';

/** The provider's subsystem on ss1 that hosts nothing at first: the test file's layout adds it (registration-api.test.ts). */
const SUBSYSTEM = 'SERVICES';

let instance: LocalInstance;
let inst: string;
/** When the administrator began: every audit entry of the test is later. */
let began: string;
/** The subsystem and the caller as the API names clients: INSTANCE:CLASS:CODE:SUBSYSTEM. */
let providerId: string;
let callerId: string;
/** Filled as the tests go: the descriptions', services' and endpoint's ids in the API. */
const ids: { wsdl?: string; openApi?: string; getRandom?: string; helloService?: string; restTest?: string; endpoint?: string; group?: string } = {};

beforeAll(async () => {
  instance = await sharedLocalInstance();
  inst = instance.pki.instance;
  providerId = `${inst}:COM:1111:${SUBSYSTEM}`;
  callerId = `${inst}:COM:2222:CLIENT`;
  began = new Date().toISOString();
}, BOOT_TIMEOUT_MS);

/** One call to ss1's admin API with its administrator's key ("local administrator"). */
const api = (method: string, path: string, body?: unknown): Promise<AdminAnswer> => adminApi(instance, instance.provider)(method, path, body);

/** Expects the API's success status and gives the answer. */
async function ok(answer: Promise<AdminAnswer>, status = 200): Promise<AdminAnswer> {
  const a = await answer;
  expect(a.status, a.text).toBe(status);
  return a;
}

/** 2222/CLIENT's information system calls a SOAP service (version v1, the WSDL's) of 1111/SERVICES through ss2. */
const soapCall = (service: 'getRandom' | 'helloService'): Promise<IsAnswer> =>
  callClientProxy(instance, '/', {
    method: 'POST',
    headers: { 'content-type': 'text/xml' },
    body: soapRequest(instance, service, `services-api-${service}-${Date.now()}`, service === 'getRandom' ? '<prod:getRandom/>' : '<prod:helloService><prod:name>Seed003</prod:name></prod:helloService>', { subsystem: SUBSYSTEM, version: 'v1' }),
  });

/** … and a REST service's path of 1111/SERVICES. */
const restCall = (path: string): Promise<IsAnswer> => callClientProxy(instance, restPath(instance, path, SUBSYSTEM), { headers: { 'x-road-client': `${inst}/COM/2222/CLIENT` } });

/** The SOAP fault the call got, undefined when it was answered (the client proxy sends faults with HTTP 200, as the reference's HandlerBase). */
const faultOf = (a: IsAnswer) => readSoapFault(a.body);
const answered = (a: IsAnswer) => a.status === 200 && faultOf(a) === undefined;

/** The REST refusal the call got: the X-Road-Error header and the JSON error's type and message. */
const restRefusal = (a: IsAnswer) => {
  const error = a.headers.find(([n]) => n.toLowerCase() === 'x-road-error')?.[1];
  return error === undefined ? undefined : { error, ...(JSON.parse(a.body.toString('utf8')) as { type: string; message: string }) };
};

/** Polls `call` until `done` says its answer is the one expected after a change (the proxy reads changes within a second). */
const once = (call: () => Promise<IsAnswer>, done: (a: IsAnswer) => boolean, what: string): Promise<IsAnswer> =>
  eventually(async () => {
    const a = await call();
    return done(a) ? a : undefined;
  }, 20_000, what);

const serviceName = (code: string) => `SERVICE:${inst}/COM/1111/${SUBSYSTEM}/${code}`;

describe('seed 003, the services: descriptions, access rights and local groups on ss1 through its admin API, calls through ss2', () => {
  it('UC SERVICE_08, SERVICE_12: a WSDL and an OpenAPI 3 description are added to a subsystem with none, disabled with "Out of order" until enabled', async () => {
    expect((await ok(api('GET', `/clients/${providerId}/service-descriptions`))).json).toEqual([]);

    const wsdl = (await ok(api('POST', `/clients/${providerId}/service-descriptions`, { url: `${instance.testServicesUrl}/wsdl`, type: 'WSDL' }), 201)).json;
    expect(wsdl).toMatchObject({ type: 'WSDL', disabled: true, disabled_notice: 'Out of order', client_id: providerId });
    // One service per operation, with the WSDL's version and its soap:address, each with its base endpoint.
    expect(wsdl.services.map((s: { id: string; url: string; endpoints: { method: string; path: string }[] }) => [s.id, s.url, s.endpoints.map((e) => `${e.method} ${e.path}`)])).toEqual([
      [`${providerId}:getRandom.v1`, `${instance.testServicesUrl}/`, ['* **']],
      [`${providerId}:helloService.v1`, `${instance.testServicesUrl}/`, ['* **']],
    ]);
    // The reference refuses the same WSDL URL twice for a client (wsdl_exists).
    const again = await api('POST', `/clients/${providerId}/service-descriptions`, { url: `${instance.testServicesUrl}/wsdl`, type: 'WSDL' });
    expect([again.status, again.json.error.code]).toEqual([409, 'WsdlExists']);

    const openApi = (await ok(api('POST', `/clients/${providerId}/service-descriptions`, { url: `${instance.testServicesUrl}/rest-test/openapi.json`, type: 'OPENAPI3', rest_service_code: 'rest-test' }), 201)).json;
    expect(openApi).toMatchObject({ type: 'OPENAPI3', disabled: true, disabled_notice: 'Out of order' });
    // One service at the document's server URL; a base endpoint and one per operation, generated.
    expect(openApi.services).toHaveLength(1);
    expect(openApi.services[0]).toMatchObject({ id: `${providerId}:rest-test`, url: `${instance.testServicesUrl}/rest-test` });
    expect(openApi.services[0].endpoints.map((e: { method: string; path: string; generated: boolean }) => [e.method, e.path, e.generated])).toEqual([
      ['*', '**', true],
      ['GET', '/random', true],
      ['GET', '/hello', true],
    ]);

    [ids.wsdl, ids.openApi] = [wsdl.id, openApi.id];
    [ids.getRandom, ids.helloService, ids.restTest] = [wsdl.services[0].id, wsdl.services[1].id, openApi.services[0].id];
    await ok(api('PUT', `/service-descriptions/${ids.wsdl}/enable`));
    await ok(api('PUT', `/service-descriptions/${ids.openApi}/enable`));
    const described = (await ok(api('GET', `/clients/${providerId}/service-descriptions`))).json;
    expect(described.map((d: { id: string; disabled: boolean }) => [d.id, d.disabled])).toEqual([[ids.wsdl, false], [ids.openApi, false]]);
  });

  it('UC SERVICE_17, verifyAccess (ServerMessageProcessor): the SOAP service granted to 2222/CLIENT answers; the ungranted one of the same description is refused with Server.ServerProxy.AccessDenied "Request is not allowed: SERVICE:…"', async () => {
    const granted = (await ok(api('POST', `/services/${ids.getRandom}/service-clients`, { items: [{ id: callerId }] }))).json;
    expect(granted).toMatchObject([{ id: callerId, service_client_type: 'SUBSYSTEM' }]);

    const answer = await once(() => soapCall('getRandom'), answered, 'the granted getRandom answers');
    expect(answer.body.toString('utf8')).toMatch(/<[\w:]*data>\d{1,3}<\/[\w:]*data>/);
    expect(answer.body.toString('utf8')).toContain(`<id:subsystemCode>${SUBSYSTEM}</id:subsystemCode>`);

    expect((await ok(api('GET', `/services/${ids.helloService}/service-clients`))).json).toEqual([]);
    const refused = await soapCall('helloService');
    expect(faultOf(refused)).toMatchObject({ faultCode: 'Server.ServerProxy.AccessDenied', faultString: `Request is not allowed: ${serviceName('helloService/v1')}` });
  });

  it('verifyAccess (ServerRestMessageProcessor), endpoint rights: a right on an added endpoint lets its calls through; a path outside it is refused with Server.ServerProxy.AccessDenied', async () => {
    // Before any right on the service, every path is refused.
    expect(restRefusal(await restCall('rest-test/random'))?.error).toBe('Server.ServerProxy.AccessDenied');

    // The document's GET /random is there already (generated); the administrator adds one for any method.
    const endpoint = (await ok(api('POST', `/services/${ids.restTest}/endpoints`, { method: '*', path: '/random' }), 201)).json;
    expect(endpoint).toMatchObject({ service_code: 'rest-test', method: '*', path: '/random', generated: false });
    ids.endpoint = endpoint.id;
    expect((await ok(api('POST', `/endpoints/${ids.endpoint}/service-clients`, { items: [{ id: callerId }] }), 201)).json).toMatchObject([{ id: callerId }]);
    // A right on an endpoint is not a right on the whole service.
    expect((await ok(api('GET', `/services/${ids.restTest}/service-clients`))).json).toEqual([]);

    const answer = await once(() => restCall('rest-test/random'), (a) => a.status === 200, 'the granted endpoint answers');
    const { randomNumber } = JSON.parse(answer.body.toString('utf8')) as { randomNumber: number };
    expect(randomNumber).toBeGreaterThanOrEqual(0);
    expect(randomNumber).toBeLessThanOrEqual(100);

    const outside = await restCall('rest-test/hello?name=Seed003');
    expect(outside.status).not.toBe(200);
    expect(restRefusal(outside)).toMatchObject({ error: 'Server.ServerProxy.AccessDenied', type: 'Server.ServerProxy.AccessDenied', message: `Request is not allowed: ${serviceName('rest-test')}` });
  });

  it('UC SERVICE_25, SERVICE_26, isQueryAllowed: a local group of the provider with 2222/CLIENT as member, granted helloService, lets the call through', async () => {
    const group = (await ok(api('POST', `/clients/${providerId}/local-groups`, { code: 'seed-003-callers', description: 'Callers of seed 003' }), 201)).json;
    expect(group).toMatchObject({ code: 'seed-003-callers', member_count: 0 });
    ids.group = group.id;
    await ok(api('POST', `/local-groups/${ids.group}/members`, { items: [callerId] }), 201);
    expect((await ok(api('GET', `/local-groups/${ids.group}`))).json.members).toMatchObject([{ id: callerId }]);
    const granted = (await ok(api('POST', `/services/${ids.helloService}/service-clients`, { items: [{ id: ids.group }] }))).json;
    expect(granted).toMatchObject([{ id: ids.group, local_group_code: 'seed-003-callers', service_client_type: 'LOCALGROUP' }]);

    const answer = await once(() => soapCall('helloService'), answered, 'helloService answers through the local group');
    expect(answer.body.toString('utf8')).toContain('Hello Seed003! Greetings from adapter server!');
  });

  it('UC SERVICE_13, verifyAccess: the services of a disabled description are refused with ServiceDisabled "Service SERVICE:… is disabled: <notice>"; enabled again, they answer', async () => {
    const notice = 'Down for maintenance until 18:00';
    await ok(api('PUT', `/service-descriptions/${ids.wsdl}/disable`, { disabled_notice: notice }));
    expect((await ok(api('GET', `/service-descriptions/${ids.wsdl}`))).json).toMatchObject({ disabled: true, disabled_notice: notice });

    const disabled = await once(() => soapCall('getRandom'), (a) => faultOf(a) !== undefined, 'getRandom is refused as disabled');
    expect(faultOf(disabled)).toMatchObject({ faultCode: 'Server.ServerProxy.ServiceDisabled', faultString: `Service ${serviceName('getRandom/v1')} is disabled: ${notice}` });
    // The local group's service is in the same description.
    expect(faultOf(await soapCall('helloService'))).toMatchObject({ faultCode: 'Server.ServerProxy.ServiceDisabled', faultString: `Service ${serviceName('helloService/v1')} is disabled: ${notice}` });
    // The OpenAPI description stays enabled.
    expect((await restCall('rest-test/random')).status).toBe(200);

    await ok(api('PUT', `/service-descriptions/${ids.wsdl}/enable`));
    await once(() => soapCall('getRandom'), answered, 'getRandom answers again');
  });

  it('issue 14 item 1: every change is in the audit log with the API key\'s name, a refused one not at all', async () => {
    const store = await openServerConfStore(instance.provider.proxyDataDir);
    let log;
    try {
      log = (await store.auditLog({ limit: 1000 })).reverse().filter((e) => e.actor.kind !== 'system');
    } finally {
      await store.close();
    }
    // Who and when: the API key's name, at the time of the change.
    expect(log.every((e) => e.actor.kind === 'api-key' && e.actor.name === 'local administrator')).toBe(true);
    expect(log.every((e) => e.at >= began && e.at <= new Date().toISOString())).toBe(true);
    expect(log.map((e) => e.action)).toEqual([
      'ADD_SERVICE_DESCRIPTION',
      'ADD_SERVICE_DESCRIPTION',
      'ENABLE_SERVICE_DESCRIPTION',
      'ENABLE_SERVICE_DESCRIPTION',
      'ADD_SERVICE_ACCESS_RIGHTS',
      'ADD_ENDPOINT',
      'ADD_ENDPOINT_ACCESS_RIGHTS',
      'ADD_LOCAL_GROUP',
      'ADD_LOCAL_GROUP_MEMBERS',
      'ADD_SERVICE_ACCESS_RIGHTS',
      'DISABLE_SERVICE_DESCRIPTION',
      'ENABLE_SERVICE_DESCRIPTION',
    ]);
    // What was changed, as the administrator asked for it.
    expect(log[0]!.detail).toMatchObject({ clientId: `${inst}/COM/1111/${SUBSYSTEM}`, type: 'WSDL', url: `${instance.testServicesUrl}/wsdl` });
    expect(log[1]!.detail).toMatchObject({ type: 'OPENAPI3', serviceCode: 'rest-test' });
    expect(log[4]!.detail).toMatchObject({ serviceId: ids.getRandom, subjects: [`${inst}/COM/2222/CLIENT`] });
    expect(log[5]!.detail).toMatchObject({ serviceId: ids.restTest, method: '*', path: '/random' });
    expect(log[9]!.detail).toMatchObject({ serviceId: ids.helloService, subjects: ['LOCALGROUP:seed-003-callers'] });
    expect(log[10]!.detail).toMatchObject({ id: Number(ids.wsdl), notice: 'Down for maintenance until 18:00' });
  });
});
