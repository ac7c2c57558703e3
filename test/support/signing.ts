/**
 * What the SoftHSM signature tests share: a testbed, the test PKI served, a signer daemon with one
 * logged-in token, and signing keys on it certified by the test CA with their OCSP responses.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadGlobalConf, type GlobalConf } from '../../src/globalconf/global-conf.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import type { SigningKey } from '../../src/signature/message-signer.ts';
import { SignerClient, waitForOcspResponses } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { certSha1 } from '../../src/trust/ocsp-cache.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { freePort } from './net.ts';

export interface SigningBed {
  readonly testbed: Testbed;
  readonly pki: LocalPki;
  /** The PKI's OCSP responder, TSA and configuration source. */
  readonly served: Awaited<ReturnType<LocalPki['serve']>>;
  readonly conf: GlobalConf;
  readonly daemon: SignerDaemon;
  readonly client: SignerClient;
  /** The token's label, which also names it in signer calls. */
  readonly token: string;
  close(): Promise<void>;
}

export async function startSigningBed(token: string): Promise<SigningBed> {
  const testbed = createTestbed();
  const pki = LocalPki.init(join(testbed.dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort() });
  const served = await pki.serve();
  const daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni, globalConfDir: pki.globalConfDir }, silentLogger());
  const client = await SignerClient.connect(daemon.socketPath);
  const initialised = await client.call('initToken', { label: token, soPin: '0000', userPin: '4321' });
  await client.call('activateToken', { token: initialised.tokenId, pin: '4321' });
  return {
    testbed,
    pki,
    served,
    conf: loadGlobalConf(pki.globalConfDir),
    daemon,
    client,
    token,
    close: async () => {
      client.close();
      await daemon.close();
      await served.close();
      testbed.cleanup();
    },
  };
}

/** A signing key on the bed's token for a member, its certificate from the test CA, OCSP responses from the signer's cache. */
export async function signingKeyOnToken(bed: SigningBed, memberId: string, algorithm: 'RSA' | 'EC' = 'RSA', signAlgorithm = 'SHA512withRSA'): Promise<SigningKey> {
  const { client, pki } = bed;
  const key = await client.call('generateKey', { token: bed.token, algorithm, usage: 'SIGNING' });
  const csr = await client.call('generateCsr', { keyId: key.keyId, memberId, format: 'DER' });
  const cert = pki.issue(Buffer.from(csr.csr, 'base64'), 'sign');
  await client.call('importCert', { cert: cert.toString('base64') });
  const ca = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw;
  const ocspResponses = await waitForOcspResponses(client, [certSha1(cert), certSha1(ca)], 'test signer');
  return { keyId: key.keyId, algorithm: signAlgorithm, cert, intermediateCerts: [ca], ocspResponses, batchSigningEnabled: true };
}
