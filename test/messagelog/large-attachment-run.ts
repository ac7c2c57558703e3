/**
 * The measured process of the large-attachment test: receives an attachment of the given size
 * into a spool file chunk by chunk (as a proxy does), logs it with `log`, stamps it and
 * exports its container with `writeTo`, and prints, as JSON, how far its resident memory rose
 * above where it was before logging and before exporting (the peak, VmHWM, reset before each
 * step) and how long each took. Linux only (/proc/self).
 * Usage: node --import tsx large-attachment-run.ts <dir> <input.json>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageLog, type MessageToLog } from '../../src/messagelog/message-log.ts';
import { SpoolFolder } from '../../src/platform/spool.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { pseudoRandomChunks } from './fixture.ts';

const [dir, inputFile] = process.argv.slice(2);
const input = JSON.parse(readFileSync(inputFile!, 'utf8')) as {
  bytes: number;
  message: string;
  signature: { signatureXml: string; hashChainResult?: string; hashChain?: string };
  tsa: { url: string; cert: string };
  tsaCerts: string[];
};

const kib = (field: 'VmHWM' | 'VmRSS') => Number(/(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(field))!)![1]);
/** Runs `step` with the peak reset first; @returns how far the peak rose above the resident memory before it (KiB), and the time (ms). */
async function measured<T>(step: () => Promise<T>): Promise<{ value: T; rssBeforeKiB: number; peakRiseKiB: number; ms: number }> {
  writeFileSync('/proc/self/clear_refs', '5');
  const rssBeforeKiB = kib('VmRSS');
  const started = performance.now();
  const value = await step();
  return { value, rssBeforeKiB, peakRiseKiB: kib('VmHWM') - rssBeforeKiB, ms: Math.round(performance.now() - started) };
}

const log = await MessageLog.open(join(dir!, 'messagelog.db'), {
  timestampingIntervalSeconds: 3600,
  initialDelayMs: 3_600_000,
  tsas: () => [{ url: input.tsa.url, cert: Buffer.from(input.tsa.cert, 'base64') }],
  tsaCerts: () => input.tsaCerts.map((c) => Buffer.from(c, 'base64')),
});
const record = (queryId: string, attachments: MessageToLog['attachments']): MessageToLog => ({
  queryId,
  client: parseClientId('LOCAL/COM/2222/CLIENT'),
  serviceProvider: parseClientId('LOCAL/COM/1111/PROVIDER'),
  serviceCode: 'getRandom',
  isResponse: false,
  side: 'client',
  message: Buffer.from(input.message, 'base64'),
  attachments,
  signature: input.signature,
});

// The same steps with a small record first: code loaded and compiled, the helper thread running.
await log.log(record('q-small', [Buffer.from('small')]));
await log.timestampNow();
await (await log.exportAsic('q-small'))[0]!.writeTo(join(dir!, 'small.asice'));

const spool = new SpoolFolder(join(dir!, 'spool'), { thresholdBytes: 1024 * 1024 });
spool.purge();
const writer = spool.writer();
for (const chunk of pseudoRandomChunks(input.bytes)) writer.write(chunk);
const received = writer.end();
const logged = await measured(async () => {
  const id = await log.log(record('q-large', [received]));
  // As the proxy does once the exchange is over: the log keeps its own link to the file.
  received.dispose();
  return id;
});
await log.timestampNow();
const [container] = (await log.exportAsic('q-large'));
const file = join(dir!, container!.name);
const exported = await measured(() => container!.writeTo(file));
const attachmentFile = (await log.record(logged.value))!.attachments[0]!.file;
await log.close();

const view = ({ rssBeforeKiB, peakRiseKiB, ms }: { rssBeforeKiB: number; peakRiseKiB: number; ms: number }) => ({ rssBeforeKiB, peakRiseKiB, ms });
process.stdout.write(JSON.stringify({ attachmentFile, container: file, containerBytes: exported.value, log: view(logged), export: view(exported) }) + '\n');
