/**
 * Small configuration files that several processes read and change (serverconf.json, the API key
 * file, the test PKI's state): written whole or not at all, and changed under a lock so two writers
 * (the CLI and the admin API, a CLI command and a running service) cannot lose each other's edits.
 * And the one rule for the server's SQLite databases: they are their owner's alone.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { XrdError } from './errors.ts';

const LOCK_WAIT_MS = 5000;
/** A lock older than this was left by a crashed process: holders keep it for one small write. */
const LOCK_STALE_MS = 30_000;

/**
 * Writes `data` to a uniquely named temporary file beside `file`, flushes it and renames it over
 * `file`: readers see the old content or the new, never half of it.
 * @throws IOError
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let at = 0;
      while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode); // openSync's mode is filtered by the umask
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new XrdError('IOError', { reason: `cannot write ${file}: ${(err as Error).message}` }, { cause: err });
  }
}

/**
 * Runs `change` holding `<file>.lock` (created exclusively). A lock left by a crashed process is
 * taken over once stale; releasing removes only our own lock.
 * @throws IOError when another process holds the lock for longer than LOCK_WAIT_MS
 */
export function withFileLock<T>(file: string, change: () => T): T {
  const path = `${file}.lock`;
  const token = `${process.pid}.${randomBytes(8).toString('hex')}`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, token);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new XrdError('IOError', { reason: `cannot lock ${file}: ${(err as Error).message}` }, { cause: err });
    }
    try {
      if (Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS) rmSync(path, { force: true });
    } catch {
      // Released meanwhile: try again.
    }
    if (Date.now() > deadline) throw new XrdError('IOError', { reason: `${file} is locked by another process (${path})` });
    // Holders keep the lock for one small file write; a short synchronous pause is enough.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  try {
    return change();
  } finally {
    try {
      if (readFileSync(path, 'utf8') === token) rmSync(path, { force: true });
    } catch {
      // Already gone (taken over as stale): nothing of ours to remove.
    }
  }
}

/**
 * Makes a SQLite database file and the journals beside it readable and writable by their owner
 * only; call it before SQLite opens the file. SQLite gives `-wal`, `-shm` and `-journal` the
 * permission bits of their database, so a database created 0600 keeps them 0600 whenever they are
 * made again; files an older version created more open (0644, the umask's default) are closed
 * down. With `create`, a missing database is created empty (SQLite takes an empty file for a new
 * database). A file of another user that this process may not change is left as it is: its owner's
 * process puts it right when it opens it.
 * @throws IOError when the database cannot be created
 */
export function restrictDatabaseFiles(file: string, options: { create: boolean }): void {
  if (options.create) {
    try {
      closeSync(openSync(file, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new XrdError('IOError', { reason: `cannot create ${file}: ${(err as Error).message}` }, { cause: err });
    }
  }
  for (const path of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    try {
      const mode = statSync(path).mode & 0o777;
      if ((mode & 0o077) !== 0) chmodSync(path, mode & 0o700);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EPERM') throw new XrdError('IOError', { reason: `cannot restrict ${path} to its owner: ${(err as Error).message}` }, { cause: err });
    }
  }
}
