/**
 * Backup and restore of a security server's configuration and key metadata against a real signer
 * daemon on SoftHSM, its socket outside its data folder as under systemd: a backup taken while the
 * signer runs, changes made afterwards, a restore refused while the signer runs, the admin API's
 * restore while it runs (refused whole when the key configuration differs, else the server
 * configuration put back and the keys checked), damaged archives
 * refused with nothing touched, listings that notice a changed archive, a restore that fails
 * half-way put back, owners and clamped modes of restored files, and a restore that brings the
 * deleted certificate back while the keys, which never left the token, still sign. The CLI and the
 * system `tar` read the same archives; the CLI restores devices.ini only to where --devices says.
 */
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate, createHash, randomBytes, verify as nodeVerify } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { backupSigningKeyFile, checkBackupKeys, createBackup, listBackups, readBackupManifest, restoreBackup, writeSignedArchive, type BackupInfo } from '../../src/admin/backup.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { readTarGz, writeTarGz } from '../../src/platform/tar.ts';
import { ensureInternalTls } from '../../src/serverconf/internal-tls.ts';
import { parseServerConfJson, serializeServerConfJson } from '../../src/serverconf/serverconf-json.ts';
import { changeServerConfIn, openServerConfStore, type ServerConfStore } from '../../src/serverconf/store.ts';
import { parseSecurityServerId } from '../../src/protocol/identifiers.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import type { CertView } from '../../src/signerapi/operations.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { createTestbed, type Testbed } from '../../softhsm/testbed.ts';
import { freePort } from '../support/net.ts';

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
const PIN = '5678';
const SERVER_CONF = `${JSON.stringify({ serverId: 'LOCAL/COM/1111/ss1', clients: [{ id: 'LOCAL/COM/1111/PROVIDER', connectionType: 'HTTP' }] }, null, 2)}\n`;

let testbed: Testbed;
let signerDir: string;
/** As under systemd: the socket is not in the signer's data folder (/run/xrd/signer.sock there). */
let socketPath: string;
let proxyDir: string;
let backupsDir: string;
let pki: LocalPki;
let daemon: SignerDaemon | undefined;
let client: SignerClient;
let tokenId: string;
/** The signing key with its certificate, and a second key that only has a CSR. */
let signKey: { keyId: string; cert: CertView };
let authKeyId: string;
let backup: BackupInfo;

async function startDaemon(): Promise<void> {
  daemon = await startSignerDaemon({ dataDir: signerDir, devicesIni: testbed.devicesIni, socketPath }, silentLogger());
  client = await SignerClient.connect(daemon.socketPath);
}

async function stopDaemon(): Promise<void> {
  client.close();
  await daemon!.close();
  daemon = undefined;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
/** The server's backup signing key file, in its proxy folder. */
const keyFile = () => backupSigningKeyFile(proxyDir);
const serverKey = () => Buffer.from(readFileSync(keyFile(), 'utf8').trim(), 'hex');

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(XrdError);
    return (err as XrdError).code;
  }
  throw new Error('expected a coded error');
}

/** Every file under the two data folders with its content hash: what "nothing touched" means. */
/** The proxy's configuration store, closed after the test. */
async function storedConf(): Promise<ServerConfStore> {
  const store = await openServerConfStore(proxyDir);
  onTestFinished(() => store.close());
  return store;
}

function snapshot(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.isFile()) out[path] = sha256(readFileSync(path));
    }
  };
  walk(signerDir);
  walk(proxyDir);
  return out;
}

