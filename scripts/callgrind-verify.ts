/**
 * Instructions per verification core, counted by callgrind: what bench:signature (b) times —
 * `verifySignatureCore(parseSignature(doc), { message })` — on a signature document shaped like the
 * bench's (RSA-2048, SHA512withRSA, the signing certificate, one CA certificate, two 1.7 KB OCSP
 * values; a software key, since the HSM takes no part in verification).
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p node --import tsx scripts/callgrind-verify.ts [N] [part]
 *
 * It warms up, has callgrind dump a profile part, runs N verifications (default 2,000), dumps again,
 * and prints the second part's instruction count divided by N. `part` counts one piece instead:
 * parseSignature, parseSignature-general (the general parser's path), parseXml, SourceDocument
 * (by the shape of the document read before, as the core reads it), SourceDocument-full (tag by tag),
 * canonicalize (SignedInfo and SignedProperties). Wall-clock rates on a shared
 * machine swing by 2×; this count does not. Without valgrind it only checks the document verifies.
 */
import { execFileSync } from 'node:child_process';
import { constants, createHash, generateKeyPairSync, privateEncrypt } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signatureMethodForId } from '../src/signature/algorithms.ts';
import { parseSignature, verifySignatureCore } from '../src/signature/verifier.ts';
import { prepareSignature } from '../src/signature/xades.ts';
import { SourceDocument } from '../src/xml/canonical-source.ts';
import { INCLUSIVE } from '../src/xml/c14n.ts';
import { parseXml } from '../src/xml/xml-tree.ts';

const N = Number(process.argv[2] ?? 2000);
/** What is counted: the verification core (default), or one of its parts. */
const PART = process.argv[3] ?? 'core';
const dir = mkdtempSync(join(tmpdir(), 'xrd-cg-'));
const certOf = (cn: string, keyUsage: string) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, `${cn}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, `${cn}.key`), '-subj', `/O=Test/CN=${cn}`, '-days', '30', '-addext', `keyUsage=${keyUsage}`, '-outform', 'DER', '-out', join(dir, `${cn}.der`)]);
  return { privateKey, cert: readFileSync(join(dir, `${cn}.der`)) };
};
const signer = certOf('signer', 'critical,nonRepudiation');
const ca = certOf('ca', 'critical,keyCertSign');
const message = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>${'x'.repeat(1900)}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n`);
const prepared = prepareSignature({
  references: [{ uri: '/message.xml', digest: createHash('sha512').update(message).digest() }],
  mimeType: 'text/xml',
  method: signatureMethodForId('SHA512withRSA'),
  signingCert: signer.cert,
  intermediateCerts: [ca.cert],
  ocspResponses: [Buffer.alloc(1700, 1), Buffer.alloc(1700, 2)],
  signingTime: new Date(),
});
const digestInfo = Buffer.concat([Buffer.from('3051300d060960864801650304020305000440', 'hex'), prepared.signedInfoDigest]);
const doc = Buffer.from(prepared.finish(privateEncrypt({ key: signer.privateKey, padding: constants.RSA_PKCS1_PADDING }, digestInfo)));
const parsed = parseSignature(doc);
const source = SourceDocument.read(doc)!;
const signedInfo = source.child(source.child(source.root, 'http://www.w3.org/2000/09/xmldsig#', 'Signature')!, 'http://www.w3.org/2000/09/xmldsig#', 'SignedInfo')!;
const parts: Record<string, () => unknown> = {
  core: () => verifySignatureCore(parseSignature(doc), { message }),
  parseSignature: () => parseSignature(doc),
  'parseSignature-general': () => parseSignature(doc, { generalParser: true }),
  parseXml: () => parseXml(doc),
  SourceDocument: () => SourceDocument.read(doc),
  'SourceDocument-full': () => SourceDocument.read(doc, { shapes: false }),
  canonicalize: () => source.canonicalize(signedInfo, INCLUSIVE)! + source.canonicalize(source.ids.get('signed-properties')!, INCLUSIVE)!,
};
const once = parts[PART]!;
verifySignatureCore(parsed, { message });

const underValgrind = readFileSync('/proc/self/maps', 'utf8').includes('vgpreload');
// Long enough that the optimising compiler has finished (its threads are counted too): with 500, a
// sixth of the count was TurboFan still compiling in the measured part.
for (let i = 0; i < Number(process.env.WARMUP ?? 3000); i++) once();
if (!underValgrind) {
  console.log(`${doc.length} bytes; verifies (not under callgrind: nothing counted)`);
} else {
  const dump = () => execFileSync('callgrind_control', ['-d', String(process.pid)], { stdio: 'ignore' });
  dump();
  for (let i = 0; i < N; i++) once();
  dump();
  // The parts are numbered in dump order; the last one holds the N verifications.
  const out = process.env.CALLGRIND_OUT_DIR ?? '/tmp';
  const parts = readdirSync(out).filter((f) => f.startsWith(`cg.${process.pid}.`)).sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
  const last = readFileSync(join(out, parts[parts.length - 1]!), 'utf8');
  const total = Number(/^summary: (\d+)/m.exec(last)?.[1] ?? /^totals: (\d+)/m.exec(last)?.[1]);
  console.log(`${doc.length} bytes; ${Math.round(total / N)} instructions per ${PART} (${N} ops)`);
}
