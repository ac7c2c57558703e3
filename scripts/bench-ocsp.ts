/**
 * npm run bench:ocsp — full OCSP response validation with our code versus pkijs's verify() +
 * getCertificateStatus() on the same response (openssl ocsp's, from a delegated RSA-2048
 * responder of an openssl-made CA), and the time of a cached-status lookup. The last line is one JSON object with every figure.
 */
import * as asn1js from 'asn1js';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { silentLogger } from '../src/platform/logger.ts';
import { OcspCache, certSha1 } from '../src/trust/ocsp-cache.ts';
import { OcspStatusService } from '../src/trust/ocsp-status.ts';
import { ocspPolicyFor, verifyOcspResponse } from '../src/trust/ocsp-verifier.ts';
import { certIdOf, encodeOcspRequest } from '../src/trust/ocsp.ts';
import { confWithCas } from '../test/support/conf.ts';
import { createTestCa, newKeyAndCsr, opensslOcspRespond, pemToDer } from '../test/support/openssl.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

async function rate(fn: () => unknown): Promise<number> {
  for (let i = 0; i < 50; i++) await fn();
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    await fn();
    n++;
  }
  return Math.round(n / SECONDS);
}

// A CA with a delegated responder and a certificate, made by openssl; the response is openssl's.
const ca = createTestCa('Bench CA');
const issuer = pemToDer(ca.certPem);
const { keyPath: responderKey, csrPem } = newKeyAndCsr(ca.dir, 'responder', '/O=Bench/CN=Bench OCSP');
const responderPath = join(ca.dir, 'responder.pem');
writeFileSync(responderPath, ca.issue(csrPem, 'digitalSignature', 'OCSPSigning'));
const cert = pemToDer(ca.issue(newKeyAndCsr(ca.dir, 'member', '/O=Bench/CN=member').csrPem, 'nonRepudiation'));
const ocsp = opensslOcspRespond({ dir: ca.dir, caCertPath: ca.certPath, responderCertPath: responderPath, responderKeyPath: responderKey, index: [{ serial: new X509Certificate(cert).serialNumber }], request: encodeOcspRequest([certIdOf(cert, issuer)]) });
const conf = confWithCas([{ name: 'Bench CA', top: issuer }]);
const policy = ocspPolicyFor(conf, issuer);
const signingTime = new Date();

// Ours: parse, CertID, responder, signature, authorisation, freshness, status — everything.
const ours = await rate(() => verifyOcspResponse(ocsp, cert, issuer, signingTime, policy));

// pkijs: the same response checked with its own API (signature against the trusted responder and
// CA certificates, then the status of our certificate).
const toPkijs = (der: Buffer) => pkijs.Certificate.fromBER(new Uint8Array(der));
const caCert = toPkijs(issuer);
const subjectCert = toPkijs(cert);
const pkijsValidate = async () => {
  const response = pkijs.OCSPResponse.fromBER(new Uint8Array(ocsp));
  const basic = new pkijs.BasicOCSPResponse({ schema: asn1js.fromBER(response.responseBytes!.response.valueBlock.valueHexView).result });
  if (!(await basic.verify({ trustedCerts: [caCert] }))) throw new Error('pkijs: signature not valid');
  const status = await basic.getCertificateStatus(subjectCert, caCert);
  if (!status.isForCertificate || status.status !== 0) throw new Error('pkijs: status not good');
};
await pkijsValidate();
const pkijsRate = await rate(pkijsValidate);

// Cached status: a result verified a moment ago, looked up by the certificate.
const cache = new OcspCache(join(mkdtempSync(join(tmpdir(), 'xrd-bench-ocsp-')), 'ocsp.sqlite'), silentLogger(), () => signingTime);
cache.set([{ certSha1: certSha1(cert), der: ocsp }]);
const statuses = new OcspStatusService(() => conf, cache, { now: () => signingTime });
await statuses.status(cert, issuer);
const samples: number[] = [];
for (let i = 0; i < 200_000; i++) {
  const t0 = process.hrtime.bigint();
  const found = statuses.cachedStatus(certSha1(cert));
  const t1 = process.hrtime.bigint();
  if (!found) throw new Error('cached status missing');
  if (i >= 10_000) samples.push(Number(t1 - t0) / 1000);
}
samples.sort((a, b) => a - b);
const cachedUs = Math.round(samples[Math.floor(samples.length / 2)]! * 100) / 100;
const cachedP99Us = Math.round(samples[Math.floor(samples.length * 0.99)]! * 100) / 100;

const ratio = Math.round((ours / pkijsRate) * 10) / 10;
console.log(`OCSP response validation (openssl ocsp response, delegated RSA-2048 responder), ${SECONDS} s each`);
console.log(`ours:  ${ours} validations/s (parse, CertID, responder, signature, authorisation, freshness, status)`);
console.log(`pkijs: ${pkijsRate} validations/s (OCSPResponse.fromBER, BasicOCSPResponse.verify, getCertificateStatus)`);
console.log(`ratio: ${ratio}x`);
console.log(`cached status lookup (SHA-1 of the certificate + in-memory result): median ${cachedUs} µs, p99 ${cachedP99Us} µs`);
console.log(JSON.stringify({ ocsp_validations_per_s: ours, pkijs_validations_per_s: pkijsRate, validate_ratio_vs_pkijs: ratio, cached_lookup_us: cachedUs, cached_lookup_p99_us: cachedP99Us }));
process.exit(0);
