/**
 * The `xrd` command line's one option table (every command parses the same flags, so a flag means
 * the same everywhere) and where each command finds its folders, sockets and PINs from those flags,
 * the environment and the defaults.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { messageLogFileIn, messageLogLocation, type MessageLogLocation } from '../messagelog/store.ts';
import { defaultAdminSocket, defaultProxySocket } from '../signerapi/socket-paths.ts';
import type { SecretSource } from './secrets.ts';
import { UsageError } from './usage-error.ts';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'data-dir': { type: 'string' },
  socket: { type: 'string' },
  devices: { type: 'string' },
  'socket-mode': { type: 'string' },
  'socket-group': { type: 'string' },
  'proxy-socket': { type: 'string' },
  'proxy-socket-mode': { type: 'string' },
  'proxy-socket-group': { type: 'string' },
  'max-connections': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'max-pending-bytes': { type: 'string' },
  token: { type: 'string' },
  label: { type: 'string' },
  module: { type: 'string' },
  'pin-file': { type: 'string' },
  'pin-env': { type: 'string' },
  pin: { type: 'string' },
  'new-pin-file': { type: 'string' },
  'new-pin-env': { type: 'string' },
  'so-pin-file': { type: 'string' },
  'so-pin-env': { type: 'string' },
  'insecure-pin-arg': { type: 'boolean' },
  'no-prompt': { type: 'boolean' },
  cluster: { type: 'boolean' },
  store: { type: 'string' },
  autologin: { type: 'string' },
  usage: { type: 'string' },
  algorithm: { type: 'string' },
  bits: { type: 'string' },
  curve: { type: 'string' },
  name: { type: 'string' },
  roles: { type: 'string' },
  member: { type: 'string' },
  server: { type: 'string' },
  subject: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string', short: 'o' },
  chain: { type: 'string' },
  key: { type: 'string' },
  cert: { type: 'string' },
  file: { type: 'string' },
  digest: { type: 'string' },
  signature: { type: 'string' },
  inactive: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  conf: { type: 'string' },
  dir: { type: 'string' },
  instance: { type: 'string' },
  csr: { type: 'string' },
  'ocsp-port': { type: 'string' },
  'conf-port': { type: 'string' },
  anchor: { type: 'string' },
  'allowed-federations': { type: 'string' },
  'tsa-port': { type: 'string' },
  'management-port': { type: 'string' },
  db: { type: 'string' },
  'allow-unstamped': { type: 'boolean' },
  'load-only': { type: 'boolean' },
  'client-address': { type: 'string' },
  'server-address': { type: 'string' },
  'http-port': { type: 'string' },
  'https-port': { type: 'string' },
  'server-port': { type: 'string' },
  'remote-server-port': { type: 'string' },
  'remote-ocsp-port': { type: 'string' },
  'max-message-bytes': { type: 'string' },
  'max-soap-bytes': { type: 'string' },
  'spool-threshold-bytes': { type: 'string' },
  'fault-codes': { type: 'string' },
  'min-client-version': { type: 'string' },
  'timestamping-interval': { type: 'string' },
  'opmonitor-records-offset': { type: 'string' },
  'monitoring-port': { type: 'string' },
  'health-port': { type: 'string' },
  'signer-dir': { type: 'string' },
  'proxy-dir': { type: 'string' },
  force: { type: 'boolean' },
  'skip-signature-check': { type: 'boolean' },
  'health-cache-ms': { type: 'string' },
  owner: { type: 'string' },
  'server-code': { type: 'string' },
  address: { type: 'string' },
  url: { type: 'string' },
  approved: { type: 'boolean' },
  'ignore-warnings': { type: 'boolean' },
  type: { type: 'string' },
  'service-code': { type: 'string' },
  'new-service-code': { type: 'string' },
  notice: { type: 'string' },
  timeout: { type: 'string' },
  'ssl-auth': { type: 'string' },
  'url-all': { type: 'boolean' },
  'timeout-all': { type: 'boolean' },
  'ssl-auth-all': { type: 'boolean' },
  method: { type: 'string' },
  path: { type: 'string' },
  endpoint: { type: 'string' },
  code: { type: 'string' },
  description: { type: 'string' },
  'admin-host': { type: 'string' },
  'admin-port': { type: 'string' },
  'admin-allow': { type: 'string' },
  'password-file': { type: 'string' },
  'password-env': { type: 'string' },
  auth: { type: 'string' },
  'pam-service': { type: 'string' },
  'pam-role-groups': { type: 'string' },
  'session-idle-minutes': { type: 'string' },
  'session-lifetime-minutes': { type: 'string' },
  'login-lock-minutes': { type: 'string' },
  'client-proxy-url': { type: 'string' },
  'connection-type': { type: 'string' },
  message: { type: 'string' },
  'headers-timeout-seconds': { type: 'string' },
  'request-timeout-seconds': { type: 'string' },
  'keep-alive-timeout-seconds': { type: 'string' },
  'max-connections-per-address': { type: 'string' },
  'previous-digest': { type: 'string' },
  'archive-dir': { type: 'string' },
  'archive-grouping': { type: 'string' },
  'archive-batch': { type: 'string' },
  'archive-max-filesize': { type: 'string' },
  'archive-interval': { type: 'string' },
  'keep-records-for': { type: 'string' },
  'clean-interval': { type: 'string' },
  'no-archive': { type: 'boolean' },
  'archive-encryption': { type: 'boolean' },
  'archive-gpg-home': { type: 'string' },
  'archive-encryption-key': { type: 'string' },
  'archive-encryption-keys-config': { type: 'string' },
} as const;

export type Values = ReturnType<typeof parse>['values'];

export function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

/**
 * The PostgreSQL database of the stores that can live there (docs/storage.md): `XRD_DATABASE_URL`,
 * read by the proxy, the admin API and every CLI command that opens a store, so that all of them
 * find the same server configuration. From the environment, not the command line, where every
 * user's `ps` would show its password.
 */
