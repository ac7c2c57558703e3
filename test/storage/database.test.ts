/**
 * The storage interface on both engines (src/storage): the same SQL with `?` placeholders, types
 * that come back as they went in, transactions that commit or roll back as one, schema versions and
 * migrations, a database newer than the program refused, and a PostgreSQL that goes away reported
 * as DatabaseUnavailable and recovered from.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redactUrl, type SqlDatabase } from '../../src/storage/database.ts';
import { openDatabase, type StoreSchema } from '../../src/storage/open.ts';
import { toPositional } from '../../src/storage/postgres.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { startTestPostgres, stopEngines, storageEngines } from '../support/postgres.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xrd-storage-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
afterAll(() => stopEngines());

const schemaV1: StoreSchema = {
  store: 'sample',
  version: 1,
  schema: (d) => `CREATE TABLE sample (id ${d.autoId}, name TEXT NOT NULL UNIQUE, at BIGINT, body ${d.blob});`,
  migrations: [],
};
const schemaV2: StoreSchema = {
  ...schemaV1,
  version: 2,
  schema: (d) => `${schemaV1.schema(d)} CREATE TABLE extra (k TEXT PRIMARY KEY);`,
  migrations: [() => 'CREATE TABLE extra (k TEXT PRIMARY KEY);'],
};

describe.each(storageEngines(() => dir))('storage on $engine', ({ config }) => {
  let db: SqlDatabase | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it('round-trips text, 64-bit times and bytes with ? placeholders, and counts changes', async () => {
    db = await openDatabase(config('a'), schemaV1);
    const at = Date.UTC(2026, 11, 7, 1, 2, 3, 456);
    await db.run('INSERT INTO sample (name, at, body) VALUES (?, ?, ?)', ['one', at, Buffer.from([0, 1, 255])]);
    await db.run('INSERT INTO sample (name, at, body) VALUES (?, ?, ?)', ["it's ?", at + 1, null]);
    const rows = await db.all<{ id: number; name: string; at: number; body: Buffer | null }>('SELECT id, name, at, body FROM sample WHERE at >= ? ORDER BY id', [at]);
    expect(rows.map((r) => [typeof r.id, r.name, r.at, r.body])).toEqual([
      ['number', 'one', at, Buffer.from([0, 1, 255])],
      ['number', "it's ?", at + 1, null],
    ]);
    expect((await db.run('DELETE FROM sample WHERE at > ?', [at])).changes).toBe(1);
    expect(await db.get('SELECT name FROM sample WHERE name = ?', ['none'])).toBeUndefined();
  });

  it('commits a transaction as one and rolls it back as one when it throws', async () => {
    db = await openDatabase(config('b'), schemaV1);
    await db.transaction(async (tx) => {
      await tx.run('INSERT INTO sample (name) VALUES (?)', ['a']);
      await tx.run('INSERT INTO sample (name) VALUES (?)', ['b']);
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.run('INSERT INTO sample (name) VALUES (?)', ['c']);
        await tx.run('INSERT INTO sample (name) VALUES (?)', ['a']); // unique violation
      }),
    ).rejects.toThrow();
    expect((await db.all<{ name: string }>('SELECT name FROM sample ORDER BY name')).map((r) => r.name)).toEqual(['a', 'b']);
  });

  it('keeps concurrent transactions apart: no statement of one lands in another', async () => {
    db = await openDatabase(config('c'), schemaV1);
    const d = db;
    // Committed before any of them starts: on PostgreSQL the transactions run on several connections
    // at once, so a name one of them inserts could be taken by another before it, either way round.
    await d.run('INSERT INTO sample (name) VALUES (?)', ['taken']);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        d
          .transaction(async (tx) => {
            await tx.run('INSERT INTO sample (name) VALUES (?)', [`ok${i}`]);
            await new Promise((r) => setImmediate(r));
            if (i % 2 === 1) await tx.run('INSERT INTO sample (name) VALUES (?)', ['taken']); // fails: rolls back ok{i}
          })
          .catch(() => undefined),
      ),
    );
    expect((await d.all<{ name: string }>('SELECT name FROM sample ORDER BY id')).map((r) => r.name).sort()).toEqual(
      ['taken', ...Array.from({ length: 10 }, (_, i) => `ok${i * 2}`)].sort(),
    );
  });

  it('migrates an older schema, leaves a current one alone, and refuses a newer one (DatabaseTooNew)', async () => {
    const cfg = config('d');
    db = await openDatabase(cfg, schemaV1);
    await db.run('INSERT INTO sample (name) VALUES (?)', ['kept']);
    await db.close();
    db = await openDatabase(cfg, schemaV2);
    await db.run('INSERT INTO extra (k) VALUES (?)', ['x']);
    expect(await db.get('SELECT name FROM sample')).toEqual({ name: 'kept' });
    await db.close();
    db = undefined;
    const err = await openDatabase(cfg, schemaV1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XrdError);
    expect((err as XrdError).code).toBe('DatabaseTooNew');
  });

  it('of two openers at once, one creates the schema and the other sees it', async () => {
    const cfg = config('e');
    const [a, b] = await Promise.all([openDatabase(cfg, schemaV2), openDatabase(cfg, schemaV2)]);
    await a.run('INSERT INTO extra (k) VALUES (?)', ['from-a']);
    expect(await b.get('SELECT k FROM extra')).toEqual({ k: 'from-a' });
    await Promise.all([a.close(), b.close()]);
  });
});

describe('storage on postgres: a database that goes away', () => {
  it('recovers from a restart with the data there, and fails statements with DatabaseUnavailable while it is down', async () => {
    const pg = startTestPostgres();
    const url = pg.createDatabase();
    const db = await openDatabase({ engine: 'postgres', url }, schemaV1);
    try {
      await db.run('INSERT INTO sample (name) VALUES (?)', ['before']);
      pg.restart();
      // The pool's connections were cut by the restart: the first statement on one of them fails as unavailable…
      const results = await Promise.allSettled([db.get('SELECT 1 AS one'), db.get('SELECT 1 AS one')]);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as XrdError).code).toBe('DatabaseUnavailable');
      // …and the pool opens new ones: the data is there.
      expect(await db.get('SELECT name FROM sample')).toEqual({ name: 'before' });
      pg.stopServer();
      const down = await db.get('SELECT 1 AS one').catch((e: unknown) => e);
      expect((down as XrdError).code).toBe('DatabaseUnavailable');
    } finally {
      await db.close();
      pg.stop();
    }
  });
});

describe('toPositional', () => {
  it("numbers ? placeholders and leaves quoted ones alone", () => {
    expect(toPositional(`SELECT "a?" FROM t WHERE x = ? AND y = '?' AND z IN (?, ?)`)).toBe(`SELECT "a?" FROM t WHERE x = $1 AND y = '?' AND z IN ($2, $3)`);
  });
});

describe('storage on postgres: one pool per URL in a process', () => {
  it('stores on the same database share their connections, and the pool lives until the last of them closes', async () => {
    const pg = startTestPostgres();
    const url = pg.createDatabase();
    const a = await openDatabase({ engine: 'postgres', url }, schemaV1);
    const b = await openDatabase({ engine: 'postgres', url }, schemaV2);
    try {
      // 20 statements at once through the two stores: one pool of 10 serves them all.
      const running = Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).get('SELECT pg_sleep(0.4)')));
      await new Promise((r) => setTimeout(r, 200));
      const backends = execFileSync('psql', ['-X', '-q', '-A', '-t', '-d', url, '-c', "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"]).toString().trim();
      await running;
      expect(Number(backends)).toBeGreaterThan(0);
      expect(Number(backends)).toBeLessThanOrEqual(10);
      await a.close();
      expect(await b.get('SELECT 1 AS one')).toEqual({ one: 1 });
    } finally {
      await b.close();
      pg.stop();
    }
  });
});

describe('storage on sqlite: a statement outside its transaction', () => {
  it('fails with DatabaseUnavailable after the longest wait instead of waiting forever for the transaction that waits for it; the transaction rolls back and the file serves on', async () => {
    const db = await openDatabase({ engine: 'sqlite', file: join(dir, 'reentry.db') }, schemaV1, { maxWaitMs: 200 });
    try {
      const err = await db.transaction(async (tx) => {
        await tx.run("INSERT INTO sample (name) VALUES ('rolled back')");
        return db.get('SELECT 1 AS one');
      }).catch((e: unknown) => e);
      expect((err as XrdError).code).toBe('DatabaseUnavailable');
      expect(await db.all("SELECT name FROM sample WHERE name = 'rolled back'")).toEqual([]);
      expect(await db.get('SELECT 1 AS one')).toEqual({ one: 1 });
    } finally {
      await db.close();
    }
  });
});

describe('redactUrl', () => {
  it('leaves the password out of the user part and of the parameters', () => {
    expect(redactUrl('postgresql://xrd:s3cret@db.example:5432/xrd?password=also&sslmode=require')).toBe('postgresql://xrd:***@db.example:5432/xrd?password=***&sslmode=require');
  });
});
