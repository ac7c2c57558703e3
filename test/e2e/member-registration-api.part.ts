/**
 * MEMBER_01 start to finish against the local instance, the security server's side only through its
 * admin REST API: ss3 (a blank SoftHSM token, its signer and admin API) is initialised for member
 * 4444, gets a timestamping service, sign and auth keys on the token, CSRs, certificates from the
 * test CA (the out-of-band step), sends the auth certificate registration request; the central
 * server's administrator approves it (`xrd testpki approve`); the certificate moves to registered
 * when global configuration lists it, is activated, and ss3 then exchanges a message with ss1 over
 * the mutual TLS that the new certificate authenticates.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, apiKeysFile } from '../../src/serverconf/api-keys.ts';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { openServerConfStore } from '../../src/serverconf/store.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { adminApi, type AdminAnswer } from '../support/admin-api.ts';
import { eventually } from '../support/eventually.ts';
import { getRandomThroughJoining } from '../support/joining.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';

const run = promisify(execFile);
const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const PIN = 'ss3-Token-Pin-1';

let instance: LocalInstance;
/** ss3's authentication certificate once MEMBER_01 has registered it. */
let registeredAuth: { hash: string; der: Buffer } | undefined;

/** One admin API call as ss3's administrator (its API key unless another is given). */
const api = (method: string, path: string, body?: unknown, key?: string | null): Promise<AdminAnswer> => adminApi(instance, instance.joining, key)(method, path, body);

beforeAll(async () => {
  instance = await sharedLocalInstance();
}, BOOT_TIMEOUT_MS);

