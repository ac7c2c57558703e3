/**
 * The security server's own internal TLS certificate: what information systems see when they call
 * the client proxy over HTTPS and what they should pin (seed 003, "Download the internal
 * certificate of the security server"). Self-signed by default, generated on first start with the
 * openssl tool; an administrator may make a new key and certificate, ask a CA for a certificate for
 * the key (CSR) and import it, or replace both with a PEM. This key is not an X-Road key: it never
 * signs messages and the reference also keeps it in a file.
 *
 * The admin API changes the files while the proxy runs in another process: each file is replaced
 * whole (written beside, then renamed), and `internalTlsReader` gives the proxy the pair in force,
 * taking a new one only when the key and certificate on disk belong together.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { assembleCsr, certificationRequestInfo, parseDn, toPem } from '../certificates/csr.ts';
import { XrdError } from '../platform/errors.ts';
import { writeFileAtomic } from '../platform/files.ts';

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
  if (!existsSync(join(dir, `${name}.crt`)) || !existsSync(join(dir, `${name}.key`))) generatePair(dir, name, commonName, options.ip);
  return { certPem: readFileSync(join(dir, `${name}.crt`), 'utf8'), keyPem: readFileSync(join(dir, `${name}.key`), 'utf8') };
}

/** A new internal key and self-signed certificate in place of the current pair (the reference's generateInternalTlsKeyAndCertificate). */
export function generateInternalTls(dir: string, commonName = hostname()): InternalTls {
  generatePair(dir, 'internal', commonName);
  return ensureInternalTls(dir);
}

function generatePair(dir: string, name: string, commonName: string, ip?: string): void {
  const ips = [...new Set(['127.0.0.1', ...(ip && isIP(ip) && ip !== '0.0.0.0' && ip !== '::' ? [ip] : [])])];
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // 20 years, as the reference's generated internal certificate; names for loopback use included.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '7300',
    '-keyout', `${keyFile}.new`, '-out', `${certFile}.new`,
    '-subj', `/CN=${commonName}`,
    '-addext', `subjectAltName=DNS:${commonName},DNS:localhost,${ips.map((address) => `IP:${address}`).join(',')}`,
  ], { stdio: 'pipe' });
  renameSync(`${keyFile}.new`, keyFile);
  renameSync(`${certFile}.new`, certFile);
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
  writeFileAtomic(join(dir, KEY), `${key}\n`, 0o600);
  writeFileAtomic(join(dir, CERT), `${certs.join('\n')}\n`, 0o644);
  return ensureInternalTls(dir);
}

/**
 * Replaces the internal certificate with one issued for the current key (a CA's answer to
 * `internalTlsCsr`): PEM, a PEM chain (the server's certificate first), or DER.
 * @throws IncorrectCertificate (not certificates, or a chain whose links do not issue each other),
 *   InternalTlsKeyMismatch (not for the internal key), CertAlreadyExists (the certificate in use)
 */
export function importInternalCertificate(dir: string, input: Buffer): InternalTls {
  const text = input.toString('latin1');
  const blocks = text.includes('-----BEGIN CERTIFICATE-----') ? (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) : [input];
  let chain: X509Certificate[];
  try {
    chain = blocks.map((block) => new X509Certificate(block));
  } catch (err) {
    throw new XrdError('IncorrectCertificate', { reason: `not a PEM or DER certificate: ${(err as Error).message}` }, { cause: err });
  }
  for (let i = 1; i < chain.length; i++) {
    if (!chain[i - 1]!.checkIssued(chain[i]!)) throw new XrdError('IncorrectCertificate', { reason: `certificate ${i + 1} of the chain did not issue certificate ${i}` });
  }
  const current = ensureInternalTls(dir);
  const leaf = chain[0]!;
  const hash = leaf.fingerprint256.replaceAll(':', '');
  if (!leaf.checkPrivateKey(createPrivateKey(current.keyPem))) throw new XrdError('InternalTlsKeyMismatch', { hash, referenceCode: 'key_not_found' });
  if (leaf.raw.equals(new X509Certificate(current.certPem).raw)) throw new XrdError('CertAlreadyExists', { hash, referenceCode: 'certificate_already_exists' });
  writeFileAtomic(join(dir, CERT), chain.map((c) => toPem(c.raw, 'CERTIFICATE')).join(''), 0o644);
  return ensureInternalTls(dir);
}

/**
 * A PKCS#10 request (DER) for the internal key with the subject `dn` (`C=FI, O=Org, CN=host`), as
 * the reference's generateInternalCsr: signed SHA256 with the key, no extensions.
 * @throws InvalidDistinguishedName
 */
export function internalTlsCsr(dir: string, dn: string): Buffer {
  const subject = parseDn(dn);
  if (subject.length === 0 || subject.some(([, value]) => value === '')) throw new XrdError('InvalidDistinguishedName', { reason: 'the name needs at least one TYPE=value and no empty value', referenceCode: 'invalid_distinguished_name' });
  const key = createPrivateKey(ensureInternalTls(dir).keyPem);
  const info = certificationRequestInfo(subject, createPublicKey(key).export({ type: 'spki', format: 'der' }));
  // Node's ECDSA signature is DER (r, s), as PKCS#10 carries it; RSA is PKCS#1 v1.5.
  return assembleCsr(info, key.asymmetricKeyType === 'ec' ? 'SHA256withECDSA' : 'SHA256withRSA', sign('sha256', info, key));
}

/**
 * The internal pair in force, for a process that keeps running while an administrator changes it:
 * the files are looked at again at most every `recheckMs`, and a changed pair is taken only when
 * the key and certificate belong together (a change between its two renames is not half taken).
 * Answers the same object until the pair changes, so callers may compare by identity.
 */
export function internalTlsReader(dir: string, options: { recheckMs?: number; onError?: (err: Error) => void } = {}): () => InternalTls {
  const recheckMs = options.recheckMs ?? 1000;
  let current = ensureInternalTls(dir);
  let stamp = filesStamp(dir);
  let checkedAt = Date.now();
  return () => {
    if (Date.now() - checkedAt < recheckMs) return current;
    checkedAt = Date.now();
    const now = filesStamp(dir);
    if (now === stamp) return current;
    try {
      // Read only: a pair removed while serving is kept, never made anew on a connection (that is
      // the start's job, or an administrator's: a new key would silently replace a pinned one).
      const next = { certPem: readFileSync(join(dir, CERT), 'utf8'), keyPem: readFileSync(join(dir, KEY), 'utf8') };
      if (!new X509Certificate(next.certPem).checkPrivateKey(createPrivateKey(next.keyPem))) return current;
      current = next;
      stamp = now;
    } catch (err) {
      options.onError?.(err as Error);
    }
    return current;
  };
}

function filesStamp(dir: string): string {
  return [KEY, CERT]
    .map((name) => {
      const s = statSync(join(dir, name), { throwIfNoEntry: false });
      return s ? `${s.ino}:${s.size}:${s.mtimeMs}` : '-';
    })
    .join('/');
}

