/**
 * A production install runs the compiled dist/ with the production dependencies only: `npm run
 * build:dist` compiles the sources, and the signer daemon, `xrd` commands against it and the admin
 * API (serving the built web interface) start from a folder laid out as docs/install.md's install
 * folder (dist/, ui/dist/, scripts/xrd.mjs, package.json) whose node_modules holds only the closure
 * of the production dependencies (`npm ls --omit=dev`) — so tsx, TypeScript, Vite and the rest of
 * the devDependencies cannot be resolved there, and anything in dist/ that still needed them would
 * fail here.
 *
 * The node_modules entries are links to the checkout's installed packages (no network, no copy);
 * Node resolves a package's own imports from its real folder, so this proves what our code
 * resolves, which is the point: the packages themselves declare their dependencies.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { cpSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const PIN = '112233';
/** Compiling the sources takes ~15 s of CPU; on two shared cores, allow for more. */
const BUILD_TIMEOUT_MS = 180_000;

let testbed: Testbed;
let install: string;
let env: NodeJS.ProcessEnv;
const children: ChildProcess[] = [];

/** The production dependency closure, as `npm ls --omit=dev` names it: top-level folders only (nested ones come with their parent). */
function productionPackages(): string[] {
  const listing = execFileSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: ROOT, encoding: 'utf8' });
  const top = join(ROOT, 'node_modules') + '/';
  return listing
    .split('\n')
    .filter((path) => path.startsWith(top) && !path.slice(top.length).includes('/node_modules/'))
    .map((path) => path.slice(top.length));
}

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
  execFileSync('npm', ['run', '--silent', 'build:dist'], { cwd: ROOT, stdio: 'pipe', timeout: BUILD_TIMEOUT_MS });
  testbed = createTestbed();
  install = join(testbed.dir, 'opt-xrd');
  mkdirSync(join(install, 'scripts'), { recursive: true });
  cpSync(join(ROOT, 'dist'), join(install, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(install, 'package.json'));
  cpSync(join(ROOT, 'scripts/xrd.mjs'), join(install, 'scripts/xrd.mjs'));
  // The web interface the admin API serves (bootstrap builds it; built here when missing).
  if (!existsSync(join(ROOT, 'ui/dist/index.html'))) execFileSync('npm', ['run', '--silent', 'build:ui'], { cwd: ROOT, stdio: 'pipe', timeout: BUILD_TIMEOUT_MS });
  cpSync(join(ROOT, 'ui/dist'), join(install, 'ui/dist'), { recursive: true });
  for (const name of productionPackages()) {
    const link = join(install, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', name), link);
  }
  env = { ...testbed.env, XRD_TEST_PIN: PIN, XRD_LOG_LEVEL: 'warn' };
  await start(['daemon', 'start', '--data-dir', testbed.dataDir, '--devices', testbed.devicesIni, '--pin-env', 'XRD_TEST_PIN', '--token', 'xrd-softtoken', '--no-prompt'], 'signer listening');
}, BUILD_TIMEOUT_MS + 60_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  testbed?.cleanup();
});

describe('a production install: dist/ with the production dependencies only', () => {
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
});

/** What `import.meta.resolve(name)` gives in the install's dist/ (an eval's module resolves from its working folder): a URL, or the error code. */
function spawnResolve(name: string): string {
  const probe = `try { console.log(import.meta.resolve(${JSON.stringify(name)})) } catch (e) { console.log(e.code) }`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: join(install, 'dist'), encoding: 'utf8' }).trim();
}
