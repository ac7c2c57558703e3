/**
 * Seed 004 through the admin APIs of the local instance only: an intermediary's shared subsystem
 * LOCAL/COM/2222/SHARED on ss2, registered through the management service, with the TLS
 * certificates of two organisations' information systems (each made with the seed's openssl
 * command); ss1 grants it getRandom and the rest-test service. Each organisation calls with its own
 * certificate, naming itself as the represented party — repr:representedParty with the security
 * token extension for SOAP, X-Road-Represented-Party for REST — and both reach the provider intact.
 * A certificate of neither is refused, and an organisation's certificate does not let it call as
 * another organisation's own subsystem.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRandomRequest } from '../../src/dev/localinstance/first-calls.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import type { ReceivedRequest } from '../../src/dev/testservices/test-services.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { adminApi } from '../support/admin-api.ts';
import { eventually } from '../support/eventually.ts';
import { BOOT_TIMEOUT_MS, recordServiceRequests, sharedLocalInstance } from '../support/shared-instance.ts';

const run = promisify(execFile);
let instance: LocalInstance;
const dir = join(process.env.TMPDIR ?? '/tmp', `xrd-shared-${process.pid}`);
const received: ReceivedRequest[] = [];
const SHARED = 'LOCAL:COM:2222:SHARED';

beforeAll(async () => {
  instance = await sharedLocalInstance();
  recordServiceRequests(received);
}, BOOT_TIMEOUT_MS);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The seed's openssl command: a key and a self-signed certificate for an organisation's information system. */
async function organisation(name: string): Promise<{ cert: string; key: string }> {
  const d = join(dir, 'orgs', name);
  mkdirSync(d, { recursive: true });
  await run('openssl', ['req', '-new', '-x509', '-days', '365', '-nodes', '-out', join(d, 'clientcert.pem'), '-keyout', join(d, 'clientprivatekey.pem'), '-subj', `/O=${name}/CN=${name}`]);
  return { cert: join(d, 'clientcert.pem'), key: join(d, 'clientprivatekey.pem') };
}

/** getRandom as SHARED for a represented party, with the security token extension (seed 004's SOAP query). */
function soapFor(party: string, id: string): string {
  const [partyClass, partyCode] = party.split('/');
  return getRandomRequest(instance, '2222/SHARED', id).replace(
    '<xrd:protocolVersion>4.0</xrd:protocolVersion>',
    `<xrd:protocolVersion>4.0</xrd:protocolVersion><repr:representedParty xmlns:repr="http://x-road.eu/xsd/representation.xsd"><repr:partyClass>${partyClass}</repr:partyClass><repr:partyCode>${partyCode}</repr:partyCode></repr:representedParty><extsec:securityToken xmlns:extsec="http://x-road.eu/xsd/security-token.xsd" extsec:tokenType="urn:ietf:params:oauth:token-type:jwt">eyJhbGciOiJIUzI1NiJ9.e30.${id}</extsec:securityToken>`,
  );
}

async function curl(tls: { cert: string; key: string } | undefined, args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['-s', '-k', ...(tls ? ['-E', tls.cert, '--key', tls.key] : []), ...args], { timeout: 60_000 });
  return stdout;
}

