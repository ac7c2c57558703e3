/**
 * The local instance's first calls, as the README shows them and `xrd local start` makes them: seed
 * 003's SOAP getRandom and the REST rest-test/random through both security servers. The end-to-end
 * tests and the proxy benchmarks make the same calls.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchBounded } from '../../platform/http-client.ts';
import { ensureInternalTls } from '../../serverconf/internal-tls.ts';
import type { LocalInstance } from './local-instance.ts';

/** getRandom for `CODE/SUBSYSTEM`, or for a member client `CODE`. */
export function getRandomRequest(i: { pki: { instance: string } }, client = '2222/CLIENT', id = `local-${Date.now()}`): string {
  const [memberCode, subsystem] = client.split('/');
  const inst = i.pki.instance;
  return `<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:prod="http://test.x-road.fi/producer">
  <SOAP-ENV:Header>
    <xrd:client id:objectType="${subsystem ? 'SUBSYSTEM' : 'MEMBER'}"><id:xRoadInstance>${inst}</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>${memberCode}</id:memberCode>${subsystem ? `<id:subsystemCode>${subsystem}</id:subsystemCode>` : ''}</xrd:client>
    <xrd:service id:objectType="SERVICE"><id:xRoadInstance>${inst}</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode><id:subsystemCode>PROVIDER</id:subsystemCode><id:serviceCode>getRandom</id:serviceCode></xrd:service>
    <xrd:userId>local-user</xrd:userId>
    <xrd:id>${id}</xrd:id>
    <xrd:protocolVersion>4.0</xrd:protocolVersion>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body><prod:getRandom/></SOAP-ENV:Body>
</SOAP-ENV:Envelope>
`;
}

/** Most time and bytes of each first call: both servers sign, verify and log it, a first one takes seconds. */
const FIRST_CALL_DEADLINE_MS = 60_000;
const FIRST_CALL_MAX_BYTES = 1024 * 1024;

/**
 * The README's first calls, as the client's information system makes them: HTTPS with its
 * certificate, to ss2's client proxy, whose internal certificate is the one accepted.
 * @throws NetworkError, ResponseTimeout, ResponseTooLarge
 */
export async function firstCalls(i: LocalInstance, soapFile: string): Promise<{ name: string; status: number; body: string }[]> {
  const clientTls = { cert: readFileSync(i.clientIs.certFile), key: readFileSync(i.clientIs.keyFile) };
  const pinnedCert = new X509Certificate(ensureInternalTls(join(i.consumer.proxyDataDir, 'internal-tls')).certPem).raw;
  const call = async (path: string, method: 'GET' | 'POST', headers: Record<string, string>, body?: Buffer) => {
    const answer = await fetchBounded(`${i.consumer.httpsUrl}${path}`, { method, headers, body, clientTls, pinnedCert, deadlineMs: FIRST_CALL_DEADLINE_MS, maxBytes: FIRST_CALL_MAX_BYTES });
    return { status: answer.status, body: answer.body.toString() };
  };
  const soap = await call('/', 'POST', { 'content-type': 'text/xml' }, readFileSync(soapFile));
  const rest = await call(`/r1/${i.pki.instance}/COM/1111/PROVIDER/rest-test/random`, 'GET', { 'x-road-client': i.clientIs.client });
  return [
    { name: 'SOAP getRandom', ...soap },
    { name: 'REST rest-test/random', ...rest },
  ];
}
