/** `xrd asic verify|export`: message containers (no daemon needed; docs/signatures.md, docs/messagelog.md). */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadGlobalConf } from '../globalconf/global-conf.ts';
import { MessageLogReader } from '../messagelog/store.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import { formatClientId } from '../protocol/identifiers.ts';
import { readAsicFile, verifyAsicFile, type AsicFileContents } from '../signature/asic.ts';
import { globalConfDir, messageLogOf, type Values } from './options.ts';
import { UsageError } from './usage-error.ts';

export async function asicCommand(command: string | undefined, rest: string[], values: Values, dataDir: string): Promise<number> {
  if (command === 'export') return asicExport(rest, values, dataDir);
  if (command !== 'verify') throw new UsageError(`unknown command "asic ${command ?? ''}"`);
  const file = rest[0];
  if (!file) throw new UsageError('missing <file.asice>');
  const conf = values['load-only'] ? undefined : loadGlobalConf(globalConfDir(values, false)!);
  let v;
  try {
    // Read from the file as it is needed: a container of a large attachment is never held whole.
    if (!conf) return printLoaded(file, await readAsicFile(file), values);
    v = await verifyAsicFile(file, conf, { allowUnstamped: values['allow-unstamped'] });
  } catch (err) {
    const e = toXrdError(err);
    if (values.json) process.stdout.write(JSON.stringify({ valid: false, file, error: { code: e.fullCode, message: e.message } }, null, 2) + '\n');
    else process.stdout.write(`Verification failed: ${e.fullCode}: ${e.message}\n${e.code === 'MissingTimestamp' ? 'To verify it as of its signing time anyway: --allow-unstamped\n' : ''}`);
    return 1;
  }
  const stamp = v.batchTimestamp ?? v.timestamp;
  const view = {
    valid: true,
    file,
    queryId: v.queryId,
    message: v.isResponse ? 'response' : 'request',
    signer: { id: formatClientId(v.signer), subject: v.signingCert.subject, issuer: v.signingCert.issuer, serialNumber: v.signingCert.serialNumber, notBefore: v.signingCert.notBefore.toISOString(), notAfter: v.signingCert.notAfter.toISOString() },
    signingTime: v.signingTime.toISOString(),
    hashChain: v.hashChain,
    stamped: v.stamped,
    timestamp: stamp ? { tsa: stamp.tsaSubject, time: stamp.genTime.toISOString(), batch: v.batchTimestamp !== undefined } : null,
    validatedAt: v.validatedAt.toISOString(),
    ocsp: v.ocsp.map((o) => ({ subject: o.subject, producedAt: o.producedAt.toISOString(), thisUpdate: o.thisUpdate.toISOString() })),
    verifiedParts: v.verifiedParts,
    unverifiedParts: v.unverifiedParts,
  };
  if (values.json) process.stdout.write(JSON.stringify(view, null, 2) + '\n');
  else {
    process.stdout.write(
      [
        'Verification successful.',
        `Signer ${view.signer.id} (${view.message} ${view.queryId || '-'})`,
        `    Certificate: ${view.signer.subject}`,
        `    Issuer: ${view.signer.issuer}, serial number (hex) ${view.signer.serialNumber}, valid ${view.signer.notBefore} to ${view.signer.notAfter}`,
        `    Signed at ${view.signingTime}${view.hashChain ? ' (hash chain)' : ''}`,
        view.timestamp ? `Timestamp by ${view.timestamp.tsa} at ${view.timestamp.time}${view.timestamp.batch ? ' (batch)' : ''}` : 'NOT timestamped (--allow-unstamped): certificates checked as of the signing time its signer claims',
        ...view.ocsp.map((o) => `OCSP response for ${o.subject}: good, produced at ${o.producedAt}`),
        `Parts verified: ${view.verifiedParts.join(', ')}`,
        ...view.unverifiedParts.map((p) => `Not in the container, digest trusted from the hash chain: ${p}`),
      ].join('\n') + '\n',
    );
  }
  return 0;
}

/** What `asic verify --load-only` found: the container loads; nothing was verified. */
function printLoaded(file: string, c: AsicFileContents, values: Values): number {
  const view = { valid: true, loadOnly: true, file, messageBytes: c.message.length, attachments: c.attachments.length, hashChain: c.hashChain !== undefined, batchTimestamp: c.timestampToken !== undefined };
  if (values.json) process.stdout.write(JSON.stringify(view, null, 2) + '\n');
  else {
    const parts = [`message.xml (${view.messageBytes} bytes)`, `${view.attachments} attachment(s)`, view.hashChain ? 'signature hash chain' : 'no signature hash chain', view.batchTimestamp ? 'batch timestamp' : 'no batch timestamp'];
    process.stdout.write(`Container loads: ${parts.join(', ')}. Nothing verified (--load-only).\n`);
  }
  return 0;
}

/**
 * Reads the message log (while a proxy may be writing it) and writes one container per record,
 * streamed: attachments in files are copied in chunks, never held whole.
 */
async function asicExport(rest: string[], values: Values, dataDir: string): Promise<number> {
  const queryId = rest[0];
  if (queryId === undefined) throw new UsageError('missing <queryId>');
  const dir = resolve(values.out ?? '.');
  const reader = await MessageLogReader.openExisting(messageLogOf(values, dataDir));
  let containers;
  try {
    containers = await reader.exportAsic(queryId, { allowUnstamped: values['allow-unstamped'] });
  } finally {
    await reader.close();
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot create ${dir}: ${(err as Error).message}` }, { cause: err });
  }
  const written = [];
  for (const c of containers) {
    const file = join(dir, c.name);
    const bytes = await c.writeTo(file);
    const view = { file, message: c.isResponse ? 'response' : 'request', recordId: c.recordId, bytes, timestamp: c.timestamp ? { time: c.timestamp.time.toISOString(), batch: c.timestamp.batch } : null };
    if (!values.json) {
      const stamp = view.timestamp ? `timestamp ${view.timestamp.time}${view.timestamp.batch ? ' (batch)' : ''}` : 'NOT timestamped';
      process.stdout.write(`wrote ${file} (${view.message}, record ${view.recordId}, ${stamp})\n`);
    }
    written.push(view);
  }
  if (values.json) process.stdout.write(JSON.stringify({ queryId, dir, containers: written }, null, 2) + '\n');
  else process.stdout.write(`${written.length} container${written.length === 1 ? '' : 's'} of query ${queryId} in ${dir}\n`);
  return 0;
}
