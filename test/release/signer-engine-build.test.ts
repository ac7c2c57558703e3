/**
 * The TLS signer engine is built at install, not by the proxy: `npm ci` runs package.json's
 * postinstall, scripts/build-signer-engine.mjs, which compiles src/tls/engine/xrd-signer-engine.c
 * into build/ and says what to install when the compiler or the OpenSSL headers are missing.
 * Run here on a copy of the script and the source in a folder of their own, so the checkout's
 * build/ is left alone.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SOURCE = 'src/tls/engine/xrd-signer-engine.c';
const SCRIPT = 'scripts/build-signer-engine.mjs';
const temp: string[] = [];
afterAll(() => temp.forEach((d) => rmSync(d, { recursive: true, force: true })));

function installFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-engine-'));
  temp.push(dir);
  for (const file of [SOURCE, SCRIPT]) cpSync(join(ROOT, file), join(dir, file));
  return dir;
}

const build = (dir: string, path = process.env.PATH) => spawnSync(process.execPath, [join(dir, SCRIPT)], { encoding: 'utf8', env: { ...process.env, PATH: path } });

describe('the TLS signer engine at install', () => {
  it('npm ci and npm run build run the engine build', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.postinstall).toContain(SCRIPT);
    expect(scripts['build:engine']).toContain(SCRIPT);
    expect(scripts.build).toContain('build:engine');
  });

  it('compiles the engine into build/, a shared object that leaves the OpenSSL symbols to node', () => {
    const dir = installFolder();
    const run = build(dir);
    expect(run.status, run.stderr).toBe(0);
    const library = join(dir, 'build/xrd-signer-engine.so');
    expect(readFileSync(library).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    const dynamic = spawnSync('readelf', ['-d', library], { encoding: 'utf8' }).stdout;
    expect(dynamic).not.toMatch(/NEEDED.*libcrypto/);
  });

  it('builds again only when the source is newer than the object', () => {
    const dir = installFolder();
    expect(build(dir).status).toBe(0);
    const library = join(dir, 'build/xrd-signer-engine.so');
    const old = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000); // whole seconds: what every file system keeps exactly
    utimesSync(library, old, old);
    utimesSync(join(dir, SOURCE), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    expect(build(dir).status).toBe(0);
    expect(statSync(library).mtimeMs).toBe(old.getTime());
    utimesSync(join(dir, SOURCE), new Date(), new Date());
    expect(build(dir).status).toBe(0);
    expect(statSync(library).mtimeMs).toBeGreaterThan(old.getTime());
  });

  it('without a C compiler: fails the install, naming the Debian packages to install, and leaves no object', () => {
    const dir = installFolder();
    const run = build(dir, '/nonexistent');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('apt-get install gcc libc6-dev libssl-dev');
    expect(existsSync(join(dir, 'build/xrd-signer-engine.so'))).toBe(false);
  });
});
