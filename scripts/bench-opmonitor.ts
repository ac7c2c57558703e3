/**
 * npm run bench:opmonitor — the cost per message of operational monitoring: `store` of a full
 * SOAP record and its share of the batch write (the default 256 records a transaction), against
 * the same store with one transaction per record (batchSize 1), on one SQLite file in a temporary
 * folder. `BENCH_RECORDS` records each (20,000). The last line is one JSON object with every figure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpMonitor } from '../src/opmonitor/op-monitor.ts';
import { soapRecord } from '../test/support/op-records.ts';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), 'xrd-bench-opmon-'));

/** Microseconds per record: RECORDS stores and the writes they cause, on a fresh file. */
function microsPerRecord(name: string, batchSize: number): number {
  const monitor = OpMonitor.open(join(dir, `${name}.db`), { flushIntervalMs: 3_600_000, batchSize });
  const at = Date.now();
  const started = performance.now();
  for (let i = 0; i < RECORDS; i++) monitor.store(soapRecord(at + i));
  monitor.flush();
  const micros = ((performance.now() - started) * 1000) / RECORDS;
  monitor.close();
  return micros;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

// Alternating rounds, so both see the same machine; the median of three each.
const batched: number[] = [];
const single: number[] = [];
try {
  for (let r = 0; r < 3; r++) {
    batched.push(microsPerRecord(`batched-${r}`, 256));
    single.push(microsPerRecord(`single-${r}`, 1));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const figures = { records: RECORDS, batchedMicrosPerRecord: round(median(batched)), oneTransactionEachMicrosPerRecord: round(median(single)), speedup: round(median(single) / median(batched)) };
console.log(`store + batched write (256 a transaction): ${figures.batchedMicrosPerRecord} µs a record`);
console.log(`store + one transaction a record:          ${figures.oneTransactionEachMicrosPerRecord} µs a record (${figures.speedup}× the batched cost)`);
console.log(JSON.stringify(figures));
