/**
 * The committed package-lock.json as `npm ci` on a fresh machine reads it, checked offline: npm ci
 * refuses a lock file whose root entry differs from package.json, and installs nothing it does not
 * list — so a package one of its packages depends on (an optional one for another platform, which
 * npm 11 once left out: rollup's and esbuild's binaries) must be in it, wherever npm would look
 * for it. And every package with an install script is named in package.json's allowScripts: npm 11
 * silently skips the scripts of the others (a native addon left unbuilt).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

interface LockedPackage {
  version?: string;
  integrity?: string;
  link?: boolean;
  dev?: boolean;
  optional?: boolean;
  hasInstallScript?: boolean;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}
interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
}

const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(readFileSync(resolve(ROOT, 'package-lock.json'), 'utf8')) as { lockfileVersion: number; packages: Record<string, LockedPackage> };
const root = lock.packages['']!;
const installed = Object.entries(lock.packages).filter(([path]) => path !== '');

/** Where Node (and npm) finds `name` from the package at `from`: its own node_modules, then each parent's. */
function lookUp(from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir === '' ? '' : `${dir}/`}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (dir === '') return undefined;
    const cut = dir.lastIndexOf('/node_modules/');
    dir = cut < 0 ? '' : dir.slice(0, cut);
  }
}

describe('package-lock.json', () => {
  it('is a version 3 lock file whose root entry says what package.json says (npm ci compares them)', () => {
    expect(lock.lockfileVersion).toBe(3);
    expect(root.dependencies ?? {}).toEqual(pkg.dependencies ?? {});
    expect(root.devDependencies ?? {}).toEqual(pkg.devDependencies ?? {});
  });

  it('locks every package it installs from the registry to a version and an integrity hash', () => {
    const loose = installed.filter(([, p]) => !p.link && (!p.version || !p.integrity?.startsWith('sha512-'))).map(([path]) => path);
    expect(loose).toEqual([]);
  });

  it("holds every package another package needs, including other platforms' optional binaries", () => {
    const missing: string[] = [];
    for (const [path, p] of [['', root] as const, ...installed]) {
      const needs = { ...p.dependencies, ...p.optionalDependencies, ...(path === '' ? p.devDependencies : {}) };
      for (const name of Object.keys(needs)) if (!lookUp(path, name)) missing.push(`${path || '(root)'} → ${name}`);
    }
    expect(missing).toEqual([]);
  });

  it('every package with an install script is approved or denied in allowScripts (npm 11 skips the others)', () => {
    const withScripts = installed.filter(([, p]) => p.hasInstallScript).map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts.filter((name) => pkg.allowScripts?.[name] === undefined)).toEqual([]);
    // The native addons the signer and the stores load must be built, not skipped.
    expect(pkg.allowScripts).toMatchObject({ pkcs11js: true, 'better-sqlite3': true });
  });
});
