#!/usr/bin/env node
// Entry point of the `xrd` command in a checkout or an npm install (`npx xrd …`, `node scripts/xrd.mjs …`,
// package.json's bin). Where tsx is installed — a development checkout, whose devDependencies it
// is in — it runs the TypeScript sources, so a change needs no build and a dist/ left from an
// earlier `npm run build` is never run stale. Without tsx — a production install
// (`npm ci --omit=dev`, docs/install.md) — it runs the compiled dist/ of `npm run build`. The
// systemd units run dist/cli/bin.js directly and never the sources.
import { existsSync } from 'node:fs';

let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch (err) {
  // Only tsx itself missing means a production install; a broken tsx must not fall back to a stale dist/.
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes("'tsx")) throw err;
}
const built = new URL('../dist/cli/bin.js', import.meta.url);
if (tsx) {
  tsx.register();
  await import('../src/cli/bin.ts');
} else if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write('xrd: neither tsx (a development install: npm ci) nor a build (npm run build) is here\n');
  process.exit(1);
}
