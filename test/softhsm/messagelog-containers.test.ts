/**
 * MESS_09–10 end to end with keys on SoftHSM: messages signed through the signer daemon are
 * logged, the timestamper's timer stamps the whole backlog with one TSA request, `xrd asic export`
 * (a CLI process) writes each request and response as its own container named as the reference
 * names them, and `xrd asic verify` (a CLI process) accepts them with their batch timestamp —
 * among them one whose 2 MiB attachment the log keeps as a file and export streams into the
 * container; a lone record gets the single form, which verifies too.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GlobalConf } from '../../src/globalconf/global-conf.ts';
import { MessageLog, type MessageToLog } from '../../src/messagelog/message-log.ts';
import { MessageLogReader } from '../../src/messagelog/store.ts';
import { formatClientId, parseClientId } from '../../src/protocol/identifiers.ts';
import { restRequestHash, restRequestHeaderPart, restResponseHeaderPart } from '../../src/protocol/rest-message.ts';
import { withRequestHash } from '../../src/protocol/soap-message.ts';
import { verifyAsicFile } from '../../src/signature/asic.ts';
import { BatchSigner, type SignedMessage, type SigningKey } from '../../src/signature/message-signer.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import type { Testbed } from '../../softhsm/testbed.ts';
import { signingKeyOnToken, startSigningBed, type SigningBed } from '../support/signing.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const CLIENT = parseClientId('LOCAL/COM/2222/CLIENT');
const PROVIDER = parseClientId('LOCAL/COM/1111/PROVIDER');

let testbed: Testbed;
let pki: LocalPki;
let bed: SigningBed;
let client: SignerClient;
let conf: GlobalConf;
let signer: BatchSigner;
let keys: { client: SigningKey; provider: SigningKey };

/** A getRandom request, or its response as the provider's server signs it (with `xrd:requestHash`). */
const soap = (id: string, response = false): Buffer => (response ? withRequestHash(envelope(id, true), envelope(id, false)) : envelope(id, false));
const envelope = (id: string, response: boolean) => {
  const ident = (tag: string, type: string, m: typeof CLIENT, service = '') =>
    `<xrd:${tag} id:objectType="${type}"><id:xRoadInstance>${m.instance}</id:xRoadInstance><id:memberClass>${m.memberClass}</id:memberClass><id:memberCode>${m.memberCode}</id:memberCode><id:subsystemCode>${m.subsystem}</id:subsystemCode>${service}</xrd:${tag}>`;
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd">` +
      `<SOAP-ENV:Header>${ident('client', 'SUBSYSTEM', CLIENT)}${ident('service', 'SERVICE', PROVIDER, '<id:serviceCode>getRandom</id:serviceCode>')}<xrd:id>${id}</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header>` +
      `<SOAP-ENV:Body>${response ? '<prod:getRandomResponse xmlns:prod="http://test.x-road.fi/producer"><data>7</data></prod:getRandomResponse>' : '<prod:getRandom xmlns:prod="http://test.x-road.fi/producer"/>'}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n`,
  );
};

const signingKey = (memberId: string): Promise<SigningKey> => signingKeyOnToken(bed, memberId);

const xrd = async (...args: string[]): Promise<{ code: number; json: Record<string, unknown> }> => {
  try {
    return { code: 0, json: JSON.parse((await promisify(execFile)('node', [XRD, ...args, '--json'])).stdout) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, json: JSON.parse(e.stdout) };
  }
};

/** Runs `fn` over the items, two at a time (the machine has two cores). */
async function twoAtATime<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += 2) results.push(...(await Promise.all(items.slice(i, i + 2).map(fn))));
  return results;
}

const toLog = (queryId: string, message: Buffer, signed: SignedMessage, isResponse: boolean, attachments: Buffer[] = []): MessageToLog => ({
  queryId,
  client: CLIENT,
  serviceProvider: PROVIDER,
  serviceCode: 'getRandom',
  isResponse,
  side: isResponse ? 'server' : 'client',
  message,
  attachments,
  signature: signed,
});

beforeAll(async () => {
  bed = await startSigningBed('log');
  ({ testbed, pki, conf, client } = bed);
  signer = new BatchSigner(async (keyId, algorithm, digest) => Buffer.from((await client.call('sign', { keyId, algorithm, digest: digest.toString('base64'), format: 'raw' })).signature, 'base64'));
  keys = { client: await signingKey('LOCAL/COM/2222'), provider: await signingKey('LOCAL/COM/1111') };
});

afterAll(async () => {
  await bed?.close();
});

