/**
 * The web interface in a real browser (docs/admin-ui.md): Debian's chromium, headless, driven by
 * playwright-core, against the admin API in this process over HTTPS on loopback with the built
 * interface (ui/dist, `npm run build:ui`; bootstrap builds it). Walks what an administrator does:
 * a bookmark to the clients page sends them to login, they log in with the keyboard through the
 * labelled fields, see the server's clients as GET /api/v1/clients lists them, reload, log out;
 * a change sent with the session cookie but without the CSRF token is refused; a user who mistypes
 * the password five times is locked (AccountLocked shown, even for the right password). Every request stays on the server's own origin (nothing from a CDN), and the page runs
 * under its Content-Security-Policy without a violation. Screenshots go to docs/ui/.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { UserStore } from '../../src/admin/users.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { addClient } from '../../src/serverconf/changes.ts';
import type { ConnectionType, ServerConf } from '../../src/serverconf/model.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';
import { type Browser, expectCleanRun } from '../support/browser.ts';
import { startUiServer, type UiServer } from '../support/ui-server.ts';

const PASSWORD = 'correct horse battery';

const dir = mkdtempSync(join(tmpdir(), 'xrd-browser-'));
let ui: UiServer;
let origin: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  // The clients as `xrd client add` leaves them (serverconf/changes.ts), two of them registered.
  const clients: [string, ConnectionType, boolean][] = [
    ['LOCAL/GOV/1111', 'HTTPS', true],
    ['LOCAL/GOV/1111/MANAGEMENT', 'HTTPS_NO_AUTH', true],
    ['LOCAL/COM/2222/NEWSUB', 'HTTP', false],
  ];
  const empty: ServerConf = { serverId: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', serverCode: 'ss1' }, clients: [], timestampingServices: [] };
  await changeServerConfIn(dir, { kind: 'system', name: 'test' }, 'SEED', () =>
    clients.reduce((conf, [id, connectionType, registered]) => addClient(conf, parseClientId(id), { connectionType, registered }), empty),
  );
  const users = new UserStore(join(dir, 'admin', 'users.json'));
  await users.add('alice', PASSWORD, ['XROAD_SYSTEM_ADMINISTRATOR']);
  await users.add('bob', PASSWORD, ['XROAD_SECURESERVER_OBSERVER']);
  // Nothing here calls the signer or global configuration: the socket is never connected.
  const admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  ui = await startUiServer({ workDir: dir, proxyDataDir: dir, admin, users });
  ({ origin, browser, page } = ui);
}, 90_000);

afterAll(async () => {
  await ui?.close();
  rmSync(dir, { recursive: true, force: true });
});

const screenshot = (name: string): Promise<Buffer> => browser.screenshot(name);

describe('the web interface in chromium', () => {
  it('a bookmark to the clients page asks for login; alice logs in with the keyboard, sees the clients, reloads, cannot be made to change without the CSRF token, logs out', async () => {
    await page.goto(`${origin}/clients`);
    await page.waitForURL(`${origin}/login?next=/clients`);
    await expect.poll(() => page.title()).toBe('Log in – Security server administration');
    // The username field has the focus; Tab reaches the password field and Enter submits.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('username');
    await page.keyboard.type('alice');
    await page.keyboard.press('Tab');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('password');
    await page.keyboard.type(PASSWORD);
    await screenshot('login');
    await page.keyboard.press('Enter');

    await page.waitForURL(`${origin}/clients`);
    const table = page.getByRole('table', { name: "The security server's owner, members and subsystems" });
    await table.waitFor();
    const rows = async () => (await table.locator('tbody tr').allInnerTexts()).map((row) => row.split('\t').map((cell) => cell.trim()));
    // Client (the owner marked), member name (none without global configuration), status, connection type;
    // no actions column, as alice (a system administrator) may not add or register clients.
    const expected = [
      ['LOCAL/GOV/1111 owner', '', 'REGISTERED', 'HTTPS'],
      ['LOCAL/GOV/1111/MANAGEMENT', '', 'REGISTERED', 'HTTPS_NO_AUTH'],
      ['LOCAL/COM/2222/NEWSUB', '', 'SAVED', 'HTTP'],
    ];
    expect(await rows()).toEqual(expected);
    expect(await page.getByTestId('user').innerText()).toBe('alice');
    // The clients page's screenshots are taken by test/browser/seed-003.part.ts, with real clients.

    // The session lives in the browser's cookies: a reload of the deep link stays logged in.
    await page.reload();
    await table.waitFor();
    expect(await rows()).toEqual(expected);

    // A change the page did not make (the browser sends the session cookie, but no X-XSRF-TOKEN): refused.
    const forged = await page.evaluate(async () => {
      const answer = await fetch('/api/v1/logout', { method: 'POST' });
      return [answer.status, ((await answer.json()) as { error: { code: string } }).error.code];
    });
    expect(forged).toEqual([403, 'CsrfTokenInvalid']);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${origin}/login`);
    // The session is over on the server too: the clients page sends back to login.
    const clients = await page.evaluate(async () => (await fetch('/api/v1/clients')).status);
    expect(clients).toBe(401);
    await page.goto(`${origin}/clients`);
    await page.waitForURL(`${origin}/login?next=/clients`);
  }, 120_000);

  it('five wrong passwords lock the user: each shows InvalidCredentials, then even the right password shows AccountLocked', async () => {
    await page.goto(`${origin}/login`);
    const error = page.getByRole('alert');
    const attempt = async (password: string) => {
      await page.getByLabel('Username').fill('bob');
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await error.waitFor();
      // The password field is emptied after a refusal; wait for that so the next attempt is a new one.
      await expect.poll(() => page.getByLabel('Password').inputValue()).toBe('');
      return error.innerText();
    };
    for (let i = 1; i <= 5; i++) expect(await attempt(`wrong ${i}`)).toMatch(/^InvalidCredentials Wrong user name or password$/);
    expect(await attempt(PASSWORD)).toMatch(/^AccountLocked User bob is locked after 5 wrong passwords; retry after \d+ s$/);
    expect(page.url()).toBe(`${origin}/login`);
    await screenshot('login-locked');
  }, 120_000);

  it('loaded nothing from outside the server and broke no rule of its Content-Security-Policy', () => {
    expectCleanRun(browser);
  });
});
