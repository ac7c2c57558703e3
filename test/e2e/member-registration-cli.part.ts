/**
 * MEMBER_01 start to finish against the local instance once more, this time with the command line
 * only (`xrd …` as an administrator types it): initialise ss3, add the timestamping service, keys,
 * CSRs, certificates from the test CA (`xrd testpki issue`, the out-of-band step), registration
 * request, approval (`xrd testpki approve`), registered, activated — then a message exchange with
 * ss1 over the new authentication certificate.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { eventually } from '../support/eventually.ts';
import { getRandomThroughJoining } from '../support/joining.ts';
import { BOOT_TIMEOUT_MS, partWorkFolder, sharedLocalInstance } from '../support/shared-instance.ts';

const execFileAsync = promisify(execFile);
const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const dir = partWorkFolder('xrd-member01-cli');
let instance: LocalInstance;

/** `xrd <args> --json` as ss3's administrator; the PIN only ever in the named environment variable. */
async function xrd(...args: string[]): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const s = instance.joining;
  const { stdout } = await execFileAsync(process.execPath, [XRD, ...args, '--json', '--data-dir', s.proxyDataDir, '--socket', s.signerSocket, '--conf', instance.pki.globalConfDir], {
    env: { ...process.env, SS3_PIN: 'cli-Token-Pin-7' },
  });
  return JSON.parse(stdout);
}

beforeAll(async () => {
  instance = await sharedLocalInstance();
}, BOOT_TIMEOUT_MS);

describe('MEMBER_01 with the command line', () => {
  it('registers ss3 and exchanges a message with its new authentication certificate', async () => {
    const inst = instance.pki.instance;
    const files = join(dir, 'admin-files');
    expect(await xrd('server', 'status')).toMatchObject({ serverCodeInitialized: false });
    expect(await xrd('server', 'init', '--owner', 'COM/4444', '--server-code', 'ss3', '--pin-env', 'SS3_PIN')).toMatchObject({ serverId: `${inst}/COM/4444/ss3`, softwareTokenInitStatus: 'INITIALIZED' });

    const [tsa] = await xrd('tsp', 'list', '--approved');
    await xrd('tsp', 'add', '--name', tsa.name, '--url', tsa.url);
    expect(await xrd('tsp', 'list')).toEqual([tsa]);

    const token = (await xrd('token', 'list')).find((t: { status: string }) => t.status !== 'NOT_INITIALIZED');
    const signKey = await xrd('key', 'generate', token.tokenId, '--usage', 'SIGNING', '--name', 'sign 4444');
    const authKey = await xrd('key', 'generate', token.tokenId, '--usage', 'AUTHENTICATION', '--name', 'auth ss3');
    const csr = async (keyId: string, usage: 'sign' | 'auth', ...who: string[]) => {
      const out = join(files, `${usage}.csr`);
      await execFileAsync('mkdir', ['-p', files]);
      await xrd('csr', 'generate', keyId, ...who, '--format', 'DER', '--out', out);
      const cert = join(files, `${usage}.pem`);
      await xrd('testpki', 'issue', '--csr', out, '--usage', usage, '--out', cert, '--dir', instance.pki.dir);
      return xrd('cert', 'import', cert);
    };
    const signCert = await csr(signKey.keyId, 'sign', '--member', `${inst}/COM/4444`);
    expect(signCert.status).toBe('registered');
    const authCert = await csr(authKey.keyId, 'auth', '--usage', 'AUTHENTICATION', '--server', `${inst}/COM/4444/ss3`);
    expect(authCert.status).toBe('saved');
    expect(readFileSync(join(files, 'auth.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');

    const registration = await xrd('cert', 'register', authCert.hash, '--address', instance.joining.address);
    expect(registration.cert.status).toBe('registration in progress');
    const { requests } = await xrd('testpki', 'requests', '--dir', instance.pki.dir);
    expect(requests.find((r: { id: string }) => r.id === registration.requestId)).toMatchObject({ status: 'SUBMITTED' });
    await xrd('testpki', 'approve', registration.requestId, '--dir', instance.pki.dir);

    await eventually(async () => ((await xrd('cert', 'list')).find((c: { hash: string; status: string }) => c.hash === authCert.hash && c.status === 'registered') ? true : undefined), 20_000, 'registered state');
    expect(await xrd('cert', 'activate', authCert.hash)).toMatchObject({ active: true, status: 'registered' });
    expect(await xrd('client', 'connection-type', `${inst}:COM:4444`, 'HTTP')).toMatchObject({ connectionType: 'HTTP', registered: true });

    await instance.startProxy(instance.joining);
    const answer = await getRandomThroughJoining(instance, `member01-cli-${Date.now()}`);
    expect(answer).toMatch(/objectType="MEMBER"/);
  }, 180_000);
});
