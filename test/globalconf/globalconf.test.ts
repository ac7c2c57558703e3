/**
 * Global configuration against the reference's own files (../shared/xroad-vectors), and the cases
 * those files do not show: version 2 hashes, expiry, private parameters, broken files.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigurationAnchor } from '../../src/globalconf/anchor.ts';
import { globalConfReader, loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { writeGlobalConf } from '../../src/globalconf/writer.ts';

const VECTORS = resolve(import.meta.dirname, '../../../shared/xroad-vectors');
const CONF = join(VECTORS, 'globalconf');
const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const DEV_COM_1234 = { instance: 'DEV', memberClass: 'COM', memberCode: '1234' };

/** A writable copy of the shared configuration, to vary one thing in it. */
function copyOfConf(): string {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-conf-'));
  cpSync(CONF, dir, { recursive: true });
  return dir;
}

function replaceInSharedParams(dir: string, from: string | RegExp, to: string): void {
  const file = join(dir, 'DEV', 'shared-params.xml');
  writeFileSync(file, readFileSync(file, 'utf8').replace(from, to));
}

describe('the reference configuration (DEV, version 3)', () => {
  const conf = loadGlobalConf(CONF);

  it('has its approved CA with OCSP responder, its TSA and settings', () => {
    expect(conf.instanceIdentifier).toBe('DEV');
    const { own } = conf;
    expect(own).toMatchObject({ configurationVersion: 3, authCertHashAlgorithm: 'sha256', ocspFreshnessSeconds: 3600 });
    const [ca] = own.approvedCas;
    expect(ca).toMatchObject({ name: 'Test CA', authenticationOnly: false, certificateProfileInfo: expect.stringContaining('FiVRK') });
    // The top CA field is base64 of PEM text in these files; it must come out as DER all the same.
    expect(new X509Certificate(ca!.topCa.cert).subject).toBe('O=Test\nCN=Test CA');
    expect(ca!.topCa.ocsp.map((o) => o.url)).toEqual(['http://testca:8888']);
    expect(new X509Certificate(ca!.topCa.ocsp[0]!.cert!).subject).toBe('O=Test\nCN=Test OCSP');
    expect(own.approvedTsas.map((t) => [t.name, t.url])).toEqual([['Test TSA', 'http://testca:8899']]);
    expect(own.memberClasses).toEqual([{ code: 'COM', description: 'Commercial' }]);
  });

  it('has its members, subsystems, security servers with clients, and global groups', () => {
    expect(conf.member(DEV_COM_1234)).toMatchObject({ name: 'Test member', subsystems: ['MANAGEMENT', 'TestService'] });
    const server = conf.securityServer({ ...DEV_COM_1234, serverCode: 'SS0' })!;
    expect(server.address).toBe('ss0');
    expect(server.authCertHashes.map((h) => h.toString('base64'))).toEqual(['doUtNhEOGtC25LLCQJ9iOE3ZRMXj9EhDAZTcusuEUIs=']);
    expect(server.clients).toEqual([
      { ...DEV_COM_1234, subsystem: 'MANAGEMENT' },
      { ...DEV_COM_1234, subsystem: 'TestService' },
    ]);
    expect(conf.securityServer({ instance: 'DEV', memberClass: 'COM', memberCode: '4321', serverCode: 'SS1' })?.address).toBe('ss1');
    expect(conf.own.globalGroups[0]).toMatchObject({ groupCode: 'security-server-owners', members: [DEV_COM_1234, { ...DEV_COM_1234, memberCode: '4321' }] });
  });

  it('is shown by `xrd conf show --json`', () => {
    const view = JSON.parse(execFileSync('node', [XRD, 'conf', 'show', '--conf', CONF, '--json']).toString());
    const dev = view.instances[0];
    expect(dev.approvedCas[0].topCa.subject).toBe('O=Test, CN=Test CA');
    expect(dev.approvedTsas[0].url).toBe('http://testca:8899');
    expect(dev.members.map((m: { id: string }) => m.id)).toEqual(['DEV/COM/1234', 'DEV/COM/4321']);
    expect(dev.securityServers.map((s: { id: string; address: string }) => [s.id, s.address])).toEqual([
      ['DEV/COM/1234/SS0', 'ss0'],
      ['DEV/COM/4321/SS1', 'ss1'],
    ]);
  });
});

