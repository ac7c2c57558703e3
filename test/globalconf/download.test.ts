/**
 * Downloading global configuration as the reference's configuration client does, over real HTTP on
 * loopback: the reference's signed directories (../shared/xroad-vectors/configuration-download)
 * with the clock set around their expiry, version negotiation, locations, removal of files no
 * longer listed, federation, the last good configuration kept, bounded requests. Tests are named
 * after the reference tests they follow.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConfigurationAnchor } from '../../src/globalconf/anchor.ts';
import { ConfigurationClient, readDownloadStatus } from '../../src/globalconf/configuration-client.ts';
import { ConfigurationDownloader, downloadGlobalConf } from '../../src/globalconf/download.ts';
import { loadGlobalConf, type SharedParameters } from '../../src/globalconf/global-conf.ts';
import { signedDirectory, startConfigurationSource } from '../../src/globalconf/source.ts';
import { configurationAnchorXml, writeGlobalConf } from '../../src/globalconf/writer.ts';
import { isErrorCode, normalizeFaultCode } from '../../src/platform/errors.ts';
import { silentLogger, type Logger } from '../../src/platform/logger.ts';
import { createRootCa } from '../../src/dev/testpki/certificate-authority.ts';
import { eventually } from '../support/eventually.ts';
import { startFlooder, startTrickler, type HostileServer } from '../support/hostile-servers.ts';
import { VECTORS } from '../support/vectors.ts';

const DOWNLOAD = join(VECTORS, 'configuration-download');
const pem = (file: string) => Buffer.from(readFileSync(join(VECTORS, 'test-certs', file), 'utf8').replace(/-----[^-]+-----|\s+/g, ''), 'base64');
const CONSUMER = pem('consumer.pem');
const PRODUCER = pem('producer.pem');
/** test-conf-simple and -detached expire at 2026-05-20T17:42:55Z. */
const BEFORE_EXPIRY = () => new Date('2026-05-20T17:42:54Z');
const AFTER_EXPIRY = () => new Date('2026-05-20T17:42:56Z');

const servers: Server[] = [];
afterAll(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));

/** A loopback server on a port of its own; every request's URL is logged. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ base: string; requests: string[]; server: Server }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

const closed = (server: Server) => new Promise<void>((r) => server.close(() => r()));

const hostileServers: HostileServer[] = [];
afterAll(() => Promise.all(hostileServers.map((s) => s.close())));
async function hostile(server: Promise<HostileServer>): Promise<HostileServer> {
  hostileServers.push(await server);
  return hostileServers.at(-1)!;
}

/**
 * Serves a reference directory file (`<name>.txt`, a whole MIME entity) at /conf for `?version=2`
 * only (it has no Version header: a version 2 source), and its parts from `<name>/EE/`.
 */
function serveVector(name: string) {
  const raw = readFileSync(join(DOWNLOAD, `${name}.txt`));
  const blank = raw.indexOf('\n\n');
  const contentType = /^content-type:\s*(.+)$/im.exec(raw.subarray(0, blank).toString('latin1'))![1]!.trim();
  return serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/conf') {
      if (url.searchParams.get('version') !== '2') return void res.writeHead(404).end();
      return void res.writeHead(200, { 'Content-Type': contentType }).end(raw.subarray(blank + 2));
    }
    const file = join(DOWNLOAD, name, 'EE', url.pathname.slice(1));
    if (!existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(readFileSync(file));
  });
}

const eeAnchor = (url: string, cert = CONSUMER): ConfigurationAnchor => ({ instanceIdentifier: 'EE', sources: [{ downloadUrl: url, verificationCerts: [cert] }] });
const freshDir = () => join(mkdtempSync(join(tmpdir(), 'xrd-download-')), 'globalconf');
const listing = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();

