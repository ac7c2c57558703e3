/**
 * Peer authentication between security servers (MESS_05–07, seed 000): authentication certificates
 * issued by the local test PKI from CSRs, presented over real TLS connections, OCSP responses from
 * the PKI's responder, and a peer's OCSP endpoint (startOcspEndpoint) on loopback.
 */
import { X509Certificate, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleCsr, certificationRequestInfo, defaultSubject, encodeDn, toPem } from '../../src/certificates/csr.ts';
import { loadGlobalConf, type GlobalConf } from '../../src/globalconf/global-conf.ts';
import { writeGlobalConf } from '../../src/globalconf/writer.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { parseClientId, parseSecurityServerId } from '../../src/protocol/identifiers.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { createRootCa, issueCertificate } from '../../src/dev/testpki/certificate-authority.ts';
import { AUTH_TEXTS, peerCertificateChain, verifyAuthCertificate } from '../../src/trust/auth-cert.ts';
import { OcspCache, certSha1 } from '../../src/trust/ocsp-cache.ts';
import { fetchOcspResponse } from '../../src/trust/ocsp-client.ts';
import { ocspEndpointHandler, startOcspEndpoint } from '../../src/trust/ocsp-endpoint.ts';
import { certIdOf, encodeOcspRequest } from '../../src/trust/ocsp.ts';
import { PeerAuthenticator, ocspCacheStore, ownAuthOcspResponses } from '../../src/trust/peer-auth.ts';
import { fetchPeerOcspResponses } from '../../src/trust/peer-ocsp.ts';
import { startFlooder, startTrickler, type HostileServer } from '../support/hostile-servers.ts';
import { freePort } from '../support/net.ts';

const PROVIDER = parseClientId('LOCAL/COM/1111/PROVIDER');
const CLIENT = parseClientId('LOCAL/COM/2222/CLIENT');
const SS1 = parseSecurityServerId('LOCAL/COM/1111/ss1');

interface AuthKey {
  readonly key: KeyObject;
  readonly cert: Buffer;
}

let dir: string;
let pki: LocalPki;
let served: Awaited<ReturnType<LocalPki['serve']>>;
let ca: Buffer;
let root: Buffer;
let ss1: AuthKey; // registered for LOCAL/COM/1111/ss1 (hosts the provider)
let ss2: AuthKey; // registered for LOCAL/COM/2222/ss2 (hosts the client)
let unregistered: AuthKey;
let conf: GlobalConf;

/** A key made here and its certificate issued by the test PKI from a CSR, as the signer's would be. */
function issue(usage: 'auth' | 'sign', server?: string): AuthKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const subject = usage === 'auth' ? defaultSubject('AUTHENTICATION', { server: parseSecurityServerId(server ?? 'LOCAL/COM/1111/other') }) : defaultSubject('SIGNING', { member: parseClientId('LOCAL/COM/1111') });
  const info = certificationRequestInfo(subject, publicKey.export({ type: 'spki', format: 'der' }));
  return { key: privateKey, cert: pki.issue(assembleCsr(info, 'SHA256withECDSA', sign('sha256', info, privateKey)), usage, server) };
}

/** Fresh responses from the PKI's OCSP responder for a certificate and the issuing CA. */
async function ocspFor(cert: Buffer): Promise<Buffer[]> {
  return [await fetchOcspResponse([served.ocspUrl], encodeOcspRequest([certIdOf(cert, ca)])), await fetchOcspResponse([served.ocspUrl], encodeOcspRequest([certIdOf(ca, root)]))];
}

const pem = (der: Buffer) => toPem(der, 'CERTIFICATE');
const keyPem = (k: AuthKey) => k.key.export({ type: 'pkcs8', format: 'pem' }) as string;

/**
 * A mutual TLS connection on loopback: the server presents `server` (with the CA certificate), the
 * client `client` (or nothing). Both sides accept any certificate in the handshake, as the proxies
 * do, and read the peer's chain afterwards. Returns what each side got.
 */
async function handshake(server: AuthKey, client?: AuthKey): Promise<{ atClient: Buffer[] | undefined; atServer: Buffer[] | undefined }> {
  const tls = createTlsServer({ key: keyPem(server), cert: pem(server.cert) + pem(ca), requestCert: true, rejectUnauthorized: false });
  const atServer = new Promise<Buffer[] | undefined>((resolve) => tls.once('secureConnection', (s: TLSSocket) => {
    resolve(peerCertificateChain(s));
    s.end();
  }));
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  const socket = tlsConnect({ host: '127.0.0.1', port: (tls.address() as AddressInfo).port, rejectUnauthorized: false, ...(client ? { key: keyPem(client), cert: pem(client.cert) + pem(ca) } : {}) });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const atClient = peerCertificateChain(socket);
  const result = { atClient, atServer: await atServer };
  socket.destroy();
  await new Promise<void>((r) => tls.close(() => r()));
  return result;
}

