#!/usr/bin/env node
// Builds the TLS signer engine (src/tls/engine/xrd-signer-engine.c, docs/tls.md) into
// build/xrd-signer-engine.so: at install (package.json's postinstall, so `npm ci` and
// `npm ci --omit=dev` leave it built), in `npm run build` and in scripts/bootstrap.sh — never by a
// running proxy, whose install folder is read-only to it. A plain script, not TypeScript: it runs
// before anything is compiled and without tsx. Does nothing when the object is newer than its source.
// Compiled against the OpenSSL 3.0 headers (libssl-dev) and not linked with libcrypto: the OpenSSL
// symbols resolve from the node executable that loads it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../src/tls/engine/xrd-signer-engine.c', import.meta.url));
const output = fileURLToPath(new URL('../build/xrd-signer-engine.so', import.meta.url));

if (!existsSync(output) || statSync(output).mtimeMs < statSync(source).mtimeMs) {
  mkdirSync(dirname(output), { recursive: true });
  // Several builds may run at once (parallel installs, test workers): each writes its own file and renames it.
  const temporary = `${output}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-o', temporary, source, '-Wl,-z,nodelete'], { stdio: ['ignore', 'inherit', 'pipe'] });
    renameSync(temporary, output);
  } catch (err) {
    rmSync(temporary, { force: true });
    const detail = err.stderr?.toString().trim() || err.message;
    process.stderr.write(`xrd: cannot build the TLS signer engine ${output}: it needs a C compiler and OpenSSL 3 headers (Debian: apt-get install gcc libc6-dev libssl-dev)\n${detail}\n`);
    process.exit(1);
  }
}
