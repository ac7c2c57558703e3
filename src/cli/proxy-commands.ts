/**
 * `xrd proxy start` (one security server's proxy process) and `xrd local start` (the complete
 * local instance of the README's main command).
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import semver from 'semver';
import { XrdError } from '../platform/errors.ts';
import { fetchBounded } from '../platform/http-client.ts';
import type { ServerLimits } from '../platform/server-limits.ts';
import type { FaultCodeStyle } from '../protocol/faults.ts';
import { createLogger } from '../platform/logger.ts';
import { startLocalInstance, type LocalInstance } from '../dev/localinstance/local-instance.ts';
import { DEFAULT_PORTS, startSecurityServer } from '../proxy/security-server.ts';
import { ensureInternalTls, importInternalTls } from '../serverconf/internal-tls.ts';

export type CliValues = Record<string, string | boolean | undefined>;

function port(v: string | boolean | undefined, fallback: number): number {
  if (typeof v !== 'string') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new XrdError('InvalidConfiguration', { reason: `not a port or size: ${v}` });
  return n;
}

/**
 * The limits of a server's listeners from its command line, for `xrd proxy start` and `xrd admin
 * start` alike; what is not given keeps the server's default (platform/server-limits.ts).
 * @throws InvalidConfiguration naming the flag whose value is not a positive number
 */
export function serverLimitsOf(values: CliValues): Partial<ServerLimits> {
  const positive = (flag: string, scale: number): number | undefined => {
    const v = values[flag];
    if (typeof v !== 'string') return undefined;
    // Seconds to whole milliseconds; a count as given.
    const n = scale === 1 ? Number(v) : Math.round(Number(v) * scale);
    if (!(Number.isSafeInteger(n) && n > 0)) throw new XrdError('InvalidConfiguration', { reason: `--${flag} must be a positive ${scale === 1 ? 'whole number' : 'number of seconds'}, not ${v}` });
    return n;
  };
  return {
    headersTimeoutMs: positive('headers-timeout-seconds', 1000),
    requestTimeoutMs: positive('request-timeout-seconds', 1000),
    keepAliveTimeoutMs: positive('keep-alive-timeout-seconds', 1000),
    maxConnections: positive('max-connections', 1),
    maxConnectionsPerAddress: positive('max-connections-per-address', 1),
  };
}

/** The flags of serverLimitsOf, for the commands' usage texts. */
export const SERVER_LIMITS_USAGE = '[--headers-timeout-seconds S] [--request-timeout-seconds S] [--keep-alive-timeout-seconds S] [--max-connections N] [--max-connections-per-address N]';

function faultCodeStyle(v: string | boolean | undefined): FaultCodeStyle | undefined {
  if (v === undefined) return undefined;
  if (v === 'camel' || v === 'snake') return v;
  throw new XrdError('InvalidConfiguration', { reason: `--fault-codes must be camel (7.7: Server.ClientProxy.UnknownMember) or snake (7.8: server.clientproxy.unknown_member), not ${String(v)}` });
}

function semverOf(v: string): string {
  const version = semver.valid(v);
  if (!version) throw new XrdError('InvalidConfiguration', { reason: `--min-client-version must be a version such as 7.6.0, not ${v}` });
  return version;
}

