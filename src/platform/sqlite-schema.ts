/**
 * Schema versions of our SQLite files (`PRAGMA user_version`): a new file gets the whole schema, an
 * older one the migrations it lacks, in one IMMEDIATE transaction — of two programs opening an old
 * file at once, the second sees it migrated — and a file of a newer version than this program's is
 * refused rather than rewritten.
 */
import type Database from 'better-sqlite3';
import { XrdError } from './errors.ts';

export interface SchemaVersions {
  readonly version: number;
  /** The whole schema, for a new file. */
  readonly schema: string;
  /** From version N to N+1, at index N-1. */
  readonly migrations: readonly string[];
}

/** @throws DatabaseTooNew when the file is newer than this program */
export function applySchema(db: Database.Database, s: SchemaVersions): void {
  const current = () => db.pragma('user_version', { simple: true }) as number;
  if (current() > s.version) throw new XrdError('DatabaseTooNew', { file: db.name, found: current(), supported: s.version });
  if (current() === s.version) return;
  db.transaction(() => {
    const from = current();
    if (from === 0) db.exec(s.schema);
    else for (const step of s.migrations.slice(from - 1)) db.exec(step);
    db.pragma(`user_version = ${s.version}`);
  }).immediate();
}
