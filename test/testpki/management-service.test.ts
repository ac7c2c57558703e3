/**
 * The test PKI's management-service stand-in, as a new security server meets it: keys on a SoftHSM
 * token behind the signer daemon, certificates from the test CA, the registration request signed
 * through the signer's `sign` operation and POSTed; the request waits as SUBMITTED until
 * `xrd testpki approve` (another process) registers the server in the global configuration.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigurationAnchor } from '../../src/globalconf/anchor.ts';
import { downloadGlobalConf } from '../../src/globalconf/download.ts';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { formatClientId, parseClientId, parseSecurityServerId } from '../../src/protocol/identifiers.ts';
import { buildAuthCertRegRequest, sendManagementRequest, type BuiltManagementRequest, type ManagementRequestSigner } from '../../src/protocol/management-request.ts';
import { SignerClient, waitForOcspResponses } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { certSha1 } from '../../src/trust/ocsp-cache.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { freePort } from '../support/net.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const run = promisify(execFile);

let testbed: Testbed;
let pki: LocalPki;
let served: Awaited<ReturnType<LocalPki['serve']>>;
let url: string;
let daemon: SignerDaemon;
let client: SignerClient;
let request: BuiltManagementRequest;
let authCert: Buffer;

const SERVER = 'LOCAL/COM/4444/ss3';

/** What the admin service hands the builder: the signer daemon's `sign` with a SHA-512 digest. */
const signerFor = (keyId: string): ManagementRequestSigner => ({
  algorithmId: 'SHA512withRSA',
  sign: async (digest) => Buffer.from((await client.call('sign', { keyId, algorithm: 'SHA512withRSA', digest: digest.toString('base64') })).signature, 'base64'),
});

async function xrd(...args: string[]): Promise<{ code: number; json: Record<string, unknown> }> {
  try {
    const { stdout } = await run(process.execPath, [XRD, 'testpki', ...args, '--dir', pki.dir, '--json']);
    return { code: 0, json: JSON.parse(stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, json: JSON.parse(e.stdout) };
  }
}

beforeAll(async () => {
  testbed = createTestbed();
  pki = LocalPki.init(join(testbed.dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort(), managementPort: await freePort() });
  served = await pki.serve();
  url = served.managementUrl!;
  daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni, globalConfDir: pki.globalConfDir }, silentLogger());
  client = await SignerClient.connect(daemon.socketPath);
  const token = await client.call('initToken', { label: 'ss3', soPin: '0000', userPin: '4321' });
  await client.call('activateToken', { token: token.tokenId, pin: '4321' });

  const signKey = await client.call('generateKey', { token: token.tokenId, algorithm: 'RSA', usage: 'SIGNING' });
  const signCsr = await client.call('generateCsr', { keyId: signKey.keyId, memberId: 'LOCAL/COM/4444', format: 'DER' });
  const ownerCert = pki.issue(Buffer.from(signCsr.csr, 'base64'), 'sign');
  await client.call('importCert', { cert: ownerCert.toString('base64') });
  const authKey = await client.call('generateKey', { token: token.tokenId, algorithm: 'RSA', usage: 'AUTHENTICATION' });
  const authCsr = await client.call('generateCsr', { keyId: authKey.keyId, usage: 'AUTHENTICATION', serverId: SERVER, format: 'DER' });
  authCert = pki.issue(Buffer.from(authCsr.csr, 'base64'), 'auth');
  await client.call('importCert', { cert: authCert.toString('base64') });
  const [ownerCertOcsp] = await waitForOcspResponses(client, [certSha1(ownerCert)], 'owner certificate');

  const management = loadGlobalConf(pki.globalConfDir).privateParams!.managementService!;
  request = await buildAuthCertRegRequest(
    { serverId: parseSecurityServerId(SERVER), address: '127.0.0.3', authCert, ownerCert, ownerCertOcsp: ownerCertOcsp!, managementService: management.managementRequestServiceProviderId! },
    { auth: signerFor(authKey.keyId), owner: signerFor(signKey.keyId) },
  );
});

afterAll(async () => {
  client?.close();
  await daemon?.close();
  await served?.close();
  testbed?.cleanup();
});

