/**
 * Child process for the crash test: writes OCSP responses into the cache one transaction at a
 * time and prints the number of each committed one, until it is killed.
 * Usage: node --import tsx ocsp-cache-writer.ts <cache file> <response file>
 */
import { readFileSync } from 'node:fs';
import { silentLogger } from '../../src/platform/logger.ts';
import { OcspCache } from '../../src/trust/ocsp-cache.ts';

const [cachePath, responsePath] = process.argv.slice(2);
const cache = new OcspCache(cachePath!, silentLogger());
const der = readFileSync(responsePath!);
for (let i = 0; ; i++) {
  cache.set([{ certSha1: i.toString(16).padStart(40, '0'), der }]);
  process.stdout.write(`${i}\n`);
}
