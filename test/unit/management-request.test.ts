/**
 * The authentication certificate registration request (pr-mserv §2.3): built and signed as the
 * reference sends it, read back and verified as a central server would, with certificates from the
 * test PKI and the owner certificate's OCSP response from its responder. Keys are Node's here (the
 * SoftHSM path is test/testpki/management-service.test.ts).
 */
import { X509Certificate, constants, generateKeyPairSync, privateEncrypt, sign, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleCsr, certificationRequestInfo, defaultSubject, toPem } from '../../src/certificates/csr.ts';
import { loadGlobalConf, type GlobalConf } from '../../src/globalconf/global-conf.ts';
import { parseClientId, parseSecurityServerId, type SecurityServerId } from '../../src/protocol/identifiers.ts';
import {
  authCertRegResponse,
  buildAuthCertRegRequest,
  managementRequestDigest,
  parseAuthCertRegRequest,
  sendManagementRequest,
  type ManagementRequestSigner,
} from '../../src/protocol/management-request.ts';
import { boundaryOf, parseMultipart } from '../../src/protocol/multipart.ts';
import { createRootCa } from '../../src/dev/testpki/certificate-authority.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { verifyAuthCertRegRequest } from '../../src/trust/management-request-verifier.ts';
import { fetchOcspResponse } from '../../src/trust/ocsp-client.ts';
import { certIdOf, encodeOcspRequest } from '../../src/trust/ocsp.ts';
import { startFlooder, startTrickler } from '../support/hostile-servers.ts';
import { codeOf } from '../support/management-parties.ts';
import { freePort } from '../support/net.ts';

let dir: string;
let pki: LocalPki;
let served: Awaited<ReturnType<LocalPki['serve']>>;
let ca: Buffer;

interface Party {
  readonly key: KeyObject;
  readonly cert: Buffer;
}

const SHA512_DIGEST_INFO = Buffer.from('3051300d060960864801650304020305000440', 'hex');

/** What the signer daemon does for SHA512withRSA on CKM_RSA_PKCS: DigestInfo, then the raw RSA operation. */
const rsaSigner = (key: KeyObject): ManagementRequestSigner => ({
  algorithmId: 'SHA512withRSA',
  sign: async (digest) => privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA512_DIGEST_INFO, digest])),
});

function certify(usage: 'sign' | 'auth', id: { member?: string; server?: string }, register?: string): Party {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const subject = usage === 'sign' ? defaultSubject('SIGNING', { member: parseClientId(id.member!) }) : defaultSubject('AUTHENTICATION', { server: parseSecurityServerId(id.server!) });
  const info = certificationRequestInfo(subject, publicKey.export({ type: 'spki', format: 'der' }));
  const csr = assembleCsr(info, 'SHA256withRSA', sign('sha256', info, privateKey));
  return { key: privateKey, cert: pki.issue(csr, usage, register) };
}

const ocspOf = (cert: Buffer) => fetchOcspResponse([served.ocspUrl], encodeOcspRequest([certIdOf(cert, ca)]));

interface Request {
  readonly serverId: string | SecurityServerId;
  readonly auth: Party;
  readonly owner: Party;
  readonly ownerSigner?: ManagementRequestSigner;
  readonly address?: string;
}

async function build(r: Request) {
  return buildAuthCertRegRequest(
    {
      serverId: typeof r.serverId === 'string' ? parseSecurityServerId(r.serverId) : r.serverId,
      address: r.address ?? '127.0.0.9',
      authCert: r.auth.cert,
      ownerCert: r.owner.cert,
      ownerCertOcsp: await ocspOf(r.owner.cert),
      managementService: pki.managementServiceId,
    },
    { auth: rsaSigner(r.auth.key), owner: r.ownerSigner ?? rsaSigner(r.owner.key) },
  );
}

const conf = (): GlobalConf => loadGlobalConf(pki.globalConfDir);


