/**
 * `xrd`, the administrator's command line. Every command but `daemon start` talks to the signer
 * daemon over its socket; `daemon start` runs the daemon in this process, so PINs typed at its prompt
 * go into the signer and nowhere else.
 * Exit codes: 0 success, 1 the operation failed (coded error), 2 usage error, 3 signer unreachable.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseCertificate } from '../certificates/certificate.ts';
import { toPem } from '../certificates/csr.ts';
import { loadConfigurationAnchor } from '../globalconf/anchor.ts';
import { ConfigurationDownloader } from '../globalconf/download.ts';
import { loadGlobalConf, type CaCertificate, type GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import { formatClientId } from '../protocol/identifiers.ts';
import { LocalPki, type ManagementRequestView } from '../dev/testpki/local-pki.ts';
import { readAsicFile, verifyAsicFile, type AsicFileContents } from '../signature/asic.ts';
import { MessageLogReader } from '../messagelog/store.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { SignerClient } from '../signerapi/signer-client.ts';
import { defaultAdminSocket, defaultProxySocket } from '../signerapi/socket-paths.ts';
import type { CertStatus } from '../signerapi/cert-states.ts';
import type { OperationHandler, OperationName, Operations, TokenView } from '../signerapi/operations.ts';
import { SIGN_ALGORITHMS } from '../signerapi/algorithms.ts';
import { BACKUP_USAGE, backupCommand } from './backup-commands.ts';
import { SERVER_LIMITS_USAGE, internalCertCommand, localStart, proxyStart } from './proxy-commands.ts';
import { ADMIN_USAGE, adminCommand } from './admin-commands.ts';
import { autologin, parseAutologinSource, type AutologinSource } from './autologin.ts';
import { readSecret, type SecretSource } from './secrets.ts';
import { SERVER_USAGE, isServerCommand, serverCommand } from './server-commands.ts';
import { SERVICE_USAGE, isServiceCommand, serviceCommand } from './service-commands.ts';
import { table } from './table.ts';
import { UsageError } from './usage-error.ts';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_SOFT_TOKEN_LABEL = 'xrd-softtoken';

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
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

const USAGE = `xrd — X-Road security server: signer, proxies, administration

  xrd local start [--dir var/local] [--json]   a complete local instance on loopback: test PKI, two security servers
                   (SoftHSM token, signer, proxy, admin API each), a blank third to register (MEMBER_01), test services;
                   prints endpoints, admin API keys and curl calls
  xrd proxy start [--data-dir D] [--conf DIR] [--proxy-socket P] [--client-address A] [--server-address A]
                  [--http-port 8080] [--https-port 8443] [--server-port 5500] [--ocsp-port 5577]
                  [--monitoring-port 2080] [--remote-server-port 5500] [--remote-ocsp-port 5577]
                  [--max-message-bytes N (0: no limit)] [--max-soap-bytes N] [--spool-threshold-bytes N]
                  [--fault-codes camel|snake] [--min-client-version 7.6.0]
                  [--timestamping-interval S] [--health-port 5588] [--health-cache-ms 2000] [--opmonitor-records-offset 60]
                  ${SERVER_LIMITS_USAGE}
  xrd proxy internal-cert export [--out F] | import <cert-and-key.pem>   the client proxy's own TLS certificate
${ADMIN_USAGE}

  xrd daemon start [--data-dir D] [--devices devices.ini] [--conf DIR] [--anchor anchor.xml] [--allowed-federations ALL|NONE|I1,I2]
                   [--socket P] [--socket-group G --socket-mode 660]                 administration: every operation
                   [--proxy-socket P] [--proxy-socket-group G --proxy-socket-mode 660]   the proxies': signing, OCSP (docs/security.md)
                   [--max-connections 32] [--idle-timeout 60] [--max-pending-bytes 1048576]   per socket, per connection
                   [--token REF] [--pin-file F | --pin-env VAR] [--so-pin-file F | --so-pin-env VAR] [--no-prompt]
                   [--autologin file:PATH | credential:NAME | exec:PATH]   unattended login (docs/operations.md)
  xrd daemon status
  xrd token list | show <token> | init [--label L] [--module M] | login <token> | logout <token> | change-pin <token>
  xrd key generate <token> --usage SIGNING|AUTHENTICATION [--algorithm RSA|EC] [--bits 2048|3072|4096] [--curve P-256|P-384] [--name N]
  xrd key list [<token>] | delete <keyId>
  xrd csr generate <keyId> [--usage U] [--member INST/CLASS/CODE] [--server INST/CLASS/CODE/SERVER] [--subject "C=FI, O=Org"]
                   [--format PEM|DER] [--out FILE]
  xrd csr delete <csrId>
  xrd cert import <file> [--chain bundle.pem] [--member ID] [--inactive] | list [--key ID] | activate <hash> | disable <hash>
  xrd cert status <hash> "<saved|registration in progress|registered|deletion in progress|global error>" | delete <hash>
  xrd sign <keyId> (--file F | --digest HEX) [--algorithm SHA256withRSA…] [--format der|raw] [--out F]
  xrd verify (--key ID | --cert F) (--file F | --digest HEX) --signature F [--algorithm A]
${SERVER_USAGE}
${SERVICE_USAGE}
  xrd conf show [--conf DIR]        global configuration: CAs, TSAs, members, security servers, groups
  xrd conf anchor <anchor.xml>      a configuration anchor: instance, download URLs, verification certificates
  xrd conf download <anchor.xml> [--conf DIR] [--allowed-federations ALL|NONE|I1,I2]
                                    download, verify and install the anchor's configuration (and federated ones)
${BACKUP_USAGE}
  xrd asic verify <file.asice> [--conf DIR] [--allow-unstamped]
                                    verify a message container: signer, signature, timestamp, OCSP;
                                    one without a timestamp only with --allow-unstamped
  xrd asic verify <file.asice> --load-only     only load it, as the reference's AsicContainer does (no configuration)
  xrd asic export <queryId> --db messagelog.sqlite [--out DIR] [--allow-unstamped]
                                    write the query's logged request and response as containers
  xrd testpki init [--dir D] [--instance LOCAL] [--ocsp-port 8888] [--tsa-port 8899] [--conf-port 8090] [--management-port 4001]
                                    a local instance: CAs, OCSP responder, TSA, global configuration, anchor
  xrd testpki issue --csr F --usage sign|auth [--server INST/CLASS/CODE/SERVER] [--out F] [--dir D]
  xrd testpki revoke --cert F [--dir D]
  xrd testpki serve [--dir D]       run the OCSP responder, the TSA, the configuration source and the management
                                    service (auth certificate registrations) on 127.0.0.1
  xrd testpki requests [--dir D]    management requests the stand-in received: SUBMITTED, APPROVED or REVOKED
  xrd testpki approve <id> [--dir D]   approve a SUBMITTED authCertReg, clientReg or ownerChange: it goes into the configuration

Tokens are named by token id, label, serial number or pkcs11: URI. PINs are asked for, or read from
--pin-file / --pin-env (--new-pin-*, --so-pin-* likewise); --pin works only with --insecure-pin-arg.
Every command takes --json and --socket, the signer's administration socket (default $XRD_SIGNER_SOCKET
or <data-dir>/signer.sock; data dir: --data-dir, $XRD_DATA_DIR or ./var); proxy start uses --proxy-socket
(default $XRD_SIGNER_PROXY_SOCKET or signer-proxy.sock beside --socket). Groups (G) are names or numbers.
The configuration directory is --conf, $XRD_GLOBALCONF_DIR or <data-dir>/globalconf.`;


export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = args;
  if (values.help || positionals.length === 0) {
    process.stdout.write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const [group, command, ...rest] = positionals;
  try {
    if (group === 'daemon' && command === 'start') return await daemonStart(values);
    if (group === 'proxy' && command === 'start') return await proxyStart(values, dataDir(values), globalConfDir(values, false)!, proxySocketPath(values));
    if (group === 'proxy' && command === 'internal-cert') return internalCertCommand(rest[0], rest.slice(1), values, dataDir(values));
    if (group === 'local' && command === 'start') return await localStart(values);
    if (group === 'admin') return await adminCommand(positionals.slice(1), values, { dataDir: dataDir(values), socketPath: socketPath(values), globalConfDir: globalConfDir(values, false)!, devicesIni: devicesIni(values) });
    if (group === 'conf') return await confCommand(command, rest, values);
    if (group === 'testpki') return await testPkiCommand(command, rest, values);
    if (group === 'asic') return await asicCommand(command, rest, values);
    if (group === 'backup') {
      return await backupCommand(command, rest, values, {
        dataDir: dataDir(values),
        devicesIni: devicesIni(values),
        socket: values.socket ?? process.env.XRD_SIGNER_SOCKET,
      });
    }
    if (isServerCommand(group!, command)) {
      return await serverCommand(group!, command, rest, values, {
        proxyDataDir: dataDir(values),
        globalConfDir: globalConfDir(values, false)!,
        socketPath: socketPath(values),
        json: values.json === true,
        readPin: () => readSecret(pinSource(values, ''), 'Token PIN: ', false),
      });
    }
    if (isServiceCommand(group!)) {
      return await serviceCommand(group!, command, rest, values, { proxyDataDir: dataDir(values), globalConfDir: globalConfDir(values, false)!, socketPath: socketPath(values), json: values.json === true });
    }
    return await runClientCommand(group!, command, rest, values);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    const e = toXrdError(err);
    if (values.json) process.stdout.write(JSON.stringify({ error: errorJson(e) }) + '\n');
    else process.stderr.write(`error: ${e.faultCode}: ${e.message}\n${e.code === 'WarningsDetected' ? 'To go on anyway: --ignore-warnings\n' : ''}`);
    return e.code === 'NetworkError' ? 3 : 1;
  }
}

/** A coded error for scripts; with the reference's own code and its warnings where the admin service gives them (as the API's body). */
function errorJson(e: XrdError) {
  const { referenceCode, warningsJson } = e.details;
  return {
    code: e.code,
    faultCode: e.faultCode,
    message: e.message,
    ...(typeof referenceCode === 'string' ? { referenceCode } : {}),
    ...(typeof warningsJson === 'string' ? { warnings: JSON.parse(warningsJson) as unknown } : {}),
  };
}

