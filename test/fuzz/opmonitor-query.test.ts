/**
 * pr-opmon query bodies (src/opmonitor/queries.ts): mutations of the reference's own requests
 * (../shared/xroad-vectors/opmonitor) that still have a header the proxy accepts are answered or
 * refused with Client.InvalidRequest — never another error, never a crash.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { OpMonitor } from '../../src/opmonitor/op-monitor.ts';
import { answerQuery } from '../../src/opmonitor/queries.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { parseSoapHeader, type SoapHeader } from '../../src/protocol/soap-message.ts';
import { FUZZ_TIMEOUT, fuzzRuns, mutated, vector } from './fuzz.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-fuzz-opmon-'));
const store = await OpMonitor.open({ engine: 'sqlite', file: join(dir, 'op.db') });
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const ALPHABET = [...'<>/:="-0123456789 \n'].map((c) => c.charCodeAt(0));

describe('pr-opmon query bodies', () => {
  it.each(['operationaldata.request', 'healthdata.request'])(
    'a mutated %s is answered or refused with Client.InvalidRequest only',
    async (name) => {
      await fc.assert(
        fc.asyncProperty(mutated(vector('opmonitor', name), ALPHABET), async (request) => {
          let header: SoapHeader;
          try {
            header = parseSoapHeader(request);
          } catch {
            return; // the proxy refuses it before it is a query
          }
          try {
            await answerQuery(request, header, store, { serverOwner: () => undefined });
          } catch (err) {
            expect(err).toBeInstanceOf(XrdError);
            expect((err as XrdError).faultCode).toBe('Client.InvalidRequest');
          }
        }),
        fuzzRuns(300),
      );
    },
    FUZZ_TIMEOUT,
  );
});
