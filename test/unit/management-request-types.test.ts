/**
 * Every management request type besides authCertReg (pr-mserv §2.1–2.11): built as the reference's
 * ManagementRequestBuilder and ManagementRequestSender write them, read back, verified as its
 * ManagementRequestVerifier does, and checked against the configuration as its central server's
 * request handlers do. The reference's own management-service answer (shared vectors) is read back.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { parseClientId, parseSecurityServerId } from '../../src/protocol/identifiers.ts';
import {
  MANAGEMENT_REQUESTS,
  buildManagementRequest,
  managementRequestResponse,
  parseManagementRequest,
  sendManagementRequest,
  type ManagementRequestBody,
  type MemberSigning,
} from '../../src/protocol/management-request.ts';
import { boundaryOf, parseMultipart } from '../../src/protocol/multipart.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { checkAgainstRegistry, verifyManagementRequest, type CentralServerRegistry } from '../../src/trust/management-request-verifier.ts';
import { certify, codeOf, rsaSigner, servedPki, signingOf, type Party, type ServedPki } from '../support/management-parties.ts';
import { VECTORS } from '../support/vectors.ts';

type Body = Exclude<ManagementRequestBody, { type: 'authCertReg' }>;

let setup: ServedPki;
let pki: LocalPki;
let served: Awaited<ReturnType<LocalPki['serve']>>;
let member2222: Party;
let member3333: Party;

const SS2 = parseSecurityServerId('LOCAL/COM/2222/ss2');
const id = parseClientId;

/** One request of each type, about ss2 (owner 2222; clients 2222/CLIENT and 3333/OTHER), with the party whose key must sign it. */
function requests(): { body: Body; signer?: () => Party }[] {
  return [
    { body: { type: 'clientReg', server: SS2, client: id('LOCAL/COM/2222/NEWSUB'), subsystemName: 'New subsystem' }, signer: () => member2222 },
    { body: { type: 'clientDeletion', server: SS2, client: id('LOCAL/COM/3333/OTHER') } },
    { body: { type: 'ownerChange', server: SS2, client: id('LOCAL/COM/3333') }, signer: () => member3333 },
    { body: { type: 'authCertDeletion', server: SS2, authCert: member2222.cert } },
    { body: { type: 'addressChange', server: SS2, address: 'ss2.example.org' }, signer: () => member2222 },
    { body: { type: 'clientDisable', server: SS2, client: id('LOCAL/COM/3333/OTHER') }, signer: () => member3333 },
    { body: { type: 'clientEnable', server: SS2, client: id('LOCAL/COM/3333/OTHER') }, signer: () => member3333 },
    { body: { type: 'clientRename', server: SS2, client: id('LOCAL/COM/3333/OTHER'), subsystemName: 'Other & Co' }, signer: () => member3333 },
    { body: { type: 'maintenanceModeEnable', server: SS2, message: 'Back at 10:00' }, signer: () => member2222 },
    { body: { type: 'maintenanceModeDisable', server: SS2 }, signer: () => member2222 },
  ];
}

const signing = (party: Party, signer = rsaSigner(party.key)): Promise<MemberSigning> => signingOf(pki, served.ocspUrl, party, signer);

async function build(body: Body, party?: Party, requestId?: string) {
  return buildManagementRequest(body, { managementService: pki.managementServiceId, requestId }, party ? await signing(party) : undefined);
}

const conf = () => loadGlobalConf(pki.globalConfDir);
const noRegistry: CentralServerRegistry = { disabledClients: [], pendingRegistration: false };

beforeAll(async () => {
  setup = await servedPki('xrd-mreq-types-');
  ({ pki, served, member2222, member3333 } = setup);
});

afterAll(() => setup?.close());

