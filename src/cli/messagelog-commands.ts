/**
 * `xrd messagelog archive|verify`: one archiving round now, and the reference's archive verifier
 * (docs/messagelog.md "Archiving"). Also the archive options `xrd proxy start` takes, read here so
 * that both commands understand them alike.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { archiveRound, type ArchiveEncryption, type ArchiveGrouping } from '../messagelog/archiver.ts';
import { verifyArchive } from '../messagelog/archive-format.ts';
import type { ArchiveOptions } from '../messagelog/message-log.ts';
import { MessageLogReader, openLogDatabase } from '../messagelog/store.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import { messageLogOf, type Values } from './options.ts';
import { UsageError } from './usage-error.ts';

export const MESSAGELOG_USAGE = `  xrd messagelog archive [--db <data-dir>/messagelog.db] [archive options]
                                    archive every stamped record now, as the proxy's schedule does
                                    (without --db: the data folder's log, or $XRD_MESSAGELOG_DATABASE_URL's)
  xrd messagelog verify <archive.zip> [--previous-digest HEX]
                                    check an archive's linkinginfo chain; prints its last digest, to give
                                    as --previous-digest for the next archive (none: the first archive)
      archive options (also of proxy start): [--archive-dir <data-dir>/messagelog-archive] [--archive-grouping none|member|subsystem]
                   [--archive-batch 10000] [--archive-max-filesize 33554432] [--archive-interval 21600 (s)]
                   [--keep-records-for 30 (days)] [--clean-interval 43200 (s)] [--no-archive]
                   [--archive-encryption [--archive-gpg-home <data-dir>/gpghome] [--archive-encryption-key KEY]
                   [--archive-encryption-keys-config FILE]]`;

export async function messagelogCommand(command: string | undefined, rest: string[], values: Values, dataDir: string): Promise<number> {
  if (command === 'verify') return verify(rest, values);
  if (command !== 'archive') throw new UsageError(`unknown command "messagelog ${command ?? ''}"`);
  const location = messageLogOf(values, dataDir);
  const settings = archiveOptions(values, dataDir);
  if (!settings) throw new UsageError('--no-archive: nothing to do');
  const db = await openLogDatabase(location.database, { create: false });
  try {
    const reader = MessageLogReader.onDatabase(db, location);
    // Interrupted, the round ends after the archive it is writing; the rest waits for the next one.
    let stopping = false;
    const stop = () => (stopping = true);
    process.once('SIGINT', stop).once('SIGTERM', stop);
    const result = await archiveRound(db, (id) => reader.record(id), settings, () => stopping);
    process.off('SIGINT', stop).off('SIGTERM', stop);
    if (values.json) process.stdout.write(JSON.stringify({ dir: settings.dir, ...result }, null, 2) + '\n');
    else {
      const lines = [`Archived ${result.records} record(s) into ${result.files.length} file(s) in ${settings.dir}`, ...result.files.map((f) => `    ${f}`)];
      if (result.recovered > 0) lines.push(`Finished ${result.recovered} archive(s) an interrupted round had written`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return 0;
  } finally {
    await db.close();
  }
}

async function verify(rest: string[], values: Values): Promise<number> {
  const file = rest[0];
  if (!file) throw new UsageError('missing <archive.zip>');
  const previous = values['previous-digest'];
  if (previous !== undefined && !/^[0-9a-fA-F]+$/.test(previous)) throw new UsageError('--previous-digest must be hex');
  try {
    const v = await verifyArchive(file, { previousDigest: previous });
    const view = { valid: true, file, algorithm: v.algorithm, previousDigest: v.previous.digest || null, previousArchive: v.previous.fileName || null, containers: v.containers.length, lastDigest: v.lastDigest };
    if (values.json) process.stdout.write(JSON.stringify(view, null, 2) + '\n');
    else {
      process.stdout.write(
        [
          `Archive verified: ${view.containers} container(s), ${v.algorithm} chain`,
          view.previousArchive ? `    follows ${view.previousArchive}` : '    the first archive of its chain',
          `Last digest (for the next archive): ${v.lastDigest}`,
        ].join('\n') + '\n',
      );
    }
    return 0;
  } catch (err) {
    const e = toXrdError(err);
    if (values.json) process.stdout.write(JSON.stringify({ valid: false, file, error: { code: e.fullCode, message: e.message, details: e.details } }, null, 2) + '\n');
    else process.stdout.write(`Verification failed: ${e.fullCode}: ${e.message}\n`);
    return 1;
  }
}

const GROUPINGS: readonly ArchiveGrouping[] = ['none', 'member', 'subsystem'];

/**
 * The archive options from the command line, with the reference's defaults; undefined with
 * `--no-archive`. @throws UsageError on a malformed value; IOError when the keys file cannot be read
 */
