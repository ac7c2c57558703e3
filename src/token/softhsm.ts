/**
 * The embedded default token: SoftHSM with its token directory under the project's data folder.
 * SoftHSM reads SOFTHSM2_CONF when the library is initialised, so this must run before the module
 * is loaded.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SOFTHSM_LIBRARY_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

export function findSoftHsmLibrary(): string | undefined {
  return SOFTHSM_LIBRARY_CANDIDATES.find((p) => existsSync(p));
}

/**
 * Writes `<dir>/softhsm2.conf` pointing at `<dir>/tokens` (once) and returns the conf path.
 * The directory is created 0700: SoftHSM's token files hold the (encrypted) keys.
 */
export function ensureSoftHsmHome(dir: string): string {
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true, mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  if (!existsSync(conf)) {
    writeFileSync(
      conf,
      [
        `directories.tokendir = ${tokens}`,
        'objectstore.backend = file',
        'log.level = ERROR',
        'slots.removable = false',
        'slots.mechanisms = ALL',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
  }
  return conf;
}
