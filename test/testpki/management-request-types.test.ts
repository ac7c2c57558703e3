/**
 * The test PKI's management-service stand-in with every request type a security server sends
 * (pr-mserv §2), over HTTP on loopback: authCertReg, clientReg and ownerChange wait as SUBMITTED
 * until `xrd testpki approve` (another process), the others are applied as they arrive, as the
 * reference's central server handles them; after each, the configuration the PKI's configuration
 * source publishes (downloaded and verified as a security server does) shows the change. A refused
 * request gets the stand-in's SOAP fault.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigurationAnchor } from '../../src/globalconf/anchor.ts';
import { downloadGlobalConf } from '../../src/globalconf/download.ts';
import type { GlobalConf } from '../../src/globalconf/global-conf.ts';
import { formatClientId, parseClientId, parseSecurityServerId, type SecurityServerId } from '../../src/protocol/identifiers.ts';
import { buildManagementRequest, sendManagementRequest, type ManagementRequestBody } from '../../src/protocol/management-request.ts';
import { LocalPki, type ManagementRequestView } from '../../src/dev/testpki/local-pki.ts';
import { certify, servedPki, signingOf, type Party, type ServedPki } from '../support/management-parties.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const run = promisify(execFile);

let setup: ServedPki;
let dir: string;
let pki: LocalPki;
let served: Awaited<ReturnType<LocalPki['serve']>>;
let member2222: Party;
let member3333: Party;
let downloads = 0;

const SS2 = parseSecurityServerId('LOCAL/COM/2222/ss2');
const id = parseClientId;

async function send(body: Exclude<ManagementRequestBody, { type: 'authCertReg' }>, signer?: Party): Promise<string> {
  const built = await buildManagementRequest(body, { managementService: pki.managementServiceId }, signer ? await signingOf(pki, served.ocspUrl, signer) : undefined);
  return (await sendManagementRequest(served.managementUrl!, built)).requestId;
}

/** The configuration as a security server gets it next: downloaded from the configuration source and verified. */
const published = (): Promise<GlobalConf> => downloadGlobalConf(loadConfigurationAnchor(pki.anchorFile), join(dir, `downloaded-${++downloads}`));

const clientsOf = (conf: GlobalConf, server: SecurityServerId) => conf.securityServer(server)!.clients.map(formatClientId);
const request = (requestId: string): ManagementRequestView => LocalPki.open(pki.dir).managementRequests().find((r) => r.id === requestId)!;

async function approve(requestId: string): Promise<ManagementRequestView> {
  const { stdout } = await run(process.execPath, [XRD, 'testpki', 'approve', requestId, '--dir', pki.dir, '--json']);
  return JSON.parse(stdout) as ManagementRequestView;
}

beforeAll(async () => {
  setup = await servedPki('xrd-mreq-standin-');
  ({ dir, pki, served, member2222, member3333 } = setup);
});

afterAll(() => setup?.close());

