/**
 * The proxy's health check (port 5588 in the reference) on a local instance, as a load balancer sees
 * it: 200 while the server can mediate messages, 500 naming the failed check when its token is
 * logged out, when its authentication certificate's OCSP response has gone stale, and when its
 * global configuration has expired — and 200 again once each is put right.
 */
import { request } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { writeGlobalConf } from '../../src/globalconf/writer.ts';
import { type LocalInstance, type LocalServer } from '../../src/dev/localinstance/local-instance.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';

let instance: LocalInstance;

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

function get(server: LocalServer, options: { json?: 'query' | 'accept' } = {}): Promise<Answer> {
  const url = new URL(server.healthUrl);
  if (options.json === 'query') url.searchParams.set('format', 'json');
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: options.json === 'accept' ? { Accept: 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Asks until the answer has `status` (bounded); returns that answer or fails with the last one. */
async function until(server: LocalServer, status: number, timeoutMs = 60_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await get(server);
    if (answer.status === status) return answer;
    if (Date.now() > deadline) throw new Error(`health of ${server.serverId} still ${answer.status} after ${timeoutMs} ms: ${answer.body}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function signerCall<T>(server: LocalServer, fn: (c: SignerClient) => Promise<T>): Promise<T> {
  const client = await SignerClient.connect(server.signerSocket);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** Needs `--health-cache-ms 200` from the file that boots the instance (a short cache so the test sees changes soon; the default is 2 s). */
beforeAll(async () => {
  instance = await sharedLocalInstance();
}, BOOT_TIMEOUT_MS);

describe('proxy health check', () => {
  it('answers 200 OK on both servers when everything is in order, with every check in the JSON form', async () => {
    for (const server of [instance.consumer, instance.provider]) {
      const text = await get(server);
      expect(text).toMatchObject({ status: 200, body: 'OK\n' });
      expect(text.contentType).toMatch(/^text\/plain/);
      for (const json of ['query', 'accept'] as const) {
        const answer = await get(server, { json });
        expect(answer.status).toBe(200);
        expect(answer.contentType).toMatch(/^application\/json/);
        const report = JSON.parse(answer.body);
        expect(report.status).toBe('ok');
        expect(report.checks.map((c: { name: string }) => c.name).sort()).toEqual(['authKey', 'authOcsp', 'database', 'globalConf']);
        expect(report.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
      }
    }
  });

  it('a logged-out token fails the authentication key check until the token is logged in again', async () => {
    const server = instance.consumer;
    await signerCall(server, (c) => c.call('deactivateToken', { token: server.tokenId }));
    try {
      const failing = await until(server, 500);
      expect(failing.body).toMatch(/^authKey: authentication key or certificate not usable: TokenNotActive: Token .* is not active/m);
      const report = JSON.parse((await get(server, { json: 'query' })).body);
      expect(report.status).toBe('failing');
      expect(report.checks.find((c: { name: string }) => c.name === 'authKey')).toMatchObject({ ok: false, reason: expect.stringMatching(/TokenNotActive/) });
      expect(report.checks.find((c: { name: string }) => c.name === 'database')).toMatchObject({ ok: true });
      // The other server is not concerned.
      expect((await get(instance.provider)).status).toBe(200);
    } finally {
      await signerCall(server, (c) => c.call('activateToken', { token: server.tokenId, pin: instance.pinOf(server) }));
    }
    expect((await until(server, 200)).body).toBe('OK\n');
  });

  it('a stale OCSP response for the authentication certificate fails the OCSP check until responses are fresh again', async () => {
    const confDir = instance.pki.globalConfDir;
    const conf = loadGlobalConf(confDir);
    // The responder down so the signer cannot fetch a newer response, and a freshness of 1 s.
    await instance.stopPkiServices();
    try {
      writeGlobalConf(confDir, { ...conf.own, ocspFreshnessSeconds: 1 }, conf.privateParams, conf.expiresAt);
      const failing = await until(instance.consumer, 500);
      // Too old, or already pruned from the signer's cache as too old.
      expect(failing.body).toMatch(/^authOcsp: authentication certificate OCSP status: .*(OCSP response is too old|no OCSP response cached)/m);
      expect(failing.body).not.toMatch(/^authKey:/m);
    } finally {
      writeGlobalConf(confDir, conf.own, conf.privateParams, conf.expiresAt);
      await instance.startPkiServices();
    }
    expect((await until(instance.consumer, 200)).body).toBe('OK\n');
  });

  it('an expired global configuration fails the configuration check until a current one is in place', async () => {
    const confDir = instance.pki.globalConfDir;
    const conf = loadGlobalConf(confDir);
    try {
      writeGlobalConf(confDir, conf.own, conf.privateParams, new Date(Date.now() - 60_000));
      const failing = await until(instance.provider, 500);
      expect(failing.body).toMatch(/^globalConf: global configuration expired: OutdatedGlobalConf: Global configuration of LOCAL expired at /m);
      const report = JSON.parse((await get(instance.provider, { json: 'accept' })).body);
      expect(report.checks.find((c: { name: string }) => c.name === 'globalConf')).toMatchObject({ ok: false });
    } finally {
      writeGlobalConf(confDir, conf.own, conf.privateParams, conf.expiresAt);
    }
    expect((await until(instance.provider, 200)).body).toBe('OK\n');
  });
});