/** A peer's OCSP endpoint holding the given responses, counting the requests it gets. */
async function peerEndpoint(responses: { cert: Buffer; der: Buffer }[]): Promise<{ port: number; hits: () => number; close: () => Promise<void> }> {
  const cache = new OcspCache(join(mkdtempSync(join(dir, 'peer-')), 'ocsp.sqlite'), silentLogger());
  if (responses.length) cache.set(responses.map((r) => ({ certSha1: certSha1(r.cert), der: r.der })));
  let hits = 0;
  const handler = ocspEndpointHandler(cache);
  const server: Server = createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: () => new Promise<void>((r) => server.close(() => r())).finally(() => cache.close()),
  };
}

const clientCache = () => new OcspCache(join(mkdtempSync(join(dir, 'client-')), 'ocsp.sqlite'), silentLogger());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xrd-authcert-'));
  pki = LocalPki.init(join(dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort() });
  served = await pki.serve();
  ca = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw;
  root = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'root.cert.pem'))).raw;
  ss1 = issue('auth', 'LOCAL/COM/1111/ss1');
  ss2 = issue('auth', 'LOCAL/COM/2222/ss2');
  unregistered = issue('auth');
  conf = loadGlobalConf(pki.globalConfDir);
});

afterAll(() => served?.close());

