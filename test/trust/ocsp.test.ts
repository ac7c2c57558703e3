/**
 * OCSP validation against the reference's own responses (in the shared X-Road containers) and
 * against `openssl ocsp` as an independent responder answering our requests.
 */
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { certIdOf, encodeOcspRequest, parseOcspResponse } from '../../src/trust/ocsp.ts';
import { ocspPolicyFor, verifyOcspResponse, type OcspPolicy } from '../../src/trust/ocsp-verifier.ts';
import { createTestCa, newKeyAndCsr, opensslOcspRespond, pemToDer, type TestCa } from '../support/openssl.ts';
import { VECTORS, fromContainer } from '../support/vectors.ts';

describe('the reference responses in the shared containers', () => {
  const conf = loadGlobalConf(join(VECTORS, 'globalconf'));
  const issuer = conf.own.approvedCas[0]!.topCa.cert;

  for (const name of ['valid-signed-message.asice', 'valid-signed-hashchain.asice']) {
    it(`${name}: valid at its signing time against the shared configuration, too old two hours later`, () => {
      const { cert, ocsp, signingTime } = fromContainer(name);
      const policy = ocspPolicyFor(conf, issuer);
      expect(policy).toMatchObject({ freshnessSeconds: 3600, responderCerts: [expect.any(Buffer)] });
      expect(verifyOcspResponse(ocsp, cert, issuer, signingTime, policy).certStatus).toEqual({ status: 'good' });
      expect(() => verifyOcspResponse(ocsp, cert, issuer, new Date(signingTime.getTime() + 7_200_000), policy)).toThrowError(
        expect.objectContaining({ code: 'IncorrectValidationInfo', message: expect.stringMatching(/^OCSP response is too old \(thisUpdate: /) }),
      );
    });
  }
});

describe('openssl ocsp as the responder', () => {
  let ca: TestCa;
  let caDer: Buffer;
  let responder: { certPath: string; keyPath: string; der: Buffer };
  let leaf: Buffer;
  let leafSerial: string;
  let dir: string;
  let policy: OcspPolicy;

  /** Asks openssl for the status of `cert` with our request, signed by `signer` (default: the CA's responder). */
  function respond(cert: Buffer, index: { serial: string; revokedAt?: Date }[], options: { signer?: { certPath: string; keyPath: string }; validityMinutes?: number } = {}): Buffer {
    const signer = options.signer ?? responder;
    return opensslOcspRespond({ dir, caCertPath: ca.certPath, responderCertPath: signer.certPath, responderKeyPath: signer.keyPath, index, request: encodeOcspRequest([certIdOf(cert, caDer)]), validityMinutes: options.validityMinutes });
  }

  function issueResponder(issuingCa: TestCa, name: string, eku?: string): { certPath: string; keyPath: string; der: Buffer } {
    const { keyPath, csrPem } = newKeyAndCsr(dir, name, `/O=Test/CN=${name}`);
    const pem = issuingCa.issue(csrPem, 'digitalSignature', eku);
    const certPath = join(dir, `${name}.pem`);
    writeFileSync(certPath, pem);
    return { certPath, keyPath, der: pemToDer(pem) };
  }

  beforeAll(() => {
    ca = createTestCa('OCSP Test CA');
    dir = ca.dir;
    caDer = pemToDer(ca.certPem);
    responder = issueResponder(ca, 'responder', 'OCSPSigning');
    leaf = pemToDer(ca.issue(newKeyAndCsr(dir, 'leaf', '/O=Test/CN=leaf').csrPem, 'nonRepudiation'));
    leafSerial = new X509Certificate(leaf).serialNumber;
    policy = { responderCerts: [], freshnessSeconds: 3600 };
  });

  it('answers our request: a delegated responder with id-kp-OCSPSigning, status good', () => {
    const response = respond(leaf, [{ serial: leafSerial }]);
    expect(parseOcspResponse(response).responses).toHaveLength(1);
    expect(verifyOcspResponse(response, leaf, caDer, new Date(), policy).certStatus.status).toBe('good');
  });

  it('revoked and unknown are CertValidation with the reference texts', () => {
    const revokedAt = new Date(Date.now() - 60_000);
    expect(() => verifyOcspResponse(respond(leaf, [{ serial: leafSerial, revokedAt }]), leaf, caDer, new Date(), policy)).toThrowError(
      expect.objectContaining({ code: 'CertValidation', message: expect.stringMatching(/^OCSP response indicates certificate status is REVOKED/) }),
    );
    expect(() => verifyOcspResponse(respond(leaf, [{ serial: 'ABCDEF01' }]), leaf, caDer, new Date(), policy)).toThrowError(
      expect.objectContaining({ code: 'CertValidation', message: 'OCSP response indicates certificate status is UNKNOWN' }),
    );
  });

  it('too old by ocspFreshnessSeconds, and past nextUpdate', () => {
    const response = respond(leaf, [{ serial: leafSerial }], { validityMinutes: 1 });
    const inTwoMinutes = new Date(Date.now() + 120_000);
    expect(() => verifyOcspResponse(response, leaf, caDer, inTwoMinutes, { ...policy, freshnessSeconds: 60 })).toThrowError(expect.objectContaining({ message: expect.stringMatching(/^OCSP response is too old \(thisUpdate: /) }));
    expect(() => verifyOcspResponse(response, leaf, caDer, inTwoMinutes, policy)).toThrowError(expect.objectContaining({ message: expect.stringMatching(/^OCSP response is too old \(nextUpdate: /) }));
    expect(verifyOcspResponse(response, leaf, caDer, inTwoMinutes, { ...policy, verifyNextUpdate: false }).certStatus.status).toBe('good');
  });

  it('a responder of another CA, or one without id-kp-OCSPSigning, is not authorised', () => {
    const otherCa = createTestCa('Other CA');
    const foreign = issueResponder(otherCa, 'foreign-responder', 'OCSPSigning');
    const noEku = issueResponder(ca, 'no-eku-responder');
    for (const signer of [foreign, noEku]) {
      expect(() => verifyOcspResponse(respond(leaf, [{ serial: leafSerial }], { signer }), leaf, caDer, new Date(), policy)).toThrowError(
        expect.objectContaining({ code: 'IncorrectValidationInfo', message: 'OCSP responder is not authorized for given CA' }),
      );
    }
    // Unless the global configuration names it as this CA's responder.
    expect(verifyOcspResponse(respond(leaf, [{ serial: leafSerial }], { signer: noEku }), leaf, caDer, new Date(), { ...policy, responderCerts: [noEku.der] }).certStatus.status).toBe('good');
  });

  it('a bad signature, another certificate, malformed DER: each its coded error', () => {
    const response = respond(leaf, [{ serial: leafSerial }]);
    const tampered = Buffer.from(response);
    const sigAt = tampered.lastIndexOf(parseOcspResponse(response).signature.subarray(0, 16));
    tampered[sigAt + 5]! ^= 0x01;
    expect(() => verifyOcspResponse(tampered, leaf, caDer, new Date(), policy)).toThrowError(expect.objectContaining({ message: 'Signature on OCSP response is not valid' }));
    const other = pemToDer(ca.issue(newKeyAndCsr(dir, 'other-leaf', '/O=Test/CN=other').csrPem, 'nonRepudiation'));
    expect(() => verifyOcspResponse(response, other, caDer, new Date(), policy)).toThrowError(expect.objectContaining({ message: expect.stringMatching(/^OCSP response does not apply to certificate \(sn = /) }));
    for (const bad of [Buffer.from('not DER at all'), response.subarray(0, response.length - 10), Buffer.alloc(0)]) {
      expect(() => verifyOcspResponse(bad, leaf, caDer, new Date(), policy)).toThrowError(expect.objectContaining({ code: 'IncorrectValidationInfo', message: expect.stringMatching(/^Malformed OCSP response/) }));
    }
  });

  it('the same response checked again (its signature outcome kept): time and authorisation still count, a tampered copy still fails', () => {
    const response = respond(leaf, [{ serial: leafSerial }], { validityMinutes: 1 });
    for (let i = 0; i < 2; i++) expect(verifyOcspResponse(response, leaf, caDer, new Date(), policy).certStatus.status).toBe('good');
    expect(() => verifyOcspResponse(response, leaf, caDer, new Date(Date.now() + 120_000), policy)).toThrowError(expect.objectContaining({ message: expect.stringMatching(/^OCSP response is too old \(nextUpdate: /) }));
    const tampered = Buffer.from(response);
    tampered[tampered.lastIndexOf(parseOcspResponse(response).signature.subarray(0, 16)) + 5]! ^= 0x01;
    expect(() => verifyOcspResponse(tampered, leaf, caDer, new Date(), policy)).toThrowError(expect.objectContaining({ message: 'Signature on OCSP response is not valid' }));
    const noEku = issueResponder(ca, 'no-eku-again');
    const byNoEku = respond(leaf, [{ serial: leafSerial }], { signer: noEku });
    expect(verifyOcspResponse(byNoEku, leaf, caDer, new Date(), { ...policy, responderCerts: [noEku.der] }).certStatus.status).toBe('good');
    // The configuration no longer names that responder: the same bytes are no longer accepted.
    expect(() => verifyOcspResponse(byNoEku, leaf, caDer, new Date(), policy)).toThrowError(expect.objectContaining({ message: 'OCSP responder is not authorized for given CA' }));
  });

  it('our request is one openssl reads as a SHA-1 CertID request without a nonce', () => {
    const reqPath = join(dir, 'our-req.der');
    writeFileSync(reqPath, encodeOcspRequest([certIdOf(leaf, caDer)]));
    const text = execFileSync('openssl', ['ocsp', '-reqin', reqPath, '-req_text']).toString();
    expect(text).toContain('Hash Algorithm: sha1');
    expect(text).toContain(`Serial Number: ${leafSerial}`);
    expect(text).not.toMatch(/Nonce/);
  });
});
