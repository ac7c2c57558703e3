/**
 * A throw-away PostgreSQL cluster, for the local instance's clustered provider and for the storage
 * tests: Debian's `initdb` and `pg_ctl` in a temporary folder, listening on a Unix socket in that
 * folder only (no TCP port to pick or collide on), trust authentication for the one role `xrd`.
 * PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user the Debian
 * package creates (and the folder is under the system's temporary folder, which that user can
 * reach). `fsync` is off: what is thrown away needs no durability against power cuts; a killed
 * client or node loses nothing committed all the same.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XrdError } from '../../platform/errors.ts';

export interface ThrowawayPostgres {
  /** The folder of the cluster's socket. */
  readonly socketDir: string;
  /** A new, empty database of the cluster, as a URL. */
  createDatabase(): string;
  /** Stops the server at once (as a crash would) when it runs, and starts it: every connection is cut. */
  restart(): void;
  /** Stops the server, keeping its files. */
  stopServer(): void;
  /** Stops the server and removes its files. */
  stop(): void;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) every process of the server: a database that hangs without closing anything. */
  freeze(frozen: boolean): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new XrdError('InvalidConfiguration', { reason: 'PostgreSQL is not installed (Debian package postgresql; scripts/bootstrap.sh installs it)' });
  return join(root, versions[0]!, 'bin');
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) };
}

let databases = 0;

export function startThrowawayPostgres(): ThrowawayPostgres {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'xrd-pg-'));
  const user = postgresUser();
  if (user) chownSync(dir, user.uid, user.gid);
  const run = (tool: string, args: string[]) =>
    execFileSync(user ? 'runuser' : join(bin, tool), user ? ['-u', 'postgres', '--', join(bin, tool), ...args] : args, { stdio: 'pipe', timeout: 60_000 });
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'xrd', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  // The socket is its owner's (and root's) only: trust authentication must not reach other local users.
  const start = () =>
    run('pg_ctl', ['-D', data, '-w', '-t', '30', '-l', join(dir, 'log'), '-o', `-c listen_addresses='' -k '${dir}' -c unix_socket_permissions=0700 -c fsync=off -c full_page_writes=off -c max_connections=200`, 'start']);
  const stopServer = () => {
    if (existsSync(join(data, 'postmaster.pid'))) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  };
  start();
  const url = (db: string) => `postgresql://xrd@localhost/${db}?host=${encodeURIComponent(dir)}`;
  const psql = (sql: string) => execFileSync(join(bin, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url('postgres'), '-c', sql], { stdio: 'pipe', timeout: 30_000 });
  return {
    socketDir: dir,
    createDatabase() {
      const name = `t${process.pid}_${++databases}`;
      psql(`CREATE DATABASE ${name}`);
      return url(name);
    },
    restart() {
      stopServer();
      start();
    },
    stopServer,
    freeze(frozen) {
      const postmaster = readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim();
      const children = execFileSync('pgrep', ['-P', postmaster], { encoding: 'utf8' }).split('\n').filter(Boolean);
      for (const pid of [postmaster, ...children]) process.kill(Number(pid), frozen ? 'SIGSTOP' : 'SIGCONT');
    },
    stop() {
      try {
        stopServer();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