describe('MEMBER_01 through the admin API', () => {
  it('registers ss3 and exchanges a message with its new authentication certificate', async () => {
    const inst = instance.pki.instance;
    const before = await api('GET', '/initialization/status');
    expect(before.status).toBe(200);
    expect(before.json).toMatchObject({ anchorImported: true, serverCodeInitialized: false, softwareTokenInitStatus: 'NOT_INITIALIZED' });

    // 1. Initialise: owner member, server code, token PIN.
    const init = await api('POST', '/initialization', { owner_member_class: 'COM', owner_member_code: '4444', security_server_code: 'ss3', software_token_pin: PIN });
    expect(init.status, init.text).toBe(201);
    expect(init.json).toMatchObject({ serverId: `${inst}/COM/4444/ss3`, softwareTokenInitStatus: 'INITIALIZED' });
    expect((await api('POST', '/initialization', { owner_member_class: 'COM', owner_member_code: '4444', security_server_code: 'ss3' })).json.error.code).toBe('ServerAlreadyInitialized');

    // 2. Timestamping service from the approved ones.
    const approved = await api('GET', '/timestamping-services');
    expect(approved.json).toHaveLength(1);
    expect((await api('POST', '/system/timestamping-services', approved.json[0])).status).toBe(201);
    expect((await api('GET', '/system/timestamping-services')).json).toEqual(approved.json);

    // 3. Keys on the token, CSRs, certificates from the approved CA, imported.
    // SoftHSM always offers one more blank slot; the initialised token is ours.
    const tokens = (await api('GET', '/tokens')).json.filter((t: { status: string }) => t.status !== 'NOT_INITIALIZED');
    expect(tokens).toHaveLength(1);
    const token = tokens[0];
    expect(token).toMatchObject({ active: true, status: 'OK' });
    const signing = await api('POST', `/tokens/${token.tokenId}/keys-with-csrs`, { key_label: 'sign 4444', csr_generate_request: { key_usage_type: 'SIGNING', csr_format: 'DER' } });
    expect(signing.status, signing.text).toBe(201);
    const auth = await api('POST', `/tokens/${token.tokenId}/keys-with-csrs`, { key_label: 'auth ss3', csr_generate_request: { key_usage_type: 'AUTHENTICATION', csr_format: 'DER' } });
    expect(auth.status, auth.text).toBe(201);
    expect(auth.json.key).toMatchObject({ usage: 'AUTHENTICATION', sensitive: true, extractable: false });
    expect(auth.json.csr.subject).toContain('ss3');
    const signCert = instance.pki.issue(Buffer.from(signing.json.csr.csr, 'base64'), 'sign');
    const authCert = instance.pki.issue(Buffer.from(auth.json.csr.csr, 'base64'), 'auth');
    const importedSign = await api('POST', '/token-certificates', signCert);
    expect(importedSign.status, importedSign.text).toBe(201);
    expect(importedSign.json).toMatchObject({ memberId: `${inst}/COM/4444`, status: 'registered' });
    const importedAuth = await api('POST', '/token-certificates', authCert);
    expect(importedAuth.status, importedAuth.text).toBe(201);
    expect(importedAuth.json.status).toBe('saved');
    const authHash: string = importedAuth.json.hash;
    registeredAuth = { hash: authHash, der: Buffer.from(importedAuth.json.cert, 'base64') };

    // 4. Registration request to the central server's management service.
    const registered = await api('PUT', `/token-certificates/${authHash}/register`, { address: instance.joining.address });
    expect(registered.status, registered.text).toBe(200);
    expect(registered.json.cert.status).toBe('registration in progress');
    const pending = instance.pki.managementRequests().find((r) => r.id === registered.json.requestId);
    expect(pending).toMatchObject({ status: 'SUBMITTED', serverId: `${inst}/COM/4444/ss3`, address: instance.joining.address });

    // 5. The central server's administrator approves it; the next configuration lists the server.
    await run(process.execPath, [XRD, 'testpki', 'approve', registered.json.requestId, '--dir', instance.pki.dir]);
    expect(loadGlobalConf(instance.pki.globalConfDir).securityServer({ instance: inst, memberClass: 'COM', memberCode: '4444', serverCode: 'ss3' })?.address).toBe(instance.joining.address);

    // 6. ss3 sees it: the certificate is registered; 7. the administrator activates it.
    await eventually(async () => ((await api('GET', `/token-certificates/${authHash}`)).json.status === 'registered' ? true : undefined), 20_000, 'registered state');
    const activated = await api('PUT', `/token-certificates/${authHash}/activate`);
    expect(activated.json).toMatchObject({ status: 'registered', active: true });

    // A message exchange with the new certificate: ss3's owner calls ss1's getRandom over plain HTTP.
    // The admin API reads the new configuration on its own (at most a second after the signer did).
    const owner = `${inst}:COM:4444`;
    await eventually(async () => ((await api('GET', `/clients/${owner}`)).json.registered === true ? true : undefined), 20_000, 'owner registered in the admin API');
    expect((await api('PATCH', `/clients/${owner}`, { connection_type: 'HTTP' })).json).toMatchObject({ connectionType: 'HTTP', registered: true });
    await instance.startProxy(instance.joining);
    const answer = await getRandomThroughJoining(instance, `member01-${Date.now()}`);
    expect(answer).toMatch(/<xrd:client[^>]*objectType="MEMBER"/);
    // A backup of the registered server holds its configuration and key metadata, never the keys.
    const backup = await api('POST', '/backups', { label: 'registered' });
    expect(backup.status, backup.text).toBe(201);
    expect(backup.json).toMatchObject({ serverId: `${inst}/COM/4444/ss3`, label: 'registered' });
    expect(backup.json.files).toContain('proxy/serverconf.json');
    expect(backup.json.files.some((f: string) => f.includes('softhsm'))).toBe(false);
    expect((await api('GET', '/backups')).json[0].name).toBe(backup.json.name);
    // Each change of keys, CSRs and certificates is in ss3's audit log under the API key's name, as the reference audits each.
    const store = await openServerConfStore(instance.joining.proxyDataDir);
    try {
      const audited = (await store.auditLog({ limit: 100 })).filter((e) => e.actor.kind === 'api-key').map((e) => `${e.actor.name} ${e.action}`).reverse();
      const expected = ['GENERATE_KEY', 'GENERATE_CSR', 'GENERATE_KEY', 'GENERATE_CSR', 'IMPORT_CERTIFICATE', 'IMPORT_CERTIFICATE', 'REGISTER_AUTH_CERT', 'ACTIVATE_CERTIFICATE'];
      expect(audited.filter((a) => expected.some((e) => a.endsWith(` ${e}`)))).toEqual(expected.map((e) => `local administrator ${e}`));
      expect((await store.auditLog({ action: 'IMPORT_CERTIFICATE' })).map((e) => e.detail.hash)).toContain(authHash);
    } finally {
      await store.close();
    }
    // ss3 is healthy with its new key: auth key usable, OCSP good, configuration current.
    await eventually(async () => ((await fetch(instance.joining.healthUrl)).status === 200 ? true : undefined), 20_000, 'ss3 healthy');
  }, 180_000);

  // Rate limits are proven with an injected clock in test/unit/api-security.test.ts: a burst over
  // HTTPS cannot be made to land inside one second on a busy machine.
  it('refuses, with the documented status and code: no key, an unknown key, the wrong role, too large, malformed', async () => {
    const observer = new ApiKeyStore(apiKeysFile(instance.joining.proxyDataDir)).create(['XROAD_SECURESERVER_OBSERVER'], 'observer').key;
    const tokenId = (await api('GET', '/tokens')).json[0].tokenId;
    const cases: [AdminAnswer, number, string][] = [
      [await api('GET', '/tokens', undefined, null), 401, 'ApiKeyMissing'],
      [await api('GET', '/tokens', undefined, 'not-a-key'), 401, 'ApiKeyInvalid'],
      [await api('PUT', `/tokens/${tokenId}/logout`, undefined, observer), 403, 'PermissionDenied'],
      [await api('PATCH', `/tokens/${tokenId}`, { name: 'x'.repeat(60 * 1024) }), 413, 'RequestTooLarge'],
      [await api('PATCH', `/tokens/${tokenId}`, '{"name": '), 400, 'InvalidRequestBody'],
      [await api('PATCH', `/tokens/${tokenId}`, { name: 'ok', extra: 1 }), 400, 'InvalidRequestBody'],
      [await api('GET', '/token-certificates/00'), 404, 'CertNotFound'],
    ];
    for (const [answer, status, code] of cases) {
      expect({ status: answer.status, code: answer.json?.error?.code }).toEqual({ status, code });
      expect(answer.json.status).toBe(status);
    }
    expect((await api('GET', '/tokens', undefined, observer)).status).toBe(200);
  });

  it('pr-mserv authCertDeletion: the auth certificate unregistered through ss3\'s own client proxy; the next global configuration no longer lists it, and it is deletion in progress', async () => {
    const auth = registeredAuth!;
    const unregistered = await api('PUT', `/token-certificates/${auth.hash}/unregister`);
    expect(unregistered.status, unregistered.text).toBe(200);
    expect(unregistered.json).toMatchObject({ cert: { hash: auth.hash, status: 'deletion in progress' } });
    const server = loadGlobalConf(instance.pki.globalConfDir).securityServer({ instance: instance.pki.instance, memberClass: 'COM', memberCode: '4444', serverCode: 'ss3' });
    expect(server?.authCertHashes ?? []).toHaveLength(0);
    expect(loadGlobalConf(instance.pki.globalConfDir).serverIdForAuthCert(auth.der)).toBeUndefined();
  }, 60_000);
});
