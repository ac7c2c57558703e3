/** The OCSP response cache: restart, pruning, a corrupt file, and kill -9 in the middle of writes. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { OcspCache, certSha1 } from '../../src/trust/ocsp-cache.ts';
import { fromContainer } from '../support/vectors.ts';

const { cert, ocsp } = fromContainer('valid-signed-message.asice');
const tempDir = () => mkdtempSync(join(tmpdir(), 'xrd-ocsp-cache-'));

describe('OCSP cache', () => {
  it('keeps responses by certificate SHA-1 across a restart', () => {
    const path = join(tempDir(), 'ocsp.sqlite');
    const first = new OcspCache(path, silentLogger());
    first.set([{ certSha1: certSha1(cert).toUpperCase(), der: ocsp }]);
    first.close();
    const again = new OcspCache(path, silentLogger());
    const entry = again.get(certSha1(cert))!;
    expect(entry.der.equals(ocsp)).toBe(true);
    expect(entry.thisUpdate.toISOString()).toBe('2024-12-05T13:13:26.000Z');
    expect(again.get('00'.repeat(20))).toBeUndefined();
    again.close();
  });

  it('prunes responses older than the allowed age', () => {
    let now = new Date('2024-12-05T13:30:00Z');
    const cache = new OcspCache(join(tempDir(), 'ocsp.sqlite'), silentLogger(), () => now);
    cache.set([{ certSha1: certSha1(cert), der: ocsp }]);
    expect(cache.prune(3600)).toBe(0);
    now = new Date('2024-12-05T14:13:27Z');
    expect(cache.prune(3600)).toBe(1);
    expect(cache.size).toBe(0);
  });

  it('refuses what is not an OCSP response and stores nothing of that batch', () => {
    const cache = new OcspCache(join(tempDir(), 'ocsp.sqlite'), silentLogger());
    expect(() => cache.set([{ certSha1: certSha1(cert), der: ocsp }, { certSha1: 'ab'.repeat(20), der: Buffer.from('junk') }])).toThrowError(expect.objectContaining({ code: 'IncorrectValidationInfo' }));
    expect(cache.size).toBe(0);
  });

  it('moves a corrupt file aside and starts empty', () => {
    const dir = tempDir();
    const path = join(dir, 'ocsp.sqlite');
    writeFileSync(path, 'this is not a database, it only has its name');
    const cache = new OcspCache(path, silentLogger());
    expect(cache.size).toBe(0);
    cache.set([{ certSha1: certSha1(cert), der: ocsp }]);
    expect(cache.size).toBe(1);
    expect(readdirSync(dir).some((f) => f.startsWith('ocsp.sqlite.corrupt-'))).toBe(true);
    cache.close();
  });

  it('loses no committed entry when the writing process is killed with SIGKILL', async () => {
    const dir = tempDir();
    const path = join(dir, 'ocsp.sqlite');
    const responseFile = join(dir, 'response.der');
    writeFileSync(responseFile, ocsp);
    const child = spawn('node', ['--import', 'tsx', resolve(import.meta.dirname, '../support/ocsp-cache-writer.ts'), path, responseFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acknowledged = -1;
    await new Promise<void>((done) => {
      child.stdout.on('data', (chunk: Buffer) => {
        const lines = chunk.toString().trim().split('\n');
        acknowledged = Number(lines[lines.length - 1]);
        if (acknowledged >= 300 && !child.killed) {
          child.kill('SIGKILL');
          done();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(path)).toBe(true);
    const cache = new OcspCache(path, silentLogger());
    for (let i = 0; i <= acknowledged; i++) expect(cache.get(i.toString(16).padStart(40, '0')), `entry ${i}`).toBeDefined();
    expect(cache.size).toBeGreaterThanOrEqual(acknowledged + 1);
    cache.close();
  });
});
