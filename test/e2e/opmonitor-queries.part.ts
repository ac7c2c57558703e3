/**
 * pr-opmon monitoring queries end to end (issue 14 item 6): ss2's client LOCAL/COM/2222/CLIENT asks
 * ss1's owner (LOCAL/COM/1111, `xroad:securityServer` naming ss1) for its operational and health data
 * through ss2's client proxy, as a monitoring client would; ss1's server proxy answers from its
 * store (the reference's OpMonitoringServiceHandlerImpl and monitoring daemon). The requests are the
 * shared vectors' (../shared/xroad-vectors/opmonitor) with this instance's identifiers put in.
 * ss1 gives records at once (`--opmonitor-records-offset 0`), so the test need not wait the
 * reference's 60 s.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { getRandomRequest } from '../../src/dev/localinstance/first-calls.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { parseSecurityServerId } from '../../src/protocol/identifiers.ts';
import { baseType } from '../../src/protocol/proxy-message.ts';
import { readSoapPackage } from '../../src/protocol/soap-package.ts';
import { eventually } from '../support/eventually.ts';
import { BOOT_TIMEOUT_MS, sharedLocalInstance } from '../support/shared-instance.ts';
import { VECTORS } from '../support/vectors.ts';

let instance: LocalInstance;

/** Needs `--opmonitor-records-offset 0` from the file that boots the instance. */
beforeAll(async () => {
  instance = await sharedLocalInstance();
}, BOOT_TIMEOUT_MS);

/** A shared vector with the vector's identities replaced by this instance's: client 2222/CLIENT, ss1 and its owner. */
function vector(name: string, id: string): string {
  const ss1 = parseSecurityServerId(instance.provider.serverId);
  const xml = readFileSync(join(VECTORS, 'opmonitor', name), 'utf8');
  return xml
    .replace(/XTEE-CI-XM/g, ss1.instance)
    .replace(/<xroad:client([\s\S]*?)<id:memberClass>GOV<\/id:memberClass>([\s\S]*?)<id:memberCode>00000001<\/id:memberCode>([\s\S]*?)System1/, '<xroad:client$1<id:memberClass>COM</id:memberClass>$2<id:memberCode>2222</id:memberCode>$3CLIENT')
    .replace(/<id:memberClass>GOV<\/id:memberClass>/g, `<id:memberClass>${ss1.memberClass}</id:memberClass>`)
    .replace(/<id:memberCode>00000001<\/id:memberCode>/g, `<id:memberCode>${ss1.memberCode}</id:memberCode>`)
    .replace('<id:serverCode>00000001_1</id:serverCode>', `<id:serverCode>${ss1.serverCode}</id:serverCode>`)
    .replace(/<id:subsystemCode>System1<\/id:subsystemCode>/g, '<id:subsystemCode>PROVIDER</id:subsystemCode>')
    .replace('DBOxxqv2csKysKHNwRCrU4QV0EWkqSUY', id);
}