export async function proxyStart(values: CliValues, dataDir: string, globalConfDir: string, socketPath: string): Promise<number> {
  const logger = createLogger('proxy');
  const server = await startSecurityServer({
    dataDir,
    globalConfDir,
    signerSocket: socketPath,
    clientAddress: (values['client-address'] as string | undefined) ?? '127.0.0.1',
    serverAddress: (values['server-address'] as string | undefined) ?? '0.0.0.0',
    ports: {
      http: port(values['http-port'], DEFAULT_PORTS.http),
      https: port(values['https-port'], DEFAULT_PORTS.https),
      serverProxy: port(values['server-port'], DEFAULT_PORTS.serverProxy),
      ocsp: port(values['ocsp-port'], DEFAULT_PORTS.ocsp),
      monitoring: port(values['monitoring-port'], DEFAULT_PORTS.monitoring),
      // On the server address, as the reference's health check; 0 picks a free port.
      health: port(values['health-port'], DEFAULT_PORTS.health!),
    },
    healthCacheMs: typeof values['health-cache-ms'] === 'string' ? port(values['health-cache-ms'], 0) : undefined,
    remoteServerPort: port(values['remote-server-port'], DEFAULT_PORTS.serverProxy),
    remoteOcspPort: port(values['remote-ocsp-port'], DEFAULT_PORTS.ocsp),
    // 0 or absent: no limit, as the reference.
    maxMessageBytes: port(values['max-message-bytes'], 0) || undefined,
    maxSoapBytes: typeof values['max-soap-bytes'] === 'string' ? port(values['max-soap-bytes'], 0) : undefined,
    spoolThresholdBytes: typeof values['spool-threshold-bytes'] === 'string' ? port(values['spool-threshold-bytes'], 0) : undefined,
    faultCodes: faultCodeStyle(values['fault-codes']),
    minClientVersion: typeof values['min-client-version'] === 'string' ? semverOf(values['min-client-version']) : undefined,
    recordsAvailableOffsetSeconds: typeof values['opmonitor-records-offset'] === 'string' ? port(values['opmonitor-records-offset'], 0) : undefined,
    timestampingIntervalSeconds: typeof values['timestamping-interval'] === 'string' ? Number(values['timestamping-interval']) : undefined,
    serverLimits: serverLimitsOf(values),
    logger,
  });
  const stop = async (signal: string) => {
    logger.info({ signal }, 'proxy stopping');
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.stdout.write('proxy listening\n');
  return new Promise<number>(() => {
    // Runs until a signal stops it.
  });
}

/**
 * `xrd proxy internal-cert export [--out F]` / `import <pem>`: the certificate information systems
 * see on the client proxy's HTTPS port (seed 003: "Download the internal certificate … Export").
 * A running proxy picks up an imported one at its next start.
 */
export function internalCertCommand(command: string | undefined, rest: string[], values: CliValues, dataDir: string): number {
  const dir = join(dataDir, 'internal-tls');
  const tls = command === 'import' ? importInternalTls(dir, readFileSync(rest[0] ?? '', 'utf8')) : command === 'export' ? ensureInternalTls(dir) : undefined;
  if (!tls) throw new Error('usage: xrd proxy internal-cert export [--out F] | import <cert-and-key.pem>');
  const cert = new X509Certificate(tls.certPem);
  const view = { subject: cert.subject.replaceAll('\n', ', '), notAfter: new Date(cert.validTo).toISOString(), sha256: createHash('sha256').update(cert.raw).digest('hex').toUpperCase() };
  if (command === 'export' && typeof values.out === 'string') writeFileSync(values.out, tls.certPem);
  if (values.json) process.stdout.write(`${JSON.stringify({ ...view, pem: tls.certPem })}\n`);
  else if (command === 'export' && typeof values.out !== 'string') process.stdout.write(tls.certPem);
  else process.stdout.write(`${command === 'import' ? 'imported' : 'exported'} ${view.subject} (SHA-256 ${view.sha256}, valid until ${view.notAfter})\n`);
  return 0;
}

export async function localStart(values: CliValues): Promise<number> {
  const dir = resolve((values.dir as string | undefined) ?? 'var/local');
  const json = values.json === true;
  const say = (line: string) => !json && process.stdout.write(`${line}\n`);
  const instance = await startLocalInstance({ dir, logger: createLogger('local', process.env.XRD_LOG_LEVEL ?? 'warn'), progress: (l) => say(`… ${l}`) });
  const stop = async () => {
    await instance.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());

  const soapFile = join(dir, 'is', 'getRandom.xml');
  writeFileSync(soapFile, getRandomRequest(instance));
  let first: Awaited<ReturnType<typeof firstCalls>>;
  try {
    first = await firstCalls(instance, soapFile);
  } catch (err) {
    // Signers and proxies are child processes: they must not outlive a failed start.
    await instance.close();
    throw err;
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ endpoints: endpoints(instance), firstCalls: first })}\n`);
  } else {
    say(describe(instance, dir));
    say('First calls through both security servers (signed by ss2, verified by ss1, answered, signed by ss1, verified by ss2, logged on both):');
    for (const c of first) {
      // The answer's payload, not the echoed X-Road header: getRandom's <data>, or the REST body.
      const data = /<(?:[\w-]+:)?data>([^<]*)</.exec(c.body)?.[1];
      say(`  ${c.name}: HTTP ${c.status} ${data !== undefined ? `data = ${data}` : c.body.replace(/\s+/g, ' ').slice(0, 300)}`);
    }
    say('\nRunning; Ctrl-C stops everything.');
  }
  return new Promise<number>(() => {
    // Runs until a signal stops it.
  });
}

function endpoints(i: LocalInstance) {
  return {
    clientProxy: { http: i.consumer.httpUrl, https: i.consumer.httpsUrl },
    providerClientProxy: { http: i.provider.httpUrl, https: i.provider.httpsUrl },
    serverProxies: [`${i.provider.address}:${i.ports.serverProxy}`, `${i.consumer.address}:${i.ports.serverProxy}`],
    testServices: i.testServicesUrl,
    globalConf: i.pki.globalConfDir,
    messageLogs: [join(i.provider.proxyDataDir, 'messagelog.db'), join(i.consumer.proxyDataDir, 'messagelog.db')],
    health: [i.provider.healthUrl, i.consumer.healthUrl],
    monitoring: [i.provider.monitoringUrl, i.consumer.monitoringUrl],
    adminApis: [i.provider, i.consumer, i.joining].map((s) => ({ serverId: s.serverId, url: s.adminUrl, apiKey: i.apiKeyOf(s), webInterface: s.adminUrl.replace(/api\/v1$/, ''), login: i.adminLogin })),
    managementService: i.pki.managementServiceUrl,
  };
}

function describe(i: LocalInstance, dir: string): string {
  const is = relative(process.cwd(), join(dir, 'is')) || '.';
  const service = `${i.pki.instance}/COM/1111/PROVIDER`;
  return `
