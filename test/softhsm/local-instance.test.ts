/**
 * A local instance from the test PKI, end to end: `xrd testpki` makes the CAs and the configuration;
 * the signer's CSRs become sign and auth certificates; the auth certificate is registered in the
 * configuration; the OCSP responder serves the signer through the intermediate CA's entry; the TSA's
 * tokens verify with `openssl ts -verify`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { parseOcspResponse } from '../../src/trust/ocsp.ts';
import { certSha1 } from '../../src/trust/ocsp-cache.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { freePort } from '../support/net.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
let testbed: Testbed;
let pkiDir: string;
let served: Awaited<ReturnType<LocalPki['serve']>>;
let daemon: SignerDaemon;
let client: SignerClient;

beforeAll(async () => {
  testbed = createTestbed();
  pkiDir = join(testbed.dir, 'local');
  const init = JSON.parse(
    execFileSync('node', [XRD, 'testpki', 'init', '--dir', pkiDir, '--instance', 'LOCAL', '--ocsp-port', String(await freePort()), '--tsa-port', String(await freePort()), '--conf-port', String(await freePort()), '--management-port', String(await freePort()), '--json']).toString(),
  );
  expect(init.instance).toBe('LOCAL');
  served = await LocalPki.open(pkiDir).serve();
  // The signer starts from the anchor alone: its configuration is downloaded from the local source.
  daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni, globalConfDir: join(testbed.dataDir, 'globalconf'), anchorFile: init.anchor }, silentLogger());
  client = await SignerClient.connect(daemon.socketPath);
  const token = await client.call('initToken', { label: 'local', soPin: '0000', userPin: '4321' });
  await client.call('activateToken', { token: token.tokenId, pin: '4321' });
});

afterAll(async () => {
  client?.close();
  await daemon?.close();
  await served?.close();
  testbed.cleanup();
});

describe('local instance from the test PKI', () => {
  it('has a configuration the signer downloaded from the anchor, which xrd conf show reads: CA, TSA, two servers', async () => {
    for (let i = 0; i < 100 && !existsSync(join(testbed.dataDir, 'globalconf', 'instance-identifier')); i++) await new Promise((r) => setTimeout(r, 50));
    const view = JSON.parse(execFileSync('node', [XRD, 'conf', 'show', '--conf', join(testbed.dataDir, 'globalconf'), '--json']).toString());
    expect(view.expiresAt).toBeDefined();
    const own = view.instances[0];
    expect(own.approvedCas[0].intermediateCas[0].ocsp[0].url).toBe(served.ocspUrl);
    expect(own.approvedTsas[0].url).toBe(served.tsaUrl);
    expect(own.securityServers.map((s: { id: string }) => s.id)).toEqual(['LOCAL/COM/1111/ss1', 'LOCAL/COM/2222/ss2']);
  });

  it("issues the signer's CSRs; the auth certificate is registered for its server; OCSP comes from the local responder", async () => {
    const auth = await client.call('generateKey', { token: 'local', algorithm: 'RSA', usage: 'AUTHENTICATION' });
    const authCsr = join(testbed.dir, 'auth.csr');
    writeFileSync(authCsr, (await client.call('generateCsr', { keyId: auth.keyId, serverId: 'LOCAL/COM/1111/ss1' })).csr);
    const authPem = join(testbed.dir, 'auth.pem');
    execFileSync('node', [XRD, 'testpki', 'issue', '--dir', pkiDir, '--csr', authCsr, '--usage', 'auth', '--server', 'LOCAL/COM/1111/ss1', '--out', authPem]);
    const authCert = Buffer.from(readFileSync(authPem, 'utf8').replace(/-----[^-]+-----|\s+/g, ''), 'base64');
    expect(loadGlobalConf(join(pkiDir, 'globalconf')).isRegisteredAuthCert({ instance: 'LOCAL', memberClass: 'COM', memberCode: '1111' }, 'ss1', authCert)).toBe(true);
    expect((await client.call('importCert', { cert: readFileSync(authPem, 'utf8') })).status).toBe('saved');

    const sign = await client.call('generateKey', { token: 'local', algorithm: 'EC', usage: 'SIGNING' });
    const signCsr = join(testbed.dir, 'sign.csr');
    writeFileSync(signCsr, (await client.call('generateCsr', { keyId: sign.keyId, memberId: 'LOCAL/COM/1111', subject: 'C=FI, O=Provider Oy' })).csr);
    const signPem = join(testbed.dir, 'sign.pem');
    execFileSync('node', [XRD, 'testpki', 'issue', '--dir', pkiDir, '--csr', signCsr, '--usage', 'sign', '--out', signPem]);
    const imported = await client.call('importCert', { cert: readFileSync(signPem, 'utf8') });
    let response: string | null = null;
    for (let i = 0; i < 100 && !response; i++) {
      response = (await client.call('getOcspResponses', { certHashes: [imported.sha1] })).responses[0] ?? null;
      if (!response) await new Promise((r) => setTimeout(r, 50));
    }
    expect(parseOcspResponse(Buffer.from(response!, 'base64')).responses[0]!.certStatus).toEqual({ status: 'good' });
    // The issuing CA's own status comes along (signed by the root), for the signature's chain.
    const intermediate = new X509Certificate(readFileSync(join(pkiDir, 'pki', 'ca.cert.pem'))).raw;
    const [chainResponse] = (await client.call('getOcspResponses', { certHashes: [certSha1(intermediate)] })).responses;
    expect(parseOcspResponse(Buffer.from(chainResponse!, 'base64')).responses[0]!.certStatus).toEqual({ status: 'good' });
  });

  it("the TSA's tokens verify with openssl ts -verify against the instance's root", async () => {
    const query = join(testbed.dir, 'q.tsq');
    const reply = join(testbed.dir, 'q.tsr');
    writeFileSync(join(testbed.dir, 'data.bin'), 'signature value bytes');
    execFileSync('openssl', ['ts', '-query', '-data', join(testbed.dir, 'data.bin'), '-sha512', '-cert', '-out', query]);
    await promisify(execFile)('curl', ['-s', '-H', 'Content-Type: application/timestamp-query', '--data-binary', `@${query}`, '-o', reply, served.tsaUrl]);
    const out = execFileSync('openssl', ['ts', '-verify', '-in', reply, '-queryfile', query, '-CAfile', join(pkiDir, 'pki', 'root.cert.pem')]).toString();
    expect(out).toContain('Verification: OK');
  });
});