describe('ConfigurationParserTest and ConfigurationClientTest (configuration-download vectors)', () => {
  it('parseConf, downloadSimpleConf: test-conf-simple before its expiry gives exactly its 3 parts, FOO stored as the reference stores it; bar.xml is not fetched', async () => {
    const source = await serveVector('test-conf-simple');
    const dir = freshDir();
    const report = await new ConfigurationDownloader({ clock: BEFORE_EXPIRY }).download(eeAnchor(`${source.base}/conf`), dir);
    expect(report.parts.map((p) => [p.contentIdentifier, p.file, p.downloaded])).toEqual([
      ['PRIVATE-PARAMETERS', 'EE/private-params.xml', true],
      ['SHARED-PARAMETERS', 'EE/shared-params.xml', true],
      ['FOO', 'EE/foo.xml', true],
    ]);
    expect(report).toMatchObject({ url: `${source.base}/conf?version=2`, version: undefined, expiresAt: new Date('2026-05-20T17:42:55Z') });
    expect(listing(dir)).toEqual(['EE', 'EE/foo.xml', 'EE/foo.xml.metadata', 'EE/private-params.xml', 'EE/private-params.xml.metadata', 'EE/shared-params.xml', 'EE/shared-params.xml.metadata', 'instance-identifier']);
    expect(readFileSync(join(dir, 'EE', 'foo.xml')).equals(readFileSync(join(DOWNLOAD, 'test-conf-simple', 'EE', 'foo.xml')))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'EE', 'foo.xml.metadata'), 'utf8'))).toEqual({ contentIdentifier: 'FOO', instanceIdentifier: 'EE', expirationDate: '2026-05-20T17:42:55.000Z', contentLocation: '/foo.xml' });
    expect(source.requests.filter((u) => !u.startsWith('/conf')).sort()).toEqual(['/foo.xml', '/private-params.xml', '/shared-params.xml']);
    // No Version header: the parts are version 2.
    const conf = loadGlobalConf(dir, { clock: BEFORE_EXPIRY });
    expect(conf).toMatchObject({ instanceIdentifier: 'EE', version: 2 });
  });

  it('test-conf-simple at or after its expiry → OutdatedGlobalConf (the real clock is past it too)', async () => {
    const source = await serveVector('test-conf-simple');
    for (const clock of [AFTER_EXPIRY, undefined]) {
      await expect(new ConfigurationDownloader({ clock }).download(eeAnchor(`${source.base}/conf`), freshDir())).rejects.toMatchObject({ code: 'OutdatedGlobalConf', faultCode: 'Signer.OutdatedGlobalConf' });
    }
  });

  it.each([
    ['parseConfWrongVerificationCert: the producer certificate as the anchor’s', 'test-conf-simple', PRODUCER, 'GlobalConfMissingVerificationCert'],
    ['parseMalformedConf, downloadConfFail: cut short, no signature part', 'test-conf-malformed', CONSUMER, 'GlobalConfMissingSignedDataExpirationDate'],
    ['parseMalformedConfMissingExpirationDate', 'test-conf-missing-date', CONSUMER, 'GlobalConfHeaderFieldMissing'],
    ['parseConfMissingSignature: an empty signature', 'test-conf-missing-signature', CONSUMER, 'GlobalConfSignatureVerificationFailure'],
    ['parseConfInvalidSignature', 'test-conf-invalid-signature', CONSUMER, 'GlobalConfSignatureVerificationFailure'],
  ])('%s → %s', async (_name, vector, cert, code) => {
    const source = await serveVector(vector);
    const dir = freshDir();
    await expect(new ConfigurationDownloader({ clock: BEFORE_EXPIRY }).download(eeAnchor(`${source.base}/conf`, cert), dir)).rejects.toMatchObject({ code });
    expect(existsSync(dir)).toBe(false);
    expect(source.requests.every((u) => u.startsWith('/conf'))).toBe(true);
  });

  it('downloadDetachedConf: its private parameters name another source for EE by a path, not a URL, and a certificate that is not one; that leg fails, only PRIVATE-PARAMETERS is stored', async () => {
    const source = await serveVector('test-conf-detached');
    const dir = freshDir();
    const report = await new ConfigurationDownloader({ clock: BEFORE_EXPIRY }).download(eeAnchor(`${source.base}/conf`), dir);
    expect(report.parts.map((p) => p.contentIdentifier)).toEqual(['PRIVATE-PARAMETERS']);
    expect(report.federated).toEqual([{ instance: 'EE', error: expect.objectContaining({ code: 'GlobalConfDownloadUrlConnectionFailure' }) }]);
    expect(listing(dir)).toEqual(['EE', 'EE/private-params.xml', 'EE/private-params.xml.metadata', 'instance-identifier']);
    // Without shared parameters for EE the result is no configuration yet.
    await expect(downloadGlobalConf(eeAnchor(`${source.base}/conf`), freshDir(), { clock: BEFORE_EXPIRY })).rejects.toMatchObject({ code: 'MalformedGlobalConf' });
  });

  it('detached shared parameters are checked with their own anchor’s certificates (our reading): "bar\\n" verifies nothing, the consumer certificate does', async () => {
    const simple = await serveVector('test-conf-simple');
    // Our own source for EE's private parameters alone, whose anchor for EE's shared parameters is the vector.
    const privateOnly = async (cert: Buffer) => {
      const dir = sourceDir(instanceParams('EE', 2, 'ee'), {
        instanceIdentifier: 'EE',
        configurationAnchors: [{ instanceIdentifier: 'EE', sources: [{ downloadUrl: `${simple.base}/conf`, verificationCerts: [cert] }] }],
        timeStampingIntervalSeconds: 60,
      });
      for (const f of ['shared-params.xml', 'shared-params.xml.metadata']) rmSync(join(dir, 'EE', f));
      return anchorOf('EE', (await startSource(dir)).url);
    };

    const refused = await new ConfigurationDownloader({ clock: BEFORE_EXPIRY }).download(await privateOnly(Buffer.from('bar\n')), freshDir());
    expect(refused.parts.map((p) => p.contentIdentifier)).toEqual(['PRIVATE-PARAMETERS']);
    expect(refused.federated[0]?.error?.code).toBe('GlobalConfMissingVerificationCert');

    const dir = freshDir();
    const accepted = await new ConfigurationDownloader({ clock: BEFORE_EXPIRY }).download(await privateOnly(CONSUMER), dir);
    expect(accepted.parts.map((p) => p.contentIdentifier)).toEqual(['PRIVATE-PARAMETERS', 'SHARED-PARAMETERS']);
    expect(accepted.federated).toEqual([{ instance: 'EE', url: `${simple.base}/conf?version=2` }]);
    expect(loadGlobalConf(dir, { clock: BEFORE_EXPIRY }).own.securityServers).toHaveLength(4);
  });
});

