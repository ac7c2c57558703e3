#!/usr/bin/env node
// node scripts/cpuprofile-summary.mjs <file.cpuprofile> [top] [function] — self time of a `node --cpu-prof`
// profile, by source folder (src/<folder>, node_modules/<package>, node: internals, native/GC) and
// by function, each as a share of the sampled time; with a function name, the stacks that lead to it. Used with scripts/profile-proxy.ts.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// The proxies run their TypeScript through tsx, so V8's positions are in esbuild's output (whitespace
// minified: a file is a line or two); the same transform with a source map gives the source line back.
const require = createRequire(import.meta.url);
const esbuild = require('esbuild');
const { SourceMapConsumer } = require('source-map-js');
const maps = new Map();
function sourceLine(url, line, column) {
  if (!url.startsWith('file://') || !url.endsWith('.ts')) return undefined;
  if (!maps.has(url)) {
    try {
      const out = esbuild.transformSync(readFileSync(fileURLToPath(url), 'utf8'), { loader: 'ts', format: 'esm', target: `node${process.versions.node}`, sourcemap: 'external', minifyWhitespace: true, keepNames: true, sourcefile: url });
      maps.set(url, new SourceMapConsumer(JSON.parse(out.map)));
    } catch {
      maps.set(url, undefined);
    }
  }
  return maps.get(url)?.originalPositionFor({ line: line + 1, column })?.line ?? undefined;
}

const [file, topArg, callersOf] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: cpuprofile-summary.mjs <file.cpuprofile> [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
// Sample time per node: each sample lasts until the next one.
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
}

function folderOf(url, name) {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const src = /\/src\/([^/]+)\//.exec(url);
  if (src) return `src/${src[1]}`;
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return `npm:${mod[1]}`;
  if (url.startsWith('node:')) return url.split('/')[0].replace(/^node:internal.*/, 'node:internal');
  return url.replace(/^file:\/\//, '');
}

const folders = new Map();
const functions = new Map();
let total = 0;
for (const [id, us] of selfUs) {
  const { callFrame: f } = byId.get(id);
  total += us;
  const folder = folderOf(f.url, f.functionName);
  if (folder === '(idle)') continue;
  folders.set(folder, (folders.get(folder) ?? 0) + us);
  const key = keyOf(f);
  functions.set(key, (functions.get(key) ?? 0) + us);
}

/** A function's name and place (its source line; line:column of the code V8 ran when it cannot be mapped). */
function keyOf(f) {
  const line = sourceLine(f.url, f.lineNumber, f.columnNumber);
  const where = f.url ? `${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${line ?? `${f.lineNumber + 1}:${f.columnNumber + 1}`}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`;
}

// Each sample charged to the innermost of our own functions on its stack, so the Node and native work
// (SQLite, hashing, sockets) a folder asks for counts as that folder's; samples with none of ours
// on the stack (the event loop's own I/O and timers, GC) are charged to where they ran.
const charged = new Map();
function innermostOurs(id) {
  for (let at = id; at !== undefined; at = parentOf.get(at)) {
    const url = byId.get(at).callFrame.url;
    if (/\/src\//.test(url)) return folderOf(url, '');
  }
  return undefined;
}

// Inclusive time of our own functions (src/), each counted once per stack even when recursive.
const inclusive = new Map();
const parentOf = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
for (const [id, us] of selfUs) {
  const seen = new Set();
  for (let at = id; at !== undefined; at = parentOf.get(at)) {
    const f = byId.get(at).callFrame;
    if (!/\/src\//.test(f.url)) continue;
    const key = keyOf(f);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
  const f = byId.get(id).callFrame;
  if (f.functionName === '(idle)') continue;
  const folder = innermostOurs(id) ?? `${folderOf(f.url, f.functionName)} (no src/ caller)`;
  charged.set(folder, (charged.get(folder) ?? 0) + us);
}
const idle = [...selfUs].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((s, [, us]) => s + us, 0);
const busy = total - idle;
const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (shares below are of busy time)\n\nby folder:\n`);
for (const [k, us] of [...folders].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
process.stdout.write('\nby folder, with the Node and native work it called:\n');
for (const [k, us] of [...charged].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
process.stdout.write('\nby function (self time):\n');
for (const [k, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
process.stdout.write('\nour functions, inclusive (self and what they call):\n');
for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
if (callersOf) {
  // The stacks (innermost first, up to six of our callers deep) whose top frame is `callersOf`.
  const stacks = new Map();
  for (const [id, us] of selfUs) {
    if (byId.get(id).callFrame.functionName !== callersOf) continue;
    const frames = [];
    for (let at = parentOf.get(id); at !== undefined && frames.length < 6; at = parentOf.get(at)) {
      const f = byId.get(at).callFrame;
      if (f.url && !f.url.startsWith('node:')) frames.push(keyOf(f));
    }
    const key = frames.join(' < ');
    stacks.set(key, (stacks.get(key) ?? 0) + us);
  }
  process.stdout.write(`\nstacks into ${callersOf}:\n`);
  for (const [k, us] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 12)) process.stdout.write(`${pct(us)}  ${k}\n`);
}
