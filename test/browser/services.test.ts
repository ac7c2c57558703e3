/**
 * A client's Services, Service clients and Local groups tabs in chromium (docs/admin-ui.md
 * "Services, service clients and local groups"), against the admin API in this process (no signer:
 * nothing here signs) with the global configuration of test/support/services-world.ts (the
 * subsystems and global group the pages offer as subjects) and the description documents served
 * over loopback HTTP. A service administrator walks what seed 003 and the reference's services
 * pages do: adds a WSDL description, enables and refreshes it, searches its services, changes a
 * service's URL, TLS check and timeout (the timeout for the whole description), adds an OpenAPI 3
 * description past its validation warnings and edits its URL past the endpoints it would add,
 * adds, edits and deletes endpoints, adds a REST description, makes local groups (members added
 * and removed, one group deleted), gives a subsystem and a local group rights to a service and to
 * an endpoint and removes one, gives a service client a further service and takes one away, makes
 * a global group a service client, disables a description with a notice, refreshes the WSDL past
 * the services it would add and delete, and deletes it after a confirmation. Each change is
 * checked through the API afterwards, not only on screen. An observer sees the same pages without
 * a control that changes anything.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { UserStore } from '../../src/admin/users.ts';
import { globalConfReader } from '../../src/globalconf/global-conf.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { type Browser, expectCleanRun, logIn, logOut } from '../support/browser.ts';
import { startUiServer, type UiServer } from '../support/ui-server.ts';
import { CONSUMER, OTHER, PROVIDER, writeServicesWorld } from '../support/services-world.ts';

const PASSWORD = 'correct horse battery';
const FIXTURES = resolve(import.meta.dirname, '../fixtures/service-descriptions');
const CLIENT = PROVIDER;
const FORECAST = `${CLIENT}:forecast.v1`;

const dir = mkdtempSync(join(tmpdir(), 'xrd-browser-services-'));
let ui: UiServer;
let documents: Server;
let docs: string;
/** The version the WSDL gives its SOAP 1.2 service: changed to make a refresh add one service and delete another. */
let soap12Version = 'v12';
let origin: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  const confDir = await writeServicesWorld(dir);
  const users = new UserStore(join(dir, 'admin', 'users.json'));
  await users.add('sam', PASSWORD, ['XROAD_SERVICE_ADMINISTRATOR']);
  await users.add('olivia', PASSWORD, ['XROAD_SECURESERVER_OBSERVER']);

  // The description documents, as a service provider's server offers them.
  documents = createServer((req, res) => {
    const name = (req.url ?? '/').slice(1);
    if (!['provider.wsdl', 'pets.yaml', 'warnings.yaml'].includes(name)) return void res.writeHead(404).end();
    const document = readFileSync(join(FIXTURES, name), 'utf8').replace('<xrd:version>v12</xrd:version>', `<xrd:version>${soap12Version}</xrd:version>`);
    res.writeHead(200, { 'content-type': name.endsWith('.wsdl') ? 'text/xml' : 'application/yaml' }).end(document);
  });
  await new Promise<void>((listening) => documents.listen(0, '127.0.0.1', listening));
  docs = `http://127.0.0.1:${(documents.address() as AddressInfo).port}`;

  const admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: join(dir, 'none.sock'), globalConf: globalConfReader(confDir), logger: silentLogger() });
  // The walk clicks faster than a person and checks each change with its own calls, all from
  // 127.0.0.1; the limits themselves are tested in test/unit/api-security.test.ts.
  ui = await startUiServer({ workDir: dir, proxyDataDir: dir, admin, users, rateLimit: { perSecond: 1000, perMinute: 60_000 } });
  ({ origin, browser, page } = ui);
}, 90_000);

afterAll(async () => {
  await ui?.close();
  if (documents) await new Promise((closed) => documents.close(closed));
  rmSync(dir, { recursive: true, force: true });
});

const screenshot = (name: string): Promise<Buffer> => browser.screenshot(name);
const tab = (name: string) => `${origin}/clients/${encodeURIComponent(CLIENT)}/${name}`;