Local X-Road instance ${i.pki.instance} in ${dir}
  ss1 ${i.provider.serverId} at ${i.provider.address}:${i.ports.serverProxy}  (provider LOCAL/COM/1111/PROVIDER; test services ${i.testServicesUrl})
  ss2 ${i.consumer.serverId} at ${i.consumer.address}:${i.ports.serverProxy}  (clients LOCAL/COM/2222/CLIENT and LOCAL/COM/3333/OTHER, connection type HTTPS)
  information systems call ss2 at ${i.consumer.httpsUrl}/ (SOAP) and ${i.consumer.httpsUrl}/r1/… (REST)
  ss3 ${i.joining.serverId} at ${i.joining.address}: a blank token, its signer and admin API — to be initialised and
      registered (MEMBER_01; docs/admin-api.md walks through it)
  OCSP ${i.ports.ocsp}, TSA ${i.ports.tsa}, configuration ${i.ports.conf}, management service ${i.ports.management} on 127.0.0.1
  health: ${i.provider.healthUrl} (ss1), ${i.consumer.healthUrl} (ss2)
  monitoring (the server's admin API key): ${i.provider.monitoringUrl}/metrics and /opmonitor (ss1), ${i.consumer.monitoringUrl}/… (ss2)

Admin REST APIs (HTTPS, self-signed; OpenAPI at …/openapi.json), each with a local key holding every role:
${[i.provider, i.consumer, i.joining].map((s) => `  ${s.serverId.split('/').pop()}  ${s.adminUrl}  key ${i.apiKeyOf(s)}`).join('\n')}
  curl -k -H "Authorization: X-Road-ApiKey token=${i.apiKeyOf(i.joining)}" ${i.joining.adminUrl}/initialization/status
  curl -H "Authorization: X-Road-ApiKey token=${i.apiKeyOf(i.consumer)}" "${i.consumer.monitoringUrl}/opmonitor?limit=10"

Web interfaces (docs/admin-ui.md) at each admin API's address: ${[i.provider, i.consumer, i.joining].map((s) => s.adminUrl.replace(/api\/v1$/, '')).join('  ')}
  log in as ${i.adminLogin.username} with password ${i.adminLogin.password} (every role; a new password at each start);
  more users: xrd admin user add NAME --roles SYSTEM_ADMINISTRATOR --data-dir ${i.consumer.proxyDataDir}   (ss2's; the others' likewise)

Try (seed 003's commands, from ${is}):
  cd ${is}
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -d @getRandom.xml --header "Content-Type: text/xml" -X POST ${i.consumer.httpsUrl}/
  curl -k -d @getRandom.xml --header "Content-Type: text/xml" -X POST ${i.consumer.httpsUrl}/        # no certificate: SslAuthenticationFailed
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -H "X-Road-Client: ${i.clientIs.client}" ${i.consumer.httpsUrl}/r1/${service}/rest-test/random
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -H "X-Road-Client: ${i.clientIs.client}" "${i.consumer.httpsUrl}/r1/${service}/rest-test/hello?name=X-Road"
Metaservices (docs/metaservices.md):
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -H "X-Road-Client: ${i.clientIs.client}" ${i.consumer.httpsUrl}/r1/${service}/listMethods
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -H "X-Road-Client: ${i.clientIs.client}" "${i.consumer.httpsUrl}/r1/${service}/getOpenAPI?serviceCode=rest-test"
  curl -k -H "Accept: application/json" ${i.consumer.httpsUrl}/listClients
Message containers: npx xrd asic export <queryId> --db ${join(i.consumer.proxyDataDir, 'messagelog.db')} --out /tmp && npx xrd asic verify /tmp/<file>.asice --conf ${i.pki.globalConfDir}
`;
}

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
