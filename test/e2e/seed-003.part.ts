/**
 * Seed 003 ("connecting an information system") start to finish on the local instance, once with
 * only the admin API and once with only the `xrd` command line — no file edited, no store written by
 * the test:
 *  - on ss2 the subsystem is added and registered (clientReg through the management service,
 *    approved by the central server's administrator), and shows REGISTERED;
 *  - on ss1 the provider's WSDL and OpenAPI 3 descriptions are added and enabled, and the new
 *    subsystem is granted one SOAP service and one REST endpoint;
 *  - the information system's key and self-signed certificate come from the seed's `openssl`
 *    command, the certificate is added to the subsystem, whose connection type is HTTPS;
 *  - the seed's `curl` call is answered; an ungranted service and an ungranted endpoint are refused
 *    with the reference's faults; the call without the certificate gets the seed's fault.
 * API: the subsystem NEWSUB, its services on PROVIDER (whose descriptions are replaced through the
 * API). CLI: CLISUB, its services on a provider subsystem CLIPROV added and registered on ss1 with
 * the CLI too.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { getRandomRequest } from '../../src/dev/localinstance/first-calls.ts';
import type { LocalInstance, LocalServer } from '../../src/dev/localinstance/local-instance.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { adminApi } from '../support/admin-api.ts';
import { eventually } from '../support/eventually.ts';
import { BOOT_TIMEOUT_MS, partWorkFolder, sharedLocalInstance } from '../support/shared-instance.ts';

const run = promisify(execFile);
const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
let instance: LocalInstance;
const dir = partWorkFolder('xrd-seed003');

beforeAll(async () => {
  instance = await sharedLocalInstance();
}, BOOT_TIMEOUT_MS);

/** The central server's administrator approves the pending clientReg of `client`. */
function approveClientReg(client: string): void {
  const pki = LocalPki.open(instance.pki.dir);
  pki.approveManagementRequest(pki.managementRequests().find((r) => r.type === 'clientReg' && r.client === client && r.status === 'SUBMITTED')!.id);
}

/** The seed's command: `openssl req -new -x509 -days 365 -nodes -out clientcert.pem -keyout clientprivatekey.pem`. */
async function informationSystem(name: string): Promise<string> {
  const isDir = join(dir, name);
  mkdirSync(isDir, { recursive: true });
  await run('openssl', ['req', '-new', '-x509', '-days', '365', '-nodes', '-out', 'clientcert.pem', '-keyout', 'clientprivatekey.pem', '-subj', `/CN=${name}`], { cwd: isDir });
  return isDir;
}

/** The seed's curl command (with the certificate unless `withCert` is false); the answer's body. */
async function seedCurl(isDir: string, request: string, withCert = true): Promise<string> {
  writeFileSync(join(isDir, 'request.xml'), request);
  const cert = withCert ? ['-E', './clientcert.pem', '--key', './clientprivatekey.pem'] : [];
  const { stdout } = await run('curl', ['-s', ...cert, '-k', '-d', '@request.xml', '--header', 'Content-Type: text/xml', '-X', 'POST', `${instance.consumer.httpsUrl}/`], { cwd: isDir, timeout: 60_000 });
  return stdout;
}

async function restCurl(isDir: string, client: string, path: string): Promise<{ status: string; error: string }> {
  const { stdout } = await run('curl', ['-s', '-E', './clientcert.pem', '--key', './clientprivatekey.pem', '-k', '-D', '-', '-o', '/dev/null', '-H', `X-Road-Client: ${client}`, `${instance.consumer.httpsUrl}/r1/${path}`], { cwd: isDir, timeout: 60_000 });
  return { status: /^HTTP\/\S+ (\d+)/.exec(stdout)?.[1] ?? '', error: /^x-road-error: (.*)\r?$/im.exec(stdout)?.[1]?.trim() ?? '' };
}

/** getRandomRequest for `client`, to `service` (version v1) of `provider`. */
function soap(client: string, provider: string, service: string, id: string): string {
  return getRandomRequest(instance, client, id)
    .replace('<id:subsystemCode>PROVIDER</id:subsystemCode><id:serviceCode>getRandom</id:serviceCode>', `<id:subsystemCode>${provider}</id:subsystemCode><id:serviceCode>${service}</id:serviceCode><id:serviceVersion>v1</id:serviceVersion>`)
    .replace('<prod:getRandom/>', `<prod:${service}/>`);
}

const fault = (xml: string) => `${/<faultcode>([^<]*)<\/faultcode>/.exec(xml)?.[1]}: ${/<faultstring>([^<]*)<\/faultstring>/.exec(xml)?.[1]?.replaceAll('&apos;', "'")}`;
const DATA = /<[\w:]*data>\d{1,3}<\/[\w:]*data>/;

