/**
 * The one bounded HTTP client of the outgoing calls (src/platform/http-client.ts) against real
 * servers on loopback that trickle, flood or hang up, and the TSA client on top of it. The other
 * users have their attacks beside their own tests: configuration (test/globalconf/download.test.ts),
 * OCSP responders (test/trust/ocsp-status.test.ts), peers' OCSP (test/trust/auth-cert.test.ts),
 * management requests (test/unit/management-request.test.ts).
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchBounded } from '../../src/platform/http-client.ts';
import { ensureInternalTls } from '../../src/serverconf/internal-tls.ts';
import { requestTimestamp, TSA_MAX_RESPONSE_BYTES } from '../../src/signature/timestamp.ts';
import { eventually } from '../support/eventually.ts';
import { startFlooder, startTrickler, type HostileServer } from '../support/hostile-servers.ts';
import { freePort } from '../support/net.ts';

const MiB = 1024 * 1024;
const started: { close(): Promise<void> }[] = [];
afterAll(() => Promise.all(started.map((s) => s.close())));

async function hostile(server: Promise<HostileServer>): Promise<HostileServer> {
  const s = await server;
  started.push(s);
  return s;
}

async function serve(handler: RequestListener): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  started.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The hostile server noticed the client went away: nothing more is read from it. */
const clientLeft = (server: HostileServer) => eventually(async () => (server.ended > 0 ? true : undefined), 10_000, 'the client closing the connection');

describe('fetchBounded', () => {
  it('answers status, headers and the whole body, whatever the status; the request body is sent', async () => {
    const base = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.writeHead(req.url === '/missing' ? 404 : 200, { 'Content-Type': 'text/plain' }).end(`${req.method} ${Buffer.concat(chunks).toString()}`));
    });
    const ok = await fetchBounded(`${base}/echo`, { method: 'POST', body: Buffer.from('hello'), maxBytes: 100, deadlineMs: 10_000 });
    expect([ok.status, ok.headers['content-type'], ok.body.toString()]).toEqual([200, 'text/plain', 'POST hello']);
    const missing = await fetchBounded(`${base}/missing`, { maxBytes: 100, deadlineMs: 10_000 });
    expect([missing.status, missing.body.toString()]).toEqual([404, 'GET ']);
  });

  it('a server trickling its answer a byte at a time is cut off at the deadline: ResponseTimeout', async () => {
    const trickler = await hostile(startTrickler('application/octet-stream'));
    await expect(fetchBounded(`${trickler.base}/x?long=query`, { maxBytes: MiB, deadlineMs: 300 })).rejects.toMatchObject({
      code: 'ResponseTimeout',
      details: { target: `${trickler.base}/x`, timeoutMs: 300 },
    });
    await clientLeft(trickler);
  });

  it('a body growing past the cap is refused there, and the server is no longer read: ResponseTooLarge', async () => {
    const flooder = await hostile(startFlooder('application/octet-stream', 100 * MiB));
    await expect(fetchBounded(flooder.base, { maxBytes: MiB, deadlineMs: 60_000 })).rejects.toMatchObject({ code: 'ResponseTooLarge', details: { limit: MiB } });
    await clientLeft(flooder);
    // What the kernel's socket buffers took beyond the cap, nowhere near the 100 MiB on offer.
    expect(flooder.sent).toBeLessThan(20 * MiB);
  });

  it('a Content-Length past the cap is refused before the body is read', async () => {
    // Headers only: a client that waited for the body would meet the deadline instead.
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(2 * MiB) });
      res.flushHeaders();
    });
    await expect(fetchBounded(base, { maxBytes: MiB, deadlineMs: 5_000 })).rejects.toMatchObject({ code: 'ResponseTooLarge' });
  });

  it('an answer cut short by the server is a NetworkError, not a short body', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('only ten b', () => res.destroy());
    });
    await expect(fetchBounded(base, { maxBytes: MiB, deadlineMs: 10_000 })).rejects.toMatchObject({ code: 'NetworkError' });
  });

  it('https: only the pinned server certificate is accepted; a client certificate is presented when given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xrd-http-client-'));
    const [serverTls, clientTls, otherTls] = ['server', 'client', 'other'].map((name) => ensureInternalTls(join(dir, name)));
    // Answers the SHA-256 fingerprint of the client's certificate, or "none".
    const server = createHttpsServer({ cert: serverTls!.certPem, key: serverTls!.keyPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      res.end((req.socket as TLSSocket).getPeerCertificate().fingerprint256 ?? 'none');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    started.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const pinnedCert = new X509Certificate(serverTls!.certPem).raw;
    const bounds = { maxBytes: MiB, deadlineMs: 10_000 };

    const presented = await fetchBounded(url, { ...bounds, pinnedCert, clientTls: { cert: clientTls!.certPem, key: clientTls!.keyPem } });
    expect(presented.body.toString()).toBe(new X509Certificate(clientTls!.certPem).fingerprint256);
    expect((await fetchBounded(url, { ...bounds, pinnedCert })).body.toString()).toBe('none');
    await expect(fetchBounded(url, { ...bounds, pinnedCert: new X509Certificate(otherTls!.certPem).raw })).rejects.toMatchObject({ code: 'NetworkError', details: { reason: 'the server did not present the pinned TLS certificate' } });
  });

  it('nothing listening, or not an HTTP(S) URL: NetworkError', async () => {
    await expect(fetchBounded(`http://127.0.0.1:${await freePort()}/`, { maxBytes: MiB, deadlineMs: 10_000 })).rejects.toMatchObject({ code: 'NetworkError' });
    await expect(fetchBounded('ftp://127.0.0.1/conf', { maxBytes: MiB, deadlineMs: 10_000 })).rejects.toMatchObject({ code: 'NetworkError' });
    await expect(fetchBounded('http://127.0.0.1/', { maxBytes: MiB, deadlineMs: 10_000, pinnedCert: Buffer.alloc(1) })).rejects.toMatchObject({ code: 'NetworkError' });
    await expect(fetchBounded('http://127.0.0.1/', { maxBytes: MiB, deadlineMs: 10_000, clientTls: { cert: '', key: '' } })).rejects.toMatchObject({ code: 'NetworkError' });
  });
});

describe('TSA client (requestTimestamp)', () => {
  const tsa = (base: string) => [{ url: `${base}/tsa`, cert: Buffer.alloc(0) }];

  it(`TSA answering 100 MB is refused at ${TSA_MAX_RESPONSE_BYTES / MiB} MiB`, async () => {
    const flooder = await hostile(startFlooder('application/timestamp-reply', 100 * MiB));
    const failure = await requestTimestamp(tsa(flooder.base), Buffer.from('data')).catch((err: unknown) => err);
    expect(failure).toMatchObject({ code: 'TimestampingFailed', cause: { code: 'ResponseTooLarge', details: { limit: TSA_MAX_RESPONSE_BYTES } } });
    await clientLeft(flooder);
    expect(flooder.sent).toBeLessThan(20 * MiB);
  });

  it('a TSA trickling its answer is cut off at the deadline', async () => {
    const trickler = await hostile(startTrickler('application/timestamp-reply'));
    const failure = await requestTimestamp(tsa(trickler.base), Buffer.from('data'), 300).catch((err: unknown) => err);
    expect(failure).toMatchObject({ code: 'TimestampingFailed', cause: { code: 'ResponseTimeout' } });
  });
});