// ---- our own sources: negotiation, locations, removal, federation ----------------------------

const signer = createRootCa([['CN', 'Configuration signing key']]);
const stranger = createRootCa([['CN', 'Someone else']]);
const authCert = createRootCa([['CN', 'An authentication certificate']]).cert;

/** One member with a subsystem and a security server at `address`, whose auth certificate is `authCert`. */
function instanceParams(instance: string, version: number, address: string, extra: Partial<SharedParameters> = {}): SharedParameters {
  const owner = { instance, memberClass: 'GOV', memberCode: '1' };
  return {
    instanceIdentifier: instance,
    configurationVersion: version,
    authCertHashAlgorithm: version <= 2 ? 'sha1' : 'sha256',
    approvedCas: [{ name: `${instance} CA`, authenticationOnly: false, topCa: { cert: signer.cert, ocsp: [] }, intermediateCas: [], certificateProfileInfo: 'ee.ria.xroad.common.certificateprofile.impl.BasicCertificateProfileInfoProvider' }],
    approvedTsas: [],
    members: [{ id: owner, name: `${instance} member`, subsystems: ['SUB'] }],
    securityServers: [{ owner, serverCode: 'SS', address, authCertHashes: [createHash(version <= 2 ? 'sha1' : 'sha256').update(authCert).digest()], clients: [{ ...owner, subsystem: 'SUB' }] }],
    globalGroups: [],
    memberClasses: [{ code: 'GOV', description: 'Government' }],
    ocspFreshnessSeconds: 600,
    ...extra,
  };
}

