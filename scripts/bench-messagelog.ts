/**
 * npm run bench:messagelog — the message log's cost per message as the proxies pay it, on each
 * storage engine (a SQLite file; a throw-away PostgreSQL cluster on a Unix socket): CPU time of this
 * process (all threads: the writer and the helper thread's WAL checkpoints; PostgreSQL's own server
 * processes are not in it) and wall time per `log` of a request-sized record (1.5 KB SOAP message,
 * 5 KB XAdES signature), in groups as the proxies' event loop hands them over — one at a time
 * (1 client: each record its own transaction) and 32 together (many clients: one group commit),
 * the latter with the messages of a signing batch sharing their signature and each carrying a hash
 * chain. No timestamping round runs (that cost is per batch, not per message). `BENCH_RECORDS`
 * records each (5,000), median of three rounds on fresh databases; PostgreSQL's figures also as a
 * ratio to SQLite's of the same run. The last line is one JSON object with every figure.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageLog, type MessageToLog } from '../src/messagelog/message-log.ts';
import type { MessageLogLocation } from '../src/messagelog/store.ts';
import { startTestPostgres } from '../test/support/postgres.ts';

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

interface Cost {
  readonly cpu: number;
  readonly wall: number;
}

/** CPU and wall microseconds per record, groups of `group` handed over in one event-loop turn. */
async function costPerRecord(at: MessageLogLocation, group: number): Promise<Cost> {
  const log = await MessageLog.open(at, {
    timestampingIntervalSeconds: 3600,
    initialDelayMs: 3_600_000,
    tsas: () => [{ url: 'http://127.0.0.1:9/', cert: Buffer.alloc(0) }],
  });
  const records = Array.from({ length: RECORDS }, (_, i) => record(i, group));
  const before = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < RECORDS; i += group) await Promise.all(records.slice(i, i + group).map((r) => log.log(r)));
  const wall = ((performance.now() - started) * 1000) / RECORDS;
  const used = process.cpuUsage(before);
  await log.close();
  return { cpu: (used.user + used.system) / RECORDS, wall };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

const postgres = startTestPostgres();
const engines = {
  sqlite: (name: string): MessageLogLocation => ({ database: { engine: 'sqlite', file: join(dir, `${name}.db`) }, attachmentDir: join(dir, `${name}-attachments`) }),
  postgres: (name: string): MessageLogLocation => ({ database: { engine: 'postgres', url: postgres.createDatabase() }, attachmentDir: join(dir, `${name}-attachments`) }),
};
const figures: Record<string, number> = { records: RECORDS };
try {
  for (const [engine, at] of Object.entries(engines)) {
    const alone: Cost[] = [];
    const grouped: Cost[] = [];
    for (let r = 0; r < 3; r++) {
      alone.push(await costPerRecord(at(`${engine}-alone-${r}`), 1));
      grouped.push(await costPerRecord(at(`${engine}-grouped-${r}`), 32));
    }
    for (const [kind, costs] of [['alone', alone], ['grouped', grouped]] as const) {
      figures[`${engine}${kind === 'alone' ? 'Alone' : 'Grouped'}CpuMicrosPerRecord`] = round(median(costs.map((c) => c.cpu)));
      figures[`${engine}${kind === 'alone' ? 'Alone' : 'Grouped'}WallMicrosPerRecord`] = round(median(costs.map((c) => c.wall)));
    }
    console.log(`${engine.padEnd(8)} one record a transaction (1 client):            ${figures[`${engine}AloneCpuMicrosPerRecord`]} µs CPU, ${figures[`${engine}AloneWallMicrosPerRecord`]} µs wall a record`);
    console.log(`${engine.padEnd(8)} 32 a group commit, batch-signed (many clients): ${figures[`${engine}GroupedCpuMicrosPerRecord`]} µs CPU, ${figures[`${engine}GroupedWallMicrosPerRecord`]} µs wall a record`);
  }
  for (const kind of ['Alone', 'Grouped']) figures[`postgresOverSqlite${kind}Wall`] = round(figures[`postgres${kind}WallMicrosPerRecord`]! / figures[`sqlite${kind}WallMicrosPerRecord`]!);
  console.log(`postgres / sqlite, wall: ${figures.postgresOverSqliteAloneWall}× alone, ${figures.postgresOverSqliteGroupedWall}× grouped`);
} finally {
  postgres.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(figures));
