/**
 * `xrd`, the administrator's command line: parses the command line, hands each command group to its
 * file (signer-commands.ts, proxy-commands.ts, admin-commands.ts, …) and reports errors.
 * Exit codes: 0 success, 1 the operation failed (coded error), 2 usage error, 3 signer unreachable.
 */
import { XrdError, toXrdError } from '../platform/errors.ts';
import { ADMIN_USAGE, adminCommand } from './admin-commands.ts';
import { asicCommand } from './asic-commands.ts';
import { BACKUP_USAGE, backupCommand } from './backup-commands.ts';
import { confCommand } from './conf-commands.ts';
import { MESSAGELOG_USAGE, messagelogCommand } from './messagelog-commands.ts';
import { dataDir, devicesIni, globalConfDir, parse, pinSource, proxySocketPath, socketPath } from './options.ts';
import { SERVER_LIMITS_USAGE, internalCertCommand, proxyStart } from './proxy-commands.ts';
import { readSecret } from './secrets.ts';
import { SERVER_USAGE, isServerCommand, serverCommand } from './server-commands.ts';
import { SERVICE_USAGE, isServiceCommand, serviceCommand } from './service-commands.ts';
import { daemonStart, signerCommand } from './signer-commands.ts';
import { UsageError } from './usage-error.ts';

// The development commands' lines (local, testpki) are here, not in dev-commands.ts: `xrd --help`
// must not load the development wing.
const USAGE = `xrd — X-Road security server: signer, proxies, administration

  xrd local start [--dir var/local] [--cluster] [--store sqlite|postgres] [--json]   a complete local instance on loopback: test PKI, two security servers
                   (SoftHSM token, signer, proxy, admin API each), a blank third to register (MEMBER_01), test services;
                   prints endpoints, admin API keys and curl calls
  xrd proxy start [--data-dir D] [--conf DIR] [--proxy-socket P] [--client-address A] [--server-address A]
                  [--http-port 8080] [--https-port 8443] [--server-port 5500] [--ocsp-port 5577]
                  [--monitoring-port 2080] [--remote-server-port 5500] [--remote-ocsp-port 5577]
                  [--max-message-bytes N (0: no limit)] [--max-soap-bytes N] [--spool-threshold-bytes N]
                  [--fault-codes camel|snake] [--min-client-version 7.6.0]
                  [--timestamping-interval S] [--health-port 5588] [--health-cache-ms 2000] [--opmonitor-records-offset 60]
                  [archive options, see messagelog below]
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
  xrd asic export <queryId> [--db <data-dir>/messagelog.db] [--out DIR] [--allow-unstamped]
                                    write the query's logged request and response as containers
${MESSAGELOG_USAGE}
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
    if ((group === 'local' && command === 'start') || group === 'testpki') {
      // Loaded only here: a production server's commands never load src/dev.
      const { devCommand } = await import('./dev-commands.ts');
      return await devCommand(group, command, rest, values);
    }
    if (group === 'admin') return await adminCommand(positionals.slice(1), values, { dataDir: dataDir(values), socketPath: socketPath(values), globalConfDir: globalConfDir(values, false)!, devicesIni: devicesIni(values) });
    if (group === 'conf') return await confCommand(command, rest, values);
    if (group === 'asic') return await asicCommand(command, rest, values, dataDir(values));
    if (group === 'messagelog') return await messagelogCommand(command, rest, values, dataDir(values));
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
    return await signerCommand(group!, command, rest, values);
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