function sourceDir(shared: SharedParameters, privateParams?: Parameters<typeof writeGlobalConf>[2]): string {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-source-'));
  writeGlobalConf(dir, shared, privateParams ?? { instanceIdentifier: shared.instanceIdentifier, timeStampingIntervalSeconds: 60 });
  return dir;
}

async function startSource(dir: string, path = '/internalconf', key = signer) {
  const server = await startConfigurationSource({ dir, signingKey: key.privateKey, signingCert: key.cert, path }, '127.0.0.1', 0);
  servers.push(server);
  const requests: string[] = [];
  server.on('request', (req: IncomingMessage) => requests.push(req.url ?? ''));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, requests, server };
}

const anchorOf = (instanceIdentifier: string, url: string, cert = signer.cert): ConfigurationAnchor => ({ instanceIdentifier, sources: [{ downloadUrl: url, verificationCerts: [cert] }] });
const directoryRequests = (requests: string[]) => requests.filter((u) => u.includes('conf'));

describe('LocationVersionResolverTest: version negotiation from 6 down', () => {
  it('chooseFirstAvailableVersion: a version 6 source answers the first request', async () => {
    const source = await startSource(sourceDir(instanceParams('A', 6, 'a')));
    const dir = freshDir();
    const conf = await downloadGlobalConf(anchorOf('A', source.url), dir);
    expect(directoryRequests(source.requests)).toEqual(['/internalconf?version=6']);
    expect(conf.version).toBe(6);
    expect(JSON.parse(readFileSync(join(dir, 'A', 'shared-params.xml.metadata'), 'utf8')).configurationVersion).toBe('6');
  });

  it('fallbackToPreviousVersion: 404 for 6, 5 and 4, then version 3', async () => {
    const source = await startSource(sourceDir(instanceParams('A', 3, 'a')));
    const conf = await downloadGlobalConf(anchorOf('A', source.url), freshDir());
    expect(directoryRequests(source.requests)).toEqual(['/internalconf?version=6', '/internalconf?version=5', '/internalconf?version=4', '/internalconf?version=3']);
    expect(conf.own.authCertHashAlgorithm).toBe('sha256');
    expect(conf.serverIdForAuthCert(authCert)).toEqual({ instance: 'A', memberClass: 'GOV', memberCode: '1', serverCode: 'SS' });
  });

  it('fallbackToDefaultVersion: down to version 2, where certificate hashes are SHA-1', async () => {
    const source = await startSource(sourceDir(instanceParams('A', 2, 'a')));
    const conf = await downloadGlobalConf(anchorOf('A', source.url), freshDir());
    expect(directoryRequests(source.requests)).toEqual([6, 5, 4, 3, 2].map((v) => `/internalconf?version=${v}`));
    expect(conf.own.authCertHashAlgorithm).toBe('sha1');
    expect(conf.serverIdForAuthCert(authCert)?.serverCode).toBe('SS');
  });

  it('a source that serves none of the versions: GlobalConfDownloadUrlConnectionFailure after version 2', async () => {
    const source = await serve((_req, res) => void res.writeHead(404).end());
    await expect(downloadGlobalConf(anchorOf('A', `${source.base}/internalconf`), freshDir())).rejects.toMatchObject({ code: 'GlobalConfDownloadUrlConnectionFailure' });
    expect(source.requests).toEqual([6, 5, 4, 3, 2].map((v) => `/internalconf?version=${v}`));
  });

  it('presetVersionPrevailsWhenVersionNotEnforced; enforcedVersionPrevailsPresetVersion', async () => {
    const source = await startSource(sourceDir(instanceParams('A', 4, 'a')));
    await downloadGlobalConf(anchorOf('A', `${source.url}?version=4`), freshDir());
    expect(directoryRequests(source.requests)).toEqual(['/internalconf?version=4']);
    await expect(downloadGlobalConf(anchorOf('A', `${source.url}?version=5`), freshDir(), { version: 4 })).resolves.toMatchObject({ version: 4 });
    expect(directoryRequests(source.requests).slice(1)).toEqual(['/internalconf?version=4']);
  });
});