describe('pr-mserv §2: each request type', () => {
  it('travels as ManagementRequestSender sends it: signed four-part multipart, or text/xml for the deletions, always through the client proxy', async () => {
    for (const { body, signer } of requests()) {
      const built = await build(body, signer?.());
      expect(MANAGEMENT_REQUESTS[body.type].via, body.type).toBe('clientProxy');
      if (MANAGEMENT_REQUESTS[body.type].signedBy === 'none') {
        expect(built.contentType, body.type).toBe('text/xml; charset=UTF-8');
        expect(built.body.equals(built.soap)).toBe(true);
        continue;
      }
      expect(built.contentType).toMatch(/^multipart\/related; type="application\/octet-stream"; charset=UTF-8; boundary=\S+$/);
      const parts = parseMultipart(built.body, boundaryOf(built.contentType)!);
      expect(parts.map((p) => [p.headers.get('content-type'), p.headers.get('signature-algorithm-id')]), body.type).toEqual([
        ['text/xml; charset=UTF-8', undefined],
        ['application/octet-stream', 'SHA512withRSA'],
        ['application/octet-stream', undefined],
        ['application/octet-stream', undefined],
      ]);
      expect(parts[0]!.body.equals(built.soap)).toBe(true);
      expect(parts[2]!.body.equals(signer!().cert)).toBe(true);
    }
    expect(MANAGEMENT_REQUESTS.authCertReg).toEqual({ via: 'centralServer', signedBy: 'authAndOwner' });
  });

  it('reads back to the same fields, as the server owner to the management service provider with the type as service code', async () => {
    for (const { body, signer } of requests()) {
      const built = await build(body, signer?.());
      const parsed = parseManagementRequest(built.contentType, built.body);
      expect(parsed.body, body.type).toEqual(body);
      expect(parsed.header.client).toEqual(id('LOCAL/COM/2222'));
      expect(parsed.header.service).toMatchObject({ provider: pki.managementServiceId, serviceCode: body.type });
      expect(parsed.signature !== undefined).toBe(signer !== undefined);
    }
  });

  it('writes the body fields in request.xsd order (pr-mserv §2.1 clientReg: server, client, subsystemName)', async () => {
    const built = await build(requests()[0]!.body, member2222);
    expect(built.soap.toString('utf8')).toContain(
      '<SOAP-ENV:Body><xroad:clientReg><xroad:server id:objectType="SERVER"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode><id:serverCode>ss2</id:serverCode></xroad:server>' +
        '<xroad:client id:objectType="SUBSYSTEM"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode><id:subsystemCode>NEWSUB</id:subsystemCode></xroad:client>' +
        '<xroad:subsystemName>New subsystem</xroad:subsystemName></xroad:clientReg></SOAP-ENV:Body>',
    );
    const member = await build({ type: 'ownerChange', server: SS2, client: id('LOCAL/COM/3333') }, member3333);
    expect(member.soap.toString('utf8')).toContain('<xroad:client id:objectType="MEMBER"><id:xRoadInstance>LOCAL</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>3333</id:memberCode></xroad:client></xroad:ownerChange>');
  });

  it('answers with the fields echoed and requestId added (pr-mserv annex A)', async () => {
    const built = await build(requests()[8]!.body, member2222);
    const answer = managementRequestResponse(parseManagementRequest(built.contentType, built.body), '7').toString('utf8');
    expect(answer).toContain('<xroad:maintenanceModeEnableResponse><xroad:server id:objectType="SERVER">');
    expect(answer).toContain('<xroad:message>Back at 10:00</xroad:message><xroad:requestId>7</xroad:requestId></xroad:maintenanceModeEnableResponse>');
  });

  it('refuses a signed type without its signature, and a signature on a deletion, when building', async () => {
    await expect(buildManagementRequest(requests()[0]!.body, { managementService: pki.managementServiceId })).rejects.toMatchObject({ code: 'InvalidRequest' });
    await expect(buildManagementRequest(requests()[1]!.body, { managementService: pki.managementServiceId }, await signing(member2222))).rejects.toMatchObject({ code: 'InvalidRequest' });
  });
});

