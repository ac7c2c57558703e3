/**
 * The security server's own internal TLS certificate: what information systems see when they call
 * the client proxy over HTTPS and what they should pin (seed 003, "Download the internal
 * certificate of the security server"). Self-signed by default, generated on first start with the
 * openssl tool; an administrator may replace it with a PEM (certificate and key). This key is not
 * an X-Road key: it never signs messages and the reference also keeps it in a file.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';

export interface InternalTls {
  readonly certPem: string;
  readonly keyPem: string;
}

const CERT = 'internal.crt';
const KEY = 'internal.key';

/**
 * The certificate and key in `dir`, generating a self-signed pair when there is none. `name` other
 * than the internal one serves another local TLS listener (the admin API's `api.crt`); `ip` adds the
 * address it listens on to the names the certificate is valid for.
 */
export function ensureInternalTls(dir: string, commonName = hostname(), options: { name?: string; ip?: string } = {}): InternalTls {
  const name = options.name ?? 'internal';
  const ips = [...new Set(['127.0.0.1', ...(options.ip && isIP(options.ip) && options.ip !== '0.0.0.0' && options.ip !== '::' ? [options.ip] : [])])];
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // 20 years, as the reference's generated internal certificate; names for loopback use included.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '7300',
      '-keyout', `${keyFile}.new`, '-out', `${certFile}.new`,
      '-subj', `/CN=${commonName}`,
      '-addext', `subjectAltName=DNS:${commonName},DNS:localhost,${ips.map((ip) => `IP:${ip}`).join(',')}`,
    ], { stdio: 'pipe' });
    renameSync(`${keyFile}.new`, keyFile);
    renameSync(`${certFile}.new`, certFile);
  }
  return { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

/**
 * Replaces the internal certificate with an administrator's PEM holding the certificate (chain
 * allowed) and its private key.
 * @throws IncorrectCertificate when the PEM has no certificate, no key, or they do not belong together
 */
export function importInternalTls(dir: string, pem: string): InternalTls {
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const key = pem.match(/-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/)?.[0];
  if (certs.length === 0 || !key) throw new XrdError('IncorrectCertificate', { reason: 'the PEM must hold the certificate and its private key' });
  let matches: boolean;
  try {
    matches = new X509Certificate(certs[0]!).checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new XrdError('IncorrectCertificate', { reason: (err as Error).message }, { cause: err });
  }
  if (!matches) throw new XrdError('IncorrectCertificate', { reason: 'the private key does not belong to the certificate' });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, KEY), `${key}\n`, { mode: 0o600 });
  writeFileSync(join(dir, CERT), `${certs.join('\n')}\n`);
  return { certPem: `${certs.join('\n')}\n`, keyPem: `${key}\n` };
}
