/** The OCSP endpoint for peer security servers, asked by curl as a peer would. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { OcspCache, certSha1 } from '../../src/trust/ocsp-cache.ts';
import { parseOcspMultipart, startOcspEndpoint } from '../../src/trust/ocsp-endpoint.ts';
import { parseOcspResponse } from '../../src/trust/ocsp.ts';
import { fromContainer } from '../support/vectors.ts';

const { cert, ocsp } = fromContainer('valid-signed-message.asice');
let server: Server;
let base: string;

beforeAll(async () => {
  const cache = new OcspCache(join(mkdtempSync(join(tmpdir(), 'xrd-endpoint-')), 'ocsp.sqlite'), silentLogger());
  cache.set([{ certSha1: certSha1(cert), der: ocsp }]);
  server = await startOcspEndpoint(cache, '127.0.0.1', 0);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** curl's answer: status, content type and body bytes (asynchronously: the server runs in this process). */
async function curl(query: string): Promise<{ status: number; contentType: string; body: Buffer }> {
  const { stdout: out } = await promisify(execFile)('curl', ['-s', '-o', '-', '-w', '\n%{http_code} %{content_type}', `${base}${query}`], { encoding: 'buffer', maxBuffer: 10 * 1024 * 1024 });
  const cut = out.lastIndexOf(0x0a);
  const [status, ...type] = out.subarray(cut + 1).toString().split(' ');
  return { status: Number(status), contentType: type.join(' '), body: out.subarray(0, cut) };
}

describe('OCSP endpoint', () => {
  it('answers the cached responses as multipart/related, leaving out the ones it has not', async () => {
    const { status, contentType, body } = await curl(`?cert=${certSha1(cert)}&cert=${'0'.repeat(40)}`);
    expect(status).toBe(200);
    expect(contentType).toMatch(/^multipart\/related;.*boundary=/);
    const parts = parseOcspMultipart(contentType, body);
    expect(parts).toHaveLength(1);
    expect(parts[0]!.equals(ocsp)).toBe(true);
    expect(parseOcspResponse(parts[0]!).responses).toHaveLength(1);
  });

  it('answers HEAD (a liveness probe), ignores the cert_hash parameters newer reference clients add, refuses other methods', async () => {
    expect((await fetch(base, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(base, { method: 'POST', body: 'x' })).status).toBe(405);
    const { status, contentType, body } = await curl(`?cert=${certSha1(cert)}&cert_hash=${'b'.repeat(64)}`);
    expect(status).toBe(200);
    expect(parseOcspMultipart(contentType, body)).toHaveLength(1);
  });

  it('refuses requests without proper cert parameters', async () => {
    expect((await curl('')).status).toBe(400);
    expect((await curl('?cert=xyz')).status).toBe(400);
    expect((await curl(`?${Array.from({ length: 65 }, () => `cert=${'a'.repeat(40)}`).join('&')}`)).status).toBe(400);
  });
});