describe('registered authentication certificates', () => {
  const someCert = loadGlobalConf(CONF).own.approvedTsas[0]!.cert;
  const otherCert = loadGlobalConf(CONF).own.approvedCas[0]!.topCa.cert;

  it('version 3 lists SHA-256 hashes', () => {
    const dir = copyOfConf();
    replaceInSharedParams(dir, 'doUtNhEOGtC25LLCQJ9iOE3ZRMXj9EhDAZTcusuEUIs=', createHash('sha256').update(someCert).digest('base64'));
    const conf = loadGlobalConf(dir);
    expect(conf.isRegisteredAuthCert(DEV_COM_1234, 'SS0', someCert)).toBe(true);
    expect(conf.isRegisteredAuthCert(DEV_COM_1234, 'SS0', otherCert)).toBe(false);
    expect(conf.isRegisteredAuthCert(DEV_COM_1234, 'SS1', someCert)).toBe(false);
  });

  it('version 2 lists SHA-1 hashes', () => {
    const dir = copyOfConf();
    writeFileSync(join(dir, 'DEV', 'shared-params.xml.metadata'), JSON.stringify({ configurationVersion: '2' }));
    replaceInSharedParams(dir, 'doUtNhEOGtC25LLCQJ9iOE3ZRMXj9EhDAZTcusuEUIs=', createHash('sha1').update(someCert).digest('base64'));
    const conf = loadGlobalConf(dir);
    expect(conf.own.authCertHashAlgorithm).toBe('sha1');
    expect(conf.isRegisteredAuthCert(DEV_COM_1234, 'SS0', someCert)).toBe(true);
  });
});

describe('expiry and broken files', () => {
  it('an expired configuration is OutdatedGlobalConf; before expiry it is in force', () => {
    const dir = copyOfConf();
    writeFileSync(join(dir, 'DEV', 'shared-params.xml.metadata'), JSON.stringify({ configurationVersion: '3', expirationDate: '2026-01-01T10:00:00Z' }));
    const conf = loadGlobalConf(dir);
    expect(() => conf.checkUpToDate(new Date('2026-01-01T09:59:59Z'))).not.toThrow();
    expect(() => conf.checkUpToDate(new Date('2026-01-01T10:00:00Z'))).toThrowError(
      expect.objectContaining({ faultCode: 'Signer.OutdatedGlobalConf', message: 'Global configuration of DEV expired at 2026-01-01T10:00:00.000Z' }),
    );
  });

  it('malformed XML, a dangling reference or a missing instance is MalformedGlobalConf', () => {
    const broken = copyOfConf();
    replaceInSharedParams(broken, '</ns3:conf>', '');
    expect(() => loadGlobalConf(broken)).toThrowError(expect.objectContaining({ code: 'MalformedGlobalConf' }));
    const dangling = copyOfConf();
    replaceInSharedParams(dangling, '<owner>id0</owner>', '<owner>id99</owner>');
    expect(() => loadGlobalConf(dangling)).toThrowError(expect.objectContaining({ code: 'MalformedGlobalConf', message: expect.stringContaining('unknown id "id99"') }));
    const otherInstance = copyOfConf();
    writeFileSync(join(otherInstance, 'instance-identifier'), 'EE');
    expect(() => loadGlobalConf(otherInstance)).toThrowError(expect.objectContaining({ code: 'MalformedGlobalConf' }));
  });

  it('reads private parameters: management service and timestamping interval', () => {
    const dir = copyOfConf();
    const cert = loadGlobalConf(CONF).own.approvedTsas[0]!.cert.toString('base64');
    writeFileSync(
      join(dir, 'DEV', 'private-params.xml'),
      `<?xml version="1.0" encoding="UTF-8"?>
<tns:conf xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:tns="http://x-road.eu/xsd/xroad.xsd">
  <instanceIdentifier>DEV</instanceIdentifier>
  <managementService>
    <authCertRegServiceAddress>https://cs:4002/managementservice/</authCertRegServiceAddress>
    <authCertRegServiceCert>${cert}</authCertRegServiceCert>
    <managementRequestServiceProviderId id:objectType="SUBSYSTEM">
      <id:xRoadInstance>DEV</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1234</id:memberCode><id:subsystemCode>MANAGEMENT</id:subsystemCode>
    </managementRequestServiceProviderId>
  </managementService>
  <timeStampingIntervalSeconds>120</timeStampingIntervalSeconds>
</tns:conf>`,
    );
    const conf = loadGlobalConf(dir);
    expect(conf.privateParams).toMatchObject({
      timeStampingIntervalSeconds: 120,
      managementService: { authCertRegServiceAddress: 'https://cs:4002/managementservice/', managementRequestServiceProviderId: { ...DEV_COM_1234, subsystem: 'MANAGEMENT' } },
    });
  });
});

