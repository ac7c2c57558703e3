/**
 * Logged attachments too large for a database row: files of the node in a folder beside the log
 * file (`messagelog.db` → `messagelog-attachments/`, folder 0700, files 0600; on PostgreSQL too),
 * named at random and referenced from their attachment row. A 256 MiB blob in SQLite would pass
 * through the WAL twice (in PostgreSQL through its WAL and TOAST) and through memory on every read;
 * a file is linked from the spool without being read at all.
 *
 * A file is durable under its final name before the row that names it commits: it is made as
 * `<name>.tmp` (a hard link to the spool file, a kernel-side copy when the spool is on another
 * file system, or written from memory), fsynced, renamed, and the folder fsynced. A crash between
 * that and the commit leaves a file no row names, never a row without its file; the writer
 * removes such files, and `.tmp` leftovers, when it opens the log (`removeOrphans`).
 */
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { chmod, copyFile, link, open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { fileBody, type Body } from '../platform/spool.ts';

/** A part as the proxies hand it over: bytes, or a spooled body. */
export type AttachmentPart = Buffer | Body;

const TMP = '.tmp';
/** Files asked about per query when sweeping orphans. */
const SWEEP_CHUNK = 500;
/** Linking is not possible across file systems or on some of them: copy instead. */
const COPY_INSTEAD_OF_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);

export function partSize(part: AttachmentPart): number {
  return Buffer.isBuffer(part) ? part.length : part.size;
}

/** The folder of a log file's attachment files: `<dir>/<name without extension>-attachments`. */
export function attachmentDirOf(logFile: string): string {
  return join(dirname(logFile), `${basename(logFile, extname(logFile))}-attachments`);
}

export class AttachmentFolder {
  constructor(readonly dir: string) {}

  /**
   * Makes the folder, and removes temporary files and files no row names: what a crash between
   * placing a file and committing its row left. Only the log's one writer may call it.
   * @returns the names removed
   * @throws IOError
   */
  async removeOrphans(named: (names: readonly string[]) => Promise<ReadonlySet<string>>): Promise<string[]> {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const files = readdirSync(this.dir);
      const orphans = files.filter((name) => name.endsWith(TMP));
      const candidates = files.filter((name) => !name.endsWith(TMP));
      for (let i = 0; i < candidates.length; i += SWEEP_CHUNK) {
        const chunk = candidates.slice(i, i + SWEEP_CHUNK);
        const known = await named(chunk);
        orphans.push(...chunk.filter((name) => !known.has(name)));
      }
      for (const name of orphans) rmSync(join(this.dir, name), { force: true });
      return orphans;
    } catch (err) {
      if (err instanceof XrdError) throw err;
      throw ioError(`cannot clean the attachment folder ${this.dir}`, err);
    }
  }

  /**
   * Makes the part a durable file of the folder without reading it into memory; the copy and the
   * fsyncs off the event loop. @returns its name @throws IOError
   */
  async place(part: AttachmentPart): Promise<string> {
    const name = newName();
    const tmp = join(this.dir, name + TMP);
    try {
      const from = Buffer.isBuffer(part) ? undefined : part.file;
      if (from === undefined) await writeFile(tmp, Buffer.isBuffer(part) ? part : part.bytes(), { flag: 'wx', mode: 0o600 });
      else {
        try {
          await link(from, tmp);
        } catch (err) {
          if (!COPY_INSTEAD_OF_LINK.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
          await copyFile(from, tmp, constants.COPYFILE_EXCL);
        }
        await chmod(tmp, 0o600);
      }
      await flush(tmp);
      await rename(tmp, join(this.dir, name));
      await flush(this.dir);
      return name;
    } catch (err) {
      await rm(tmp, { force: true });
      throw ioError(`cannot store an attachment of ${partSize(part)} bytes in ${this.dir}`, err);
    }
  }

  /** Removes files whose rows did not commit (best effort: what is left is an orphan, removed at the next start). */
  discard(names: readonly string[]): void {
    for (const name of names) rmSync(join(this.dir, name), { force: true });
  }

  /**
   * A logged attachment's bytes, read from its file when asked; disposing of it keeps the file.
   * @throws IOError when the file is missing or shorter than the attachment
   */
  body(name: string, size: number, recordId: number): Body {
    const file = join(this.dir, name);
    let actual: number;
    try {
      actual = statSync(file).size;
    } catch (err) {
      throw ioError(`the attachment file ${file} of record ${recordId} cannot be read`, err);
    }
    if (actual < size) throw new XrdError('IOError', { reason: `the attachment file ${file} of record ${recordId} has ${actual} of its ${size} bytes` });
    return { ...fileBody(file, size), dispose: () => undefined };
  }
}

/** Unique without coordination: the time orders names roughly, the random part keeps them apart. */
function newName(): string {
  return `${Date.now().toString(36)}-${randomBytes(12).toString('hex')}`;
}

/** fsync of a file or folder by path, off the event loop. */
export async function flush(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function ioError(reason: string, err: unknown): XrdError {
  return new XrdError('IOError', { reason: `${reason}: ${(err as Error).message}` }, { cause: err });
}
