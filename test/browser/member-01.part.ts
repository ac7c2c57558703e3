/**
 * MEMBER_01 on ss3 of the local instance through the web interface, in chromium, as
 * test/e2e/member-registration-api.part.ts does it through the API: a security officer logs in and
 * is led to the initialisation wizard (anchor imported → owner COM 4444 and server code ss3 → token
 * PIN twice → summary → Submit; an unknown owner first, to see the warning and go back); logs out
 * of the token and in again with the PIN dialog; adds a signing and an authentication key with
 * their CSRs, downloaded through the browser (OpenSSL verifies the files); the test CA issues the
 * certificates (the out-of-band step, outside the browser); the page imports them, registers the
 * authentication certificate at ss3's address; the central server stand-in approves
 * (`xrd testpki approve`); the page shows it registered and activates it; ss3 then exchanges a
 * message with ss1; one more CSR for the key is made and deleted; an observer sees the page without
 * a control that changes; the officer unregisters the certificate. Two steps go through the API: the timestamping service (Settings → System
 * parameters is another page's) and the owner's connection type for the message exchange (the
 * client's page is another's). Screenshots of every step and dialog go to docs/ui/.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usersFile, UserStore } from '../../src/admin/users.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { adminApi } from '../support/admin-api.ts';
import { type Browser, expectCleanRun, logIn, logOut, openBrowser, STEP_MS } from '../support/browser.ts';
import { eventually } from '../support/eventually.ts';
import { getRandomThroughJoining } from '../support/joining.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';
import { openssl } from '../support/openssl.ts';

const run = promisify(execFile);
const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const PIN = 'ss3-Token-Pin-1';
const PASSWORD = 'officer password 1';
const dir = join(process.env.TMPDIR ?? '/tmp', `xrd-member01-browser-${process.pid}`);

let instance: LocalInstance;
let browser: Browser;
let page: Page;
let origin: string;

beforeAll(async () => {
  instance = await sharedLocalInstance();
  mkdirSync(dir, { recursive: true });
  // The admin API of ss3 reads its users from its data folder at each login.
  const users = new UserStore(usersFile(instance.joining.proxyDataDir));
  await users.add('officer', PASSWORD, ['XROAD_SECURITY_OFFICER', 'XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_REGISTRATION_OFFICER']);
  await users.add('observer', PASSWORD, ['XROAD_SECURESERVER_OBSERVER']);
  origin = new URL(instance.joining.adminUrl).origin;
  browser = await openBrowser(origin, dir);
  page = browser.page;
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

const api = (method: string, path: string, body?: unknown) => adminApi(instance, instance.joining)(method, path, body);
const shot = (name: string) => browser.screenshot(name);
const button = (name: string | RegExp) => page.getByRole('button', { name, exact: typeof name === 'string' });
const dialog = () => page.getByRole('dialog');

/** The CSR the wizard's Download button saves: its file name and bytes, checked by OpenSSL. */
async function downloadCsr(): Promise<{ name: string; pem: string }> {
  const [download] = await Promise.all([page.waitForEvent('download'), dialog().getByRole('button', { name: 'Download CSR' }).click()]);
  const file = join(dir, download.suggestedFilename());
  await download.saveAs(file);
  expect(openssl(['req', '-in', file, '-noout', '-verify'])).toBe('');
  return { name: download.suggestedFilename(), pem: readFileSync(file, 'utf8') };
}

