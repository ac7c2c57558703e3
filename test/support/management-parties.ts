/**
 * Members' keys and certificates from a served test PKI, for management request tests: Node RSA keys
 * (the SoftHSM path is test/testpki/management-service.test.ts), certificates issued by the test CA,
 * OCSP responses fetched from its responder, and a signer that signs as the signer daemon does.
 */
import { X509Certificate, constants, generateKeyPairSync, privateEncrypt, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleCsr, certificationRequestInfo, defaultSubject } from '../../src/certificates/csr.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { parseClientId, parseSecurityServerId } from '../../src/protocol/identifiers.ts';
import type { ManagementRequestSigner, MemberSigning } from '../../src/protocol/management-request.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { fetchOcspResponse } from '../../src/trust/ocsp-client.ts';
import { certIdOf, encodeOcspRequest } from '../../src/trust/ocsp.ts';
import { freePort } from './net.ts';

export interface Party {
  readonly key: KeyObject;
  readonly cert: Buffer;
}

const SHA512_DIGEST_INFO = Buffer.from('3051300d060960864801650304020305000440', 'hex');

/** What the signer daemon does for SHA512withRSA on CKM_RSA_PKCS: DigestInfo, then the raw RSA operation. */
export const rsaSigner = (key: KeyObject): ManagementRequestSigner => ({
  algorithmId: 'SHA512withRSA',
  sign: async (digest) => privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA512_DIGEST_INFO, digest])),
});

/** A key and its certificate from the PKI: a member's signing certificate or a server's authentication one (registered to `register`). */
export function certify(pki: LocalPki, usage: 'sign' | 'auth', id: string, register?: string): Party {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const subject = usage === 'sign' ? defaultSubject('SIGNING', { member: parseClientId(id) }) : defaultSubject('AUTHENTICATION', { server: parseSecurityServerId(id) });
  const info = certificationRequestInfo(subject, publicKey.export({ type: 'spki', format: 'der' }));
  const csr = assembleCsr(info, 'SHA256withRSA', sign('sha256', info, privateKey));
  return { key: privateKey, cert: pki.issue(csr, usage, register) };
}

/** The signing a four-part request needs: the party's key, certificate and a fresh OCSP response from the served PKI. */
export async function signingOf(pki: LocalPki, ocspUrl: string, party: Party, signer: ManagementRequestSigner = rsaSigner(party.key)): Promise<MemberSigning> {
  const ca = Buffer.from(new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw);
  return { signer, cert: party.cert, ocsp: await fetchOcspResponse([ocspUrl], encodeOcspRequest([certIdOf(party.cert, ca)])) };
}

export interface ServedPki {
  readonly dir: string;
  readonly pki: LocalPki;
  readonly served: Awaited<ReturnType<LocalPki['serve']>>;
  /** Signing certificates of ss2's owner (2222) and of the member of ss2's client 3333/OTHER. */
  readonly member2222: Party;
  readonly member3333: Party;
  close(): Promise<void>;
}

/** A fresh test PKI in a temporary folder, served on loopback with its management service stand-in. */
export async function servedPki(prefix: string): Promise<ServedPki> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const pki = LocalPki.init(join(dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort(), managementPort: await freePort() });
  const served = await pki.serve();
  return {
    dir,
    pki,
    served,
    member2222: certify(pki, 'sign', 'LOCAL/COM/2222'),
    member3333: certify(pki, 'sign', 'LOCAL/COM/3333'),
    close: async () => {
      await served.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The coded error a synchronous check throws, for comparing code and details. */
export function codeOf(fn: () => unknown): { code: string; details: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    if (err instanceof XrdError) return { code: err.code, details: err.details };
    throw err;
  }
  throw new Error('expected an error');
}
