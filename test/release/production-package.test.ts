/**
 * The release as a Debian administrator gets it: `npm run package:deb`'s package, read with
 * dpkg-deb (-I, -c) and unpacked, and production processes run from its /opt/xrd — the compiled
 * dist/ with only the production dependencies, real copies with their native addons: tsx,
 * TypeScript, Vite and the rest of the devDependencies are not there, so anything in dist/ that
 * still needed them fails here. The signer daemon, `xrd` commands against it (through
 * /usr/bin/xrd's entry and through scripts/xrd.mjs, which runs dist/ where tsx is missing), the
 * admin API serving the built web interface, and a whole local instance of the package's dist/
 * (signers, admin APIs and proxies as its child processes) carrying a call through both proxies.
 *
 * The test compiles dist/ afresh (`npm run build:dist`; nothing else in the suite reads dist/) and
 * packages the checkout's web interface and signer engine as bootstrap left them: rebuilding
 * ui/dist here would pull it from under the web interface's tests running beside this one.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { freeLocalPorts } from '../support/net.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const PIN = '112233';
/** Compiling the sources and packing ~50 MB take ~30 s of CPU; on two shared cores, allow for more. */
const BUILD_TIMEOUT_MS = 240_000;
const hasDpkgDeb = spawnSync('dpkg-deb', ['--version']).status === 0;

let testbed: Testbed;
let install: string;
let deb: string;
let env: NodeJS.ProcessEnv;
const children: ChildProcess[] = [];

function run(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [join(install, script), ...args], { cwd: install, env }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Starts a long-running `xrd` process of the install; resolves with what it printed once that includes `ready`. */
function start(args: string[], ready: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(install, 'dist/cli/bin.js'), ...args], { cwd: install, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d) => {
      output += d;
      if (output.includes(ready)) resolvePromise(output);
    });
    child.stderr!.on('data', (d) => (output += d));
    child.once('exit', (code) => reject(new Error(`xrd ${args.join(' ')} exited with ${code}: ${output}`)));
  });
}

