/**
 * The archiver's and the retention cleaner's SQL on the message log file (tables in store.ts):
 * which records are waiting to be archived, the archive files written and their chain, marking
 * records archived, the one-archiver lease, and removing archived records past retention. Kept
 * apart from the archiving logic (archiver.ts) so that it can move behind the storage interface.
 *
 * Every write is a short IMMEDIATE transaction: the proxy's own connection logs records at the
 * same time and waits (busy_timeout) while one commits.
 */
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { XrdError } from '../platform/errors.ts';

/** A stamped record not archived yet: what grouping and ordering need, without its message. */
export interface ArchiveCandidate {
  readonly id: number;
  /** The member or subsystem of this server the record belongs to (see ownerOf). */
  readonly owner: string;
}

export interface ArchiveFileRow {
  readonly id: number;
  readonly groupName: string;
  readonly name: string;
  readonly lastDigest: string;
  /** Records of a file whose marking did not finish (a crash). */
  readonly pendingRecords: readonly number[] | undefined;
}

/** Records marked per transaction. */
const MARK_CHUNK = 500;

/**
 * The party of this server a record belongs to, as the reference groups archives: the client on
 * the client's server, the service provider on the provider's (service ids are the provider's
 * identifier and the service code).
 */
export function ownerOf(side: string, client: string, service: string): string {
  return side === 'server' ? service.slice(0, service.lastIndexOf('/')) : client;
}

