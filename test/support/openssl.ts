/** OpenSSL as an independent peer in tests: verifying our signatures and CSRs, issuing certificates. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function openssl(args: string[], input?: Buffer | string): string {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
}

/** Runs openssl and reports success instead of throwing (for verify commands). */
export function opensslOk(args: string[]): boolean {
  try {
    openssl(args);
    return true;
  } catch {
    return false;
  }
}

export function spkiToPem(spki: Buffer, dir: string, name: string): string {
  const path = join(dir, `${name}.pem`);
  writeFileSync(path, `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PUBLIC KEY-----\n`);
  return path;
}

export interface TestCa {
  readonly dir: string;
  readonly certPem: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Issues a certificate for a CSR (PEM) with the given keyUsage (and optional extendedKeyUsage). */
  issue(csrPem: string, keyUsage: string, extendedKeyUsage?: string, days?: number): string;
  /** Issues a certificate with these extension lines (openssl -extfile syntax). */
  issueWithExtensions(csrPem: string, extensions: string, days?: number): string;
}

export interface TestCaOptions {
  /** Issued by this CA instead of self-signed. */
  readonly parent?: TestCa;
  /** The basicConstraints line; default `critical,CA:TRUE`. */
  readonly basicConstraints?: string;
}

/** A throw-away CA (root, or intermediate under `parent`) made with the openssl command line. */
export function createTestCa(name = 'Test CA', options: TestCaOptions = {}): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-ca-'));
  const keyPath = join(dir, 'ca.key');
  const certPath = join(dir, 'ca.pem');
  const basicConstraints = options.basicConstraints ?? 'critical,CA:TRUE';
  if (options.parent) {
    const { csrPem } = newKeyAndCsr(dir, 'ca', `/O=Test/CN=${name}`, keyPath);
    writeFileSync(certPath, options.parent.issueWithExtensions(csrPem, `basicConstraints=${basicConstraints}\nkeyUsage=critical,keyCertSign,cRLSign\n`));
  } else {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '30', '-subj', `/O=Test/CN=${name}`, '-addext', `basicConstraints=${basicConstraints}`, '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }
  let serial = 1;
  const ca: TestCa = {
    dir,
    certPath,
    keyPath,
    certPem: openssl(['x509', '-in', certPath]),
    issue: (csrPem, keyUsage, extendedKeyUsage, days) =>
      ca.issueWithExtensions(csrPem, `keyUsage=critical,${keyUsage}\n${extendedKeyUsage ? `extendedKeyUsage=${extendedKeyUsage}\n` : ''}`, days),
    issueWithExtensions(csrPem, extensions, days = 30) {
      const n = serial++;
      const csr = join(dir, `req${n}.csr`);
      const ext = join(dir, `ext${n}.cnf`);
      writeFileSync(csr, csrPem);
      writeFileSync(ext, extensions);
      return openssl(['x509', '-req', '-in', csr, '-CA', certPath, '-CAkey', keyPath, '-set_serial', String(1000 + n), '-days', String(days), '-extfile', ext]);
    },
  };
  return ca;
}

/** A new RSA key and a CSR for it, made by openssl; returns the key file and the CSR PEM. */
export function newKeyAndCsr(dir: string, name: string, subject: string, keyPath = join(dir, `${name}.key`)): { keyPath: string; csrPem: string } {
  const csrPem = openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-subj', subject]);
  return { keyPath, csrPem };
}

export function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s+/g, ''), 'base64');
}

export interface OcspIndexEntry {
  /** Certificate serial number, hex. */
  readonly serial: string;
  readonly revokedAt?: Date;
}

/**
 * Answers an OCSP request with `openssl ocsp` in file mode, as the CA's responder would: good for
 * listed certificates, revoked for revoked ones, unknown for the rest.
 */
export function opensslOcspRespond(options: {
  dir: string;
  caCertPath: string;
  responderCertPath: string;
  responderKeyPath: string;
  index: readonly OcspIndexEntry[];
  request: Buffer;
  validityMinutes?: number;
}): Buffer {
  const asn1Time = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  const index = options.index
    .map((e) => `${e.revokedAt ? 'R' : 'V'}\t${asn1Time(new Date(Date.now() + 86_400_000))}\t${e.revokedAt ? asn1Time(e.revokedAt) : ''}\t${e.serial.toUpperCase()}\tunknown\t/CN=serial-${e.serial}`)
    .join('\n');
  const indexPath = join(options.dir, 'index.txt');
  const reqPath = join(options.dir, 'ocsp-req.der');
  const respPath = join(options.dir, 'ocsp-resp.der');
  writeFileSync(indexPath, index + '\n');
  writeFileSync(reqPath, options.request);
  const validity = options.validityMinutes === undefined ? [] : ['-nmin', String(options.validityMinutes)];
  openssl(['ocsp', '-index', indexPath, '-CA', options.caCertPath, '-rsigner', options.responderCertPath, '-rkey', options.responderKeyPath, '-reqin', reqPath, '-respout', respPath, ...validity]);
  return readFileSync(respPath);
}
