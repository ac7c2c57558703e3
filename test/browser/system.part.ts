/**
 * Settings → System parameters, Settings → Internal TLS certificate and Diagnostics in chromium
 * (docs/admin-ui.md "System settings and diagnostics"), against the admin API in this process with
 * a real signer (SoftHSM), the test PKI served (OCSP responder, TSA, configuration source) and a
 * real configuration download, so that every status on the pages is one the running parts
 * recorded. alice (system administrator and security officer) adds and removes a timestamping
 * service, replaces the anchor after its hash is shown, asks for an address change (refused with
 * its code: no central server takes management requests here), makes a new internal key, a CSR
 * that OpenSSL reads, imports the CA's certificate for it and exports it; each change shows on the
 * page. bob, an observer, sees the same data and no control that changes it. Then, on a local
 * instance (its central server takes management requests), carol changes ss2's address and turns
 * maintenance mode on and off, each shown once global configuration has it. Screenshots of every
 * page and dialog go to docs/ui/.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { UserStore } from '../../src/admin/users.ts';
import { ConfigurationClient } from '../../src/globalconf/configuration-client.ts';
import { globalConfReader, loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { configurationAnchorXml } from '../../src/globalconf/writer.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';
import { lastAuditEntry } from '../support/admin-api.ts';
import { type Browser, STEP_MS, expectCleanRun, logIn, logOut, openBrowser } from '../support/browser.ts';
import { startUiServer, type UiServer } from '../support/ui-server.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';
import { createTestCa, openssl } from '../support/openssl.ts';
import { type SigningBed, signingKeyOnToken, startSigningBed } from '../support/signing.ts';

const PASSWORD = 'correct horse battery';
const dir = mkdtempSync(join(tmpdir(), 'xrd-browser-system-'));
const globalConfDir = join(dir, 'globalconf');
const anchorFile = join(dir, 'configuration-anchor.xml');
let bed: SigningBed;
let ui: UiServer;
let admin: ServerAdmin;
let origin: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  bed = await startSigningBed('ui-system');
  // A signing certificate on the token: the refresher asks the CA's OCSP responder for it.
  await signingKeyOnToken(bed, `${bed.pki.instance}/COM/1111`);
  // The configuration downloaded as the signer's configuration client downloads it, with its status file.
  copyFileSync(bed.pki.anchorFile, anchorFile);
  expect(await new ConfigurationClient(anchorFile, globalConfDir, silentLogger()).runOnce()).toBe(true);
  await changeServerConfIn(dir, { kind: 'system', name: 'test' }, 'SEED', () => ({ serverId: { instance: bed.pki.instance, memberClass: 'COM', memberCode: '1111', serverCode: 'ss1' }, clients: [], timestampingServices: [] }));

  const users = new UserStore(join(dir, 'admin', 'users.json'));
  await users.add('alice', PASSWORD, ['XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SECURITY_OFFICER']);
  await users.add('bob', PASSWORD, ['XROAD_SECURESERVER_OBSERVER']);
  admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: bed.daemon.socketPath, globalConf: globalConfReader(globalConfDir), logger: silentLogger(), anchorFile, globalConfDir, clientProxyUrl: 'https://127.0.0.1:9' });
  ui = await startUiServer({ workDir: dir, proxyDataDir: dir, admin, users });
  ({ origin, browser, page } = ui);
}, 180_000);

afterAll(async () => {
  await ui?.close();
  await admin?.close();
  await bed?.close();
  rmSync(dir, { recursive: true, force: true });
});

const hashOnPage = async (testId: string) => (await page.getByTestId(testId).innerText()).replaceAll(':', '');
const internalCertHash = () => openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', join(dir, 'internal-tls', 'internal.crt')]).split('=')[1]!.trim().replaceAll(':', '');

/** Saves the download a click starts into `dir` and returns its path and suggested name. */
async function downloadOf(click: () => Promise<void>): Promise<{ path: string; name: string }> {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), click()]);
  const path = join(dir, 'downloads', download.suggestedFilename());
  mkdirSync(join(dir, 'downloads'), { recursive: true });
  await download.saveAs(path);
  return { path, name: download.suggestedFilename() };
}

