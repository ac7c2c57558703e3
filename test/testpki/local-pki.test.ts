/**
 * The test PKI's state (pki/state.json) as several processes change it at once, as `xrd testpki
 * issue|revoke|approve` do beside a running `xrd testpki serve`: no change is lost.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { newKeyAndCsr, pemToDer } from '../support/openssl.ts';

const run = promisify(execFile);
const LOCAL_PKI = resolve(import.meta.dirname, '../../src/dev/testpki/local-pki.ts');

/** Another process: issues `count` sign certificates for the CSR and revokes every second one. */
const WRITER = `
import { readFileSync } from 'node:fs';
import { LocalPki } from ${JSON.stringify(LOCAL_PKI)};
const [dir, csrFile, count] = process.argv.slice(1);
const csr = readFileSync(csrFile);
for (let i = 0; i < Number(count); i++) {
  const cert = LocalPki.open(dir).issue(csr, 'sign');
  if (i % 2 === 1) LocalPki.open(dir).revoke(cert);
}
`;

describe('test PKI state', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-local-pki-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every certificate issued and revoked by several processes at once', async () => {
    const pki = LocalPki.init(join(dir, 'pki'), { ocspPort: 1, tsaPort: 2, confPort: 3 });
    const csrFile = join(dir, 'member.csr.der');
    writeFileSync(csrFile, pemToDer(newKeyAndCsr(dir, 'member', '/C=FI/O=Member/CN=1111').csrPem));
    const PROCESSES = 4;
    const EACH = 16;
    await Promise.all(Array.from({ length: PROCESSES }, () => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', WRITER, pki.dir, csrFile, String(EACH)])));

    const state = JSON.parse(readFileSync(join(pki.dir, 'pki', 'state.json'), 'utf8')) as { issued: { serial: string; usage: string; revokedAt?: string }[] };
    const signCerts = state.issued.filter((i) => i.usage === 'sign');
    expect(signCerts).toHaveLength(PROCESSES * EACH);
    expect(new Set(signCerts.map((i) => i.serial)).size).toBe(PROCESSES * EACH);
    expect(signCerts.filter((i) => i.revokedAt !== undefined)).toHaveLength((PROCESSES * EACH) / 2);
    // No lock or temporary file is left behind.
    expect(readdirSync(join(pki.dir, 'pki')).filter((f) => !f.endsWith('.pem'))).toEqual(['state.json']);
  });
});
