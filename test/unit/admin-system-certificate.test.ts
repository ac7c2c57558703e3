/**
 * The server's internal TLS certificate in the admin API (the reference's SystemApi
 * getSystemCertificate, downloadSystemCertificate, generateSystemTlsKeyAndCertificate,
 * generateSystemCertificateRequest, importSystemCertificate): its details as the reference's
 * CertificateDetails, checked against OpenSSL's reading of the same certificate; the export as
 * certs.tar.gz unpacked by the system tar; a new key, a CSR signed by an OpenSSL CA and its
 * certificate imported, each served by a running client proxy from the next TLS handshake on;
 * coded refusals; the audit rows under the caller's name; the reference's roles
 * (view_internal_tls_cert: everyone; export: not the observer; generate, CSR, import: security
 * officer and system administrator).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, type Role } from '../../src/serverconf/api-keys.ts';
import { API_PREFIX, registerAdminRoutes } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { certificateDetails } from '../../src/certificates/certificate-details.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { SpoolFolder } from '../../src/platform/spool.ts';
import { startClientProxy, type ClientProxyDeps } from '../../src/proxy/client/client-proxy.ts';
import { ensureInternalTls, internalTlsReader } from '../../src/serverconf/internal-tls.ts';
import { lastAuditEntry } from '../support/admin-api.ts';
import { createTestCa, newKeyAndCsr, openssl } from '../support/openssl.ts';

/** openssl's binary output (DER), which openssl() would read as text. */
const opensslDer = (args: string[], input?: string): Buffer => execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

const dir = mkdtempSync(join(tmpdir(), 'xrd-system-cert-'));
const keys = new ApiKeyStore(join(dir, 'admin', 'api-keys.json'));
const keyOf = (role: Role) => keys.create([role], role).key;
let app: FastifyInstance;
let certPem: string;
let proxy: Awaited<ReturnType<typeof startClientProxy>>;
const tlsDir = join(dir, 'proxy', 'internal-tls');

beforeAll(async () => {
  certPem = ensureInternalTls(join(dir, 'proxy', 'internal-tls'), 'ss1.example.org').certPem;
  app = Fastify();
  // Nothing here calls the signer: the socket is never connected.
  const admin = new ServerAdmin({ proxyDataDir: join(dir, 'proxy'), signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  // Many calls in a moment from one address: the rate limit is tested elsewhere (api-security.test.ts).
  registerAdminRoutes(app, { admin, keys, logger: silentLogger(), rateLimit: { perSecond: 1000, perMinute: 10_000 } });
  await app.ready();
  // The client proxy as security-server.ts starts it; no request reaches its handler here, only handshakes.
  const proxyDeps = { logger: silentLogger(), settings: { spool: new SpoolFolder(join(dir, 'spool'), { thresholdBytes: 1024 * 1024 }) } };
  proxy = await startClientProxy(proxyDeps as unknown as ClientProxyDeps, { host: '127.0.0.1', httpPort: 0, httpsPort: 0, internalTls: internalTlsReader(tlsDir, { recheckMs: 0 }) });
});
afterAll(async () => {
  await proxy?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, role: Role) => app.inject({ method: 'GET', url: `${API_PREFIX}${path}`, headers: { authorization: `X-Road-ApiKey token=${keyOf(role)}` } });
const post = (path: string, role: Role, body?: object | Buffer) =>
  app.inject({
    method: 'POST',
    url: `${API_PREFIX}${path}`,
    headers: { authorization: `X-Road-ApiKey token=${keyOf(role)}`, ...(Buffer.isBuffer(body) ? { 'content-type': 'application/octet-stream' } : body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { payload: Buffer.isBuffer(body) ? body : JSON.stringify(body) } : {}),
  });

/** The SHA-256 (upper-case hex) of the certificate the client proxy presents in a new TLS handshake. */
function presentedHash(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: proxy.httpsPort, rejectUnauthorized: false, timeout: 10_000 }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256.replaceAll(':', ''));
      socket.destroy();
    });
    socket.on('error', reject);
    socket.on('timeout', () => socket.destroy(new Error('handshake timed out')));
  });
}

const lastAudit = (action: string) => lastAuditEntry(join(dir, 'proxy'), action);

