/**
 * One security server's proxy process: the client proxy for its clients' information systems, the
 * server proxy for other security servers, the OCSP endpoint peers fetch our responses from, the
 * message log with its timestamper and operational monitoring. Keys, PINs and the OCSP cache stay
 * in the signer daemon, reached over its socket; this process holds neither key nor PIN.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import { join } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import { apiKeysFile } from '../serverconf/api-keys.ts';
import { globalConfReader } from '../globalconf/global-conf.ts';
import { MessageLog, TIMESTAMPER_STATUS_FILE, type ArchiveOptions } from '../messagelog/message-log.ts';
import { messageLogFileIn, messageLogLocation, refuseFileLeftBehind } from '../messagelog/store.ts';
import { MetricsRegistry } from '../opmonitor/metrics.ts';
import { OpMonitor } from '../opmonitor/op-monitor.ts';
import { databaseConfig } from '../storage/database.ts';
import { ProxyMetrics, SignerMetrics } from '../opmonitor/proxy-metrics.ts';
import { toXrdError } from '../platform/errors.ts';
import { PROXY_SERVER_LIMITS, capConnections, serverLimits, serverTimeouts, type ServerLimits } from '../platform/server-limits.ts';
import { TtlCache } from '../platform/ttl-cache.ts';
import type { Logger } from '../platform/logger.ts';
import { formatSecurityServerId } from '../protocol/identifiers.ts';
import { internalTlsReader } from '../serverconf/internal-tls.ts';
import { configuredTsas, type ServerConf } from '../serverconf/server-conf.ts';
import { openServerConfStore, serverConfReader } from '../serverconf/store.ts';
import type { SigningInfo } from '../signerapi/operations.ts';
import { SignerConnection, ocspResponsesOf } from '../signerapi/signer-client.ts';
import { authKeyTlsOptions, engineFailureOf, explainAuthHandshakeFailure } from '../tls/auth-key-tls.ts';
import { ownAuthOcspResponses } from '../trust/peer-auth.ts';
import { SpoolFolder } from '../platform/spool.ts';
import type { FaultCodeStyle } from '../protocol/faults.ts';
import { startClientProxy } from './client/client-proxy.ts';
import { DEFAULT_MAX_SOAP_BYTES, type MessageSettings } from './shared/exchange.ts';
import { MemberSigning } from './shared/member-signing.ts';
import { MessageRecorder } from './shared/message-recorder.ts';
import { HealthCheck, healthHandler } from './endpoints/health-check.ts';
import { monitoringHandler } from './endpoints/monitoring-endpoint.ts';
import { ocspEndpointFromSigner } from './endpoints/ocsp-endpoint.ts';
import { PeerVerifier, signerOcspStore } from './shared/peer-verifier.ts';
import { ProviderLink } from './client/provider-link.ts';
import { startServerProxy } from './server/server-proxy.ts';

export interface SecurityServerPorts {
  /** Information systems, plain HTTP (8080). */
  readonly http: number;
  /** Information systems, HTTPS (8443). */
  readonly https: number;
  /** Other security servers' messages (5500). */
  readonly serverProxy: number;
  /** Other security servers' OCSP requests (5577). */
  readonly ocsp: number;
  /** Prometheus metrics and operational monitoring queries for admin API keys, on the client address (2080). */
  readonly monitoring: number;
  /** Health check for load balancers and monitoring, on the server address (5588); none when left out. */
  readonly health?: number;
}

export interface SecurityServerOptions {
  /** The server configuration's store, the internal TLS certificate, message log and monitoring databases. */
  readonly dataDir: string;
  readonly globalConfDir: string;
  readonly signerSocket: string;
  /** Where information systems connect (127.0.0.1 unless they are elsewhere). */
  readonly clientAddress: string;
  /** Where other security servers connect: this server's address in global configuration. */
  readonly serverAddress: string;
  readonly ports: SecurityServerPorts;
  /** Port of other security servers' server proxies (5500). */
  readonly remoteServerPort: number;
  /** Port of other security servers' OCSP endpoints (5577). */
  readonly remoteOcspPort: number;
  /** Most bytes of one message (MessageTooLarge); unlimited when not given, as in the reference. */
  readonly maxMessageBytes?: number;
  /** Most bytes of a SOAP envelope or REST header part, which are held in memory. Default 64 MiB. */
  readonly maxSoapBytes?: number;
  /** Attachments and REST bodies larger than this go to spool files in `<dataDir>/spool`. Default 1 MiB. */
  readonly spoolThresholdBytes?: number;
  /** How faults we write spell their codes: 7.7's CamelCase (default) or 7.8's snake_case. */
  readonly faultCodes?: FaultCodeStyle;
  /** The reference's `server-min-supported-client-version`: older client proxies are refused. */
  readonly minClientVersion?: string;
  /** Overrides the global configuration's timeStampingIntervalSeconds (tests, or a busier schedule). */
  readonly timestampingIntervalSeconds?: number;
  /** Message-log archiving and retention on their schedule (docs/messagelog.md "Archiving"); absent: none. */
  readonly archive?: ArchiveOptions;
  /** Operational data younger than this is not given to getSecurityServerOperationalData yet (the reference's 60 s). */
  readonly recordsAvailableOffsetSeconds?: number;
  /** How long one health evaluation answers for (2 s). */
  readonly healthCacheMs?: number;
  /** Timeouts and connection caps of every listener, each on its own (default PROXY_SERVER_LIMITS). */
  readonly serverLimits?: Partial<ServerLimits>;
  /**
   * A PostgreSQL database (postgres://…) for the server configuration and operational monitoring,
   * which the nodes of a clustered provider share; SQLite files in `dataDir` when left out.
   */
  readonly databaseUrl?: string;
  /** The message log's PostgreSQL database, this node's own; `messagelog.db` in `dataDir` when left out. */
  readonly messageLogDatabaseUrl?: string;
  readonly logger: Logger;
}

