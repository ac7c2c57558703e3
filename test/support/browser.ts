/**
 * Debian's chromium, headless, driven by playwright-core (installed by scripts/bootstrap.sh), for
 * the web interface's tests: one persistent context on a fresh profile that accepts the admin API's
 * self-signed certificate, records every request that leaves the server's origin and every page
 * error or console error (a Content-Security-Policy violation above all), and writes screenshots
 * to docs/ui/ for docs/admin-ui.md.
 */
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = resolve(import.meta.dirname, '../../docs/ui');
/** Bounds for one browser step and for starting chromium: generous, as CI shares two cores. */
export const STEP_MS = 20_000;
const LAUNCH_MS = 45_000;

export interface Browser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Requests to anywhere but `origin`: the page must load nothing from outside the server. */
  readonly offOrigin: string[];
  /** Page errors and console errors other than a refused call's failed load. */
  readonly problems: string[];
  /** A full-page screenshot to docs/ui/<name>.png. */
  screenshot(name: string): Promise<Buffer>;
  close(): Promise<void>;
}

/** Chromium with its profile in `profileDir`, at 1280×800, for pages served by `origin`. */
export async function openBrowser(origin: string, profileDir: string): Promise<Browser> {
  const context = await chromium.launchPersistentContext(join(profileDir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    // The admin API's certificate is self-signed; the session cookie still needs https.
    ignoreHTTPSErrors: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
    timeout: LAUNCH_MS,
  });
  context.setDefaultTimeout(STEP_MS);
  const offOrigin: string[] = [];
  const problems: string[] = [];
  context.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('blob:')) offOrigin.push(url);
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  // A refused call (4xx) is logged by the browser as a failed load; anything else is a problem.
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 4\d\d/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  return {
    context,
    page,
    offOrigin,
    problems,
    screenshot: (name) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true }),
    close: () => context.close(),
  };
}

/** Logs in through the login page and waits for the page it leads to. */
export async function logIn(page: Page, origin: string, username: string, password: string, landing = '/clients'): Promise<void> {
  await page.goto(`${origin}/login?next=${encodeURIComponent(landing)}`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${origin}${landing}`);
}

/** Logs out with the header's button. */
export async function logOut(page: Page, origin: string): Promise<void> {
  // The header's: a page may have other "Log out" buttons (a token's on the keys page).
  await page.getByRole('banner').getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(`${origin}/login`);
}

/** The page loaded nothing from elsewhere and broke no rule of its Content-Security-Policy. */
export function expectCleanRun(browser: Browser): void {
  expect(browser.offOrigin).toEqual([]);
  expect(browser.problems).toEqual([]);
}