/** The Add key wizard: label → usage → (signing) member → subject → Generate → Download. */
async function addKey(label: string, usage: 'Signing' | 'Authentication', screenshots: boolean): Promise<{ name: string; pem: string }> {
  await button('Add key').click();
  await dialog().getByLabel('Key label').fill(label);
  if (screenshots) await shot('keys-add-key');
  await dialog().getByRole('button', { name: 'Next' }).click();
  await dialog().getByRole('radio', { name: new RegExp(`^${usage}`) }).check();
  if (screenshots) await shot('keys-add-key-usage');
  await dialog().getByRole('button', { name: 'Next' }).click();
  if (usage === 'Signing') {
    expect(await dialog().getByLabel('Member the signing certificate is for').inputValue()).toBe(`${instance.pki.instance}/COM/4444`);
    if (screenshots) await shot('keys-add-key-member');
    await dialog().getByRole('button', { name: 'Next' }).click();
  }
  await dialog().getByLabel('Country code (C)').fill('FI');
  if (screenshots) await shot('keys-add-key-subject');
  await dialog().getByRole('button', { name: 'Generate CSR' }).click();
  await dialog().getByRole('button', { name: 'Download CSR' }).waitFor();
  if (screenshots) await shot('keys-add-key-done');
  const csr = await downloadCsr();
  await dialog().getByRole('button', { name: 'Done' }).click();
  await dialog().waitFor({ state: 'detached' });
  return csr;
}

/** The CA's certificate for a downloaded PEM CSR, written to a file for the page's file input. */
function issue(csr: string, usage: 'sign' | 'auth'): string {
  const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const file = join(dir, `${usage}.cer`);
  writeFileSync(file, instance.pki.issue(der, usage));
  return file;
}

const certRow = (subjectPart: string) => page.locator('tr.cert-row', { hasText: subjectPart });

