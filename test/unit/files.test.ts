/**
 * Two processes changing one small file at once (the CLI and the admin API on serverconf.json, the
 * test PKI's state): under withFileLock no change is lost, and readers never see half a file.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'xrd-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FILES = resolve(import.meta.dirname, '../../src/platform/files.ts');
const worker = (file: string, times: number) => `
import { readFileSync } from 'node:fs';
import { withFileLock, writeFileAtomic } from ${JSON.stringify(FILES)};
for (let i = 0; i < ${times}; i++) {
  withFileLock(${JSON.stringify(file)}, () => {
    const state = JSON.parse(readFileSync(${JSON.stringify(file)}, 'utf8'));
    writeFileAtomic(${JSON.stringify(file)}, JSON.stringify({ count: state.count + 1, pad: 'x'.repeat(20000) }));
  });
}`;

describe('withFileLock and writeFileAtomic', () => {
  it('lose no change when two processes change the same file at once, and leave no temporary files', async () => {
    const file = join(dir, 'state.json');
    writeFileSync(file, JSON.stringify({ count: 0 }));
    const script = join(dir, 'worker.ts');
    writeFileSync(script, worker(file, 150));
    await Promise.all([1, 2].map(() => run(process.execPath, ['--import', 'tsx', script])));
    expect(JSON.parse(readFileSync(file, 'utf8')).count).toBe(300);
    expect(readdirSync(dir).sort()).toEqual(['state.json', 'worker.ts']);
  }, 60_000);
});
