/**
 * A small JSON file (mode 0600) that the admin API and the CLI share: the API keys and the local
 * users. Each process re-reads it when another has replaced it (a stat per read: cheap next to an
 * HTTPS request, and unlike a file watcher it cannot miss a rename), and changes it read–modify–write
 * under a lock file so neither loses the other's change.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { XrdError } from './errors.ts';
import { withFileLock, writeFileAtomic } from './files.ts';

export class SharedJsonFile<T> {
  private value: T;
  /** Identity of the file version in `value`; a different one means another process wrote it. */
  private loadedVersion: string | undefined;

  /**
   * @param empty what an absent file holds
   * @param parse checks the parsed JSON and returns its content; throws a coded error when it is not one
   */
  constructor(
    readonly file: string,
    private readonly empty: T,
    private readonly parse: (json: unknown) => T,
  ) {
    this.value = empty;
    this.read();
  }

  /** The content as the file now holds it. */
  read(): T {
    let version: string | undefined;
    try {
      const st = statSync(this.file, { bigint: true });
      if ((Number(st.mode) & 0o022) !== 0) {
        throw new XrdError('InvalidConfiguration', { reason: `${this.file} is writable by other users; it must be mode 0600` });
      }
      version = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (version !== this.loadedVersion) {
      this.value = version === undefined ? this.empty : this.load();
      this.loadedVersion = version;
    }
    return this.value;
  }

  /** Applies `change` to the newest content under the lock and writes its `value`; returns its `result`. */
  modify<R>(change: (current: T) => { value: T; result: R }): R {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    return withFileLock(this.file, () => {
      this.loadedVersion = undefined;
      const { value, result } = change(this.read());
      writeFileAtomic(this.file, JSON.stringify(value, null, 2) + '\n');
      this.loadedVersion = undefined;
      this.read();
      return result;
    });
  }

  private load(): T {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.empty;
      throw new XrdError('InvalidConfiguration', { reason: `cannot read ${this.file}: ${(err as Error).message}` }, { cause: err });
    }
    return this.parse(parsed);
  }
}