describe('seed 003 with only the admin API', () => {
  const ss1 = () => adminApi(instance, instance.provider);
  const ss2 = () => adminApi(instance, instance.consumer);
  let isDir: string;

  it('ss2: LOCAL/COM/2222/NEWSUB added, registered through the management service, approved, REGISTERED', async () => {
    expect((await ss2()('POST', '/clients', { client: { member_class: 'COM', member_code: '2222', subsystem_code: 'NEWSUB', connection_type: 'HTTP' } })).status).toBe(201);
    expect((await ss2()('PUT', '/clients/LOCAL:COM:2222:NEWSUB/register')).status).toBe(204);
    approveClientReg('LOCAL/COM/2222/NEWSUB');
    await eventually(async () => ((await ss2()('GET', '/clients/LOCAL:COM:2222:NEWSUB')).json.status === 'REGISTERED' ? true : undefined), 30_000, 'NEWSUB registered');
  }, 120_000);

  it("ss1: PROVIDER's WSDL and OpenAPI descriptions added and enabled; NEWSUB granted getRandom and the endpoint GET /random", async () => {
    const api = ss1();
    for (const d of (await api('GET', '/clients/LOCAL:COM:1111:PROVIDER/service-descriptions')).json) expect((await api('DELETE', `/service-descriptions/${d.id}`)).status).toBe(204);
    const wsdl = await api('POST', '/clients/LOCAL:COM:1111:PROVIDER/service-descriptions', { url: `${instance.testServicesUrl}/wsdl`, type: 'WSDL' });
    expect(wsdl.status).toBe(201);
    const openApi = await api('POST', '/clients/LOCAL:COM:1111:PROVIDER/service-descriptions', { url: `${instance.testServicesUrl}/rest-test/openapi.json`, type: 'OPENAPI3', rest_service_code: 'rest-test' });
    expect(openApi.status).toBe(201);
    for (const d of [wsdl.json, openApi.json]) expect((await api('PUT', `/service-descriptions/${d.id}/enable`)).status).toBe(200);
    expect((await api('POST', '/services/LOCAL:COM:1111:PROVIDER:getRandom.v1/service-clients', { items: [{ id: 'LOCAL:COM:2222:NEWSUB' }] })).status).toBe(200);
    const random = openApi.json.services[0].endpoints.find((e: { method: string; path: string }) => e.method === 'GET' && e.path === '/random');
    expect(random).toMatchObject({ generated: true });
    expect((await api('POST', `/endpoints/${random.id}/service-clients`, { items: [{ id: 'LOCAL:COM:2222:NEWSUB' }] })).status).toBe(201);
  }, 60_000);

  it("ss2: the seed's openssl certificate added to NEWSUB, connection type HTTPS", async () => {
    isDir = await informationSystem('newsub-is');
    const added = await ss2()('POST', '/clients/LOCAL:COM:2222:NEWSUB/tls-certificates', readFileSync(join(isDir, 'clientcert.pem')));
    expect(added.status).toBe(201);
    expect((await ss2()('PATCH', '/clients/LOCAL:COM:2222:NEWSUB', { connection_type: 'HTTPS' })).json).toMatchObject({ connectionType: 'HTTPS', tlsCertificates: [{ hash: added.json.hash }] });
  });

  it("the seed's curl: the granted service answers; an ungranted service and endpoint are refused with the reference's faults; no certificate, the seed's fault", async () => {
    const answer = await eventually(async () => {
      const body = await seedCurl(isDir, soap('2222/NEWSUB', 'PROVIDER', 'getRandom', 'seed003-api'));
      return DATA.test(body) ? body : undefined;
    }, 20_000, 'getRandom answered for NEWSUB');
    expect(answer).toContain('<id:subsystemCode>NEWSUB</id:subsystemCode>');
    expect(fault(await seedCurl(isDir, soap('2222/NEWSUB', 'PROVIDER', 'helloService', 'seed003-api-hello')))).toBe('Server.ServerProxy.AccessDenied: Request is not allowed: SERVICE:LOCAL/COM/1111/PROVIDER/helloService/v1');
    // ss1 and ss2 read each change within a second (serverConfReader): a call that depends on one that may not be read yet is repeated, bounded.
    await expect.poll(() => restCurl(isDir, 'LOCAL/COM/2222/NEWSUB', 'LOCAL/COM/1111/PROVIDER/rest-test/random'), { timeout: 20_000, interval: 500 }).toEqual({ status: '200', error: '' });
    expect((await restCurl(isDir, 'LOCAL/COM/2222/NEWSUB', 'LOCAL/COM/1111/PROVIDER/rest-test/hello')).error).toBe('Server.ServerProxy.AccessDenied');
    await expect.poll(async () => fault(await seedCurl(isDir, soap('2222/NEWSUB', 'PROVIDER', 'getRandom', 'seed003-api-nocert'), false)), { timeout: 20_000, interval: 500 }).toBe('Server.ClientProxy.SslAuthenticationFailed: Client (SUBSYSTEM:LOCAL/COM/2222/NEWSUB) specifies HTTPS but did not supply TLS certificate');
  }, 60_000);
});

