/**
 * The systemd units in native-config/systemd as an administrator relies on them: systemd's own
 * checker accepts them without a warning, they run the compiled dist/ of the install folder, every
 * xrd flag in their command lines exists, the proxy reaches the signer's proxy socket only and the
 * admin API its administration socket, keys stay with a user of their own, the hardening is in
 * place (and MemoryDenyWriteExecute, which V8 cannot run under, is not), and the users and
 * directories files do what the units expect.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DIR = join(ROOT, 'native-config/systemd');
const XRD = join(ROOT, 'scripts/xrd.mjs');
const ANALYZE = '/usr/bin/systemd-analyze';
const hasAnalyze = existsSync(ANALYZE);
const UNITS = ['xrd-signer.service', 'xrd-proxy.service', 'xrd-admin.service'] as const;

type Unit = Map<string, Map<string, string[]>>;

/** Sections → keys → values in order (a key may repeat); continuation lines joined, comments dropped. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    section!.set(key, [...(section!.get(key) ?? []), value]);
  }
  return unit;
}

const read = (name: string) => readFileSync(join(DIR, name), 'utf8');
const units = Object.fromEntries(UNITS.map((u) => [u, parseUnit(read(u))])) as Record<(typeof UNITS)[number], Unit>;
const service = (u: (typeof UNITS)[number]) => units[u].get('Service')!;
const one = (u: (typeof UNITS)[number], key: string) => service(u).get(key)?.at(-1);
const all = (u: (typeof UNITS)[number], key: string) => service(u).get(key) ?? [];
/** ExecStart's words after the node binary and the entry point. */
const xrdArgs = (u: (typeof UNITS)[number]) => one(u, 'ExecStart')!.split(/\s+/).slice(2);
const flag = (u: (typeof UNITS)[number], name: string) => {
  const args = xrdArgs(u);
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};

