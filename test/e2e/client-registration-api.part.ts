/**
 * Seed 003's first step ("make sure you have added a subsystem to the security server") and the
 * client management requests of pr-mserv through the admin API of the local instance only: ss2's
 * administrator adds LOCAL/COM/2222/NEWSUB (SAVED), registers it — clientReg, signed by member
 * 2222's key on ss2's HSM, goes out through ss2's own client proxy to the management service
 * provider LOCAL/COM/0000/MANAGEMENT on ss1 and on to the central server's stand-in —, the central
 * server's administrator approves it, and the client shows REGISTERED once global configuration
 * lists it; then unregistered (clientDeletion) and deleted. A request the stand-in refuses shows its
 * error and leaves the client's state as it was. Every change is in the store's audit log under the
 * API key's name.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { getRandomRequest } from '../../src/dev/localinstance/first-calls.ts';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { openServerConfStore } from '../../src/serverconf/store.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { adminApi } from '../support/admin-api.ts';
import { eventually } from '../support/eventually.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';

const run = promisify(execFile);
const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
let instance: LocalInstance;

const api = (method: string, path: string, body?: unknown) => adminApi(instance, instance.consumer)(method, path, body);

beforeAll(async () => {
  instance = await sharedLocalInstance();
}, BOOT_TIMEOUT_MS);

const NEWSUB = 'LOCAL:COM:2222:NEWSUB';
const SS2 = { instance: 'LOCAL', memberClass: 'COM', memberCode: '2222', serverCode: 'ss2' };
/** getRandom as `client` over plain HTTP to ss2's client proxy: the fault's code and text. */
async function callAs(client: string): Promise<string> {
  const { stdout } = await run('curl', ['-s', '-H', 'Content-Type: text/xml', '-d', getRandomRequest(instance, client, `as-${client}-${Date.now()}`), `${instance.consumer.httpUrl}/`], { timeout: 60_000 });
  const text = (tag: string) => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(stdout)?.[1]?.replaceAll('&apos;', "'") ?? '';
  return `${text('faultcode')}: ${text('faultstring')}`;
}

const status = async (id: string) => (await api('GET', `/clients/${id}`)).json?.status as string;

