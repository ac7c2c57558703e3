/**
 * Seed 003 ("connecting an information system") walked in the web interface of the local instance
 * (real signers, proxies, central server stand-in), as its administrator would: on ss2, the client
 * subsystem's server, log in, open the subsystem LOCAL/COM/2222/CLIENT, set its connection type to
 * HTTPS, add the certificate made with the seed's `openssl` command, export the security server's
 * internal certificate; then the seed's `curl` call — with the exported cert.pem as --cacert instead
 * of the seed's -k, which proves the export is the certificate the client proxy shows — is answered,
 * and the call without the client certificate gets the seed's fault (as test/e2e/seed-003.part.ts).
 * Before the walk the subsystem is put back to HTTP without certificates through the admin API, so
 * that what makes the calls work is what the walk did.
 *
 * The same file does the other client actions in the browser against the same real servers: the add
 * dialog's warning and "Continue anyway", a refused Register with its code, a subsystem registered
 * at once, unregistered and deleted on its page, a subsystem disabled and enabled again, a member
 * added, approved and made owner (the request sent); and it checks the roles: an observer sees the clients and a client's tabs without a control to
 * change them, and a change forced with fetch is refused by the API; a request without the session's
 * CSRF token is refused. Screenshots go to docs/ui/ (docs/admin-ui.md "Clients").
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usersFile, UserStore } from '../../src/admin/users.ts';
import { getRandomRequest } from '../../src/dev/localinstance/first-calls.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { adminApi } from '../support/admin-api.ts';
import { type Browser, expectCleanRun, logIn, logOut, openBrowser } from '../support/browser.ts';
import { eventually } from '../support/eventually.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';
import { openssl } from '../support/openssl.ts';

const run = promisify(execFile);
const PASSWORD = 'seed three walk';
const SUBSYSTEM = 'LOCAL/COM/2222/CLIENT';
const SUBSYSTEM_PATH = `/clients/${encodeURIComponent('LOCAL:COM:2222:CLIENT')}`;
const dir = join(process.env.TMPDIR ?? '/tmp', `xrd-browser-seed003-${process.pid}`);

let instance: LocalInstance;
let browser: Browser;
let page: Page;
let origin: string;
const ss2 = () => adminApi(instance, instance.consumer);

beforeAll(async () => {
  instance = await sharedLocalInstance();
  const users = new UserStore(usersFile(instance.consumer.proxyDataDir));
  await users.add('observer', PASSWORD, ['XROAD_SECURESERVER_OBSERVER']);
  // The subsystem as before seed 003: HTTP, no information system's certificate.
  expect((await ss2()('PATCH', '/clients/LOCAL:COM:2222:CLIENT', { connection_type: 'HTTP' })).status).toBe(200);
  for (const cert of (await ss2()('GET', '/clients/LOCAL:COM:2222:CLIENT/tls-certificates')).json) expect((await ss2()('DELETE', `/clients/LOCAL:COM:2222:CLIENT/tls-certificates/${cert.hash}`)).status).toBe(204);
  origin = new URL(instance.consumer.adminUrl).origin;
  mkdirSync(dir, { recursive: true });
  browser = await openBrowser(origin, dir);
  page = browser.page;
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

const screenshot = (name: string): Promise<Buffer> => browser.screenshot(name);
const fault = (xml: string) => `${/<faultcode>([^<]*)<\/faultcode>/.exec(xml)?.[1]}: ${/<faultstring>([^<]*)<\/faultstring>/.exec(xml)?.[1]?.replaceAll('&apos;', "'")}`;
const DATA = /<[\w:]*data>\d{1,3}<\/[\w:]*data>/;

/** The seed's curl call from the information system's folder, trusting `cacert` instead of -k; with the client certificate unless `withCert` is false. */
async function seedCurl(isDir: string, id: string, withCert = true): Promise<string> {
  writeFileSync(join(isDir, 'getRandom.xml'), getRandomRequest(instance, '2222/CLIENT', id));
  const cert = withCert ? ['-E', './clientcert.pem', '--key', './clientprivatekey.pem'] : [];
  const { stdout } = await run('curl', ['-sS', ...cert, '--cacert', './cert.pem', '-d', '@getRandom.xml', '--header', 'Content-Type: text/xml', '-X', 'POST', `${instance.consumer.httpsUrl}/`], { cwd: isDir, timeout: 60_000 });
  return stdout;
}

