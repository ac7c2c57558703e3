/**
 * The signer keeps OCSP responses for its own certificates: with a global configuration naming the
 * CA and its responder (openssl ocsp on loopback), importing a signing certificate fetches its
 * response, which getOcspResponses then serves.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { writeGlobalConf } from '../../src/globalconf/writer.ts';
import { parseOcspResponse } from '../../src/trust/ocsp.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { confWithCas } from '../support/conf.ts';
import { startOcspResponder, type TestResponder } from '../support/ocsp-responder.ts';
import { createTestCa, opensslOcspRespond, pemToDer, type TestCa } from '../support/openssl.ts';

let testbed: Testbed;
let ca: TestCa;
let responder: TestResponder;
let daemon: SignerDaemon;
let client: SignerClient;
const issued: Buffer[] = [];

beforeAll(async () => {
  testbed = createTestbed();
  ca = createTestCa('Signer OCSP CA');
  responder = await startOcspResponder((request) =>
    opensslOcspRespond({ dir: ca.dir, caCertPath: ca.certPath, responderCertPath: ca.certPath, responderKeyPath: ca.keyPath, index: issued.map((c) => ({ serial: new X509Certificate(c).serialNumber })), request }),
  );
  const confDir = join(testbed.dir, 'globalconf');
  writeGlobalConf(confDir, confWithCas([{ name: 'Signer OCSP CA', top: pemToDer(ca.certPem), ocsp: [{ url: responder.url }] }]).own);
  daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni, globalConfDir: confDir }, silentLogger());
  client = await SignerClient.connect(daemon.socketPath);
});

afterAll(async () => {
  client.close();
  await daemon.close();
  await responder.close();
  testbed.cleanup();
});

describe('signer and OCSP', () => {
  it('fetches the OCSP response of a certificate as soon as it is imported', async () => {
    const token = await client.call('initToken', { label: 'ocsp', soPin: '0000', userPin: '1234' });
    await client.call('activateToken', { token: token.tokenId, pin: '1234' });
    const key = await client.call('generateKey', { token: token.tokenId, algorithm: 'EC', usage: 'SIGNING' });
    const csr = await client.call('generateCsr', { keyId: key.keyId, memberId: 'TEST/COM/1' });
    const certPem = ca.issue(csr.csr, 'nonRepudiation');
    issued.push(pemToDer(certPem));
    const cert = await client.call('importCert', { cert: certPem });
    let response: string | null = null;
    for (let i = 0; i < 100 && !response; i++) {
      response = (await client.call('getOcspResponses', { certHashes: [cert.sha1] })).responses[0] ?? null;
      if (!response) await new Promise((r) => setTimeout(r, 50));
    }
    expect(response).not.toBeNull();
    expect(parseOcspResponse(Buffer.from(response!, 'base64')).responses[0]!.certStatus).toEqual({ status: 'good' });
  });
});
