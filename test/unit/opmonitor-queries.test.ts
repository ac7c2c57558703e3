/**
 * pr-opmon queries answered from a real SQLite store, driven by the reference's own requests
 * (../shared/xroad-vectors/opmonitor: operationaldata.request, healthdata.request; variants are the
 * same files with one value replaced). Checks what the reference's QueryRequestHandlerTest checks
 * and what its OperationalDataRequestHandler, OperationalDataRecordManager/Query and
 * HealthDataMetrics/HealthDataRequestHandler do: the exact faultStrings, who sees which records and
 * fields, the payload limit and nextRecordsFrom, the gzipped JSON attachment of a multipart/related
 * answer, and the health statistics.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { memoryBody, type Body } from '../../src/platform/spool.ts';
import { OpMonitor, type OpMonitorOptions } from '../../src/opmonitor/op-monitor.ts';
import { HEALTH_DATA, OPERATIONAL_DATA, OP_MONITORING_NS, RECORDS_CID, answerQuery, isOpMonitoringQuery, queryFault, type QueryAccess, type QueryAnswer, type QueryOptions } from '../../src/opmonitor/queries.ts';
import { clientFields, serviceFields, type OpMonitoringRecord } from '../../src/opmonitor/record.ts';
import { parseClientId, parseSecurityServerId, sameSecurityServerId } from '../../src/protocol/identifiers.ts';
import { parseSoapHeader, type SoapHeader } from '../../src/protocol/soap-message.ts';
import { readSoapPackage, soapPackagePieces } from '../../src/protocol/soap-package.ts';
import { baseType } from '../../src/protocol/proxy-message.ts';
import { IDENTIFIERS_NS, SOAP_ENV_NS } from '../../src/protocol/namespaces.ts';
import { child, childElements, parseXml, textOf, type XmlElement } from '../../src/xml/xml-tree.ts';
import { VECTORS } from '../support/vectors.ts';

const OPERATIONAL = readFileSync(join(VECTORS, 'opmonitor', 'operationaldata.request'), 'utf8');
const HEALTH = readFileSync(join(VECTORS, 'opmonitor', 'healthdata.request'), 'utf8');

const SYSTEM1 = parseClientId('XTEE-CI-XM/GOV/00000001/System1');
const SYSTEM2 = parseClientId('XTEE-CI-XM/GOV/00000001/System2');
const OWNER = parseClientId('XTEE-CI-XM/GOV/00000001');
const SERVER = parseSecurityServerId('XTEE-CI-XM/GOV/00000001/00000001_1');
const OTHER = parseClientId('XTEE-CI-XM/COM/12345/Other');
/** The vector's search range. */
const FROM = 1477468193;
const TO = 1477468205;

const ACCESS: QueryAccess = { serverOwner: (s) => (sameSecurityServerId(s, SERVER) ? OWNER : undefined) };

const dir = mkdtempSync(join(tmpdir(), 'xrd-opmon-q-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const open: OpMonitor[] = [];
afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});
async function store(records: OpMonitoringRecord[], options: OpMonitorOptions = {}): Promise<OpMonitor> {
  const m = await OpMonitor.open({ engine: 'sqlite', file: join(dir, `q-${++n}.db`) }, options);
  open.push(m);
  for (const r of records) m.store(r);
  return m;
}

/** A record stored at `second` (monitoringDataTs) of a call from `client` to `provider`. */
function record(second: number, client: typeof SYSTEM1, provider: typeof SYSTEM1, overrides: Partial<OpMonitoringRecord> = {}): OpMonitoringRecord {
  const at = second * 1000 - 500;
  return {
    monitoringDataTs: second,
    securityServerInternalIp: '10.0.0.7',
    securityServerType: 'Producer',
    requestInTs: at,
    requestOutTs: at + 2,
    responseInTs: at + 30,
    responseOutTs: at + 32,
    ...clientFields(client),
    ...serviceFields(provider, 'xroad/GetRandom'),
    messageId: `m-${second}-${client.subsystem}`,
    messageProtocolVersion: '4.0',
    requestSize: 999,
    responseSize: 888,
    succeeded: true,
    serviceType: 'WSDL',
    ...overrides,
  };
}

const header = (xml: string): SoapHeader => parseSoapHeader(xml);

