/**
 * End to end through two security servers of the local instance (issue 5's proofs): each server
 * has its own SoftHSM token, signer daemon and proxy process; the information systems are curl
 * (seed 003's commands as written) and Node's HTTPS client; containers are checked with the CLI.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import https from 'node:https';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { firstCalls, getRandomRequest } from '../../src/dev/localinstance/first-calls.ts';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { writeGlobalConf } from '../../src/globalconf/writer.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import type { ReceivedRequest } from '../../src/dev/testservices/test-services.ts';
import { eventually } from '../support/eventually.ts';
import { BOOT_TIMEOUT_MS, recordServiceRequests, sharedLocalInstance, sharedProxyArg } from '../support/shared-instance.ts';

const run = promisify(execFile);
const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');

let instance: LocalInstance;
let isDir: string;
/** The proxies' message size limit, from the test file that boots the instance (with `--timestamping-interval 1`). */
let MAX_MESSAGE_BYTES: number;
const received: ReceivedRequest[] = [];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A call to ss2's client proxy as an information system with a TLS client certificate. */
function call(path: string, options: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; as?: 'client' | 'other' | 'none' } = {}): Promise<Answer> {
  const is = options.as === 'other' ? instance.otherIs : instance.clientIs;
  const tls = options.as === 'none' ? {} : { cert: readFileSync(is.certFile), key: readFileSync(is.keyFile) };
  return new Promise((resolvePromise, reject) => {
    // The path goes as written (a URL string would be normalised by the client).
    const base = new URL(instance.consumer.httpsUrl);
    const req = https.request({ host: base.hostname, port: base.port, path, method: options.method ?? 'GET', headers: options.headers, rejectUnauthorized: false, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error('timeout')));
    req.end(options.body);
  });
}