export function archiveOptions(values: Values, dataDir: string): ArchiveOptions | undefined {
  if (values['no-archive']) return undefined;
  const number = (name: keyof Values, min: number): number | undefined => {
    const v = values[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (typeof v !== 'string' || !Number.isInteger(n) || n < min) throw new UsageError(`--${String(name)} must be a whole number of at least ${min}`);
    return n;
  };
  const grouping = values['archive-grouping'];
  if (grouping !== undefined && !GROUPINGS.includes(grouping as ArchiveGrouping)) throw new UsageError(`--archive-grouping must be one of ${GROUPINGS.join(', ')}`);
  let encryption: ArchiveEncryption | undefined;
  if (values['archive-encryption']) {
    const keysFile = values['archive-encryption-keys-config'];
    const mappings = keysFile ? readKeyMappings(keysFile) : undefined;
    if (mappings && mappings.ignored.length > 0) process.stderr.write(`${keysFile}: lines ${mappings.ignored.join(', ')} are not "member identifier = key id" and are ignored\n`);
    encryption = {
      gpgHome: resolve(values['archive-gpg-home'] ?? join(dataDir, 'gpghome')),
      defaultKeys: values['archive-encryption-key'] ? [values['archive-encryption-key']] : undefined,
      memberKeys: mappings?.keys,
    };
  }
  return {
    dir: resolve(values['archive-dir'] ?? join(dataDir, 'messagelog-archive')),
    grouping: grouping as ArchiveGrouping | undefined,
    batchSize: number('archive-batch', 1),
    maxFileBytes: number('archive-max-filesize', 1),
    intervalSeconds: number('archive-interval', 1),
    keepRecordsForDays: number('keep-records-for', 0),
    cleanIntervalSeconds: number('clean-interval', 1),
    encryption,
  };
}

/**
 * The reference's member-to-key mapping file (`archive-encryption-keys-config`), read as its
 * MemberEncryptionConfigProvider reads it: lines `INSTANCE/CLASS/CODE = keyid` split at the first
 * `=` not escaped as `\=`, a member listed again for more keys, lines starting with `#` (after
 * blanks) comments, `\=` and `\#` in a member identifier standing for `=` and `#`, and lines
 * without both a member and a key ignored, as the reference ignores them (with a warning there).
 * @returns member → its keys, and the numbers of the lines ignored
 * @throws IOError when the file cannot be read
 */
export function readKeyMappings(file: string): { keys: Record<string, string[]>; ignored: number[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot read the archive encryption keys file ${file}: ${(err as Error).message}` }, { cause: err });
  }
  const keys: Record<string, string[]> = {};
  const ignored: number[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === '' || /^\s*#/.test(line)) continue;
    const at = line.search(/(?<!\\)=/);
    const member = at < 0 ? '' : line.slice(0, at).trim().replace(/\\=/g, '=').replace(/\\#/g, '#');
    const key = at < 0 ? '' : line.slice(at + 1).trim();
    if (!member || !key) ignored.push(i + 1);
    else if (!(keys[member] ??= []).includes(key)) keys[member].push(key);
  }
  return { keys, ignored };
}
