/** The test PKI's timestamping authority, asked with requests made by `openssl ts -query` and judged by `openssl ts -verify`. */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toPem } from '../../src/certificates/csr.ts';
import { EKU, createAuthority, createRootCa } from '../../src/dev/testpki/certificate-authority.ts';
import { answerTimestampRequest, startTimestampAuthority } from '../../src/dev/testpki/timestamp-authority.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-tsa-'));
const root = createRootCa([['CN', 'TSA Root']]);
const tsa = createAuthority(root, [['CN', 'Local TSA']], { keyUsage: ['digitalSignature'], extendedKeyUsage: [EKU.timeStamping], criticalExtendedKeyUsage: true });
const rootPem = join(dir, 'root.pem');
const tsaPem = join(dir, 'tsa.pem');
writeFileSync(rootPem, toPem(root.cert, 'CERTIFICATE'));
writeFileSync(tsaPem, toPem(tsa.cert, 'CERTIFICATE'));
const data = join(dir, 'signature-value.bin');
writeFileSync(data, 'the bytes a timestamp covers');
let server: Server;
let url: string;

beforeAll(async () => {
  server = await startTimestampAuthority({ tsa }, '127.0.0.1', 0);
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** `openssl ts -verify` on a reply to a request; "Verification: OK" or the error text. */
function verify(reply: string, query: string, untrusted: string[] = []): string {
  try {
    return execFileSync('openssl', ['ts', '-verify', '-in', reply, '-queryfile', query, '-CAfile', rootPem, ...untrusted.flatMap((u) => ['-untrusted', u])], { stdio: 'pipe' }).toString();
  } catch (err) {
    return String((err as { stderr: Buffer }).stderr) + String((err as { stdout: Buffer }).stdout);
  }
}

describe('test PKI timestamping authority', () => {
  it('answers an openssl request over HTTP (curl) with a token openssl ts -verify accepts', async () => {
    const query = join(dir, 'with-cert.tsq');
    const reply = join(dir, 'with-cert.tsr');
    execFileSync('openssl', ['ts', '-query', '-data', data, '-sha256', '-cert', '-out', query]);
    await promisify(execFile)('curl', ['-s', '-H', 'Content-Type: application/timestamp-query', '--data-binary', `@${query}`, '-o', reply, url]);
    expect(verify(reply, query)).toContain('Verification: OK');
  });

  it('leaves its certificate out unless asked; with it supplied the token still verifies, nonce included', () => {
    const query = join(dir, 'no-cert.tsq');
    const reply = join(dir, 'no-cert.tsr');
    execFileSync('openssl', ['ts', '-query', '-data', data, '-sha256', '-out', query]);
    writeFileSync(reply, answerTimestampRequest(readFileSync(query), { tsa }));
    expect(verify(reply, query)).not.toContain('Verification: OK');
    expect(verify(reply, query, [tsaPem])).toContain('Verification: OK');
    const text = execFileSync('openssl', ['ts', '-reply', '-in', reply, '-text']).toString();
    expect(text).toMatch(/Status: Granted/);
    expect(text).toMatch(/Nonce: 0x/);
  });

  it('a token for other data does not verify; garbage is rejected', () => {
    const query = join(dir, 'other.tsq');
    writeFileSync(join(dir, 'other.bin'), 'other bytes');
    execFileSync('openssl', ['ts', '-query', '-data', join(dir, 'other.bin'), '-sha256', '-cert', '-out', query]);
    const reply = join(dir, 'other.tsr');
    writeFileSync(reply, answerTimestampRequest(readFileSync(query), { tsa }));
    const wrongQuery = join(dir, 'with-cert.tsq');
    expect(verify(reply, wrongQuery)).not.toContain('Verification: OK');
    const rejected = join(dir, 'rejected.tsr');
    writeFileSync(rejected, answerTimestampRequest(Buffer.from('junk'), { tsa }));
    expect(execFileSync('openssl', ['ts', '-reply', '-in', rejected, '-text']).toString()).toMatch(/Status: Rejected/);
  });
});