async function ask(xml: string, m: OpMonitor | Promise<OpMonitor>, options: QueryOptions & { access?: QueryAccess; header?: SoapHeader } = {}): Promise<QueryAnswer> {
  return answerQuery(Buffer.from(xml), options.header ?? header(xml), await m, options.access ?? ACCESS, options);
}

/** The records of an answer: its attachment gunzipped and parsed. */
function records(answer: QueryAnswer): Record<string, unknown>[] {
  return (JSON.parse(gunzipSync(answer.attachments[0]!.body).toString('utf8')) as { records: Record<string, unknown>[] }).records;
}

function responseElement(answer: QueryAnswer, name: string): XmlElement {
  const body = child(parseXml(answer.soap), SOAP_ENV_NS, 'Body')!;
  const el = childElements(body)[0]!;
  expect([el.namespace, el.localName]).toEqual([OP_MONITORING_NS, name]);
  return el;
}
const text = (el: XmlElement, name: string) => {
  const c = child(el, OP_MONITORING_NS, name);
  return c && textOf(c);
};

/** The vector with its search range replaced. */
const withRange = (from: string, to: string) => OPERATIONAL.replace(`<om:recordsFrom>${FROM}</om:recordsFrom>`, `<om:recordsFrom>${from}</om:recordsFrom>`).replace(`<om:recordsTo>${TO}</om:recordsTo>`, `<om:recordsTo>${to}</om:recordsTo>`);
/** The vector with an outputSpec after its searchCriteria. */
const withFields = (...fields: string[]) => OPERATIONAL.replace('</om:searchCriteria>', `</om:searchCriteria><om:outputSpec>${fields.map((f) => `<om:outputField>${f}</om:outputField>`).join('')}</om:outputSpec>`);
/** The vector with a searchCriteria client (service provider filter). */
const withProvider = (id: typeof SYSTEM1) =>
  OPERATIONAL.replace(
    '</om:recordsTo>',
    `</om:recordsTo><om:client id:objectType="SUBSYSTEM"><id:xRoadInstance>${id.instance}</id:xRoadInstance><id:memberClass>${id.memberClass}</id:memberClass><id:memberCode>${id.memberCode}</id:memberCode><id:subsystemCode>${id.subsystem}</id:subsystemCode></om:client>`,
  );

async function refusal(run: () => Promise<unknown>): Promise<{ code: string; faultString: string; camel: string; snake: string }> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(XrdError);
    const e = err as XrdError;
    return { code: e.faultCode, faultString: queryFault(e, 'camel').faultString, camel: queryFault(e, 'camel').faultCode, snake: queryFault(e, 'snake').faultCode };
  }
  throw new Error('expected the query to be refused');
}