describe('configuration anchor', () => {
  it('reads the reference anchor: instance, download URL and both verification certificates', () => {
    const anchor = loadConfigurationAnchor(join(VECTORS, 'configuration-anchor1.xml'));
    expect(anchor.instanceIdentifier).toBe('EE');
    expect(anchor.sources.map((s) => s.downloadUrl)).toEqual(['http://www.bar.com/conf']);
    expect(anchor.sources[0]!.verificationCerts.map((c) => new X509Certificate(c).subject.replaceAll('\n', ', '))).toEqual(['C=AAA, O=GOV, CN=AAA-central', 'C=BBB, O=COM, CN=xroad6']);
  });

  it('refuses a file that is not an anchor', () => {
    expect(() => loadConfigurationAnchor(join(CONF, 'DEV', 'shared-params.xml'))).toThrowError(expect.objectContaining({ code: 'MalformedGlobalConf' }));
  });
});

describe('writing a configuration', () => {
  it('writes what loads back the same, reference configuration included', () => {
    const original = loadGlobalConf(CONF);
    const dir = mkdtempSync(join(tmpdir(), 'xrd-conf-written-'));
    const expiresAt = new Date(Date.now() + 3_600_000);
    writeGlobalConf(dir, original.own, { instanceIdentifier: 'DEV', timeStampingIntervalSeconds: 90, managementService: { authCertRegServiceAddress: 'https://127.0.0.1:4002/', authCertRegServiceCert: original.own.approvedTsas[0]!.cert, managementRequestServiceProviderId: { ...DEV_COM_1234, subsystem: 'MANAGEMENT' } } }, expiresAt);
    const again = loadGlobalConf(dir);
    expect({ ...again.own, expiresAt: undefined }).toEqual({ ...original.own, expiresAt: undefined });
    expect(again.expiresAt?.toISOString()).toBe(expiresAt.toISOString());
    expect(again.privateParams).toMatchObject({ timeStampingIntervalSeconds: 90, managementService: { managementRequestServiceProviderId: { ...DEV_COM_1234, subsystem: 'MANAGEMENT' } } });
  });
});

describe('reading a configuration often', () => {
  it('parses again only after the files changed', () => {
    const dir = copyOfConf();
    const read = globalConfReader(dir);
    const first = read();
    expect(read()).toBe(first);
    const file = join(dir, 'DEV', 'shared-params.xml.metadata');
    writeFileSync(file, JSON.stringify({ configurationVersion: '3', expirationDate: '2030-01-01T00:00:00Z' }));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const second = read();
    expect(second).not.toBe(first);
    expect(second.expiresAt?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
  });
});