describe('management service stand-in', () => {
  it('is there only when the PKI was given a port for it', () => {
    const without = LocalPki.init(join(testbed.dir, 'no-management'), { ocspPort: 1, tsaPort: 2, confPort: 3 });
    expect(without.managementServiceUrl).toBeUndefined();
    expect(loadGlobalConf(without.globalConfDir).privateParams).toMatchObject({ instanceIdentifier: 'LOCAL', managementService: undefined });
  });

  it('names itself in the private parameters security servers read', () => {
    const management = loadGlobalConf(pki.globalConfDir).privateParams!.managementService!;
    expect(management.authCertRegServiceAddress).toBe(url);
    expect(formatClientId(management.managementRequestServiceProviderId!)).toBe('LOCAL/COM/0000/MANAGEMENT');
  });

  it('keeps a verified registration as SUBMITTED, visible to another process, and answers its requestId', async () => {
    const { requestId } = await sendManagementRequest(url, request);
    expect(requestId).toBe('1');
    const hash = createHash('sha256').update(authCert).digest('hex').toUpperCase();
    expect(LocalPki.open(pki.dir).managementRequests()).toEqual([
      { id: '1', type: 'authCertReg', serverId: SERVER, address: '127.0.0.3', authCertHash: hash, receivedAt: expect.any(String), status: 'SUBMITTED' },
    ]);
    const listed = await xrd('requests');
    expect(listed.code).toBe(0);
    expect(listed.json).toMatchObject({ requests: [{ id: '1', status: 'SUBMITTED', serverId: SERVER }] });
    // Not in the configuration until approved.
    expect(loadGlobalConf(pki.globalConfDir).securityServer(parseSecurityServerId('LOCAL/COM/4444/ss3'))).toBeUndefined();
  });

  it('answers a second request for a pending certificate, and a tampered one, with coded SOAP faults', async () => {
    await expect(sendManagementRequest(url, request)).rejects.toMatchObject({ code: 'ManagementRequestFailed', details: { faultCode: 'Server.ManagementRequestExists' } });
    const tampered = { ...request, body: Buffer.from(request.body.toString('latin1').replace('127.0.0.3<', '127.0.0.4<'), 'latin1') };
    await expect(sendManagementRequest(url, tampered)).rejects.toMatchObject({
      code: 'ManagementRequestFailed',
      details: { faultCode: 'Server.InvalidSignatureValue', faultString: 'Signature is not valid: Auth signature verification failed' },
    });
    expect(LocalPki.open(pki.dir).managementRequests()).toHaveLength(1);
  });

  it('xrd testpki approve registers the server with the certificate hash and makes its owner a security server owner', async () => {
    const approved = await xrd('approve', '1');
    expect(approved.code).toBe(0);
    expect(approved.json).toMatchObject({ id: '1', status: 'APPROVED', serverId: SERVER });

    // As a security server gets it: downloaded from the configuration source and verified.
    const downloaded = await downloadGlobalConf(loadConfigurationAnchor(pki.anchorFile), join(testbed.dir, 'downloaded'));
    for (const conf of [loadGlobalConf(pki.globalConfDir), downloaded]) {
      const server = conf.securityServer(parseSecurityServerId('LOCAL/COM/4444/ss3'));
      expect(server).toMatchObject({ address: '127.0.0.3', clients: [] });
      expect(server!.authCertHashes).toEqual([createHash('sha256').update(authCert).digest()]);
      expect(conf.isRegisteredAuthCert(parseClientId('LOCAL/COM/4444'), 'ss3', authCert)).toBe(true);
      const owners = conf.own.globalGroups.find((g) => g.groupCode === 'security-server-owners')!;
      expect(owners.members.map(formatClientId)).toContain('LOCAL/COM/4444');
      // The rewrite keeps the management service in the private parameters.
      expect(conf.privateParams?.managementService?.authCertRegServiceAddress).toBe(url);
    }
    expect(LocalPki.open(pki.dir).managementRequests()[0]!.status).toBe('APPROVED');
  });

  it('refuses to approve twice or an unknown request, and the registered certificate from then on', async () => {
    expect(await xrd('approve', '1')).toMatchObject({ code: 1, json: { error: { code: 'ManagementRequestNotPending' } } });
    expect(await xrd('approve', '99')).toMatchObject({ code: 1, json: { error: { code: 'ManagementRequestNotFound' } } });
    await expect(sendManagementRequest(url, request)).rejects.toMatchObject({ code: 'ManagementRequestFailed', details: { faultCode: 'Server.AuthCertAlreadyRegistered' } });
  });

  it('keeps an approval made by another process when this process changes the PKI state', () => {
    // The CLI wrote state.json; this process's LocalPki must not write its older copy over it.
    pki.revoke(authCert);
    expect(LocalPki.open(pki.dir).managementRequests()[0]!.status).toBe('APPROVED');
  });
});