describe('getSecurityServerOperationalData (pr-opmon, OperationalDataRequestHandler)', () => {
  const mixed = () =>
    store([
      record(FROM, SYSTEM1, OTHER), // System1 as the client
      record(FROM + 1, OTHER, SYSTEM1), // System1 as the service provider
      record(FROM + 2, SYSTEM2, OTHER), // neither
      record(FROM + 3, OTHER, OWNER), // the owner member as the provider: not System1
      record(TO + 1, SYSTEM1, OTHER), // after the range
      record(FROM - 1, SYSTEM1, OTHER), // before it
    ]);

  it('QueryRequestHandlerTest.handleOperationalDataRequest: operationaldata.request gets a multipart/related answer whose records are cid:operational-monitoring-data.json.gz, a gzip attachment of {"records":[…]}', async () => {
    const answer = await ask(OPERATIONAL, mixed());
    const response = responseElement(answer, `${OPERATIONAL_DATA}Response`);
    expect(text(response, 'records')).toBe(`cid:${RECORDS_CID}`);
    expect(text(response, 'recordsCount')).toBe('2');
    expect(text(response, 'nextRecordsFrom')).toBeUndefined();
    // On the wire, as the proxies send it, and read back as a client would.
    const content = { kind: 'soap' as const, soap: answer.soap, contentType: 'text/xml; charset=UTF-8', attachments: answer.attachments.map((a) => ({ ...a, body: memory(a.body) })) };
    const wire = soapPackagePieces(content);
    expect(baseType(wire.contentType)).toBe('multipart/related');
    const back = await readSoapPackage(wire.contentType, Buffer.concat(await Promise.all(wire.pieces.map(bytes))), { maxSoapBytes: 1 << 20 });
    expect(back.attachments).toHaveLength(1);
    const att = back.attachments[0]!;
    expect(baseType(att.contentType)).toBe('application/gzip');
    expect(att.headers.find(([k]) => k.toLowerCase() === 'content-id')?.[1]).toBe(`<${RECORDS_CID}>`);
    const json = JSON.parse(gunzipSync(await bytes(att.body)).toString('utf8')) as { records: unknown[] };
    expect(Object.keys(json)).toEqual(['records']);
    expect(json.records).toHaveLength(2);
    // The answer keeps the request's header: the client proxy checks it against the request.
    expect(parseSoapHeader(answer.soap)).toEqual(header(OPERATIONAL));
  });

  it('a client that is neither the owner nor the monitoring client gets only records where it is the client or the service provider, without securityServerInternalIp', async () => {
    const got = records(await ask(OPERATIONAL, mixed()));
    expect(got.map((r) => [r.monitoringDataTs, r.clientSubsystemCode, r.serviceSubsystemCode])).toEqual([
      [FROM, 'System1', 'Other'],
      [FROM + 1, 'Other', 'System1'],
    ]);
    for (const r of got) expect(r).not.toHaveProperty('securityServerInternalIp');
    // The reference's JSON keys (README "JSON record keys"), nulls left out.
    expect(Object.keys(got[0]!).sort()).toEqual(
      [
        'monitoringDataTs', 'securityServerType', 'requestInTs', 'requestOutTs', 'responseInTs', 'responseOutTs',
        'clientXRoadInstance', 'clientMemberClass', 'clientMemberCode', 'clientSubsystemCode',
        'serviceXRoadInstance', 'serviceMemberClass', 'serviceMemberCode', 'serviceSubsystemCode', 'serviceCode',
        'messageId', 'messageProtocolVersion', 'requestSize', 'responseSize', 'succeeded', 'serviceType',
      ].sort(),
    );
    expect(got[0]).toMatchObject({ succeeded: true, requestSize: 999, securityServerType: 'Producer', serviceType: 'WSDL' });
  });

  it('the owner of the server named in xroad:securityServer sees every record of the range with every field', async () => {
    const m = mixed();
    const got = records(await ask(OPERATIONAL, m, { header: { ...header(OPERATIONAL), client: OWNER } }));
    expect(got.map((r) => r.monitoringDataTs)).toEqual([FROM, FROM + 1, FROM + 2, FROM + 3]);
    expect(got[0]).toHaveProperty('securityServerInternalIp', '10.0.0.7');
    // Without xroad:securityServer the reference cannot tell the owner: it sees its own records only.
    const { securityServer: _, ...unnamed } = { ...header(OPERATIONAL), client: OWNER };
    expect(records(await ask(OPERATIONAL, m, { header: unnamed })).map((r) => r.monitoringDataTs)).toEqual([FROM + 3]);
    // A subsystem of the owner is not the owner.
    expect(records(await ask(OPERATIONAL, m)).length).toBe(2);
  });

  it("the central monitoring client of global configuration's monitoring parameters sees every record", async () => {
    const got = records(await ask(OPERATIONAL, mixed(), { access: { ...ACCESS, monitoringClient: SYSTEM1 } }));
    expect(got.map((r) => r.monitoringDataTs)).toEqual([FROM, FROM + 1, FROM + 2, FROM + 3]);
    expect(got[2]).toHaveProperty('securityServerInternalIp');
  });

  it('searchCriteria client keeps the records of that service provider (exact identifier)', async () => {
    const m = mixed();
    const monitoring = { access: { ...ACCESS, monitoringClient: SYSTEM1 } };
    expect(records(await ask(withProvider(OTHER), m, monitoring)).map((r) => r.monitoringDataTs)).toEqual([FROM, FROM + 2]);
    expect(records(await ask(withProvider(SYSTEM1), m, monitoring)).map((r) => r.monitoringDataTs)).toEqual([FROM + 1]);
    // For a filtered caller, both filters apply.
    expect(records(await ask(withProvider(OTHER), m)).map((r) => r.monitoringDataTs)).toEqual([FROM]);
  });

  it('outputSpec: only the fields asked for; monitoringDataTs only when asked; securityServerInternalIp never for a filtered client', async () => {
    const m = mixed();
    const owner = { header: { ...header(OPERATIONAL), client: OWNER } };
    expect(records(await ask(withFields('requestInTs', 'serviceCode'), m, owner))[0]).toEqual({ requestInTs: FROM * 1000 - 500, serviceCode: 'xroad/GetRandom' });
    expect(records(await ask(withFields('monitoringDataTs', 'succeeded', 'securityServerInternalIp'), m, owner))[0]).toEqual({ monitoringDataTs: FROM, succeeded: true, securityServerInternalIp: '10.0.0.7' });
    expect(records(await ask(withFields('succeeded', 'securityServerInternalIp'), m))[0]).toEqual({ succeeded: true });
  });

  it('recordsTo at or after the available-before time (now − 60 s) ends the search before it and gives nextRecordsFrom', async () => {
    const m = mixed();
    const availableBefore = FROM + 2;
    const answer = await ask(OPERATIONAL, m, { now: () => (availableBefore + 60) * 1000 });
    expect(text(responseElement(answer, `${OPERATIONAL_DATA}Response`), 'nextRecordsFrom')).toBe(String(availableBefore));
    expect(records(answer).map((r) => r.monitoringDataTs)).toEqual([FROM, FROM + 1]);
  });

  it('past the payload limit the last second is given whole and nextRecordsFrom is the next second (OperationalDataRecordManager overflow)', async () => {
    const owner = { header: { ...header(OPERATIONAL), client: OWNER } };
    const m = await store([record(FROM, SYSTEM1, OTHER), record(FROM + 1, SYSTEM1, OTHER), record(FROM + 1, SYSTEM2, OTHER), record(FROM + 1, OTHER, SYSTEM1), record(FROM + 4, SYSTEM1, OTHER)], { maxRecordsInPayload: 2 });
    const answer = await ask(OPERATIONAL, m, owner);
    expect(records(answer).map((r) => r.monitoringDataTs)).toEqual([FROM, FROM + 1, FROM + 1, FROM + 1]);
    expect(text(responseElement(answer, `${OPERATIONAL_DATA}Response`), 'recordsCount')).toBe('4');
    expect(text(responseElement(answer, `${OPERATIONAL_DATA}Response`), 'nextRecordsFrom')).toBe(String(FROM + 2));
    // Nothing left in the range: no nextRecordsFrom.
    const rest = await ask(withRange(String(FROM + 2), String(TO)), m, owner);
    expect(records(rest).map((r) => r.monitoringDataTs)).toEqual([FROM + 4]);
    expect(text(responseElement(rest, `${OPERATIONAL_DATA}Response`), 'nextRecordsFrom')).toBeUndefined();
  });

  describe('validation faults (OperationalDataRequestHandler.checkTimestamps, checkOutputFields): Client.InvalidRequest under Server.ServerProxy.OpMonitor', () => {
    const m = () => store([]);
    it.each([
      ['Records from timestamp is a negative number', withRange('-1', String(TO))],
      ['Records to timestamp is a negative number', withRange(String(FROM), '-5')],
      ['Records to timestamp is earlier than records from timestamp', withRange(String(TO), String(FROM))],
      ['Unknown output field in search criteria: bogusField', withFields('requestInTs', 'bogusField')],
      // An output field that is not a record field either (OperationalDataRecord.id is left out).
      ['Unknown output field in search criteria: id', withFields('id')],
    ])('%s', async (faultString, xml) => {
      const r = await refusal(() => ask(xml, m()));
      expect(r).toEqual({ code: 'Client.InvalidRequest', faultString, camel: 'Server.ServerProxy.OpMonitor.Client.InvalidRequest', snake: 'server.serverproxy.opmonitor.client.invalid_request' });
    });

    it('Records not available from <from> yet, when recordsFrom is at or after the available-before time', async () => {
      const r = await refusal(() => ask(OPERATIONAL, m(), { now: () => (FROM + 60) * 1000 }));
      expect(r.faultString).toBe(`Records not available from ${FROM} yet`);
      expect(r.camel).toBe('Server.ServerProxy.OpMonitor.Client.InvalidRequest');
      // One second earlier it is available.
      await expect(ask(OPERATIONAL, m(), { now: () => (FROM + 61) * 1000 })).resolves.toBeDefined();
    });

    it.each([
      ['no searchCriteria', OPERATIONAL.replace(/<om:searchCriteria>[\s\S]*<\/om:searchCriteria>/, '')],
      ['recordsTo before recordsFrom in the sequence', OPERATIONAL.replace(`<om:recordsFrom>${FROM}</om:recordsFrom>`, '').replace('</om:recordsTo>', `</om:recordsTo><om:recordsFrom>${FROM}</om:recordsFrom>`)],
      ['recordsFrom not an xs:long', withRange('1e9', String(TO))],
      ['recordsFrom beyond the xs:long range', withRange('9223372036854775808', String(TO))],
      ['an element the schema does not have', OPERATIONAL.replace('</om:searchCriteria>', '<om:extra/></om:searchCriteria>')],
    ])('a body op-monitoring.xsd refuses is Client.InvalidRequest too: %s', async (_, xml) => {
      expect((await refusal(() => ask(xml, m()))).code).toBe('Client.InvalidRequest');
    });
  });
});

