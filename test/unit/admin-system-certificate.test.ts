/**
 * The server's internal TLS certificate in the admin API (the reference's SystemApi
 * getSystemCertificate and downloadSystemCertificate): its details as the reference's
 * CertificateDetails, checked against OpenSSL's reading of the same certificate; the export as
 * certs.tar.gz unpacked by the system tar; the reference's roles (view_internal_tls_cert: everyone,
 * export_internal_tls_cert: not the observer).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, type Role } from '../../src/admin/api-keys.ts';
import { API_PREFIX, registerAdminRoutes } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { certificateDetails } from '../../src/certificates/certificate-details.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { ensureInternalTls } from '../../src/serverconf/internal-tls.ts';
import { openssl } from '../support/openssl.ts';

/** openssl's binary output (DER), which openssl() would read as text. */
const opensslDer = (args: string[], input?: string): Buffer => execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

const dir = mkdtempSync(join(tmpdir(), 'xrd-system-cert-'));
const keys = new ApiKeyStore(join(dir, 'admin', 'api-keys.json'));
const keyOf = (role: Role) => keys.create([role], role).key;
let app: FastifyInstance;
let certPem: string;

beforeAll(async () => {
  certPem = ensureInternalTls(join(dir, 'proxy', 'internal-tls'), 'ss1.example.org').certPem;
  app = Fastify();
  // Nothing here calls the signer: the socket is never connected.
  const admin = new ServerAdmin({ proxyDataDir: join(dir, 'proxy'), signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  registerAdminRoutes(app, { admin, keys, logger: silentLogger() });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, role: Role) => app.inject({ method: 'GET', url: `${API_PREFIX}${path}`, headers: { authorization: `X-Road-ApiKey token=${keyOf(role)}` } });

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
