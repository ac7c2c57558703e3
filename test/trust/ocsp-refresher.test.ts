/** The background OCSP refresh for our own certificates, against openssl ocsp on loopback. */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { OcspCache, certSha1 } from '../../src/trust/ocsp-cache.ts';
import { OcspRefresher } from '../../src/trust/ocsp-refresher.ts';
import { OcspStatusService } from '../../src/trust/ocsp-status.ts';
import { confWithCas } from '../support/conf.ts';
import { startOcspResponder, type TestResponder } from '../support/ocsp-responder.ts';
import { createTestCa, newKeyAndCsr, opensslOcspRespond, pemToDer, type TestCa } from '../support/openssl.ts';

let ca: TestCa;
let caDer: Buffer;
let responder: TestResponder;
let responderUp = true;
const leaves: Buffer[] = [];

beforeAll(async () => {
  ca = createTestCa('Refresh CA');
  caDer = pemToDer(ca.certPem);
  for (const name of ['sign', 'auth']) leaves.push(pemToDer(ca.issue(newKeyAndCsr(ca.dir, name, `/O=Test/CN=${name}`).csrPem, 'nonRepudiation')));
  responder = await startOcspResponder((request) => {
    if (!responderUp) throw new Error('responder is down');
    return opensslOcspRespond({ dir: ca.dir, caCertPath: ca.certPath, responderCertPath: ca.certPath, responderKeyPath: ca.keyPath, index: leaves.map((l) => ({ serial: new X509Certificate(l).serialNumber })), request });
  });
});

afterAll(() => responder.close());

function setup() {
  const conf = confWithCas([{ name: 'Refresh CA', top: caDer, ocsp: [{ url: responder.url }] }]);
  const cache = new OcspCache(join(mkdtempSync(join(tmpdir(), 'xrd-refresh-')), 'ocsp.sqlite'), silentLogger());
  const status = new OcspStatusService(() => conf, cache);
  return { conf, cache, status };
}

describe('OCSP refresher', () => {
  it('fetches a fresh response for each own certificate; one without a path fails alone', async () => {
    const { conf, cache, status } = setup();
    const stranger = createTestCa('Stranger');
    const strangerLeaf = pemToDer(stranger.issue(newKeyAndCsr(stranger.dir, 'x', '/CN=x').csrPem, 'nonRepudiation'));
    const refresher = new OcspRefresher(status, cache, () => conf, () => [...leaves, strangerLeaf].map((cert) => ({ cert, chain: [] })), silentLogger());
    expect(await refresher.runOnce()).toEqual({ refreshed: 2, failed: 1 });
    for (const leaf of leaves) expect(cache.get(certSha1(leaf))).toBeDefined();
  });

  it('retries after a failure on the retry interval, not the long one', async () => {
    const { conf, cache, status } = setup();
    responderUp = false;
    const refresher = new OcspRefresher(status, cache, () => conf, () => [{ cert: leaves[0]!, chain: [] }], silentLogger(), { intervalMs: 3_600_000, retryIntervalMs: 100 });
    refresher.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(cache.get(certSha1(leaves[0]!))).toBeUndefined();
      responderUp = true;
      for (let i = 0; i < 50 && !cache.get(certSha1(leaves[0]!)); i++) await new Promise((r) => setTimeout(r, 50));
      expect(cache.get(certSha1(leaves[0]!))).toBeDefined();
    } finally {
      responderUp = true;
      await refresher.stop();
    }
  });
});
