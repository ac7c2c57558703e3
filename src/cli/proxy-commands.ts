/**
 * `xrd proxy start` (one security server's proxy process) and `xrd proxy internal-cert` (the client
 * proxy's own TLS certificate).
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { XrdError } from '../platform/errors.ts';
import type { ServerLimits } from '../platform/server-limits.ts';
import type { FaultCodeStyle } from '../protocol/faults.ts';
import { createLogger } from '../platform/logger.ts';
import { DEFAULT_PORTS, startSecurityServer } from '../proxy/security-server.ts';
import { archiveOptions } from './messagelog-commands.ts';
import { ensureInternalTls, importInternalTls } from '../serverconf/internal-tls.ts';
import { databaseUrl, messageLogDatabaseUrl } from './options.ts';
import { UsageError } from './usage-error.ts';

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
    // From the environment, not the command line, where every user's `ps` would show its password.
    databaseUrl: databaseUrl(),
    messageLogDatabaseUrl: messageLogDatabaseUrl(),
    // The reference's archiver runs wherever the message log does: on by default (--no-archive).
    archive: archiveOptions(values, dataDir),
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
  if (!tls) throw new UsageError('usage: xrd proxy internal-cert export [--out F] | import <cert-and-key.pem>');
  const cert = new X509Certificate(tls.certPem);
  const view = { subject: cert.subject.replaceAll('\n', ', '), notAfter: new Date(cert.validTo).toISOString(), sha256: createHash('sha256').update(cert.raw).digest('hex').toUpperCase() };
  if (command === 'export' && typeof values.out === 'string') writeFileSync(values.out, tls.certPem);
  if (values.json) process.stdout.write(`${JSON.stringify({ ...view, pem: tls.certPem })}\n`);
  else if (command === 'export' && typeof values.out !== 'string') process.stdout.write(tls.certPem);
  else process.stdout.write(`${command === 'import' ? 'imported' : 'exported'} ${view.subject} (SHA-256 ${view.sha256}, valid until ${view.notAfter})\n`);
  return 0;
}