beforeAll(async () => {
  testbed = createTestbed();
  signerDir = testbed.dataDir;
  socketPath = join(testbed.dir, 'run', 'signer.sock');
  mkdirSync(dirname(socketPath), { mode: 0o750 });
  proxyDir = join(testbed.dir, 'proxy');
  backupsDir = join(testbed.dir, 'backups');
  pki = LocalPki.init(join(testbed.dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort() });
  await startDaemon();
  tokenId = (await client.call('initToken', { label: 'backup', soPin: '0000', userPin: PIN })).tokenId;
  await client.call('activateToken', { token: tokenId, pin: PIN });
  await client.call('setTokenFriendlyName', { token: tokenId, friendlyName: 'the backup token' });

  const key = await client.call('generateKey', { token: tokenId, algorithm: 'RSA', usage: 'SIGNING', friendlyName: 'signing key' });
  const csr = await client.call('generateCsr', { keyId: key.keyId, memberId: 'LOCAL/COM/1111', format: 'DER' });
  const der = pki.issue(Buffer.from(csr.csr, 'base64'), 'sign');
  const chain = [readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'), 'utf8')];
  await client.call('importCert', { cert: der.toString('base64'), chain });
  const cert = await client.call('setCertStatus', { hash: (await client.call('listCerts', { keyId: key.keyId }))[0]!.hash, status: 'registration in progress' });
  signKey = { keyId: key.keyId, cert };
  const auth = await client.call('generateKey', { token: tokenId, algorithm: 'EC', usage: 'AUTHENTICATION' });
  await client.call('generateCsr', { keyId: auth.keyId, serverId: 'LOCAL/COM/1111/ss1' });
  authKeyId = auth.keyId;

  mkdirSync(join(proxyDir, 'admin'), { recursive: true, mode: 0o700 });
  writeFileSync(join(proxyDir, 'serverconf.json'), SERVER_CONF);
  ensureInternalTls(join(proxyDir, 'internal-tls'), 'ss1.test');
  writeFileSync(join(proxyDir, 'admin', 'api-keys.json'), '{"keys":[]}\n', { mode: 0o600 });
  writeFileSync(join(proxyDir, 'admin', 'users.json'), '{"version":1,"users":[]}\n', { mode: 0o600 });
  // What must never be in a backup: token files (the daemon's default token folder), logs, caches.
  mkdirSync(join(signerDir, 'softhsm', 'tokens'), { recursive: true });
  writeFileSync(join(signerDir, 'softhsm', 'tokens', 'token.object'), randomBytes(64));
  writeFileSync(join(proxyDir, 'messagelog.db'), 'message log');
  writeFileSync(join(proxyDir, 'opmonitor.db'), 'op monitor');
});

afterAll(async () => {
  if (daemon) await stopDaemon();
  testbed?.cleanup();
});

describe('backup and restore of configuration and key metadata', () => {
  it('a backup taken while the signer works holds the configuration and the key metadata, never the keys, logs or caches', async () => {
    // The signer keeps writing its key configuration while the backup copies it.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) await client.call('setTokenFriendlyName', { token: tokenId, friendlyName: `the backup token ${i}` });
    })();
    const lines: string[] = [];
    try {
      backup = await createBackup({ signerDataDir: signerDir, proxyDataDir: proxyDir, out: backupsDir, label: 'before changes', devicesIni: testbed.devicesIni, progress: (l) => lines.push(l) });
    } finally {
      writing = false;
      await writer;
    }
    expect([...backup.files].sort()).toEqual([
      'devices.ini',
      'proxy/admin/api-keys.json',
      'proxy/admin/users.json',
      'proxy/internal-tls/internal.crt',
      'proxy/internal-tls/internal.key',
      'proxy/serverconf.json',
      'signer/audit.log',
      'signer/keyconf.sqlite',
    ]);
    expect(statSync(backup.file).mode & 0o777).toBe(0o600);
    expect(backup.label).toBe('before changes');
    expect(backup.serverId).toBe('LOCAL/COM/1111/ss1');
    expect(lines.at(-1)).toContain(backup.file);
    const m = backup.manifest!;
    expect(m.keys).toHaveLength(2);
    expect(m.keys.find((k) => k.keyId === signKey.keyId)).toMatchObject({
      tokenId,
      usage: 'SIGNING',
      friendlyName: 'signing key',
      certs: [{ hash: signKey.cert.hash, status: 'registration in progress', active: true, memberId: 'LOCAL/COM/1111' }],
      csrs: 0,
    });
    expect(m.keys.find((k) => k.keyId === authKeyId)).toMatchObject({ usage: 'AUTHENTICATION', certs: [], csrs: 1 });
    expect(m.tokens).toEqual([{ tokenId, friendlyName: expect.stringMatching(/^the backup token/) }]);
    expect(m.files.find((f) => f.path === 'proxy/internal-tls/internal.key')!.mode).toBe(0o600);

    // The system tar reads the same archive; the key configuration copied is a whole database.
    const extracted = join(testbed.dir, 'extracted');
    mkdirSync(extracted);
    execFileSync('tar', ['-xzf', backup.file, '-C', extracted]);
    expect(execFileSync('tar', ['-tzf', backup.file], { encoding: 'utf8' }).trim().split('\n').sort()).toEqual(['manifest.json', 'manifest.hmac', ...backup.files].sort());
    for (const f of m.files) expect(sha256(readFileSync(join(extracted, f.path))), f.path).toBe(f.sha256);
    const copy = new Database(join(extracted, 'signer', 'keyconf.sqlite'), { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(copy.prepare('SELECT status FROM certs WHERE hash = ?').get(signKey.cert.hash)).toEqual({ status: 'registration in progress' });
    copy.close();

    expect(listBackups(backupsDir, keyFile()).map((b) => [b.file, b.keys, b.certs, b.error])).toEqual([[backup.file, 2, 1, null]]);
    expect(readBackupManifest(backup.file, keyFile())).toEqual(m);
  });

  it('the first backup makes the server’s signing key, 0600 and in no backup; without it, or open to others, nothing verifies', () => {
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile(), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    expect(backup.files.some((f) => f.includes('backup-signing'))).toBe(false);
    chmodSync(keyFile(), 0o644);
    expect(() => readBackupManifest(backup.file, keyFile())).toThrow(expect.objectContaining({ code: 'InvalidConfiguration' }));
    chmodSync(keyFile(), 0o600);
    // A new machine without the key: the archive cannot be verified, and the error says which file is missing.
    renameSync(keyFile(), `${keyFile()}.away`);
    try {
      expect(() => readBackupManifest(backup.file, keyFile())).toThrow(expect.objectContaining({ code: 'BackupSignatureInvalid', message: expect.stringContaining(keyFile()) }));
    } finally {
      renameSync(`${keyFile()}.away`, keyFile());
    }
  });

  it('restore is refused while the signer runs, though its socket is elsewhere, and nothing is touched', async () => {
    // The administrator's changes after the backup: a certificate deleted, a key deleted from the
    // token, the server configuration edited.
    await client.call('deleteCert', { hash: signKey.cert.hash });
    await client.call('deleteKey', { keyId: authKeyId });
    await changeServerConfIn(proxyDir, { kind: 'os-user', name: 'test' }, 'EDIT', (conf) => ({ ...conf!, serverId: parseSecurityServerId('LOCAL/COM/1111/ss9') }));
    const before = snapshot();
    // No socket given: the default <signer-dir>/signer.sock does not exist, the signer runs all the same.
    const refused = await restoreBackup({ file: backup.file, signerDataDir: signerDir, proxyDataDir: proxyDir }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'BackupRefused', details: { pid: process.pid } });
    expect((refused as Error).message).toContain(`process ${process.pid}`);
    expect(await codeOf(restoreBackup({ file: backup.file, signerDataDir: signerDir, proxyDataDir: proxyDir, signerSocket: socketPath }))).toBe('BackupRefused');
    expect(snapshot()).toEqual(before);
  });

  it('while the signer runs (the admin API): a backup whose key configuration differs is refused whole; one whose key configuration is the running signer’s restores the server configuration and checks the keys', async () => {
    // Reading the live database (its snapshot) moves SQLite's shared-memory index, and nothing else.
    const content = () => Object.fromEntries(Object.entries(snapshot()).filter(([path]) => !path.endsWith('-shm')));
    const before = content();
    const refused = await restoreBackup({ file: backup.file, signerDataDir: signerDir, proxyDataDir: proxyDir, signerSocket: socketPath, devicesIni: testbed.devicesIni, whileRunning: true }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'BackupNeedsStoppedSigner', details: { files: 'signer/keyconf.sqlite' } });
    expect((refused as Error).message).toContain('xrd backup restore');
    expect(content()).toEqual(before);

    // A backup of the key configuration as the signer has it now (its WAL database, not a copy of
    // the file): the same rows, so only the server configuration changed since is put back.
    const current = await createBackup({ signerDataDir: signerDir, proxyDataDir: proxyDir, out: join(testbed.dir, 'while-running'), devicesIni: testbed.devicesIni });
    await changeServerConfIn(proxyDir, { kind: 'os-user', name: 'test' }, 'EDIT', (conf) => ({ ...conf!, serverId: parseSecurityServerId('LOCAL/COM/1111/ss8') }));
    const report = await restoreBackup({ file: current.file, signerDataDir: signerDir, proxyDataDir: proxyDir, signerSocket: socketPath, devicesIni: testbed.devicesIni, whileRunning: true, actor: { kind: 'user', name: 'alice' } });
    expect(Object.fromEntries(report.files.map((f) => [f.path, f.outcome]))).toMatchObject({ 'signer/keyconf.sqlite': 'unchanged', 'signer/audit.log': 'kept current', 'devices.ini': 'unchanged', 'proxy/serverconf.json': 'restored' });
    expect((await (await storedConf()).read())!.serverId).toEqual(parseSecurityServerId('LOCAL/COM/1111/ss9'));
    expect((await (await storedConf()).auditLog({ limit: 1 }))[0]).toMatchObject({ action: 'RESTORE_BACKUP', actor: { kind: 'user', name: 'alice' }, detail: { restored: ['proxy/serverconf.json'] } });
    expect(report.keys).toMatchObject({ checked: true, held: [signKey.keyId], missing: [] });
    expect(report.keptAside).toEqual([]);
  });

  it('a damaged, altered or foreign archive is refused with BackupCorrupt before anything is touched', async () => {
    await stopDaemon();
    const damagedDir = join(testbed.dir, 'damaged');
    mkdirSync(damagedDir);
    const archive = readFileSync(backup.file);

    const flipped = Buffer.from(archive);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    writeFileSync(join(damagedDir, 'flipped.tar.gz'), flipped);

    // Re-packed with one file changed and the manifest left as it was.
    const entries = readTarGz(archive).map((e) => (e.name === 'proxy/serverconf.json' ? { ...e, data: Buffer.from(SERVER_CONF.replace('ss1', 'evil')) } : e));
    writeFileSync(join(damagedDir, 'altered.tar.gz'), writeTarGz(entries));
    // A well-formed archive that is not a backup at all.
    writeFileSync(join(damagedDir, 'foreign.tar.gz'), writeTarGz([{ name: 'etc/passwd', data: Buffer.from('root:x:0:0::/root:/bin/sh\n'), mode: 0o644 }]));

    const before = snapshot();
    for (const name of ['flipped.tar.gz', 'altered.tar.gz', 'foreign.tar.gz']) {
      const file = join(damagedDir, name);
      expect(await codeOf(restoreBackup({ file, signerDataDir: signerDir, proxyDataDir: proxyDir })), name).toBe('BackupCorrupt');
      expect(() => readBackupManifest(file, keyFile()), name).toThrow(expect.objectContaining({ code: 'BackupCorrupt' }));
    }
    expect(snapshot()).toEqual(before);
    expect(listBackups(damagedDir, keyFile()).map((b) => [b.name, b.error?.code])).toEqual(
      expect.arrayContaining([['flipped.tar.gz', 'BackupCorrupt'], ['altered.tar.gz', 'BackupCorrupt'], ['foreign.tar.gz', 'BackupCorrupt']]),
    );
  });

  it("a crafted archive that would restore an attacker's API key is refused — unsigned, signed with another key, or its manifest changed under this server's signature — before anything is touched", async () => {
    const dir = join(testbed.dir, 'crafted');
    mkdirSync(dir);
    const attackerKeys = Buffer.from(`${JSON.stringify({ version: 1, keys: [{ id: 'attacker', roles: ['XROAD_SYSTEM_ADMINISTRATOR'], createdAt: new Date().toISOString(), sha256: sha256('the attacker’s key') }] })}\n`);
    const genuine = readTarGz(readFileSync(backup.file));
    // Consistent in itself: the attacker's api-keys.json with its size and SHA-256 in the manifest.
    const entries = genuine
      .filter((e) => e.name !== 'manifest.hmac')
      .map((e) => {
        if (e.name === 'proxy/admin/api-keys.json') return { ...e, data: attackerKeys };
        if (e.name !== 'manifest.json') return e;
        const manifest = JSON.parse(e.data.toString('utf8')) as { files: { path: string; size: number; sha256: string }[] };
        for (const f of manifest.files) if (f.path === 'proxy/admin/api-keys.json') Object.assign(f, { size: attackerKeys.length, sha256: sha256(attackerKeys) });
        return { ...e, data: Buffer.from(JSON.stringify(manifest)) };
      });
    const crafted: Record<string, [Buffer, string]> = {
      'unsigned.tar.gz': [writeTarGz(entries), 'BackupUnsigned'],
      'other-key.tar.gz': [writeSignedArchive(entries, randomBytes(32)), 'BackupSignatureInvalid'],
      // The server's own signature, of the manifest before it was changed.
      'old-signature.tar.gz': [writeTarGz([...entries, genuine.find((e) => e.name === 'manifest.hmac')!]), 'BackupSignatureInvalid'],
    };
    const before = snapshot();
    for (const [name, [archive, code]] of Object.entries(crafted)) {
      const file = join(dir, name);
      writeFileSync(file, archive);
      expect(await codeOf(restoreBackup({ file, signerDataDir: signerDir, proxyDataDir: proxyDir })), name).toBe(code);
      expect(() => readBackupManifest(file, keyFile()), name).toThrow(expect.objectContaining({ code }));
    }
    expect(snapshot()).toEqual(before);
    expect(Object.fromEntries(listBackups(dir, keyFile()).map((b) => [b.name, b.error?.code]))).toEqual(Object.fromEntries(Object.entries(crafted).map(([name, [, code]]) => [name, code])));
  });

  it('the archive reader is bounded: too large packed or unpacked, too many entries, names outside the folder, links', async () => {
    const dir = join(testbed.dir, 'unbounded');
    mkdirSync(join(dir, 'src', 'sub'), { recursive: true });
    const tarOf = (name: string, ...args: string[]) => {
      const file = join(dir, name);
      execFileSync('tar', ['--format=ustar', '-czf', file, ...args], { cwd: join(dir, 'src', 'sub') });
      return file;
    };
    writeFileSync(join(dir, 'src', 'escaped'), 'outside');
    symlinkSync('/etc/passwd', join(dir, 'src', 'sub', 'link'));
    const cases: Record<string, string> = {
      // GNU tar keeps a ../ name with -P: it would unpack beside, not below, the folder.
      traversal: tarOf('traversal.tar.gz', '-P', '../escaped'),
      absolute: tarOf('absolute.tar.gz', '-P', join(dir, 'src', 'escaped')),
      link: tarOf('link.tar.gz', 'link'),
    };
    // Many small entries, well within the byte bound.
    for (let i = 0; i < 20; i++) writeFileSync(join(dir, 'src', 'sub', `f${i}`), String(i));
    cases.entries = tarOf('entries.tar.gz', ...Array.from({ length: 20 }, (_, i) => `f${i}`));
    // 200 MiB of zeros gzip to 200 KiB: refused while unpacking (past 128 MiB), not after.
    const bomb = join(dir, 'bomb.tar.gz');
    execFileSync('sh', ['-c', `head -c ${200 * 1024 * 1024} /dev/zero | gzip -1 > ${bomb}`]);
    cases.bomb = bomb;
    const big = join(dir, 'big.tar.gz');
    writeFileSync(big, '');
    truncateSync(big, 200 * 1024 * 1024); // sparse: no disk used, but larger than any backup, and never read
    cases.big = big;
    // Each refused by its own bound: none of these archives has a manifest, so BackupCorrupt alone
    // would also come from a reader without the bounds.
    const reasons: Record<string, RegExp> = {
      traversal: /unsafe or unsupported entry name "\.\.\/escaped"/,
      absolute: /unsafe or unsupported entry name "\//,
      link: /link: only regular files are supported/,
      entries: /more than \d+ entries/,
      bomb: /expands past 134217728 bytes/,
      big: /larger than 134217728 bytes/,
    };
    for (const [name, file] of Object.entries(cases)) {
      const err = await restoreBackup({ file, signerDataDir: signerDir, proxyDataDir: proxyDir }).catch((e: unknown) => e);
      expect(err, name).toMatchObject({ code: 'BackupCorrupt', details: { reason: expect.stringMatching(reasons[name]!) } });
    }
    expect(existsSync(join(signerDir, '..', 'escaped'))).toBe(false);
  });

  it('listing verifies each archive once and still sees one that changed or went since', async () => {
    const dir = join(testbed.dir, 'listed');
    mkdirSync(dir);
    const file = join(dir, 'one.tar.gz');
    const archive = readFileSync(backup.file);
    // Each write a second apart: file times are only as fine as the kernel's clock tick.
    let second = 1_700_000_000;
    const rewrite = (data: Buffer) => {
      writeFileSync(file, data);
      utimesSync(file, ++second, second);
    };
    rewrite(archive);
    expect(listBackups(dir, keyFile()).map((b) => [b.name, b.keys, b.error])).toEqual([['one.tar.gz', 2, null]]);
    expect(listBackups(dir, keyFile()).map((b) => [b.name, b.keys, b.error])).toEqual([['one.tar.gz', 2, null]]);

    // Damaged in place: same name, same size.
    const flipped = Buffer.from(archive);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    rewrite(flipped);
    expect(listBackups(dir, keyFile()).map((b) => [b.name, b.error?.code])).toEqual([['one.tar.gz', 'BackupCorrupt']]);
    rewrite(archive);
    expect(listBackups(dir, keyFile()).map((b) => [b.name, b.error])).toEqual([['one.tar.gz', null]]);
    rmSync(file);
    expect(listBackups(dir, keyFile())).toEqual([]);
  });

  it('a restore that cannot write every file puts back what was there', async () => {
    // The admin folder replaced by a file: api-keys.json cannot be written, after others were.
    const adminDir = join(proxyDir, 'admin');
    const keysFile = readFileSync(join(adminDir, 'api-keys.json'));
    const usersFile = readFileSync(join(adminDir, 'users.json'));
    const signingKey = readFileSync(keyFile());
    rmSync(adminDir, { recursive: true });
    writeFileSync(adminDir, 'not a folder');
    const before = snapshot();
    // The signing key's folder is the one taken away: the signature is not what this is about.
    expect(await codeOf(restoreBackup({ file: backup.file, signerDataDir: signerDir, proxyDataDir: proxyDir, skipSignatureCheck: true }))).toBe('BackupRestoreFailed');
    expect(snapshot()).toEqual(before);
    rmSync(adminDir);
    mkdirSync(adminDir, { mode: 0o700 });
    writeFileSync(join(adminDir, 'api-keys.json'), keysFile, { mode: 0o600 });
    writeFileSync(join(adminDir, 'users.json'), usersFile, { mode: 0o600 });
    writeFileSync(keyFile(), signingKey, { mode: 0o600 });
  });

  it('a backup taken while the signer is stopped leaves no -wal or -shm beside its database', async () => {
    const keyconf = join(signerDir, 'keyconf.sqlite');
    expect(existsSync(`${keyconf}-wal`)).toBe(false);
    const before = snapshot();
    const taken = await createBackup({ signerDataDir: signerDir, proxyDataDir: proxyDir, out: join(testbed.dir, 'stopped') });
    expect(taken.keys).toBe(1); // the AUTHENTICATION key was deleted after the first backup
    expect(existsSync(`${keyconf}-wal`)).toBe(false);
    expect(existsSync(`${keyconf}-shm`)).toBe(false);
    // Nor anything else: the signer's audit.log is the signer's, not the backup's to append to.
    expect(snapshot()).toEqual(before);
  });

  it.skipIf(process.getuid?.() !== 0)('run as root, backup and restore leave files the service users own: those of the file replaced, or of the folder', async () => {
    // Another server laid out as the systemd units do: the signer's folder its user's, the proxy's another's.
    const SIGNER = { uid: 4321, gid: 4320 };
    const PROXY = { uid: 4331, gid: 4330 };
    const other = join(testbed.dir, 'owned');
    const [otherSigner, otherProxy, otherBackups] = ['signer', 'proxy', 'proxy/backups'].map((d) => join(other, d));
    for (const dir of [otherSigner, otherBackups]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(otherSigner, 'keyconf.sqlite'), 'the key configuration being replaced');
    chownSync(otherSigner, SIGNER.uid, SIGNER.gid);
    chownSync(join(otherSigner, 'keyconf.sqlite'), SIGNER.uid, SIGNER.uid);
    chownSync(otherProxy, PROXY.uid, PROXY.gid);
    chownSync(otherBackups, PROXY.uid, PROXY.gid);
    const owner = (path: string) => {
      const st = statSync(path);
      return { uid: st.uid, gid: st.gid };
    };

    // The admin API (the proxy's user) lists what root backed up into its folder, and signs with the key root made.
    const taken = await createBackup({ signerDataDir: signerDir, proxyDataDir: otherProxy, out: otherBackups });
    expect(owner(taken.file)).toEqual(PROXY);
    expect(owner(backupSigningKeyFile(otherProxy))).toEqual(PROXY);
    expect(owner(join(otherProxy, 'admin'))).toEqual(PROXY);

    // Restoring another server's backup: the administrator puts that server's signing key in place.
    writeFileSync(backupSigningKeyFile(otherProxy), readFileSync(keyFile()));
    await restoreBackup({ file: backup.file, signerDataDir: otherSigner, proxyDataDir: otherProxy });
    expect(owner(join(otherSigner, 'keyconf.sqlite'))).toEqual({ uid: SIGNER.uid, gid: SIGNER.uid });
    expect(owner(join(otherSigner, 'audit.log'))).toEqual(SIGNER);
    for (const path of ['serverconf.db', 'internal-tls', 'internal-tls/internal.key', 'internal-tls/internal.crt', 'admin', 'admin/api-keys.json']) {
      expect(owner(join(otherProxy, path)), path).toEqual(PROXY);
    }
  });

  it('modes come back clamped: an edited archive cannot make a key or the API key file readable or writable by others', async () => {
    const loose: Record<string, number> = {
      'signer/keyconf.sqlite': 0o666,
      'proxy/internal-tls/internal.key': 0o644,
      'proxy/admin/api-keys.json': 0o666,
      'proxy/serverconf.json': 0o777,
      'proxy/internal-tls/internal.crt': 0o777,
      'devices.ini': 0o664,
    };
    const entries = readTarGz(readFileSync(backup.file)).map((e) => {
      if (e.name !== 'manifest.json') return { ...e, mode: loose[e.name] ?? e.mode };
      const manifest = JSON.parse(e.data.toString('utf8')) as { files: { path: string; mode: number }[] };
      for (const f of manifest.files) f.mode = loose[f.path] ?? f.mode;
      return { ...e, data: Buffer.from(JSON.stringify(manifest)) };
    });
    // Signed with the server's key: the clamp holds even for an archive that verifies.
    const edited = join(testbed.dir, 'loose.tar.gz');
    writeFileSync(edited, writeSignedArchive(entries, serverKey()));
    const other = join(testbed.dir, 'loose');
    const devices = join(other, 'devices.ini');
    mkdirSync(join(other, 'proxy', 'admin'), { recursive: true, mode: 0o700 });
    writeFileSync(backupSigningKeyFile(join(other, 'proxy')), readFileSync(keyFile()), { mode: 0o600 });
    await restoreBackup({ file: edited, signerDataDir: join(other, 'signer'), proxyDataDir: join(other, 'proxy'), devicesIni: devices });
    const mode = (path: string) => statSync(join(other, path)).mode & 0o777;
    expect(mode('signer/keyconf.sqlite')).toBe(0o600);
    expect(mode('proxy/internal-tls/internal.key')).toBe(0o600);
    expect(mode('proxy/admin/api-keys.json')).toBe(0o600);
    expect(mode('proxy/serverconf.db')).toBe(0o600);
    expect(mode('proxy/internal-tls/internal.crt')).toBe(0o644);
    expect(mode('devices.ini')).toBe(0o644);
  });

  it('with the signer stopped, restore brings back the deleted certificate and its status; the keys still sign, a key deleted from the token is reported missing', async () => {
    // A signer killed outright leaves its pid file; a pid that names no process does not stop a restore.
    const exited = execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim();
    writeFileSync(join(signerDir, 'signer.pid'), `${exited}\n`);
    const lines: string[] = [];
    const logged: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
    const auditBefore = readFileSync(join(signerDir, 'audit.log'));
    const report = await restoreBackup({ file: backup.file, signerDataDir: signerDir, proxyDataDir: proxyDir, devicesIni: testbed.devicesIni, progress: (l) => lines.push(l), log });
    const outcome = Object.fromEntries(report.files.map((f) => [f.path, f.outcome]));
    expect(outcome).toEqual({
      'signer/keyconf.sqlite': 'restored',
      'signer/audit.log': 'kept current',
      'proxy/serverconf.json': 'restored',
      'proxy/internal-tls/internal.crt': 'unchanged',
      'proxy/internal-tls/internal.key': 'unchanged',
      'proxy/admin/api-keys.json': 'unchanged',
      'proxy/admin/users.json': 'unchanged',
      'devices.ini': 'unchanged',
    });
    expect(report.keptAside).toContain(join(signerDir, 'keyconf.sqlite.pre-restore'));
    // The configuration replaced stays in the store's audit trail: the restore is one recorded change.
    expect((await (await storedConf()).auditLog({ limit: 1 }))[0]).toMatchObject({ action: 'RESTORE_BACKUP', actor: { kind: 'system', name: 'xrd backup restore' }, detail: { file: backup.file } });
    expect(report.keys.checked).toBe(false);
    expect(report.keys.notChecked.map((k) => k.keyId).sort()).toEqual([signKey.keyId, authKeyId].sort());
    expect(serializeServerConfJson((await (await storedConf()).read())!)).toBe(serializeServerConfJson(parseServerConfJson(SERVER_CONF)));
    expect(statSync(join(signerDir, 'keyconf.sqlite')).mode & 0o777).toBe(0o600);
    // The restore is in the caller's log; the signer's audit trail is left as it was.
    expect(readFileSync(join(signerDir, 'audit.log'))).toEqual(auditBefore);
    expect(logged.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ event: 'restoreBackup', file: backup.file, created: backup.created, restored: [join(signerDir, 'keyconf.sqlite'), join(proxyDir, 'serverconf.db')], msg: 'backup restored' }),
    ]);
    expect(existsSync(join(signerDir, 'softhsm', 'tokens', 'token.object'))).toBe(true);

    await startDaemon();
    await client.call('activateToken', { token: tokenId, pin: PIN });
    const certs = await client.call('listCerts', { keyId: signKey.keyId });
    expect(certs).toEqual([expect.objectContaining({ hash: signKey.cert.hash, status: 'registration in progress', active: true, memberId: 'LOCAL/COM/1111' })]);
    expect((await client.call('getToken', { token: tokenId })).friendlyName).toMatch(/^the backup token/);

    const message = Buffer.from('signed after the restore');
    const { signature } = await client.call('sign', { keyId: signKey.keyId, algorithm: 'SHA256withRSA', digest: createHash('sha256').update(message).digest('base64') });
    expect(nodeVerify('sha256', message, new X509Certificate(Buffer.from(certs[0]!.cert, 'base64')).publicKey, Buffer.from(signature, 'base64'))).toBe(true);

    const check = await checkBackupKeys(backup.manifest!, client);
    expect(check).toEqual({ checked: true, held: [signKey.keyId], missing: [{ keyId: authKeyId, tokenId, usage: 'AUTHENTICATION', reason: 'the key is not on the token' }], notChecked: [] });
    const keys = await client.call('listKeys', { token: tokenId });
    expect(keys.find((k) => k.keyId === authKeyId)).toMatchObject({ available: false });
  });

  it('xrd backup create, list, restore and check from the command line', async () => {
    const xrd = async (...args: string[]): Promise<{ code: number; stdout: string; json: any }> => {
      try {
        const { stdout } = await promisify(execFile)('node', [XRD, 'backup', ...args], { env: { ...testbed.env, XRD_LOG_LEVEL: 'warn' } });
        return { code: 0, stdout, json: JSON.parse(stdout) };
      } catch (err) {
        const e = err as { code: number; stdout: string };
        return { code: e.code, stdout: e.stdout, json: e.stdout ? JSON.parse(e.stdout) : undefined };
      }
    };
    const cliDir = join(testbed.dir, 'cli-backups');
    const dirs = ['--signer-dir', signerDir, '--proxy-dir', proxyDir, '--devices', testbed.devicesIni];
    const created = await xrd('create', ...dirs, '--out', cliDir, '--label', 'from the CLI', '--json');
    expect(created.code).toBe(0);
    expect(created.json).toMatchObject({ label: 'from the CLI', serverId: 'LOCAL/COM/1111/ss1', keys: 2, certs: 1, error: null });
    expect(statSync(created.json.file).mode & 0o777).toBe(0o600);

    const listed = await xrd('list', '--dir', cliDir, '--json');
    expect(listed.json.map((b: BackupInfo) => b.file)).toEqual([created.json.file]);

    const refused = await xrd('restore', created.json.file, ...dirs, '--json');
    expect(refused.code).toBe(1);
    expect(refused.json.error.code).toBe('BackupRefused');

    const checked = await xrd('check', created.json.file, '--signer-dir', signerDir, '--proxy-dir', proxyDir, '--socket', socketPath, '--json');
    expect(checked.code).toBe(1); // the AUTHENTICATION key deleted from the token is still in the key configuration
    expect(checked.json.keys).toMatchObject({ checked: true, held: [signKey.keyId], missing: [{ keyId: authKeyId }] });

    const human = await promisify(execFile)('node', [XRD, 'backup', 'create', ...dirs, '--out', join(cliDir, 'named.tar.gz')], { env: testbed.env });
    expect(human.stdout).toMatch(/^… copying .*keyconf\.sqlite/m);
    expect(human.stdout).toContain(`backup ${join(cliDir, 'named.tar.gz')}: 8 files, 2 keys, 1 certificates of LOCAL/COM/1111/ss1`);

    // Without --devices, restore leaves devices.ini alone, even the one $XRD_DEVICES_INI names.
    await stopDaemon();
    const otherDevices = join(testbed.dir, 'other-devices.ini');
    writeFileSync(otherDevices, '[other]\nlibrary = /usr/lib/other-pkcs11.so\n');
    const folders = ['--signer-dir', signerDir, '--proxy-dir', proxyDir, '--socket', socketPath];
    const restore = async (...args: string[]) =>
      JSON.parse((await promisify(execFile)('node', [XRD, 'backup', 'restore', created.json.file, ...folders, ...args, '--json'], { env: { ...testbed.env, XRD_DEVICES_INI: otherDevices, XRD_LOG_LEVEL: 'warn' } })).stdout);
    const withoutDevices = await restore();
    expect(withoutDevices.files).toContainEqual({ path: 'devices.ini', target: null, outcome: 'skipped', reason: 'no devices.ini path given to restore it to' });
    expect(readFileSync(otherDevices, 'utf8')).toBe('[other]\nlibrary = /usr/lib/other-pkcs11.so\n');
    const withDevices = await restore('--devices', otherDevices);
    expect(withDevices.files).toContainEqual({ path: 'devices.ini', target: otherDevices, outcome: 'restored' });
    expect(readFileSync(otherDevices, 'utf8')).toBe(readFileSync(testbed.devicesIni, 'utf8'));

    // A backup signed with a key this server does not have (its maker's key lost): refused, unless
    // the administrator says not to check (the reference's `restore … -N`).
    const foreign = join(testbed.dir, 'foreign-key.tar.gz');
    writeFileSync(foreign, writeSignedArchive(readTarGz(readFileSync(created.json.file)), randomBytes(32)));
    const unverified = await xrd('restore', foreign, ...folders, '--json');
    expect(unverified.code).toBe(1);
    expect(unverified.json.error.code).toBe('BackupSignatureInvalid');
    const unchecked = await xrd('restore', foreign, ...folders, '--skip-signature-check', '--json');
    expect(unchecked.code).toBe(0);
    expect(unchecked.json.signature).toBe('not checked');
    expect((await restore()).signature).toBe('verified');
  });
});
