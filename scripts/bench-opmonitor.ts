/**
 * npm run bench:opmonitor — the cost per message of operational monitoring on each storage engine:
 * `store` of a full SOAP record and its share of the batch write (the default 256 records a
 * transaction), against the same store writing each record in a transaction of its own (the
 * baseline of the same engine, in the same run), on a SQLite file and on a throw-away PostgreSQL
 * cluster (Unix socket) in a temporary folder. `BENCH_RECORDS` records each (20,000 batched; a tenth
 * of them one by one). The last line is one JSON object with every figure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpMonitor } from '../src/opmonitor/op-monitor.ts';
import type { DatabaseConfig } from '../src/storage/database.ts';
import { soapRecord } from '../test/support/op-records.ts';
import { startTestPostgres } from '../test/support/postgres.ts';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), 'xrd-bench-opmon-'));
const postgres = startTestPostgres();

/** Microseconds per record: `records` stores and the writes they cause, on a fresh database. */
async function microsPerRecord(config: DatabaseConfig, records: number, oneByOne: boolean): Promise<number> {
  const monitor = await OpMonitor.open(config, { flushIntervalMs: 3_600_000, batchSize: 256 });
  const at = Date.now();
  const started = performance.now();
  for (let i = 0; i < records; i++) {
    monitor.store(soapRecord(at + i));
    if (oneByOne) await monitor.flush();
  }
  await monitor.flush();
  const micros = ((performance.now() - started) * 1000) / records;
  await monitor.close();
  return micros;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

const engines = {
  sqlite: (name: string): DatabaseConfig => ({ engine: 'sqlite', file: join(dir, `${name}.db`) }),
  postgres: (): DatabaseConfig => ({ engine: 'postgres', url: postgres.createDatabase() }),
};
const figures: Record<string, number> = { records: RECORDS };
try {
  for (const [engine, config] of Object.entries(engines)) {
    // Alternating rounds, so both see the same machine; the median of three each.
    const batched: number[] = [];
    const single: number[] = [];
    for (let r = 0; r < 3; r++) {
      batched.push(await microsPerRecord(config(`batched-${r}`), RECORDS, false));
      single.push(await microsPerRecord(config(`single-${r}`), Math.ceil(RECORDS / 10), true));
    }
    figures[`${engine}BatchedMicrosPerRecord`] = round(median(batched));
    figures[`${engine}OneTransactionEachMicrosPerRecord`] = round(median(single));
    figures[`${engine}Speedup`] = round(median(single) / median(batched));
    console.log(`${engine.padEnd(8)} store + batched write (256 a transaction): ${figures[`${engine}BatchedMicrosPerRecord`]} µs a record`);
    console.log(`${engine.padEnd(8)} store + one transaction a record:          ${figures[`${engine}OneTransactionEachMicrosPerRecord`]} µs a record (${figures[`${engine}Speedup`]}× the batched cost)`);
  }
  figures.postgresOverSqliteBatched = round(figures.postgresBatchedMicrosPerRecord! / figures.sqliteBatchedMicrosPerRecord!);
  console.log(`postgres / sqlite, batched: ${figures.postgresOverSqliteBatched}×`);
} finally {
  postgres.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(figures));