describe('seed 003 with only the command line', () => {
  let isDir: string;
  const xrd = async (server: LocalServer, ...args: string[]) => {
    const { stdout } = await run(process.execPath, [XRD, ...args, '--json', '--data-dir', server.proxyDataDir, '--socket', server.signerSocket, '--conf', instance.pki.globalConfDir, '--client-proxy-url', server.httpsUrl], { timeout: 60_000 });
    return JSON.parse(stdout);
  };

  it('ss2: CLISUB and ss1: CLIPROV added and registered with xrd client add|register, approved, REGISTERED', async () => {
    for (const [server, client] of [[instance.consumer, 'COM/2222/CLISUB'], [instance.provider, 'COM/1111/CLIPROV']] as const) {
      await xrd(server, 'client', 'add', client, '--connection-type', 'HTTPS');
      const id = `LOCAL:${client.replaceAll('/', ':')}`;
      expect(await xrd(server, 'client', 'register', id)).toMatchObject({ status: 'REGISTRATION_IN_PROGRESS' });
      approveClientReg(`LOCAL/${client}`);
      await eventually(async () => ((await xrd(server, 'client', 'show', id)).status === 'REGISTERED' ? true : undefined), 30_000, `${client} registered`);
    }
  }, 120_000);

  it('ss1: the WSDL and OpenAPI descriptions added to CLIPROV and enabled, CLISUB granted getRandom and GET /random (xrd service-description, access)', async () => {
    const ss1 = instance.provider;
    const wsdl = await xrd(ss1, 'service-description', 'add', 'LOCAL:COM:1111:CLIPROV', '--type', 'WSDL', '--url', `${instance.testServicesUrl}/wsdl`);
    const openApi = await xrd(ss1, 'service-description', 'add', 'LOCAL:COM:1111:CLIPROV', '--type', 'OPENAPI3', '--url', `${instance.testServicesUrl}/rest-test/openapi.json`, '--service-code', 'rest-test');
    for (const d of [wsdl, openApi]) await xrd(ss1, 'service-description', 'enable', d.id);
    await xrd(ss1, 'access', 'grant', 'LOCAL:COM:1111:CLIPROV:getRandom.v1', 'LOCAL:COM:2222:CLISUB');
    const random = openApi.services[0].endpoints.find((e: { method: string; path: string }) => e.method === 'GET' && e.path === '/random');
    await xrd(ss1, 'access', 'grant', '--endpoint', random.id, 'LOCAL:COM:2222:CLISUB');
    expect((await xrd(ss1, 'access', 'list', 'LOCAL:COM:1111:CLIPROV:getRandom.v1')).map((c: { id: string }) => c.id)).toEqual(['LOCAL:COM:2222:CLISUB']);
  }, 120_000);

  it("ss2: the seed's openssl certificate added to CLISUB (xrd client tls-cert add); the seed's curl answered, ungranted ones refused, no certificate the seed's fault", async () => {
    isDir = await informationSystem('clisub-is');
    await xrd(instance.consumer, 'client', 'tls-cert', 'add', 'LOCAL:COM:2222:CLISUB', '--cert', join(isDir, 'clientcert.pem'));
    await eventually(async () => {
      const body = await seedCurl(isDir, soap('2222/CLISUB', 'CLIPROV', 'getRandom', 'seed003-cli'));
      return DATA.test(body) ? body : undefined;
    }, 20_000, 'getRandom answered for CLISUB');
    expect(fault(await seedCurl(isDir, soap('2222/CLISUB', 'CLIPROV', 'helloService', 'seed003-cli-hello')))).toBe('Server.ServerProxy.AccessDenied: Request is not allowed: SERVICE:LOCAL/COM/1111/CLIPROV/helloService/v1');
    await expect.poll(() => restCurl(isDir, 'LOCAL/COM/2222/CLISUB', 'LOCAL/COM/1111/CLIPROV/rest-test/random'), { timeout: 20_000, interval: 500 }).toEqual({ status: '200', error: '' });
    expect((await restCurl(isDir, 'LOCAL/COM/2222/CLISUB', 'LOCAL/COM/1111/CLIPROV/rest-test/hello')).error).toBe('Server.ServerProxy.AccessDenied');
    expect(fault(await seedCurl(isDir, soap('2222/CLISUB', 'CLIPROV', 'getRandom', 'seed003-cli-nocert'), false))).toBe('Server.ClientProxy.SslAuthenticationFailed: Client (SUBSYSTEM:LOCAL/COM/2222/CLISUB) specifies HTTPS but did not supply TLS certificate');
  }, 120_000);
});