describe('ConfigurationDownloaderTest: locations', () => {
  it('rememberLastSuccessfulDownloadLocation: the next download goes to the location that worked, with its version', async () => {
    const good = await startSource(sourceDir(instanceParams('A', 3, 'a')));
    const bad = await serve((_req, res) => void res.writeHead(500).end());
    const anchor: ConfigurationAnchor = { instanceIdentifier: 'A', sources: [{ downloadUrl: `${bad.base}/internalconf`, verificationCerts: [signer.cert] }, { downloadUrl: good.url, verificationCerts: [signer.cert] }] };
    const tried: string[] = [];
    // No shuffling: the bad location, as listed, comes before the good one.
    const downloader = new ConfigurationDownloader({ random: () => 0.999, onLocationFailure: (_i, url) => tried.push(url) });
    const dir = freshDir();
    await downloader.download(anchor, dir);
    expect(bad.requests).toEqual(['/internalconf?version=6']);
    expect(tried.filter((u) => u.startsWith('http:'))).toEqual([`${bad.base}/internalconf`]);
    good.requests.length = 0;
    tried.length = 0;
    const again = await downloader.download(anchor, dir);
    expect(tried).toEqual([]);
    expect(bad.requests).toHaveLength(1);
    // Straight to the remembered URL and version; the files had not changed, so only the directory.
    expect(good.requests).toEqual(['/internalconf?version=3']);
    expect(again.parts.every((p) => !p.downloaded)).toBe(true);
  });

  it('SharedParametersConfigurationLocationsTest: version 3 sources are tried; the anchor’s own URL need not answer', async () => {
    const node = await startSource(sourceDir(instanceParams('A', 3, 'a')));
    const nodeAddress = new URL(node.url).host;
    // The configuration names its central server nodes; the one at the anchor's URL then goes away.
    const first = await startSource(sourceDir(instanceParams('A', 3, 'a', { sources: [{ address: nodeAddress, internalVerificationCerts: [signer.cert], externalVerificationCerts: [stranger.cert] }] })));
    const dir = freshDir();
    const downloader = new ConfigurationDownloader();
    await downloader.download(anchorOf('A', first.url), dir);
    await closed(first.server);
    const report = await new ConfigurationDownloader().download(anchorOf('A', first.url), dir);
    expect(report.url).toBe(`${node.url}?version=3`);
  });
});