describe('clients through the admin API (seed 003, pr-mserv)', () => {
  it('pr-mserv §2.1 clientReg: a subsystem added on ss2 is registered through its own client proxy and the management service, approved, and REGISTERED once global configuration lists it', async () => {
    const added = await api('POST', '/clients', { client: { member_class: 'COM', member_code: '2222', subsystem_code: 'NEWSUB', connection_type: 'HTTPS' } });
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ id: 'LOCAL/COM/2222/NEWSUB', status: 'SAVED', connectionType: 'HTTPS', registered: false });
    expect((await api('POST', '/clients', { client: { member_class: 'COM', member_code: '2222', subsystem_code: 'NEWSUB' } })).json.error).toMatchObject({ code: 'ClientAlreadyExists', reference_code: 'client_already_exists' });

    const registered = await api('PUT', `/clients/${NEWSUB}/register`);
    expect(registered.json).toBeUndefined();
    expect(registered.status).toBe(204);
    expect(await status(NEWSUB)).toBe('REGISTRATION_IN_PROGRESS');
    // Only a SAVED client is registered (the reference's action_not_possible).
    expect((await api('PUT', `/clients/${NEWSUB}/register`)).json.error).toMatchObject({ code: 'ActionNotPossible' });
    // Not registered yet: the client proxy does not speak for it (the reference's verifyClientStatus).
    expect(await callAs('2222/NEWSUB')).toBe("Server.ClientProxy.UnknownMember: Client 'SUBSYSTEM:LOCAL/COM/2222/NEWSUB' not found");

    // The central server got it from ss1's server proxy, as the management service provider's server.
    const pki = LocalPki.open(instance.pki.dir);
    const request = pki.managementRequests().find((r) => r.type === 'clientReg' && r.client === 'LOCAL/COM/2222/NEWSUB');
    expect(request).toMatchObject({ status: 'SUBMITTED' });
    pki.approveManagementRequest(request!.id);
    expect(loadGlobalConf(instance.pki.globalConfDir).isSecurityServerClient(parseClientId('LOCAL/COM/2222/NEWSUB'), SS2)).toBe(true);
    await eventually(async () => ((await status(NEWSUB)) === 'REGISTERED' ? true : undefined), 30_000, 'NEWSUB registered');
    // Registered: now its information system must show a certificate (connection type HTTPS).
    expect(await callAs('2222/NEWSUB')).toBe('Server.ClientProxy.SslAuthenticationFailed: Client (SUBSYSTEM:LOCAL/COM/2222/NEWSUB) specifies HTTPS but did not supply TLS certificate');
  }, 120_000);

  it("pr-mserv: a request the central server refuses shows its error, and the client's state stays as it was", async () => {
    // A member global configuration does not know: added only past the reference's warning.
    const warned = await api('POST', '/clients', { client: { member_class: 'COM', member_code: '9999', subsystem_code: 'GHOST' } });
    expect(warned.status).toBe(400);
    expect(warned.json).toMatchObject({ error: { code: 'WarningsDetected', reference_code: 'warnings_detected' }, warnings: [{ code: 'unregistered_member', metadata: ['LOCAL/COM/9999'] }] });
    expect((await api('POST', '/clients', { client: { member_class: 'COM', member_code: '9999', subsystem_code: 'GHOST' }, ignore_warnings: true })).status).toBe(201);
    const refused = await api('PUT', '/clients/LOCAL:COM:9999:GHOST/register');
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.json.error.message).toMatch(/9999/);
    expect(await status('LOCAL:COM:9999:GHOST')).toBe('SAVED');
    expect((await api('DELETE', '/clients/LOCAL:COM:9999:GHOST')).status).toBe(204);
  }, 120_000);

  it('pr-mserv clientDisable and clientEnable: applied by the central server at once; DISABLING_IN_PROGRESS → DISABLED, ENABLING_IN_PROGRESS → REGISTERED as global configuration follows', async () => {
    const listed = () => loadGlobalConf(instance.pki.globalConfDir).isSecurityServerClient(parseClientId('LOCAL/COM/2222/NEWSUB'), SS2);
    expect((await api('PUT', `/clients/${NEWSUB}/disable`)).status).toBe(204);
    expect(['DISABLING_IN_PROGRESS', 'DISABLED']).toContain(await status(NEWSUB));
    expect(listed()).toBe(false);
    await eventually(async () => ((await status(NEWSUB)) === 'DISABLED' ? true : undefined), 30_000, 'NEWSUB disabled');
    expect(await callAs('2222/NEWSUB')).toBe("Server.ClientProxy.UnknownMember: Client 'SUBSYSTEM:LOCAL/COM/2222/NEWSUB' not found");
    expect((await api('PUT', `/clients/${NEWSUB}/disable`)).json.error).toMatchObject({ code: 'ActionNotPossible' });
    expect((await api('PUT', `/clients/${NEWSUB}/enable`)).status).toBe(204);
    expect(listed()).toBe(true);
    await eventually(async () => ((await status(NEWSUB)) === 'REGISTERED' ? true : undefined), 30_000, 'NEWSUB enabled');
  }, 120_000);

  it("pr-mserv addressChange and maintenanceModeEnable/Disable: signed by the owner, applied, and shown by the next global configuration and this server's API", async () => {
    const server = () => loadGlobalConf(instance.pki.globalConfDir).securityServer(SS2)!;
    expect((await api('GET', '/system/server-address')).json).toEqual({ current_address: { address: '127.0.0.2' } });
    expect((await api('PUT', '/system/server-address', { address: '127.0.0.2' })).json.error).toMatchObject({ code: 'SameAddressChangeRequest', reference_code: 'same_address_change_request' });
    expect((await api('PUT', '/system/server-address', { address: 'ss2.localhost' })).status).toBe(202);
    expect(server().address).toBe('ss2.localhost');
    // Requested until this server's global configuration shows it (read again within a second).
    await eventually(async () => ((await api('GET', '/system/server-address')).json.current_address.address === 'ss2.localhost' ? true : undefined), 10_000, 'the new address shown');
    expect((await api('GET', '/system/server-address')).json).toEqual({ current_address: { address: 'ss2.localhost' } });
    expect((await api('PUT', '/system/server-address', { address: '127.0.0.2' })).status).toBe(202);

    expect((await api('PUT', '/system/maintenance-mode/enable', { message: 'Back at noon' })).status).toBe(204);
    expect(server().maintenanceMode).toEqual({ message: 'Back at noon' });
    await eventually(async () => ((await api('GET', '/system/maintenance-mode')).json.status === 'ENABLED_MAINTENANCE_MODE' ? true : undefined), 10_000, 'maintenance mode shown');
    expect((await api('GET', '/system/maintenance-mode')).json).toEqual({ status: 'ENABLED_MAINTENANCE_MODE', message: 'Back at noon' });
    expect((await api('PUT', '/system/maintenance-mode/disable')).status).toBe(204);
    expect(server().maintenanceMode).toBeUndefined();
    await eventually(async () => ((await api('GET', '/system/maintenance-mode')).json.status === 'DISABLED_MAINTENANCE_MODE' ? true : undefined), 10_000, 'maintenance mode off');
  }, 120_000);

  it('pr-mserv §2.3 clientDeletion: unregistered (DELETION_IN_PROGRESS), gone from global configuration, then deleted; each change audited under the API key', async () => {
    expect((await api('PUT', `/clients/${NEWSUB}/unregister`)).status).toBe(204);
    expect(await status(NEWSUB)).toBe('DELETION_IN_PROGRESS');
    expect(LocalPki.open(instance.pki.dir).managementRequests().find((r) => r.type === 'clientDeletion' && r.client === 'LOCAL/COM/2222/NEWSUB')).toMatchObject({ status: 'APPROVED' });
    expect(loadGlobalConf(instance.pki.globalConfDir).isSecurityServerClient(parseClientId('LOCAL/COM/2222/NEWSUB'), SS2)).toBe(false);
    expect((await api('DELETE', `/clients/${NEWSUB}`)).status).toBe(204);
    expect((await api('GET', `/clients/${NEWSUB}`)).status).toBe(404);

    const store = await openServerConfStore(instance.consumer.proxyDataDir);
    try {
      const actions = (await store.auditLog({ limit: 50 })).filter((e) => e.actor.kind === 'api-key').map((e) => `${e.actor.name} ${e.action}`);
      expect(actions).toEqual(expect.arrayContaining(['local administrator ADD_CLIENT', 'local administrator REGISTER_CLIENT', 'local administrator UNREGISTER_CLIENT', 'local administrator DELETE_CLIENT']));
      expect((await store.auditLog({ limit: 50 })).filter((e) => e.action === 'UPDATE_CLIENT_STATUSES').map((e) => e.detail.clients)).toEqual(expect.arrayContaining([expect.stringContaining('LOCAL/COM/2222/NEWSUB REGISTERED')]));
    } finally {
      await store.close();
    }
  }, 120_000);

  it('the same with the command line only (seed 003 by CLI): xrd client add, register, approval, REGISTERED; audited under the operating-system user', async () => {
    const s = instance.consumer;
    const xrd = async (...args: string[]) => {
      const { stdout } = await run(process.execPath, [XRD, ...args, '--json', '--data-dir', s.proxyDataDir, '--socket', s.signerSocket, '--conf', instance.pki.globalConfDir, '--client-proxy-url', s.httpsUrl], { timeout: 60_000 });
      return JSON.parse(stdout);
    };
    expect(await xrd('client', 'add', 'COM/2222/CLISUB', '--connection-type', 'HTTPS')).toMatchObject({ id: 'LOCAL/COM/2222/CLISUB', status: 'SAVED' });
    expect(await xrd('client', 'register', 'LOCAL:COM:2222:CLISUB')).toMatchObject({ status: 'REGISTRATION_IN_PROGRESS' });
    const pki = LocalPki.open(instance.pki.dir);
    pki.approveManagementRequest(pki.managementRequests().find((r) => r.type === 'clientReg' && r.client === 'LOCAL/COM/2222/CLISUB')!.id);
    await eventually(async () => ((await status('LOCAL:COM:2222:CLISUB')) === 'REGISTERED' ? true : undefined), 30_000, 'CLISUB registered');
    const store = await openServerConfStore(s.proxyDataDir);
    try {
      expect((await store.auditLog({ limit: 50 })).filter((e) => e.actor.kind === 'os-user').map((e) => e.action)).toEqual(expect.arrayContaining(['ADD_CLIENT', 'REGISTER_CLIENT']));
    } finally {
      await store.close();
    }
  }, 120_000);

  it('pr-mserv ownerChange: member 3333 added and registered on ss2, made owner with its own signature, approved; ss2 takes the new owner from global configuration and still exchanges messages', async () => {
    expect((await api('POST', '/clients', { client: { member_class: 'COM', member_code: '3333' } })).json).toMatchObject({ id: 'LOCAL/COM/3333', status: 'SAVED' });
    expect((await api('PUT', '/clients/LOCAL:COM:3333/register')).status).toBe(204);
    const pki = LocalPki.open(instance.pki.dir);
    pki.approveManagementRequest(pki.managementRequests().find((r) => r.type === 'clientReg' && r.client === 'LOCAL/COM/3333')!.id);
    await eventually(async () => ((await status('LOCAL:COM:3333')) === 'REGISTERED' ? true : undefined), 30_000, 'member 3333 registered');
    // Only a member already registered here may become the owner; the owner cannot become it again.
    expect((await api('PUT', '/clients/LOCAL:COM:2222/make-owner')).json.error).toMatchObject({ code: 'MemberAlreadyOwner' });
    expect((await api('PUT', '/clients/LOCAL:COM:3333/make-owner')).status).toBe(204);
    const request = pki.managementRequests().find((r) => r.type === 'ownerChange' && r.client === 'LOCAL/COM/3333');
    expect(request).toMatchObject({ status: 'SUBMITTED' });
    pki.approveManagementRequest(request!.id);
    expect(loadGlobalConf(instance.pki.globalConfDir).securityServer({ ...SS2, memberCode: '3333' })).toBeDefined();
    await eventually(async () => ((await api('GET', '/initialization/status')).json.serverId === 'LOCAL/COM/3333/ss2' ? true : undefined), 30_000, 'ss2 owned by 3333');
    const { stdout } = await run('curl', ['-s', '-H', 'Content-Type: text/xml', '-d', getRandomRequest(instance, '2222/CLIENT', 'after-owner-change'), '-E', instance.clientIs.certFile, '--key', instance.clientIs.keyFile, '-k', `${instance.consumer.httpsUrl}/`], { timeout: 60_000 });
    expect(stdout).toMatch(/<[\w:]*data>\d{1,3}<\/[\w:]*data>/);
  }, 180_000);
});
