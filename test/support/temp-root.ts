/**
 * Vitest's global set-up: the run's temporary files — every os.tmpdir() of the test files, their
 * child processes and the tools they call (openssl, xmlsec1, PostgreSQL) — go under one folder of
 * this run, removed when the run ends. A test that does not clean up after itself, or one stopped
 * half-way, then leaves nothing behind in /tmp. The folder's name is short: Unix socket paths
 * (signer sockets, PostgreSQL's) are built under it and must stay within 107 bytes.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'xrd-run-'));
  // Others may pass through, as through /tmp (the throw-away PostgreSQL runs as user postgres),
  // but not list it; each test's own folder keeps mkdtemp's 0700.
  chmodSync(root, 0o711);
  // Read by os.tmpdir() in the test processes, which the pool starts after this.
  process.env.TMPDIR = root;
  return () => {
    try {
      rmSync(root, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      // A process a failed test left running may still write there: the run's verdict is the tests'.
      process.stderr.write(`could not remove the run's temporary folder ${root}: ${(err as Error).message}\n`);
    }
  };
}
