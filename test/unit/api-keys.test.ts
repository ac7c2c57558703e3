/** The admin API key file: what is on disk, and keys made by the CLI reaching a running store. */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ApiKeyStore, ROLES, apiKeysFile } from '../../src/serverconf/api-keys.ts';
import { XrdError } from '../../src/platform/errors.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const xrd = async (...args: string[]) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['scripts/xrd.mjs', ...args], { cwd: ROOT, timeout: 30_000 });
  return stdout;
};

describe('ApiKeyStore', () => {
  it('keeps only hashes, in a file of mode 0600 in a directory of mode 0700, with no temporary files left', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'xrd-api-keys-'));
    const store = new ApiKeyStore(apiKeysFile(dataDir));
    const created = store.create(['XROAD_SECURITY_OFFICER', 'XROAD_SECURITY_OFFICER', 'XROAD_SYSTEM_ADMINISTRATOR'], 'ops');
    expect(created.roles).toEqual(['XROAD_SECURITY_OFFICER', 'XROAD_SYSTEM_ADMINISTRATOR']);
    expect(Buffer.from(created.key, 'base64url')).toHaveLength(32);

    const file = join(dataDir, 'admin', 'api-keys.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'admin')).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dataDir, 'admin'))).toEqual(['api-keys.json']);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(created.key);
    expect(text).not.toContain(Buffer.from(created.key, 'base64url').toString('hex'));
    expect(text).not.toContain(Buffer.from(created.key, 'base64url').toString('base64'));
    expect(JSON.parse(text).keys[0]).toMatchObject({ id: created.id, name: 'ops', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });

    expect(store.list()).toEqual([{ id: created.id, name: 'ops', roles: created.roles, createdAt: expect.any(String) }]);
    expect(store.authenticate(created.key)).toEqual({ id: created.id, name: 'ops', roles: created.roles });
    expect(store.authenticate(created.key.slice(0, -1))).toBeUndefined();
    expect(store.authenticate('')).toBeUndefined();
  });

  it('changes roles, revokes, and refuses unknown ids and roles with coded errors', () => {
    const store = new ApiKeyStore(apiKeysFile(mkdtempSync(join(tmpdir(), 'xrd-api-keys-'))));
    const { id, key } = store.create(['XROAD_SECURESERVER_OBSERVER']);
    expect(store.updateRoles(id, ['XROAD_REGISTRATION_OFFICER']).roles).toEqual(['XROAD_REGISTRATION_OFFICER']);
    expect(store.authenticate(key)?.roles).toEqual(['XROAD_REGISTRATION_OFFICER']);
    expect(store.revoke(id).id).toBe(id);
    expect(store.authenticate(key)).toBeUndefined();
    expect(store.list()).toEqual([]);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err instanceof XrdError ? err.code : err;
      }
    };
    expect(code(() => store.revoke(id))).toBe('ApiKeyNotFound');
    expect(code(() => store.create([]))).toBe('InvalidApiKeyRoles');
    expect(code(() => store.create(['ROOT' as (typeof ROLES)[number]]))).toBe('InvalidApiKeyRoles');
  });

  it('sees keys created and revoked through another store on the same file, and loses none of either', () => {
    const file = apiKeysFile(mkdtempSync(join(tmpdir(), 'xrd-api-keys-')));
    const api = new ApiKeyStore(file);
    const cli = new ApiKeyStore(file);
    const a = api.create(['XROAD_SECURITY_OFFICER']);
    const b = cli.create(['XROAD_SECURESERVER_OBSERVER']);
    expect(api.authenticate(b.key)?.id).toBe(b.id);
    expect(cli.list().map((k) => k.id).sort()).toEqual([a.id, b.id].sort());
    cli.revoke(a.id);
    expect(api.authenticate(a.key)).toBeUndefined();
  });

  it('refuses a key file that other users may write', () => {
    const file = apiKeysFile(mkdtempSync(join(tmpdir(), 'xrd-api-keys-')));
    const store = new ApiKeyStore(file);
    const { key } = store.create(['XROAD_SECURITY_OFFICER']);
    chmodSync(file, 0o666);
    expect(() => store.authenticate(key)).toThrow(/writable by other users/);
  });
});

describe('xrd admin api-key', () => {
  it('creates a key that an already-open store accepts, lists it without the key, and revokes it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'xrd-api-keys-cli-'));
    const running = new ApiKeyStore(apiKeysFile(dataDir));
    expect(running.list()).toEqual([]);

    const created = JSON.parse(await xrd('admin', 'api-key', 'create', '--json', '--roles', 'security_officer,XROAD_SECURESERVER_OBSERVER', '--name', 'ci', '--data-dir', dataDir)) as {
      id: string;
      key: string;
      roles: string[];
      name: string;
    };
    expect(created).toEqual({ id: expect.any(String), key: expect.any(String), roles: ['XROAD_SECURITY_OFFICER', 'XROAD_SECURESERVER_OBSERVER'], name: 'ci' });
    expect(running.authenticate(created.key)).toEqual({ id: created.id, name: 'ci', roles: created.roles });

    const listed = await xrd('admin', 'api-key', 'list', '--json', '--data-dir', dataDir);
    expect(listed).not.toContain(created.key);
    expect(JSON.parse(listed)).toEqual([{ id: created.id, name: 'ci', roles: created.roles, createdAt: expect.any(String) }]);

    await xrd('admin', 'api-key', 'revoke', created.id, '--json', '--data-dir', dataDir);
    expect(running.authenticate(created.key)).toBeUndefined();
  });

  it('refuses an unknown role as a usage error (exit 2) and an unknown id as ApiKeyNotFound (exit 1)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'xrd-api-keys-cli-'));
    const exit = (args: string[]) => xrd(...args).then(() => 0, (err: { code: number }) => err.code);
    expect(await exit(['admin', 'api-key', 'create', '--roles', 'ROOT', '--data-dir', dataDir])).toBe(2);
    expect(await exit(['admin', 'api-key', 'revoke', 'nope', '--data-dir', dataDir])).toBe(1);
  });
});
