/**
 * The signer's commands: `daemon start` runs the daemon in this process, so PINs typed at its prompt
 * go into the signer and nowhere else; `daemon status`, `token`, `key`, `csr`, `cert`, `sign` and
 * `verify` talk to a running daemon over its administration socket.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { XrdError, toXrdError } from '../platform/errors.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { SignerClient } from '../signerapi/signer-client.ts';
import type { CertStatus } from '../signerapi/cert-states.ts';
import type { SignerService } from '../signer/signer-service.ts';
import type { OperationName, Operations, TokenView } from '../signerapi/operations.ts';
import { SIGN_ALGORITHMS } from '../signerapi/algorithms.ts';
import { autologin, parseAutologinSource, type AutologinSource } from './autologin.ts';
import { allowedFederations, dataDir, devicesIni, globalConfDir, pinSource, proxySocketPath, socketPath, type Values } from './options.ts';
import { readSecret, type SecretSource } from './secrets.ts';
import { table } from './table.ts';
import { UsageError } from './usage-error.ts';

export const DEFAULT_SOFT_TOKEN_LABEL = 'xrd-softtoken';

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

async function requireSecret(source: SecretSource, question: string): Promise<string> {
  const value = await readSecret(source, question, true);
  if (!value) throw new UsageError(`${question.replace(/: $/, '')} is required`);
  return value;
}

// ---- daemon start ---------------------------------------------------------------------------

export async function daemonStart(values: Values): Promise<number> {
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
async function prepareDefaultToken(service: SignerService, values: Values, log: Logger): Promise<void> {
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

export async function signerCommand(group: string, command: string | undefined, rest: string[], values: Values): Promise<number> {
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