function dataDir(values: Values): string {
  return resolve(values['data-dir'] ?? process.env.XRD_DATA_DIR ?? 'var');
}

/** --conf, $XRD_GLOBALCONF_DIR or <data dir>/globalconf; for the daemon, only one that exists. */
function globalConfDir(values: Values, onlyExisting: boolean): string | undefined {
  const dir = values.conf ?? process.env.XRD_GLOBALCONF_DIR ?? join(dataDir(values), 'globalconf');
  return !onlyExisting || existsSync(join(dir, 'instance-identifier')) ? dir : undefined;
}

/** The reference's configuration-client.allowed-federations; NONE when unset (docs/globalconf.md). */
function allowedFederations(values: Values): string | undefined {
  return values['allowed-federations'] ?? process.env.XRD_ALLOWED_FEDERATIONS;
}

function devicesIni(values: Values): string {
  return values.devices ?? process.env.XRD_DEVICES_INI ?? join(PROJECT_ROOT, 'native-config/devices.ini');
}

/** The administration socket: what every command but `proxy start` talks to. */
function socketPath(values: Values): string {
  return values.socket ?? process.env.XRD_SIGNER_SOCKET ?? defaultAdminSocket(dataDir(values));
}

/** The proxies' socket, beside the administration socket unless named. */
function proxySocketPath(values: Values): string {
  return values['proxy-socket'] ?? process.env.XRD_SIGNER_PROXY_SOCKET ?? defaultProxySocket(socketPath(values));
}

