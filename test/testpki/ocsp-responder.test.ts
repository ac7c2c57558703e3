/** The test PKI's OCSP responder, asked by `openssl ocsp` as a client and by our own status service. */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toPem } from '../../src/certificates/csr.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { EKU, createAuthority, createRootCa, issueCertificate, readCsr } from '../../src/dev/testpki/certificate-authority.ts';
import { startOcspResponder, type CertificateState } from '../../src/dev/testpki/ocsp-responder.ts';
import { OcspCache } from '../../src/trust/ocsp-cache.ts';
import { OcspStatusService } from '../../src/trust/ocsp-status.ts';
import { confWithCas } from '../support/conf.ts';
import { newKeyAndCsr, pemToDer } from '../support/openssl.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-testpki-ocsp-'));
const root = createRootCa([['CN', 'Root']]);
const ca = createAuthority(root, [['CN', 'Issuing CA']], { ca: true, pathLen: 0 });
const responderCert = createAuthority(ca, [['CN', 'Issuing CA OCSP']], { keyUsage: ['digitalSignature'], extendedKeyUsage: [EKU.ocspSigning] });
const states = new Map<string, CertificateState>();
const serialOf = (der: Buffer) => new X509Certificate(der).serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
let server: Server;
let url: string;

function leaf(name: string): Buffer {
  const csr = readCsr(pemToDer(newKeyAndCsr(dir, name, `/CN=${name}`).csrPem));
  return issueCertificate(ca, csr.subjectName, csr.spki, { keyUsage: ['nonRepudiation'] });
}

function file(name: string, ...ders: Buffer[]): string {
  const path = join(dir, name);
  writeFileSync(path, ders.map((d) => toPem(d, 'CERTIFICATE')).join(''));
  return path;
}

beforeAll(async () => {
  server = await startOcspResponder({ authorities: [{ ca: ca.cert, signer: responderCert }], states: (s) => states.get(s), validitySeconds: 600 }, '127.0.0.1', 0);
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('test PKI OCSP responder', () => {
  it('answers openssl ocsp: signature verified up to the root, good, revoked and unknown', async () => {
    const good = leaf('good');
    const revoked = leaf('revoked');
    const unknown = leaf('unknown');
    states.set(serialOf(good), { status: 'good' });
    states.set(serialOf(revoked), { status: 'revoked', revokedAt: new Date(Date.now() - 3_600_000) });
    const { stdout } = await promisify(execFile)('openssl', [
      'ocsp', '-issuer', file('ca.pem', ca.cert), '-CAfile', file('chain.pem', root.cert, ca.cert), '-url', url,
      '-cert', file('good.pem', good), '-cert', file('revoked.pem', revoked), '-cert', file('unknown.pem', unknown),
    ], { encoding: 'utf8' }).then(
      (r) => ({ stdout: `${r.stdout}\n${r.stderr}` }),
      (e: { stdout: string; stderr: string }) => ({ stdout: `${e.stdout}\n${e.stderr}` }),
    );
    expect(stdout).toContain('Response verify OK');
    expect(stdout).toMatch(/good\.pem: good/);
    expect(stdout).toMatch(/revoked\.pem: revoked/);
    expect(stdout).toMatch(/unknown\.pem: unknown/);
  });

  it('answers our status service, which validates the delegated signature', async () => {
    const cert = leaf('ours');
    states.set(serialOf(cert), { status: 'good' });
    const conf = confWithCas([{ name: 'Issuing CA', top: ca.cert, ocsp: [{ url }] }]);
    const status = new OcspStatusService(() => conf, new OcspCache(join(dir, 'ocsp.sqlite'), silentLogger()));
    expect((await status.status(cert, ca.cert)).certStatus).toEqual({ status: 'good' });
  });
});