describe('ManagementRequestSenderTest: the reference management service answer', () => {
  it('reads requestId 413 from the clientReg answer as it comes back through the client proxy (requestHash added)', async () => {
    const answer = readFileSync(join(VECTORS, 'proxy-queries', 'response-with-requestId.answer'));
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/xml; charset=UTF-8' }).end(answer));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      // The request the answer is for: same client, service and id (SoapUtils.checkConsistency).
      const request = await buildManagementRequest(
        { type: 'clientReg', server: parseSecurityServerId('EE/GOV/TS1OWNER/TS1'), client: id('EE/COM/terminaator/III') },
        { managementService: id('EE/GOV/TS1OWNER/mgmt service provider'), requestId: 'd9e5b4e0-052c-42f9-9ed7-b003f97f0f5f' },
        { signer: rsaSigner(member2222.key), cert: member2222.cert, ocsp: Buffer.from([0x30, 0]) },
      );
      await expect(sendManagementRequest(url, request)).resolves.toEqual({ requestId: '413' });
      const another = await buildManagementRequest(
        { type: 'clientReg', server: parseSecurityServerId('EE/GOV/TS1OWNER/TS1'), client: id('EE/COM/terminaator/III') },
        { managementService: id('EE/GOV/TS1OWNER/mgmt service provider'), requestId: 'another-id' },
        { signer: rsaSigner(member2222.key), cert: member2222.cert, ocsp: Buffer.from([0x30, 0]) },
      );
      await expect(sendManagementRequest(url, another)).rejects.toMatchObject({ code: 'InconsistentResponse' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('ManagementRequestVerifier: each type', () => {
  it('accepts each request signed by the right member with a good OCSP response', async () => {
    for (const { body, signer } of requests()) {
      const built = await build(body, signer?.());
      expect(verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date()), body.type).toEqual(body);
    }
  });

  it('pr-mserv §2.1: the signature is over the SOAP part (a changed request: InvalidSignatureValue)', async () => {
    const built = await build(requests()[0]!.body, member2222);
    const body = Buffer.from(built.body.toString('latin1').replace('New subsystem', 'Old subsystem'), 'latin1');
    expect(codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, body), conf(), new Date()))).toMatchObject({ code: 'InvalidSignatureValue', details: { signature: 'client' } });
  });

  it("pr-mserv §2.1: signed by the subsystem's owner member (another member's certificate: InvalidRequest)", async () => {
    const built = await build(requests()[0]!.body, member3333);
    const refused = codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date()));
    expect(refused.code).toBe('InvalidRequest');
    expect(String(refused.details.reason)).toContain("Subject identifier (MEMBER:LOCAL/COM/3333) in certificate does not match client's member identifier (SUBSYSTEM:LOCAL/COM/2222/NEWSUB)");
  });

  it('pr-mserv §2.5: ownerChange is signed by the new owner, not the current one (InvalidRequest)', async () => {
    const built = await build(requests()[2]!.body, member2222);
    expect(codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date())).code).toBe('InvalidRequest');
  });

  it("pr-mserv §2.10: maintenanceModeEnable is signed by the server's owner (another member: InvalidRequest)", async () => {
    const built = await build(requests()[8]!.body, member3333);
    expect(codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date())).code).toBe('InvalidRequest');
  });

  it('pr-mserv §2.1: the OCSP response must certify the signing certificate as good (revoked: CertValidation)', async () => {
    const revoked = certify(pki, 'sign', 'LOCAL/COM/2222');
    pki.revoke(revoked.cert);
    const built = await build(requests()[0]!.body, revoked);
    expect(codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date())).code).toBe('CertValidation');
  });

  it('pr-mserv §2.1: the signature, certificate and OCSP parts are required (text/xml clientReg, a missing OCSP part: InvalidRequest)', async () => {
    const built = await build(requests()[0]!.body, member2222);
    expect(codeOf(() => parseManagementRequest('text/xml; charset=UTF-8', built.soap))).toMatchObject({ code: 'InvalidRequest', details: { reason: 'Client signature is missing' } });
    const boundary = boundaryOf(built.contentType)!;
    const withoutOcsp = built.body.subarray(0, built.body.lastIndexOf(Buffer.from(`--${boundary}\r\n`))).toString('latin1') + `--${boundary}--\r\n`;
    expect(codeOf(() => parseManagementRequest(built.contentType, Buffer.from(withoutOcsp, 'latin1')))).toMatchObject({ code: 'InvalidRequest', details: { reason: 'Client certificate OCSP is missing' } });
  });

  it("pr-mserv §2.2: the sender is the server's owner (clientDeletion from another member: InvalidRequest)", async () => {
    const built = await build(requests()[1]!.body);
    const forged = Buffer.from(built.soap.toString('utf8').replace('<id:memberCode>2222</id:memberCode></xroad:client>', '<id:memberCode>3333</id:memberCode></xroad:client>'));
    expect(codeOf(() => verifyManagementRequest(parseManagementRequest('text/xml; charset=UTF-8', forged), conf(), new Date()))).toMatchObject({ code: 'InvalidRequest', details: { reason: 'Sender does not match server owner.' } });
  });

  it('pr-mserv §2.9: only a subsystem is renamed, to a name (InvalidRequest)', async () => {
    for (const body of [
      { type: 'clientRename', server: SS2, client: id('LOCAL/COM/3333'), subsystemName: 'x' },
      { type: 'clientRename', server: SS2, client: id('LOCAL/COM/3333/OTHER'), subsystemName: ' ' },
    ] as const) {
      const built = await build(body, member3333);
      expect(codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date())).code).toBe('InvalidRequest');
    }
  });

  it('pr-mserv §2.6: addressChange carries a DNS name or IP address (InvalidRequest)', async () => {
    const built = await build({ type: 'addressChange', server: SS2, address: 'not an address' }, member2222);
    expect(codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date()))).toMatchObject({ code: 'InvalidRequest', details: { reason: 'Invalid server address' } });
  });

  it('pr-mserv §2.1: the certificate part is the signing certificate (bytes that are no certificate: CertValidation)', async () => {
    const built = await buildManagementRequest(requests()[4]!.body, { managementService: pki.managementServiceId }, { ...(await signing(member2222)), cert: Buffer.from('not a certificate') });
    expect(codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date())).code).toBe('CertValidation');
  });

  it('refuses a key the certificate is not for, whatever the algorithm claims', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const built = await buildManagementRequest(requests()[4]!.body, { managementService: pki.managementServiceId }, await signing(member2222, rsaSigner(other)));
    expect(codeOf(() => verifyManagementRequest(parseManagementRequest(built.contentType, built.body), conf(), new Date())).code).toBe('InvalidSignatureValue');
  });
});

