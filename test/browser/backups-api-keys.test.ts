/**
 * Settings → Backup and restore and Settings → API keys (docs/admin-ui.md) in chromium, against the
 * admin API in this process over HTTPS on loopback with real data folders (the signer's key
 * configuration, the server configuration's store; no signer runs, none is needed): a system
 * administrator backs up, downloads the archive (the same bytes as the server's file), uploads it
 * under another name and once more over it after the warning, restores with the confirmation and
 * sees the server configuration as it was, deletes; creates an API key (shown once), which a
 * program then uses, changes its roles, revokes it (401 afterwards). An observer sees the backups
 * and no control. Screenshots go to docs/ui/.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, apiKeysFile } from '../../src/serverconf/api-keys.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { UserStore } from '../../src/admin/users.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { addClient } from '../../src/serverconf/changes.ts';
import type { ServerConf } from '../../src/serverconf/model.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';
import { KeyconfStore } from '../../src/signer/keyconf-store.ts';
import { type Browser, expectCleanRun, logIn, logOut } from '../support/browser.ts';
import { startUiServer, type UiServer } from '../support/ui-server.ts';

const PASSWORD = 'correct horse battery';

const dir = mkdtempSync(join(tmpdir(), 'xrd-browser-backups-'));
const proxyDir = join(dir, 'proxy');
const signerDir = join(dir, 'signer');
const backupsDir = join(proxyDir, 'backups');
let ui: UiServer;
let origin: string;
let ca: string;
let browser: Browser;
let page: Page;

/** A program calling the API with a key, as automation would (Node's https, the server's certificate trusted). */
function callWithKey(key: string, path: string): Promise<{ status: number; code?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${ui.url}${path}`, { ca, headers: { authorization: `X-Road-ApiKey token=${key}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const code = res.statusCode! >= 400 ? (JSON.parse(body) as { error: { code: string } }).error.code : undefined;
        resolve({ status: res.statusCode!, code, body });
      });
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