describe('removing what a new directory no longer lists, keeping the last good configuration', () => {
  it('a part the source stops listing, and a file nobody listed, are removed; the rest is renewed', async () => {
    const source = sourceDir(instanceParams('A', 3, 'a'));
    const server = await startSource(source);
    const dir = freshDir();
    await downloadGlobalConf(anchorOf('A', server.url), dir);
    writeFileSync(join(dir, 'A', 'left-over.xml'), 'old');
    rmSync(join(source, 'A', 'private-params.xml'));
    const conf = await downloadGlobalConf(anchorOf('A', server.url), dir);
    expect(conf.privateParams).toBeUndefined();
    expect(listing(join(dir, 'A'))).toEqual(['shared-params.xml', 'shared-params.xml.metadata']);
  });

  it('a bad signature, a signer the anchor does not name, a part that does not match its hash: the configuration in place stays', async () => {
    const source = sourceDir(instanceParams('A', 3, 'a'));
    const good = await startSource(source);
    const dir = freshDir();
    await downloadGlobalConf(anchorOf('A', good.url), dir);
    const before = Object.fromEntries(listing(dir).filter((f) => f.endsWith('.xml') || f.endsWith('.metadata')).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));

    // The next directory lists new shared parameters; the rogue serves other bytes for them.
    const updated = sourceDir(instanceParams('A', 3, 'a', { members: [{ id: { instance: 'A', memberClass: 'GOV', memberCode: '1' }, name: 'A member, renamed', subsystems: ['SUB'] }] }));
    const tampered = mkdtempSync(join(tmpdir(), 'xrd-tampered-'));
    cpSync(updated, tampered, { recursive: true });
    const file = join(tampered, 'A', 'shared-params.xml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('A member, renamed', 'Evil member'));
    let flip = false;
    const rogue = await serve((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/internalconf') {
        if (url.searchParams.get('version') !== '3') return void res.writeHead(404).end();
        const signed = signedDirectory({ dir: updated, signingKey: signer.privateKey, signingCert: signer.cert });
        if (flip) signed.body[signed.body.indexOf('Expire-date') + 20]! ^= 1;
        return void res.writeHead(200, { 'Content-Type': signed.contentType }).end(signed.body);
      }
      res.writeHead(200).end(readFileSync(join(tampered, url.pathname)));
    });
    await expect(downloadGlobalConf(anchorOf('A', `${rogue.base}/internalconf`), dir)).rejects.toMatchObject({ code: 'GlobalConfPartDownloadedFileIntegrityFailure' });
    flip = true;
    await expect(downloadGlobalConf(anchorOf('A', `${rogue.base}/internalconf`), dir)).rejects.toMatchObject({ code: 'GlobalConfSignatureVerificationFailure' });
    await expect(downloadGlobalConf(anchorOf('A', good.url, stranger.cert), dir)).rejects.toMatchObject({ code: 'GlobalConfMissingVerificationCert' });
    for (const [f, content] of Object.entries(before)) expect(readFileSync(join(dir, f), 'utf8')).toBe(content);
  });

  it('a source that is down: GlobalConfGetVersionFailed (no answer to the first probe)', async () => {
    const down = await serve(() => undefined);
    await closed(down.server);
    await expect(downloadGlobalConf(anchorOf('A', `${down.base}/internalconf`), freshDir())).rejects.toMatchObject({ code: 'GlobalConfGetVersionFailed' });
  });
});

describe('bounded requests (platform/http-client.ts)', () => {
  it('trickling configuration source outlives no deadline: not while serving the directory, nor a part', async () => {
    const directory = await hostile(startTrickler('multipart/related; boundary=b'));
    const early = await downloadGlobalConf(anchorOf('A', `${directory.base}/internalconf`), freshDir(), { timeoutMs: 300 }).catch((err: unknown) => err);
    expect(early).toMatchObject({ code: 'GlobalConfGetVersionFailed', cause: { code: 'ResponseTimeout', details: { timeoutMs: 300 } } });

    // A good signed directory whose parts then come a byte at a time.
    const content = sourceDir(instanceParams('A', 3, 'a'));
    const parts = await hostile(
      startTrickler('application/octet-stream', {
        answered: (req, res) => {
          if (!req.url?.startsWith('/internalconf')) return false;
          const { contentType, body } = signedDirectory({ dir: content, signingKey: signer.privateKey, signingCert: signer.cert });
          res.writeHead(200, { 'Content-Type': contentType }).end(body);
          return true;
        },
      }),
    );
    const dir = freshDir();
    const late = await downloadGlobalConf(anchorOf('A', `${parts.base}/internalconf`), dir, { timeoutMs: 300 }).catch((err: unknown) => err);
    expect(late).toMatchObject({ code: 'GlobalConfPartDownloadFailure', cause: { code: 'ResponseTimeout' } });
    expect(existsSync(dir)).toBe(false);
  });

  it('200 MB configuration directory is refused at the cap (1 MiB by default), and so is a part past its cap', async () => {
    const flooder = await hostile(startFlooder('multipart/related; boundary=b', 200 * 1024 * 1024));
    const refused = await downloadGlobalConf(anchorOf('A', `${flooder.base}/internalconf`), freshDir()).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'GlobalConfGetVersionFailed', cause: { code: 'ResponseTooLarge', details: { limit: 1024 * 1024 } } });
    await eventually(async () => (flooder.ended > 0 ? true : undefined), 10_000, 'the downloader closing the connection');
    expect(flooder.sent).toBeLessThan(20 * 1024 * 1024);

    const source = await startSource(sourceDir(instanceParams('A', 3, 'a')));
    const small = await downloadGlobalConf(anchorOf('A', source.url), freshDir(), { maxPartBytes: 100 }).catch((err: unknown) => err);
    expect(small).toMatchObject({ code: 'GlobalConfPartDownloadFailure', cause: { code: 'ResponseTooLarge', details: { limit: 100 } } });
  });
});

