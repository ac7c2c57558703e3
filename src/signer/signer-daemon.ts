/**
 * Assembles a running signer: PKCS#11 modules from devices.ini, the keyconf database, the audit log,
 * the service and its two socket servers — administration (every operation) and the proxies' (what
 * a proxy needs, docs/security.md). The embedded default is a SoftHSM token under the data folder.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { writeFileAtomic } from '../platform/files.ts';
import type { Logger } from '../platform/logger.ts';
import { readModuleConfigFile } from '../token/module-config.ts';
import { ensureSoftHsmHome } from '../token/softhsm.ts';
import { DEFAULT_TOKEN_OPTIONS, TokenManager } from '../token/token-manager.ts';
import { fileAuditLog } from './audit-log.ts';
import { KeyconfStore } from './keyconf-store.ts';
import { watchRegistrations } from './registration-watcher.ts';
import { SignerServer, type ConnectionLimits, type SignerServerOptions } from './signer-server.ts';
import { defaultAdminSocket, defaultProxySocket } from '../signerapi/socket-paths.ts';
import { PROXY_OPERATIONS } from '../signerapi/operations.ts';
import { SignerService } from './signer-service.ts';
import { ConfigurationClient } from '../globalconf/configuration-client.ts';
import { globalConfReader } from '../globalconf/global-conf.ts';
import { OcspCache } from '../trust/ocsp-cache.ts';
import { ResponderOutcomes } from '../trust/ocsp-client.ts';
import { OcspRefresher } from '../trust/ocsp-refresher.ts';
import { OcspStatusService } from '../trust/ocsp-status.ts';

export interface SignerDaemonConfig {
  /** Holds keyconf.sqlite, audit.log, signer.pid, the socket and (by default) the SoftHSM token directory. */
  readonly dataDir: string;
  /** X-Road devices.ini with the PKCS#11 modules. */
  readonly devicesIni: string;
  /** The administration socket (every operation): `<data dir>/signer.sock` by default, mode 0600. */
  readonly socketPath?: string;
  readonly socketMode?: number;
  readonly socketGroup?: number;
  /**
   * The proxies' socket (PROXY_OPERATIONS only): `signer-proxy.sock` beside the administration
   * socket by default, mode 0600.
   */
  readonly proxySocketPath?: string;
  readonly proxySocketMode?: number;
  readonly proxySocketGroup?: number;
  /** Per socket: connections, idle time and bytes held per connection (signer-server.ts). */
  readonly connectionLimits?: Partial<ConnectionLimits>;
  readonly sessionPoolSize?: number;
  readonly maxInFlightPerConnection?: number;
  readonly defaultTimeoutMs?: number;
  /**
   * Global configuration directory. With one, the daemon keeps OCSP responses fresh for its active,
   * registered certificates and their CA paths (every `ocspFetchIntervalMs`).
   */
  readonly globalConfDir?: string;
  /** Configuration anchor: with one, the configuration in `globalConfDir` is downloaded and kept current. */
  readonly anchorFile?: string;
  readonly globalConfIntervalMs?: number;
  /** Federated instances whose configuration is downloaded: ALL, NONE (default) or a list (docs/globalconf.md). */
  readonly allowedFederations?: string;
  readonly ocspFetchIntervalMs?: number;
  readonly ocspRetryIntervalMs?: number;
  /** How often certificates waiting for registration are looked up in global configuration (default 2 s). */
  readonly registrationCheckIntervalMs?: number;
}

export interface SignerDaemon {
  readonly service: SignerService;
  readonly tokens: TokenManager;
  readonly socketPath: string;
  readonly proxySocketPath: string;
  close(): Promise<void>;
}

