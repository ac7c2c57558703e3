/**
 * OCSP responses by certificate (SHA-1 hex of its DER, as X-Road keys them), in SQLite: WAL mode,
 * so a committed response survives a crash of the process, and a restart finds the cache as it
 * was. A file that is not a readable database is moved aside and the cache starts empty: responses
 * can always be fetched again, the service must not stop for them.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, renameSync } from 'node:fs';
import { restrictDatabaseFiles } from '../platform/files.ts';
import type { Logger } from '../platform/logger.ts';
import { parseOcspResponse } from './ocsp.ts';

export interface CachedOcspResponse {
  readonly der: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  readonly storedAt: Date;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ocsp_responses (
  cert_sha1 TEXT PRIMARY KEY,
  der BLOB NOT NULL,
  this_update INTEGER NOT NULL,
  next_update INTEGER,
  stored_at INTEGER NOT NULL
);
`;

interface Row {
  der: Buffer;
  this_update: number;
  next_update: number | null;
  stored_at: number;
}

export class OcspCache {
  private readonly db: Database.Database;
  private readonly select: Database.Statement<[string], Row>;
  private readonly upsert: Database.Statement<[string, Buffer, number, number | null, number]>;

  constructor(
    readonly path: string,
    log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.db = openOrRebuild(path, log);
    this.select = this.db.prepare('SELECT der, this_update, next_update, stored_at FROM ocsp_responses WHERE cert_sha1 = ?');
    this.upsert = this.db.prepare(
      `INSERT INTO ocsp_responses (cert_sha1, der, this_update, next_update, stored_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(cert_sha1) DO UPDATE SET der = excluded.der, this_update = excluded.this_update, next_update = excluded.next_update, stored_at = excluded.stored_at`,
    );
  }

  get(certSha1: string): CachedOcspResponse | undefined {
    const row = this.select.get(certSha1.toLowerCase());
    return row && { der: row.der, thisUpdate: new Date(row.this_update), nextUpdate: row.next_update === null ? undefined : new Date(row.next_update), storedAt: new Date(row.stored_at) };
  }

  /** Every cached response with its certificate's hash (for monitoring: ages and statuses). */
  all(): (CachedOcspResponse & { certSha1: string })[] {
    return this.db
      .prepare<[], Row & { cert_sha1: string }>('SELECT cert_sha1, der, this_update, next_update, stored_at FROM ocsp_responses ORDER BY cert_sha1')
      .all()
      .map((row) => ({ certSha1: row.cert_sha1, der: row.der, thisUpdate: new Date(row.this_update), nextUpdate: row.next_update === null ? undefined : new Date(row.next_update), storedAt: new Date(row.stored_at) }));
  }

  /**
   * Stores responses in one transaction. Each must be a parseable OCSP response for the
   * certificate it is stored under (checked by the caller's verifier; here only parsed for dates).
   * @throws IncorrectValidationInfo when a response cannot be parsed (nothing is stored then)
   */
  set(entries: readonly { certSha1: string; der: Buffer }[]): void {
    const stored = this.now().getTime();
    const rows = entries.map((e) => {
      const single = parseOcspResponse(e.der).responses[0];
      return [e.certSha1.toLowerCase(), e.der, single?.thisUpdate.getTime() ?? 0, single?.nextUpdate?.getTime() ?? null, stored] as const;
    });
    this.db.transaction(() => {
      for (const r of rows) this.upsert.run(...r);
    })();
  }

  /** Removes responses older than `maxAgeSeconds` (by thisUpdate) or past their nextUpdate. */
  prune(maxAgeSeconds: number): number {
    const now = this.now().getTime();
    return this.db.prepare('DELETE FROM ocsp_responses WHERE this_update < ? OR (next_update IS NOT NULL AND next_update < ?)').run(now - maxAgeSeconds * 1000, now).changes;
  }

  get size(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM ocsp_responses').get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}

/** SHA-1 hex of a certificate's DER: the key of its OCSP response. */
export function certSha1(der: Buffer): string {
  return createHash('sha1').update(der).digest('hex');
}

function openOrRebuild(path: string, log: Logger): Database.Database {
  try {
    return open(path);
  } catch (err) {
    if (!existsSync(path)) throw err;
    const aside = `${path}.corrupt-${Date.now()}`;
    log.warn({ path, aside, error: (err as Error).message }, 'OCSP cache unreadable; moved aside and rebuilt empty');
    renameSync(path, aside);
    for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    return open(path);
  }
}

function open(path: string): Database.Database {
  restrictDatabaseFiles(path, { create: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    // A committed transaction survives a crash of the process in WAL mode with NORMAL; only a
    // power cut may lose the last ones, which are fetched again.
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    db.prepare('SELECT COUNT(*) FROM ocsp_responses').get();
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
