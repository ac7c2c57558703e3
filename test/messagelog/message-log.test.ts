/**
 * The message log with a real SQLite file, real signatures and the local TSA: what is logged reads
 * back byte for byte; a lone record is stamped directly and its container verifies with
 * `xrd asic verify`; while the TSA is down logging goes on for the acceptable period, then refuses
 * with the reference's code, keeps what it has, and resumes once a timestamp succeeds; a process
 * killed with SIGKILL while logging loses no record it reported committed.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageLog, readTimestamperStatus, type MessageLogOptions } from '../../src/messagelog/message-log.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { MessageLogReader, asicFileName } from '../../src/messagelog/store.ts';
import { restRequestHeaderPart } from '../../src/protocol/rest-message.ts';
import { verifyAsic } from '../../src/signature/asic.ts';
import { parseSignature } from '../../src/signature/verifier.ts';
import { CLIENT, PROVIDER, createFixture, killWriterAfter, logOptions, soap, toLog, xrd, type Fixture } from './fixture.ts';

let f: Fixture;
let n = 0;
const dbFile = () => join(f.dir, `log-${++n}.sqlite`);
const options = (extra: Partial<MessageLogOptions> = {}) => logOptions(f, extra);

function asicVerify(file: string): Promise<{ code: number; json: Record<string, unknown> }> {
  return xrd(['asic', 'verify', file, '--conf', f.pki.globalConfDir]);
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  f = await createFixture();
});

afterAll(async () => {
  await f?.close();
});

describe('message log', () => {
  it('logs SOAP and REST messages with their signatures and reads them back byte for byte', async () => {
    const file = dbFile();
    const log = await MessageLog.open(file, options());
    const request = soap('q-rw');
    const attachments = [Buffer.from('%PDF-1.4 an attachment'), Buffer.from([0, 1, 2, 255])];
    const signedRequest = await f.signer.sign(f.keys.client, { message: request, attachments });
    const response = soap('q-rw', true);
    const signedResponse = await f.signer.sign(f.keys.provider, { message: response });
    const restHeader = restRequestHeaderPart('POST', '/r1/LOCAL/COM/1111/PROVIDER/rest-test/hello', [['x-road-client', 'LOCAL/COM/2222/CLIENT'], ['x-road-id', 'q-rest']]);
    const restBody = Buffer.from('{"name":"x"}');
    const signedRest = await f.signer.sign(f.keys.client, { message: restHeader, attachments: [restBody] });

    const ids = [
      await log.log(toLog('q-rw', request, signedRequest, false, attachments)),
      await log.log({ ...toLog('q-rw', response, signedResponse, true), xRequestId: 'pair-1' }),
      await log.log({ ...toLog('q-rest', restHeader, signedRest, false, [restBody]), serviceCode: 'rest-test' }),
    ];
    expect(ids[1]).toBeGreaterThan(ids[0]!);
    await log.close();

    // Another process (xrd asic export) reads the file without the timestamper.
    const reader = await MessageLogReader.openExisting(file);
    const [req, resp] = (await reader.records('q-rw'));
    expect(req).toMatchObject({ id: ids[0], queryId: 'q-rw', client: 'LOCAL/COM/2222/CLIENT', service: 'LOCAL/COM/1111/PROVIDER/getRandom', isResponse: false, side: 'client', timestamp: undefined });
    expect(req!.message.equals(request)).toBe(true);
    expect(req!.attachments.map((a) => a.bytes().toString('hex'))).toEqual(attachments.map((a) => a.toString('hex')));
    expect(req!.signatureXml).toBe(signedRequest.signatureXml);
    expect(req!.hashChainResult).toBe(signedRequest.hashChainResult);
    expect(req!.hashChain).toBe(signedRequest.hashChain);
    expect(resp).toMatchObject({ id: ids[1], isResponse: true, side: 'server', xRequestId: 'pair-1', hashChain: undefined, attachments: [] });
    expect(resp!.signatureXml).toBe(signedResponse.signatureXml);
    const [rest] = (await reader.records('q-rest'));
    expect(rest!.message.equals(restHeader) && rest!.attachments[0]!.bytes().equals(restBody)).toBe(true);
    expect(rest!.service).toBe('LOCAL/COM/1111/PROVIDER/rest-test');
    expect((await reader.records('unknown'))).toEqual([]);
    // Nothing stamped yet: export says so instead of handing out weaker containers.
    await expect(reader.exportAsic('q-rw')).rejects.toMatchObject({ code: 'MissingTimestamp' });
    await expect(reader.exportAsic('unknown')).rejects.toMatchObject({ code: 'NotFound' });
    await reader.close();
  });

  it('stamps a lone record directly: the token goes into its signature and the container verifies', async () => {
    const file = dbFile();
    const log = await MessageLog.open(file, options());
    const message = soap('q-single');
    const signed = await f.signer.sign(f.keys.client, { message });
    const id = await log.log(toLog('q-single', message, signed, false));
    expect((await log.status())).toMatchObject({ pending: 1, acceptingMessages: true, timestampsObtained: 0 });

    expect(await log.timestampNow()).toBe(1);
    expect((await log.status())).toMatchObject({ pending: 0, oldestPendingAgeSeconds: null, failingSince: null, timestampsObtained: 1, recordsStamped: 1 });
    const record = (await log.record(id))!;
    expect(record.timestamp).toMatchObject({ hashChainResult: undefined, hashChain: undefined, tsaUrl: f.conf.own.approvedTsas[0]!.url });
    // The token is embedded and is the one stored; the signature value itself is unchanged.
    expect(parseSignature(record.signatureXml).timestamp!.equals(record.timestamp!.token)).toBe(true);
    expect(parseSignature(record.signatureXml).signatureValue.equals(parseSignature(signed.signatureXml).signatureValue)).toBe(true);

    const [container] = (await log.exportAsic('q-single'));
    expect(container).toMatchObject({ name: `q-single-request-${id.toString(32)}.asice`, recordId: id, isResponse: false, timestamp: { batch: false } });
    const out = join(f.dir, 'single');
    mkdirSync(out);
    writeFileSync(join(out, container!.name), container!.data);
    expect(await asicVerify(join(out, container!.name))).toMatchObject({
      code: 0,
      json: { valid: true, queryId: 'q-single', message: 'request', signer: { id: 'LOCAL/COM/2222/CLIENT' }, timestamp: { batch: false, tsa: expect.stringContaining('LOCAL Test TSA') } },
    });
    await log.close();
  });

  it('attack: a request whose body element is named …Response is still its client\'s request, and a response is known by its requestHash', async () => {
    const log = await MessageLog.open(dbFile(), options());
    const request = soap('q-named', true).toString().replace(/<xrd:requestHash[^]*<\/xrd:requestHash>/, '');
    expect(request).toContain('getRandomResponse');
    const response = soap('q-named', true);
    const [signedRequest, signedResponse] = await Promise.all([f.signer.sign(f.keys.client, { message: Buffer.from(request) }), f.signer.sign(f.keys.provider, { message: response })]);
    await log.log(toLog('q-named', Buffer.from(request), signedRequest, false));
    await log.log(toLog('q-named', response, signedResponse, true));
    expect(await log.timestampNow()).toBe(2);
    const out = join(f.dir, 'named');
    mkdirSync(out);
    const verified = [];
    for (const c of (await log.exportAsic('q-named'))) {
      writeFileSync(join(out, c.name), c.data);
      verified.push((await asicVerify(join(out, c.name))).json);
    }
    expect(verified).toMatchObject([
      { valid: true, message: 'request', signer: { id: 'LOCAL/COM/2222/CLIENT' } },
      { valid: true, message: 'response', signer: { id: 'LOCAL/COM/1111/PROVIDER' } },
    ]);
    await log.close();
  });

  it('messages of one signing batch stamped one at a time each get their own token, leaving the others untouched', async () => {
    const log = await MessageLog.open(dbFile(), options());
    const [a, b] = await Promise.all(['q-pair-a', 'q-pair-b'].map((q) => f.signer.sign(f.keys.client, { message: soap(q) })));
    expect(a!.signatureXml).toBe(b!.signatureXml);
    const idA = await log.log(toLog('q-pair-a', soap('q-pair-a'), a!, false));
    expect(await log.timestampNow()).toBe(1);
    const idB = await log.log(toLog('q-pair-b', soap('q-pair-b'), b!, false));
    // B is logged with the signature as signed, not with A's stamped copy.
    expect((await log.record(idB))!.signatureXml).toBe(b!.signatureXml);
    expect(await log.timestampNow()).toBe(1);
    const [ra, rb] = [(await log.record(idA))!, (await log.record(idB))!];
    expect(ra.timestamp!.id).not.toBe(rb.timestamp!.id);
    expect(parseSignature(ra.signatureXml).timestamp!.equals(ra.timestamp!.token)).toBe(true);
    expect(parseSignature(rb.signatureXml).timestamp!.equals(rb.timestamp!.token)).toBe(true);
    for (const q of ['q-pair-a', 'q-pair-b']) expect(verifyAsic((await log.exportAsic(q))[0]!.data, f.conf).hashChain).toBe(true);
    await log.close();
  });

  it('a verified peer\'s signature arrives as bytes: stored as the same text, and the copies a signing batch\'s messages each carry share one row', async () => {
    const file = dbFile();
    const log = await MessageLog.open(file, options());
    const queries = ['q-bytes-a', 'q-bytes-b', 'q-bytes-c'];
    const signed = await Promise.all(queries.map((q) => f.signer.sign(f.keys.client, { message: soap(q), attachments: [Buffer.from(q)] })));
    expect(new Set(signed.map((s) => s.signatureXml)).size).toBe(1);
    // Each message of the batch decoded from its own HTTP body: equal bytes, separate buffers.
    const asBytes = (i: number) => ({ signatureXml: Buffer.from(signed[i]!.signatureXml), hashChainResult: Buffer.from(signed[i]!.hashChainResult!), hashChain: Buffer.from(signed[i]!.hashChain!) });
    const ids = await Promise.all([0, 1].map((i) => log.log({ ...toLog(queries[i]!, soap(queries[i]!), signed[i]!, false, [Buffer.from(queries[i]!)]), signature: asBytes(i) })));
    ids.push(await log.log({ ...toLog(queries[2]!, soap(queries[2]!), signed[2]!, false, [Buffer.from(queries[2]!)]), signature: asBytes(2) }));
    for (const [i, id] of ids.entries()) {
      const record = (await log.record(id))!;
      expect(record.signatureXml).toBe(signed[i]!.signatureXml);
      expect(record.hashChainResult).toBe(signed[i]!.hashChainResult);
      expect(record.hashChain).toBe(signed[i]!.hashChain);
    }
    await log.close();
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n, typeof(xml) AS type FROM signature').get()).toEqual({ n: 1, type: 'text' });
    expect(db.prepare('SELECT DISTINCT typeof(hash_chain) AS type FROM message_record').all()).toEqual([{ type: 'text' }]);
    db.close();
  });

  it('stamps many records with one timestamp; each container carries its own ts-hashchain and verifies', async () => {
    const log = await MessageLog.open(dbFile(), options({ maxBatch: 50 }));
    // 30 exchanges signed concurrently (the signer batches them too), request and response each.
    const queries = Array.from({ length: 30 }, (_, i) => `q-batch-${i}`);
    const requests = await Promise.all(queries.map((q) => f.signer.sign(f.keys.client, { message: soap(q) })));
    const responses = await Promise.all(queries.map((q) => f.signer.sign(f.keys.provider, { message: soap(q, true) })));
    for (const [i, q] of queries.entries()) {
      await log.log(toLog(q, soap(q), requests[i]!, false));
      await log.log(toLog(q, soap(q, true), responses[i]!, true));
    }
    // 60 records, batches of at most 50: two timestamps, the second round starting at once.
    expect(await log.timestampNow()).toBe(60);
    expect((await log.status())).toMatchObject({ pending: 0, timestampsObtained: 2, recordsStamped: 60 });
    const containers = (await Promise.all(queries.map((q) => log.exportAsic(q)))).flat();
    expect(containers).toHaveLength(60);
    expect(new Set(containers.map((c) => c.name)).size).toBe(60);
    expect(containers.every((c) => c.timestamp?.batch)).toBe(true);
    for (const c of containers) {
      const v = verifyAsic(c.data, f.conf);
      expect(v.batchTimestamp).toBeDefined();
      expect(v.signer).toEqual(c.isResponse ? PROVIDER : CLIENT);
    }
    await log.close();
  });

  it('while the TSA is down logs within the acceptable period, then refuses with LoggingFailed.TimestamperFailed, and resumes once a stamp succeeds', async () => {
    const file = dbFile();
    // The failure period runs on a clock the test moves; the rounds run on real timers.
    let clock = Date.now();
    const statusFile = `${file}.status.json`;
    const log = await MessageLog.open(file, options({ timestampingIntervalSeconds: 0.1, retryDelaySeconds: 0.1, acceptableTimestampFailureSeconds: 2, initialDelayMs: 0, now: () => clock, statusFile }));
    const tsaUrl = f.conf.own.approvedTsas[0]!.url;
    const tsaOutcome = () => readTimestamperStatus(statusFile)?.tsas.find((t) => t.url === tsaUrl);
    const exchange = async (q: string) => ({ q, signed: await f.signer.sign(f.keys.client, { message: soap(q) }) });
    const messages = await Promise.all(['q-down-1', 'q-down-2', 'q-down-3', 'q-down-4'].map(exchange));
    const logged: number[] = [];
    try {
      await f.stop();
      logged.push(await log.log(toLog(messages[0]!.q, soap(messages[0]!.q), messages[0]!.signed, false)));
      await until('timestamping fails', async () => (await log.status()).failingSince !== null);
      expect((await log.status())).toMatchObject({ acceptingMessages: true, pending: 1, lastError: { code: 'TimestampingFailed' }, failingSince: new Date(clock) });
      // What the admin API's diagnostics read in another process: the TSA failed, with the reason.
      await until('the failure is written for diagnostics', () => tsaOutcome()?.status === 'FAIL');
      expect(tsaOutcome()).toMatchObject({ status: 'FAIL', code: 'TimestampingFailed', message: expect.stringContaining(tsaUrl) });
      // Within the acceptable period logging goes on, up to its last millisecond.
      clock += 2000;
      logged.push(await log.log(toLog(messages[1]!.q, soap(messages[1]!.q), messages[1]!.signed, false)));
      expect((await log.status()).acceptingMessages).toBe(true);

      clock += 1;
      expect((await log.status()).acceptingMessages).toBe(false);
      let refused: unknown;
      try {
        await log.log(toLog(messages[2]!.q, soap(messages[2]!.q), messages[2]!.signed, false));
      } catch (err) {
        refused = err;
      }
      expect(refused).toMatchObject({ code: 'TimestamperFailed', fullCode: 'LoggingFailed.TimestamperFailed', message: expect.stringContaining('Cannot time-stamp messages') });
      // Nothing logged before is lost, nothing refused was written.
      expect((await log.status()).pending).toBe(2);
      expect(await Promise.all(logged.map(async (id) => (await log.record(id))?.queryId))).toEqual(['q-down-1', 'q-down-2']);
      expect((await log.records('q-down-3'))).toEqual([]);
    } finally {
      await f.start();
    }
    // The retry succeeds, the backlog is stamped at once, and logging accepts messages again.
    await until('timestamping recovers', async () => (await log.status()).acceptingMessages && (await log.status()).pending === 0);
    expect((await log.status())).toMatchObject({ failingSince: null, lastError: null });
    await until('the recovery is written for diagnostics', () => tsaOutcome()?.status === 'OK');
    expect(Date.parse(readTimestamperStatus(statusFile)!.nextAt)).toBeGreaterThan(Date.parse(tsaOutcome()!.at));
    logged.push(await log.log(toLog(messages[3]!.q, soap(messages[3]!.q), messages[3]!.signed, false)));
    await log.timestampNow();
    for (const q of ['q-down-1', 'q-down-2', 'q-down-4']) {
      const [c] = (await log.exportAsic(q));
      expect(verifyAsic(c!.data, f.conf).queryId).toBe(q);
    }
    await log.close();
  });

  it('refuses messages when no TSA is configured, fails rounds on an outdated configuration, and a restart stamps what the last run left', async () => {
    const file = dbFile();
    const message = soap('q-restart');
    const signed = await f.signer.sign(f.keys.client, { message });
    const none = await MessageLog.open(file, options({ tsas: () => [] }));
    await expect(none.log(toLog('q-restart', message, signed, false))).rejects.toMatchObject({ fullCode: 'LoggingFailed.TimestamperFailed', message: expect.stringContaining('no timestamping services configured') });
    expect((await none.status()).acceptingMessages).toBe(false);
    await none.close();

    // As GlobalConf.checkUpToDate reports a configuration that was not refreshed in time.
    const expired = () => {
      throw new XrdError('OutdatedGlobalConf', { instance: 'LOCAL', expiredAt: new Date().toISOString() });
    };
    const outdated = await MessageLog.open(file, options({ checkGlobalConf: expired }));
    const id = await outdated.log(toLog('q-restart', message, signed, false));
    await expect(outdated.timestampNow()).rejects.toMatchObject({ code: 'OutdatedGlobalConf' });
    expect((await outdated.status())).toMatchObject({ pending: 1, lastError: { code: 'OutdatedGlobalConf' }, failingSince: expect.any(Date) });
    await outdated.close();

    // The next run's first round, soon after opening, stamps the record left behind.
    const next = await MessageLog.open(file, options({ initialDelayMs: 0 }));
    await until('the leftover record is stamped', async () => (await next.status()).pending === 0);
    expect((await next.record(id))!.timestamp).toBeDefined();
    await next.close();
  });

  it('names containers as the reference: query id escaped as Java URLEncoder does, at most 226 characters, record number in base 32', () => {
    expect(asicFileName('a b/c*d~e.f_g-h', false, 31)).toBe('a+b%2Fc*d%7Ee.f_g-h-request-v.asice');
    expect(asicFileName("ü!'()", true, 32)).toBe('%C3%BC%21%27%28%29-response-10.asice');
    const long = asicFileName('x'.repeat(300), true, Number.MAX_SAFE_INTEGER);
    expect(long).toBe(`${'x'.repeat(226)}-response-${Number.MAX_SAFE_INTEGER.toString(32)}.asice`);
    expect(long.length).toBeLessThanOrEqual(255);
  });

  // Attachments in SQLite (64 KiB, below the default threshold); with attachments in files, and on
  // PostgreSQL, in test/storage/messagelog-store.test.ts.
  it('loses no record a process reported committed when it is killed with SIGKILL while logging, and the SQLite file stays whole', async () => {
    const file = dbFile();
    const message = soap('q-crash');
    const attachment = Buffer.alloc(64 * 1024, 7);
    const signed = await f.signer.sign(f.keys.client, { message, attachments: [attachment] });
    const input = join(f.dir, 'crash-input.json');
    writeFileSync(input, JSON.stringify({ message: message.toString('base64'), signature: signed, tsa: f.conf.own.approvedTsas[0]!.url }));
    const reported = await killWriterAfter(400, file, input);
    // The file is whole and every reported record is there with its bytes.
    const db = new Database(file, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    const reader = await MessageLogReader.openExisting(file);
    for (const { id, queryId } of reported) {
      const r = (await reader.record(id));
      expect(r?.queryId, `record ${id}`).toBe(queryId);
      expect(r!.message.equals(message)).toBe(true);
      expect(r!.attachments[0]!.file).toBeUndefined();
      expect(r!.attachments[0]!.bytes().equals(attachment), `record ${id}`).toBe(true);
    }
    await reader.close();
    expect(existsSync(file)).toBe(true);
  });
});
