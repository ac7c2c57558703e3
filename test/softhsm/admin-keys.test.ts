/**
 * The admin API's keys and certificates as the web interface's keys page reads them, against a
 * real signer daemon on SoftHSM (fastify inject, an API key per role): a CSR made earlier is
 * downloaded again in PEM and DER under the reference's file name (KeysApiController.downloadCsr,
 * CsrFilenameCreator), the same request OpenSSL verifies; and each certificate carries the
 * reference's OCSP status (TokenCertificateConverter.getOcspStatus): DISABLED while inactive, none while not registered,
 * OCSP_RESPONSE_UNKNOWN for a registered one without a response yet, DISABLED once disabled. And
 * the initialisation's warnings as the reference's InitializationService gives them, which the
 * wizard offers to override.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, type Role } from '../../src/serverconf/api-keys.ts';
import { API_PREFIX, registerAdminRoutes } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { addClient } from '../../src/serverconf/changes.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { openssl } from '../support/openssl.ts';

const PIN = '1234-keys';
let testbed: Testbed;
let daemon: SignerDaemon;
let admin: ServerAdmin;
let app: FastifyInstance;
let pki: LocalPki;
const keys: Partial<Record<Role, string>> = {};

beforeAll(async () => {
  testbed = createTestbed();
  const proxyDir = join(testbed.dir, 'proxy');
  mkdirSync(proxyDir);
  // A server initialised as `xrd init` leaves it: owner LOCAL/COM/1111, server code ss1.
  await changeServerConfIn(proxyDir, { kind: 'system', name: 'test' }, 'SEED', () =>
    addClient({ serverId: { instance: 'LOCAL', memberClass: 'COM', memberCode: '1111', serverCode: 'ss1' }, clients: [], timestampingServices: [] }, parseClientId('LOCAL/COM/1111'), { registered: true }),
  );
  // The CA only issues here; no OCSP responder runs, so registered certificates have no response.
  pki = LocalPki.init(join(testbed.dir, 'pki'));
  daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni }, silentLogger());
  admin = new ServerAdmin({ proxyDataDir: proxyDir, signerSocket: daemon.socketPath, globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  const store = new ApiKeyStore(join(proxyDir, 'admin', 'api-keys.json'));
  for (const role of ['XROAD_SECURITY_OFFICER', 'XROAD_SECURESERVER_OBSERVER'] as const) keys[role] = store.create([role], role).key;
  app = Fastify();
  registerAdminRoutes(app, { admin, keys: store, logger: silentLogger() });
  await app.ready();
  const token = await admin.signer.call('initToken', { label: 'keys', soPin: '0000', userPin: PIN });
  await admin.signer.call('activateToken', { token: token.tokenId, pin: PIN });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await admin?.close();
  await daemon?.close();
  testbed?.cleanup();
});

const call = (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, role: Role = 'XROAD_SECURITY_OFFICER') =>
  app.inject({
    method,
    url: API_PREFIX + path,
    headers: { authorization: `X-Road-ApiKey token=${keys[role]}`, ...(Buffer.isBuffer(body) ? { 'content-type': 'application/octet-stream' } : {}) },
    ...(body === undefined ? {} : Buffer.isBuffer(body) ? { body } : { payload: body as object }),
  });

const today = () => new Date().toISOString().slice(0, 10).replaceAll('-', '');

describe('keys and certificates for the keys page', () => {
  it('downloadCsr: a CSR made earlier comes again as PEM and DER under the reference file name; OpenSSL verifies it', async () => {
    const tokenId = (await call('GET', '/tokens')).json().find((t: { status: string }) => t.status !== 'NOT_INITIALIZED').tokenId;
    const made = await call('POST', `/tokens/${tokenId}/keys-with-csrs`, { key_label: 'sign', csr_generate_request: { key_usage_type: 'SIGNING', csr_format: 'PEM' } });
    expect(made.statusCode, made.body).toBe(201);
    const { key, csr } = made.json();
    const path = `/keys/${key.keyId}/csrs/${csr.csrId}`;

    const pem = await call('GET', `${path}?csr_format=PEM`);
    expect(pem.statusCode, pem.body).toBe(200);
    expect(pem.headers['content-disposition']).toBe(`attachment; filename="sign_csr_${today()}_member_LOCAL_COM_1111.pem"`);
    expect(pem.body).toBe(csr.csr);

    const der = await call('GET', `${path}?csr_format=DER`);
    expect(der.statusCode).toBe(200);
    expect(der.headers['content-disposition']).toBe(`attachment; filename="sign_csr_${today()}_member_LOCAL_COM_1111.der"`);
    expect(der.rawPayload.toString('base64')).toBe(csr.csr.replace(/-----[^-]+-----|\s/g, ''));
    const file = join(testbed.dir, 'download.der');
    writeFileSync(file, der.rawPayload);
    expect(openssl(['req', '-inform', 'DER', '-in', file, '-noout', '-verify', '-subject'])).toContain('1111');

    const auth = (await call('POST', `/tokens/${tokenId}/keys-with-csrs`, { csr_generate_request: { key_usage_type: 'AUTHENTICATION' } })).json();
    const authFile = await call('GET', `/keys/${auth.key.keyId}/csrs/${auth.csr.csrId}?csr_format=PEM`);
    expect(authFile.headers['content-disposition']).toBe(`attachment; filename="auth_csr_${today()}_securityserver_LOCAL_COM_1111_ss1.pem"`);

    // The reference's csr_format is mandatory; a CSR of another key is not this key's; observers may not.
    expect([(await call('GET', path)).statusCode, (await call('GET', path)).json().error.code]).toEqual([400, 'InvalidRequest']);
    expect((await call('GET', `${path}?csr_format=P10`)).statusCode).toBe(400);
    expect((await call('GET', `/keys/${auth.key.keyId}/csrs/${csr.csrId}?csr_format=PEM`)).json().error.code).toBe('CsrNotFound');
    expect((await call('GET', `${path}?csr_format=PEM`, undefined, 'XROAD_SECURESERVER_OBSERVER')).statusCode).toBe(403);
  });

  it("TokenCertificateConverter.getOcspStatus: DISABLED while inactive, none before registration, OCSP_RESPONSE_UNKNOWN for a registered certificate without a response, DISABLED once disabled", async () => {
    const tokenId = (await call('GET', '/tokens')).json().find((t: { status: string }) => t.status !== 'NOT_INITIALIZED').tokenId;
    const made = (await call('POST', `/tokens/${tokenId}/keys-with-csrs`, { csr_generate_request: { key_usage_type: 'SIGNING', csr_format: 'DER' } })).json();
    const signCert = pki.issue(Buffer.from(made.csr.csr, 'base64'), 'sign');
    const imported = await call('POST', '/token-certificates', signCert);
    expect(imported.statusCode, imported.body).toBe(201);
    const hash: string = imported.json().hash;
    expect(hash.toLowerCase()).toBe(createHash('sha256').update(signCert).digest('hex'));
    expect((await call('GET', `/token-certificates/${hash}`)).json()).toMatchObject({ status: 'registered', active: true, ocspStatus: 'OCSP_RESPONSE_UNKNOWN' });

    const auth = (await call('POST', `/tokens/${tokenId}/keys-with-csrs`, { csr_generate_request: { key_usage_type: 'AUTHENTICATION', csr_format: 'DER' } })).json();
    const authHash: string = (await call('POST', '/token-certificates', pki.issue(Buffer.from(auth.csr.csr, 'base64'), 'auth'))).json().hash;
    const listed = (await call('GET', '/tokens', undefined, 'XROAD_SECURESERVER_OBSERVER')).json();
    const certs = listed.flatMap((t: { keys?: { certs: { hash: string }[] }[] }) => (t.keys ?? []).flatMap((k) => k.certs));
    // Imported inactive, as the reference's: DISABLED comes first; active but not registered: none.
    expect(certs.find((c: { hash: string }) => c.hash === authHash)).toMatchObject({ status: 'saved', active: false, ocspStatus: 'DISABLED' });
    expect((await call('PUT', `/token-certificates/${authHash}/activate`)).statusCode).toBe(200);
    expect((await call('GET', `/token-certificates/${authHash}`)).json()).toMatchObject({ status: 'saved', active: true, ocspStatus: null });
    expect((await call('GET', `/keys/${made.key.keyId}`)).json().certs[0]).toMatchObject({ hash, ocspStatus: 'OCSP_RESPONSE_UNKNOWN' });

    expect((await call('PUT', `/token-certificates/${hash}/disable`)).statusCode).toBe(200);
    expect((await call('GET', `/token-certificates/${hash}`)).json()).toMatchObject({ active: false, ocspStatus: 'DISABLED' });
  });
});

describe('initialisation warnings for the wizard', () => {
  it('InitializationService: init_unregistered_member and init_server_id_exists are WarningsDetected with the reference warnings; ignore_warnings initialises', async () => {
    const fresh = new ServerAdmin({ proxyDataDir: join(testbed.dir, 'fresh'), signerSocket: daemon.socketPath, globalConf: () => loadGlobalConf(pki.globalConfDir), logger: silentLogger() });
    try {
      const warningsOf = async (memberCode: string, serverCode: string) => {
        const err = await fresh.initialize({ ownerMemberClass: 'COM', ownerMemberCode: memberCode, serverCode }).then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(XrdError);
        expect((err as XrdError).code).toBe('WarningsDetected');
        return JSON.parse(String((err as XrdError).details.warningsJson));
      };
      expect(await warningsOf('9999', 'ssx')).toEqual([{ code: 'init_unregistered_member', metadata: ['LOCAL/COM/9999'] }]);
      expect(await warningsOf('1111', 'ss1')).toEqual([{ code: 'init_server_id_exists', metadata: ['LOCAL/COM/1111/ss1'] }]);
      expect((await fresh.initializationStatus()).serverCodeInitialized).toBe(false);
      expect(await fresh.initialize({ ownerMemberClass: 'COM', ownerMemberCode: '9999', serverCode: 'ssx', ignoreWarnings: true })).toMatchObject({ serverId: 'LOCAL/COM/9999/ssx', serverCodeInitialized: true });
    } finally {
      await fresh.close();
    }
  });
});