/** GET /api/v1<path> with the browser's session: what the server now holds, not what the page shows. */
async function apiGet<T = any>(path: string): Promise<T> {
  const [status, body] = await page.evaluate(async (url) => {
    const answer = await fetch(url, { headers: { accept: 'application/json' } });
    return [answer.status, await answer.text()] as const;
  }, `/api/v1${path}`);
  expect(status, body).toBe(200);
  return JSON.parse(body) as T;
}
const e = encodeURIComponent;
const descriptions = () => apiGet<any[]>(`/clients/${e(CLIENT)}/service-descriptions`);
const rightsOf = async (kind: 'services' | 'endpoints', id: string) => (await apiGet<any[]>(`/${kind}/${e(id)}/service-clients`)).map((s) => s.local_group_code ?? s.id).sort();

/** The open modal dialog (the page shows one at a time). */
const dialog = () => page.locator('dialog[open]');

describe('a client\'s services, service clients and local groups in chromium', () => {
  let groupId: string;
  let petsService: string;
  let customEndpoint: string;

  it('the service administrator adds a WSDL description (disabled until enabled), enables it and changes a service\'s URL and, for the whole description, its timeout', async () => {
    await logIn(page, origin, 'sam', PASSWORD, `/clients/${e(CLIENT)}/services`);
    await page.getByText('This client has no service descriptions yet.').waitFor();
    // The header links only to the pages a service administrator may read: no Diagnostics.
    expect(await page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allInnerTexts()).toEqual(['Clients', 'Keys and certificates', 'Settings']);

    // The dialog works with the keyboard: Enter opens it with the focus inside, Escape closes it.
    await page.getByRole('button', { name: 'Add description' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => document.activeElement?.closest('dialog')?.open ?? false)).toBe(true);
    await page.keyboard.press('Escape');
    await dialog().waitFor({ state: 'detached' });

    await page.getByRole('button', { name: 'Add description' }).click();
    await dialog().getByLabel('Type').selectOption('WSDL');
    await dialog().getByLabel('WSDL URL').fill(`${docs}/provider.wsdl`);
    await screenshot('client-services-add');
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    await dialog().waitFor({ state: 'detached' });

    const [wsdl] = await descriptions();
    expect(wsdl).toMatchObject({ type: 'WSDL', url: `${docs}/provider.wsdl`, disabled: true });
    expect(wsdl.services.map((s: any) => s.full_service_code)).toEqual(['forecast.v1', 'observations.v2', 'ping', 'forecast.v12']);

    const card = page.getByTestId(`description-${wsdl.id}`);
    await card.locator('summary').click();
    await card.getByRole('button', { name: 'Enable' }).click();
    await card.getByText('Enabled', { exact: true }).waitFor();
    expect((await descriptions())[0].disabled).toBe(false);
    // Refreshing an unchanged document warns about nothing: it is read again at once.
    const before = (await descriptions())[0].refreshed_at;
    await card.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(async () => (await descriptions())[0].refreshed_at).not.toBe(before);
    expect(await dialog().count()).toBe(0);

    // The search keeps the descriptions with a matching service code and shows those services only.
    await page.getByLabel('Filter by service code').fill('FORE');
    await expect.poll(() => card.locator('tbody th:visible').allInnerTexts()).toEqual(['forecast.v1', 'forecast.v12']);
    await page.getByLabel('Filter by service code').fill('nothing');
    await page.getByText('No service code holds “nothing”.').waitFor();
    await page.getByLabel('Filter by service code').fill('');
    await card.getByRole('link', { name: 'forecast.v1', exact: true }).click();
    await page.waitForURL(`${tab('services')}/${e(FORECAST)}`);
    await page.getByLabel('Service URL').fill('https://forecast.example:8443/soap');
    await page.getByLabel('Timeout (s)').fill('45');
    await page.getByLabel('Apply the timeout to all services of this description').check();
    // TLS verification of the service's server is offered for an https URL only.
    await page.getByLabel('Verify TLS certificate (https only)').check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    expect(await apiGet(`/services/${e(FORECAST)}`)).toMatchObject({ url: 'https://forecast.example:8443/soap', timeout: 45, ssl_auth: true });
    const after = (await descriptions())[0].services;
    expect(after.map((s: any) => s.timeout)).toEqual([45, 45, 45, 45]);
    expect(after.filter((s: any) => s.url === 'https://forecast.example:8443/soap').map((s: any) => s.full_service_code)).toEqual(['forecast.v1']);
    await screenshot('client-service');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot('client-service-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
  }, 120_000);

  it('adds an OpenAPI 3 description past its validation warnings, edits its URL past the endpoints that come with it, and adds an endpoint of its own', async () => {
    await page.goto(tab('services'));
    await page.getByRole('button', { name: 'Add description' }).click();
    await dialog().getByLabel('Type').selectOption('OPENAPI3');
    await dialog().getByLabel('OpenAPI 3 description URL').fill(`${docs}/warnings.yaml`);
    await dialog().getByLabel('Service code').fill('pets');
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    // The reference's warnings_detected: shown with their codes; nothing stored until "Continue anyway".
    await dialog().getByText('openapi_validation_warnings', { exact: true }).waitFor();
    expect(await dialog().getByRole('alert').first().innerText()).toContain('WarningsDetected');
    expect(await descriptions()).toHaveLength(1);
    await screenshot('client-services-warnings');
    await dialog().getByRole('button', { name: 'Continue anyway' }).click();
    await dialog().waitFor({ state: 'detached' });
    const openapi = (await descriptions())[1];
    expect(openapi).toMatchObject({ type: 'OPENAPI3', url: `${docs}/warnings.yaml` });
    petsService = openapi.services[0].id;
    expect(openapi.services[0].endpoints.map((x: any) => `${x.method} ${x.path}`)).toEqual(['* **']);

    // Another document under the same service code: the endpoints it adds are warned about first.
    const card = page.getByTestId(`description-${openapi.id}`);
    await card.locator('summary').click();
    await card.getByRole('button', { name: 'Edit' }).click();
    await dialog().getByLabel('URL').fill(`${docs}/pets.yaml`);
    await dialog().getByRole('button', { name: 'Save' }).click();
    await dialog().getByText('adding_endpoints', { exact: true }).waitFor();
    expect((await descriptions())[1].url).toBe(`${docs}/warnings.yaml`);
    await dialog().getByRole('button', { name: 'Continue anyway' }).click();
    await dialog().waitFor({ state: 'detached' });
    const edited = (await descriptions())[1];
    expect(edited.url).toBe(`${docs}/pets.yaml`);
    expect(edited.services[0].endpoints.length).toBeGreaterThan(1);
    expect(edited.services[0].endpoints.every((x: any) => x.generated)).toBe(true);

    await card.getByRole('link', { name: 'pets', exact: true }).click();
    await page.waitForURL(`${tab('services')}/${e(petsService)}`);
    // Generated endpoints follow the description: no Edit or Delete for them.
    await page.getByRole('table', { name: /Endpoints of pets/ }).waitFor();
    expect(await page.getByRole('button', { name: /^(Edit|Delete) / }).count()).toBe(0);
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await dialog().getByLabel('HTTP method').selectOption('POST');
    await dialog().getByLabel(/^Path/).fill('/pets/*/vaccinations');
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    await dialog().waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Edit POST /pets/*/vaccinations' }).waitFor();
    const custom = (await apiGet(`/services/${e(petsService)}`)).endpoints.find((x: any) => !x.generated);
    expect(custom).toMatchObject({ method: 'POST', path: '/pets/*/vaccinations', generated: false });
    customEndpoint = custom.id;
    await screenshot('client-service-endpoints');

    // One more of the administrator's own: edited, then deleted after the confirmation.
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await dialog().getByLabel('HTTP method').selectOption('GET');
    await dialog().getByLabel(/^Path/).fill('/tmp');
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('button', { name: 'Edit GET /tmp' }).click();
    await dialog().getByLabel('HTTP method').selectOption('PUT');
    await dialog().getByLabel(/^Path/).fill('/tmp/**');
    await dialog().getByRole('button', { name: 'Save' }).click();
    await page.getByRole('button', { name: 'Delete PUT /tmp/**' }).waitFor();
    const own = async () => (await apiGet(`/services/${e(petsService)}`)).endpoints.filter((x: any) => !x.generated).map((x: any) => `${x.method} ${x.path}`);
    expect(await own()).toEqual(['POST /pets/*/vaccinations', 'PUT /tmp/**']);
    await page.getByRole('button', { name: 'Delete PUT /tmp/**' }).click();
    await dialog().getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Delete PUT /tmp/**' }).waitFor({ state: 'detached' });
    expect(await own()).toEqual(['POST /pets/*/vaccinations']);

    // A REST API by its base URL and service code: no document to read.
    await page.goto(tab('services'));
    await page.getByRole('button', { name: 'Add description' }).click();
    await dialog().getByLabel('Type').selectOption('REST');
    await dialog().getByLabel('Base URL').fill('https://rest.example/api');
    await dialog().getByLabel('Service code').fill('weather-rest');
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    await dialog().waitFor({ state: 'detached' });
    expect((await descriptions())[2]).toMatchObject({ type: 'REST', url: 'https://rest.example/api', services: [expect.objectContaining({ full_service_code: 'weather-rest', url: 'https://rest.example/api' })] });
  }, 120_000);

  it('makes a local group with a member of global configuration and edits its description', async () => {
    await page.goto(tab('local-groups'));
    await page.getByText('This client has no local groups yet.').waitFor();
    await page.getByRole('button', { name: 'Add group' }).click();
    await dialog().getByLabel('Code').fill('partners');
    await dialog().getByLabel('Description').fill('Partner agencies');
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('heading', { name: 'Local group partners' }).waitFor();

    await page.getByRole('button', { name: 'Add members' }).click();
    // The subsystems of global configuration are offered (members cannot be picked here, as in the reference).
    await dialog().getByLabel(`${CONSUMER} (Consumer portal)`).waitFor();
    await dialog().getByLabel(OTHER, { exact: true }).check();
    await dialog().getByRole('button', { name: 'Add selected' }).click();
    await dialog().waitFor({ state: 'detached' });
    await page.getByRole('table', { name: 'Members of partners' }).getByText(OTHER).waitFor();
    await screenshot('client-local-group');
    await page.getByRole('button', { name: 'Add members' }).click();
    await dialog().getByLabel(`${CONSUMER} (Consumer portal)`).check();
    await dialog().getByRole('button', { name: 'Add selected' }).click();
    await page.getByRole('button', { name: `Remove ${CONSUMER}` }).click();
    await dialog().getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('button', { name: `Remove ${CONSUMER}` }).waitFor({ state: 'detached' });

    await page.getByLabel('Description').fill('Partner agencies of the provider');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();

    const [group] = await apiGet<any[]>(`/clients/${e(CLIENT)}/local-groups`);
    expect(group).toMatchObject({ code: 'partners', description: 'Partner agencies of the provider', member_count: 1 });
    expect(group.members).toEqual([expect.objectContaining({ id: OTHER, member_name: 'Consumer Ltd' })]);
    groupId = group.id;

    // Another group, deleted after the confirmation.
    await page.goto(tab('local-groups'));
    await page.getByRole('button', { name: 'Add group' }).click();
    await dialog().getByLabel('Code').fill('temporary');
    await dialog().getByLabel('Description').fill('For a day');
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('button', { name: 'Delete group' }).click();
    await dialog().getByText('temporary is deleted with its members').waitFor();
    await dialog().getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(tab('local-groups'));
    expect((await apiGet<any[]>(`/clients/${e(CLIENT)}/local-groups`)).map((g) => g.code)).toEqual(['partners']);
    await page.goto(tab('local-groups'));
    await page.getByRole('link', { name: 'partners' }).waitFor();
    await screenshot('client-local-groups');
  }, 120_000);

  it('gives a subsystem and the local group rights to a service and to an endpoint, and takes one away', async () => {
    await page.goto(`${tab('services')}/${e(FORECAST)}`);
    await page.getByText('No one may call forecast.v1 yet.').waitFor();
    await page.getByRole('button', { name: 'Add subjects' }).click();
    // Candidates: global configuration's subsystems and global group, the client's local group.
    await dialog().getByLabel('LOCAL:security-server-owners (Security server owners)').waitFor();
    await dialog().getByLabel(`${CONSUMER} (Consumer portal)`).check();
    await dialog().getByLabel('partners (Partner agencies of the provider)').check();
    await dialog().getByLabel('Filter by id or name').fill('consumer');
    expect(await dialog().getByLabel('partners (Partner agencies of the provider)').count()).toBe(0);
    await dialog().getByLabel('Filter by id or name').fill('');
    await screenshot('client-service-access');
    await dialog().getByRole('button', { name: 'Add selected' }).click();
    await dialog().waitFor({ state: 'detached' });
    await page.getByRole('table', { name: 'Subjects that may call forecast.v1' }).getByText('partners').waitFor();
    expect(await rightsOf('services', FORECAST)).toEqual([CONSUMER, 'partners']);

    // The endpoint added above: both, then the local group taken away after the confirmation.
    await page.goto(`${tab('services')}/${e(petsService)}`);
    await page.getByRole('link', { name: 'Access rights of POST /pets/*/vaccinations' }).click();
    await page.getByRole('heading', { name: 'Endpoint POST /pets/*/vaccinations' }).waitFor();
    await page.getByRole('button', { name: 'Add subjects' }).click();
    await dialog().getByLabel(`${CONSUMER} (Consumer portal)`).check();
    await dialog().getByLabel('partners (Partner agencies of the provider)').check();
    await dialog().getByRole('button', { name: 'Add selected' }).click();
    await dialog().waitFor({ state: 'detached' });
    expect(await rightsOf('endpoints', customEndpoint)).toEqual([CONSUMER, 'partners']);
    await screenshot('client-endpoint-access');
    await page.getByRole('button', { name: 'Remove partners (Partner agencies of the provider)' }).click();
    await dialog().getByRole('button', { name: 'Remove' }).click();
    await dialog().waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Remove partners (Partner agencies of the provider)' }).waitFor({ state: 'detached' });
    expect(await rightsOf('endpoints', customEndpoint)).toEqual([CONSUMER]);
    // The whole service's rights are untouched by the endpoint's.
    expect(await rightsOf('services', FORECAST)).toEqual([CONSUMER, 'partners']);
  }, 120_000);

  it('lists the service clients and gives one of them a further service', async () => {
    await page.goto(tab('service-clients'));
    const table = page.getByRole('table', { name: "Subjects with a right to at least one of the client's services" });
    await table.waitFor();
    expect((await table.locator('tbody th').allInnerTexts()).sort()).toEqual([`${CONSUMER} (Consumer portal)`, 'partners (Partner agencies of the provider)']);
    await screenshot('client-service-clients');

    await table.getByRole('link', { name: `${CONSUMER} (Consumer portal)` }).click();
    await page.getByRole('heading', { name: `Access rights of subsystem ${CONSUMER} (Consumer portal)` }).waitFor();
    await page.getByRole('button', { name: 'Add services' }).click();
    await dialog().getByLabel('ping', { exact: true }).check();
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    await dialog().waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Remove the right to ping' }).waitFor();
    const rights = await apiGet<any[]>(`/clients/${e(CLIENT)}/service-clients/${e(CONSUMER)}/access-rights`);
    expect(rights.map((r) => r.service_code).sort()).toEqual(['forecast', 'ping']);
    await screenshot('client-service-client');
    await page.getByRole('button', { name: 'Remove the right to ping' }).click();
    await dialog().getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('button', { name: 'Remove the right to ping' }).waitFor({ state: 'detached' });
    expect((await apiGet<any[]>(`/clients/${e(CLIENT)}/service-clients/${e(CONSUMER)}/access-rights`)).map((r) => r.service_code)).toEqual(['forecast']);

    // A new service client: the subject first (those with rights are not offered again), then its services.
    await page.goto(tab('service-clients'));
    await page.getByRole('button', { name: 'Add subject' }).click();
    await dialog().getByLabel('LOCAL:security-server-owners (Security server owners)').check();
    expect(await dialog().getByLabel(`${CONSUMER} (Consumer portal)`).count()).toBe(0);
    await dialog().getByLabel('pets', { exact: true }).check();
    await screenshot('client-service-clients-add');
    await dialog().getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('heading', { name: 'Access rights of global group LOCAL:security-server-owners (Security server owners)' }).waitFor();
    await page.getByRole('button', { name: 'Remove the right to pets' }).waitFor();
    expect(await rightsOf('services', petsService)).toEqual(['LOCAL:security-server-owners']);
  }, 120_000);

  it('disables a description with the notice callers get, and deletes one after the confirmation', async () => {
    await page.goto(tab('services'));
    const [wsdl, openapi] = await descriptions();
    const card = page.getByTestId(`description-${openapi.id}`);
    await card.locator('summary').click();
    // Added disabled like every description: enabled first, then disabled again with the notice.
    await card.getByRole('button', { name: 'Enable' }).click();
    await card.getByRole('button', { name: 'Disable' }).click();
    await dialog().getByLabel('Notice to callers (optional)').fill('Pets are moving to v2');
    await dialog().getByRole('button', { name: 'Disable' }).click();
    await dialog().waitFor({ state: 'detached' });
    await card.getByText('Disabled', { exact: true }).waitFor();
    expect((await descriptions())[1]).toMatchObject({ disabled: true, disabled_notice: 'Pets are moving to v2' });
    await page.getByTestId(`description-${wsdl.id}`).locator('summary').click();
    await screenshot('client-services');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot('client-services-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });

    // The provider's WSDL now versions its SOAP 1.2 service v13: a refresh warns first.
    soap12Version = 'v13';
    const wsdlCard = page.getByTestId(`description-${wsdl.id}`);
    await wsdlCard.getByRole('button', { name: 'Refresh' }).click();
    await dialog().getByText('adding_services', { exact: true }).waitFor();
    expect(await dialog().getByRole('alert').innerText()).toMatch(/adding_services Services that will be added: forecast\.v13\s+deleting_services Services that will be deleted: forecast\.v12/);
    expect((await descriptions())[0].services.map((x: any) => x.full_service_code)).toContain('forecast.v12');
    await dialog().getByRole('button', { name: 'Continue anyway' }).click();
    await dialog().waitFor({ state: 'detached' });
    expect((await descriptions())[0].services.map((x: any) => x.full_service_code)).toEqual(['forecast.v1', 'observations.v2', 'ping', 'forecast.v13']);

    await wsdlCard.getByRole('button', { name: 'Delete' }).click();
    // Cancel keeps it; the confirmation's Delete removes it with its services and their rights.
    await dialog().getByRole('button', { name: 'Cancel' }).click();
    expect(await descriptions()).toHaveLength(3);
    await wsdlCard.getByRole('button', { name: 'Delete' }).click();
    await dialog().getByText(`${docs}/provider.wsdl is deleted with its 4 service(s)`).waitFor();
    await screenshot('client-services-delete');
    await dialog().getByRole('button', { name: 'Delete' }).click();
    await wsdlCard.waitFor({ state: 'detached' });
    expect((await descriptions()).map((d) => d.url)).toEqual([`${docs}/pets.yaml`, 'https://rest.example/api']);
    expect(await apiGet(`/clients/${e(CLIENT)}/service-clients/${e(CONSUMER)}/access-rights`)).toEqual([]);
    await logOut(page, origin);
  }, 120_000);

  it('the observer sees the services, rights and groups, and no control that changes them', async () => {
    await logIn(page, origin, 'olivia', PASSWORD, `/clients/${e(CLIENT)}/services`);
    const [openapi] = await descriptions();
    const card = page.getByTestId(`description-${openapi.id}`);
    await card.locator('summary').click();
    await card.getByRole('link', { name: 'pets', exact: true }).waitFor();
    const changes = /^(Add description|Enable|Disable|Refresh|Edit|Delete|Save|Add subjects|Add endpoint|Remove|Add services|Add subject|Add group|Add members|Delete group)\b/;
    expect(await page.getByRole('button', { name: changes }).count()).toBe(0);

    await card.getByRole('link', { name: 'pets', exact: true }).click();
    await page.getByRole('table', { name: /Endpoints of pets/ }).waitFor();
    expect(await page.getByLabel('Service URL').isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: changes }).count()).toBe(0);
    await page.getByRole('link', { name: 'Access rights of POST /pets/*/vaccinations' }).click();
    await page.getByRole('table', { name: 'Subjects that may call POST /pets/*/vaccinations' }).getByText(CONSUMER).waitFor();
    expect(await page.getByRole('button', { name: changes }).count()).toBe(0);

    await page.goto(tab('service-clients'));
    await page.getByRole('link', { name: 'LOCAL:security-server-owners (Security server owners)' }).click();
    await page.getByRole('table', { name: 'Services it may call' }).getByText('pets').waitFor();
    expect(await page.getByRole('button', { name: changes }).count()).toBe(0);
    await page.goto(`${tab('local-groups')}/${e(groupId)}`);
    await page.getByRole('table', { name: 'Members of partners' }).getByText(OTHER).waitFor();
    expect(await page.getByLabel('Description').isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: changes }).count()).toBe(0);
    await logOut(page, origin);
  }, 120_000);

  it('loaded nothing from outside the server and broke no rule of its Content-Security-Policy', () => {
    expectCleanRun(browser);
  });
});