/** @throws AlreadyRunning, InvalidConfiguration, IOError */
export async function startSignerDaemon(config: SignerDaemonConfig, log: Logger): Promise<SignerDaemon> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // SoftHSM finds its tokens through SOFTHSM2_CONF; without one, tokens live in the data folder.
  process.env.SOFTHSM2_CONF ??= ensureSoftHsmHome(join(config.dataDir, 'softhsm'));

  let parsed;
  try {
    parsed = readModuleConfigFile(config.devicesIni);
  } catch (err) {
    throw new XrdError('InvalidConfiguration', { reason: `cannot read ${config.devicesIni}: ${(err as Error).message}` }, { cause: err });
  }
  for (const problem of parsed.problems) log.error(problem, 'devices.ini section skipped');
  if (parsed.modules.length === 0) throw new XrdError('InvalidConfiguration', { reason: `${config.devicesIni} names no usable PKCS#11 module` });

  const socketPath = config.socketPath ?? defaultAdminSocket(config.dataDir);
  const proxySocketPath = config.proxySocketPath ?? defaultProxySocket(socketPath);
  if (resolve(proxySocketPath) === resolve(socketPath)) throw new XrdError('InvalidConfiguration', { reason: `the proxy socket must not be the administration socket (${socketPath})` });
  const common = { maxInFlightPerConnection: config.maxInFlightPerConnection, defaultTimeoutMs: config.defaultTimeoutMs, limits: config.connectionLimits };
  const serverOptions: SignerServerOptions[] = [
    { ...common, name: 'admin', socketPath, socketMode: config.socketMode, socketGroup: config.socketGroup },
    { ...common, name: 'proxy', socketPath: proxySocketPath, socketMode: config.proxySocketMode, socketGroup: config.proxySocketGroup, operations: PROXY_OPERATIONS },
  ];
  const tokens = TokenManager.open(parsed.modules, log, { ...DEFAULT_TOKEN_OPTIONS, sessionPoolSize: config.sessionPoolSize ?? DEFAULT_TOKEN_OPTIONS.sessionPoolSize });
  const store = new KeyconfStore(join(config.dataDir, 'keyconf.sqlite'));
  const ocsp = new OcspCache(join(config.dataDir, 'ocsp-cache.sqlite'), log);
  const responders = new ResponderOutcomes();
  const refresher = config.globalConfDir ? ocspRefresher(config, store, ocsp, responders, log) : undefined;
  const audit = fileAuditLog(join(config.dataDir, 'audit.log'));
  const servers: SignerServer[] = [];
  const service = new SignerService(tokens, store, ocsp, audit, log, () => refresher?.runSoon(), () => servers.map((s) => s.stats()), () => ({ responders: responders.view(), nextRefreshAt: refresher?.nextRunAt }));
  try {
    for (const options of serverOptions) servers.push(await SignerServer.listen(service, options, log));
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    tokens.close();
    store.close();
    ocsp.close();
    throw err;
  }
  // Tells other processes (xrd backup restore) that this folder's signer runs, wherever its socket
  // is (/run/xrd under systemd). Written once listening, so a second daemon that fails with
  // AlreadyRunning never replaces the running one's.
  const pidFile = join(config.dataDir, 'signer.pid');
  writeFileAtomic(pidFile, `${process.pid}\n`);
  const configurationClient =
    config.anchorFile && config.globalConfDir ? new ConfigurationClient(config.anchorFile, config.globalConfDir, log, { intervalMs: config.globalConfIntervalMs, allowedFederations: config.allowedFederations, downloaded: () => refresher?.runSoon() }) : undefined;
  configurationClient?.start();
  const registrations = config.globalConfDir ? watchRegistrations(store, globalConfReader(config.globalConfDir), audit, log, () => refresher?.runSoon(), config.registrationCheckIntervalMs) : undefined;
  // With an anchor and nothing downloaded yet, the first download starts the OCSP refresh.
  if (!configurationClient || existsSync(join(config.globalConfDir!, 'instance-identifier'))) refresher?.start();
  return {
    service,
    tokens,
    socketPath,
    proxySocketPath,
    async close() {
      registrations?.stop();
      await configurationClient?.stop();
      await refresher?.stop();
      await Promise.all(servers.map((s) => s.close()));
      service.close();
      tokens.close();
      store.close();
      ocsp.close();
      try {
        if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile, { force: true });
      } catch {
        // Already gone: nothing of ours to remove.
      }
    },
  };
}

/** OCSP refresh for the certificates the signer signs with: active and registered, with their chains. */
function ocspRefresher(config: SignerDaemonConfig, store: KeyconfStore, ocsp: OcspCache, responders: ResponderOutcomes, log: Logger): OcspRefresher {
  const conf = globalConfReader(config.globalConfDir!);
  const status = new OcspStatusService(conf, ocsp, { fetch: { onAnswer: responders.record } });
  const certificates = () => store.allCerts().filter((c) => c.active && c.status === 'registered').map((c) => ({ cert: c.der, chain: c.chain }));
  return new OcspRefresher(status, ocsp, conf, certificates, log, { intervalMs: config.ocspFetchIntervalMs, retryIntervalMs: config.ocspRetryIntervalMs });
}
