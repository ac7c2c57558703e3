/**
 * Every SQLite database the server writes — the message log, the operational monitoring records,
 * the signer's OCSP cache and key configuration — with the -wal and -shm files SQLite keeps beside
 * it, on a real file system under the common umask 022: what another local user could read.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLogDatabase } from '../../src/messagelog/store.ts';
import { OpMonitor } from '../../src/opmonitor/op-monitor.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { KeyconfStore } from '../../src/signer/keyconf-store.ts';
import { OcspCache } from '../../src/trust/ocsp-cache.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-modes-'));
let umask: number;
beforeAll(() => {
  // The default of most systems: new files 0644 unless the program says otherwise.
  umask = process.umask(0o022);
});
afterAll(() => {
  process.umask(umask);
  rmSync(dir, { recursive: true, force: true });
});

const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Each store opened on `file` and written to, so SQLite has made its -wal and -shm; returns its closer. */
const STORES: Record<string, (file: string) => Promise<() => unknown>> = {
  'messagelog.db': async (file) => {
    const db = await openLogDatabase({ engine: 'sqlite', file }, { create: true });
    await db.exec('CREATE TABLE IF NOT EXISTS probe (x); INSERT INTO probe VALUES (1)');
    return () => db.close();
  },
  'opmonitor.db': async (file) => {
    const m = await OpMonitor.open({ engine: 'sqlite', file });
    m.store({ securityServerType: 'Client', requestInTs: Date.now(), succeeded: true, clientMemberCode: '2222' });
    await m.flush();
    return () => m.close();
  },
  'ocsp-cache.sqlite': async (file) => {
    const c = new OcspCache(file, silentLogger());
    return () => c.close();
  },
  'keyconf.sqlite': async (file) => {
    const k = new KeyconfStore(file);
    return () => k.close();
  },
};

describe('database files are their owner’s alone', () => {
  for (const [name, open] of Object.entries(STORES)) {
    it(`another local user cannot read ${name} or its -wal and -shm (0600 under umask 022)`, async () => {
      // A folder others may enter, so the files' own modes are what protects them.
      const folder = freshFolder('fresh');
      const file = join(folder, name);
      const close = await open(file);
      try {
        for (const path of [file, `${file}-wal`, `${file}-shm`]) {
          expect(existsSync(path), path).toBe(true);
          expect(modeOf(path), path).toBe(0o600);
        }
      } finally {
        await close();
      }
    });

    it(`${name} and its WAL left readable by an older version are closed down when opened`, async () => {
      const folder = freshFolder('older');
      const file = join(folder, name);
      // As SQLite made them before: a database in WAL mode whose -wal and -shm stay (a connection is open).
      const old = new Database(file);
      old.pragma('journal_mode = WAL');
      old.exec('CREATE TABLE leftover (x); INSERT INTO leftover VALUES (1)');
      for (const path of [file, `${file}-wal`, `${file}-shm`]) chmodSync(path, 0o644);
      const close = await open(file);
      try {
        for (const path of [file, `${file}-wal`, `${file}-shm`]) expect(modeOf(path), path).toBe(0o600);
      } finally {
        await close();
        old.close();
      }
    });
  }
});

function freshFolder(name: string): string {
  const path = join(dir, name);
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { mode: 0o755 });
  return path;
}