describe('a shared subsystem used by two organisations (seed 004)', () => {
  let orgA: { cert: string; key: string };
  let orgB: { cert: string; key: string };

  it('is added and registered on ss2, both organisations’ certificates added, and ss1 grants it a SOAP service and a REST service — all through the admin APIs', async () => {
    const ss2 = adminApi(instance, instance.consumer);
    const ss1 = adminApi(instance, instance.provider);
    expect((await ss2('POST', '/clients', { client: { member_class: 'COM', member_code: '2222', subsystem_code: 'SHARED', connection_type: 'HTTPS' } })).status).toBe(201);
    expect((await ss2('PUT', `/clients/${SHARED}/register`)).status).toBe(204);
    const pki = LocalPki.open(instance.pki.dir);
    pki.approveManagementRequest(pki.managementRequests().find((r) => r.type === 'clientReg' && r.client === 'LOCAL/COM/2222/SHARED')!.id);
    await eventually(async () => ((await ss2('GET', `/clients/${SHARED}`)).json.status === 'REGISTERED' ? true : undefined), 30_000, 'SHARED registered');

    orgA = await organisation('Municipality A');
    orgB = await organisation('Municipality B');
    for (const org of [orgA, orgB]) expect((await ss2('POST', `/clients/${SHARED}/tls-certificates`, readFileSync(org.cert))).status).toBe(201);

    const granted = await ss1('POST', '/services/LOCAL:COM:1111:PROVIDER:getRandom/service-clients', { items: [{ id: SHARED }] });
    expect(granted.status).toBe(200);
    expect(granted.json).toEqual(expect.arrayContaining([expect.objectContaining({ id: SHARED, service_client_type: 'SUBSYSTEM' })]));
    expect((await ss1('POST', '/services/LOCAL:COM:1111:PROVIDER:rest-test/service-clients', { items: [{ id: SHARED }] })).status).toBe(200);
  }, 120_000);

  it('each organisation calls with its own certificate as the represented party: repr:representedParty and the security token reach the provider (SOAP), X-Road-Represented-Party too (REST)', async () => {
    const isDir = join(dir, 'orgs');
    writeFileSync(join(isDir, 'a.xml'), soapFor('MUN/1111111-1', 'shared-a'));
    const answer = await eventually(async () => {
      const body = await curl(orgA, ['-d', `@${join(isDir, 'a.xml')}`, '-H', 'Content-Type: text/xml', `${instance.consumer.httpsUrl}/`]);
      return /<[\w:]*data>\d{1,3}<\/[\w:]*data>/.test(body) ? body : undefined;
    }, 20_000, 'getRandom answered for SHARED');
    expect(answer).toMatch(/<repr:representedParty[^>]*>\s*<repr:partyClass>MUN<\/repr:partyClass>\s*<repr:partyCode>1111111-1<\/repr:partyCode>/);
    expect(answer).toContain('eyJhbGciOiJIUzI1NiJ9.e30.shared-a');

    received.length = 0;
    const rest = await curl(orgB, ['-H', 'X-Road-Client: LOCAL/COM/2222/SHARED', '-H', 'X-Road-Represented-Party: MUN/2222222-2', `${instance.consumer.httpsUrl}/r1/LOCAL/COM/1111/PROVIDER/rest-test/hello?name=B`]);
    expect(JSON.parse(rest)).toEqual({ greeting: 'Hello B! Greetings from adapter server!' });
    const atProvider = received.find((r) => r.url.includes('name=B'));
    expect(atProvider?.headers['x-road-represented-party']).toBe('MUN/2222222-2');
    expect(atProvider?.headers['x-road-client']).toBe('LOCAL/COM/2222/SHARED');
  }, 60_000);

  it("a certificate of neither organisation is refused, and an organisation's certificate does not let it call as another organisation's own subsystem", async () => {
    const stranger = await organisation('Stranger');
    const isDir = join(dir, 'orgs');
    writeFileSync(join(isDir, 's.xml'), soapFor('MUN/1111111-1', 'shared-s'));
    expect(await curl(stranger, ['-d', `@${join(isDir, 's.xml')}`, '-H', 'Content-Type: text/xml', `${instance.consumer.httpsUrl}/`])).toContain('Client (SUBSYSTEM:LOCAL/COM/2222/SHARED) TLS certificate does not match any IS certificates');
    writeFileSync(join(isDir, 'other.xml'), getRandomRequest(instance, '3333/OTHER', 'shared-other'));
    expect(await curl(orgA, ['-d', `@${join(isDir, 'other.xml')}`, '-H', 'Content-Type: text/xml', `${instance.consumer.httpsUrl}/`])).toContain('Client (SUBSYSTEM:LOCAL/COM/3333/OTHER) TLS certificate does not match any IS certificates');
  }, 60_000);
});