describe("the central server's request handlers against the configuration", () => {
  const check = (body: ManagementRequestBody, registry = noRegistry) => codeOf(() => checkAgainstRegistry(body, conf(), registry)).code;

  it('ClientRegistrationRequestHandler: not the owner, a known server and member, not registered yet', () => {
    expect(check({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/2222') })).toBe('OwnerNotRegistrableAsClient');
    expect(check({ type: 'clientReg', server: parseSecurityServerId('LOCAL/COM/2222/ss9'), client: id('LOCAL/COM/2222/X') })).toBe('SecurityServerNotFound');
    expect(check({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/9999/X') })).toBe('UnknownMember');
    expect(check({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/3333/OTHER') })).toBe('ClientAlreadyRegistered');
    expect(check({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/3333/ELSE') }, { disabledClients: [id('LOCAL/COM/3333/ELSE')], pendingRegistration: false })).toBe('ClientAlreadyRegistered');
    expect(() => checkAgainstRegistry({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/2222/NEWSUB') }, conf(), noRegistry)).not.toThrow();
  });

  it('OwnerChangeRequestHandler: a member, already a client of the server, not the owner, no server of its own with that code', () => {
    expect(check({ type: 'ownerChange', server: SS2, client: id('LOCAL/COM/3333/OTHER') })).toBe('OwnerMustBeMember');
    expect(check({ type: 'ownerChange', server: SS2, client: id('LOCAL/COM/3333') })).toBe('OwnerMustBeClient');
    expect(check({ type: 'ownerChange', server: parseSecurityServerId('LOCAL/COM/2222/ss9'), client: id('LOCAL/COM/3333') })).toBe('SecurityServerNotFound');
  });

  it('ClientDeletionRequestHandler / AuthenticationCertificateDeletionRequestHandler: registered, or a registration pending to revoke', () => {
    expect(check({ type: 'clientDeletion', server: SS2, client: id('LOCAL/COM/2222/NONE') })).toBe('ClientRegistrationNotFound');
    expect(() => checkAgainstRegistry({ type: 'clientDeletion', server: SS2, client: id('LOCAL/COM/2222/NONE') }, conf(), { disabledClients: [], pendingRegistration: true })).not.toThrow();
    expect(check({ type: 'authCertDeletion', server: SS2, authCert: member2222.cert })).toBe('InvalidAuthCertificate');
  });

  it('ClientDisable/Enable/RenameRequestHandler: a client of the server', () => {
    for (const type of ['clientDisable', 'clientEnable'] as const) expect(check({ type, server: SS2, client: id('LOCAL/COM/1111/PROVIDER') })).toBe('ServerClientNotFound');
    expect(check({ type: 'clientRename', server: SS2, client: id('LOCAL/COM/1111/PROVIDER'), subsystemName: 'x' })).toBe('ServerClientNotFound');
  });

  it('MaintenanceModeEnable/DisableRequestHandler: a known server, not in maintenance mode already / in it', () => {
    expect(check({ type: 'maintenanceModeDisable', server: SS2 })).toBe('ServerNotInMaintenanceMode');
    expect(check({ type: 'maintenanceModeEnable', server: parseSecurityServerId('LOCAL/COM/2222/ss9') })).toBe('SecurityServerNotFound');
  });
});
