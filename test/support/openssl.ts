/** OpenSSL as an independent peer in tests: verifying our signatures and CSRs, issuing certificates. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
  /** Issues a certificate for a CSR (PEM) with the given keyUsage (and optional extendedKeyUsage). */
  issue(csrPem: string, keyUsage: string, extendedKeyUsage?: string, days?: number): string;
}

/** A throw-away CA made with the openssl command line. */
export function createTestCa(name = 'Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-ca-'));
  const key = join(dir, 'ca.key');
  const certPath = join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', certPath, '-days', '30', '-subj', `/O=Test/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  let serial = 1;
  return {
    dir,
    certPath,
    certPem: openssl(['x509', '-in', certPath]),
    issue(csrPem, keyUsage, extendedKeyUsage, days = 30) {
      const n = serial++;
      const csr = join(dir, `req${n}.csr`);
      const ext = join(dir, `ext${n}.cnf`);
      writeFileSync(csr, csrPem);
      writeFileSync(ext, `keyUsage=critical,${keyUsage}\n${extendedKeyUsage ? `extendedKeyUsage=${extendedKeyUsage}\n` : ''}`);
      return openssl(['x509', '-req', '-in', csr, '-CA', certPath, '-CAkey', key, '-set_serial', String(1000 + n), '-days', String(days), '-extfile', ext]);
    },
  };
}
