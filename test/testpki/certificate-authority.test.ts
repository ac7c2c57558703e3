/** The test PKI's certificates, judged by openssl and by our own path and OCSP code. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCertificate } from '../../src/certificates/certificate.ts';
import { toPem } from '../../src/certificates/csr.ts';
import { EKU, createAuthority, createRootCa, issueCertificate, readCsr } from '../../src/dev/testpki/certificate-authority.ts';
import { buildCertPath } from '../../src/trust/cert-path.ts';
import { confWithCas } from '../support/conf.ts';
import { newKeyAndCsr, openssl, pemToDer } from '../support/openssl.ts';

describe('test PKI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-testpki-'));
  const root = createRootCa([['O', 'Local'], ['CN', 'Local Root CA']]);
  const intermediate = createAuthority(root, [['O', 'Local'], ['CN', 'Local Intermediate CA']], { ca: true, pathLen: 0 });
  const write = (name: string, der: Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, toPem(der, 'CERTIFICATE'));
    return path;
  };

  it('issues sign and auth certificates from CSRs that openssl verifies up to the root', () => {
    const csr = readCsr(pemToDer(newKeyAndCsr(dir, 'member', '/C=FI/O=Member/CN=1234/serialNumber=DEV\\/ss1\\/COM').csrPem));
    const sign = issueCertificate(intermediate, csr.subjectName, csr.spki, { keyUsage: ['nonRepudiation'] });
    const auth = issueCertificate(intermediate, csr.subjectName, csr.spki, { keyUsage: ['digitalSignature', 'keyEncipherment'], extendedKeyUsage: [EKU.clientAuth, EKU.serverAuth] });
    for (const cert of [sign, auth]) {
      const out = openssl(['verify', '-CAfile', write('root.pem', root.cert), '-untrusted', write('intermediate.pem', intermediate.cert), write('leaf.pem', cert)]);
      expect(out.trim()).toMatch(/: OK$/);
    }
    expect(parseCertificate(sign)).toMatchObject({ keyUsage: ['nonRepudiation'], subject: 'C=FI, O=Member, CN=1234, serialNumber=DEV/ss1/COM', isCa: false });
    expect(parseCertificate(auth)).toMatchObject({ keyUsage: ['digitalSignature', 'keyEncipherment'], extendedKeyUsage: [EKU.clientAuth, EKU.serverAuth] });
    const text = execFileSync('openssl', ['x509', '-in', write('sign.pem', sign), '-noout', '-text']).toString();
    expect(text).toContain('Non Repudiation');
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
  });

  it('builds paths our trust layer accepts, with the intermediate in the configuration', () => {
    const csr = readCsr(pemToDer(newKeyAndCsr(dir, 'other', '/O=Other/CN=9').csrPem));
    const cert = issueCertificate(intermediate, csr.subjectName, csr.spki, { keyUsage: ['nonRepudiation'] });
    const path = buildCertPath(cert, confWithCas([{ name: 'Local', top: root.cert, intermediates: [intermediate.cert] }]));
    expect(path.certs).toHaveLength(3);
  });

  it('refuses a CSR whose signature does not hold', () => {
    const der = pemToDer(newKeyAndCsr(dir, 'bad', '/CN=bad').csrPem);
    der[der.length - 1]! ^= 1;
    expect(() => readCsr(der)).toThrowError(expect.objectContaining({ code: 'IncorrectCertificate' }));
  });
});

describe('certificate encoding', () => {
  it('every serial is minimal DER (a random serial starting with zero bytes once broke parsing)', () => {
    const root = createRootCa([['CN', 'Serial Root']]);
    const { spki } = readCsr(pemToDer(newKeyAndCsr(mkdtempSync(join(tmpdir(), 'xrd-serial-')), 'k', '/CN=k').csrPem));
    // One in 128 random serials starts with a zero byte; 600 issues make missing it unlikely (~1 %).
    for (let i = 0; i < 600; i++) expect(() => parseCertificate(issueCertificate(root, Buffer.from('3000', 'hex'), spki, { keyUsage: ['nonRepudiation'] }))).not.toThrow();
  });
});
