/** The reference's test vectors in ../shared/xroad-vectors (MIT, X-Road). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const VECTORS = resolve(import.meta.dirname, '../../../shared/xroad-vectors');

/** The signing certificate, its OCSP response and the signing time from a shared ASiC container. */
export function fromContainer(name: string): { cert: Buffer; ocsp: Buffer; signingTime: Date } {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-asic-'));
  execFileSync('unzip', ['-q', join(VECTORS, 'asic', name), '-d', dir]);
  const xml = readFileSync(join(dir, 'META-INF', 'signatures.xml'), 'utf8');
  const b64 = (re: RegExp) => Buffer.from(re.exec(xml)![1]!.replace(/&#13;|\s/g, ''), 'base64');
  return {
    cert: b64(/<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/),
    ocsp: b64(/<xades:EncapsulatedOCSPValue[^>]*>([^<]+)<\/xades:EncapsulatedOCSPValue>/),
    signingTime: new Date(/<xades:SigningTime>([^<]+)<\/xades:SigningTime>/.exec(xml)![1]!),
  };
}