describe('getSecurityServerHealthData (pr-opmon, HealthDataRequestHandler, HealthDataMetrics)', () => {
  const T = Date.UTC(2026, 0, 15, 12, 0, 0);
  /** The records of QueryRequestHandlerTest.TestMetricsRegistry: System1 GetRandom 10 ok, System2 10 mixed, System1 GetRandom v2 5 ok / 5 failed. */
  async function referenceMetrics(clock: { now: number }): Promise<OpMonitor> {
    const m = await store([], { now: () => clock.now });
    const add = (provider: typeof SYSTEM1, version: string | undefined, succeeded: (i: number) => boolean) => {
      for (let i = 0; i < 10; i++) {
        clock.now += 10;
        m.store(record(Math.floor(clock.now / 1000), OTHER, provider, { ...serviceFields(provider, 'xroad/GetRandom', version), requestInTs: clock.now - 40 - i, responseOutTs: clock.now, serviceType: 'REST', succeeded: succeeded(i) }));
      }
    };
    add(SYSTEM1, undefined, () => true);
    add(SYSTEM2, undefined, (i) => i % 2 === 0);
    add(SYSTEM1, 'v2', (i) => i % 2 === 0);
    // Records of the client role do not count.
    m.store(record(Math.floor(clock.now / 1000), SYSTEM1, SYSTEM1, { securityServerType: 'Client' }));
    return m;
  }

  function events(answer: QueryAnswer) {
    const response = responseElement(answer, `${HEALTH_DATA}Response`);
    const list = childElements(child(response, OP_MONITORING_NS, 'servicesEvents')!);
    return {
      response,
      events: list.map((e) => {
        const service = child(e, OP_MONITORING_NS, 'service')!;
        const stats = child(e, OP_MONITORING_NS, 'lastPeriodStatistics')!;
        return {
          service: childElements(service).map((p) => `${p.namespace === IDENTIFIERS_NS ? '' : '?'}${p.localName}=${textOf(p)}`),
          lastSuccessful: text(e, 'lastSuccessfulRequestTimestamp'),
          lastUnsuccessful: text(e, 'lastUnsuccessfulRequestTimestamp'),
          serviceType: text(e, 'serviceType'),
          stats: Object.fromEntries(childElements(stats).map((s) => [s.localName, textOf(s)])),
        };
      }),
    };
  }

  it('QueryRequestHandlerTest.handleHealthDataRequest: healthdata.request gets a text/xml answer with the startup time, 2 service events (System2 filtered out), first System1 xroad/GetRandom v2 with 5 successful and 5 unsuccessful', async () => {
    const clock = { now: T };
    const m = await referenceMetrics(clock);
    const answer = await ask(HEALTH, m, { now: () => clock.now });
    expect(answer.attachments).toEqual([]);
    const { response, events: got } = events(answer);
    expect(text(response, 'monitoringStartupTimestamp')).toBe(String(T));
    expect(text(response, 'statisticsPeriodSeconds')).toBe('600');
    expect(got).toHaveLength(2);
    expect(got[0]!.service).toEqual(['xRoadInstance=XTEE-CI-XM', 'memberClass=GOV', 'memberCode=00000001', 'subsystemCode=System1', 'serviceCode=xroad/GetRandom', 'serviceVersion=v2']);
    expect(got[0]!.stats).toMatchObject({ successfulRequestCount: '5', unsuccessfulRequestCount: '5' });
    expect(got[1]!.service).toEqual(['xRoadInstance=XTEE-CI-XM', 'memberClass=GOV', 'memberCode=00000001', 'subsystemCode=System1', 'serviceCode=xroad/GetRandom']);
    expect(got[1]!.stats).toMatchObject({ successfulRequestCount: '10', unsuccessfulRequestCount: '0' });
    expect(got[1]!.lastUnsuccessful).toBeUndefined();
    expect(got[0]!.serviceType).toBe('REST');
    // The answer keeps the request's header.
    expect(parseSoapHeader(answer.soap)).toEqual(header(HEALTH));
  });

  it('last request timestamps are the records’ responseOutTs; durations (responseOutTs − requestInTs) and sizes are of the successful requests, with the sample standard deviation', async () => {
    const clock = { now: T };
    const m = await referenceMetrics(clock);
    const [v2, plain] = events(await ask(HEALTH, m)).events;
    // v2: i = 0, 2, 4, 6, 8 succeeded (durations 40, 42, 44, 46, 48); 1, 3, 5, 7, 9 failed; the last one (i = 9) at clock.now.
    expect(Number(v2!.lastUnsuccessful)).toBe(clock.now);
    expect(Number(v2!.lastSuccessful)).toBe(clock.now - 10);
    expect(v2!.stats).toEqual({
      successfulRequestCount: '5',
      unsuccessfulRequestCount: '5',
      requestMinDuration: '40',
      requestAverageDuration: '44.0',
      requestMaxDuration: '48',
      requestDurationStdDev: String(Math.sqrt(10)),
      requestMinSize: '999',
      requestAverageSize: '999.0',
      requestMaxSize: '999',
      requestSizeStdDev: '0.0',
      responseMinSize: '888',
      responseAverageSize: '888.0',
      responseMaxSize: '888',
      responseSizeStdDev: '0.0',
    });
    expect(plain!.stats.requestMaxDuration).toBe('49');
  });

  it('without filterCriteria every service is reported; the counts cover the statistics period only, the last timestamps stay', async () => {
    const clock = { now: T };
    const m = await referenceMetrics(clock);
    const all = HEALTH.replace(/<om:filterCriteria>[\s\S]*<\/om:filterCriteria>/, '');
    expect(events(await ask(all, m)).events.map((e) => e.service.find((p) => p.startsWith('subsystemCode')))).toEqual(['subsystemCode=System1', 'subsystemCode=System2', 'subsystemCode=System1']);
    clock.now += 601_000;
    const later = events(await ask(all, m)).events[0]!;
    expect(later.stats).toEqual({ successfulRequestCount: '0', unsuccessfulRequestCount: '0' });
    expect(later.lastSuccessful).toBeDefined();
  });
});

describe('which requests are queries (OpMonitoringServiceHandlerImpl.canHandle)', () => {
  it('the two service codes, addressed to the server owner member only', async () => {
    expect(isOpMonitoringQuery({ provider: OWNER, serviceCode: OPERATIONAL_DATA }, OWNER)).toBe(true);
    expect(isOpMonitoringQuery({ provider: OWNER, serviceCode: HEALTH_DATA }, OWNER)).toBe(true);
    expect(isOpMonitoringQuery({ provider: SYSTEM1, serviceCode: OPERATIONAL_DATA }, OWNER)).toBe(false);
    expect(isOpMonitoringQuery({ provider: OWNER, serviceCode: 'getRandom' }, OWNER)).toBe(false);
    expect(header(OPERATIONAL).service.provider).toEqual(OWNER);
  });
});

const memory = (b: Buffer): Body => memoryBody(b);
const bytes = async (p: Buffer | Body): Promise<Buffer> => (Buffer.isBuffer(p) ? p : p.bytes());
