/**
 * Global configuration versions 2–6 against the reference's own directories
 * (../shared/xroad-vectors/globalconf-versions), each test named after the reference test it
 * follows: VersionedConfigurationDirectoryTest, GlobalConfTest (the query table for
 * globalconf_good_v2), GlobalConfVer3/4/6Test, FSGlobalConfValidatorTest,
 * SharedParametersMarshallRoundTripTest, ConfigurationAnchorTest and the optional parts' schema tests.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigurationAnchor } from '../../src/globalconf/anchor.ts';
import { globalConfReadiness, readConfigurationDirectory } from '../../src/globalconf/directory.ts';
import { parseMonitoringParameters, parseOcspFetchInterval, parseOcspNextUpdate } from '../../src/globalconf/extensions.ts';
import { loadGlobalConf, type OcspPrioritization } from '../../src/globalconf/global-conf.ts';
import { parseSharedParameters } from '../../src/globalconf/parameters.ts';
import { sharedParametersXml } from '../../src/globalconf/writer.ts';
import { formatClientId, type ClientId } from '../../src/protocol/identifiers.ts';
import { VECTORS } from '../support/vectors.ts';

const VERSIONS = join(VECTORS, 'globalconf-versions');
const dirOf = (name: string) => join(VERSIONS, name);
const pem = (file: string) => Buffer.from(readFileSync(join(VECTORS, 'test-certs', file), 'utf8').replace(/-----[^-]+-----|\s+/g, ''), 'base64');
const PRODUCER = pem('producer.pem');
const CONSUMER = pem('consumer.pem');
const ROOT_CA = pem('root-ca.pem');
const ee = (memberCode: string, subsystem?: string): ClientId => ({ instance: 'EE', memberClass: 'BUSINESS', memberCode, ...(subsystem ? { subsystem } : {}) });
const server = (memberCode: string, serverCode: string) => ({ instance: 'EE', memberClass: 'BUSINESS', memberCode, serverCode });
const serverIdOf = (s: { owner: ClientId; serverCode: string }) => `${formatClientId(s.owner)}/${s.serverCode}`;

describe('VersionedConfigurationDirectoryTest', () => {
  it('readDirectoryV2: own EE; foo has private and shared parameters, bar shared only, xxx nothing', () => {
    const dir = readConfigurationDirectory(dirOf('globalconf_good_v2'));
    expect(dir.instanceIdentifier).toBe('EE');
    expect(dir.private.get('foo')?.instanceIdentifier).toBe('foo');
    expect(dir.shared.get('foo')?.instanceIdentifier).toBe('foo');
    expect(dir.private.has('bar')).toBe(false);
    expect(dir.shared.has('bar')).toBe(true);
    expect(dir.shared.has('xxx')).toBe(false);
    expect(dir.skipped).toEqual([]);
  });

  it('readDirectoryContainingV3AndV2Configurations: the content names foo_v2, not the metadata ("v2")', () => {
    const dir = readConfigurationDirectory(dirOf('globalconf_good_v3'));
    expect([...dir.shared.keys()].sort()).toEqual(['EE', 'bar', 'foo_v2']);
    expect(dir.private.get('foo_v2')?.instanceIdentifier).toBe('foo_v2');
    expect(dir.private.has('v2')).toBe(false);
    expect(dir.shared.get('foo_v2')?.configurationVersion).toBe(2);
    expect(dir.shared.get('EE')?.configurationVersion).toBe(3);
    expect(dir.private.has('bar')).toBe(false);
  });

  it.each([
    ['globalconf_good_v4', { EE: 4, bar: 3, baz_v3: 3, foo_v2: 2 }],
    ['globalconf_good_v5', { EE: 5, bar: 3, baz_v3: 3, foo_v2: 2, qux_v4: 4 }],
    ['globalconf_good_v6', { EE: 6, bar: 3, baz_v3: 3, foo_v2: 2, qux_v4: 4, quux_v5: 5 }],
  ])('readDirectoryContaining… %s: every instance loads in its own version', (name, versions) => {
    const dir = readConfigurationDirectory(dirOf(name));
    expect(dir.skipped).toEqual([]);
    expect(Object.fromEntries([...dir.shared].map(([i, p]) => [i, p.configurationVersion]))).toEqual(versions);
    for (const instance of Object.keys(versions).filter((i) => i !== 'bar')) expect(dir.private.get(instance)?.instanceIdentifier).toBe(instance);
    expect(dir.private.has('bar')).toBe(false);
  });

  it('readMalformedDirectory: unreadable parts are skipped, not fatal', () => {
    const dir = readConfigurationDirectory(dirOf('globalconf_malformed'));
    expect(dir.instanceIdentifier).toBe('EE');
    expect(dir.shared.has('foo')).toBe(false);
    expect(dir.private.has('foo')).toBe(false);
    expect(dir.skipped.map((s) => [s.file.slice(dirOf('globalconf_malformed').length), s.error.code])).toEqual([
      ['/foo/shared-params.xml', 'MalformedGlobalConf'],
      ['/foo/private-params.xml', 'MalformedGlobalConf'],
    ]);
  });

  it('readEmptyDirectory: nothing for foo', () => {
    const dir = readConfigurationDirectory(dirOf('globalconf_empty'));
    expect(dir.shared.size + dir.private.size).toBe(0);
  });

  it('a directory without our own shared parameters does not load as a configuration', () => {
    expect(() => loadGlobalConf(dirOf('globalconf_malformed'))).toThrowError(expect.objectContaining({ code: 'MalformedGlobalConf', message: expect.stringContaining('missing for our own instance') }));
  });
});

describe('FSGlobalConfValidatorTest', () => {
  it.each([
    ['globalconf_good_v4', 'READY_TO_INIT'],
    ['random_path', 'FAILURE_CONFIGURATION_ERROR'],
    ['globalconf_good_v4/instance-identifier', 'FAILURE_CONFIGURATION_ERROR'],
    ['globalconf_missing_identifier', 'FAILURE_MISSING_INSTANCE_IDENTIFIER'],
    ['globalconf_empty', 'FAILURE_MALFORMED'],
  ])('%s → %s', (name, state) => {
    expect(globalConfReadiness(dirOf(name))).toBe(state);
  });
});

describe('GlobalConfTest (globalconf_good_v2)', () => {
  const conf = loadGlobalConf(dirOf('globalconf_good_v2'));

  it('isValidConfiguration, getInstanceIdentifiers', () => {
    expect(() => conf.checkUpToDate(new Date())).not.toThrow();
    expect(conf.instanceIdentifiers().sort()).toEqual(['EE', 'bar', 'foo']);
  });

  it('getMembers: members and subsystems of EE in order', () => {
    expect(conf.members('EE')).toEqual([ee('producer'), ee('consumer'), ee('foo'), ee('foo', 'foosubsystem')]);
  });

  it('getSecurityServers of EE in order; getServerOwner', () => {
    expect(conf.securityServers('EE').map(serverIdOf)).toEqual(['EE/BUSINESS/producer/producerServerCode', 'EE/BUSINESS/consumer/consumerServerCode', 'EE/BUSINESS/foo/fooServerCode', 'EE/BUSINESS/foo/FooBarServerCode']);
    expect(conf.securityServer(server('producer', 'producerServerCode'))?.owner).toEqual(ee('producer'));
    expect(conf.securityServer(server('producer', 'unknown'))).toBeUndefined();
  });

  it('getProviderAddress: the servers a client is registered at, owned ones included', () => {
    expect(conf.providerAddresses(ee('consumer')).sort()).toEqual(['127.0.0.1', 'https://www.foo.com/bar']);
    // fooServerCode, where producer is a client, has no address.
    expect(conf.providerAddresses(ee('producer'))).toEqual(['127.0.0.1']);
  });

  it('getKnownAddresses', () => {
    expect(conf.knownAddresses().sort()).toEqual(['127.0.0.1', 'https://foo.bar.baz', 'https://www.foo.com/bar']);
  });

  it('getServerId: version 2 lists SHA-1 of the DER, so the producer certificate is fooServerCode', () => {
    expect(conf.own.authCertHashAlgorithm).toBe('sha1');
    expect(createHash('sha1').update(PRODUCER).digest('base64')).toBe('GLx/0DiFv3V1I1Nbd04r3z0oUno=');
    expect(conf.serverIdForAuthCert(PRODUCER)).toEqual(server('foo', 'fooServerCode'));
  });

  it('authCertMatchesMember', () => {
    expect(conf.authCertMatchesMember(PRODUCER, ee('producer'))).toBe(true);
    expect(conf.authCertMatchesMember(CONSUMER, ee('consumer'))).toBe(true);
    expect(conf.authCertMatchesMember(CONSUMER, ee('producer'))).toBe(false);
    expect(conf.authCertMatchesMember(PRODUCER, ee('consumer'))).toBe(false);
  });

  it('isSecurityServerClient: the owner counts as a client; a member is not its subsystems', () => {
    const producerServer = server('producer', 'producerServerCode');
    expect(conf.isSecurityServerClient(ee('consumer'), producerServer)).toBe(true);
    expect(conf.isSecurityServerClient(ee('producer'), producerServer)).toBe(true);
    expect(conf.isSecurityServerClient(ee('foo', 'foosubsystem'), producerServer)).toBe(true);
    expect(conf.isSecurityServerClient({ ...ee('foo', 'foosubsystem'), memberClass: 'xx' }, producerServer)).toBe(false);
    for (const client of [ee('consumer'), ee('producer'), ee('foo', 'foosubsystem')]) expect(conf.isSecurityServerClient(client, server('producer', 'foo'))).toBe(false);
    expect(conf.isSecurityServerClient(ee('foo', 'foosubsystem'), server('foo', 'FooBarServerCode'))).toBe(false);
  });

  it("getClientSecurityServers: foo's servers", () => {
    expect(conf.securityServersOf(ee('foo')).map(serverIdOf).sort()).toEqual(['EE/BUSINESS/foo/FooBarServerCode', 'EE/BUSINESS/foo/fooServerCode', 'EE/BUSINESS/producer/producerServerCode']);
  });

  it('isSubjectInGlobalGroup, getGlobalGroupDescription', () => {
    expect(conf.isSubjectInGlobalGroup(ee('member1', 'subsys'), 'EE', 'Test group')).toBe(true);
    expect(conf.isSubjectInGlobalGroup(ee('member2'), 'EE', 'Test group')).toBe(true);
    expect(conf.isSubjectInGlobalGroup(ee('member2', 'subsys'), 'EE', 'Test group')).toBe(false);
    expect(conf.isSubjectInGlobalGroup(ee('member2'), 'non-existent-instance', 'non-existent-group')).toBe(false);
    expect(conf.globalGroup('EE', 'Test group')?.description).toBe('Description');
    expect(conf.globalGroup('EE', 'foo')).toBeUndefined();
  });

  it('getApprovedCAs, getCaCert, getCertChain for user_3', () => {
    expect(conf.sharedOf('EE')?.approvedCas).toHaveLength(5);
    expect(conf.caCertFor(PRODUCER, 'EE')?.equals(ROOT_CA)).toBe(true);
    const user3 = pem('test_chain/user_3.pem');
    const chain = conf.certChain('EE', user3)!;
    expect(chain.map((c) => c.toString('base64'))).toEqual(['user_3', 'ca_3', 'ca_2', 'ca_1', 'root_ca'].map((n) => pem(`test_chain/${n}.pem`).toString('base64')));
    expect(conf.certChain('EE', ROOT_CA)).toBeUndefined();
  });

  it('getAllOcspResponderCertificates, getOcspResponderAddresses, isOcspResponderCert', () => {
    expect(conf.ocspResponderCertificates()).toHaveLength(12);
    const ca = conf.caCertFor(CONSUMER)!;
    expect(conf.ocspResponderUrls(ca)).toEqual(expect.arrayContaining(['http://127.0.0.1:8082/ocsp', 'http://www.example.net/ocsp']));
    expect(conf.isOcspResponderCert(ROOT_CA, ROOT_CA)).toBe(false);
    expect(conf.isOcspResponderCert(ROOT_CA, conf.ocspResponders(ROOT_CA)[0]!.cert!)).toBe(true);
  });

  it('getTspCerts, getVerificationCaCerts', () => {
    expect(conf.tsaCertificates()).toHaveLength(3);
    expect(conf.verificationCaCerts()).toHaveLength(4);
  });

  it('getGlobalSettings: management service and OCSP freshness per instance', () => {
    expect(conf.privateParams?.managementService).toMatchObject({ authCertRegServiceAddress: 'http://mgmt.com:1234', managementRequestServiceProviderId: ee('servicemember2') });
    expect(conf.privateParams?.managementService?.authCertRegServiceCert).toBeUndefined();
    expect(conf.privateParams?.timeStampingIntervalSeconds).toBe(123);
    expect(['EE', 'bar', 'foo'].map((i) => conf.sharedOf(i)?.ocspFreshnessSeconds)).toEqual([42, 420, 4200]);
  });

  it("private parameters name bar's anchor (a federated instance)", () => {
    expect(conf.privateParams?.configurationAnchors).toEqual([{ instanceIdentifier: 'bar', generatedAt: undefined, sources: [{ downloadUrl: 'http://www.bar.com/conf', verificationCerts: [Buffer.from('bar\n')] }] }]);
  });

  it('a federated instance whose parameters expired is left out of the lookups; our own never is', () => {
    const copy = mkdtempSync(join(tmpdir(), 'xrd-gconf-v2-'));
    cpSync(dirOf('globalconf_good_v2'), copy, { recursive: true });
    writeFileSync(join(copy, 'bar', 'shared-params.xml.metadata'), JSON.stringify({ expirationDate: '2020-01-01T00:00:00Z' }));
    const later = loadGlobalConf(copy, { clock: () => new Date('2021-01-01T00:00:00Z') });
    expect(later.instanceIdentifiers().sort()).toEqual(['EE', 'foo']);
    expect(later.securityServers('bar')).toEqual([]);
    expect(later.tsaCertificates()).toHaveLength(2);
    const earlier = loadGlobalConf(copy, { clock: () => new Date('2019-01-01T00:00:00Z') });
    expect(earlier.securityServers('bar')).toHaveLength(4);
  });
});

describe('GlobalConfVer3Test, GlobalConfVer4Test', () => {
  it.each(['globalconf_good_v3', 'globalconf_good_v4'])('isSubjectInGlobalGroup (%s)', (name) => {
    const conf = loadGlobalConf(dirOf(name));
    expect(conf.isSubjectInGlobalGroup(ee('member1', 'subsys'), 'EE', 'Test group')).toBe(true);
    expect(conf.isSubjectInGlobalGroup(ee('member2'), 'EE', 'Test group')).toBe(true);
    expect(conf.isSubjectInGlobalGroup(ee('member2', 'subsys'), 'EE', 'Test group')).toBe(false);
  });

  it('getApprovedCAs (v4): ACME server and profile ids of EE; v3 baz_v3 has the server without ids', () => {
    const conf = loadGlobalConf(dirOf('globalconf_good_v4'));
    expect(conf.sharedOf('EE')?.approvedCas.find((ca) => ca.name === 'pki1')?.acmeServer).toEqual({ directoryUrl: 'http://ca:8887/acme/directory', authenticationCertificateProfileId: '5', signingCertificateProfileId: '6' });
    expect(conf.sharedOf('baz_v3')?.approvedCas.find((ca) => ca.name === 'pki1')?.acmeServer).toEqual({ directoryUrl: 'http://ca:8887/acme/directory' });
  });

  it('version 3 and later list SHA-256 hashes (these files hash the PEM text, so no DER matches)', () => {
    const conf = loadGlobalConf(dirOf('globalconf_good_v3'));
    expect(conf.own.authCertHashAlgorithm).toBe('sha256');
    expect(conf.sharedOf('foo_v2')?.authCertHashAlgorithm).toBe('sha1');
    expect(conf.serverIdForAuthCert(CONSUMER)).toBeUndefined();
  });
});

describe('maintenance mode (v5)', () => {
  it('FooBarServerCode is in maintenance mode with its message; the others are not', () => {
    for (const name of ['globalconf_good_v5', 'globalconf_good_v6']) {
      const conf = loadGlobalConf(dirOf(name));
      expect(conf.securityServer(server('foo', 'FooBarServerCode'))).toMatchObject({ address: 'https://foo.bar.baz', maintenanceMode: { message: 'Test maintenance mode' } });
      expect(conf.securityServer(server('producer', 'producerServerCode'))?.maintenanceMode).toBeUndefined();
    }
  });

  it('subsystem names (v5)', () => {
    const conf = loadGlobalConf(dirOf('globalconf_good_v6'));
    expect(conf.member(ee('foo'))).toMatchObject({ subsystems: ['foosubsystem', 'barsubsystemId'], subsystemNames: { foosubsystem: 'FOO Subsystem' } });
  });
});

describe('GlobalConfVer6Test', () => {
  const conf = loadGlobalConf(dirOf('globalconf_good_v6'));
  const user1 = pem('test_chain/user_1.pem');

  it.each<[OcspPrioritization, string[]]>([
    ['ONLY_FREE', ['127.0.0.1:8082/ocsp', 'www.example.net/ocsp4']],
    ['FREE_FIRST', ['127.0.0.1:8082/ocsp', 'www.example.net/ocsp4', 'www.example.net/ocsp', 'www.example.net/ocsp2', 'www.example.net/ocsp3']],
    ['ONLY_PAID', ['www.example.net/ocsp', 'www.example.net/ocsp2']],
    ['PAID_FIRST', ['www.example.net/ocsp', 'www.example.net/ocsp2', '127.0.0.1:8082/ocsp', 'www.example.net/ocsp4', 'www.example.net/ocsp3']],
    ['NONE', ['127.0.0.1:8082/ocsp', 'www.example.net/ocsp', 'www.example.net/ocsp2', 'www.example.net/ocsp3', 'www.example.net/ocsp4']],
  ])('getOrderedOcspResponderAddresses for user_1 with %s', (strategy, expected) => {
    const ca = conf.caCertFor(user1)!;
    expect(new X509Certificate(ca).subject).toContain('OU=CA 1');
    expect(conf.ocspResponderUrls(ca, strategy)).toEqual(expected.map((u) => `http://${u}`));
  });

  it('before version 6 the listed order stands whatever the strategy', () => {
    const v5 = loadGlobalConf(dirOf('globalconf_good_v5'));
    const ca = v5.caCertFor(pem('test_chain/user_1.pem'))!;
    expect(v5.ocspResponderUrls(ca, 'ONLY_PAID')).toEqual(v5.ocspResponderUrls(ca, 'NONE'));
  });

  it('getOcspResponderAddressesAndCostTypes for the root CA in EE; TSA cost type', () => {
    const responders = conf.ocspResponders(ROOT_CA, 'EE');
    expect(responders).toHaveLength(5);
    expect(Object.fromEntries(responders.map((o) => [o.url, o.costType]))).toMatchObject({ 'http://127.0.0.1:8082/ocsp': 'FREE', 'http://www.example.net/ocsp': 'PAID', 'http://www.example.net/ocsp4': 'FREE' });
    expect(conf.own.approvedTsas[0]?.costType).toBe('PAID');
    expect(conf.own.approvedCas.find((ca) => ca.name === 'pki1')?.defaultCsrFormat).toBe('PEM');
  });
});

describe('SharedParametersMarshallRoundTripTest', () => {
  it.each(['globalconf_good_v2', 'globalconf_good_v3', 'globalconf_good_v4', 'globalconf_good_v5', 'globalconf_good_v6'])('%s/EE: parse → write → parse gives the same parameters', (name) => {
    const file = join(dirOf(name), 'EE', 'shared-params.xml');
    const meta = JSON.parse(readFileSync(`${file}.metadata`, 'utf8')) as { configurationVersion?: string };
    const version = { configurationVersion: meta.configurationVersion ? Number(meta.configurationVersion) : undefined };
    const parsed = parseSharedParameters(readFileSync(file, 'utf8'), version, file);
    expect(parseSharedParameters(sharedParametersXml(parsed), version, 'written')).toEqual(parsed);
  });
});

describe('ConfigurationAnchorTest (globalconf-versions)', () => {
  it('anchor 1: EE with three sources; the first one’s certificates by their SHA-1 hashes', () => {
    const anchor = loadConfigurationAnchor(join(VERSIONS, 'configuration-anchor1.xml'));
    expect(anchor.instanceIdentifier).toBe('EE');
    expect(anchor.sources.map((s) => s.downloadUrl)).toEqual(['http://www.bar.com/conf', 'http://node-0x.example.com/internalconf', 'http://node-1x.example.com/internalconf']);
    expect(anchor.sources[0]!.verificationCerts.map((c) => createHash('sha1').update(c).digest('base64'))).toEqual(['t7+jfR1wnsN1EBtBpCt/q8JIasg=', '4HCV0OGOaz4mJauIZvrt7A3RdfM=']);
  });

  it('anchor 2 is another anchor', () => {
    const anchor = loadConfigurationAnchor(join(VERSIONS, 'configuration-anchor2.xml'));
    expect(anchor.sources.map((s) => s.downloadUrl)).toEqual(['http://www.bar.com/conf2']);
    expect(anchor).not.toEqual(loadConfigurationAnchor(join(VERSIONS, 'configuration-anchor1.xml')));
  });
});

describe('optional parts (OcspFetchInterval-, OcspNextUpdate-, MonitoringParametersSchemaValidatorTest)', () => {
  const part = (name: string) => [readFileSync(join(VERSIONS, 'optional-parts', name), 'utf8'), name] as const;

  it('valid parts', () => {
    expect(parseOcspFetchInterval(...part('valid-fetchinterval-params.xml'))).toBe(500);
    expect(parseOcspNextUpdate(...part('valid-nextupdate-params.xml'))).toBe(false);
    expect(parseMonitoringParameters(...part('valid-monitoring-params.xml'))).toEqual({ instance: 'fdev', memberClass: 'GOV', memberCode: '66655666' });
    expect(parseMonitoringParameters(...part('empty-monitoring-params.xml'))).toBeUndefined();
  });

  it.each([
    ['empty-fetchinterval-params.xml', parseOcspFetchInterval],
    ['invalid-fetchinterval-params.xml', parseOcspFetchInterval],
    ['empty-nextupdate-params.xml', parseOcspNextUpdate],
    ['invalid-nextupdate-params.xml', parseOcspNextUpdate],
    ['invalid-monitoring-params.xml', parseMonitoringParameters],
  ] as const)('%s is refused', (name, parse) => {
    expect(() => parse(...part(name))).toThrowError(expect.objectContaining({ code: 'MalformedGlobalConf' }));
  });

  it('our instance’s parts set the extensions; a refused part leaves the default', () => {
    const copy = mkdtempSync(join(tmpdir(), 'xrd-gconf-ext-'));
    cpSync(dirOf('globalconf_good_v2'), copy, { recursive: true });
    expect(loadGlobalConf(copy).extensions).toEqual({ ocspFetchIntervalSeconds: 1200, verifyOcspNextUpdate: true });
    writeFileSync(join(copy, 'EE', 'fetchinterval-params.xml'), part('valid-fetchinterval-params.xml')[0]);
    writeFileSync(join(copy, 'EE', 'nextupdate-params.xml'), part('invalid-nextupdate-params.xml')[0]);
    writeFileSync(join(copy, 'EE', 'monitoring-params.xml'), part('valid-monitoring-params.xml')[0]);
    const conf = loadGlobalConf(copy);
    expect(conf.extensions).toEqual({ ocspFetchIntervalSeconds: 500, verifyOcspNextUpdate: true, monitoringClient: { instance: 'fdev', memberClass: 'GOV', memberCode: '66655666' } });
    expect(conf.skipped.map((s) => s.file)).toEqual([join(copy, 'EE', 'nextupdate-params.xml')]);
    expect(readdirSync(join(copy, 'EE'))).toContain('fetchinterval-params.xml');
  });
});