describe('message log containers with keys on SoftHSM', () => {
  it('the timer stamps the backlog with one timestamp; every exported container verifies (xrd asic export and verify for three exchanges)', async () => {
    const file = join(testbed.dir, 'batch.sqlite');
    // 14 SOAP exchanges (one request with an attachment, above the threshold for a file of its own)
    // and a REST exchange with bodies, signed concurrently.
    const queries = Array.from({ length: 14 }, (_, i) => `batch/${i} ü`);
    const attachment = Buffer.concat([Buffer.from('%PDF-1.4 attached to the first request\n'), randomBytes(2 * 1024 * 1024)]);
    const restQuery = 'rest-1';
    const restRequest = restRequestHeaderPart('POST', '/r1/LOCAL/COM/1111/PROVIDER/rest-test/hello', [['x-road-client', 'LOCAL/COM/2222/CLIENT'], ['x-road-id', restQuery]]);
    const restResponse = restResponseHeaderPart(200, 'OK', [['x-road-client', 'LOCAL/COM/2222/CLIENT'], ['x-road-service', 'LOCAL/COM/1111/PROVIDER/rest-test'], ['x-road-id', restQuery], ['x-road-request-hash', restRequestHash(restRequest, Buffer.from('{"name":"a"}')).toString('base64')]]);
    const [requests, responses, rest] = await Promise.all([
      Promise.all(queries.map((q, i) => signer.sign(keys.client, { message: soap(q), attachments: i === 0 ? [attachment] : [] }))),
      Promise.all(queries.map((q) => signer.sign(keys.provider, { message: soap(q, true) }))),
      Promise.all([signer.sign(keys.client, { message: restRequest, attachments: [Buffer.from('{"name":"a"}')] }), signer.sign(keys.provider, { message: restResponse, attachments: [Buffer.from('{"hello":"a"}')] })]),
    ]);
    // Logged before the first round (the timer's, a second after opening) reads the queue.
    const log = await MessageLog.open(file, { timestampingIntervalSeconds: 1, tsas: () => conf.own.approvedTsas, tsaCerts: () => conf.tsaCertificates(), initialDelayMs: 1000 });
    for (const [i, q] of queries.entries()) {
      await log.log(toLog(q, soap(q), requests[i]!, false, i === 0 ? [attachment] : []));
      await log.log(toLog(q, soap(q, true), responses[i]!, true));
    }
    await log.log({ ...toLog(restQuery, restRequest, rest[0], false, [Buffer.from('{"name":"a"}')]), serviceCode: 'rest-test' });
    await log.log({ ...toLog(restQuery, restResponse, rest[1], true, [Buffer.from('{"hello":"a"}')]), serviceCode: 'rest-test' });
    expect((await log.status()).pending).toBe(30);
    expect((await log.records(queries[0]!))[0]!.attachments[0]!.file).toBeDefined();

    for (let i = 0; i < 300 && (await log.status()).pending > 0; i++) await new Promise((r) => setTimeout(r, 50));
    // One round, one TSA request, no failure: all 30 records share one token.
    expect((await log.status())).toMatchObject({ pending: 0, timestampsObtained: 1, failedRounds: 0, recordsStamped: 30 });
    const stamps = (await Promise.all([...queries, restQuery].map((q) => log.records(q)))).flat().map((r) => r.timestamp);
    expect(new Set(stamps.map((t) => t?.id)).size).toBe(1);
    expect(new Set(stamps.map((t) => t?.hashChain)).size).toBe(30);
    await log.close();

    // Export with the CLI from the file alone, then verify with the CLI, each a process of its own:
    // the request with the attachment file, a plain exchange and the REST exchange. The other
    // containers go through the same code in this process (30 processes are slow on a busy machine).
    const out = join(testbed.dir, 'export');
    const exported = await twoAtATime([queries[0]!, queries[1]!, restQuery], async (q) => {
      const r = await xrd('asic', 'export', q, '--db', file, '--out', out);
      expect(r).toMatchObject({ code: 0, json: { queryId: q, containers: [{ message: 'request', timestamp: { batch: true } }, { message: 'response', timestamp: { batch: true } }] } });
      return r.json.containers as { file: string; message: string; recordId: number }[];
    });
    const files = exported.flat();
    expect(files).toHaveLength(6);
    // Named as the reference names them: escaped query id, request|response, record number in base 32.
    expect(files[0]!.file).toBe(join(out, `batch%2F0+%C3%BC-request-${files[0]!.recordId.toString(32)}.asice`));
    expect(readdirSync(out).sort()).toEqual(files.map((f) => f.file.slice(out.length + 1)).sort());

    const verified = await twoAtATime(files, (f) => xrd('asic', 'verify', f.file, '--conf', pki.globalConfDir));
    verified.forEach((v, i) => {
      const isResponse = files[i]!.message === 'response';
      expect(v, files[i]!.file).toMatchObject({
        code: 0,
        json: { valid: true, message: files[i]!.message, signer: { id: isResponse ? 'LOCAL/COM/1111/PROVIDER' : 'LOCAL/COM/2222/CLIENT' }, timestamp: { batch: true, tsa: expect.stringContaining('LOCAL Test TSA') } },
      });
    });
    // The attachment and the REST bodies are in their containers and verified against the signature.
    expect(verified[0]!.json.verifiedParts).toEqual(['/message.xml', '/attachment1']);
    expect(execFileSync('unzip', ['-p', files[0]!.file, 'attachment1'], { maxBuffer: 4 * 1024 * 1024 }).equals(attachment)).toBe(true);
    expect(verified.slice(-2).map((v) => v.json.verifiedParts)).toEqual([['/message.xml', '/attachment1'], ['/message.xml', '/attachment1']]);

    const reader = await MessageLogReader.openExisting(file);
    try {
      for (const q of queries.slice(2)) {
        const containers = (await reader.exportAsic(q));
        expect(containers.map((c) => c.isResponse)).toEqual([false, true]);
        for (const c of containers) {
          await c.writeTo(join(out, c.name));
          const v = await verifyAsicFile(join(out, c.name), conf);
          expect({ isResponse: v.isResponse, signer: formatClientId(v.signer), batch: v.batchTimestamp !== undefined }).toEqual({ isResponse: c.isResponse, signer: c.isResponse ? 'LOCAL/COM/1111/PROVIDER' : 'LOCAL/COM/2222/CLIENT', batch: true });
        }
      }
    } finally {
      await reader.close();
    }

    // A changed byte in a logged message makes its container fail verification.
    const tampered = join(testbed.dir, 'tampered.asice');
    const { readZip, writeZip } = await import('../../src/platform/zip.ts');
    writeFileSync(tampered, writeZip(readZip(readFileSync(files[2]!.file)).map((e) => (e.name === 'message.xml' ? { ...e, data: Buffer.from(e.data.toString().replace('getRandom', 'getRandoM')) } : e))));
    expect(await xrd('asic', 'verify', tampered, '--conf', pki.globalConfDir)).toMatchObject({ code: 1, json: { valid: false } });
  });

  it('a lone record gets the single form; export refuses it before the stamp and writes it after; both verify, the unstamped one only with --allow-unstamped', async () => {
    const file = join(testbed.dir, 'single.sqlite');
    const log = await MessageLog.open(file, { timestampingIntervalSeconds: 3600, initialDelayMs: 3_600_000, tsas: () => conf.own.approvedTsas, tsaCerts: () => conf.tsaCertificates() });
    const message = soap('lone');
    const id = await log.log(toLog('lone', message, await signer.sign(keys.client, { message }), false));
    const out = join(testbed.dir, 'lone');

    expect(await xrd('asic', 'export', 'nothing-such', '--db', file, '--out', out)).toMatchObject({ code: 1, json: { error: { code: 'NotFound' } } });
    expect(await xrd('asic', 'export', 'lone', '--db', file, '--out', out)).toMatchObject({ code: 1, json: { error: { code: 'MissingTimestamp' } } });
    const unstamped = await xrd('asic', 'export', 'lone', '--db', file, '--out', join(out, 'unstamped'), '--allow-unstamped');
    expect(unstamped).toMatchObject({ code: 0, json: { containers: [{ recordId: id, timestamp: null }] } });
    const early = (unstamped.json.containers as { file: string }[])[0]!.file;
    expect(await xrd('asic', 'verify', early, '--conf', pki.globalConfDir)).toMatchObject({ code: 1, json: { valid: false, error: { code: 'MissingTimestamp' } } });
    expect(await xrd('asic', 'verify', early, '--conf', pki.globalConfDir, '--allow-unstamped')).toMatchObject({ code: 0, json: { valid: true, stamped: false, timestamp: null } });

    expect(await log.timestampNow()).toBe(1);
    await log.close();
    const stamped = await xrd('asic', 'export', 'lone', '--db', file, '--out', out);
    expect(stamped).toMatchObject({ code: 0, json: { containers: [{ file: join(out, `lone-request-${id.toString(32)}.asice`), timestamp: { batch: false } }] } });
    expect(await xrd('asic', 'verify', join(out, `lone-request-${id.toString(32)}.asice`), '--conf', pki.globalConfDir)).toMatchObject({
      code: 0,
      json: { valid: true, hashChain: false, timestamp: { batch: false, tsa: expect.stringContaining('LOCAL Test TSA') } },
    });
  });
});