export const DEFAULT_PORTS: SecurityServerPorts = { http: 8080, https: 8443, serverProxy: 5500, ocsp: 5577, monitoring: 2080, health: 5588 };
export const DEFAULT_SPOOL_THRESHOLD_BYTES = 1024 * 1024;

/** How long the signer's answers about our authentication key and its OCSP responses are reused. */
const AUTH_KEY_CACHE_MS = 10_000;

export interface RunningSecurityServer {
  readonly serverConf: () => ServerConf;
  readonly messageLog: MessageLog;
  close(): Promise<void>;
}

export async function startSecurityServer(options: SecurityServerOptions): Promise<RunningSecurityServer> {
  const { logger } = options;
  const limits = serverLimits(PROXY_SERVER_LIMITS, options.serverLimits);
  // A database URL that is not one is refused before anything is opened.
  const opMonitorDatabase = databaseConfig(join(options.dataDir, 'opmonitor.db'), options.databaseUrl);
  const messageLogFile = messageLogFileIn(options.dataDir);
  const messageLogAt = messageLogLocation(messageLogFile, options.messageLogDatabaseUrl);
  refuseFileLeftBehind(messageLogFile, messageLogAt);
  const signer = new SignerConnection(options.signerSocket, { timeoutMs: 30_000 });
  // Configuration changes are seen within a second; the files are not looked at for every message.
  const globalConf = globalConfReader(options.globalConfDir, { recheckMs: 1000 });
  const serverConfStore = await openServerConfStore(options.dataDir, options.databaseUrl, { logger: logger.child({ component: 'serverconf' }) }).catch((err: unknown) => {
    signer.close();
    throw err;
  });
  const serverConf = await serverConfReader(serverConfStore, { onError: (err) => logger.error({ faultCode: err.faultCode, message: err.message }, 'server configuration not readable; the last good one stays in force') }).catch(async (err: unknown) => {
    await serverConfStore.close();
    signer.close();
    throw err;
  });
  const closeServerConf = async () => {
    serverConf.close();
    await serverConfStore.close();
  };
  // What is opened next fails the start with the server configuration and signer connection closed.
  const opened = async <T>(open: () => T | Promise<T>): Promise<T> => {
    try {
      return await open();
    } catch (err) {
      await closeServerConf();
      signer.close();
      throw err;
    }
  };
  const serverId = () => formatSecurityServerId(serverConf().serverId);
  // Spool files a killed process left are removed before anything is received.
  const spool = new SpoolFolder(join(options.dataDir, 'spool'), { thresholdBytes: options.spoolThresholdBytes ?? DEFAULT_SPOOL_THRESHOLD_BYTES, maxBytes: options.maxMessageBytes });
  await opened(() => spool.purge());
  const settings: MessageSettings = { spool, maxMessageBytes: options.maxMessageBytes, maxSoapBytes: options.maxSoapBytes ?? DEFAULT_MAX_SOAP_BYTES, faultCodes: options.faultCodes ?? 'camel' };
  // An administrator may change it while the server runs (admin API /system/certificate).
  const internalTls = await opened(() => internalTlsReader(join(options.dataDir, 'internal-tls'), { onError: (err) => logger.error({ err }, 'internal TLS certificate not readable; the last good one stays in force') }));

  // What the signer says about our authentication key — its TLS options and its certificate's OCSP
  // responses, which go with every request — is reused for a few seconds.
  const authKey = new TtlCache<'key', { info: SigningInfo; tls: SecureContextOptions }>(AUTH_KEY_CACHE_MS);
  const authKeyInfo = () =>
    authKey.get('key', async () => {
      const info = await signer.call('authKeyInfo', { serverId: serverId() });
      return { info, tls: authKeyTlsOptions(options.signerSocket, info) };
    });
  const authTls = async (): Promise<SecureContextOptions> => (await authKeyInfo()).tls;
  const ocspStore = signerOcspStore(signer);
  const ownOcsp = new TtlCache<'ocsp', Buffer[]>(AUTH_KEY_CACHE_MS);
  const ownAuthOcsp = () =>
    ownOcsp.get('ocsp', async () => {
      const { info } = await authKeyInfo();
      return ownAuthOcspResponses(globalConf(), Buffer.from(info.cert, 'base64'), info.chain.map((c) => Buffer.from(c, 'base64')), { ...ocspStore, get: (hashes) => ocspResponsesOf(signer, info, hashes) });
    });

  const messageLog = await opened(() => MessageLog.open(messageLogAt, {
    timestampingIntervalSeconds: () => options.timestampingIntervalSeconds ?? globalConf().privateParams?.timeStampingIntervalSeconds ?? 60,
    // The administrator's choice (serverconf), each with its certificate from the approved list.
    tsas: () => configuredTsas(serverConf(), globalConf()),
    tsaCerts: () => globalConf().tsaCertificates(),
    statusFile: join(options.dataDir, TIMESTAMPER_STATUS_FILE),
    archive: options.archive,
    logger: logger.child({ component: 'messagelog' }),
  }));
  const registry = new MetricsRegistry();
  const proxyMetrics = new ProxyMetrics(registry);
  const signerMetrics = new SignerMetrics(registry);
  const opMonitor = await OpMonitor.open(opMonitorDatabase, {
    logger: logger.child({ component: 'opmonitor' }),
    onStore: (r) => proxyMetrics.observe(r),
  }).catch(async (err: unknown) => {
    await messageLog.close();
    await closeServerConf();
    signer.close();
    throw err;
  });
  const recorder = new MessageRecorder(messageLog, opMonitor, proxyMetrics);
  const signing = new MemberSigning(signer, globalConf);
  const peers = new PeerVerifier({ globalConf, ocsp: ocspStore, remoteOcspPort: options.remoteOcspPort });
  const providers = new ProviderLink({
    globalConf,
    authTls,
    ownAuthOcsp,
    peers,
    explainHandshakeFailure: async (err) => {
      if (!engineFailureOf(err)) return undefined;
      const keyId = await authKeyInfo().then(({ info }) => info.keyId, (e: unknown) => toXrdError(e));
      return typeof keyId === 'string' ? explainAuthHandshakeFailure(signer, keyId, err) : keyId;
    },
    remotePort: options.remoteServerPort,
    connectTimeoutMs: 5_000,
    responseTimeoutMs: 120_000,
    spool,
    maxMessageBytes: options.maxMessageBytes,
  });
  const common = { serverConf, globalConf, signing, recorder, settings };
  const closers: (() => Promise<void>)[] = [];
  try {
    const clientProxy = await startClientProxy(
      { ...common, providers, globalConfDir: options.globalConfDir, logger: logger.child({ component: 'clientproxy' }) },
      { host: options.clientAddress, httpPort: options.ports.http, httpsPort: options.ports.https, internalTls, limits },
    );
    closers.push(() => clientProxy.close());
    const serverProxy = await startServerProxy(
      { ...common, peers, opMonitor, recordsAvailableOffsetSeconds: options.recordsAvailableOffsetSeconds, internalTls, minClientVersion: options.minClientVersion, logger: logger.child({ component: 'serverproxy' }) },
      { host: options.serverAddress, port: options.ports.serverProxy, tls: authTls, limits },
    );
    closers.push(() => serverProxy.close());
    const ocsp = await listen(ocspEndpointFromSigner(signer), limits, options.serverAddress, options.ports.ocsp);
    closers.push(() => new Promise<void>((r) => ocsp.close(() => r())));
    const monitoring = await listen(monitoringHandler({ registry, signerMetrics, signer, opMonitor, apiKeysFile: apiKeysFile(options.dataDir) }), limits, options.clientAddress, options.ports.monitoring);
    closers.push(() => new Promise<void>((r) => monitoring.close(() => r())));
    if (options.ports.health !== undefined) {
      // The signer is asked directly, not through the 10 s caches above: a logged-out token must show within seconds.
      const check = new HealthCheck({
        signer,
        serverId,
        globalConf,
        pingMessageLog: () => messageLog.ping(),
        readServerConf: () => serverConfStore.read(),
        cacheMs: options.healthCacheMs,
      });
      const health = await listen(healthHandler(check), limits, options.serverAddress, options.ports.health);
      closers.push(() => new Promise<void>((r) => health.close(() => r())));
    }
  } catch (err) {
    await Promise.all(closers.map((c) => c()));
    await messageLog.close();
    await opMonitor.close();
    await closeServerConf();
    signer.close();
    throw toXrdError(err);
  }
  logger.info({ serverId: serverId(), ports: options.ports, clientAddress: options.clientAddress, serverAddress: options.serverAddress }, 'security server started');
  if (serverConf().timestampingServices.length === 0) {
    logger.warn('no timestamping service configured (xrd tsp add, POST /api/v1/system/timestamping-services): messages are logged unstamped, and logging stops after the acceptable period');
  }
  return {
    serverConf,
    messageLog,
    close: async () => {
      providers.close();
      await Promise.all(closers.map((c) => c()));
      await messageLog.close();
      await opMonitor.close();
      await closeServerConf();
      signer.close();
    },
  };
}

/** The small HTTP endpoints (OCSP for peers, health, monitoring) with the proxies' timeouts and caps. */
function listen(handler: RequestListener, limits: ServerLimits, host: string, port: number): Promise<Server> {
  const server = createServer(serverTimeouts(limits), handler);
  capConnections(server, limits);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