describe('MEMBER_01 on ss3 in the browser', () => {
  it('initialises ss3 with the wizard, makes its keys and CSRs, imports and registers the certificates, activates the auth certificate, and ss3 exchanges a message with ss1', async () => {
    const inst = instance.pki.instance;
    // Any page leads to the wizard while the server is not initialised.
    await logIn(page, origin, 'officer', PASSWORD, '/initialisation');
    await page.goto(`${origin}/keys`);
    await page.waitForURL(`${origin}/initialisation`);
    await page.getByTestId('anchor-state').waitFor();
    expect(await page.getByTestId('anchor-state').innerText()).toMatch(/configuration anchor is imported/);
    await shot('initialisation-anchor');
    await button('Next').click();

    // An owner global configuration does not know: a warning, then back to fix the code.
    await page.getByLabel('Member class', { exact: true }).fill('COM');
    await page.getByLabel('Member code', { exact: true }).fill('9999');
    await page.getByLabel('Security server code', { exact: true }).fill('ss3');
    await button('Next').click();
    await page.getByLabel('PIN', { exact: true }).fill(PIN);
    await page.getByLabel('Confirm PIN').fill(`${PIN}x`);
    expect(await button('Next').isDisabled()).toBe(true);
    await page.getByLabel('Confirm PIN').fill(PIN);
    await button('Next').click();
    await button('Submit').click();
    await page.getByRole('alert').filter({ hasText: 'init_unregistered_member' }).waitFor();
    expect(await page.getByRole('alert').innerText()).toContain(`${inst}/COM/9999`);
    expect(await button('Continue anyway').isVisible()).toBe(true);
    await shot('initialisation-warnings');
    await button('Back').click();
    await button('Back').click();
    await page.getByLabel('Member code', { exact: true }).fill('4444');
    await shot('initialisation-owner');
    await button('Next').click();
    await page.getByLabel('PIN', { exact: true }).fill(PIN);
    await page.getByLabel('Confirm PIN').fill(PIN);
    await shot('initialisation-pin');
    await button('Next').click();
    await shot('initialisation-summary');
    await button('Submit').click();
    await page.getByRole('heading', { name: 'Initialised' }).waitFor({ timeout: 60_000 });
    expect(await page.getByRole('status').innerText()).toContain(`${inst}/COM/4444/ss3`);
    await shot('initialisation-done');
    expect((await api('GET', '/initialization/status')).json).toMatchObject({ serverId: `${inst}/COM/4444/ss3`, softwareTokenInitStatus: 'INITIALIZED' });

    // The timestamping service: Settings → System parameters is another page's; the API here.
    const approved = await api('GET', '/timestamping-services');
    expect((await api('POST', '/system/timestamping-services', approved.json[0])).status).toBe(201);

    // The token, logged in by the initialisation: out and in again with the PIN dialog.
    await button('Keys and certificates').click();
    await page.waitForURL(`${origin}/keys`);
    await expect.poll(() => page.getByTestId('token-login-state').innerText()).toBe('Logged in');
    await page.locator('section.token').getByRole('button', { name: 'Log out' }).click();
    await expect.poll(() => page.getByTestId('token-login-state').innerText()).toBe('Logged out');
    await page.locator('section.token').getByRole('button', { name: 'Log in' }).click();
    // The dialog takes the focus to its PIN field; Enter sends it.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('token-pin');
    await page.keyboard.type('wrong-pin');
    await page.keyboard.press('Enter');
    await dialog().getByRole('alert').waitFor();
    expect(await dialog().getByRole('alert').innerText()).toMatch(/^Pin/);
    expect(await dialog().getByLabel('PIN').inputValue()).toBe('');
    await dialog().getByLabel('PIN').fill(PIN);
    await shot('keys-token-login');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('token-login-state').innerText()).toBe('Logged in');

    // Keys and CSRs, downloaded through the browser.
    const sign = await addKey('sign 4444', 'Signing', true);
    expect(sign.name).toMatch(new RegExp(`^sign_csr_\\d{8}_member_${inst}_COM_4444\\.pem$`));
    const auth = await addKey('auth ss3', 'Authentication', false);
    expect(auth.name).toMatch(new RegExp(`^auth_csr_\\d{8}_securityserver_${inst}_COM_4444_ss3\\.pem$`));
    expect(openssl(['req', '-noout', '-subject', '-nameopt', 'RFC2253'], auth.pem)).toContain('C=FI');
    await expect.poll(() => page.locator('tr.csr-row').count()).toBe(2);
    // A CSR downloaded again from the key's list is the same request.
    const [again] = await Promise.all([page.waitForEvent('download'), page.locator('tr.csr-row').first().getByRole('button', { name: 'Download CSR' }).click()]);
    expect(readFileSync(await again.path(), 'utf8')).toBe(sign.pem);
    await shot('keys-csrs');

    // The out-of-band step: the CA issues the certificates; the page imports them.
    for (const [csr, usage] of [[sign.pem, 'sign'], [auth.pem, 'auth']] as const) {
      await page.getByLabel('Import certificate').setInputFiles(issue(csr, usage));
      await page.getByRole('status').filter({ hasText: 'Certificate imported' }).waitFor();
    }
    await expect.poll(() => page.locator('tr.csr-row').count()).toBe(0);
    const signRow = certRow('4444');
    const authRow = certRow('ss3');
    expect(await signRow.getByTestId('cert-state').innerText()).toBe('Registered');
    expect(await authRow.getByTestId('cert-state').innerText()).toBe('Saved');

    // Registration request at ss3's address; the central server's administrator approves it.
    await authRow.getByRole('button', { name: 'Register' }).click();
    await dialog().getByLabel(/Security server address/).fill(instance.joining.address);
    await shot('keys-register');
    await dialog().getByRole('button', { name: 'Register' }).click();
    await dialog().waitFor({ state: 'detached', timeout: 60_000 });
    // The dialog closes before the page has read the keys again: the row shows the new state once it has.
    await expect.poll(() => authRow.getByTestId('cert-state').innerText(), { timeout: 15_000 }).toBe('Registration in progress');
    const request = instance.pki.managementRequests().find((r) => r.status === 'SUBMITTED' && r.serverId === `${inst}/COM/4444/ss3`);
    expect(request).toMatchObject({ address: instance.joining.address });
    await run(process.execPath, [XRD, 'testpki', 'approve', request!.id, '--dir', instance.pki.dir]);

    // ss3 sees the next global configuration: the certificate is registered; activated in the page.
    await eventually(
      async () => {
        await page.reload();
        await authRow.waitFor({ timeout: STEP_MS });
        return (await authRow.getByTestId('cert-state').innerText()) === 'Registered' ? true : undefined;
      },
      30_000,
      'the auth certificate registered',
    );
    expect(await authRow.getByTestId('cert-active').innerText()).toBe('Disabled');
    await authRow.getByRole('button', { name: 'Activate' }).click();
    await expect.poll(() => authRow.getByTestId('cert-active').innerText()).toBe('Active');
    await eventually(
      async () => {
        await page.reload();
        await signRow.waitFor({ timeout: STEP_MS });
        return (await signRow.getByTestId('ocsp').innerText()) === 'Good' && (await authRow.getByTestId('ocsp').innerText()) === 'Good' ? true : undefined;
      },
      30_000,
      'OCSP good for both certificates',
    );
    await shot('keys');

    // One more CSR for a key already on the token (usage fixed by the key), then deleted again.
    await page.locator('tr.key-row', { hasText: 'auth ss3' }).getByRole('button', { name: 'Generate CSR' }).click();
    expect(await dialog().getByRole('radio', { name: /^Authentication/ }).isChecked()).toBe(true);
    expect(await dialog().getByRole('radio', { name: /^Signing/ }).isDisabled()).toBe(true);
    await shot('keys-generate-csr');
    await dialog().getByRole('button', { name: 'Next' }).click();
    await dialog().getByRole('button', { name: 'Generate CSR' }).click();
    const extra = await downloadCsr();
    expect(extra.name).toMatch(/^auth_csr_/);
    await dialog().getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => page.locator('tr.csr-row').count()).toBe(1);
    await page.locator('tr.csr-row').getByRole('button', { name: 'Delete CSR' }).click();
    await shot('keys-delete-csr');
    await dialog().getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.locator('tr.csr-row').count()).toBe(0);

    await authRow.getByRole('button', { name: 'Delete' }).click();
    await dialog().getByRole('button', { name: 'Cancel' }).waitFor();
    await shot('keys-delete-confirm');
    await page.keyboard.press('Escape');
    await dialog().waitFor({ state: 'detached' });
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('keys-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });

    // A message exchange with the new certificate, as the API walk: the owner calls ss1's getRandom
    // (its connection type set through the API: the client's page is another's).
    expect((await api('PATCH', `/clients/${inst}:COM:4444`, { connection_type: 'HTTP' })).json).toMatchObject({ connectionType: 'HTTP', registered: true });
    await instance.startProxy(instance.joining);
    expect(await getRandomThroughJoining(instance, `member01-browser-${Date.now()}`)).toMatch(/<xrd:client[^>]*objectType="MEMBER"/);

    // An observer sees the tokens, keys and certificates, and no control that changes them.
    await logOut(page, origin);
    await logIn(page, origin, 'observer', PASSWORD, '/keys');
    await expect.poll(() => page.locator('tr.cert-row').count()).toBe(2);
    expect(await page.locator('main').getByRole('button').count()).toBe(0);
    expect(await page.getByLabel('Import certificate').count()).toBe(0);
    await shot('keys-observer');
    await logOut(page, origin);

    // pr-mserv authCertDeletion from the page: confirmed, sent through ss3's client proxy.
    await logIn(page, origin, 'officer', PASSWORD, '/keys');
    await authRow.getByRole('button', { name: 'Unregister' }).click();
    await dialog().getByRole('button', { name: 'Unregister' }).click();
    await dialog().waitFor({ state: 'detached', timeout: 60_000 });
    await expect.poll(() => authRow.getByTestId('cert-state').innerText()).toBe('Deletion in progress');
  }, 300_000);

  it('loaded nothing from outside the server and broke no rule of its Content-Security-Policy', () => {
    expectCleanRun(browser);
  });
});