describe('federation: other instances’ shared parameters beside ours', () => {
  async function federation() {
    const external = createRootCa([['CN', 'B external configuration']]);
    const b = await startSource(sourceDir(instanceParams('B', 3, 'b.example')), '/externalconf', external);
    const aSource = sourceDir(instanceParams('A', 3, 'a.example'), {
      instanceIdentifier: 'A',
      configurationAnchors: [{ instanceIdentifier: 'B', sources: [{ downloadUrl: b.url, verificationCerts: [external.cert] }] }],
      timeStampingIntervalSeconds: 60,
    });
    const a = await startSource(aSource);
    return { a, b, aSource, external };
  }
  const bClient = { instance: 'B', memberClass: 'GOV', memberCode: '1', subsystem: 'SUB' };
  const bServer = { instance: 'B', memberClass: 'GOV', memberCode: '1', serverCode: 'SS' };

  it('allowed (names without regard to case or spaces): downloaded, and the lookups answer for B', async () => {
    const { a, b } = await federation();
    const dir = freshDir();
    const report = await new ConfigurationDownloader({ allowedFederations: ' b , other ' }).download(anchorOf('A', a.url), dir);
    expect(report.federated).toEqual([{ instance: 'B', url: `${b.url}?version=3` }]);
    expect(report.parts.filter((p) => p.instance === 'B').map((p) => p.file)).toEqual(['B/shared-params.xml']);
    expect(listing(join(dir, 'B'))).toEqual(['shared-params.xml', 'shared-params.xml.metadata']);
    const conf = loadGlobalConf(dir);
    expect(conf.instanceIdentifiers().sort()).toEqual(['A', 'B']);
    expect(conf.securityServersOf(bClient).map((s) => s.address)).toEqual(['b.example']);
    expect(conf.isSecurityServerClient(bClient, bServer)).toBe(true);
    expect(conf.securityServer(bServer)?.address).toBe('b.example');
    expect(conf.providerAddresses(bClient)).toEqual(['b.example']);
    expect(conf.serverIdForAuthCert(authCert)?.instance).toBeDefined();
    expect(conf.authCertMatchesMember(authCert, { instance: 'B', memberClass: 'GOV', memberCode: '1' })).toBe(true);
    expect(conf.sharedOf('B')?.approvedCas.map((ca) => ca.name)).toEqual(['B CA']);
    expect(conf.privateParams?.instanceIdentifier).toBe('A');
  });

  it('NONE (the default) or NONE anywhere in the list: not downloaded, and a folder from before is removed', async () => {
    const { a } = await federation();
    const dir = freshDir();
    await new ConfigurationDownloader({ allowedFederations: 'ALL' }).download(anchorOf('A', a.url), dir);
    expect(existsSync(join(dir, 'B'))).toBe(true);
    const report = await new ConfigurationDownloader({ allowedFederations: 'B, all, none' }).download(anchorOf('A', a.url), dir);
    expect(report.federated).toEqual([]);
    expect(existsSync(join(dir, 'B'))).toBe(false);
    await new ConfigurationDownloader({ allowedFederations: 'ALL' }).download(anchorOf('A', a.url), dir);
    await new ConfigurationDownloader().download(anchorOf('A', a.url), dir);
    expect(readdirSync(dir).sort()).toEqual(['A', 'instance-identifier']);
  });

  it('a federated source that fails is reported, and its last good files stay; an instance no longer referenced goes', async () => {
    const { a, b, aSource } = await federation();
    const dir = freshDir();
    const downloader = new ConfigurationDownloader({ allowedFederations: 'ALL' });
    await downloader.download(anchorOf('A', a.url), dir);
    const before = readFileSync(join(dir, 'B', 'shared-params.xml'));
    await closed(b.server);
    const report = await downloader.download(anchorOf('A', a.url), dir);
    expect(report.federated).toEqual([{ instance: 'B', error: expect.objectContaining({ code: 'GlobalConfGetVersionFailed' }) }]);
    expect(readFileSync(join(dir, 'B', 'shared-params.xml')).equals(before)).toBe(true);
    expect(loadGlobalConf(dir).securityServer(bServer)?.address).toBe('b.example');

    writeGlobalConf(aSource, instanceParams('A', 3, 'a.example'), { instanceIdentifier: 'A', timeStampingIntervalSeconds: 60 });
    await downloader.download(anchorOf('A', a.url), dir);
    expect(readdirSync(dir).sort()).toEqual(['A', 'instance-identifier']);
  });
});

