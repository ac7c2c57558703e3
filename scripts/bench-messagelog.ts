/**
 * npm run bench:messagelog — the message log's cost per message as the proxies pay it: CPU time
 * (this process, all threads: the writer and the helper thread's WAL checkpoints) per
 * `log` of a request-sized record (1.5 KB SOAP message, 5 KB XAdES signature), in groups
 * as the proxies' event loop hands them over — one at a time (1 client: each record its own
 * transaction) and 32 together (many clients: one group commit), the latter with the messages of a
 * signing batch sharing their signature and each carrying a hash chain. No timestamping round runs
 * (that cost is per batch, not per message). `BENCH_RECORDS` records each (5,000), median of three
 * rounds on fresh files. The last line is one JSON object with every figure.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageLog, type MessageToLog } from '../src/messagelog/message-log.ts';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 5_000);
const dir = mkdtempSync(join(tmpdir(), 'xrd-bench-messagelog-'));
const client = { type: 'SUBSYSTEM', instance: 'LOCAL', memberClass: 'COM', memberCode: '2222', subsystemCode: 'CLIENT' } as const;
const provider = { type: 'SUBSYSTEM', instance: 'LOCAL', memberClass: 'COM', memberCode: '1111', subsystemCode: 'PROVIDER' } as const;

/** A signature document of the usual size: distinct per signing batch. */
const signatureXml = (n: number) => `<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#">${'<ds:Signature>'.padEnd(4900, 'x')}${n}</ds:Signature></asic:XAdESSignatures>`;
const message = (n: number) => Buffer.from(`<SOAP-ENV:Envelope>${'h'.repeat(1400)}<id>${n}-${randomBytes(8).toString('hex')}</id></SOAP-ENV:Envelope>`);

function record(n: number, batch: number): MessageToLog {
  const batched = batch > 1;
  return {
    queryId: `q-${n}`,
    client,
    serviceProvider: provider,
    serviceCode: 'getRandom',
    isResponse: false,
    side: 'client',
    message: message(n),
    // Buffers, as a verified message's signature arrives; the batch members share one.
    signature: batched ? { signatureXml: Buffer.from(signatureXml(Math.floor(n / batch))), hashChainResult: Buffer.from('<hashchainresult/>'.padEnd(600, ' ')), hashChain: Buffer.from('<hashchain/>'.padEnd(900, ' ')) } : { signatureXml: Buffer.from(signatureXml(n)) },
    xRequestId: randomBytes(16).toString('hex'),
  };
}

/** CPU microseconds per record, groups of `group` handed over in one event-loop turn. */
async function microsPerRecord(name: string, group: number): Promise<number> {
  const log = await MessageLog.open(join(dir, `${name}.db`), {
    timestampingIntervalSeconds: 3600,
    initialDelayMs: 3_600_000,
    tsas: () => [{ url: 'http://127.0.0.1:9/', cert: Buffer.alloc(0) }],
  });
  const records = Array.from({ length: RECORDS }, (_, i) => record(i, group));
  const before = process.cpuUsage();
  for (let i = 0; i < RECORDS; i += group) await Promise.all(records.slice(i, i + group).map((r) => log.log(r)));
  const used = process.cpuUsage(before);
  await log.close();
  return (used.user + used.system) / RECORDS;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

const alone: number[] = [];
const grouped: number[] = [];
try {
  for (let r = 0; r < 3; r++) {
    alone.push(await microsPerRecord(`alone-${r}`, 1));
    grouped.push(await microsPerRecord(`grouped-${r}`, 32));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const figures = { records: RECORDS, aloneCpuMicrosPerRecord: round(median(alone)), groupedCpuMicrosPerRecord: round(median(grouped)) };
console.log(`one record a transaction (1 client):            ${figures.aloneCpuMicrosPerRecord} µs CPU a record`);
console.log(`32 a group commit, batch-signed (many clients): ${figures.groupedCpuMicrosPerRecord} µs CPU a record`);
console.log(JSON.stringify(figures));