/** A group by number, or by name as the system resolves it (getent: /etc/group, LDAP, …). */
function groupId(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const entry = spawnSync('getent', ['group', value], { encoding: 'utf8' });
  const gid = entry.status === 0 ? entry.stdout.split(':')[2] : undefined;
  if (gid === undefined || !/^\d+$/.test(gid)) throw new UsageError(`${flag}: no group ${value}`);
  return Number(gid);
}

function fileMode(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-7]{3,4}$/.test(value)) throw new UsageError(`${flag} must be an octal mode such as 660, not ${value}`);
  return parseInt(value, 8);
}

/** A whole number of at least `min` from a flag, or undefined when the flag is absent. */
function count(value: string | undefined, flag: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number of at least ${min}, not ${value}`);
  return n;
}

function pinSource(values: Values, prefix: '' | 'new-' | 'so-'): SecretSource {
  const file = values[`${prefix}pin-file`];
  const env = values[`${prefix}pin-env`];
  if (prefix === '' && values.pin !== undefined) {
    if (!values['insecure-pin-arg']) throw new UsageError('--pin puts the PIN in the process list; use --pin-file, --pin-env or the prompt, or add --insecure-pin-arg');
    return { value: values.pin };
  }
  return { file, env };
}

async function requireSecret(source: SecretSource, question: string): Promise<string> {
  const value = await readSecret(source, question, true);
  if (!value) throw new UsageError(`${question.replace(/: $/, '')} is required`);
  return value;
}

// ---- daemon start ---------------------------------------------------------------------------

async function daemonStart(values: Values): Promise<number> {
  const log = createLogger('signer');
  let autologinSource: AutologinSource | undefined;
  if (values.autologin !== undefined) {
    if (values['pin-file'] !== undefined || values['pin-env'] !== undefined || values.pin !== undefined) throw new UsageError('--autologin replaces --pin-file, --pin-env and --pin');
    try {
      autologinSource = parseAutologinSource(values.autologin);
    } catch (err) {
      throw new UsageError(toXrdError(err).message);
    }
  }
  const idleSeconds = count(values['idle-timeout'], '--idle-timeout');
  // Loaded only here: the PKCS#11 layer must not enter the processes of other commands (the proxy).
  const { startSignerDaemon } = await import('../signer/signer-daemon.ts');
  const daemon = await startSignerDaemon(
    {
      dataDir: dataDir(values),
      devicesIni: devicesIni(values),
      socketPath: socketPath(values),
      socketMode: fileMode(values['socket-mode'], '--socket-mode'),
      socketGroup: groupId(values['socket-group'], '--socket-group'),
      proxySocketPath: proxySocketPath(values),
      proxySocketMode: fileMode(values['proxy-socket-mode'], '--proxy-socket-mode'),
      proxySocketGroup: groupId(values['proxy-socket-group'], '--proxy-socket-group'),
      connectionLimits: {
        maxConnections: count(values['max-connections'], '--max-connections'),
        idleTimeoutMs: idleSeconds === undefined ? undefined : idleSeconds * 1000,
        maxPendingBytes: count(values['max-pending-bytes'], '--max-pending-bytes'),
      },
      globalConfDir: globalConfDir(values, values.anchor === undefined),
      anchorFile: values.anchor,
      allowedFederations: allowedFederations(values),
    },
    log,
  );
  const stop = async (signal: string): Promise<void> => {
    log.info({ signal }, 'signer stopping');
    await daemon.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));

  try {
    // Unattended starts log in from the administrator's source; the rest as before (first start, prompt).
    if (autologinSource) await autologin(daemon.service, autologinSource, log);
    else await prepareDefaultToken(daemon.service, values, log);
  } catch (err) {
    const e = toXrdError(err);
    log.error({ code: e.faultCode, message: e.message }, 'token not activated at start; use `xrd token login`');
  }
  process.stdout.write(`signer listening on ${daemon.socketPath} (administration) and ${daemon.proxySocketPath} (proxies)\n`);
  return new Promise<number>(() => {
    // Runs until a signal stops it.
  });
}

/**
 * First start: initialise the embedded SoftHSM token (labelled `--token`, or xrd-softtoken). Every
 * start: log the token in (`--token`, or the only one) when the administrator named a PIN source or
 * is at a terminal to type it.
 */
async function prepareDefaultToken(service: OperationHandler, values: Values, log: Logger): Promise<void> {
  const prompt = !values['no-prompt'];
  const tokens = await service.handle('listTokens', {});
  const initialised = tokens.filter((t) => t.status !== 'NOT_INITIALIZED');
  const blank = tokens.find((t) => t.status === 'NOT_INITIALIZED' && t.available);
  let target: TokenView | undefined;
  if (initialised.length === 0 && blank) {
    const label = values.token ?? DEFAULT_SOFT_TOKEN_LABEL;
    log.info({ label }, 'first start: initialising the software token');
    const userPin = await readSecret(pinSource(values, ''), 'New token PIN: ', prompt);
    if (!userPin) throw new XrdError('InvalidConfiguration', { reason: 'first start needs a PIN: --pin-file, --pin-env or a terminal' });
    // Without an SO PIN from the administrator, a random one is set and forgotten: a locked user PIN
    // then means re-initialising the token (documented in docs/signer.md).
    const soPin = (await readSecret(pinSource(values, 'so-'), 'New security officer (SO) PIN: ', prompt && process.stdin.isTTY === true)) ?? randomBytes(16).toString('hex');
    target = await service.handle('initToken', { label, soPin, userPin, moduleType: blank.moduleType });
    await service.handle('activateToken', { token: target.tokenId, pin: userPin });
    return;
  } else if (values.token) {
    target = await service.handle('getToken', { token: values.token });
  } else if (initialised.length === 1) {
    target = initialised[0];
  }
  if (!target || target.active) return;
  const pin = await readSecret(pinSource(values, ''), `PIN for token ${target.tokenId}: `, prompt && process.stdin.isTTY === true);
  if (pin === undefined) {
    log.warn({ tokenId: target.tokenId }, 'token not logged in; use `xrd token login`');
    return;
  }
  await service.handle('activateToken', { token: target.tokenId, pin });
}

// ---- commands through the daemon ------------------------------------------------------------

async function runClientCommand(group: string, command: string | undefined, rest: string[], values: Values): Promise<number> {
  const client = await SignerClient.connect(socketPath(values), { timeoutMs: values['timeout-ms'] ? Number(values['timeout-ms']) : 120_000 });
  const call = <O extends OperationName>(op: O, req: Operations[O]['req']): Promise<Operations[O]['res']> => client.call(op, req);
  const out = (json: unknown, human: () => string): number => {
    process.stdout.write(values.json ? JSON.stringify(json, null, 2) + '\n' : human() + '\n');
    return 0;
  };
  const arg = (i: number, what: string): string => {
    const value = rest[i];
    if (!value) throw new UsageError(`missing ${what}`);
    return value;
  };
  try {
    switch (group === 'sign' ? 'sign' : `${group} ${command ?? ''}`.trim()) {
      case 'daemon status': {
        const health = await call('health', {});
        return out(health, () =>
          [
            `signer ${health.status}, up ${health.uptimeSeconds} s`,
            ...health.modules.map((m) => `module ${m.type}: ${m.loaded ? 'loaded' : `FAILED ${m.error ?? ''}`}`),
            ...health.tokens.map((t) => `token ${t.tokenId}: ${tokenState(t)}`),
            ...(health.connections ?? []).map((c) => `socket ${c.socket}: ${c.connections} connection(s), ${c.pendingBytes} bytes pending, ${c.refusedConnections} refused`),
          ].join('\n'),
        );
      }
      case 'token list': {
        const tokens = await call('listTokens', {});
        return out(tokens, () => table(['TOKEN ID', 'LABEL', 'SERIAL', 'STATE', 'STATUS'], tokens.map((t) => [t.tokenId, t.label, t.serialNumber, tokenState(t), t.status])));
      }
      case 'token show': {
        const t = await call('getToken', { token: arg(0, '<token>') });
        return out(t, () => [`${t.tokenId} (${t.uri})`, `  state ${tokenState(t)}, status ${t.status}, read-only ${t.readOnly}, batch signing ${t.batchSigningEnabled}`, ...(t.keySpecs ? [`  generates ${t.keySpecs.join(', ') || 'no key type the signer uses'}`, `  signs ${t.signAlgorithms!.join(', ') || 'no algorithm the signer uses'}`] : []), ...(t.keys ?? []).map((k) => `  key ${k.keyId} ${k.algorithm}-${k.size} ${k.usage ?? '-'} certs ${k.certs.length} csrs ${k.csrs.length}${k.available ? '' : ' (not on token)'}`)].join('\n'));
      }
      case 'token init': {
        const userPin = await requireSecret(pinSource(values, ''), 'New token PIN: ');
        const soPin = await requireSecret(pinSource(values, 'so-'), 'New security officer (SO) PIN: ');
        const t = await call('initToken', { label: values.label ?? DEFAULT_SOFT_TOKEN_LABEL, soPin, userPin, moduleType: values.module });
        return out(t, () => `initialised ${t.tokenId}`);
      }
      case 'token login': {
        const token = arg(0, '<token>');
        const pin = await requireSecret(pinSource(values, ''), `PIN for token ${token}: `);
        const t = await call('activateToken', { token, pin });
        return out(t, () => `${t.tokenId} ${tokenState(t)}`);
      }
      case 'token logout': {
        const t = await call('deactivateToken', { token: arg(0, '<token>') });
        return out(t, () => `${t.tokenId} ${tokenState(t)}`);
      }
      case 'token change-pin': {
        const token = arg(0, '<token>');
        const oldPin = await requireSecret(pinSource(values, ''), `Current PIN for ${token}: `);
        const newPin = await requireSecret(pinSource(values, 'new-'), 'New PIN: ');
        const t = await call('changePin', { token, oldPin, newPin });
        return out(t, () => `PIN changed for ${t.tokenId}`);
      }
      case 'key generate': {
        const usage = values.usage?.toUpperCase();
        if (usage !== 'SIGNING' && usage !== 'AUTHENTICATION') throw new UsageError('--usage SIGNING or AUTHENTICATION is required');
        const algorithm = (values.algorithm ?? (values.curve ? 'EC' : 'RSA')).toUpperCase();
        if (algorithm !== 'RSA' && algorithm !== 'EC') throw new UsageError('--algorithm must be RSA or EC');
        const k = await call('generateKey', { token: arg(0, '<token>'), algorithm, bits: values.bits ? Number(values.bits) : undefined, curve: values.curve, usage, friendlyName: values.name });
        return out(k, () => `${k.keyId} ${k.algorithm}-${k.size} ${k.usage} on ${k.tokenId}`);
      }
      case 'key list': {
        const keys = await call('listKeys', { token: rest[0] });
        return out(keys, () => table(['KEY ID', 'TOKEN', 'ALG', 'USAGE', 'CERTS', 'ON TOKEN'], keys.map((k) => [k.keyId, k.tokenId, `${k.algorithm}-${k.size}`, k.usage ?? '-', String(k.certs.length), k.available ? 'yes' : 'no'])));
      }
      case 'key delete': {
        const r = await call('deleteKey', { keyId: arg(0, '<keyId>') });
        return out(r, () => `deleted ${r.keyId}`);
      }
      case 'csr generate': {
        const format = (values.format ?? 'PEM').toUpperCase();
        if (format !== 'PEM' && format !== 'DER') throw new UsageError('--format must be PEM or DER');
        const usage = values.usage?.toUpperCase() as 'SIGNING' | 'AUTHENTICATION' | undefined;
        const r = await call('generateCsr', { keyId: arg(0, '<keyId>'), usage, memberId: values.member, serverId: values.server, subject: values.subject, format });
        if (values.out) writeFileSync(values.out, format === 'PEM' ? r.csr : Buffer.from(r.csr, 'base64'));
        if (values.json) return out(r, () => '');
        if (values.out) return out(r, () => `CSR ${r.csrId} (${r.subject}) written to ${values.out}`);
        if (format === 'DER') throw new UsageError('--format DER needs --out');
        process.stdout.write(r.csr);
        return 0;
      }
      case 'csr delete': {
        const r = await call('deleteCsr', { csrId: arg(0, '<csrId>') });
        return out(r, () => `deleted CSR ${r.csrId}`);
      }
      case 'cert import': {
        const cert = readCertFile(arg(0, '<certificate file>'));
        const chain = values.chain ? splitPem(readFileSync(values.chain, 'utf8')) : undefined;
        const c = await call('importCert', { cert, chain, memberId: values.member, active: values.inactive ? false : undefined });
        return out(c, () => `imported ${c.hash} for key ${c.keyId}: ${c.subject} (${c.status}, ${c.active ? 'active' : 'inactive'})`);
      }
      case 'cert list': {
        const certs = await call('listCerts', { keyId: values.key });
        return out(certs, () => table(['HASH', 'KEY', 'STATUS', 'ACTIVE', 'SUBJECT'], certs.map((c) => [c.hash.slice(0, 16) + '…', c.keyId.slice(0, 12) + '…', c.status, c.active ? 'yes' : 'no', c.subject])));
      }
      case 'cert activate':
      case 'cert disable': {
        const c = await call(command === 'activate' ? 'activateCert' : 'disableCert', { hash: arg(0, '<hash>') });
        return out(c, () => `${c.hash} ${c.active ? 'active' : 'inactive'}`);
      }
      case 'cert status': {
        const c = await call('setCertStatus', { hash: arg(0, '<hash>'), status: arg(1, '<status>') as CertStatus });
        return out(c, () => `${c.hash} ${c.status}`);
      }
      case 'cert delete': {
        const r = await call('deleteCert', { hash: arg(0, '<hash>') });
        return out(r, () => `deleted ${r.hash}`);
      }
      case 'sign': {
        if (!command) throw new UsageError('missing <keyId>');
        return await signCommand(call, command, values, out);
      }
      case 'verify': {
        const algorithm = values.algorithm ?? 'SHA256withRSA';
        const digest = digestInput(values, algorithm);
        if (!values.signature) throw new UsageError('--signature FILE is required');
        const signature = readFileSync(values.signature).toString('base64');
        const cert = values.cert ? readCertFile(values.cert) : undefined;
        if (!cert && !values.key) throw new UsageError('--key ID or --cert FILE is required');
        const r = await call('verify', { keyId: values.key, cert, algorithm, digest, signature });
        out(r, () => (r.valid ? 'signature valid' : 'signature NOT valid'));
        return r.valid ? 0 : 1;
      }
      default:
        throw new UsageError(`unknown command "${[group, command].filter(Boolean).join(' ')}"`);
    }
  } finally {
    client.close();
  }
}

// ---- global configuration (no daemon needed) -------------------------------------------------

async function confCommand(command: string | undefined, rest: string[], values: Values): Promise<number> {
  const print = (json: unknown, human: string): number => {
    process.stdout.write(values.json ? JSON.stringify(json, null, 2) + '\n' : human + '\n');
    return 0;
  };
  if (command === 'show') {
    const conf = loadGlobalConf(globalConfDir(values, false)!);
    const view = globalConfView(conf);
    const own = view.instances.find((i) => i.instanceIdentifier === conf.instanceIdentifier)!;
    return print(view, [
      `instance ${conf.instanceIdentifier} (configuration version ${own.configurationVersion}${view.expiresAt ? `, expires ${view.expiresAt}` : ''})`,
      ...own.approvedCas.map((ca) => `CA ${ca.name}: ${ca.topCa.subject}; OCSP ${ca.topCa.ocsp.map((o) => o.url).join(', ') || '-'}${ca.authenticationOnly ? ' (authentication only)' : ''}`),
      ...own.approvedTsas.map((t) => `TSA ${t.name}: ${t.url}`),
      ...own.members.map((m) => `member ${m.id} "${m.name}"${m.subsystems.length ? `: ${m.subsystems.join(', ')}` : ''}`),
      ...own.securityServers.map((s) => `server ${s.id} at ${s.address}, ${s.authCertHashes.length} auth cert(s), ${s.clients.length} client(s)${s.maintenanceMode ? `, in maintenance mode${s.maintenanceMode.message ? `: ${s.maintenanceMode.message}` : ''}` : ''}`),
      ...own.globalGroups.map((g) => `group ${g.groupCode}: ${g.members.join(', ')}`),
      `OCSP freshness ${own.ocspFreshnessSeconds} s`,
    ].join('\n'));
  }
  if (command === 'download') {
    const file = rest[0];
    if (!file) throw new UsageError('missing <anchor.xml>');
    const dir = globalConfDir(values, false)!;
    const report = await new ConfigurationDownloader({ allowedFederations: allowedFederations(values) }).download(loadConfigurationAnchor(file), dir);
    const conf = loadGlobalConf(dir);
    const federated = report.federated.map((f) => ({ instance: f.instance, url: f.url, error: f.error && { code: f.error.faultCode, message: f.error.message } }));
    return print(
      { dir, instanceIdentifier: conf.instanceIdentifier, url: report.url, version: report.version, expiresAt: conf.expiresAt?.toISOString(), parts: report.parts, federated },
      [`configuration of ${conf.instanceIdentifier} (version ${report.version ?? '2'}, from ${report.url}) installed in ${dir}, valid until ${conf.expiresAt?.toISOString() ?? '-'}`, ...federated.map((f) => `federated ${f.instance}: ${f.error ? `failed, ${f.error.code}: ${f.error.message}` : `from ${f.url}`}`)].join('\n'),
    );
  }
  if (command === 'anchor') {
    const file = rest[0];
    if (!file) throw new UsageError('missing <anchor.xml>');
    const anchor = loadConfigurationAnchor(file);
    const view = { instanceIdentifier: anchor.instanceIdentifier, generatedAt: anchor.generatedAt?.toISOString(), sources: anchor.sources.map((s) => ({ downloadUrl: s.downloadUrl, verificationCerts: s.verificationCerts.map(certificateView) })) };
    return print(view, [`instance ${view.instanceIdentifier}`, ...view.sources.map((s) => `source ${s.downloadUrl}: ${s.verificationCerts.map((c) => c.subject).join('; ')}`)].join('\n'));
  }
  throw new UsageError(`unknown command "conf ${command ?? ''}"`);
}

// ---- ASiC containers (no daemon needed) -----------------------------------------------------

async function asicCommand(command: string | undefined, rest: string[], values: Values): Promise<number> {
  if (command === 'export') return asicExport(rest, values);
  if (command !== 'verify') throw new UsageError(`unknown command "asic ${command ?? ''}"`);
  const file = rest[0];
  if (!file) throw new UsageError('missing <file.asice>');
  const conf = values['load-only'] ? undefined : loadGlobalConf(globalConfDir(values, false)!);
  let v;
  try {
    // Read from the file as it is needed: a container of a large attachment is never held whole.
    if (!conf) return printLoaded(file, await readAsicFile(file), values);
    v = await verifyAsicFile(file, conf, { allowUnstamped: values['allow-unstamped'] });
  } catch (err) {
    const e = toXrdError(err);
    if (values.json) process.stdout.write(JSON.stringify({ valid: false, file, error: { code: e.fullCode, message: e.message } }, null, 2) + '\n');
    else process.stdout.write(`Verification failed: ${e.fullCode}: ${e.message}\n${e.code === 'MissingTimestamp' ? 'To verify it as of its signing time anyway: --allow-unstamped\n' : ''}`);
    return 1;
  }
  const stamp = v.batchTimestamp ?? v.timestamp;
  const view = {
    valid: true,
    file,
    queryId: v.queryId,
    message: v.isResponse ? 'response' : 'request',
    signer: { id: formatClientId(v.signer), subject: v.signingCert.subject, issuer: v.signingCert.issuer, serialNumber: v.signingCert.serialNumber, notBefore: v.signingCert.notBefore.toISOString(), notAfter: v.signingCert.notAfter.toISOString() },
    signingTime: v.signingTime.toISOString(),
    hashChain: v.hashChain,
    stamped: v.stamped,
    timestamp: stamp ? { tsa: stamp.tsaSubject, time: stamp.genTime.toISOString(), batch: v.batchTimestamp !== undefined } : null,
    validatedAt: v.validatedAt.toISOString(),
    ocsp: v.ocsp.map((o) => ({ subject: o.subject, producedAt: o.producedAt.toISOString(), thisUpdate: o.thisUpdate.toISOString() })),
    verifiedParts: v.verifiedParts,
    unverifiedParts: v.unverifiedParts,
  };
  if (values.json) process.stdout.write(JSON.stringify(view, null, 2) + '\n');
  else {
    process.stdout.write(
      [
        'Verification successful.',
        `Signer ${view.signer.id} (${view.message} ${view.queryId || '-'})`,
        `    Certificate: ${view.signer.subject}`,
        `    Issuer: ${view.signer.issuer}, serial number (hex) ${view.signer.serialNumber}, valid ${view.signer.notBefore} to ${view.signer.notAfter}`,
        `    Signed at ${view.signingTime}${view.hashChain ? ' (hash chain)' : ''}`,
        view.timestamp ? `Timestamp by ${view.timestamp.tsa} at ${view.timestamp.time}${view.timestamp.batch ? ' (batch)' : ''}` : 'NOT timestamped (--allow-unstamped): certificates checked as of the signing time its signer claims',
        ...view.ocsp.map((o) => `OCSP response for ${o.subject}: good, produced at ${o.producedAt}`),
        `Parts verified: ${view.verifiedParts.join(', ')}`,
        ...view.unverifiedParts.map((p) => `Not in the container, digest trusted from the hash chain: ${p}`),
      ].join('\n') + '\n',
    );
  }
  return 0;
}

/** What `asic verify --load-only` found: the container loads; nothing was verified. */
function printLoaded(file: string, c: AsicFileContents, values: Values): number {
  const view = { valid: true, loadOnly: true, file, messageBytes: c.message.length, attachments: c.attachments.length, hashChain: c.hashChain !== undefined, batchTimestamp: c.timestampToken !== undefined };
  if (values.json) process.stdout.write(JSON.stringify(view, null, 2) + '\n');
  else {
    const parts = [`message.xml (${view.messageBytes} bytes)`, `${view.attachments} attachment(s)`, view.hashChain ? 'signature hash chain' : 'no signature hash chain', view.batchTimestamp ? 'batch timestamp' : 'no batch timestamp'];
    process.stdout.write(`Container loads: ${parts.join(', ')}. Nothing verified (--load-only).\n`);
  }
  return 0;
}

/**
 * Reads the message log file (while a proxy may be writing it) and writes one container per record,
 * streamed: attachments in files are copied in chunks, never held whole.
 */
async function asicExport(rest: string[], values: Values): Promise<number> {
  const queryId = rest[0];
  if (queryId === undefined) throw new UsageError('missing <queryId>');
  if (!values.db) throw new UsageError('missing --db <message log file>');
  const dir = resolve(values.out ?? '.');
  const reader = MessageLogReader.openExisting(values.db);
  let containers;
  try {
    containers = reader.exportAsic(queryId, { allowUnstamped: values['allow-unstamped'] });
  } finally {
    reader.close();
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot create ${dir}: ${(err as Error).message}` }, { cause: err });
  }
  const written = [];
  for (const c of containers) {
    const file = join(dir, c.name);
    const bytes = await c.writeTo(file);
    const view = { file, message: c.isResponse ? 'response' : 'request', recordId: c.recordId, bytes, timestamp: c.timestamp ? { time: c.timestamp.time.toISOString(), batch: c.timestamp.batch } : null };
    if (!values.json) {
      const stamp = view.timestamp ? `timestamp ${view.timestamp.time}${view.timestamp.batch ? ' (batch)' : ''}` : 'NOT timestamped';
      process.stdout.write(`wrote ${file} (${view.message}, record ${view.recordId}, ${stamp})\n`);
    }
    written.push(view);
  }
  if (values.json) process.stdout.write(JSON.stringify({ queryId, dir, containers: written }, null, 2) + '\n');
  else process.stdout.write(`${written.length} container${written.length === 1 ? '' : 's'} of query ${queryId} in ${dir}\n`);
  return 0;
}