export function databaseUrl(): string | undefined {
  return process.env.XRD_DATABASE_URL || undefined;
}

/**
 * The message log's PostgreSQL database: `XRD_MESSAGELOG_DATABASE_URL`, never `XRD_DATABASE_URL`'s,
 * since a message log is one node's own — the nodes of a cluster share the other stores — and
 * moving it is the administrator's decision (docs/storage.md). Unset: `messagelog.db`.
 */
export function messageLogDatabaseUrl(): string | undefined {
  return process.env.XRD_MESSAGELOG_DATABASE_URL || undefined;
}

/**
 * The message log a command reads: the SQLite file `--db` when given, else this data folder's
 * (`messagelog.db`, or the PostgreSQL database of `XRD_MESSAGELOG_DATABASE_URL`).
 */
export function messageLogOf(values: Values, dataDir: string): MessageLogLocation {
  if (values.db) return messageLogLocation(resolve(values.db));
  return messageLogLocation(messageLogFileIn(dataDir), messageLogDatabaseUrl());
}

export function dataDir(values: Values): string {
  return resolve(values['data-dir'] ?? process.env.XRD_DATA_DIR ?? 'var');
}

/** --conf, $XRD_GLOBALCONF_DIR or <data dir>/globalconf; for the daemon, only one that exists. */
export function globalConfDir(values: Values, onlyExisting: boolean): string | undefined {
  const dir = values.conf ?? process.env.XRD_GLOBALCONF_DIR ?? join(dataDir(values), 'globalconf');
  return !onlyExisting || existsSync(join(dir, 'instance-identifier')) ? dir : undefined;
}

/** The reference's configuration-client.allowed-federations; NONE when unset (docs/globalconf.md). */
export function allowedFederations(values: Values): string | undefined {
  return values['allowed-federations'] ?? process.env.XRD_ALLOWED_FEDERATIONS;
}

export function devicesIni(values: Values): string {
  return values.devices ?? process.env.XRD_DEVICES_INI ?? join(PROJECT_ROOT, 'native-config/devices.ini');
}

/** The administration socket: what every command but `proxy start` talks to. */
export function socketPath(values: Values): string {
  return values.socket ?? process.env.XRD_SIGNER_SOCKET ?? defaultAdminSocket(dataDir(values));
}

/** The proxies' socket, beside the administration socket unless named. */
export function proxySocketPath(values: Values): string {
  return values['proxy-socket'] ?? process.env.XRD_SIGNER_PROXY_SOCKET ?? defaultProxySocket(socketPath(values));
}


export function pinSource(values: Values, prefix: '' | 'new-' | 'so-'): SecretSource {
  const file = values[`${prefix}pin-file`];
  const env = values[`${prefix}pin-env`];
  if (prefix === '' && values.pin !== undefined) {
    if (!values['insecure-pin-arg']) throw new UsageError('--pin puts the PIN in the process list; use --pin-file, --pin-env or the prompt, or add --insecure-pin-arg');
    return { value: values.pin };
  }
  return { file, env };
}