const temp: string[] = [];
afterAll(() => temp.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('systemd units', () => {
  it.skipIf(!hasAnalyze)(`systemd-analyze verify accepts them without a warning${hasAnalyze ? '' : ` (skipped: ${ANALYZE} is not installed)`}`, () => {
    // A copy naming this machine's node, so the check of ExecStart's binary holds wherever node lives.
    const dir = mkdtempSync(join(tmpdir(), 'xrd-units-'));
    temp.push(dir);
    for (const u of UNITS) writeFileSync(join(dir, u), read(u).replaceAll('/usr/bin/node ', `${process.execPath} `));
    const run = spawnSync(ANALYZE, ['verify', '--man=no', ...UNITS.map((u) => join(dir, u))], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0' } });
    expect(run.stderr, run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it.skipIf(!hasAnalyze)(`systemd-analyze security rates each at most 2.0 (OK)${hasAnalyze ? '' : ' (skipped: no systemd-analyze)'}`, () => {
    for (const u of UNITS) {
      const run = spawnSync(ANALYZE, ['security', '--offline=yes', '--no-pager', join(DIR, u)], { encoding: 'utf8' });
      const level = /Overall exposure level for \S+: ([\d.]+)/.exec(run.stdout)?.[1];
      // Older systemd without --offline cannot rate a unit file that is not installed.
      if (level === undefined) continue;
      expect(Number(level), `${u}: ${run.stdout.split('\n').filter((l) => l.includes('✗')).join('\n')}`).toBeLessThanOrEqual(2);
    }
  });

  it('they run the built tree: dist/cli/bin.js of the install folder, which npm run build compiles from src/cli/bin.ts', () => {
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
    const entry = join(build.compilerOptions.outDir, relative(build.compilerOptions.rootDir, 'src/cli/bin.ts')).replace(/\.ts$/, '.js');
    expect(entry).toBe('dist/cli/bin.js');
    expect(existsSync(join(ROOT, 'src/cli/bin.ts'))).toBe(true);
    for (const u of UNITS) expect(one(u, 'ExecStart')!.split(/\s+/).slice(0, 2), u).toEqual(['/usr/bin/node', `/opt/xrd/${entry}`]);
  });

  it('every flag in the command lines is one xrd knows (it refuses unknown flags with exit 2)', () => {
    for (const u of UNITS) {
      const args = xrdArgs(u).filter((a) => !a.startsWith('$'));
      const run = spawnSync(process.execPath, [XRD, ...args, '--help'], { encoding: 'utf8' });
      expect(run.status, `${u}: ${run.stderr}`).toBe(0);
    }
    expect(xrdArgs('xrd-signer.service').slice(0, 2)).toEqual(['daemon', 'start']);
    expect(xrdArgs('xrd-proxy.service').slice(0, 2)).toEqual(['proxy', 'start']);
    expect(xrdArgs('xrd-admin.service').slice(0, 2)).toEqual(['admin', 'start']);
  });

  it('the proxy reaches only the proxy socket (group xrd); the admin API and the administration socket share group xrd-admin, which the proxy lacks', () => {
    const dir = `/run/${one('xrd-signer.service', 'RuntimeDirectory')}`;
    expect(one('xrd-signer.service', 'RuntimeDirectoryMode')).toBe('0750');
    expect(one('xrd-signer.service', 'Group')).toBe('xrd');
    // The administration socket: every operation, group xrd-admin (the signer is in it to hand the socket over).
    expect(flag('xrd-signer.service', '--socket')).toBe(`${dir}/signer.sock`);
    expect(flag('xrd-signer.service', '--socket-mode')).toBe('660');
    expect(flag('xrd-signer.service', '--socket-group')).toBe('xrd-admin');
    expect(all('xrd-signer.service', 'SupplementaryGroups')).toEqual(['xrd-admin']);
    // The proxies' socket: signing and OCSP, the signer's own group xrd.
    expect(flag('xrd-signer.service', '--proxy-socket')).toBe(`${dir}/signer-proxy.sock`);
    expect(flag('xrd-signer.service', '--proxy-socket-mode')).toBe('660');
    expect(flag('xrd-signer.service', '--proxy-socket-group')).toBeUndefined();

    expect(flag('xrd-proxy.service', '--proxy-socket')).toBe(`${dir}/signer-proxy.sock`);
    expect(flag('xrd-proxy.service', '--socket')).toBeUndefined();
    expect(all('xrd-proxy.service', 'SupplementaryGroups')).toEqual([]);
    expect(flag('xrd-admin.service', '--socket')).toBe(`${dir}/signer.sock`);
    expect(all('xrd-admin.service', 'SupplementaryGroups')).toEqual(['xrd-admin']);
    for (const u of ['xrd-proxy.service', 'xrd-admin.service'] as const) {
      expect(one(u, 'Group')).toBe('xrd');
      // A user of its own for the keys: the proxy and the admin API cannot read the signer's files.
      expect(one(u, 'User')).not.toBe(one('xrd-signer.service', 'User'));
      expect(units[u].get('Unit')!.get('After')!.join(' ')).toContain('xrd-signer.service');
    }
    expect(xrdArgs('xrd-signer.service')).toContain('--no-prompt');
  });

  it('data in state directories private to their user; the shared global configuration writable by the signer only', () => {
    expect(flag('xrd-signer.service', '--data-dir')).toBe(`/var/lib/${one('xrd-signer.service', 'StateDirectory')}`);
    expect(one('xrd-signer.service', 'StateDirectoryMode')).toBe('0700');
    for (const u of ['xrd-proxy.service', 'xrd-admin.service'] as const) {
      expect(flag(u, '--data-dir')).toBe(`/var/lib/${one(u, 'StateDirectory')}`);
      expect(one(u, 'StateDirectoryMode')).toBe('0700');
      expect(one(u, 'UMask')).toBe('0077');
      expect(flag(u, '--conf')).toBe(flag('xrd-signer.service', '--conf'));
    }
    const conf = flag('xrd-signer.service', '--conf')!;
    // Downloads are staged beside the folder, so its parent is what the signer may write.
    expect(all('xrd-signer.service', 'ReadWritePaths')).toContain(resolve(conf, '..'));
    expect(all('xrd-proxy.service', 'ReadWritePaths')).toEqual([]);
  });

  it('hardening an administrator relies on, in all three', () => {
    for (const u of UNITS) {
      const expectations: Record<string, string> = {
        NoNewPrivileges: 'yes',
        CapabilityBoundingSet: '',
        AmbientCapabilities: '',
        ProtectSystem: 'strict',
        ProtectHome: 'yes',
        PrivateTmp: 'yes',
        PrivateDevices: 'yes',
        ProtectKernelTunables: 'yes',
        ProtectKernelModules: 'yes',
        ProtectKernelLogs: 'yes',
        ProtectControlGroups: 'yes',
        ProtectClock: 'yes',
        RestrictNamespaces: 'yes',
        RestrictSUIDSGID: 'yes',
        LockPersonality: 'yes',
        SystemCallArchitectures: 'native',
        SystemCallFilter: '@system-service',
      };
      for (const [key, value] of Object.entries(expectations)) expect(one(u, key), `${u} ${key}`).toBe(value);
      expect(one(u, 'RestrictAddressFamilies')!.split(' ').sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
      // V8's JIT maps writable memory executable: the unit must not forbid it, and says why.
      expect(service(u).has('MemoryDenyWriteExecute')).toBe(false);
      expect(read(u)).toMatch(/# Not MemoryDenyWriteExecute=yes: V8's JIT/);
      expect(one(u, 'User')).toMatch(/^xrd/);
    }
  });

  it("the signer may lock SoftHSM's token files, and autologin is there as a commented example with an encrypted credential", () => {
    expect(all('xrd-signer.service', 'ReadWritePaths')).toContain('-/var/lib/softhsm/tokens');
    const text = read('xrd-signer.service');
    expect(text).toMatch(/^#LoadCredentialEncrypted=xrd-signer-pins:\/etc\/xrd\/signer-pins\.cred$/m);
    expect(text).toMatch(/^#Environment=XRD_AUTOLOGIN=--autologin credential:xrd-signer-pins$/m);
    expect(xrdArgs('xrd-signer.service').at(-1)).toBe('$XRD_AUTOLOGIN');
    expect(service('xrd-signer.service').has('LoadCredentialEncrypted')).toBe(false);
  });

  it('the proxy serves the health check on 5588', () => {
    expect(flag('xrd-proxy.service', '--health-port')).toBe('5588');
  });

  const sysusers = '/usr/bin/systemd-sysusers';
  const tmpfiles = '/usr/bin/systemd-tmpfiles';
  const canCreate = existsSync(sysusers) && existsSync(tmpfiles) && process.getuid?.() === 0;
  it.skipIf(!canCreate)(`sysusers and tmpfiles make the users and the shared folder in a scratch root${canCreate ? '' : ' (skipped: needs root and systemd-sysusers/-tmpfiles)'}`, () => {
    const root = mkdtempSync(join(tmpdir(), 'xrd-root-'));
    temp.push(root);
    mkdirSync(join(root, 'etc'));
    const users = spawnSync(sysusers, [`--root=${root}`, join(DIR, 'xrd.sysusers.conf')], { encoding: 'utf8' });
    expect(users.status, users.stderr).toBe(0);
    const passwd = Object.fromEntries(readFileSync(join(root, 'etc/passwd'), 'utf8').trim().split('\n').map((l) => l.split(':')).map((f) => [f[0]!, { uid: Number(f[2]), gid: Number(f[3]) }]));
    for (const u of UNITS) expect(passwd[one(u, 'User')!], u).toBeDefined();
    expect(passwd['xrd-signer']!.gid).toBe(passwd.xrd!.gid);
    const groups = readFileSync(join(root, 'etc/group'), 'utf8').trim().split('\n').map((l) => l.split(':')[0]);
    expect(groups).toEqual(expect.arrayContaining(['xrd', 'xrd-admin']));
    const dirs = spawnSync(tmpfiles, [`--root=${root}`, '--create', join(DIR, 'xrd.tmpfiles.conf')], { encoding: 'utf8' });
    expect(dirs.status, dirs.stderr).toBe(0);
    const shared = statSync(join(root, resolve(flag('xrd-signer.service', '--conf')!, '..')));
    expect(shared.mode & 0o777).toBe(0o750);
    expect([shared.uid, shared.gid]).toEqual([passwd['xrd-signer']!.uid, passwd.xrd!.gid]);
    expect(readdirSync(join(root, 'var/lib/xrd'))).toEqual(['shared']);
  });
});