describe('verifyAuthCertificate (MESS_07)', () => {
  it('a registered, good certificate presented over TLS: the server it belongs to, on both sides', async () => {
    const { atClient, atServer } = await handshake(ss1, ss2);
    expect(atClient?.[0]?.equals(ss1.cert)).toBe(true);
    const provider = verifyAuthCertificate({ conf, chain: atClient, serviceProvider: PROVIDER, ocspResponses: await ocspFor(ss1.cert) });
    expect(provider.serverId).toEqual(SS1);
    expect(provider.server.address).toBe('127.0.0.1');
    expect(provider.path.certs).toHaveLength(3);
    const client = verifyAuthCertificate({ conf, chain: atServer, client: CLIENT, ocspResponses: await ocspFor(ss2.cert) });
    expect(client.serverId.serverCode).toBe('ss2');
    // The owner member itself is served by its own server too.
    expect(verifyAuthCertificate({ conf, chain: atClient, serviceProvider: parseClientId('LOCAL/COM/1111'), ocspResponses: await ocspFor(ss1.cert) }).serverId).toEqual(SS1);
  });

  it('no certificate, no session, a broken certificate: the seed texts, SslAuthenticationFailed', async () => {
    const { atServer } = await handshake(ss1);
    expect(atServer).toEqual([]);
    const cases: [Buffer[] | undefined, string][] = [
      [[], AUTH_TEXTS.noUsableCert],
      [[Buffer.from('not a certificate')], 'Service provider did not send correct authentication certificate'],
      [undefined, 'Could not get peer certificates from context'],
    ];
    for (const [chain, text] of cases) {
      expect(() => verifyAuthCertificate({ conf, chain, serviceProvider: PROVIDER, ocspResponses: [] })).toThrowError(expect.objectContaining({ code: 'SslAuthenticationFailed', message: text, faultCode: 'Server.ClientProxy.SslAuthenticationFailed' }));
    }
    expect(() => verifyAuthCertificate({ conf, chain: atServer, client: CLIENT, ocspResponses: [] })).toThrowError(expect.objectContaining({ code: 'SslAuthenticationFailed', faultCode: 'Server.ServerProxy.SslAuthenticationFailed' }));
    // A plain TCP socket has no TLS session to ask.
    const tcp = createServer();
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const plain = netConnect((tcp.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => plain.once('connect', r));
    expect(peerCertificateChain(plain as unknown as TLSSocket)).toBeUndefined();
    plain.destroy();
    await new Promise<void>((r) => tcp.close(() => r()));
  });

  it('a certificate of a CA the configuration does not approve', async () => {
    const stranger = createRootCa([['CN', 'Stranger CA']]);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cert = issueCertificate(stranger, encodeDn([['CN', 'stranger-peer']]), publicKey.export({ type: 'spki', format: 'der' }), { keyUsage: ['digitalSignature'] });
    const { atClient } = await handshake({ key: privateKey, cert });
    expect(() => verifyAuthCertificate({ conf, chain: atClient, serviceProvider: PROVIDER, ocspResponses: [] })).toThrowError(
      expect.objectContaining({ code: 'SslAuthenticationFailed', message: 'Certificate is not issued by approved certification service provider' }),
    );
  });

  it('a signing certificate is no authentication certificate', async () => {
    const signing = issue('sign');
    expect(() => verifyAuthCertificate({ conf, chain: [signing.cert, ca], serviceProvider: PROVIDER, ocspResponses: [] })).toThrowError(
      expect.objectContaining({ code: 'SslAuthenticationFailed', message: 'Peer certificate is not an authentication certificate' }),
    );
  });

  it('OCSP: revoked is CertValidation under SslAuthenticationFailed.InvalidCertPath; a missing response is named', async () => {
    const doomed = issue('auth', 'LOCAL/COM/1111/ss1');
    const good = await ocspFor(doomed.cert);
    const fresh = loadGlobalConf(pki.globalConfDir);
    expect(verifyAuthCertificate({ conf: fresh, chain: [doomed.cert, ca], serviceProvider: PROVIDER, ocspResponses: good }).serverId).toEqual(SS1);
    pki.revoke(doomed.cert);
    const revoked = await ocspFor(doomed.cert);
    let error: unknown;
    try {
      verifyAuthCertificate({ conf: fresh, chain: [doomed.cert, ca], serviceProvider: PROVIDER, ocspResponses: revoked });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'CertValidation', fullCode: 'SslAuthenticationFailed.InvalidCertPath.CertValidation', message: expect.stringMatching(/^OCSP response indicates certificate status is REVOKED/) });
    expect(() => verifyAuthCertificate({ conf, chain: [ss1.cert, ca], serviceProvider: PROVIDER, ocspResponses: good.slice(1) })).toThrowError(
      expect.objectContaining({ code: 'CertValidation', message: expect.stringMatching(/^Unable to find OCSP response for certificate .*CN=ss1/) }),
    );
  });

  it('registration: not registered at all, or for a server that does not serve the party', async () => {
    const [unregisteredOcsp, ss1Ocsp] = [await ocspFor(unregistered.cert), await ocspFor(ss1.cert)];
    expect(() => verifyAuthCertificate({ conf, chain: [unregistered.cert, ca], serviceProvider: PROVIDER, ocspResponses: unregisteredOcsp })).toThrowError(
      expect.objectContaining({ code: 'SslAuthenticationFailed', message: expect.stringMatching(/^Authentication certificate SERIALNUMBER=LOCAL\/other\/COM, CN=other, O=1111 is not associated with any security server$/) }),
    );
    expect(() => verifyAuthCertificate({ conf, chain: [ss1.cert, ca], serviceProvider: CLIENT, ocspResponses: ss1Ocsp })).toThrowError(
      expect.objectContaining({ code: 'SslAuthenticationFailed', message: "Client 'SUBSYSTEM:LOCAL/COM/2222/CLIENT' is not registered at security server SERVER:LOCAL/COM/1111/ss1" }),
    );
    expect(() => verifyAuthCertificate({ conf, chain: [ss1.cert, ca], serviceProvider: PROVIDER, expectedServer: parseSecurityServerId('LOCAL/COM/2222/ss2'), ocspResponses: ss1Ocsp })).toThrowError(
      expect.objectContaining({ code: 'SslAuthenticationFailed', message: expect.stringContaining('SERVER:LOCAL/COM/1111/ss1') }),
    );
  });

  it('server side: the client must send its OCSP responses with the request', () => {
    expect(() => verifyAuthCertificate({ conf, chain: [ss2.cert, ca], client: CLIENT, ocspResponses: [] })).toThrowError(
      expect.objectContaining({ code: 'SslAuthenticationFailed', message: 'Cannot verify TLS certificate, corresponding OCSP response is missing', faultCode: 'Server.ServerProxy.SslAuthenticationFailed' }),
    );
  });
});