/** A SOAP call to ss2's client proxy as 2222/CLIENT's information system. */
function post(body: string): Promise<{ contentType: string; body: Buffer }> {
  const base = new URL(instance.consumer.httpsUrl);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: base.hostname, port: base.port, path: '/', method: 'POST', headers: { 'content-type': 'text/xml; charset=UTF-8' }, rejectUnauthorized: false, cert: readFileSync(instance.clientIs.certFile), key: readFileSync(instance.clientIs.keyFile) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ contentType: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

const element = (xml: string, name: string) => new RegExp(`<(?:\\w+:)?${name}>([^<]*)</(?:\\w+:)?${name}>`).exec(xml)?.[1];

describe('pr-opmon queries through both security servers', () => {
  it('getSecurityServerOperationalData (operationaldata.request): a multipart/related answer, records in the gzip JSON attachment, only the caller’s own for a client that is not the owner', async () => {
    const called = `opmon-e2e-${Date.now()}`;
    expect(element((await post(getRandomRequest(instance, '2222/CLIENT', called))).body.toString(), 'faultcode')).toBeUndefined();
    const found = await eventually(
      async () => {
        const request = vector('operationaldata.request', `opmon-q-${Date.now()}`).replace(/<om:recordsFrom>\d+<\/om:recordsFrom>/, '<om:recordsFrom>0</om:recordsFrom>').replace(/<om:recordsTo>\d+<\/om:recordsTo>/, `<om:recordsTo>${Math.floor(Date.now() / 1000) + 3600}</om:recordsTo>`);
        const answer = await post(request);
        expect(baseType(answer.contentType)).toBe('multipart/related');
        const pkg = await readSoapPackage(answer.contentType, answer.body, { maxSoapBytes: 1 << 20 });
        const soap = pkg.soap.toString();
        expect(element(soap, 'records')).toBe('cid:operational-monitoring-data.json.gz');
        // The records reach to the second before now: the answer says where to continue.
        expect(Number(element(soap, 'nextRecordsFrom'))).toBeGreaterThan(0);
        expect(pkg.attachments).toHaveLength(1);
        const att = pkg.attachments[0]!;
        expect(baseType(att.contentType)).toBe('application/gzip');
        expect(att.headers.find(([k]) => k.toLowerCase() === 'content-id')?.[1]).toBe('<operational-monitoring-data.json.gz>');
        const { records } = JSON.parse(gunzipSync(att.body.bytes()).toString('utf8')) as { records: Record<string, unknown>[] };
        expect(Number(element(soap, 'recordsCount'))).toBe(records.length);
        const ours = records.find((r) => r.messageId === called);
        return ours ? { records } : undefined;
      },
      30_000,
      "ss1's record of the getRandom call",
    );
    expect(found.records.find((r) => r.messageId === called)).toMatchObject({ securityServerType: 'Producer', clientMemberCode: '2222', clientSubsystemCode: 'CLIENT', serviceSubsystemCode: 'PROVIDER', serviceCode: 'getRandom', succeeded: true });
    // Not the owner, not the monitoring client: only records where 2222/CLIENT is client or provider, no internal IP.
    for (const r of found.records) {
      expect(r.clientMemberCode === '2222' && r.clientSubsystemCode === 'CLIENT').toBe(true);
      expect(r).not.toHaveProperty('securityServerInternalIp');
    }
  }, 90_000);

  it('getSecurityServerHealthData (healthdata.request, filter client PROVIDER): text/xml with the startup time and PROVIDER getRandom’s successful requests', async () => {
    expect(element((await post(getRandomRequest(instance, '2222/CLIENT', `opmon-h-${Date.now()}`))).body.toString(), 'faultcode')).toBeUndefined();
    const answer = await post(vector('healthdata.request', `opmon-h-q-${Date.now()}`));
    expect(baseType(answer.contentType)).toBe('text/xml');
    const xml = answer.body.toString();
    expect(element(xml, 'faultcode')).toBeUndefined();
    expect(Number(element(xml, 'monitoringStartupTimestamp'))).toBeGreaterThan(0);
    expect(element(xml, 'statisticsPeriodSeconds')).toBe('600');
    const events = xml.split(/<\/?(?:\w+:)?serviceEvents>/).filter((e) => e.includes('lastPeriodStatistics'));
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(element(e, 'subsystemCode')).toBe('PROVIDER');
    const getRandom = events.find((e) => element(e, 'serviceCode') === 'getRandom')!;
    expect(Number(element(getRandom, 'successfulRequestCount'))).toBeGreaterThanOrEqual(1);
    expect(Number(element(getRandom, 'lastSuccessfulRequestTimestamp'))).toBeGreaterThan(0);
  }, 60_000);

  it('a refused query is the monitoring daemon’s fault, passed on: Server.ServerProxy.OpMonitor.Client.InvalidRequest "Records from timestamp is a negative number"', async () => {
    const request = vector('operationaldata.request', `opmon-f-${Date.now()}`).replace(/<om:recordsFrom>\d+<\/om:recordsFrom>/, '<om:recordsFrom>-1</om:recordsFrom>');
    const xml = (await post(request)).body.toString();
    expect(element(xml, 'faultcode')).toBe('Server.ServerProxy.OpMonitor.Client.InvalidRequest');
    expect(element(xml, 'faultstring')).toBe('Records from timestamp is a negative number');
  }, 60_000);
});