describe('system settings and diagnostics in chromium', () => {
  it('/settings leads to System parameters; alice adds and removes a timestamping service, replaces the anchor after seeing its hash, and an address change shows its coded refusal', async () => {
    await logIn(page, origin, 'alice', PASSWORD, '/clients');
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL(`${origin}/settings/system`);
    await expect.poll(() => page.getByText('No timestamping service is in use').count()).toBe(1);

    const tsa = admin.approvedTimestampingServices()[0]!;
    await page.getByLabel('Add an approved service').selectOption(tsa.url);
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByTestId('tsas').getByText(tsa.url).waitFor();
    expect(await admin.timestampingServices()).toEqual([tsa]);
    await page.getByRole('button', { name: `Remove ${tsa.name}` }).click();
    const remove = page.getByRole('dialog', { name: 'Remove the timestamping service?' });
    await remove.getByRole('button', { name: 'Remove' }).click();
    await page.getByText('No timestamping service is in use').waitFor();
    expect(await admin.timestampingServices()).toEqual([]);
    await page.getByLabel('Add an approved service').selectOption(tsa.url);
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByTestId('tsas').getByText(tsa.url).waitFor();

    // The anchor: the hash shown is the file's SHA-224; the download is the file.
    const sha224 = (file: string) => openssl(['dgst', '-sha224', '-r', file]).split(' ')[0]!.toUpperCase();
    expect(await hashOnPage('anchor')).toContain(sha224(anchorFile));
    const saved = await downloadOf(() => page.getByRole('button', { name: 'Download' }).click());
    expect(readFileSync(saved.path).equals(readFileSync(anchorFile))).toBe(true);
    const newAnchor = join(dir, 'new-anchor.xml');
    const cert = Buffer.from(openssl(['x509', '-outform', 'PEM', '-in', join(bed.pki.dir, 'pki', 'ca.cert.pem')]).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    writeFileSync(newAnchor, configurationAnchorXml({ instanceIdentifier: bed.pki.instance, generatedAt: new Date('2026-12-01T12:00:00Z'), sources: [{ downloadUrl: 'http://127.0.0.1:9/internalconf', verificationCerts: [cert] }] }));
    await page.getByLabel('Upload a new anchor…').setInputFiles(newAnchor);
    const dialog = page.getByRole('dialog', { name: 'Replace the configuration anchor?' });
    await dialog.waitFor();
    expect((await page.getByTestId('preview-hash').innerText()).replaceAll(':', '')).toBe(sha224(newAnchor));
    await browser.screenshot('settings-system-anchor-dialog');
    await dialog.getByRole('button', { name: 'Replace the anchor' }).click();
    await page.getByText('The new anchor is saved').waitFor();
    expect(await hashOnPage('anchor')).toContain(sha224(newAnchor));
    expect(readFileSync(anchorFile).equals(readFileSync(newAnchor))).toBe(true);

    // Server address from global configuration; the change request needs the central server.
    expect(await page.getByTestId('address').innerText()).toBe('127.0.0.1');
    expect(await page.getByTestId('maintenance').innerText()).toContain('Disabled');
    await page.getByLabel('New address (host name or IP address)').fill('ss1.example.org');
    await page.getByRole('button', { name: 'Request change' }).click();
    const refusal = page.getByRole('region', { name: 'Security server address' }).getByRole('alert');
    await refusal.waitFor();
    // The test PKI's global configuration names no management service: the request is not sent.
    expect(await refusal.innerText()).toMatch(/^GlobalConfNotAvailable .*management service/);
    expect(await page.getByTestId('address').innerText()).toBe('127.0.0.1');
    await browser.screenshot('settings-system');
    expectCleanRun(browser);
  });

  it('alice makes a new internal key (confirmed), a CSR OpenSSL reads, imports the CA certificate for it and exports it; the page shows each certificate', async () => {
    await page.getByRole('link', { name: 'Internal TLS certificate' }).click();
    await page.waitForURL(`${origin}/settings/tls`);
    await page.getByTestId('cert-hash').waitFor();
    const first = await hashOnPage('cert-hash');
    expect(first).toBe(internalCertHash());

    await page.getByRole('button', { name: 'Generate new key and certificate' }).click();
    const dialog = page.getByRole('dialog', { name: 'Generate a new key and certificate?' });
    await dialog.waitFor();
    await browser.screenshot('settings-tls-generate-dialog');
    await dialog.getByRole('button', { name: 'Generate' }).click();
    await page.getByText('A new key and self-signed certificate are in use').waitFor();
    const generated = await hashOnPage('cert-hash');
    expect(generated).not.toBe(first);
    expect(generated).toBe(internalCertHash());
    expect(await lastAuditEntry(dir, 'GENERATE_INTERNAL_TLS_KEY_CERT')).toMatchObject({ actor: { kind: 'user', name: 'alice' }, detail: { certHash: generated } });

    await page.getByLabel('Distinguished name').fill('C=FI, O=Provider Oy, CN=ss1.example.org');
    const csr = await downloadOf(() => page.getByRole('button', { name: 'Generate CSR' }).click());
    expect(csr.name).toMatch(/^internal_tls_cert_request_\d{14}\.p10$/);
    expect(openssl(['req', '-inform', 'DER', '-in', csr.path, '-verify', '-noout', '-subject', '-nameopt', 'RFC2253'])).toContain('subject=CN=ss1.example.org,O=Provider Oy,C=FI');

    const ca = createTestCa('Internal TLS CA');
    const issued = join(dir, 'issued.pem');
    writeFileSync(issued, ca.issue(openssl(['req', '-inform', 'DER', '-in', csr.path]), 'digitalSignature,keyEncipherment', 'serverAuth'));
    await page.getByLabel('Import certificate…').setInputFiles(issued);
    await page.getByText('The imported certificate is in use.').waitFor();
    const imported = await hashOnPage('cert-hash');
    expect(imported).toBe(internalCertHash());
    expect(await page.getByTestId('certificate').innerText()).toContain('CN=Internal TLS CA');

    const exported = await downloadOf(() => page.getByRole('button', { name: 'Export' }).click());
    expect(exported.name).toBe('certs.tar.gz');
    const out = join(dir, 'exported');
    mkdirSync(out);
    execFileSync('tar', ['-xzf', exported.path, '-C', out]);
    expect(openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', join(out, 'cert.pem')]).split('=')[1]!.trim().replaceAll(':', '')).toBe(imported);
    await browser.screenshot('settings-tls');
    expectCleanRun(browser);
  });

  it('Diagnostics shows the configuration download, the timestamping service, the OCSP responder and the signing certificate as the running parts recorded them', async () => {
    await page.getByRole('link', { name: 'Diagnostics' }).click();
    await page.waitForURL(`${origin}/diagnostics`);
    const conf = page.getByTestId('globalconf');
    await conf.waitFor();
    expect(await conf.innerText()).toContain('OK');
    expect(await conf.innerText()).toContain(bed.served.confUrl);
    // The proxy is not running here: the message log has recorded nothing for the service yet.
    expect(await page.getByTestId('tsa-status').innerText()).toMatch(/Waiting[\s\S]*Not asked for a timestamp yet/);
    // The test CA and its intermediate name the same responder, which answered the signer's refresh.
    const ocsp = page.getByTestId('ocsp-status');
    await ocsp.first().waitFor();
    for (const table of await ocsp.all()) expect(await table.innerText()).toMatch(new RegExp(`${bed.served.ocspUrl}\\s+OK`));
    const expiry = await page.getByTestId('cert-expiry').innerText();
    expect(expiry).toMatch(/OK[\s\S]*days left[\s\S]*good/);
    await browser.screenshot('diagnostics');
    await page.setViewportSize({ width: 390, height: 800 });
    await browser.screenshot('diagnostics-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
    expectCleanRun(browser);
    await logOut(page, origin);
  });

  it('bob, an observer, sees the settings and diagnostics without any control that changes them', async () => {
    await logIn(page, origin, 'bob', PASSWORD, '/settings/system');
    await page.getByTestId('tsas').waitFor();
    await page.getByTestId('anchor').waitFor();
    for (const name of [/^Remove/, /^Add$/, /^Download$/, /^Request change$/, /maintenance mode/i]) expect(await page.getByRole('button', { name }).count()).toBe(0);
    expect(await page.getByLabel('Upload a new anchor…').count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Security server address' }).count()).toBe(0);

    await page.getByRole('link', { name: 'Internal TLS certificate' }).click();
    await page.getByTestId('cert-hash').waitFor();
    for (const name of ['Export', 'Generate new key and certificate', 'Generate CSR']) expect(await page.getByRole('button', { name }).count()).toBe(0);
    expect(await page.getByLabel('Import certificate…').count()).toBe(0);

    await page.getByRole('link', { name: 'Diagnostics' }).click();
    await page.getByTestId('cert-expiry').waitFor();
    expectCleanRun(browser);
    await logOut(page, origin);
  });
});

describe('the server address and maintenance mode on a local instance (management requests to its central server)', () => {
  const SS2 = { instance: 'LOCAL', memberClass: 'COM', memberCode: '2222', serverCode: 'ss2' };
  let instance: LocalInstance;
  let ss2: Browser;

  beforeAll(async () => {
    instance = await sharedLocalInstance();
    await new UserStore(join(instance.consumer.proxyDataDir, 'admin', 'users.json')).add('carol', PASSWORD, ['XROAD_SYSTEM_ADMINISTRATOR']);
    ss2 = await openBrowser(new URL(instance.consumer.adminUrl).origin, join(dir, 'ss2-browser'));
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await ss2?.close();
  });

  it('carol requests a new address and turns maintenance mode on (confirmed, with a message) and off; the page shows each once global configuration has it', async () => {
    const origin2 = new URL(instance.consumer.adminUrl).origin;
    const page2 = ss2.page;
    const globalServer = () => loadGlobalConf(instance.pki.globalConfDir).securityServer(SS2)!;
    /** Reloads the page until `testId` reads `text` (global configuration reaches the server within seconds). */
    const shown = async (testId: string, text: string) =>
      expect.poll(async () => {
        await page2.reload();
        return page2.getByTestId(testId).innerText();
      }, { timeout: 20_000, interval: 1000 }).toContain(text);

    await logIn(page2, origin2, 'carol', PASSWORD, '/settings/system');
    expect(await page2.getByTestId('address').innerText()).toBe('127.0.0.2');
    await page2.getByLabel('New address (host name or IP address)').fill('ss2.localhost');
    await page2.getByRole('button', { name: 'Request change' }).click();
    await page2.getByText('The address change to ss2.localhost is sent to the central server').waitFor();
    expect(globalServer().address).toBe('ss2.localhost');
    await shown('address', 'ss2.localhost');

    await page2.getByLabel('Message to clients (optional)').fill('Back at noon');
    await page2.getByRole('button', { name: 'Enable maintenance mode' }).click();
    const dialog = page2.getByRole('dialog', { name: 'Enable maintenance mode?' });
    await dialog.waitFor();
    await ss2.screenshot('settings-system-maintenance-dialog');
    await dialog.getByRole('button', { name: 'Enable maintenance mode' }).click();
    await page2.getByText('The request to enable maintenance mode is sent').waitFor();
    expect(globalServer().maintenanceMode).toEqual({ message: 'Back at noon' });
    await shown('maintenance', 'Enabled — Back at noon');
    await ss2.screenshot('settings-system-maintenance');

    await page2.getByRole('button', { name: 'Disable maintenance mode' }).click();
    await page2.getByText('The request to disable maintenance mode is sent').waitFor();
    expect(globalServer().maintenanceMode).toBeUndefined();
    await shown('maintenance', 'Disabled');
    expectCleanRun(ss2);
  }, 120_000);
});