describe('management service stand-in: every request type', () => {
  it('clientReg waits for approval, then the subsystem with its name is a client of the server (configuration version 5 for the name)', async () => {
    const requestId = await send({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/2222/NEWSUB'), subsystemName: 'New subsystem' }, member2222);
    expect(request(requestId)).toMatchObject({ type: 'clientReg', status: 'SUBMITTED', serverId: 'LOCAL/COM/2222/ss2', client: 'LOCAL/COM/2222/NEWSUB', subsystemName: 'New subsystem' });
    expect(clientsOf(await published(), SS2)).not.toContain('LOCAL/COM/2222/NEWSUB');
    // Asking again while it waits: the reference's MR_EXISTS.
    await expect(send({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/2222/NEWSUB') }, member2222)).rejects.toMatchObject({ details: { faultCode: 'Server.ManagementRequestExists' } });

    expect(await approve(requestId)).toMatchObject({ id: requestId, status: 'APPROVED' });
    const conf = await published();
    expect(clientsOf(conf, SS2)).toContain('LOCAL/COM/2222/NEWSUB');
    expect(conf.member(id('LOCAL/COM/2222'))).toMatchObject({ subsystems: ['CLIENT', 'NEWSUB'], subsystemNames: { NEWSUB: 'New subsystem' } });
    expect(conf.own.configurationVersion).toBe(5);
  });

  it('a clientReg for a registered client gets the SOAP fault Server.ClientAlreadyRegistered', async () => {
    await expect(send({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/2222/NEWSUB') }, member2222)).rejects.toMatchObject({
      code: 'ManagementRequestFailed',
      details: { faultCode: 'Server.ClientAlreadyRegistered' },
    });
  });

  it('clientRename, clientDisable and clientEnable are applied at once (APPROVED)', async () => {
    const renamed = await send({ type: 'clientRename', server: SS2, client: id('LOCAL/COM/3333/OTHER'), subsystemName: 'Other & Co' }, member3333);
    expect(request(renamed)).toMatchObject({ type: 'clientRename', status: 'APPROVED' });
    expect((await published()).member(id('LOCAL/COM/3333'))!.subsystemNames).toEqual({ OTHER: 'Other & Co' });

    await send({ type: 'clientDisable', server: SS2, client: id('LOCAL/COM/3333/OTHER') }, member3333);
    expect(clientsOf(await published(), SS2)).not.toContain('LOCAL/COM/3333/OTHER');
    await send({ type: 'clientEnable', server: SS2, client: id('LOCAL/COM/3333/OTHER') }, member3333);
    expect(clientsOf(await published(), SS2)).toContain('LOCAL/COM/3333/OTHER');
  });

  it('addressChange and maintenance mode on and off are applied at once; a second maintenanceModeDisable is refused', async () => {
    await send({ type: 'addressChange', server: SS2, address: '127.0.0.22' }, member2222);
    expect((await published()).securityServer(SS2)!.address).toBe('127.0.0.22');

    await send({ type: 'maintenanceModeEnable', server: SS2, message: 'Back at 10:00' }, member2222);
    expect((await published()).securityServer(SS2)!.maintenanceMode).toEqual({ message: 'Back at 10:00' });
    await send({ type: 'maintenanceModeDisable', server: SS2 }, member2222);
    expect((await published()).securityServer(SS2)!.maintenanceMode).toBeUndefined();
    await expect(send({ type: 'maintenanceModeDisable', server: SS2 }, member2222)).rejects.toMatchObject({ details: { faultCode: 'Server.ServerNotInMaintenanceMode' } });
  });

  it('authCertDeletion (text/xml) removes the certificate hash from the server', async () => {
    const auth = certify(pki, 'auth', 'LOCAL/COM/2222/ss2', 'LOCAL/COM/2222/ss2');
    const hash = createHash('sha256').update(auth.cert).digest();
    expect((await published()).securityServer(SS2)!.authCertHashes).toContainEqual(hash);
    const requestId = await send({ type: 'authCertDeletion', server: SS2, authCert: auth.cert });
    expect(request(requestId)).toMatchObject({ type: 'authCertDeletion', status: 'APPROVED', authCertHash: hash.toString('hex').toUpperCase() });
    expect((await published()).securityServer(SS2)!.authCertHashes).not.toContainEqual(hash);
  });

  it('clientDeletion (text/xml) removes a registered client, and revokes a registration still waiting', async () => {
    await send({ type: 'clientDeletion', server: SS2, client: id('LOCAL/COM/2222/NEWSUB') });
    expect(clientsOf(await published(), SS2)).not.toContain('LOCAL/COM/2222/NEWSUB');

    const waiting = await send({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/2222/LATER') }, member2222);
    await send({ type: 'clientDeletion', server: SS2, client: id('LOCAL/COM/2222/LATER') });
    expect(request(waiting).status).toBe('REVOKED');
    await expect(run(process.execPath, [XRD, 'testpki', 'approve', waiting, '--dir', pki.dir, '--json'])).rejects.toMatchObject({ stdout: expect.stringContaining('ManagementRequestNotPending') });
  });

  it('ownerChange waits for approval; then the new owner owns the server, the old owner is its client, and the owners group follows', async () => {
    // The new owner must first be a client of the server (OwnerChangeRequestHandler).
    await expect(send({ type: 'ownerChange', server: SS2, client: id('LOCAL/COM/3333') }, member3333)).rejects.toMatchObject({ details: { faultCode: 'Server.OwnerMustBeClient' } });
    await approve(await send({ type: 'clientReg', server: SS2, client: id('LOCAL/COM/3333') }, member3333));

    const requestId = await send({ type: 'ownerChange', server: SS2, client: id('LOCAL/COM/3333') }, member3333);
    expect(request(requestId).status).toBe('SUBMITTED');
    await approve(requestId);
    const conf = await published();
    const moved = parseSecurityServerId('LOCAL/COM/3333/ss2');
    expect(conf.securityServer(SS2)).toBeUndefined();
    expect(clientsOf(conf, moved)).toEqual(expect.arrayContaining(['LOCAL/COM/2222', 'LOCAL/COM/2222/CLIENT', 'LOCAL/COM/3333/OTHER']));
    expect(clientsOf(conf, moved)).not.toContain('LOCAL/COM/3333');
    const owners = conf.own.globalGroups.find((g) => g.groupCode === 'security-server-owners')!.members.map(formatClientId);
    expect(owners).toContain('LOCAL/COM/3333');
    expect(owners).not.toContain('LOCAL/COM/2222');
  });

  it('xrd testpki requests lists every type with its status', async () => {
    const { stdout } = await run(process.execPath, [XRD, 'testpki', 'requests', '--dir', pki.dir]);
    for (const type of ['clientReg', 'clientRename', 'clientDisable', 'clientEnable', 'addressChange', 'maintenanceModeEnable', 'maintenanceModeDisable', 'authCertDeletion', 'clientDeletion', 'ownerChange']) expect(stdout).toContain(`\t${type}\t`);
    expect(stdout).toMatch(/\tREVOKED\tclientReg\tLOCAL\/COM\/2222\/ss2\tLOCAL\/COM\/2222\/LATER\t/);
  });
});