describe('OCSP responses from the peer (MESS_05 steps 5–6)', () => {
  it('fetchPeerOcspResponses asks a real endpoint and gets what it has, in order', async () => {
    const [leafResponse, caResponse] = await ocspFor(ss1.cert);
    const endpoint = await peerEndpoint([{ cert: ss1.cert, der: leafResponse! }, { cert: ca, der: caResponse! }]);
    try {
      const got = await fetchPeerOcspResponses('127.0.0.1', [ss1.cert, ss2.cert, ca], { port: endpoint.port });
      expect(got.map((r) => r.toString('base64'))).toEqual([leafResponse!.toString('base64'), caResponse!.toString('base64')]);
    } finally {
      await endpoint.close();
    }
    // And startOcspEndpoint, the server proxy's own, answers it just the same.
    const cache = clientCache();
    cache.set([{ certSha1: certSha1(ss1.cert), der: leafResponse! }]);
    const server = await startOcspEndpoint(cache, '127.0.0.1', 0);
    try {
      expect(await fetchPeerOcspResponses('127.0.0.1', [ss1.cert], { port: (server.address() as AddressInfo).port })).toHaveLength(1);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a peer that does not answer in time, or not at all: NetworkError', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      // The cause says which bound ended the call: the 300 ms deadline given, not the default 10 s.
      await expect(fetchPeerOcspResponses('127.0.0.1', [ss1.cert], { port: (silent.address() as AddressInfo).port, timeoutMs: 300 })).rejects.toMatchObject({ code: 'NetworkError', cause: { code: 'ResponseTimeout', details: { timeoutMs: 300 } } });
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
    await expect(fetchPeerOcspResponses('127.0.0.1', [ss1.cert], { port: await freePort() })).rejects.toMatchObject({ code: 'NetworkError' });
  });
});

describe('OCSP responses from a hostile peer', () => {
  it('a peer trickling its OCSP answer is cut off at the deadline; one flooding it, at 1 MiB', async () => {
    const trickler = await startTrickler('multipart/related; boundary=b');
    const flooder = await startFlooder('multipart/related; boundary=b', 100 * 1024 * 1024);
    try {
      const portOf = (s: HostileServer) => Number(new URL(s.base).port);
      await expect(fetchPeerOcspResponses('127.0.0.1', [ss1.cert], { port: portOf(trickler), timeoutMs: 300 })).rejects.toMatchObject({ code: 'NetworkError', cause: { code: 'ResponseTimeout' } });
      await expect(fetchPeerOcspResponses('127.0.0.1', [ss1.cert], { port: portOf(flooder) })).rejects.toMatchObject({ code: 'NetworkError', cause: { code: 'ResponseTooLarge', details: { limit: 1024 * 1024 } } });
    } finally {
      await Promise.all([trickler.close(), flooder.close()]);
    }
  });
});

describe('PeerAuthenticator', () => {
  it('client side: missing responses come from the peer, are cached, and the verified peer is kept', async () => {
    const [leafResponse, caResponse] = await ocspFor(ss1.cert);
    const endpoint = await peerEndpoint([{ cert: ss1.cert, der: leafResponse! }, { cert: ca, der: caResponse! }]);
    const cache = clientCache();
    let current = conf;
    const peers = new PeerAuthenticator({ conf: () => current, ocsp: ocspCacheStore(cache), fetch: { port: endpoint.port } });
    try {
      const { atClient } = await handshake(ss1, ss2);
      const [first, second] = await Promise.all([peers.verifyProvider(atClient, PROVIDER), peers.verifyProvider(atClient, PROVIDER)]);
      expect(first.serverId).toEqual(SS1);
      expect(second).toBe(first);
      expect(endpoint.hits()).toBe(1);
      expect(cache.get(certSha1(ss1.cert))?.der.equals(leafResponse!)).toBe(true);
      expect(cache.get(certSha1(ca))?.der.equals(caResponse!)).toBe(true);
      expect(await peers.verifyProvider(atClient, PROVIDER)).toBe(first);
      expect(endpoint.hits()).toBe(1);
      // Another provider on the same connection is checked on its own.
      await expect(peers.verifyProvider(atClient, CLIENT)).rejects.toMatchObject({ message: expect.stringMatching(/^Client 'SUBSYSTEM:LOCAL\/COM\/2222\/CLIENT' is not registered/) });

      // A new configuration in which ss1 no longer has this certificate: checked again, refused.
      const own = conf.own;
      const confDir = mkdtempSync(join(dir, 'conf-'));
      writeGlobalConf(confDir, { ...own, securityServers: own.securityServers.map((s) => ({ ...s, authCertHashes: [] })) }, conf.privateParams);
      current = loadGlobalConf(confDir);
      await expect(peers.verifyProvider(atClient, PROVIDER)).rejects.toMatchObject({ code: 'SslAuthenticationFailed', message: expect.stringMatching(/is not associated with any security server$/) });
      current = conf;
      expect((await peers.verifyProvider(atClient, PROVIDER)).serverId).toEqual(SS1);
    } finally {
      await endpoint.close();
      cache.close();
    }
  });

  it('client side: a verified peer is kept only for its time', async () => {
    let now = Date.now();
    const cache = clientCache();
    cache.set([{ certSha1: certSha1(ss1.cert), der: (await ocspFor(ss1.cert))[0]! }, { certSha1: certSha1(ca), der: (await ocspFor(ss1.cert))[1]! }]);
    let reads = 0;
    const store = ocspCacheStore(cache);
    const peers = new PeerAuthenticator({ conf: () => conf, ocsp: { get: (h) => (reads++, store.get(h)), set: store.set }, ttlMs: 1000, now: () => new Date(now) });
    await peers.verifyProvider([ss1.cert, ca], PROVIDER);
    await peers.verifyProvider([ss1.cert, ca], PROVIDER);
    expect(reads).toBe(1);
    now += 1500;
    await peers.verifyProvider([ss1.cert, ca], PROVIDER);
    expect(reads).toBe(2);
    cache.close();
  });

  it('client side: the peer has only some of the responses, or its certificate is not registered', async () => {
    const [leafResponse] = await ocspFor(ss1.cert);
    const endpoint = await peerEndpoint([{ cert: ss1.cert, der: leafResponse! }]);
    try {
      const peers = new PeerAuthenticator({ conf: () => conf, ocsp: ocspCacheStore(clientCache()), fetch: { port: endpoint.port } });
      await expect(peers.verifyProvider([ss1.cert, ca], PROVIDER)).rejects.toMatchObject({
        code: 'SslAuthenticationFailed',
        faultCode: 'Server.ClientProxy.SslAuthenticationFailed',
        message: 'Could not get all OCSP responses from server (expected 2, but got 1)',
      });
      const serial = BigInt(`0x${new X509Certificate(unregistered.cert).serialNumber}`).toString(10);
      await expect(peers.verifyProvider([unregistered.cert, ca], PROVIDER)).rejects.toMatchObject({
        code: 'UnknownMember',
        fullCode: 'SslAuthenticationFailed.UnknownMember',
        message: `Unable to find provider address for authentication certificate ${serial} (service provider: SUBSYSTEM:LOCAL/COM/1111/PROVIDER)`,
      });
      expect(endpoint.hits()).toBe(1);
    } finally {
      await endpoint.close();
    }
    // The peer's endpoint is down.
    const peers = new PeerAuthenticator({ conf: () => conf, ocsp: ocspCacheStore(clientCache()), fetch: { port: await freePort(), timeoutMs: 2000 } });
    await expect(peers.verifyProvider([ss1.cert, ca], PROVIDER)).rejects.toMatchObject({ code: 'NetworkError', fullCode: 'SslAuthenticationFailed.NetworkError' });
  });

  it('server side: the OCSP parts of the request, and our own for the requests we send', async () => {
    const cache = clientCache();
    const own = await ocspFor(ss2.cert);
    cache.set([{ certSha1: certSha1(ss2.cert), der: own[0]! }, { certSha1: certSha1(ca), der: own[1]! }]);
    // What the client proxy sends with its requests, in the order of its path.
    const parts = await ownAuthOcspResponses(conf, ss2.cert, [ca], ocspCacheStore(cache));
    expect(parts.map((p) => p.toString('base64'))).toEqual(own.map((p) => p.toString('base64')));
    await expect(ownAuthOcspResponses(conf, ss1.cert, [ca], ocspCacheStore(cache))).rejects.toMatchObject({ code: 'CertValidation', message: expect.stringMatching(/^Could not get OCSP responses for certificates \(.*CN=ss1/) });

    const { atServer } = await handshake(ss1, ss2);
    const peers = new PeerAuthenticator({ conf: () => conf, ocsp: ocspCacheStore(cache) });
    const peer = peers.verifyClient(atServer, CLIENT, parts);
    expect(peer.serverId.serverCode).toBe('ss2');
    // Kept: the next request on the connection needs no OCSP parts checked again.
    expect(peers.verifyClient(atServer, CLIENT, [])).toBe(peer);
    expect(() => peers.verifyClient(atServer, PROVIDER, parts)).toThrowError(expect.objectContaining({ message: "Client 'SUBSYSTEM:LOCAL/COM/1111/PROVIDER' is not registered at security server SERVER:LOCAL/COM/2222/ss2" }));
    cache.close();
  });
});