// ---- local test PKI (no daemon needed) ------------------------------------------------------

async function testPkiCommand(command: string | undefined, args: string[], values: Values): Promise<number> {
  const dir = values.dir ?? join(dataDir(values), 'testpki');
  const print = (json: unknown, human: string): number => {
    process.stdout.write(values.json ? JSON.stringify(json, null, 2) + '\n' : human + '\n');
    return 0;
  };
  switch (command) {
    case 'init': {
      const port = (v: string | undefined) => (v === undefined ? undefined : Number(v));
      const pki = LocalPki.init(dir, { instance: values.instance, ocspPort: port(values['ocsp-port']), tsaPort: port(values['tsa-port']), confPort: port(values['conf-port']), managementPort: port(values['management-port']) ?? 4001 });
      return print({ dir, instance: pki.instance, globalConf: pki.globalConfDir, anchor: pki.anchorFile }, `test PKI for instance ${pki.instance} in ${dir}; global configuration in ${pki.globalConfDir}; anchor ${pki.anchorFile}`);
    }
    case 'issue': {
      if (!values.csr) throw new UsageError('--csr FILE is required');
      const usage = values.usage?.toLowerCase();
      if (usage !== 'sign' && usage !== 'auth') throw new UsageError('--usage sign or auth is required');
      const csrText = readFileSync(values.csr);
      const der = csrText.toString('latin1').includes('-----BEGIN') ? Buffer.from(csrText.toString('latin1').replace(/-----[^-]+-----|\s+/g, ''), 'base64') : csrText;
      const cert = LocalPki.open(dir).issue(der, usage, values.server);
      const pem = toPem(cert, 'CERTIFICATE');
      if (values.out) writeFileSync(values.out, pem);
      return print({ ...certificateView(cert), pem }, values.out ? `certificate written to ${values.out}` : pem.trimEnd());
    }
    case 'revoke': {
      if (!values.cert) throw new UsageError('--cert FILE is required');
      LocalPki.open(dir).revoke(parseCertificate(readFileSync(values.cert)).der);
      return print({ revoked: true }, 'revoked');
    }
    case 'serve': {
      const running = await LocalPki.open(dir).serve();
      print(
        { ocsp: running.ocspUrl, tsa: running.tsaUrl, conf: running.confUrl, management: running.managementUrl ?? null },
        `OCSP responder ${running.ocspUrl}\nTSA ${running.tsaUrl}\nconfiguration source ${running.confUrl}\nmanagement service ${running.managementUrl ?? 'none (the PKI was made without a management port)'}`,
      );
      return new Promise<number>((resolve) => {
        const stop = () => void running.close().then(() => resolve(0));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    }
    case 'requests': {
      const requests = LocalPki.open(dir).managementRequests();
      const lines = requests.map((r) => [r.id, r.status, r.type, r.serverId, requestSubject(r), r.receivedAt].join('\t'));
      return print({ requests }, requests.length ? lines.join('\n') : 'no management requests');
    }
    case 'approve': {
      const id = args[0];
      if (!id) throw new UsageError('the id of the request to approve is required (xrd testpki requests lists them)');
      const approved = LocalPki.open(dir).approveManagementRequest(id);
      return print(approved, `request ${approved.id} (${approved.type}) approved: ${approved.serverId} ${requestSubject(approved)}`);
    }
    default:
      throw new UsageError(`unknown command "testpki ${command ?? ''}"`);
  }
}

function certificateView(der: Buffer): { subject: string; issuer: string; notAfter: string; sha256: string } {
  const cert = parseCertificate(der);
  return { subject: cert.subject, issuer: cert.issuer, notAfter: cert.notAfter.toISOString(), sha256: cert.hash };
}

function globalConfView(conf: GlobalConf) {
  const ca = (c: CaCertificate) => ({ ...certificateView(c.cert), ocsp: c.ocsp.map((o) => ({ url: o.url, cert: o.cert && certificateView(o.cert) })) });
  return {
    instanceIdentifier: conf.instanceIdentifier,
    expiresAt: conf.expiresAt?.toISOString(),
    instances: [...conf.shared.values()].map((p) => ({
      instanceIdentifier: p.instanceIdentifier,
      configurationVersion: p.configurationVersion,
      approvedCas: p.approvedCas.map((c) => ({ name: c.name, authenticationOnly: c.authenticationOnly, certificateProfileInfo: c.certificateProfileInfo, topCa: ca(c.topCa), intermediateCas: c.intermediateCas.map(ca) })),
      approvedTsas: p.approvedTsas.map((t) => ({ name: t.name, url: t.url, cert: certificateView(t.cert) })),
      members: p.members.map((m) => ({ id: formatClientId(m.id), name: m.name, subsystems: m.subsystems })),
      securityServers: p.securityServers.map((s) => ({
        id: `${formatClientId(s.owner)}/${s.serverCode}`,
        address: s.address,
        authCertHashes: s.authCertHashes.map((h) => `${p.authCertHashAlgorithm}:${h.toString('hex')}`),
        clients: s.clients.map(formatClientId),
        maintenanceMode: s.maintenanceMode,
      })),
      globalGroups: p.globalGroups.map((g) => ({ groupCode: g.groupCode, description: g.description, members: g.members.map(formatClientId) })),
      memberClasses: p.memberClasses,
      ocspFreshnessSeconds: p.ocspFreshnessSeconds,
    })),
    timeStampingIntervalSeconds: conf.privateParams?.timeStampingIntervalSeconds,
    managementService: conf.privateParams?.managementService && {
      authCertRegServiceAddress: conf.privateParams.managementService.authCertRegServiceAddress,
      managementRequestServiceProviderId: conf.privateParams.managementService.managementRequestServiceProviderId && formatClientId(conf.privateParams.managementService.managementRequestServiceProviderId),
    },
  };
}

async function signCommand(
  call: <O extends OperationName>(op: O, req: Operations[O]['req']) => Promise<Operations[O]['res']>,
  keyId: string,
  values: Values,
  out: (json: unknown, human: () => string) => number,
): Promise<number> {
  const algorithm = values.algorithm ?? 'SHA256withRSA';
  const format = values.format === 'raw' ? 'raw' : 'der';
  const r = await call('sign', { keyId, algorithm, digest: digestInput(values, algorithm), format });
  const signature = Buffer.from(r.signature, 'base64');
  if (values.out) writeFileSync(values.out, signature);
  return out({ keyId, algorithm, signature: r.signature }, () => (values.out ? `signature (${signature.length} bytes) written to ${values.out}` : r.signature));
}

/** Base64 digest from --digest (hex or base64) or the hash of --file under the algorithm's digest. */
function digestInput(values: Values, algorithm: string): string {
  const alg = SIGN_ALGORITHMS.get(algorithm);
  if (!alg) throw new UsageError(`unknown --algorithm ${algorithm} (known: ${[...SIGN_ALGORITHMS.keys()].join(', ')})`);
  if (values.digest) return /^[0-9a-fA-F]+$/.test(values.digest) ? Buffer.from(values.digest, 'hex').toString('base64') : values.digest;
  if (values.file) return createHash(alg.digest.replace('-', '').toLowerCase()).update(readFileSync(values.file)).digest('base64');
  throw new UsageError('--file FILE or --digest HEX is required');
}

function readCertFile(path: string): string {
  const data = readFileSync(path);
  const text = data.toString('latin1');
  return text.includes('-----BEGIN CERTIFICATE-----') ? text : data.toString('base64');
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function tokenState(t: { available: boolean; active: boolean; status: string }): string {
  if (!t.available) return 'not available';
  if (t.status === 'NOT_INITIALIZED') return 'not initialised';
  return t.active ? 'logged in' : 'logged out';
}

/** What a management request is about besides its server, as `xrd testpki requests` shows it. */
function requestSubject(r: ManagementRequestView): string {
  const parts = [r.client, r.address !== undefined ? `address ${r.address}` : undefined, r.authCertHash !== undefined ? `authentication certificate ${r.authCertHash}` : undefined, r.subsystemName !== undefined ? `name "${r.subsystemName}"` : undefined, r.message !== undefined ? `message "${r.message}"` : undefined];
  return parts.filter((p) => p !== undefined).join(' ') || '-';
}
