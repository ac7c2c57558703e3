/**
 * The storage suites' engines: SQLite in a test folder, and PostgreSQL in a throw-away cluster
 * (src/dev/localinstance/throwaway-postgres.ts) started on first use and stopped with `stopEngines`.
 */
import { join } from 'node:path';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../src/dev/localinstance/throwaway-postgres.ts';
import type { DatabaseConfig, Engine } from '../../src/storage/database.ts';

export { startThrowawayPostgres as startTestPostgres, type ThrowawayPostgres as TestPostgres };

/**
 * The engines a storage suite runs over, each with a fresh database per call of `config`:
 * `describe.each(storageEngines())`. PostgreSQL's cluster starts on the first PostgreSQL config and
 * stops with `stopEngines`.
 */
export function storageEngines(folder: () => string): { engine: Engine; config: (name: string) => DatabaseConfig }[] {
  return [
    { engine: 'sqlite', config: (name) => ({ engine: 'sqlite', file: join(folder(), `${name}.db`) }) },
    { engine: 'postgres', config: () => ({ engine: 'postgres', url: (cluster ??= startThrowawayPostgres()).createDatabase() }) },
  ];
}

let cluster: ThrowawayPostgres | undefined;

export function stopEngines(): void {
  cluster?.stop();
  cluster = undefined;
}