describe('GET /system/certificate', () => {
  it("answers the reference's CertificateDetails of the internal certificate, as OpenSSL reads it, to every role", async () => {
    for (const role of ['XROAD_SECURESERVER_OBSERVER', 'XROAD_SERVICE_ADMINISTRATOR', 'XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SECURITY_OFFICER', 'XROAD_REGISTRATION_OFFICER'] as const) {
      expect((await get('/system/certificate', role)).statusCode).toBe(200);
    }
    const details = (await get('/system/certificate', 'XROAD_SECURESERVER_OBSERVER')).json();
    const text = openssl(['x509', '-noout', '-fingerprint', '-sha256', '-serial', '-startdate', '-enddate', '-subject', '-nameopt', 'RFC2253', '-ext', 'subjectAltName', '-modulus'], certPem);
    const field = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(text)![1]!;
    expect(details.hash).toBe(field('sha256 Fingerprint').replaceAll(':', ''));
    expect(details.serial).toBe(BigInt(`0x${field('serial')}`).toString());
    expect(details.not_before).toBe(new Date(field('notBefore')).toISOString());
    expect(details.not_after).toBe(new Date(field('notAfter')).toISOString());
    expect(details.subject_distinguished_name).toBe('CN=ss1.example.org');
    expect(details.subject_common_name).toBe('ss1.example.org');
    expect(details.issuer_distinguished_name).toBe('CN=ss1.example.org');
    expect(details.subject_alternative_names).toContain('DNS:ss1.example.org');
    expect(details.rsa_public_key_modulus).toBe(field('Modulus').toLowerCase());
    expect(details).toMatchObject({ version: 3, signature_algorithm: 'SHA256withRSA', public_key_algorithm: 'RSA', rsa_public_key_exponent: 65537 });
    expect(details.signature).toMatch(/^[0-9a-f]{512}$/);
  });

  it('reads an EC certificate with key usages and a multi-attribute name, most specific attribute first as the reference writes it', () => {
    const key = join(dir, 'ec.key');
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    const pem = openssl(['req', '-x509', '-new', '-key', key, '-sha384', '-days', '30', '-subj', '/C=FI/O=Test Org/CN=is.example.org', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment']);
    const details = certificateDetails(pem);
    expect(details).toMatchObject({
      subject_distinguished_name: 'CN=is.example.org, O=Test Org, C=FI',
      signature_algorithm: 'SHA384withECDSA',
      public_key_algorithm: 'EC',
      ec_public_parameters: 'prime256v1',
      key_usages: ['DIGITAL_SIGNATURE', 'KEY_ENCIPHERMENT'],
    });
    // The uncompressed point is the last 65 bytes of the P-256 SubjectPublicKeyInfo.
    expect(details.ec_public_key_point).toBe(opensslDer(['ec', '-in', key, '-pubout', '-outform', 'DER']).subarray(-65).toString('hex'));
  });
});

describe('GET /system/certificate/export', () => {
  it('answers certs.tar.gz holding cert.pem and cert.cer of the internal certificate (unpacked by the system tar)', async () => {
    const res = await get('/system/certificate/export', 'XROAD_SERVICE_ADMINISTRATOR');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/gzip');
    expect(res.headers['content-disposition']).toBe('attachment; filename="certs.tar.gz"');
    const out = join(dir, 'unpacked');
    mkdirSync(out);
    writeFileSync(join(dir, 'certs.tar.gz'), res.rawPayload);
    execFileSync('tar', ['-xzf', join(dir, 'certs.tar.gz'), '-C', out]);
    expect(readFileSync(join(out, 'cert.pem'), 'utf8').trim()).toBe(certPem.trim());
    expect(readFileSync(join(out, 'cert.cer')).equals(opensslDer(['x509', '-outform', 'DER'], certPem))).toBe(true);
  });

  it("is refused to an observer (the reference's export_internal_tls_cert leaves the observer out)", async () => {
    const res = await get('/system/certificate/export', 'XROAD_SECURESERVER_OBSERVER');
    expect(res.statusCode).toBe(403);
  });
});

describe('POST /system/certificate (a new key and self-signed certificate)', () => {
  it('replaces the pair, the client proxy presents the new certificate from the next handshake on, and the change is audited under the caller', async () => {
    const before = (await get('/system/certificate', 'XROAD_SECURESERVER_OBSERVER')).json().hash;
    expect(await presentedHash()).toBe(before);
    const res = await post('/system/certificate', 'XROAD_SECURITY_OFFICER');
    expect(res.statusCode).toBe(201);
    const after = res.json().hash;
    expect(after).not.toBe(before);
    expect((await get('/system/certificate', 'XROAD_SECURESERVER_OBSERVER')).json().hash).toBe(after);
    expect(await presentedHash()).toBe(after);
    expect(await lastAudit('GENERATE_INTERNAL_TLS_KEY_CERT')).toMatchObject({ actor: { kind: 'api-key', name: 'XROAD_SECURITY_OFFICER' }, detail: { certHash: after } });
  });

  it('is refused to the roles the reference leaves out (service administrator, registration officer, observer)', async () => {
    for (const role of ['XROAD_SERVICE_ADMINISTRATOR', 'XROAD_REGISTRATION_OFFICER', 'XROAD_SECURESERVER_OBSERVER'] as const) {
      for (const path of ['/system/certificate', '/system/certificate/csr', '/system/certificate/import']) expect((await post(path, role)).statusCode).toBe(403);
    }
  });
});

describe('POST /system/certificate/csr and /system/certificate/import (a certificate from a CA for the internal key)', () => {
  const ca = createTestCa('Internal TLS CA');

  it('answers a DER PKCS#10 request for the internal key with the subject asked for, which OpenSSL verifies', async () => {
    const res = await post('/system/certificate/csr', 'XROAD_SYSTEM_ADMINISTRATOR', { name: 'C=FI, O=Test Org, CN=ss1.example.org' });
    expect(res.statusCode).toBe(201);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="internal_tls_cert_request_\d{14}\.p10"$/);
    const text = openssl(['req', '-inform', 'DER', '-verify', '-noout', '-subject', '-nameopt', 'RFC2253', '-pubkey'], res.rawPayload);
    expect(text).toContain('subject=CN=ss1.example.org,O=Test Org,C=FI');
    const keyPem = readFileSync(join(tlsDir, 'internal.key'), 'utf8');
    expect(text).toContain(openssl(['pkey', '-pubout'], keyPem).trim());
    expect(await lastAudit('GENERATE_INTERNAL_TLS_CSR')).toMatchObject({ actor: { name: 'XROAD_SYSTEM_ADMINISTRATOR' }, detail: { subjectName: 'C=FI, O=Test Org, CN=ss1.example.org' } });
  });

  it('refuses a name that is not TYPE=value pairs with InvalidDistinguishedName', async () => {
    const res = await post('/system/certificate/csr', 'XROAD_SYSTEM_ADMINISTRATOR', { name: 'just a host name' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'InvalidDistinguishedName', reference_code: 'invalid_distinguished_name' });
  });

  it('imports the certificate the CA issued for the CSR (PEM chain), which the client proxy presents next; the same again is CertAlreadyExists', async () => {
    const csr = (await post('/system/certificate/csr', 'XROAD_SECURITY_OFFICER', { name: 'CN=ss1.example.org' })).rawPayload;
    const issued = ca.issue(openssl(['req', '-inform', 'DER'], csr), 'digitalSignature,keyEncipherment', 'serverAuth');
    const res = await post('/system/certificate/import', 'XROAD_SECURITY_OFFICER', Buffer.from(issued + ca.certPem));
    expect(res.statusCode).toBe(200);
    const details = res.json();
    expect(details).toMatchObject({ subject_distinguished_name: 'CN=ss1.example.org', issuer_common_name: 'Internal TLS CA', key_usages: ['DIGITAL_SIGNATURE', 'KEY_ENCIPHERMENT'] });
    expect(await presentedHash()).toBe(details.hash);
    expect(await lastAudit('IMPORT_INTERNAL_TLS_CERT')).toMatchObject({ actor: { name: 'XROAD_SECURITY_OFFICER' }, detail: { certHash: details.hash } });

    const again = await post('/system/certificate/import', 'XROAD_SECURITY_OFFICER', opensslDer(['x509', '-outform', 'DER'], issued));
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatchObject({ code: 'CertAlreadyExists', reference_code: 'certificate_already_exists' });
  });

  it('refuses a certificate for another key with InternalTlsKeyMismatch and leaves the certificate in force', async () => {
    const inForce = await presentedHash();
    const other = ca.issue(newKeyAndCsr(dir, 'other', '/CN=other.example.org').csrPem, 'digitalSignature');
    const res = await post('/system/certificate/import', 'XROAD_SECURITY_OFFICER', Buffer.from(other));
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'InternalTlsKeyMismatch', reference_code: 'key_not_found' });
    expect(await presentedHash()).toBe(inForce);
    expect((await get('/system/certificate', 'XROAD_SECURESERVER_OBSERVER')).json().hash).toBe(inForce);
  });

  it('refuses what is not a certificate, and a chain whose second certificate did not issue the first, with IncorrectCertificate', async () => {
    expect((await post('/system/certificate/import', 'XROAD_SECURITY_OFFICER', Buffer.from('not a certificate'))).json().error.code).toBe('IncorrectCertificate');
    const csr = (await post('/system/certificate/csr', 'XROAD_SECURITY_OFFICER', { name: 'CN=ss1.example.org' })).rawPayload;
    const issued = ca.issue(openssl(['req', '-inform', 'DER'], csr), 'digitalSignature');
    const stranger = createTestCa('Stranger CA');
    const res = await post('/system/certificate/import', 'XROAD_SECURITY_OFFICER', Buffer.from(issued + stranger.certPem));
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('IncorrectCertificate');
  });
});

describe('internalTlsReader (how the running proxy sees a change made by another process)', () => {
  it('takes a changed pair only when the key and certificate on disk belong together', () => {
    const own = join(dir, 'reader');
    const read = internalTlsReader(own, { recheckMs: 0 });
    const first = read();
    expect(read()).toBe(first);
    // A change half done: a new key, its certificate not yet renamed into place.
    newKeyAndCsr(dir, 'half', '/CN=half', join(own, 'internal.key'));
    expect(read()).toBe(first);
    // The certificate for that key arrives: the pair is taken.
    writeFileSync(join(own, 'internal.crt'), openssl(['req', '-x509', '-new', '-key', join(own, 'internal.key'), '-subj', '/CN=half', '-days', '1']));
    expect(read().certPem).toContain('BEGIN CERTIFICATE');
    expect(read()).not.toBe(first);
    expect(read().keyPem).toBe(readFileSync(join(own, 'internal.key'), 'utf8'));
  });
});
