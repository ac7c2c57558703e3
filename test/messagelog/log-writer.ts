/**
 * Child process for the crash test: 16 callers log messages into a message log, each waiting for
 * its record to commit before the next, as a proxy's exchanges under load do, and it prints the
 * number and query id of each record once `log()` has resolved, until it is killed.
 * Usage: node --import tsx log-writer.ts <log file> <input.json> [<attachment file threshold>]
 * The log is the SQLite file, or the PostgreSQL database of XRD_MESSAGELOG_DATABASE_URL.
 */
import { readFileSync } from 'node:fs';
import { MessageLog } from '../../src/messagelog/message-log.ts';
import { messageLogLocation } from '../../src/messagelog/store.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';

const [file, inputFile, threshold] = process.argv.slice(2);
const input = JSON.parse(readFileSync(inputFile!, 'utf8')) as { message: string; signature: { signatureXml: string; hashChainResult?: string; hashChain?: string }; tsa: string };
const message = Buffer.from(input.message, 'base64');
const attachment = Buffer.alloc(64 * 1024, 7);
// The timestamper would not run within the test; a TSA must be configured for logging to accept messages.
const log = await MessageLog.open(messageLogLocation(file!, process.env.XRD_MESSAGELOG_DATABASE_URL), {
  timestampingIntervalSeconds: 3600,
  initialDelayMs: 3_600_000,
  tsas: () => [{ url: input.tsa, cert: Buffer.alloc(0) }],
  attachmentFileThresholdBytes: threshold === undefined ? undefined : Number(threshold),
});
const client = parseClientId('LOCAL/COM/2222/CLIENT');
const serviceProvider = parseClientId('LOCAL/COM/1111/PROVIDER');

let i = 0;
const caller = async (): Promise<never> => {
  for (;;) {
    const queryId = `q-crash-${i++}`;
    const id = await log.log({ queryId, client, serviceProvider, serviceCode: 'getRandom', isResponse: false, side: 'client', message, attachments: [attachment], signature: input.signature });
    process.stdout.write(`${id} ${queryId}\n`);
  }
};
for (let c = 0; c < 16; c++) void caller();
