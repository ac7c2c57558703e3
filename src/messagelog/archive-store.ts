/**
 * The archiver's and the retention cleaner's SQL on the message log (tables in store.ts), on either
 * engine: which records are waiting to be archived, the archive files written and their chain,
 * marking records archived, the one-archiver lease, and removing archived records past retention.
 * Kept apart from the archiving logic (archiver.ts).
 *
 * Every write is a short transaction: the proxy's own connection logs records at the same time.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { XrdError } from '../platform/errors.ts';
import { insertRows, placeholders, type SqlDatabase, type SqlExecutor } from '../storage/database.ts';

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

  constructor(private readonly db: SqlDatabase) {}

  /**
   * Takes (or renews) the one-archiver lease until `until`.
   * @throws LogArchiverBusy while another archiver's lease runs
   */
  lease(now: number, until: number): Promise<void> {
    return this.db.transaction((tx) => this.leaseIn(tx, now, until));
  }

  /**
   * One statement takes the lease when it is free, ours or run out, so two archivers never both
   * think they hold it (on PostgreSQL too, without a lock of its own); a holder that is a process
   * of this host no longer running is replaced by name.
   */
  private async leaseIn(tx: SqlExecutor, now: number, until: number): Promise<void> {
    const taken = await tx.get(
      `INSERT INTO archiver_lease (id, owner, until) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, until = excluded.until WHERE archiver_lease.owner = ? OR archiver_lease.until <= ?
       RETURNING owner`,
      [this.owner, until, this.owner, now],
    );
    if (taken) return;
    const held = await tx.get<{ owner: string; until: number }>('SELECT owner, until FROM archiver_lease WHERE id = 1');
    if (held && holderIsGone(held.owner) && (await tx.run('UPDATE archiver_lease SET owner = ?, until = ? WHERE id = 1 AND owner = ?', [this.owner, until, held.owner])).changes === 1) return;
    throw new XrdError('LogArchiverBusy', { file: this.db.location, until: new Date(held?.until ?? now).toISOString() });
  }

  async releaseLease(): Promise<void> {
    await this.db.run('DELETE FROM archiver_lease WHERE id = 1 AND owner = ?', [this.owner]);
  }

  /** The newest stamped record: a round archives up to it, not what is stamped meanwhile. */
  async maxArchivableId(): Promise<number | undefined> {
    return (await this.db.get<{ id: number | null }>('SELECT max(record_id) AS id FROM record_timestamp'))?.id ?? undefined;
  }

  /** Up to `limit` stamped, unarchived records with ids in (after, upTo], by id. */
  async candidates(after: number, upTo: number, limit: number): Promise<ArchiveCandidate[]> {
    const rows = await this.db.all<{ id: number; client_id: string; service_id: string; side: string }>(
      `SELECT m.id, m.client_id, m.service_id, m.side FROM message_record m JOIN record_timestamp rt ON rt.record_id = m.id
       WHERE m.id > ? AND m.id <= ? AND NOT EXISTS (SELECT 1 FROM archived_record a WHERE a.record_id = m.id)
       ORDER BY m.id LIMIT ?`,
      [after, upTo, limit],
    );
    return rows.map((r) => ({ id: r.id, owner: ownerOf(r.side, r.client_id, r.service_id) }));
  }

  /** The last complete archive of a group: the link the next one continues from. */
  async lastArchive(group: string): Promise<{ digest: string; fileName: string } | undefined> {
    const row = await this.db.get<{ last_digest: string; name: string }>('SELECT last_digest, name FROM archive_file WHERE group_name = ? AND pending_records IS NULL ORDER BY id DESC LIMIT 1', [group]);
    return row && { digest: row.last_digest, fileName: row.name };
  }

  async pendingArchives(): Promise<ArchiveFileRow[]> {
    const rows = await this.db.all<{ id: number; group_name: string; name: string; last_digest: string; pending_records: string }>('SELECT * FROM archive_file WHERE pending_records IS NOT NULL ORDER BY id');
    return rows.map((r) => ({ id: r.id, groupName: r.group_name, name: r.name, lastDigest: r.last_digest, pendingRecords: JSON.parse(r.pending_records) as number[] }));
  }

  /**
   * Records an archive file about to get its final name, with its records, under the lease.
   * @returns its row id
   */
  beginArchive(now: number, leaseUntil: number, group: string, name: string, lastDigest: string, records: readonly number[]): Promise<number> {
    return this.db.transaction(async (tx) => {
      await this.leaseIn(tx, now, leaseUntil);
      const row = await tx.get<{ id: number }>('INSERT INTO archive_file (group_name, name, last_digest, created, pending_records) VALUES (?, ?, ?, ?, ?) RETURNING id', [group, name, lastDigest, now, JSON.stringify(records)]);
      return row!.id;
    });
  }

  /** Marks the archive's records (a few hundred per statement and transaction), then the archive complete. */
  async completeArchive(archiveId: number, records: readonly number[]): Promise<void> {
    for (let i = 0; i < records.length; i += MARK_CHUNK) {
      const rows = records.slice(i, i + MARK_CHUNK).map((id) => [id, archiveId]);
      await this.db.transaction((tx) => insertRows(tx, this.db.engine, 'archived_record (record_id, archive_id)', '(?, ?)', rows, ' ON CONFLICT DO NOTHING'));
    }
    await this.db.run('UPDATE archive_file SET pending_records = NULL WHERE id = ?', [archiveId]);
  }

  /** Forgets an archive whose file is not there (never got its final name), and any of its marks. */
  dropArchive(archiveId: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM archived_record WHERE archive_id = ?', [archiveId]);
      await tx.run('DELETE FROM archive_file WHERE id = ? AND pending_records IS NOT NULL', [archiveId]);
    });
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
}