export class ArchiveBook {
  /** `host:pid:random`: a lease of a process of this host that is gone can be taken over at once. */
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(8).toString('hex')}`;
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      // The newest stamped record (a primary key lookup); candidates() leaves out the archived ones.
      maxArchivable: db.prepare<[], { id: number | null }>('SELECT max(record_id) AS id FROM record_timestamp'),
      candidates: db.prepare<[number, number, number], { id: number; client_id: string; service_id: string; side: string }>(
        `SELECT m.id, m.client_id, m.service_id, m.side FROM message_record m JOIN record_timestamp rt ON rt.record_id = m.id
         WHERE m.id > ? AND m.id <= ? AND NOT EXISTS (SELECT 1 FROM archived_record a WHERE a.record_id = m.id)
         ORDER BY m.id LIMIT ?`,
      ),
      lastArchive: db.prepare<[string], { last_digest: string; name: string }>(
        'SELECT last_digest, name FROM archive_file WHERE group_name = ? AND pending_records IS NULL ORDER BY id DESC LIMIT 1',
      ),
      pending: db.prepare<[], { id: number; group_name: string; name: string; last_digest: string; pending_records: string }>(
        'SELECT * FROM archive_file WHERE pending_records IS NOT NULL ORDER BY id',
      ),
      insertArchive: db.prepare('INSERT INTO archive_file (group_name, name, last_digest, created, pending_records) VALUES (?, ?, ?, ?, ?)'),
      unmark: db.prepare('DELETE FROM archived_record WHERE archive_id = ?'),
      dropArchive: db.prepare('DELETE FROM archive_file WHERE id = ? AND pending_records IS NOT NULL'),
      completeArchive: db.prepare('UPDATE archive_file SET pending_records = NULL WHERE id = ?'),
      mark: db.prepare('INSERT OR IGNORE INTO archived_record (record_id, archive_id) VALUES (?, ?)'),
      lease: db.prepare<[], { owner: string; until: number }>('SELECT owner, until FROM archiver_lease WHERE id = 1'),
      takeLease: db.prepare('INSERT INTO archiver_lease (id, owner, until) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, until = excluded.until'),
      dropLease: db.prepare('DELETE FROM archiver_lease WHERE id = 1 AND owner = ?'),
    };
  }

  /**
   * Takes (or renews) the one-archiver lease until `until`.
   * @throws LogArchiverBusy while another archiver's lease runs
   */
  lease(now: number, until: number): void {
    this.db
      .transaction(() => {
        const held = this.stmts.lease.get();
        if (held && held.owner !== this.owner && held.until > now && !holderIsGone(held.owner)) {
          throw new XrdError('LogArchiverBusy', { file: this.db.name, until: new Date(held.until).toISOString() });
        }
        this.stmts.takeLease.run(this.owner, until);
      })
      .immediate();
  }

  releaseLease(): void {
    this.stmts.dropLease.run(this.owner);
  }

  /** The newest stamped record: a round archives up to it, not what is stamped meanwhile. */
  maxArchivableId(): number | undefined {
    return this.stmts.maxArchivable.get()?.id ?? undefined;
  }

  /** Up to `limit` stamped, unarchived records with ids in (after, upTo], by id. */
  candidates(after: number, upTo: number, limit: number): ArchiveCandidate[] {
    return this.stmts.candidates.all(after, upTo, limit).map((r) => ({ id: r.id, owner: ownerOf(r.side, r.client_id, r.service_id) }));
  }

  /** The last complete archive of a group: the link the next one continues from. */
  lastArchive(group: string): { digest: string; fileName: string } | undefined {
    const row = this.stmts.lastArchive.get(group);
    return row && { digest: row.last_digest, fileName: row.name };
  }

  pendingArchives(): ArchiveFileRow[] {
    return this.stmts.pending.all().map((r) => ({ id: r.id, groupName: r.group_name, name: r.name, lastDigest: r.last_digest, pendingRecords: JSON.parse(r.pending_records) as number[] }));
  }

  /**
   * Records an archive file about to get its final name, with its records, under the lease.
   * @returns its row id
   */
  beginArchive(now: number, leaseUntil: number, group: string, name: string, lastDigest: string, records: readonly number[]): number {
    return this.db
      .transaction(() => {
        this.lease(now, leaseUntil);
        return Number(this.stmts.insertArchive.run(group, name, lastDigest, now, JSON.stringify(records)).lastInsertRowid);
      })
      .immediate();
  }

  /** Marks the archive's records (a few hundred per transaction), then the archive complete. */
  completeArchive(archiveId: number, records: readonly number[]): void {
    const mark = this.db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) this.stmts.mark.run(records[i], archiveId);
    });
    for (let i = 0; i < records.length; i += MARK_CHUNK) mark.immediate(i, Math.min(records.length, i + MARK_CHUNK));
    this.stmts.completeArchive.run(archiveId);
  }

  /** Forgets an archive whose file is not there (never got its final name), and any of its marks. */
  dropArchive(archiveId: number): void {
    this.db
      .transaction(() => {
        this.stmts.unmark.run(archiveId);
        this.stmts.dropArchive.run(archiveId);
      })
      .immediate();
  }
}

/** Whether a lease's owner was a process of this host that no longer runs (killed, crashed). */
function holderIsGone(owner: string): boolean {
  const [host, pid] = owner.split(':');
  if (host !== hostname() || !/^\d+$/.test(pid ?? '')) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** What one retention step removed. */
export interface Removed {
  readonly records: number;
  /** Attachment files the removed rows named: remove them now (after the commit). */
  readonly files: readonly string[];
  /** Signature rows removed: a writer that remembers signature rows must forget these. */
  readonly signatureIds: readonly number[];
}

/**
 * Removes up to `limit` archived records logged at or before `cutoff` (the reference's LogCleaner:
 * `keep-records-for`), in one transaction, with their attachments, timestamps rows and the
 * signatures and timestamps no remaining record uses. Unarchived records are never removed.
 */
export function removeArchivedRecords(db: Database.Database, cutoff: number, limit: number): Removed {
  return db
    .transaction((): Removed => {
      const ids = db.prepare<[number, number], { id: number; signature_id: number; ts: number | null }>(
        `SELECT m.id, m.signature_id, rt.timestamp_id AS ts FROM message_record m JOIN archived_record a ON a.record_id = m.id
         LEFT JOIN record_timestamp rt ON rt.record_id = m.id WHERE m.time <= ? ORDER BY m.id LIMIT ?`,
      ).all(cutoff, limit);
      if (ids.length === 0) return { records: 0, files: [], signatureIds: [] };
      const files: string[] = [];
      const fileOf = db.prepare<[number], { file: string }>('SELECT file FROM message_attachment WHERE record_id = ? AND file IS NOT NULL');
      const statements = ['message_attachment WHERE record_id', 'record_timestamp WHERE record_id', 'timestamp_queue WHERE record_id', 'archived_record WHERE record_id', 'message_record WHERE id'].map((t) => db.prepare(`DELETE FROM ${t} = ?`));
      for (const { id } of ids) {
        for (const row of fileOf.all(id)) files.push(row.file);
        for (const s of statements) s.run(id);
      }
      const unusedSignature = db.prepare('DELETE FROM signature WHERE id = ? AND NOT EXISTS (SELECT 1 FROM message_record WHERE signature_id = ?)');
      const signatureIds = [...new Set(ids.map((r) => r.signature_id))].filter((s) => unusedSignature.run(s, s).changes === 1);
      // A batch timestamp's rows are stored a few hundred at a time: one being stored is young.
      const unusedTimestamp = db.prepare('DELETE FROM timestamp_record WHERE id = ? AND time <= ? AND NOT EXISTS (SELECT 1 FROM record_timestamp WHERE timestamp_id = ?)');
      for (const ts of new Set(ids.map((r) => r.ts))) if (ts !== null) unusedTimestamp.run(ts, cutoff, ts);
      return { records: ids.length, files, signatureIds };
    })
    .immediate();
}