beforeAll(async () => {
  mkdirSync(proxyDir, { recursive: true });
  mkdirSync(signerDir, { recursive: true });
  // What a signer leaves in its folder: the key configuration and its audit log.
  const keyconf = new KeyconfStore(join(signerDir, 'keyconf.sqlite'));
  keyconf.setTokenFriendlyName('0', 'softToken-0');
  keyconf.close();
  writeFileSync(join(signerDir, 'audit.log'), '{"event":"initToken"}\n');
  const empty: ServerConf = { serverId: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', serverCode: 'ss1' }, clients: [], timestampingServices: [] };
  await changeServerConfIn(proxyDir, { kind: 'system', name: 'test' }, 'SEED', () => addClient(empty, parseClientId('LOCAL/GOV/1111'), { connectionType: 'HTTPS', registered: true }));
  const users = new UserStore(join(proxyDir, 'admin', 'users.json'));
  await users.add('alice', PASSWORD, ['XROAD_SYSTEM_ADMINISTRATOR']);
  await users.add('bob', PASSWORD, ['XROAD_SECURESERVER_OBSERVER']);
  // A key made with `xrd admin api-key create --name`: listed with its name.
  new ApiKeyStore(apiKeysFile(proxyDir)).create(['XROAD_SERVICE_ADMINISTRATOR'], 'ci-deploy');
  // Backups read the signer's folder; nothing here calls the signer (its socket is never connected) or global configuration.
  const admin = new ServerAdmin({ proxyDataDir: proxyDir, signerDataDir: signerDir, signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  ui = await startUiServer({ workDir: dir, proxyDataDir: proxyDir, admin, users });
  ({ origin, browser, page } = ui);
  ca = ui.ca;
}, 90_000);

afterAll(async () => {
  await ui?.close();
  rmSync(dir, { recursive: true, force: true });
});

const screenshot = (name: string): Promise<Buffer> => browser.screenshot(name);
const status = () => page.locator('p.done[role=status]');
const table = () => page.getByRole('table', { name: "Backups in the server's backups folder, newest first" });
const names = async () => (await table().locator('tbody th').allInnerTexts()).map((n) => n.trim());

describe('Settings → Backup and restore, and API keys, in chromium', () => {
  let name: string;

  it('alice backs up, downloads the same bytes the server keeps, uploads a copy (and over it after the warning), restores with the confirmation and sees the configuration as it was, deletes', async () => {
    await logIn(page, origin, 'alice', PASSWORD, '/settings/backups');
    await expect.poll(() => page.title()).toBe('Backup and restore – Security server administration');
    await page.getByText('No backups yet.').waitFor();

    await page.getByRole('button', { name: 'Back up configuration' }).click();
    await expect.poll(() => status().innerText()).toMatch(/^Backup xrd-backup-.*\.tar\.gz created\.$/);
    [name] = await names();
    expect(name).toMatch(/^xrd-backup-.*\.tar\.gz$/);
    const row = table().locator('tbody tr', { hasText: name });
    expect(await row.locator('td[data-label=Verified]').innerText()).toBe('Verified');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: `Download ${name}` }).click()]);
    expect(download.suggestedFilename()).toBe(name);
    const downloaded = readFileSync((await download.path())!);
    expect(downloaded.equals(readFileSync(join(backupsDir, name)))).toBe(true);

    const upload = async () => {
      await page.getByLabel('Upload a backup (.tar.gz)').setInputFiles({ name: 'uploaded-copy.tar.gz', mimeType: 'application/gzip', buffer: downloaded });
      await page.getByRole('button', { name: 'Upload', exact: true }).click();
    };
    await upload();
    await expect.poll(() => status().innerText()).toBe('Backup uploaded-copy.tar.gz uploaded.');
    expect((await names()).sort()).toEqual([name, 'uploaded-copy.tar.gz'].sort());
    await upload();
    const warning = page.getByRole('group', { name: 'Name in use' });
    await warning.waitFor();
    expect(await page.getByRole('alert').innerText()).toMatch(/^WarningsDetected /);
    await warning.getByRole('button', { name: 'Replace it' }).click();
    await expect.poll(() => status().innerText()).toBe('Backup uploaded-copy.tar.gz uploaded, replacing the one of that name.');
    expect(readFileSync(join(backupsDir, 'uploaded-copy.tar.gz')).equals(downloaded)).toBe(true);
    await screenshot('settings-backups');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot('settings-backups-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });

    // A client added since the backup: the restore takes it away again.
    await changeServerConfIn(proxyDir, { kind: 'system', name: 'test' }, 'ADD', (conf) => addClient(conf!, parseClientId('LOCAL/COM/2222/SINCE'), {}));
    await page.getByRole('button', { name: `Restore ${name}` }).click();
    const dialog = page.getByRole('dialog', { name: `Restore ${name}?` });
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain('the server configuration: clients');
    expect(await dialog.innerText()).toContain('xrd backup restore');
    await screenshot('settings-backups-restore');
    // The focus starts on Cancel, not on the destructive button; Escape cancels; nothing is restored.
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Cancel');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: `Restore ${name}` }).click();
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await expect.poll(() => status().innerText()).toBe(`Backup ${name} restored: 1 part replaced.`);
    expect(await page.getByRole('region', { name: /^Restored from the backup of / }).innerText()).toContain('proxy/serverconf.json: replaced');

    // The key configuration changed since (a token renamed): refused whole, the code and the way out shown.
    const keyconf = new KeyconfStore(join(signerDir, 'keyconf.sqlite'));
    keyconf.setTokenFriendlyName('0', 'renamed since');
    keyconf.close();
    await page.getByRole('button', { name: `Restore ${name}` }).click();
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await expect.poll(() => page.getByRole('alert').innerText()).toMatch(/^BackupNeedsStoppedSigner Backup .* signer\/keyconf\.sqlite in the backup differs .*xrd backup restore/);
    await dialog.waitFor({ state: 'hidden' });

    await page.getByRole('link', { name: 'Clients' }).click();
    const clients = page.getByRole('table', { name: "The security server's owner, members and subsystems" });
    await clients.waitFor();
    expect((await clients.locator('tbody th a').allInnerTexts()).map((c) => c.trim())).toEqual(['LOCAL/GOV/1111']);

    await page.goto(`${origin}/settings/backups`);
    await table().waitFor();
    await page.getByRole('button', { name: 'Delete uploaded-copy.tar.gz' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete uploaded-copy.tar.gz?' });
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => status().innerText()).toBe('Backup uploaded-copy.tar.gz deleted.');
    expect(await names()).toEqual([name]);
    expect(existsSync(join(backupsDir, 'uploaded-copy.tar.gz'))).toBe(false);
  }, 180_000);

  it('alice creates an API key, shown once; a program uses it; its roles change; revoked, it gets 401', async () => {
    await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'API keys' }).click();
    await page.waitForURL(`${origin}/settings/api-keys`);
    const create = page.getByRole('button', { name: 'Create API key' });
    expect(await create.isDisabled()).toBe(true);
    await page.getByRole('group', { name: 'Roles of a new API key' }).getByLabel('Security server observer').check();
    await create.click();
    const created = page.getByRole('region', { name: /^API key \w+ created$/ });
    await created.waitFor();
    expect(await created.innerText()).toContain('Copy the key now: it is not shown again.');
    const key = await created.getByLabel('API key').inputValue();
    const id = /^API key (\w+) created$/.exec(await created.getByRole('heading').innerText())![1]!;
    await created.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => created.getByRole('status').innerText()).toMatch(/^(Copied to the clipboard\.|The browser did not allow copying: select the key and copy it\.)$/);
    await screenshot('settings-api-key-created');

    // The program: an observer's key reads the backups, may not download one nor manage keys.
    expect((await callWithKey(key, '/backups')).status).toBe(200);
    expect(await callWithKey(key, `/backups/${name}/download`)).toMatchObject({ status: 403, code: 'PermissionDenied' });
    // An observer may read the keys in a login session (view_api_keys), never with a key.
    expect(await callWithKey(key, '/api-keys')).toMatchObject({ status: 403, code: 'SessionRequired' });

    await created.getByRole('button', { name: 'Done, I have copied it' }).click();
    await created.waitFor({ state: 'detached' });
    const keys = page.getByRole('table', { name: 'API keys of the admin API' });
    const row = keys.locator('tbody tr', { hasText: id });
    expect(await row.locator('td[data-label=Roles]').innerText()).toBe('Security server observer');
    expect(await page.content()).not.toContain(key);

    await page.getByRole('button', { name: `Edit the roles of API key ${id}` }).click();
    const edit = page.getByRole('dialog', { name: `Roles of API key ${id}` });
    await edit.getByLabel('System administrator').check();
    await edit.getByRole('button', { name: 'Save roles' }).click();
    await expect.poll(() => status().innerText()).toBe(`Roles of API key ${id} saved.`);
    expect(await row.locator('td[data-label=Roles]').innerText()).toBe('System administrator, Security server observer');
    expect((await callWithKey(key, `/backups/${name}/download`)).status).toBe(200);
    // A system administrator's key still cannot manage keys: that is for a logged-in user.
    expect(await callWithKey(key, '/api-keys')).toMatchObject({ status: 403, code: 'SessionRequired' });
    await screenshot('settings-api-keys');

    await page.getByRole('button', { name: `Revoke API key ${id}` }).click();
    await page.getByRole('dialog', { name: `Revoke API key ${id}?` }).getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => status().innerText()).toBe(`API key ${id} revoked: it no longer works.`);
    await row.waitFor({ state: 'detached' });
    expect(await callWithKey(key, '/backups')).toMatchObject({ status: 401, code: 'ApiKeyInvalid' });
  }, 120_000);

  it('bob, an observer, sees the backups and the API keys and no control', async () => {
    await logOut(page, origin);
    await logIn(page, origin, 'bob', PASSWORD, '/settings/backups');
    await table().waitFor();
    expect(await names()).toEqual([name]);
    expect(await page.getByRole('button').allInnerTexts()).toEqual(['Log out']);
    expect(await page.getByLabel('Upload a backup (.tar.gz)').count()).toBe(0);
    await page.goto(`${origin}/settings/api-keys`);
    // An observer sees the keys (the reference's view_api_keys), with no control to change them.
    await page.getByText('API keys are managed by a system administrator; you see them.').waitFor();
    await page.getByRole('table', { name: 'API keys of the admin API' }).waitFor();
    expect(await page.getByRole('button').allInnerTexts()).toEqual(['Log out']);
  }, 60_000);

  it('loaded nothing from outside the server and broke no rule of its Content-Security-Policy', () => {
    expectCleanRun(browser);
  });
});