/** GET over HTTPS from a server with a self-signed certificate (the admin API's own, on loopback). */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const request = httpsGet(url, { rejectUnauthorized: false, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (d: string) => (body += d));
      response.on('end', () => resolvePromise({ status: response.statusCode!, body }));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer from ${url}`)));
    request.on('error', reject);
  });
}

beforeAll(async () => {
  if (!hasDpkgDeb) return;
  // Asynchronously: a worker blocked for a minute misses vitest's own calls.
  const exec = promisify(execFile);
  await exec('npm', ['run', '--silent', 'build:dist'], { cwd: ROOT, timeout: BUILD_TIMEOUT_MS });
  testbed = createTestbed();
  deb = (await exec('sh', [join(ROOT, 'scripts/package-deb.sh'), join(testbed.dir, 'out')], { cwd: ROOT, timeout: BUILD_TIMEOUT_MS })).stdout.trim();
  await exec('dpkg-deb', ['-x', deb, join(testbed.dir, 'root')]);
  install = join(testbed.dir, 'root/opt/xrd');
  env = { ...testbed.env, XRD_TEST_PIN: PIN, XRD_LOG_LEVEL: 'warn' };
  await start(['daemon', 'start', '--data-dir', testbed.dataDir, '--devices', testbed.devicesIni, '--pin-env', 'XRD_TEST_PIN', '--token', 'xrd-softtoken', '--no-prompt'], 'signer listening');
}, 2 * BUILD_TIMEOUT_MS + 60_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  testbed?.cleanup();
});

describe.skipIf(!hasDpkgDeb)(`the .deb of npm run package:deb${hasDpkgDeb ? '' : ' (skipped: no dpkg-deb)'}`, () => {
  const field = (name: string) => new RegExp(`^ ${name}: (.*)$`, 'm').exec(execFileSync('dpkg-deb', ['-I', deb], { encoding: 'utf8' }))?.[1];
  const contents = () => execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').map((l) => l.split(/\s+/).slice(5).join(' ')).filter(Boolean);

  it('dpkg-deb -I: package xrd of package.json\'s version for this architecture, on the nodejs major its addons were built for', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(field('Package')).toBe('xrd');
    expect(field('Version')).toBe(pkg.version);
    expect(field('Architecture')).toBe(execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim());
    const major = Number(process.versions.node.split('.')[0]);
    expect(field('Depends')).toContain(`nodejs (<< ${major + 1})`);
    expect(field('Depends')).toMatch(/nodejs \(>= 2\d/);
  });

  it('dpkg-deb -c: the built release, units and users in systemd\'s places, and no source or development tool', () => {
    const files = contents();
    for (const path of [
      './opt/xrd/dist/cli/bin.js',
      './opt/xrd/dist/token/sign-worker.cjs',
      './opt/xrd/ui/dist/index.html',
      './opt/xrd/build/xrd-signer-engine.so',
      './opt/xrd/node_modules/better-sqlite3/package.json',
      './opt/xrd/node_modules/pkcs11js/package.json',
      './opt/xrd/node_modules/fastify/package.json',
      './opt/xrd/docs/install.md',
      './usr/bin/xrd',
      './usr/lib/systemd/system/xrd-signer.service',
      './usr/lib/systemd/system/xrd-proxy.service',
      './usr/lib/systemd/system/xrd-admin.service',
      './usr/lib/sysusers.d/xrd.conf',
      './usr/lib/tmpfiles.d/xrd.conf',
    ]) {
      expect(files, path).toContain(path);
    }
    const devOnly = files.filter((f) => /^\.\/opt\/xrd\/node_modules\/(tsx|typescript|vite|esbuild|vitest|vue|vue-tsc|@vitejs)\//.test(f));
    expect(devOnly).toEqual([]);
    expect(files.filter((f) => f.startsWith('./opt/xrd/') && f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.includes('/node_modules/'))).toEqual([]);
  });

  it('its units run /opt/xrd/dist/cli/bin.js, which the package holds', () => {
    for (const unit of ['xrd-signer', 'xrd-proxy', 'xrd-admin']) {
      const text = readFileSync(join(testbed.dir, 'root/usr/lib/systemd/system', `${unit}.service`), 'utf8');
      expect(/^ExecStart=(\S+) (\S+)/m.exec(text)?.slice(1), unit).toEqual(['/usr/bin/node', '/opt/xrd/dist/cli/bin.js']);
    }
    expect(readFileSync(join(testbed.dir, 'root/usr/bin/xrd'), 'utf8')).toContain('exec /usr/bin/node /opt/xrd/dist/cli/bin.js "$@"');
  });
});

describe.skipIf(!hasDpkgDeb)('a production install: the package\'s /opt/xrd, production dependencies only', () => {
  it('cannot resolve the development tools, and holds the production dependencies', () => {
    for (const tool of ['tsx', 'typescript', 'vite', 'esbuild', 'vitest', 'vue']) {
      expect(spawnResolve(tool), tool).toBe('ERR_MODULE_NOT_FOUND');
    }
    expect(spawnResolve('fastify')).toMatch(/^file:/);
    expect(existsSync(join(install, 'node_modules/better-sqlite3'))).toBe(true);
  });

  it('xrd (scripts/xrd.mjs without tsx) runs dist/ against the signer daemon of dist/', async () => {
    const list = await run('scripts/xrd.mjs', ['token', 'list', '--json', '--data-dir', testbed.dataDir]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).find((t: { label: string }) => t.label === 'xrd-softtoken')).toMatchObject({ available: true, active: true });
    const key = await run('dist/cli/bin.js', ['key', 'generate', 'xrd-softtoken', '--usage', 'SIGNING', '--algorithm', 'EC', '--curve', 'P-256', '--json', '--data-dir', testbed.dataDir]);
    expect(key.code, key.stderr).toBe(0);
    expect(JSON.parse(key.stdout)).toMatchObject({ usage: 'SIGNING', extractable: false });
    const status = await run('dist/cli/bin.js', ['daemon', 'status', '--json', '--data-dir', testbed.dataDir]);
    expect(status.code, status.stderr).toBe(0);
  });

  it('the admin API of dist/ starts against the signer and serves the built web interface and the API', async () => {
    const proxyDir = join(testbed.dir, 'proxy');
    mkdirSync(proxyDir, { mode: 0o700 });
    const printed = await start(['admin', 'start', '--data-dir', proxyDir, '--socket', join(testbed.dataDir, 'signer.sock'), '--conf', join(testbed.dir, 'globalconf'), '--admin-host', '127.0.0.1', '--admin-port', '0'], 'admin API listening');
    const url = /admin API listening on (\S+?),/.exec(printed)![1]!;
    const page = await get(url.replace(/api\/v1$/, ''));
    expect(page.status).toBe(200);
    expect(page.body).toContain('<script type="module"');
    // Without an API key or a session: refused, by the API of dist/.
    expect((await get(`${url}/tokens`)).status).toBe(401);
  });

  it('a local instance of dist/ (signers, admin APIs, proxies: child processes of the package) carries a REST call through both proxies', async () => {
    // A plain node script, not this test's process: it imports only the package's files.
    const script = join(testbed.dir, 'local-instance.mjs');
    writeFileSync(
      script,
      `import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
const [root, dir, ports] = process.argv.slice(2);
const { startLocalInstance } = await import(root + '/dist/dev/localinstance/local-instance.js');
const { silentLogger } = await import(root + '/dist/platform/logger.js');
const instance = await startLocalInstance({ dir, ports: JSON.parse(ports), logger: silentLogger() });
try {
  const is = instance.clientIs;
  const url = 'https://127.0.0.1:' + instance.ports.clientHttps + '/r1/LOCAL/COM/1111/PROVIDER/rest-test/random';
  const { stdout } = await promisify(execFile)('curl', ['-sS', '-k', '-E', is.certFile, '--key', is.keyFile, '-H', 'X-Road-Client: ' + is.client, '-w', '\\n%{http_code}', url]);
  const commands = Object.entries(instance.pids()).map(([name, pid]) => [name, readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\\0')[1]]);
  console.log(JSON.stringify({ answer: stdout, commands }));
} finally {
  await instance.close();
}
`,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [script, install, join(testbed.dir, 'local'), JSON.stringify(await freeLocalPorts())], { cwd: install, env, timeout: 200_000 });
    const { answer, commands } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { answer: string; commands: [string, string][] };
    const [body, status] = answer.split('\n');
    expect(status, body).toBe('200');
    expect(JSON.parse(body!)).toHaveProperty('randomNumber');
    // Every signer, admin API and proxy ran the package's launcher, which runs dist/ (no tsx there).
    expect(commands.map(([name]) => name).filter((name) => name.endsWith(' proxy'))).toHaveLength(2);
    for (const [name, command] of commands) expect(command, name).toBe(join(install, 'scripts/xrd.mjs'));
  }, 240_000);
});

/** What `import.meta.resolve(name)` gives in the install's dist/ (an eval's module resolves from its working folder): a URL, or the error code. */
function spawnResolve(name: string): string {
  const probe = `try { console.log(import.meta.resolve(${JSON.stringify(name)})) } catch (e) { console.log(e.code) }`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: join(install, 'dist'), encoding: 'utf8' }).trim();
}
