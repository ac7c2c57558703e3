/**
 * The metaservices on the local instance as `npm start` builds it (issue 14 item 5): the
 * information system of LOCAL/COM/2222/CLIENT asks ss2's client proxy over HTTPS with its
 * certificate; ss1's server proxy answers for LOCAL/COM/1111/PROVIDER from its serverconf and the
 * test services' own WSDL and OpenAPI document, with the provider's address taken out.
 * test/conformance/metaservices.test.ts replays the reference's vectors through the same path.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { WSDL_ENDPOINT_ADDRESS } from '../../src/metaservice/wsdl.ts';
import { boundaryOf, parseMultipart } from '../../src/protocol/multipart.ts';
import { SOAP_ENV_NS, XROAD_NS } from '../../src/protocol/namespaces.ts';
import { child, childElements, parseXml, textOf } from '../../src/xml/xml-tree.ts';
import { answeredOk, callClientProxy, restPath, soapRequest } from '../support/information-system.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';

let instance: LocalInstance;

beforeAll(async () => {
  instance = await sharedLocalInstance();
}, BOOT_TIMEOUT_MS);

const soap = (service: string, body: string) =>
  answeredOk(callClientProxy(instance, '/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: soapRequest(instance, service, `meta-${service}-${Date.now()}`, body) }));

/** The service codes of a methodList answer. */
const methods = (xml: Buffer) => childElements(childElements(child(parseXml(xml), SOAP_ENV_NS, 'Body')!)[0]!).map((s) => textOf(childElements(s).find((e) => e.localName === 'serviceCode')!));

describe('metaservices of the local instance, through ss2 and ss1', () => {
  it('listMethods and allowedMethods: getRandom and helloService, the provider\'s WSDL services', async () => {
    const list = await soap('listMethods', '<prod:listMethods/>');
    expect(list.contentType).toMatch(/^text\/xml; charset=UTF-8$/i);
    expect(methods(list.body).sort()).toEqual(['getRandom', 'helloService']);
    expect(methods((await soap('allowedMethods', '<prod:allowedMethods/>')).body).sort()).toEqual(['getRandom', 'helloService']);
  });

  it('getWsdl for getRandom: the test services\' WSDL as the second part, their address replaced', async () => {
    const answer = await soap('getWsdl', '<xrd:getWsdl><xrd:serviceCode>getRandom</xrd:serviceCode></xrd:getWsdl>');
    expect(answer.contentType).toMatch(/^multipart\/related; type="text\/xml"; charset=UTF-8; boundary=/);
    const [response, wsdl] = parseMultipart(answer.body, boundaryOf(answer.contentType)!);
    expect(childElements(child(parseXml(response!.body), SOAP_ENV_NS, 'Body')!).map((e) => [e.namespace, e.localName])).toEqual([[XROAD_NS, 'getWsdlResponse']]);
    const text = wsdl!.body.toString('utf8');
    expect(text).toContain(`location="${WSDL_ENDPOINT_ADDRESS}"`);
    expect(text).toContain('name="helloService"');
    expect(text).not.toContain(instance.testServicesUrl);
  });

  it('REST listMethods and getOpenAPI for rest-test: the OPENAPI service, and its document with the server URL cut to its path', async () => {
    const list = await answeredOk(callClientProxy(instance, restPath(instance, 'listMethods'), { headers: { 'x-road-client': `${instance.pki.instance}/COM/2222/CLIENT` } }));
    expect((JSON.parse(list.body.toString('utf8')) as { service: { service_code: string; service_type: string }[] }).service.map((s) => [s.service_code, s.service_type])).toEqual([['rest-test', 'OPENAPI']]);
    const doc = await answeredOk(callClientProxy(instance, restPath(instance, 'getOpenAPI?serviceCode=rest-test'), { headers: { 'x-road-client': `${instance.pki.instance}/COM/2222/CLIENT` } }));
    expect(doc.contentType).toMatch(/^application\/json/);
    expect((JSON.parse(doc.body.toString('utf8')) as { servers: unknown }).servers).toEqual([{ url: '/rest-test' }]);
  });

  it('GET /listClients: the instance\'s members and subsystems as JSON', async () => {
    const answer = await answeredOk(callClientProxy(instance, '/listClients', { headers: { accept: 'application/json' } }));
    const ids = (JSON.parse(answer.body.toString('utf8')) as { member: { id: { member_code: string; subsystem_code?: string } }[] }).member.map((m) => [m.id.member_code, m.id.subsystem_code].filter(Boolean).join('/'));
    expect(ids).toEqual(expect.arrayContaining(['1111', '1111/PROVIDER', '2222', '2222/CLIENT']));
  });
});