const soapCall = (id: string, client = '2222/CLIENT', as: 'client' | 'other' = 'client') =>
  call('/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: getRandomRequest(instance, client, id), as });
const restPath = (service = 'rest-test/random') => `/r1/${instance.pki.instance}/COM/1111/PROVIDER/${service}`;
const faultCode = (xml: string) => /<faultcode>([^<]*)<\/faultcode>/.exec(xml)?.[1];
const faultString = (xml: string) => /<faultstring>([^<]*)<\/faultstring>/.exec(xml)?.[1];

beforeAll(async () => {
  instance = await sharedLocalInstance();
  recordServiceRequests(received);
  MAX_MESSAGE_BYTES = Number(sharedProxyArg('--max-message-bytes'));
  isDir = join(instance.dir, 'is');
  writeFileSync(join(isDir, 'getRandom.xml'), getRandomRequest(instance, '2222/CLIENT', 'seed-003'));
}, BOOT_TIMEOUT_MS);

describe('information systems at the client proxy (seed 003)', () => {
  it("seed 003's curl command with the client certificate gets getRandom's answer through both servers", async () => {
    const { stdout } = await run('curl', ['-s', '-E', './clientcert.pem', '--key', './clientprivatekey.pem', '-k', '-d', '@getRandom.xml', '--header', 'Content-Type: text/xml', '-X', 'POST', `${instance.consumer.httpsUrl}/`], { cwd: isDir });
    expect(stdout).toMatch(/<[\w:]*data>\d{1,3}<\/[\w:]*data>/);
    expect(stdout).toContain('<id:memberCode>2222</id:memberCode>');
    expect(stdout).toMatch(/requestHash algorithmId="http:\/\/www.w3.org\/2001\/04\/xmlenc#sha512">[A-Za-z0-9+/=]{88}</);
  });

  it("xrd local start's first calls are answered through both servers, by a bounded client that accepts only ss2's internal certificate", async () => {
    const [soap, rest] = await firstCalls(instance, join(isDir, 'getRandom.xml'));
    expect([soap!.name, soap!.status, rest!.name, rest!.status]).toEqual(['SOAP getRandom', 200, 'REST rest-test/random', 200]);
    expect(soap!.body).toMatch(/<[\w:]*data>\d{1,3}<\/[\w:]*data>/);
  });

  it('the same call without a certificate gets the SslAuthenticationFailed fault', async () => {
    const { stdout } = await run('curl', ['-s', '-k', '-d', '@getRandom.xml', '--header', 'Content-Type: text/xml', '-X', 'POST', `${instance.consumer.httpsUrl}/`], { cwd: isDir });
    expect(faultCode(stdout)).toBe('Server.ClientProxy.SslAuthenticationFailed');
    expect(faultString(stdout)).toBe('Client (SUBSYSTEM:LOCAL/COM/2222/CLIENT) specifies HTTPS but did not supply TLS certificate');
  });

  it('plain HTTP to a client with connection type HTTPS is refused the same way', async () => {
    const { stdout } = await run('curl', ['-s', '-d', '@getRandom.xml', '--header', 'Content-Type: text/xml', `${instance.consumer.httpUrl}/`], { cwd: isDir });
    expect(faultCode(stdout)).toBe('Server.ClientProxy.SslAuthenticationFailed');
  });

  it('one organisation cannot call through another organisation’s subsystem on the shared server', async () => {
    const soap = await soapCall('cross-org', '2222/CLIENT', 'other');
    expect(faultString(soap.body)).toBe('Client (SUBSYSTEM:LOCAL/COM/2222/CLIENT) TLS certificate does not match any IS certificates');
    const rest = await call(restPath(), { as: 'other', headers: { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT' } });
    expect(rest.status).toBe(500);
    expect(rest.headers['x-road-error']).toBe('Server.ClientProxy.SslAuthenticationFailed');
  });

  it('a subsystem the service does not allow is refused by the provider’s server', async () => {
    const rest = await call(restPath(), { as: 'other', headers: { 'X-Road-Client': 'LOCAL/COM/3333/OTHER' } });
    expect(rest.headers['x-road-error']).toBe('Server.ServerProxy.AccessDenied');
    expect(JSON.parse(rest.body)).toMatchObject({ type: 'Server.ServerProxy.AccessDenied', message: 'Request is not allowed: SERVICE:LOCAL/COM/1111/PROVIDER/rest-test' });
  });
});

describe('REST and the shared-subsystem extensions (seed 004)', () => {
  it('X-Road-Represented-Party and Authorization: Bearer reach the provider intact, and the response carries the X-Road headers', async () => {
    received.length = 0;
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJuYW1lIjoiVGVzdCJ9';
    const answer = await call(`${restPath('rest-test/hello')}?name=Seed004`, {
      headers: { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT', 'X-Road-Represented-Party': 'MUN/0000000-0', Authorization: `Bearer ${token}`, Accept: 'application/json' },
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ greeting: 'Hello Seed004! Greetings from adapter server!' });
    expect(answer.headers['x-road-client']).toBe('LOCAL/COM/2222/CLIENT');
    expect(answer.headers['x-road-service']).toBe('LOCAL/COM/1111/PROVIDER/rest-test');
    expect(answer.headers['x-road-request-hash']).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    const atProvider = received.find((r) => r.url.includes('Seed004'));
    expect(atProvider?.headers['x-road-represented-party']).toBe('MUN/0000000-0');
    expect(atProvider?.headers.authorization).toBe(`Bearer ${token}`);
    expect(atProvider?.headers['x-road-client']).toBe('LOCAL/COM/2222/CLIENT');
  });

  it('attack: a second X-Road-Client is refused, and a forged X-Road-Service never reaches the provider', async () => {
    received.length = 0;
    const twice = await call(restPath('rest-test/hello'), { headers: { 'X-Road-Client': ['LOCAL/COM/2222/CLIENT', 'LOCAL/COM/3333/OTHER'] } });
    expect(twice.status).toBe(400);
    expect(JSON.parse(twice.body)).toMatchObject({ type: 'Client.DuplicateHeaderField' });
    expect(received).toEqual([]);

    const forged = await call(`${restPath('rest-test/hello')}?name=Forged`, { headers: { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT', 'X-Road-Service': 'LOCAL/COM/3333/OTHER/rest-test' } });
    expect(forged.status).toBe(200);
    expect(received.find((r) => r.url.includes('Forged'))?.headers['x-road-service']).toBe('LOCAL/COM/1111/PROVIDER/rest-test');
  });

  it('attack: a SOAP request carrying xrd:requestHash, to be archived as if it were a response, is refused', async () => {
    const body = getRandomRequest(instance, '2222/CLIENT', 'q-hash').replace('</SOAP-ENV:Header>', '<xrd:requestHash algorithmId="http://www.w3.org/2001/04/xmlenc#sha512">AAAA</xrd:requestHash></SOAP-ENV:Header>');
    const answer = await call('/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body });
    expect(faultCode(answer.body)).toBe('Client.InvalidSoap');
  });

  it('a POST body travels as the signed REST body', async () => {
    received.length = 0;
    const body = JSON.stringify({ username: 'randomuser123' });
    const answer = await call(restPath('rest-test/random'), { method: 'POST', headers: { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT', 'content-type': 'application/json' }, body });
    // The test service answers POST there with 404: the provider's status comes back as it was.
    expect(answer.status).toBe(404);
    expect(answer.headers['x-road-request-hash']).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(received.at(-1)?.body.toString()).toBe(body);
  });

  it('X-Road-Security-Server picks the provider’s server; another one is refused (pr-rest, AbstractClientMessageProcessor)', async () => {
    const headers = (server: string) => ({ 'X-Road-Client': 'LOCAL/COM/2222/CLIENT', 'X-Road-Security-Server': server });
    expect((await call(restPath(), { headers: headers('LOCAL/COM/1111/ss1') })).status).toBe(200);
    const wrong = await call(restPath(), { headers: headers('LOCAL/COM/2222/ss2') });
    expect(wrong.status).toBe(500);
    expect(wrong.headers['x-road-error']).toBe('Server.ClientProxy.InvalidSecurityServer');
  });

  it('an information system without X-Road-Id gets one in the reference’s form, <instance>-<UUID>, and the provider sees x-road-request-id', async () => {
    received.length = 0;
    const answer = await call(restPath(), { headers: { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT' } });
    expect(answer.headers['x-road-id']).toMatch(/^LOCAL-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(received.at(-1)?.headers['x-road-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.headers['x-road-request-id']).toBe(received.at(-1)?.headers['x-road-request-id']);
  });
});

describe('message log and timestamps (MESS_09–10)', () => {
  it('both directions are logged on both servers, get a timestamp and export to containers that asic verify accepts', async () => {
    const id = `logged-${Date.now()}`;
    const answer = await soapCall(id);
    expect(answer.body).toMatch(/data>\d+</);
    for (const server of [instance.consumer, instance.provider]) {
      const db = join(server.proxyDataDir, 'messagelog.db');
      const out = join(instance.dir, `export-${server.address}`);
      mkdirSync(out, { recursive: true });
      // The timestamper runs every second here; export refuses unstamped records until then.
      let exported: { stdout: string } | undefined;
      for (let i = 0; i < 60 && !exported; i++) {
        exported = await run(process.execPath, [XRD, 'asic', 'export', id, '--db', db, '--out', out, '--json']).catch(() => undefined);
        if (!exported) await new Promise((r) => setTimeout(r, 500));
      }
      expect(exported, `containers from ${db}`).toBeDefined();
      const files = readdirSync(out).filter((f) => f.endsWith('.asice'));
      expect(files.some((f) => f.includes('-request-'))).toBe(true);
      expect(files.some((f) => f.includes('-response-'))).toBe(true);
      for (const file of files) {
        const { stdout } = await run(process.execPath, [XRD, 'asic', 'verify', join(out, file), '--conf', instance.pki.globalConfDir, '--json']);
        const result = JSON.parse(stdout);
        expect(result.signer.id).toBe(file.includes('-request-') ? 'LOCAL/COM/2222/CLIENT' : 'LOCAL/COM/1111/PROVIDER');
        expect(result.timestamp).toBeDefined();
      }
    }
  });
});

describe('operational monitoring (MESS_16)', () => {
  it('each exchange is a record on both servers, queryable as JSON, and counted in /metrics with the signer’s token state', async () => {
    const id = `monitored-${Date.now()}`;
    await soapCall(id);
    for (const [server, type] of [[instance.consumer, 'Client'], [instance.provider, 'Producer']] as const) {
      // The monitoring port answers the server's administrators only (docs/opmonitor.md "Access").
      const init = { headers: { Authorization: `X-Road-ApiKey token=${instance.apiKeyOf(server)}` } };
      expect((await fetch(`${server.monitoringUrl}/opmonitor`)).status).toBe(401);
      const { records } = (await (await fetch(`${server.monitoringUrl}/opmonitor?client=LOCAL/COM/2222/CLIENT&from=${Date.now() - 60_000}`, init)).json()) as { records: Record<string, unknown>[] };
      const record = records.find((r) => r.messageId === id);
      expect(record).toMatchObject({ securityServerType: type, succeeded: true, serviceCode: 'getRandom', clientSubsystemCode: 'CLIENT', serviceMemberCode: '1111', serviceType: 'WSDL' });
      expect(record!.requestSize).toBeGreaterThan(500);
      const metrics = await (await fetch(`${server.monitoringUrl}/metrics`, init)).text();
      expect(metrics).toMatch(new RegExp(`xrd_proxy_requests_total\\{direction="${type === 'Client' ? 'outbound' : 'inbound'}",protocol="soap",service="LOCAL/COM/1111/PROVIDER/getRandom",result="success"\\} [1-9]`));
      expect(metrics).toMatch(/xrd_signer_token_active\{token="[^"]+"\} 1/);
    }
  });
});

describe('faults', () => {
  it('malformed XML, an unknown service, and an oversized message each get their code', async () => {
    const malformed = await call('/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<SOAP-ENV:Envelope><unclosed>' });
    expect(faultCode(malformed.body)).toBe('Client.InvalidSoap');
    const unknown = await call('/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: getRandomRequest(instance).replace('getRandom</id:serviceCode>', 'getRandomNoSuchService</id:serviceCode>').replace('<prod:getRandom/>', '<prod:getRandomNoSuchService/>') });
    expect(faultCode(unknown.body)).toBe('Server.ServerProxy.UnknownService');
    // The Body's element must be named for the service code (SoapUtils.validateServiceName).
    const misnamed = await call('/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: getRandomRequest(instance).replace('getRandom</id:serviceCode>', 'noSuchService</id:serviceCode>') });
    expect(faultCode(misnamed.body)).toBe('Client.InconsistentHeaders');
    const big = getRandomRequest(instance).replace('<prod:getRandom/>', `<prod:getRandom>${'x'.repeat(MAX_MESSAGE_BYTES)}</prod:getRandom>`);
    const oversized = await call('/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: big });
    expect(faultCode(oversized.body)).toBe('Client.MessageTooLarge');
    const wrongVersion = await call('/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: getRandomRequest(instance).replace('>4.0<', '>3.1<') });
    expect(faultCode(wrongVersion.body)).toBe('Client.InvalidProtocolVersion');
  });

  it('the proxies hold no key: no PKCS#11 module in their memory, no PIN in their environment or arguments, yet their handshakes work', () => {
    const pids = instance.pids();
    for (const server of [instance.provider, instance.consumer]) {
      const pid = pids[`${server.serverId} proxy`]!;
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
      expect(maps).toContain('xrd-signer-engine.so');
      expect(maps).not.toMatch(/softhsm|pkcs11/i);
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      for (const s of [instance.provider, instance.consumer]) {
        expect(environ).not.toContain(instance.pinOf(s));
        expect(cmdline).not.toContain(instance.pinOf(s));
      }
    }
    // The signers, in contrast, have the module loaded.
    expect(readFileSync(`/proc/${pids[`${instance.consumer.serverId} signer`]}/maps`, 'utf8')).toMatch(/softhsm/i);
  });

  it('a REST path with dot segments is refused before it could reach beyond the service', async () => {
    const answer = await call(`${restPath('rest-test')}/%2e%2e/random`, { headers: { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT' } });
    expect(answer.headers['x-road-error']).toBe('Client.InvalidRequest');
  });

  it('attack: encoded backslashes and double-encoded dots are refused; an encoded slash reaches the provider as sent, as through a reference server', async () => {
    const headers = { 'X-Road-Client': 'LOCAL/COM/2222/CLIENT' };
    for (const path of ['/x%5C..%5Crandom', '/%252e%252e/random']) {
      const answer = await call(`${restPath('rest-test')}${path}`, { headers });
      expect(answer.headers['x-road-error'], path).toBe('Client.InvalidRequest');
    }
    received.length = 0;
    await call(`${restPath('rest-test')}/hello%2Fworld?name=Slash`, { headers });
    expect(received.find((r) => r.url.includes('Slash'))?.url).toMatch(/\/hello%2Fworld\?name=Slash$/);
  });

  it('token logged out: a coded fault; logged in again: calls work', async () => {
    const signer = await SignerClient.connect(instance.consumer.signerSocket);
    try {
      await signer.call('deactivateToken', { token: instance.consumer.tokenId });
      const out = await soapCall('logged-out');
      expect(faultCode(out.body)).toBe('Server.ClientProxy.CannotCreateSignature.TokenNotActive');
      await signer.call('activateToken', { token: instance.consumer.tokenId, pin: instance.pinOf(instance.consumer) });
      expect((await soapCall('logged-in')).body).toMatch(/data>\d+</);
    } finally {
      signer.close();
    }
  });

  it("provider's token logged out: its response cannot be signed, and new mutual TLS handshakes fail; logged in: calls work", async () => {
    const signer = await SignerClient.connect(instance.provider.signerSocket);
    try {
      await signer.call('deactivateToken', { token: instance.provider.tokenId });
      // The pooled connection still stands; the provider's server cannot sign its response.
      expect(faultCode((await soapCall('provider-logged-out')).body)).toBe('Server.ServerProxy.CannotCreateSignature.TokenNotActive');
      // A fresh client proxy must handshake: the provider's half of it needs its HSM-held auth key.
      await instance.stopProxy(instance.consumer);
      await instance.startProxy(instance.consumer);
      const handshake = await soapCall('provider-handshake');
      expect(faultCode(handshake.body)).toBe('Server.ClientProxy.SslAuthenticationFailed');
      expect(faultString(handshake.body)).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed/);
      await signer.call('activateToken', { token: instance.provider.tokenId, pin: instance.pinOf(instance.provider) });
      expect((await soapCall('provider-logged-in')).body).toMatch(/data>\d+</);
    } finally {
      signer.close();
    }
  });

  it('signer down: a coded fault; signer back: calls work', async () => {
    await instance.stopSigner(instance.consumer);
    const out = await soapCall('signer-down');
    expect(faultCode(out.body)).toMatch(/^Server\.ClientProxy\.(CannotCreateSignature\.)?NetworkError$/);
    await instance.startSigner(instance.consumer);
    expect((await soapCall('signer-back')).body).toMatch(/data>\d+</);
  });

  it("provider's server down: NetworkError; back: calls work", async () => {
    await instance.stopProxy(instance.provider);
    const out = await soapCall('provider-down');
    expect(faultCode(out.body)).toBe('Server.ClientProxy.NetworkError');
    await instance.startProxy(instance.provider);
    expect((await soapCall('provider-back')).body).toMatch(/data>\d+</);
  });

  it('OCSP responder and TSA down: cached OCSP responses still fresh keep calls working', async () => {
    await instance.stopPkiServices();
    try {
      for (let i = 0; i < 3; i++) expect((await soapCall(`pki-down-${i}`)).body).toMatch(/data>\d+</);
    } finally {
      await instance.startPkiServices();
    }
  });

  it('OCSP responder down and cached responses gone stale: a coded fault instead of a signature nobody can trust', async () => {
    const conf = loadGlobalConf(instance.pki.globalConfDir);
    await instance.stopPkiServices();
    try {
      writeGlobalConf(instance.pki.globalConfDir, { ...conf.own, ocspFreshnessSeconds: 1 }, conf.privateParams);
      await new Promise((r) => setTimeout(r, 2500));
      const stale = await soapCall('ocsp-stale');
      expect(faultCode(stale.body)).toBe('Server.ClientProxy.CertValidation');
      expect(faultString(stale.body)).toMatch(/^OCSP response is too old/);
    } finally {
      writeGlobalConf(instance.pki.globalConfDir, conf.own, conf.privateParams);
      await instance.startPkiServices();
    }
    // Fresh responses are fetched again in the background: answered once they are, not after a set time.
    await eventually(async () => (/data>\d+</.test((await soapCall('ocsp-fresh-again')).body) ? true : undefined), 60_000, 'calls answered again with fresh OCSP responses');
  });

  it('kill -9 of a proxy under load loses no record it answered for', async () => {
    const answered: string[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const id = `load-${w}-${i}`;
        const answer = await soapCall(id).catch(() => undefined);
        if (answer && /data>\d+</.test(answer.body)) answered.push(id);
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    const deadline = Date.now() + 30_000;
    while (answered.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(answered.length).toBeGreaterThanOrEqual(40);
    await instance.stopProxy(instance.consumer, 'SIGKILL');
    stop = true;
    await Promise.all(workers);
    const db = new Database(join(instance.consumer.proxyDataDir, 'messagelog.db'), { readonly: true });
    try {
      const logged = new Set((db.prepare('SELECT query_id, is_response FROM message_record').all() as { query_id: string; is_response: number }[]).map((r) => `${r.query_id}/${r.is_response}`));
      const lost = answered.filter((id) => !logged.has(`${id}/0`) || !logged.has(`${id}/1`));
      expect(lost).toEqual([]);
    } finally {
      db.close();
    }
    await instance.startProxy(instance.consumer);
    expect((await soapCall('after-kill')).body).toMatch(/data>\d+</);
  });

  it('a proxy killed with kill -9 behind the local instance’s back is started again and serves', async () => {
    const name = `${instance.consumer.serverId} proxy`;
    const killed = instance.pids()[name]!;
    process.kill(killed, 'SIGKILL');
    // The first restart comes 0.5 s after the death; the new process then starts as any other.
    const restarted = await eventually(async () => {
      const pid = instance.pids()[name];
      return pid !== undefined && pid !== killed && /data>\d+</.test((await soapCall('after-restart')).body) ? pid : undefined;
    }, 60_000, 'the proxy back, serving');
    expect(readFileSync(`/proc/${restarted}/cmdline`, 'utf8')).toContain('proxy\0start');
  });
});

describe('files on disk', () => {
  it('another local user can read none of the files the servers wrote — databases and their WAL, keys, logs, configuration — only certificates and devices.ini', async () => {
    await soapCall('files-written');
    const open: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (e.isDirectory()) walk(path);
        else if (e.isFile() && (statSync(path).mode & 0o077) !== 0) open.push(path);
      }
    };
    for (const s of [instance.provider, instance.consumer]) walk(s.dir);
    expect(open.filter((p) => !/\.crt$/.test(p) && !p.endsWith('/devices.ini'))).toEqual([]);
    // The files this is about are there to be checked.
    for (const f of ['messagelog.db', 'messagelog.db-wal', 'opmonitor.db', 'opmonitor.db-wal', 'serverconf.db', 'serverconf.db-wal']) {
      expect(statSync(join(instance.consumer.proxyDataDir, f)).mode & 0o777, f).toBe(0o600);
    }
  });
});