/** The rows of the table named `caption`, each as its cells' texts. */
async function rows(caption: string): Promise<string[][]> {
  const table = page.getByRole('table', { name: caption });
  await table.waitFor();
  return (await table.locator('tbody tr').allInnerTexts()).map((row) => row.split('\t').map((cell) => cell.trim()));
}

describe('seed 003 in the web interface of ss2', () => {
  let isDir: string;

  it("log in, open the subsystem, set HTTPS, add the seed's certificate, export the internal certificate: the seed's curl is answered (verifying the exported certificate), without a certificate it gets the seed's fault", async () => {
    // The local instance's own administrator, as `npm start` prints it.
    await logIn(page, origin, instance.adminLogin.username, instance.adminLogin.password);
    const clients = await rows("The security server's owner, members and subsystems");
    expect(clients.map((r) => r.slice(0, 4))).toEqual([
      ['LOCAL/COM/2222/CLIENT', 'Client Oy', 'REGISTERED', 'HTTP'],
      ['LOCAL/COM/3333/OTHER', 'Other Oy', 'REGISTERED', 'HTTPS'],
      ['LOCAL/COM/2222 owner', 'Client Oy', 'REGISTERED', 'HTTPS'],
    ]);
    await screenshot('clients');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot('clients-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });

    // Open the subsystem: its details, and what a registration officer may do with a registered subsystem.
    await page.getByRole('link', { name: SUBSYSTEM, exact: true }).click();
    await page.waitForURL(`${origin}${SUBSYSTEM_PATH}`);
    await expect.poll(() => page.getByTestId('client-status').innerText()).toBe('REGISTERED');
    expect(await page.getByTestId('client-kind').innerText()).toBe('Subsystem');
    expect(await page.getByRole('group', { name: 'Client actions' }).getByRole('button').allInnerTexts()).toEqual(['Unregister', 'Disable']);
    await screenshot('client-details');

    // Internal servers: HTTPS.
    await page.getByRole('link', { name: 'Internal servers' }).click();
    await page.waitForURL(`${origin}${SUBSYSTEM_PATH}/internal-servers`);
    const connectionType = page.getByLabel('How information systems connect to this server as this client');
    await expect.poll(() => connectionType.inputValue()).toBe('HTTP');
    await connectionType.selectOption('HTTPS');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Connection type saved: HTTPS.').waitFor();

    // The information system's key and certificate, by the seed's command; added from the file.
    isDir = join(dir, 'information-system');
    mkdirSync(isDir, { recursive: true });
    await run('openssl', ['req', '-new', '-x509', '-days', '365', '-nodes', '-out', 'clientcert.pem', '-keyout', 'clientprivatekey.pem', '-subj', '/CN=seed003-browser'], { cwd: isDir });
    const fingerprint = openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', join(isDir, 'clientcert.pem')]).trim().split('=')[1]!;
    // The private key instead of the certificate: refused with its code, nothing added.
    await page.getByLabel('Add a certificate (PEM or DER file)').setInputFiles(join(isDir, 'clientprivatekey.pem'));
    await expect.poll(() => page.getByRole('alert').innerText()).toMatch(/^IncorrectCertificate /);
    await page.getByLabel('Add a certificate (PEM or DER file)').setInputFiles(join(isDir, 'clientcert.pem'));
    await page.getByText(`Certificate added: ${fingerprint}.`).waitFor();
    expect(await rows('Certificates the information systems show when they connect as this client')).toEqual([[fingerprint, 'CN=seed003-browser', expect.any(String), 'Remove']]);
    // Remove asks first; Escape (the keyboard's way out of the dialog) keeps the certificate.
    await page.getByRole('button', { name: `Remove certificate ${fingerprint}` }).click();
    const removal = page.getByRole('dialog', { name: 'Remove the certificate?' });
    await removal.waitFor();
    await page.keyboard.press('Escape');
    await removal.waitFor({ state: 'hidden' });
    expect((await rows('Certificates the information systems show when they connect as this client')).map((r) => r[0])).toEqual([fingerprint]);

    // The security server's certificate: its hash as the API gives it, and Export's certs.tar.gz.
    const internal = (await ss2()('GET', '/system/certificate')).json;
    expect(await page.getByTestId('server-certificate-hash').innerText()).toBe(internal.hash.match(/../g).join(':'));
    await screenshot('client-internal-servers');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot('client-internal-servers-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
    expect(download.suggestedFilename()).toBe('certs.tar.gz');
    await download.saveAs(join(isDir, 'certs.tar.gz'));
    await run('tar', ['xzf', 'certs.tar.gz', 'cert.pem'], { cwd: isDir });

    // The seed's calls, the client proxy's certificate checked against the exported one.
    const answer = await eventually(async () => {
      const body = await seedCurl(isDir, `seed003-browser-${Date.now()}`);
      return DATA.test(body) ? body : undefined;
    }, 30_000, 'getRandom answered for CLIENT with the added certificate');
    expect(answer).toContain('<id:subsystemCode>CLIENT</id:subsystemCode>');
    // The proxy reads the HTTPS switch within a second: a call before that is still answered.
    const refused = await eventually(async () => {
      const f = fault(await seedCurl(isDir, `seed003-browser-nocert-${Date.now()}`, false));
      return f.startsWith('undefined') ? undefined : f;
    }, 30_000, 'the call without a certificate refused');
    expect(refused).toBe('Server.ClientProxy.SslAuthenticationFailed: Client (SUBSYSTEM:LOCAL/COM/2222/CLIENT) specifies HTTPS but did not supply TLS certificate');
    expect(readFileSync(join(isDir, 'cert.pem'), 'utf8')).toContain('-----BEGIN CERTIFICATE-----');
  }, 180_000);

  it('adds a member unknown to global configuration after its warning ("Continue anyway") and deletes it; adds a subsystem registered at once, which the central server receives, then unregisters and deletes it', async () => {
    await page.goto(`${origin}/clients`);
    await page.getByRole('button', { name: 'Add client' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a client' });
    // The instance's member classes, from GET /member-classes?current_instance=true.
    expect(await dialog.getByLabel('Member class').locator('option').allInnerTexts()).toEqual(['Choose a member class', 'COM']);
    await dialog.getByLabel('Member class').selectOption('COM');
    await dialog.getByLabel('Member code').fill('9999');
    await dialog.getByLabel('Send the registration request now').uncheck();
    await screenshot('clients-add');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await expect.poll(() => dialog.getByRole('alert').getByRole('listitem').allInnerTexts()).toEqual(['unregistered_member LOCAL/COM/9999']);
    await screenshot('clients-add-warnings');
    await dialog.getByRole('button', { name: 'Continue anyway' }).click();
    await page.getByText('Added LOCAL/COM/9999.').waitFor();
    expect((await rows("The security server's owner, members and subsystems")).find((r) => r[0] === 'LOCAL/COM/9999')?.slice(2, 4)).toEqual(['SAVED', 'HTTPS']);

    // Register from the list: global configuration knows no member 9999, so the registration is
    // refused, and the dialog keeps the API's coded refusal.
    await page.getByRole('button', { name: 'Register LOCAL/COM/9999' }).click();
    const registration = page.getByRole('dialog', { name: 'Register the client?' });
    await registration.getByRole('button', { name: 'Register' }).click();
    await expect.poll(() => registration.getByRole('alert').innerText()).toMatch(/^UnknownMember .*LOCAL\/COM\/9999/);
    await registration.getByRole('button', { name: 'Cancel' }).click();

    await page.getByRole('link', { name: 'LOCAL/COM/9999', exact: true }).click();
    const actions = page.getByRole('group', { name: 'Client actions' });
    await expect.poll(() => actions.getByRole('button').allInnerTexts()).toEqual(['Register', 'Delete']);
    await actions.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog', { name: 'Delete the client?' }).waitFor();
    await screenshot('client-delete-confirm');
    await page.getByRole('dialog', { name: 'Delete the client?' }).getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(`${origin}/clients`);
    await expect.poll(async () => (await rows("The security server's owner, members and subsystems")).map((r) => r[0])).not.toContain('LOCAL/COM/9999');

    // A subsystem of the owner member, registered as it is added.
    await page.getByRole('button', { name: 'Add subsystem to LOCAL/COM/2222' }).click();
    const subsystem = page.getByRole('dialog', { name: 'Add a subsystem to COM/2222' });
    await subsystem.getByLabel('Subsystem code').fill('UISUB');
    await subsystem.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByText('Added LOCAL/COM/2222/UISUB and sent its registration request.').waitFor();
    const pki = LocalPki.open(instance.pki.dir);
    expect(pki.managementRequests().filter((r) => r.type === 'clientReg' && r.client === 'LOCAL/COM/2222/UISUB').map((r) => r.status)).toEqual(['SUBMITTED']);

    await page.getByRole('link', { name: 'LOCAL/COM/2222/UISUB', exact: true }).click();
    await expect.poll(() => page.getByTestId('client-status').innerText()).toBe('REGISTRATION_IN_PROGRESS');
    await expect.poll(() => actions.getByRole('button').allInnerTexts()).toEqual(['Unregister']);
    await actions.getByRole('button', { name: 'Unregister' }).click();
    await page.getByRole('dialog', { name: 'Unregister the client?' }).getByRole('button', { name: 'Unregister' }).click();
    await expect.poll(() => page.getByTestId('client-status').innerText()).toBe('DELETION_IN_PROGRESS');
    expect(pki.managementRequests().some((r) => r.type === 'clientDeletion' && r.client === 'LOCAL/COM/2222/UISUB')).toBe(true);
    await expect.poll(() => actions.getByRole('button').allInnerTexts()).toEqual(['Delete']);
    await actions.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog', { name: 'Delete the client?' }).getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(`${origin}/clients`);
    expect((await ss2()('GET', '/clients/LOCAL:COM:2222:UISUB')).json.error.code).toBe('ClientNotFound');
  }, 120_000);

  it("disables the subsystem LOCAL/COM/3333/OTHER on its page and enables it again, each as the central server's configuration then shows it", async () => {
    await page.goto(`${origin}/clients/${encodeURIComponent('LOCAL:COM:3333:OTHER')}`);
    const actions = page.getByRole('group', { name: 'Client actions' });
    const status = page.getByTestId('client-status');
    /** The state once global configuration has caught up (the page loads it when opened). */
    const settled = (state: string) => eventually(async () => {
      await page.reload();
      return (await status.innerText()) === state ? state : undefined;
    }, 60_000, `OTHER ${state}`);

    await expect.poll(() => actions.getByRole('button').allInnerTexts()).toEqual(['Unregister', 'Disable']);
    await actions.getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('dialog', { name: 'Disable the subsystem?' }).getByRole('button', { name: 'Disable' }).click();
    await page.getByText('Disable request sent. The client is DISABLING_IN_PROGRESS.').waitFor();
    await settled('DISABLED');
    await expect.poll(() => actions.getByRole('button').allInnerTexts()).toEqual(['Unregister', 'Enable']);
    await actions.getByRole('button', { name: 'Enable' }).click();
    await page.getByRole('dialog', { name: 'Enable the subsystem?' }).getByRole('button', { name: 'Enable' }).click();
    await page.getByText('Enable request sent. The client is ENABLING_IN_PROGRESS.').waitFor();
    await settled('REGISTERED');
  }, 150_000);

  it('adds the member COM/3333 registered at once; once the central server approves it, Make owner sends the owner change request signed by it', async () => {
    await page.goto(`${origin}/clients`);
    await page.getByRole('button', { name: 'Add client' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a client' });
    await dialog.getByLabel('Member class').selectOption('COM');
    await dialog.getByLabel('Member code').fill('3333');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByText('Added LOCAL/COM/3333 and sent its registration request.').waitFor();
    const pki = LocalPki.open(instance.pki.dir);
    pki.approveManagementRequest(pki.managementRequests().find((r) => r.type === 'clientReg' && r.client === 'LOCAL/COM/3333' && r.status === 'SUBMITTED')!.id);

    await page.getByRole('link', { name: 'LOCAL/COM/3333', exact: true }).click();
    const status = page.getByTestId('client-status');
    await eventually(async () => {
      await page.reload();
      return (await status.innerText()) === 'REGISTERED' ? true : undefined;
    }, 60_000, 'COM/3333 registered');
    expect(await page.getByTestId('client-kind').innerText()).toBe('Member');
    const actions = page.getByRole('group', { name: 'Client actions' });
    await expect.poll(() => actions.getByRole('button').allInnerTexts()).toEqual(['Unregister', 'Make owner']);
    await actions.getByRole('button', { name: 'Make owner' }).click();
    await page.getByRole('dialog', { name: "Make this member the server's owner?" }).getByRole('button', { name: 'Make owner' }).click();
    await page.getByText('Owner change request sent. The client is REGISTERED.').waitFor();
    expect(pki.managementRequests().filter((r) => r.type === 'ownerChange' && r.client === 'LOCAL/COM/3333').map((r) => r.status)).toEqual(['SUBMITTED']);
  }, 150_000);

  it('a request the page did not make (session cookie, no CSRF token) is refused: CsrfTokenInvalid', async () => {
    const forged = await page.evaluate(async (path) => {
      const answer = await fetch(`/api/v1${path}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ connection_type: 'HTTP' }) });
      return [answer.status, ((await answer.json()) as { error: { code: string } }).error.code];
    }, '/clients/LOCAL:COM:2222:CLIENT');
    expect(forged).toEqual([403, 'CsrfTokenInvalid']);
    expect((await ss2()('GET', '/clients/LOCAL:COM:2222:CLIENT')).json.connectionType).toBe('HTTPS');
  });

  it('an observer sees the clients and the subsystem\'s tabs with no control to change them; a change forced with fetch and the CSRF token is refused: PermissionDenied', async () => {
    await logOut(page, origin);
    await logIn(page, origin, 'observer', PASSWORD);
    expect((await rows("The security server's owner, members and subsystems")).map((r) => r[0])).toContain(SUBSYSTEM);
    const changes = () => page.getByRole('button', { name: /^(Add|Register|Unregister|Disable|Enable|Make owner|Delete|Remove|Save|Export)/ }).count();
    expect(await changes()).toBe(0);

    await page.goto(`${origin}${SUBSYSTEM_PATH}`);
    await expect.poll(() => page.getByTestId('client-status').innerText()).toBe('REGISTERED');
    expect(await changes()).toBe(0);

    await page.getByRole('link', { name: 'Internal servers' }).click();
    await page.getByRole('table', { name: 'Certificates the information systems show when they connect as this client' }).waitFor();
    await page.getByTestId('server-certificate-hash').waitFor();
    expect(await changes()).toBe(0);
    expect(await page.getByLabel('How information systems connect to this server as this client').isDisabled()).toBe(true);
    expect(await page.getByLabel('Add a certificate (PEM or DER file)').count()).toBe(0);

    const forced = await page.evaluate(async (path) => {
      const { csrf_token: token } = (await (await fetch('/api/v1/user')).json()) as { csrf_token: string };
      const answer = await fetch(`/api/v1${path}`, { method: 'PATCH', headers: { 'content-type': 'application/json', 'x-xsrf-token': token }, body: JSON.stringify({ connection_type: 'HTTP' }) });
      return [answer.status, ((await answer.json()) as { error: { code: string } }).error.code];
    }, '/clients/LOCAL:COM:2222:CLIENT');
    expect(forced).toEqual([403, 'PermissionDenied']);
    expect((await ss2()('GET', '/clients/LOCAL:COM:2222:CLIENT')).json.connectionType).toBe('HTTPS');
  }, 60_000);

  it('loaded nothing from outside the server and broke no rule of its Content-Security-Policy', () => {
    expectCleanRun(browser);
  });
});