let owner4444: Party;
let auth4444: Party;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xrd-mreq-'));
  pki = LocalPki.init(join(dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort(), managementPort: await freePort() });
  served = await pki.serve();
  ca = Buffer.from(new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw);
  owner4444 = certify('sign', { member: 'LOCAL/COM/4444' });
  auth4444 = certify('auth', { server: 'LOCAL/COM/4444/ss3' });
});

afterAll(async () => {
  await served?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('authCertReg request', () => {
  it('is the reference multipart: SOAP, auth and owner signatures with their algorithms, the certificates and the OCSP response', async () => {
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444 });
    expect(built.contentType).toMatch(/^multipart\/related; type="application\/octet-stream"; charset=UTF-8; boundary=\S+$/);
    const parts = parseMultipart(built.body, boundaryOf(built.contentType)!);
    expect(parts.map((p) => [p.headers.get('content-type'), p.headers.get('signature-algorithm-id')])).toEqual([
      ['text/xml; charset=UTF-8', undefined],
      ['application/octet-stream', 'SHA512withRSA'],
      ['application/octet-stream', 'SHA512withRSA'],
      ['application/octet-stream', undefined],
      ['application/octet-stream', undefined],
      ['application/octet-stream', undefined],
    ]);
    expect(parts[0]!.body.equals(built.soap)).toBe(true);
    expect(parts[3]!.body.equals(auth4444.cert)).toBe(true);
    expect(parts[4]!.body.equals(owner4444.cert)).toBe(true);
    // The SOAP message: owner as client, the management service's authCertReg, the three fields.
    const soap = built.soap.toString('utf8');
    expect(soap).toContain('<xroad:client id:objectType="MEMBER"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>4444</id:memberCode></xroad:client>');
    expect(soap).toContain('<id:memberCode>0000</id:memberCode><id:subsystemCode>MANAGEMENT</id:subsystemCode><id:serviceCode>authCertReg</id:serviceCode>');
    expect(soap).toContain('<xroad:server id:objectType="SERVER"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>4444</id:memberCode><id:serverCode>ss3</id:serverCode></xroad:server>');
    expect(soap).toContain(`<xroad:address>127.0.0.9</xroad:address><xroad:authCert>${auth4444.cert.toString('base64')}</xroad:authCert>`);
    expect(soap).toContain('<xroad:protocolVersion>4.0</xroad:protocolVersion>');
    // Both signatures are over SHA-512 of the SOAP bytes, checkable with the certificates' keys alone.
    const digest = managementRequestDigest('SHA512withRSA', built.soap);
    expect(digest).toHaveLength(64);
    expect(verify('sha512', built.soap, new X509Certificate(auth4444.cert).publicKey, parts[1]!.body)).toBe(true);
    expect(verify('sha512', built.soap, new X509Certificate(owner4444.cert).publicKey, parts[2]!.body)).toBe(true);
  });

  it('reads back and verifies: both signatures, the owner certificate with its OCSP response, the member and server', async () => {
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444 });
    const parsed = parseAuthCertRegRequest(built.contentType, built.body);
    expect(parsed.serverId).toEqual(parseSecurityServerId('LOCAL/COM/4444/ss3'));
    expect(parsed.address).toBe('127.0.0.9');
    expect(parsed.authCert.equals(auth4444.cert)).toBe(true);
    const verified = verifyAuthCertRegRequest(parsed, conf(), new Date());
    expect(verified).toEqual({ serverId: parseSecurityServerId('LOCAL/COM/4444/ss3'), owner: parseClientId('LOCAL/COM/4444'), address: '127.0.0.9', authCert: auth4444.cert });
  });

  it('refuses a SOAP part changed after signing (InvalidSignatureValue, auth first)', async () => {
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444 });
    const body = Buffer.from(built.body.toString('latin1').replace('<xroad:address>127.0.0.9<', '<xroad:address>127.0.0.8<'), 'latin1');
    const parsed = parseAuthCertRegRequest(built.contentType, body);
    expect(codeOf(() => verifyAuthCertRegRequest(parsed, conf(), new Date()))).toMatchObject({ code: 'InvalidSignatureValue', details: { signature: 'auth' } });
  });

  it('refuses an owner signature made with another key (InvalidSignatureValue, owner)', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444, ownerSigner: rsaSigner(other) });
    const parsed = parseAuthCertRegRequest(built.contentType, built.body);
    expect(codeOf(() => verifyAuthCertRegRequest(parsed, conf(), new Date()))).toMatchObject({ code: 'InvalidSignatureValue', details: { signature: 'owner' } });
  });

  it('refuses an owner who is not a member of the instance (UnknownMember)', async () => {
    const owner = certify('sign', { member: 'LOCAL/COM/9999' });
    const auth = certify('auth', { server: 'LOCAL/COM/9999/ss9' });
    const built = await build({ serverId: 'LOCAL/COM/9999/ss9', auth, owner });
    expect(codeOf(() => verifyAuthCertRegRequest(parseAuthCertRegRequest(built.contentType, built.body), conf(), new Date())).code).toBe('UnknownMember');
  });

  it('refuses an authentication certificate already registered for a server (AuthCertAlreadyRegistered)', async () => {
    const owner = certify('sign', { member: 'LOCAL/COM/1111' });
    const auth = certify('auth', { server: 'LOCAL/COM/1111/ss1' }, 'LOCAL/COM/1111/ss1');
    const built = await build({ serverId: 'LOCAL/COM/1111/ss1', auth, owner });
    expect(codeOf(() => verifyAuthCertRegRequest(parseAuthCertRegRequest(built.contentType, built.body), conf(), new Date()))).toMatchObject({
      code: 'AuthCertAlreadyRegistered',
      details: { server: 'LOCAL/COM/1111/ss1' },
    });
  });

  it('refuses a certificate that is not an authentication certificate (WrongCertUsage)', async () => {
    const notAuth = certify('sign', { member: 'LOCAL/COM/4444' });
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: notAuth, owner: owner4444 });
    expect(codeOf(() => verifyAuthCertRegRequest(parseAuthCertRegRequest(built.contentType, built.body), conf(), new Date()))).toMatchObject({ code: 'WrongCertUsage', details: { usage: 'AUTHENTICATION' } });
  });

  it('refuses a server of another owner than the signing certificate names (InvalidRequest)', async () => {
    // Member 3333's key signs for member 4444's server: the certificate names 3333.
    const other = certify('sign', { member: 'LOCAL/COM/3333' });
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: other });
    const refused = codeOf(() => verifyAuthCertRegRequest(parseAuthCertRegRequest(built.contentType, built.body), conf(), new Date()));
    expect(refused.code).toBe('InvalidRequest');
    expect(String(refused.details.reason)).toContain('Subject identifier (MEMBER:LOCAL/COM/3333) in certificate does not match');
  });

  it('refuses a server identifier holding a character the reference refuses (InvalidRequest)', async () => {
    for (const serverCode of ['ss;3', 'ss\u200b3', 'ss:3']) {
      const built = await build({ serverId: { instance: 'LOCAL', memberClass: 'COM', memberCode: '4444', serverCode }, auth: auth4444, owner: owner4444 });
      expect(codeOf(() => verifyAuthCertRegRequest(parseAuthCertRegRequest(built.contentType, built.body), conf(), new Date())), JSON.stringify(serverCode)).toMatchObject({
        code: 'InvalidRequest',
        details: { reason: 'The management request contains an invalid identifier.' },
      });
    }
  });

  it('refuses an owner certificate the CA has revoked (CertValidation from its OCSP response)', async () => {
    const owner = certify('sign', { member: 'LOCAL/COM/4444' });
    pki.revoke(owner.cert);
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner });
    expect(codeOf(() => verifyAuthCertRegRequest(parseAuthCertRegRequest(built.contentType, built.body), conf(), new Date())).code).toBe('CertValidation');
  });

  it('reads only what a registration request is: content type, all six parts', async () => {
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444 });
    expect(codeOf(() => parseAuthCertRegRequest('text/xml; charset=UTF-8', built.soap)).code).toBe('InvalidContentType');
    const boundary = boundaryOf(built.contentType)!;
    const withoutOcsp = built.body.subarray(0, built.body.lastIndexOf(Buffer.from(`--${boundary}\r\n`))).toString('latin1') + `--${boundary}--\r\n`;
    expect(codeOf(() => parseAuthCertRegRequest(built.contentType, Buffer.from(withoutOcsp, 'latin1')))).toMatchObject({ code: 'InvalidRequest', details: { reason: 'Owner certificate OCSP is missing' } });
  });

  it('sends over https only to the certificate the configuration names, and reads the requestId', async () => {
    const tls = createRootCa([['CN', 'management service']]);
    const other = createRootCa([['CN', 'someone else']]);
    let received = 0;
    const server = createHttpsServer({ cert: toPem(tls.cert, 'CERTIFICATE'), key: tls.privateKey.export({ type: 'pkcs8', format: 'pem' }) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received++;
        const parsed = parseAuthCertRegRequest(req.headers['content-type']!, Buffer.concat(chunks));
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=UTF-8' }).end(authCertRegResponse(parsed, '42'));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/managementservice/manage`;
    try {
      const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444 });
      await expect(sendManagementRequest(url, built, { serverCert: tls.cert })).resolves.toEqual({ requestId: '42' });
      await expect(sendManagementRequest(url, built, { serverCert: other.cert })).rejects.toMatchObject({ code: 'NetworkError' });
      expect(received).toBe(1);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('sends over https to an IPv6 address, pinned to the certificate the configuration names', async (ctx) => {
    const tls = createRootCa([['CN', 'management service']]);
    const server = createHttpsServer({ cert: toPem(tls.cert, 'CERTIFICATE'), key: tls.privateKey.export({ type: 'pkcs8', format: 'pem' }) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/xml; charset=UTF-8' }).end(authCertRegResponse(parseAuthCertRegRequest(req.headers['content-type']!, Buffer.concat(chunks)), '43')));
    });
    const listening = await new Promise<boolean>((r) => server.once('error', () => r(false)).listen(0, '::1', () => r(true)));
    if (!listening) ctx.skip('this machine has no IPv6 loopback address (::1) to listen on');
    try {
      const url = `https://[::1]:${(server.address() as AddressInfo).port}/managementservice/manage`;
      const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444 });
      await expect(sendManagementRequest(url, built, { serverCert: tls.cert })).resolves.toEqual({ requestId: '43' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a management service flooding or trickling its answer: NetworkError, cut off at 1 MiB or the deadline', async () => {
    const flooder = await startFlooder('text/xml; charset=UTF-8', 100 * 1024 * 1024);
    const trickler = await startTrickler('text/xml; charset=UTF-8');
    try {
      const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444 });
      await expect(sendManagementRequest(`${flooder.base}/managementservice/manage`, built)).rejects.toMatchObject({ code: 'NetworkError', cause: { code: 'ResponseTooLarge', details: { limit: 1024 * 1024 } } });
      await expect(sendManagementRequest(`${trickler.base}/managementservice/manage`, built, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'NetworkError', cause: { code: 'ResponseTimeout' } });
    } finally {
      await Promise.all([flooder.close(), trickler.close()]);
    }
  });

  it('reports an unreachable management service as NetworkError', async () => {
    const built = await build({ serverId: 'LOCAL/COM/4444/ss3', auth: auth4444, owner: owner4444 });
    await expect(sendManagementRequest(`http://127.0.0.1:${await freePort()}/managementservice/manage`, built)).rejects.toMatchObject({ code: 'NetworkError' });
  });
});