/**
 * Removes up to `limit` archived records logged at or before `cutoff` (the reference's LogCleaner:
 * `keep-records-for`), in one transaction, with their attachments, timestamps rows and the
 * signatures and timestamps no remaining record uses. Unarchived records are never removed.
 */
export function removeArchivedRecords(db: SqlDatabase, cutoff: number, limit: number): Promise<Removed> {
  return db.transaction(async (tx): Promise<Removed> => {
    const rows = await tx.all<{ id: number; signature_id: number; ts: number | null }>(
      `SELECT m.id, m.signature_id, rt.timestamp_id AS ts FROM message_record m JOIN archived_record a ON a.record_id = m.id
       LEFT JOIN record_timestamp rt ON rt.record_id = m.id WHERE m.time <= ? ORDER BY m.id LIMIT ?`,
      [cutoff, limit],
    );
    if (rows.length === 0) return { records: 0, files: [] };
    const ids = rows.map((r) => r.id);
    const idList = placeholders(ids);
    const files = (await tx.all<{ file: string }>(`SELECT file FROM message_attachment WHERE record_id IN (${idList}) AND file IS NOT NULL`, ids)).map((r) => r.file);
    for (const table of ['message_attachment', 'record_timestamp', 'timestamp_queue', 'archived_record']) await tx.run(`DELETE FROM ${table} WHERE record_id IN (${idList})`, ids);
    await tx.run(`DELETE FROM message_record WHERE id IN (${idList})`, ids);
    for (const s of new Set(rows.map((r) => r.signature_id))) await tx.run('DELETE FROM signature WHERE id = ? AND NOT EXISTS (SELECT 1 FROM message_record WHERE signature_id = ?)', [s, s]);
    // A batch timestamp's rows are stored a few hundred at a time: one being stored is young.
    for (const ts of new Set(rows.map((r) => r.ts))) {
      if (ts !== null) await tx.run('DELETE FROM timestamp_record WHERE id = ? AND time <= ? AND NOT EXISTS (SELECT 1 FROM record_timestamp WHERE timestamp_id = ?)', [ts, cutoff, ts]);
    }
    return { records: rows.length, files };
  });
}
