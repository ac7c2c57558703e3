/**
 * The admin API's backups (the reference's BackupsApi) and API keys (its ApiKeysApi) through
 * fastify's inject, on real data folders (SQLite stores, signed archives): download, upload with the
 * reference's warning_file_already_exists, delete, names that would leave the backups folder refused,
 * a restore while the server runs that puts the server configuration back as one change audited
 * under the user's name, and one refused whole (BackupNeedsStoppedSigner) when the key configuration
 * differs; API keys managed by a system administrator in a login session only, never with a key.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, apiKeysFile, type Role } from '../../src/serverconf/api-keys.ts';
import { API_PREFIX, buildAdminApi } from '../../src/admin/api-server.ts';
import { MAX_ARCHIVE_BYTES, writeSignedArchive } from '../../src/admin/backup.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { UserStore } from '../../src/admin/users.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { readTarGz } from '../../src/platform/tar.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { addClient } from '../../src/serverconf/changes.ts';
import type { ServerConf } from '../../src/serverconf/model.ts';
import { changeServerConfIn, openServerConfStore } from '../../src/serverconf/store.ts';
import { KeyconfStore } from '../../src/signer/keyconf-store.ts';

const SYSTEM_ADMINISTRATOR: Role = 'XROAD_SYSTEM_ADMINISTRATOR';
const OBSERVER: Role = 'XROAD_SECURESERVER_OBSERVER';
const PASSWORD = 'correct horse battery';

const dir = mkdtempSync(join(tmpdir(), 'xrd-admin-backups-'));
const proxyDir = join(dir, 'proxy');
const signerDir = join(dir, 'signer');
const backupsDir = join(proxyDir, 'backups');
let app: FastifyInstance;
let users: UserStore;
let admin: ServerAdmin;
/** A system administrator's key, made before the first backup (a restore puts api-keys.json back). */
let adminKey: string;

const SEED: ServerConf = { serverId: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', serverCode: 'ss1' }, clients: [], timestampingServices: [] };
const actor = { kind: 'system', name: 'test' } as const;

interface Session {
  cookie: string;
  csrf: string;
}

async function login(username: string): Promise<Session> {
  const answer = await app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { username, password: PASSWORD } });
  expect(answer.statusCode).toBe(200);
  const cookies = [answer.headers['set-cookie'] ?? []].flat();
  const session = cookies.find((c) => c.startsWith('__Host-xrd-session='))!.split(';')[0]!;
  return { cookie: session, csrf: answer.json<{ csrf_token: string }>().csrf_token };
}

type Caller = { key: string } | { session: Session; csrf?: false };

function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, as: Caller, body?: unknown, contentType?: string): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = {};
  if ('key' in as) headers.authorization = `X-Road-ApiKey token=${as.key}`;
  else {
    headers.cookie = as.session.cookie;
    if (as.csrf !== false) headers['x-xsrf-token'] = as.session.csrf;
  }
  if (Buffer.isBuffer(body)) headers['content-type'] = contentType ?? 'application/octet-stream';
  return app.inject({ method, url: API_PREFIX + path, headers, ...(body === undefined ? {} : { payload: body as string }) });
}

const code = (a: LightMyRequestResponse) => [a.statusCode, a.json<{ error?: { code: string } }>().error?.code];
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function audit(action: string) {
  const store = await openServerConfStore(proxyDir);
  try {
    return (await store.auditLog({ action, limit: 1 }))[0];
  } finally {
    await store.close();
  }
}

async function clientsNow(): Promise<string[]> {
  const store = await openServerConfStore(proxyDir);
  try {
    return (await store.read())!.clients.map((c) => `${c.id.memberClass}/${c.id.memberCode}${c.id.subsystem ? `/${c.id.subsystem}` : ''}`);
  } finally {
    await store.close();
  }
}

/** Every file under the data folders with its hash: "nothing touched" (SQLite's shared-memory index aside: reading moves it). */
function snapshot(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.isFile() && !e.name.endsWith('-shm')) out[path] = sha256(readFileSync(path));
    }
  };
  walk(signerDir);
  walk(proxyDir);
  return out;
}