describe('ConfigurationClient', () => {
  it('downloads, logs a failed download and keeps the last good configuration', async () => {
    const source = await startSource(sourceDir(instanceParams('A', 3, 'a')));
    const root = mkdtempSync(join(tmpdir(), 'xrd-client-'));
    const anchorFile = join(root, 'anchor.xml');
    writeFileSync(anchorFile, configurationAnchorXml(anchorOf('A', source.url)));
    const dir = join(root, 'globalconf');
    const warnings: unknown[] = [];
    const log = { ...silentLogger(), warn: (obj: unknown) => void warnings.push(obj) } as Logger;
    let downloads = 0;
    const client = new ConfigurationClient(anchorFile, dir, log, { downloaded: () => downloads++ });
    expect(await client.runOnce()).toBe(true);
    expect(downloads).toBe(1);
    // Each attempt is written down for the admin API's diagnostics (another process).
    const ok = readDownloadStatus(dir)!;
    expect(ok).toMatchObject({ status: 'OK', url: expect.stringContaining(source.url) });
    expect(Date.parse(ok.nextAt) - Date.parse(ok.at)).toBe(60_000);
    await closed(source.server);
    expect(await client.runOnce()).toBe(false);
    expect(warnings).toEqual([expect.objectContaining({ code: 'Signer.GlobalConfGetVersionFailed' })]);
    expect(readDownloadStatus(dir)).toMatchObject({ status: 'FAIL', code: 'GlobalConfGetVersionFailed', message: expect.any(String) });
    expect(loadGlobalConf(dir).securityServer({ instance: 'A', memberClass: 'GOV', memberCode: '1', serverCode: 'SS' })?.address).toBe('a');
  });

  it("7.8's global_conf_* fault codes from a peer are ours", () => {
    expect(normalizeFaultCode('server.clientproxy.global_conf_missing_verification_cert')).toBe('Server.ClientProxy.GlobalConfMissingVerificationCert');
    expect(normalizeFaultCode('global_conf_part_downloaded_file_integrity_failure')).toBe('GlobalConfPartDownloadedFileIntegrityFailure');
    expect(isErrorCode(normalizeFaultCode('global_conf_signature_verification_failure'))).toBe(true);
  });
});
