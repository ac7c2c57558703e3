/**
 * npm run bench:signature — on a 2 KB SOAP message and an RSA-2048 key on SoftHSM, in one run:
 * (a) building an X-Road signature without the HSM operation versus xml-crypto signing the same
 *     message with an in-memory key;
 * (b) verifications per second (parse, references, signature value) versus libxmlsec1 in-process
 *     (python3-xmlsec) on the same signature; the full MESS_11 check (certificate path, OCSP) too;
 * (c) messages signed per second by 64 concurrent requesters through the batch signer and the
 *     signer daemon versus the raw single-signature rate of the same key (pkcs11js, one at a time).
 * The last line is one JSON object with every figure.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { SignedXml } from 'xml-crypto';
import { loadGlobalConf } from '../src/globalconf/global-conf.ts';
import { silentLogger } from '../src/platform/logger.ts';
import { parseClientId } from '../src/protocol/identifiers.ts';
import { signatureMethodForId } from '../src/signature/algorithms.ts';
import { BatchSigner, type SigningKey } from '../src/signature/message-signer.ts';
import { parseSignature, verifySignature, verifySignatureCore } from '../src/signature/verifier.ts';
import { prepareSignature } from '../src/signature/xades.ts';
import { SignerClient } from '../src/signerapi/signer-client.ts';
import { startSignerDaemon } from '../src/signer/signer-daemon.ts';
import { LocalPki } from '../src/dev/testpki/local-pki.ts';
import { certSha1 } from '../src/trust/ocsp-cache.ts';
import { createTestbed } from '../softhsm/testbed.ts';
import { freePort } from '../test/support/net.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const PIN = '4321';

function rate(fn: () => void): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    fn();
    n++;
  }
  return Math.round(n / SECONDS);
}

// A 2 KB SOAP request, as the reference's test client sends.
const padding = 'x'.repeat(2048 - 1000);
const message = Buffer.from(
  `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd">` +
    `<SOAP-ENV:Header><xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode><id:subsystemCode>client</id:subsystemCode></xrd:client>` +
    `<xrd:service id:objectType="SERVICE"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode><id:subsystemCode>provider</id:subsystemCode><id:serviceCode>helloService</id:serviceCode></xrd:service>` +
    `<xrd:id>bench</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header><SOAP-ENV:Body><prod:helloService xmlns:prod="http://test.x-road.fi/producer"><prod:name>${padding}</prod:name></prod:helloService></SOAP-ENV:Body></SOAP-ENV:Envelope>\n`,
);

const testbed = createTestbed();
const pki = LocalPki.init(join(testbed.dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort() });
const served = await pki.serve();
const daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni, globalConfDir: pki.globalConfDir }, silentLogger());
const client = await SignerClient.connect(daemon.socketPath);
try {
  const token = await client.call('initToken', { label: 'bench', soPin: '0000', userPin: PIN });
  await client.call('activateToken', { token: token.tokenId, pin: PIN });
  const key = await client.call('generateKey', { token: token.tokenId, algorithm: 'RSA', bits: 2048, usage: 'SIGNING' });
  const csr = await client.call('generateCsr', { keyId: key.keyId, memberId: 'LOCAL/COM/1111', format: 'DER' });
  const cert = pki.issue(Buffer.from(csr.csr, 'base64'), 'sign');
  await client.call('importCert', { cert: cert.toString('base64') });
  const ca = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw;
  let ocsp: (string | null)[] = [];
  for (let i = 0; i < 200 && (ocsp.length === 0 || !ocsp.every(Boolean)); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50));
    ocsp = (await client.call('getOcspResponses', { certHashes: [certSha1(cert), certSha1(ca)] })).responses;
  }
  const signingKey: SigningKey = { keyId: key.keyId, algorithm: 'SHA512withRSA', cert, intermediateCerts: [ca], ocspResponses: ocsp.map((r) => Buffer.from(r!, 'base64')), batchSigningEnabled: true };
  let signatures = 0;
  const signer = new BatchSigner(async (keyId, algorithm, digest) => {
    signatures++;
    return client.call('signBinary', { keyId, algorithm, digest, raw: true });
  });

  // (a) Building: digest of the message, SignedProperties, SignedInfo and its digest, the document.
  const method = signatureMethodForId('SHA512withRSA');
  const fakeValue = Buffer.alloc(256, 0x5a);
  const build = rate(() => {
    const prepared = prepareSignature({ references: [{ uri: '/message.xml', digest: createHash('sha512').update(message).digest() }], mimeType: 'text/xml', method, signingCert: cert, intermediateCerts: [ca], ocspResponses: signingKey.ocspResponses, signingTime: new Date() });
    prepared.finish(fakeValue);
  });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const xmlText = message.toString();
  const xmlCrypto = rate(() => {
    const sig = new SignedXml({ privateKey: pem, signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512', canonicalizationAlgorithm: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315' });
    sig.addReference({ xpath: "//*[local-name(.)='Body']", digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha512', transforms: ['http://www.w3.org/TR/2001/REC-xml-c14n-20010315'] });
    sig.computeSignature(xmlText);
    sig.getSignedXml();
  });

  // (b) Verification of one real signature from the token.
  const signed = await signer.sign(signingKey, { message });
  const conf = loadGlobalConf(pki.globalConfDir);
  const clientId = parseClientId('LOCAL/COM/1111/client');
  verifySignature(signed.signatureXml, { message }, { conf, signer: clientId, at: new Date() });
  const sigBytes = Buffer.from(signed.signatureXml);
  const verifyCore = rate(() => verifySignatureCore(parseSignature(sigBytes), { message }));
  const verifyFull = rate(() => verifySignature(sigBytes, { message }, { conf, signer: clientId, at: new Date() }));
  writeFileSync(join(testbed.dir, 'signatures.xml'), sigBytes);
  writeFileSync(join(testbed.dir, 'message.xml'), message);
  writeFileSync(join(testbed.dir, 'cert.pem'), new X509Certificate(cert).toString());
  const script = join(import.meta.dirname, 'libxmlsec1-verify.py');
  const libxmlsec1 = Number(execFileSync('/usr/bin/python3', [script, join(testbed.dir, 'signatures.xml'), join(testbed.dir, 'cert.pem'), String(SECONDS), `/message.xml=${join(testbed.dir, 'message.xml')}`]).toString().trim());

  // (c) Raw: the same key signing one digest at a time with pkcs11js in this process.
  const p11 = new pkcs11js.PKCS11();
  p11.load(testbed.library);
  // The signer daemon runs in this process and has the module initialised and the token logged in.
  const tolerate = (fn: () => void, code: string) => {
    try {
      fn();
    } catch (err) {
      if (!(err as Error).message.includes(code)) throw err;
    }
  };
  tolerate(() => p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK }), 'CKR_CRYPTOKI_ALREADY_INITIALIZED');
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === 'bench')!;
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  tolerate(() => p11.C_Login(session, pkcs11js.CKU_USER, PIN), 'CKR_USER_ALREADY_LOGGED_IN');
  p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_ID, value: Buffer.from(key.keyId, 'hex') }]);
  const [handle] = p11.C_FindObjects(session, 1);
  p11.C_FindObjectsFinal(session);
  const digestInfo = Buffer.concat([Buffer.from('3051300d060960864801650304020305000440', 'hex'), createHash('sha512').update('x').digest()]);
  const out = Buffer.alloc(256);
  const raw = rate(() => {
    p11.C_SignInit(session, { mechanism: pkcs11js.CKM_RSA_PKCS }, handle!);
    p11.C_Sign(session, digestInfo, out);
  });
  p11.C_CloseSession(session);

  // (c) Batched: 64 requesters, each signing its next message as soon as the last one is signed.
  let batched = 0;
  signatures = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < end) {
        await signer.sign(signingKey, { message });
        batched++;
      }
    }),
  );
  const batch = Math.round(batched / SECONDS);

  const result = {
    message_bytes: message.length,
    build_per_s: build,
    xmlcrypto_sign_per_s: xmlCrypto,
    build_ratio_vs_xmlcrypto: +(build / xmlCrypto).toFixed(1),
    verify_core_per_s: verifyCore,
    verify_full_per_s: verifyFull,
    libxmlsec1_verify_per_s: libxmlsec1,
    verify_ratio_vs_libxmlsec1: +(verifyCore / libxmlsec1).toFixed(2),
    verify_full_ratio_vs_libxmlsec1: +(verifyFull / libxmlsec1).toFixed(2),
    raw_sign_per_s: raw,
    batch_messages_per_s: batch,
    batch_hsm_signatures_per_s: Math.round(signatures / SECONDS),
    batch_mean_size: +(batched / Math.max(signatures, 1)).toFixed(1),
    batch_ratio_vs_raw: +(batch / raw).toFixed(1),
  };
  console.log(`(a) build ${build}/s vs xml-crypto ${xmlCrypto}/s: ${result.build_ratio_vs_xmlcrypto}× (target 20×)`);
  console.log(`(b) verify ${verifyCore}/s (full MESS_11 ${verifyFull}/s) vs libxmlsec1 ${libxmlsec1}/s: ${result.verify_ratio_vs_libxmlsec1}× (target 4×, issue 16)`);
  console.log(`(c) 64 requesters ${batch} messages/s in ${result.batch_hsm_signatures_per_s} signatures/s vs raw ${raw} signatures/s: ${result.batch_ratio_vs_raw}× (target 20×, issue 16)`);
  console.log(JSON.stringify(result));
} finally {
  client.close();
  await daemon.close();
  await served.close();
  testbed.cleanup();
}
