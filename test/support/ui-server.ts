/**
 * The web interface's pages served by an in-process admin API, as the browser tests use it: HTTPS
 * on loopback port 0 with a self-signed certificate made by openssl (the session cookie needs
 * https), the built ui/dist, and chromium opened on it. Fast: no local instance to boot; the test
 * gives the ServerAdmin (with a real signer where the pages need one).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ApiKeyStore, apiKeysFile } from '../../src/serverconf/api-keys.ts';
import { type AdminApiOptions, startAdminApi } from '../../src/admin/api-server.ts';
import { DEFAULT_UI_DIR } from '../../src/admin/web-ui.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { type Browser, openBrowser } from './browser.ts';
import { openssl } from './openssl.ts';

export interface UiServer {
  /** The admin API's base URL (https://127.0.0.1:<port>/api/v1). */
  readonly url: string;
  readonly origin: string;
  /** The admin API's self-signed certificate (PEM), to trust in the test's own calls. */
  readonly ca: string;
  readonly browser: Browser;
  readonly page: Page;
  /** Closes the browser, then the API. */
  close(): Promise<void>;
}

/**
 * Starts the admin API for `admin` (API keys in `proxyDataDir`'s admin folder, where the admin API
 * reads them) and opens chromium on it; the certificate and the browser profile go to `workDir`.
 */
export async function startUiServer(options: {
  workDir: string;
  proxyDataDir: string;
  admin: AdminApiOptions['admin'];
  users: AdminApiOptions['users'];
  rateLimit?: AdminApiOptions['rateLimit'];
}): Promise<UiServer> {
  const { workDir } = options;
  const keyFile = join(workDir, 'key.pem');
  const certFile = join(workDir, 'cert.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1']);
  const ca = readFileSync(certFile, 'utf8');
  const api = await startAdminApi({
    admin: options.admin,
    keys: new ApiKeyStore(apiKeysFile(options.proxyDataDir)),
    users: options.users,
    logger: silentLogger(),
    https: { cert: ca, key: readFileSync(keyFile, 'utf8') },
    port: 0,
    uiDir: DEFAULT_UI_DIR,
    rateLimit: options.rateLimit,
  });
  const origin = new URL(api.url).origin;
  let browser: Browser;
  try {
    browser = await openBrowser(origin, workDir);
  } catch (err) {
    await api.close();
    throw err;
  }
  return {
    url: api.url,
    origin,
    ca,
    browser,
    page: browser.page,
    async close() {
      await browser.close();
      await api.close();
    },
  };
}