beforeAll(async () => {
  mkdirSync(signerDir, { recursive: true });
  mkdirSync(proxyDir, { recursive: true });
  const keyconf = new KeyconfStore(join(signerDir, 'keyconf.sqlite'));
  keyconf.setTokenFriendlyName('0', 'the token');
  keyconf.close();
  writeFileSync(join(signerDir, 'audit.log'), 'one line\n');
  await changeServerConfIn(proxyDir, actor, 'SEED', () => addClient(SEED, parseClientId('LOCAL/GOV/1111'), { registered: true }));
  users = new UserStore(join(proxyDir, 'admin', 'users.json'));
  await users.add('alice', PASSWORD, [SYSTEM_ADMINISTRATOR]);
  await users.add('olivia', PASSWORD, [OBSERVER]);
  adminKey = new ApiKeyStore(apiKeysFile(proxyDir)).create([SYSTEM_ADMINISTRATOR], 'automation').key;
  admin = new ServerAdmin({ proxyDataDir: proxyDir, signerDataDir: signerDir, signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger() });
  app = await buildAdminApi({ admin, keys: new ApiKeyStore(apiKeysFile(proxyDir)), users, logger: silentLogger(), rateLimit: { perSecond: 10_000, perMinute: 1_000_000 } });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await admin?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('backups through the admin API (the reference BackupsApi)', () => {
  let name: string;

  it('POST /backups takes one, GET /backups lists it verified, download answers its bytes as an attachment; audited under the key', async () => {
    const created = await call('POST', '/backups', { key: adminKey }, {});
    expect(created.statusCode).toBe(201);
    name = created.json<{ name: string }>().name;
    expect(await audit('BACKUP')).toMatchObject({ actor: { kind: 'api-key', name: 'automation' }, detail: { file: name } });

    const list = await call('GET', '/backups', { key: adminKey });
    expect(list.json<{ name: string; error: unknown }[]>().map((b) => [b.name, b.error])).toEqual([[name, null]]);
    // The reference's Backup fields beside ours.
    expect(list.json()[0]).toMatchObject({ filename: name, created_at: created.json().created });

    const download = await call('GET', `/backups/${name}/download`, { key: adminKey });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-type']).toBe('application/octet-stream');
    expect(download.headers['content-disposition']).toBe(`attachment; filename="${name}"`);
    expect(download.rawPayload.equals(readFileSync(join(backupsDir, name)))).toBe(true);
  });

  it('names that are not a backup’s — paths out of the folder, hidden files, other suffixes — are refused with InvalidBackupFilename; a link is not a backup', async () => {
    writeFileSync(join(dir, 'secret.tar.gz'), 'outside');
    for (const bad of ['..%2Fsecret.tar.gz', '..%2F..%2Fsecret.tar.gz', '.hidden.tar.gz', '-rf.tar.gz', 'x..tar.gz', 'api-keys.json', 'a%00.tar.gz', `${'a'.repeat(250)}.tar.gz`]) {
      for (const [method, path] of [['GET', `/backups/${bad}/download`], ['DELETE', `/backups/${bad}`], ['PUT', `/backups/${bad}/restore`]] as const) {
        const answer = await call(method, path, { key: adminKey });
        expect([bad, method, ...code(answer)]).toEqual([bad, method, 400, 'InvalidBackupFilename']);
        expect(answer.json().error.reference_code).toBe('invalid_filename');
      }
    }
    const upload = await call('POST', '/backups/upload?filename=..%2Fsecret.tar.gz&ignore_warnings=true', { key: adminKey }, readFileSync(join(backupsDir, name)));
    expect(code(upload)).toEqual([400, 'InvalidBackupFilename']);
    expect(readFileSync(join(dir, 'secret.tar.gz'), 'utf8')).toBe('outside');

    symlinkSync(join(dir, 'secret.tar.gz'), join(backupsDir, 'link.tar.gz'));
    expect(code(await call('GET', '/backups/link.tar.gz/download', { key: adminKey }))).toEqual([404, 'BackupNotFound']);
    expect(code(await call('GET', '/backups/none.tar.gz/download', { key: adminKey }))).toEqual([404, 'BackupNotFound']);
    rmSync(join(backupsDir, 'link.tar.gz'));
  });

  it('upload keeps an archive this server signed under the name given; a name in use is the reference’s warning until ignore_warnings=true', async () => {
    const bytes = readFileSync(join(backupsDir, name));
    const uploaded = await call('POST', '/backups/upload?filename=copy.tar.gz', { key: adminKey }, bytes);
    expect(uploaded.statusCode).toBe(201);
    expect(uploaded.json()).toMatchObject({ name: 'copy.tar.gz', error: null });
    expect(readFileSync(join(backupsDir, 'copy.tar.gz')).equals(bytes)).toBe(true);
    expect(await audit('UPLOAD_BACKUP')).toMatchObject({ actor: { kind: 'api-key', name: 'automation' }, detail: { file: 'copy.tar.gz', replaced: false } });

    const again = await call('POST', '/backups/upload?filename=copy.tar.gz', { key: adminKey }, bytes);
    expect(code(again)).toEqual([400, 'WarningsDetected']);
    expect(again.json()).toMatchObject({ error: { reference_code: 'warnings_detected' }, warnings: [{ code: 'warning_file_already_exists', metadata: ['copy.tar.gz'] }] });
    expect((await call('POST', '/backups/upload?filename=copy.tar.gz&ignore_warnings=true', { key: adminKey }, bytes)).statusCode).toBe(201);
    expect(code(await call('POST', '/backups/upload', { key: adminKey }, bytes))).toEqual([400, 'InvalidBackupFilename']);
    expect(code(await call('POST', '/backups/upload?filename=x.tar.gz&other=1', { key: adminKey }, bytes))).toEqual([400, 'InvalidRequest']);
  });

  it('upload takes the reference’s form too: the `file` field of multipart/form-data, named by its file name', async () => {
    const bytes = readFileSync(join(backupsDir, name));
    const form = (field: string, filename: string) =>
      Buffer.concat([
        Buffer.from(`--XB\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: application/gzip\r\n\r\n`),
        bytes,
        Buffer.from('\r\n--XB--\r\n'),
      ]);
    const type = 'multipart/form-data; boundary=XB';
    const uploaded = await call('POST', '/backups/upload', { key: adminKey }, form('file', 'from-form.tar.gz'), type);
    expect(uploaded.statusCode).toBe(201);
    expect(readFileSync(join(backupsDir, 'from-form.tar.gz')).equals(bytes)).toBe(true);
    expect(code(await call('POST', '/backups/upload', { key: adminKey }, form('other', 'x.tar.gz'), type))).toEqual([400, 'InvalidRequestBody']);
    expect(code(await call('POST', '/backups/upload', { key: adminKey }, form('file', '../x.tar.gz'), type))).toEqual([400, 'InvalidBackupFilename']);
    // Only the upload reads forms.
    expect(code(await call('POST', '/backups', { key: adminKey }, form('file', 'x'), type))).toEqual([415, 'UnsupportedMediaType']);
    rmSync(join(backupsDir, 'from-form.tar.gz'));
  });

  it('upload refuses what would not restore here — not a backup, signed by another key — and keeps nothing of it; the body is bounded', async () => {
    const before = readdirSync(backupsDir).sort();
    expect(code(await call('POST', '/backups/upload?filename=junk.tar.gz', { key: adminKey }, Buffer.from('not a backup')))).toEqual([400, 'BackupCorrupt']);
    const entries = readTarGz(readFileSync(join(backupsDir, name)), { maxBytes: MAX_ARCHIVE_BYTES, maxEntries: 20 });
    const foreign = writeSignedArchive(entries, Buffer.alloc(32, 7));
    const refused = await call('POST', '/backups/upload?filename=foreign.tar.gz', { key: adminKey }, foreign);
    expect(code(refused)).toEqual([400, 'BackupSignatureInvalid']);
    expect(refused.json().error.message).toContain('foreign.tar.gz');
    expect(code(await call('POST', '/backups/upload?filename=json.tar.gz', { key: adminKey }, Buffer.from('{}'), 'application/json'))).toEqual([415, 'UnsupportedMediaType']);
    expect(code(await call('POST', '/backups/upload?filename=big.tar.gz', { key: adminKey }, Buffer.alloc(MAX_ARCHIVE_BYTES + 1)))).toEqual([413, 'RequestTooLarge']);
    expect(readdirSync(backupsDir).sort()).toEqual(before);
  });

  it('restore while the server runs puts the server configuration back as one change audited under the user, and the proxy files that differ; unchanged files need nothing', async () => {
    await changeServerConfIn(proxyDir, actor, 'ADD', (conf) => addClient(conf!, parseClientId('LOCAL/COM/2222/LATER'), {}));
    expect(await clientsNow()).toEqual(['GOV/1111', 'COM/2222/LATER']);
    await users.add('carol', PASSWORD, [OBSERVER]);
    const alice = await login('alice');
    const restored = await call('PUT', `/backups/${name}/restore`, { session: alice });
    expect(restored.statusCode).toBe(200);
    const report = restored.json<{ hsm_tokens_logged_out: boolean; files: { path: string; outcome: string }[]; keptAside: string[] }>();
    expect(report.hsm_tokens_logged_out).toBe(false);
    expect(Object.fromEntries(report.files.map((f) => [f.path, f.outcome]))).toMatchObject({
      'signer/keyconf.sqlite': 'unchanged',
      'signer/audit.log': 'kept current',
      'proxy/serverconf.json': 'restored',
      'proxy/admin/api-keys.json': 'unchanged',
      'proxy/admin/users.json': 'restored',
    });
    expect(await clientsNow()).toEqual(['GOV/1111']);
    // The user added since is gone, the file replaced kept beside.
    expect(users.list().map((u) => u.name).sort()).toEqual(['alice', 'olivia']);
    expect(report.keptAside).toEqual([join(proxyDir, 'admin', 'users.json.pre-restore')]);
    expect(await audit('RESTORE_BACKUP')).toMatchObject({ actor: { kind: 'user', name: 'alice' }, detail: { file: join(backupsDir, name), restored: ['proxy/admin/users.json', 'proxy/serverconf.json'] } });
    // Once more: nothing differs, nothing is written, the restore is still on record.
    const again = await call('PUT', `/backups/${name}/restore`, { session: alice });
    expect(again.json<{ files: { outcome: string }[] }>().files.every((f) => f.outcome !== 'restored')).toBe(true);
    expect(await audit('RESTORE_BACKUP')).toMatchObject({ actor: { kind: 'user', name: 'alice' }, detail: { restored: [] } });
  });

  it('a backup whose key configuration differs is refused whole with BackupNeedsStoppedSigner naming xrd backup restore; nothing is touched', async () => {
    const keyconf = new KeyconfStore(join(signerDir, 'keyconf.sqlite'));
    keyconf.setTokenFriendlyName('0', 'renamed since');
    keyconf.close();
    await changeServerConfIn(proxyDir, actor, 'ADD', (conf) => addClient(conf!, parseClientId('LOCAL/COM/2222/LATER'), {}));
    const before = snapshot();
    const refused = await call('PUT', `/backups/${name}/restore`, { key: adminKey });
    expect(code(refused)).toEqual([409, 'BackupNeedsStoppedSigner']);
    expect(refused.json().error.message).toMatch(/signer\/keyconf\.sqlite in the backup differs from the current one, which only a restore with the signer stopped may replace\. Stop the signer and run `xrd backup restore`/);
    expect(snapshot()).toEqual(before);
    expect(await clientsNow()).toEqual(['GOV/1111', 'COM/2222/LATER']);
  });

  it('a key configuration that cannot be read is an IOError, not a difference to restore', async () => {
    const keyconf = join(signerDir, 'keyconf.sqlite');
    renameSync(keyconf, `${keyconf}.away`);
    writeFileSync(keyconf, 'not a database');
    try {
      const answer = await call('PUT', `/backups/${name}/restore`, { key: adminKey });
      expect(code(answer)).toEqual([500, 'IOError']);
      expect(answer.json().error.message).toContain('keyconf.sqlite');
    } finally {
      rmSync(keyconf);
      renameSync(`${keyconf}.away`, keyconf);
    }
  });

  it('an observer lists the backups and may do nothing else with them; DELETE removes one, audited', async () => {
    const olivia = await login('olivia');
    expect((await call('GET', '/backups', { session: olivia })).statusCode).toBe(200);
    for (const [method, path] of [['GET', `/backups/${name}/download`], ['DELETE', `/backups/${name}`], ['PUT', `/backups/${name}/restore`], ['POST', '/backups']] as const) {
      expect(code(await call(method, path, { session: olivia }, method === 'POST' ? {} : undefined))).toEqual([403, 'PermissionDenied']);
    }
    expect(code(await call('POST', '/backups/upload?filename=o.tar.gz', { session: olivia }, Buffer.from('x')))).toEqual([403, 'PermissionDenied']);

    expect((await call('DELETE', '/backups/copy.tar.gz', { key: adminKey })).statusCode).toBe(204);
    expect(existsSync(join(backupsDir, 'copy.tar.gz'))).toBe(false);
    expect(await audit('DELETE_BACKUP')).toMatchObject({ actor: { kind: 'api-key', name: 'automation' }, detail: { file: 'copy.tar.gz' } });
    expect(code(await call('DELETE', '/backups/copy.tar.gz', { key: adminKey }))).toEqual([404, 'BackupNotFound']);
  });
});

describe('API keys through the admin API (the reference ApiKeysApi)', () => {
  it('only in a login session: an API key, even a system administrator’s, is refused with SessionRequired', async () => {
    for (const [method, path, body] of [['GET', '/api-keys'], ['POST', '/api-keys', [OBSERVER]], ['PUT', '/api-keys/x', [OBSERVER]], ['DELETE', '/api-keys/x'], ['GET', '/api-keys/x']] as const) {
      expect(code(await call(method, path, { key: adminKey }, body))).toEqual([403, 'SessionRequired']);
    }
  });

  it('a system administrator creates a key (shown once), lists keys without it, changes its roles, revokes it; each audited under the user', async () => {
    const alice = await login('alice');
    const created = await call('POST', '/api-keys', { session: alice }, [OBSERVER]);
    expect(created.statusCode).toBe(200);
    const { id, key, roles } = created.json<{ id: string; key: string; roles: string[] }>();
    expect(roles).toEqual([OBSERVER]);
    expect(await audit('API_KEY_CREATE')).toMatchObject({ actor: { kind: 'user', name: 'alice' }, detail: { id, roles: OBSERVER } });
    expect((await call('GET', '/user', { key })).json()).toMatchObject({ roles: [OBSERVER] });

    const list = await call('GET', '/api-keys', { session: alice });
    expect(list.json<{ id: string }[]>().map((k) => k.id)).toContain(id);
    expect(list.body).not.toContain(key);
    expect(list.body).not.toContain('sha256');
    expect((await call('GET', `/api-keys/${id}`, { session: alice })).json()).toMatchObject({ id, roles: [OBSERVER] });

    const updated = await call('PUT', `/api-keys/${id}`, { session: alice }, [OBSERVER, SYSTEM_ADMINISTRATOR]);
    expect(updated.json()).toMatchObject({ id, roles: [OBSERVER, SYSTEM_ADMINISTRATOR] });
    expect(updated.body).not.toContain(key);
    expect(await audit('API_KEY_UPDATE')).toMatchObject({ actor: { kind: 'user', name: 'alice' }, detail: { id } });
    expect((await call('GET', '/backups', { key })).statusCode).toBe(200);

    expect((await call('DELETE', `/api-keys/${id}`, { session: alice })).statusCode).toBe(204);
    expect(await audit('API_KEY_REMOVE')).toMatchObject({ actor: { kind: 'user', name: 'alice' }, detail: { id } });
    expect(code(await call('GET', '/backups', { key }))).toEqual([401, 'ApiKeyInvalid']);
    const gone = await call('DELETE', `/api-keys/${id}`, { session: alice });
    expect(code(gone)).toEqual([404, 'ApiKeyNotFound']);
    expect(gone.json().error.reference_code).toBe('api_key_not_found');
  });

  it("refuses unknown or no roles, an observer's change (an observer reads them, as the reference's view_api_keys), and a session change without the CSRF token", async () => {
    const alice = await login('alice');
    const bad = await call('POST', '/api-keys', { session: alice }, ['XROAD_NOBODY']);
    expect(code(bad)).toEqual([400, 'InvalidApiKeyRoles']);
    expect(bad.json().error.reference_code).toBe('invalid_role');
    expect(code(await call('POST', '/api-keys', { session: alice }, []))).toEqual([400, 'InvalidRequestBody']);
    expect(code(await call('POST', '/api-keys', { session: alice, csrf: false }, [OBSERVER]))).toEqual([403, 'CsrfTokenInvalid']);
    const olivia = await login('olivia');
    expect((await call('GET', '/api-keys', { session: olivia })).statusCode).toBe(200);
    expect(code(await call('POST', '/api-keys', { session: olivia }, [OBSERVER]))).toEqual([403, 'PermissionDenied']);
  });
});
