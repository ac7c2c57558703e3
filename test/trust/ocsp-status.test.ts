/**
 * OCSP status end to end on loopback: our requests to an `openssl ocsp` responder behind HTTP,
 * verification, the SQLite cache and the short-lived result cache; responders down or slow.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { OcspCache, certSha1 } from '../../src/trust/ocsp-cache.ts';
import { OcspStatusService } from '../../src/trust/ocsp-status.ts';
import { ResponderOutcomes } from '../../src/trust/ocsp-client.ts';
import { ocspDiagnostics } from '../../src/admin/diagnostics.ts';
import type { HealthView } from '../../src/signerapi/operations.ts';
import { confWithCas } from '../support/conf.ts';
import { startFlooder, startTrickler } from '../support/hostile-servers.ts';
import { deadUrl, startOcspResponder, type TestResponder } from '../support/ocsp-responder.ts';
import { createTestCa, newKeyAndCsr, opensslOcspRespond, pemToDer, type TestCa } from '../support/openssl.ts';
import { fromContainer } from '../support/vectors.ts';

let ca: TestCa;
let caDer: Buffer;
let responder: TestResponder;
const revoked = new Set<string>();
const leaves: Buffer[] = [];

function newLeaf(name: string): Buffer {
  const der = pemToDer(ca.issue(newKeyAndCsr(ca.dir, name, `/O=Test/CN=${name}`).csrPem, 'nonRepudiation'));
  leaves.push(der);
  return der;
}

beforeAll(async () => {
  ca = createTestCa('Status CA');
  caDer = pemToDer(ca.certPem);
  responder = await startOcspResponder((request) =>
    opensslOcspRespond({
      dir: ca.dir,
      caCertPath: ca.certPath,
      responderCertPath: ca.certPath,
      responderKeyPath: ca.keyPath,
      index: leaves.map((l) => {
        const serial = new X509Certificate(l).serialNumber;
        return { serial, revokedAt: revoked.has(serial) ? new Date(Date.now() - 1000) : undefined };
      }),
      request,
    }),
  );
});

afterAll(() => responder.close());

function service(urls: string[], options: { now?: () => Date; timeoutMs?: number; freshness?: number; maxResults?: number } = {}) {
  const conf = confWithCas([{ name: 'Status CA', top: caDer, ocsp: urls.map((url) => ({ url })) }], options.freshness ?? 3600);
  const cache = new OcspCache(join(mkdtempSync(join(tmpdir(), 'xrd-status-')), 'ocsp.sqlite'), silentLogger(), options.now);
  return { cache, status: new OcspStatusService(() => conf, cache, { now: options.now, maxResults: options.maxResults, fetch: { connectTimeoutMs: 1000, timeoutMs: options.timeoutMs ?? 2000 } }) };
}

describe('OCSP status', () => {
  it('fetches, verifies and caches; within a minute from memory, then from the SQLite cache', async () => {
    const leaf = newLeaf('cached');
    const start = Date.now();
    let now = new Date(start);
    const { status, cache } = service([responder.url], { now: () => now });
    const before = responder.hits;
    expect((await status.status(leaf, caDer)).certStatus.status).toBe('good');
    expect(responder.hits).toBe(before + 1);
    expect(cache.size).toBe(1);
    await status.status(leaf, caDer);
    expect(status.cachedStatus(certSha1(leaf))?.certStatus.status).toBe('good');
    now = new Date(start + 120_000);
    expect(status.cachedStatus(certSha1(leaf))).toBeUndefined();
    await status.status(leaf, caDer); // no longer in memory: the stored response is verified again
    expect(responder.hits).toBe(before + 1);
  });

  it('a stored response that does not verify is replaced by a fresh one', async () => {
    const leaf = newLeaf('replaced');
    const { status, cache } = service([responder.url]);
    cache.set([{ certSha1: certSha1(leaf), der: fromContainer('valid-signed-message.asice').ocsp }]);
    const before = responder.hits;
    expect((await status.status(leaf, caDer)).certStatus.status).toBe('good');
    expect(responder.hits).toBe(before + 1);
  });

  it('tries the responders in order: the first down, the second answers', async () => {
    const leaf = newLeaf('second-responder');
    const { status } = service([await deadUrl(), responder.url]);
    expect((await status.status(leaf, caDer)).certStatus.status).toBe('good');
  });

  it("records each responder's last outcome, which the admin's OCSP diagnostics show per CA (WAITING for one never asked)", async () => {
    const dead = await deadUrl();
    const never = await deadUrl();
    const outcomes = new ResponderOutcomes();
    const conf = confWithCas([{ name: 'Status CA', top: caDer, ocsp: [{ url: dead }, { url: responder.url }, { url: never }] }]);
    const cache = new OcspCache(join(mkdtempSync(join(tmpdir(), 'xrd-status-')), 'ocsp.sqlite'), silentLogger());
    const status = new OcspStatusService(() => conf, cache, { fetch: { connectTimeoutMs: 1000, onAnswer: outcomes.record } });
    await status.refresh(newLeaf('outcomes'), caDer);
    const next = new Date(Date.now() + 1_200_000).toISOString();
    const [ca] = ocspDiagnostics(conf, { ocspResponders: outcomes.view(), ocspNextRefreshAt: next } as HealthView);
    expect(ca!.distinguished_name).toBe(new X509Certificate(caDer).subject.split('\n').reverse().join(', '));
    expect(ca!.ocsp_responders).toEqual([
      { url: dead, status_class: 'FAIL', prev_update_at: expect.any(String), next_update_at: next, error: { code: 'NetworkError', message: expect.stringContaining(dead) } },
      { url: responder.url, status_class: 'OK', prev_update_at: expect.any(String), next_update_at: next },
      { url: never, status_class: 'WAITING', prev_update_at: null, next_update_at: next },
    ]);
  });

  it('responder down: a fresh cached response still serves; a stale one is a NetworkError', async () => {
    const leaf = newLeaf('down');
    let now = new Date();
    const { cache } = service([responder.url]);
    const warm = new OcspStatusService(() => confWithCas([{ name: 'Status CA', top: caDer, ocsp: [{ url: responder.url }] }]), cache);
    await warm.status(leaf, caDer);
    const dead = await deadUrl();
    const down = new OcspStatusService(() => confWithCas([{ name: 'Status CA', top: caDer, ocsp: [{ url: dead }] }]), cache, { now: () => now, fetch: { connectTimeoutMs: 500 } });
    expect((await down.status(leaf, caDer)).certStatus.status).toBe('good');
    now = new Date(now.getTime() + 2 * 3600_000);
    await expect(down.status(leaf, caDer)).rejects.toMatchObject({ code: 'NetworkError', faultCode: 'Signer.NetworkError' });
  });

  it('a slow responder times out with a coded error', async () => {
    const slow = await startOcspResponder(() => undefined);
    try {
      const { status } = service([slow.url], { timeoutMs: 200 });
      await expect(status.status(newLeaf('slow'), caDer)).rejects.toMatchObject({ code: 'NetworkError', cause: { code: 'ResponseTimeout', details: { timeoutMs: 200 } } });
    } finally {
      await slow.close();
    }
  });

  it('OCSP responder trickle: cut off at the deadline, where an idle timeout would wait for ever; the next responder answers', async () => {
    const trickler = await startTrickler('application/ocsp-response');
    try {
      const leaf = newLeaf('trickle');
      await expect(service([trickler.base], { timeoutMs: 300 }).status.status(leaf, caDer)).rejects.toMatchObject({ code: 'NetworkError', cause: { code: 'ResponseTimeout' } });
      expect((await service([trickler.base, responder.url], { timeoutMs: 300 }).status.status(leaf, caDer)).certStatus.status).toBe('good');
    } finally {
      await trickler.close();
    }
  });

  it('an OCSP responder flooding its answer is refused at 1 MiB', async () => {
    const flooder = await startFlooder('application/ocsp-response', 100 * 1024 * 1024);
    try {
      await expect(service([flooder.base]).status.status(newLeaf('flood'), caDer)).rejects.toMatchObject({ code: 'NetworkError', cause: { code: 'ResponseTooLarge', details: { limit: 1024 * 1024 } } });
    } finally {
      await flooder.close();
    }
  });

  it('a revoked certificate is CertValidation, remembered without asking again', async () => {
    const leaf = newLeaf('revoked');
    revoked.add(new X509Certificate(leaf).serialNumber);
    const { status } = service([responder.url]);
    const before = responder.hits;
    await expect(status.status(leaf, caDer)).rejects.toMatchObject({ code: 'CertValidation' });
    await expect(status.status(leaf, caDer)).rejects.toMatchObject({ code: 'CertValidation' });
    expect(responder.hits).toBe(before + 1);
  });

  it('many distinct certificates asked for OCSP do not grow the status cache without bound', async () => {
    const asked = ['many-1', 'many-2', 'many-3', 'many-4'].map(newLeaf);
    const { status } = service([responder.url], { maxResults: 2 });
    for (const leaf of asked) expect((await status.status(leaf, caDer)).certStatus.status).toBe('good');
    expect(status.resultsHeld).toBe(2);
    // The oldest results made room; the latest are still answered from memory.
    expect(asked.map((leaf) => status.cachedStatus(certSha1(leaf))?.certStatus.status)).toEqual([undefined, undefined, 'good', 'good']);
  });
});
