/**
 * The server configuration's store (issue 14 item 1, issue 17 item 1) on both engines, SQLite and
 * PostgreSQL (src/storage): serverconf.json imported once; changes atomic and audited (who, what,
 * when), a refused one leaving nothing; the running proxy's reader sees a change made by another
 * process without a restart; two stores — in one process or two — changing it at once never
 * interleave and lose nothing.
 */
import Database from 'better-sqlite3';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createBackup, restoreBackup } from '../../src/admin/backup.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import type { ServerConf } from '../../src/serverconf/model.ts';
import { isQueryAllowed } from '../../src/serverconf/access.ts';
import { findService } from '../../src/serverconf/server-conf.ts';
import { parseServerConfJson, serializeServerConfJson } from '../../src/serverconf/serverconf-json.ts';
import { SERVERCONF_DB, openServerConfStore, serverConfReader, type Actor, type ServerConfStore } from '../../src/serverconf/store.ts';
import { eventually } from '../support/eventually.ts';
import { stopEngines, storageEngines } from '../support/postgres.ts';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'xrd-serverconf-'));
afterAll(() => {
  stopEngines();
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const ADMIN: Actor = { kind: 'api-key', name: 'automation' };

const LEGACY = JSON.stringify({
  serverId: 'LOCAL/COM/1111/ss1',
  timestampingServices: [{ name: 'TSA', url: 'http://tsa.example/' }],
  clients: [
    {
      id: 'LOCAL/COM/1111/PROVIDER',
      connectionType: 'HTTP',
      services: [
        { code: 'getRandom', version: 'v1', url: 'http://is.example/', allowed: ['LOCAL/COM/2222/CLIENT'], description: { type: 'WSDL', url: 'http://is.example/wsdl' } },
        { code: 'helloService', url: 'http://is.example/', allowed: ['GLOBALGROUP:LOCAL/owners'], description: { type: 'WSDL', url: 'http://is.example/wsdl' } },
        { code: 'pets', type: 'REST', url: 'http://is.example/pets', allowed: ['LOCAL/COM/2222/CLIENT'], description: { type: 'OPENAPI3', url: 'http://is.example/openapi.json' } },
      ],
    },
    { id: 'LOCAL/COM/1111', connectionType: 'HTTPS' },
  ],
});

/** Every part of the model, for the round trips. */
function fullConf(): ServerConf {
  const conf = parseServerConfJson(LEGACY);
  const [provider, owner] = conf.clients as [ServerConf['clients'][number], ServerConf['clients'][number]];
  return {
    ...conf,
    clients: [
      {
        ...provider,
        endpoints: [...provider.endpoints, { serviceCode: 'pets', method: 'GET', path: '/pets/*', generated: false }],
        accessRights: [...provider.accessRights, { subject: 'LOCALGROUP:friends', serviceCode: 'pets', method: 'GET', path: '/pets/*', grantedAt: '2026-12-06T10:00:00.000Z' }],
        localGroups: [{ code: 'friends', description: 'Friends', updatedAt: '2026-12-06T10:00:00.000Z', members: [{ id: parseClientId('LOCAL/COM/3333/FRIEND'), addedAt: '2026-12-06T10:00:00.000Z' }] }],
        serviceDescriptions: provider.serviceDescriptions.map((d, i) => (i === 0 ? { ...d, disabled: true, disabledNotice: 'Out for lunch' } : d)),
      },
      { ...owner, status: 'SAVED' },
    ],
  };
}


describe.each(storageEngines(() => root))('the server configuration store on $engine', ({ engine, config }) => {
  /** A proxy data directory, and the database URL when the store is on PostgreSQL. */
  const place = () => {
    const dir = join(root, String(++n));
    mkdirSync(dir, { mode: 0o700 });
    const c = config(`sc-${n}`);
    return { dir, url: c.engine === 'postgres' ? c.url : undefined };
  };
  const stores: ServerConfStore[] = [];
  const open = async (p: { dir: string; url: string | undefined }) => {
    const store = await openServerConfStore(p.dir, p.url);
    stores.push(store);
    return store;
  };
  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
  });

  it('imports a serverconf.json once, in the reference model, and moves it aside; one that turns up later is set aside unread', async () => {
    const p = place();
    writeFileSync(join(p.dir, 'serverconf.json'), LEGACY);
    const store = await open(p);
    const conf = (await store.read())!;
    expect(existsSync(join(p.dir, 'serverconf.json'))).toBe(false);
    expect(existsSync(join(p.dir, 'serverconf.json.imported'))).toBe(true);
    if (engine === 'sqlite') expect(statSync(join(p.dir, SERVERCONF_DB)).mode & 0o777).toBe(0o600);
    else expect(existsSync(join(p.dir, SERVERCONF_DB))).toBe(false);
    const provider = conf.clients[0]!;
    // One WSDL description for the two SOAP services, one of its own for the REST service.
    expect(provider.serviceDescriptions.map((d) => [d.id, d.type, d.url, d.services.map((s) => s.code)])).toEqual([
      [1, 'WSDL', 'http://is.example/wsdl', ['getRandom', 'helloService']],
      [2, 'OPENAPI3', 'http://is.example/openapi.json', ['pets']],
    ]);
    expect(provider.endpoints.map((e) => `${e.serviceCode} ${e.method} ${e.path}`)).toEqual(['getRandom * **', 'helloService * **', 'pets * **']);
    expect(provider.accessRights.map((r) => `${r.subject} ${r.serviceCode}`)).toEqual(['LOCAL/COM/2222/CLIENT getRandom', 'GLOBALGROUP:LOCAL/owners helloService', 'LOCAL/COM/2222/CLIENT pets']);
    expect(findService(conf, parseClientId('LOCAL/COM/1111/PROVIDER'), 'getRandom', 'v1')).toMatchObject({ type: 'SOAP', url: 'http://is.example/', description: { type: 'WSDL', url: 'http://is.example/wsdl' } });
    expect(await store.auditLog()).toEqual([expect.objectContaining({ actor: { kind: 'system', name: 'xrd' }, action: 'IMPORT_SERVERCONF_JSON' })]);
    await store.close();
    // A file that turns up again later is not imported over the store.
    writeFileSync(join(p.dir, 'serverconf.json'), LEGACY.replace('ss1', 'ss9'));
    const again = await open(p);
    expect((await again.read())!.serverId.serverCode).toBe('ss1');
    expect(await again.auditLog()).toHaveLength(1);
    expect(existsSync(join(p.dir, 'serverconf.json.ignored'))).toBe(true);
  });

  it('a broken serverconf.json is refused naming the field, and stays where it is', async () => {
    const p = place();
    writeFileSync(join(p.dir, 'serverconf.json'), '{"serverId":"LOCAL/COM/1111/ss1","clients":[{"id":"LOCAL/COM/1111/P","services":[{"code":"x","url":"nope"}]}]}');
    await expect(openServerConfStore(p.dir, p.url)).rejects.toMatchObject({ code: 'InvalidConfiguration', message: expect.stringContaining('clients[0].services[0].url is not a URL') });
    expect(existsSync(join(p.dir, 'serverconf.json'))).toBe(true);
  });

  it('keeps every part of the model, in its order, through the store and through its JSON export', async () => {
    const store = await open(place());
    const conf = fullConf();
    await store.change(ADMIN, 'SET', {}, () => conf);
    expect(await store.read()).toEqual(conf);
    expect(parseServerConfJson(serializeServerConfJson(conf))).toEqual(conf);
    // Rows kept in insertion order (rowid on SQLite, seq on PostgreSQL): reversed lists come back reversed.
    const reversed: ServerConf = { ...conf, clients: conf.clients.map((c) => ({ ...c, endpoints: [...c.endpoints].reverse(), accessRights: [...c.accessRights].reverse() })) };
    await store.change(ADMIN, 'SET', {}, () => reversed);
    expect(await store.read()).toEqual(reversed);
    // The local group's right is a right like any other.
    const provider = (await store.read())!.clients[0]!;
    expect(isQueryAllowed(provider, 'pets', parseClientId('LOCAL/COM/3333/FRIEND'), { method: 'GET', path: '/pets/7' }, () => false)).toBe(true);
    expect(isQueryAllowed(provider, 'pets', parseClientId('LOCAL/COM/3333/FRIEND'), { method: 'POST', path: '/pets/7' }, () => false)).toBe(false);
  });

  it('a change is atomic and audited: who, what, when; a refused one leaves nothing behind', async () => {
    const store = await open(place());
    await store.change(ADMIN, 'SET', { why: 'start' }, () => fullConf());
    const revision = await store.revision();
    const before = await store.read();
    await expect(
      store.change(ADMIN, 'REFUSED', {}, () => {
        throw new XrdError('InvalidRequest', { reason: 'refused' });
      }),
    ).rejects.toMatchObject({ code: 'InvalidRequest' });
    // A change the schema refuses, half written when refused: a right to an endpoint that does not exist.
    const broken = (conf: ServerConf | undefined): ServerConf => ({
      ...conf!,
      timestampingServices: [],
      clients: conf!.clients.map((c, i) => (i === 0 ? { ...c, accessRights: [...c.accessRights, { subject: 'LOCAL/COM/2222/CLIENT', serviceCode: 'nothing', method: '*', path: '**', grantedAt: '2026-12-06T10:00:00.000Z' }] } : c)),
    });
    await expect(store.change(ADMIN, 'BROKEN', {}, broken)).rejects.toMatchObject({ code: 'InvalidConfiguration' });
    expect(await store.revision()).toBe(revision);
    expect(await store.read()).toEqual(before);
    const log = await store.auditLog();
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ actor: ADMIN, action: 'SET', detail: { why: 'start' } });
    expect(Date.now() - Date.parse(log[0]!.at)).toBeLessThan(60_000);
    // The store goes on as before.
    await store.change(ADMIN, 'AFTER', {}, (c) => ({ ...c!, timestampingServices: [] }));
    expect(await store.revision()).toBe(revision + 1);
  });

  it("the proxy's reader sees another process's change within its recheck interval, and keeps the last good configuration when the store cannot be read", async () => {
    const p = place();
    const store = await open(p);
    const errors: string[] = [];
    const empty = await serverConfReader(store, { recheckMs: 50 });
    expect(() => empty()).toThrow(expect.objectContaining({ code: 'ServerNotInitialized' }));
    empty.close();
    await store.change(ADMIN, 'SET', {}, () => fullConf());
    const read = await serverConfReader(store, { recheckMs: 50, onError: (e) => errors.push(e.code) });
    try {
      expect(read().serverId.serverCode).toBe('ss1');
      await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', changeIn(p, 'ss2')]);
      await eventually(async () => read().serverId.serverCode === 'ss2' || undefined, 10_000, 'the change read');
      await store.close();
      // Closed under it: what it had stays in force, and the failure is reported.
      await eventually(async () => errors.length > 0 || undefined, 10_000, 'the read error reported');
      expect(read().serverId.serverCode).toBe('ss2');
      expect(new Set(errors)).toEqual(new Set(['IOError']));
    } finally {
      read.close();
    }
  }, 60_000);

  it('two stores on the same database changing it at once never interleave: no change lost, each audited', async () => {
    const p = place();
    const first = await open(p);
    const second = await open(p);
    await first.change(ADMIN, 'SET', {}, () => ({ ...fullConf(), timestampingServices: [] }));
    const add = (store: ServerConfStore, who: string, i: number) =>
      store.change({ kind: 'os-user', name: who }, 'ADD_TSP', { i }, (c) => ({ ...c!, timestampingServices: [...c!.timestampingServices, { name: `${who}${i}`, url: `http://tsa.example/${who}${i}` }] }));
    await Promise.all([...Array(25).keys()].flatMap((i) => [add(first, 'a', i), add(second, 'b', i)]));
    const conf = (await second.read())!;
    expect(conf.timestampingServices).toHaveLength(50);
    expect(await first.revision()).toBe(51);
    const log = await first.auditLog({ limit: 1000 });
    expect(log.filter((e) => e.actor.name === 'a')).toHaveLength(25);
    expect(log.filter((e) => e.actor.name === 'b')).toHaveLength(25);
  }, 60_000);

  it('two processes changing the configuration at once lose no change; each is in the audit log', async () => {
    const p = place();
    const store = await open(p);
    await store.change(ADMIN, 'SET', {}, () => ({ ...fullConf(), timestampingServices: [] }));
    const script = (who: string) => `
      import { openServerConfStore } from ${JSON.stringify(STORE)};
      const store = await openServerConfStore(${JSON.stringify(p.dir)}, ${JSON.stringify(p.url)});
      for (let i = 0; i < 40; i++) await store.change({ kind: 'os-user', name: '${who}' }, 'ADD_TSP', { i }, (c) => ({ ...c, timestampingServices: [...c.timestampingServices, { name: '${who}' + i, url: 'http://tsa.example/' + '${who}' + i }] }));
      await store.close();`;
    await Promise.all(['a', 'b'].map((who) => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(who)])));
    expect((await store.read())!.timestampingServices).toHaveLength(80);
    const log = await store.auditLog({ limit: 1000 });
    expect(log.filter((e) => e.actor.name === 'a')).toHaveLength(40);
    expect(log.filter((e) => e.actor.name === 'b')).toHaveLength(40);
    expect(await store.revision()).toBe(81);
  }, 60_000);

  it('a backup carries the configuration read through the store, and a restore puts it back as one audited change', async () => {
    const p = place();
    const store = await open(p);
    const conf = await store.change(ADMIN, 'SET', {}, () => fullConf());
    const signerDataDir = join(p.dir, 'signer');
    mkdirSync(signerDataDir);
    const backup = await createBackup({ signerDataDir, proxyDataDir: p.dir, databaseUrl: p.url, out: join(p.dir, 'backups') });
    expect(backup.files).toContain('proxy/serverconf.json');
    expect(backup.serverId).toBe('LOCAL/COM/1111/ss1');
    await store.change(ADMIN, 'EDIT', {}, (c) => ({ ...c!, clients: c!.clients.slice(1), timestampingServices: [] }));
    const report = await restoreBackup({ file: backup.file, signerDataDir, proxyDataDir: p.dir, databaseUrl: p.url });
    expect(report.files.find((f) => f.path === 'proxy/serverconf.json')).toMatchObject({ outcome: 'restored', target: engine === 'sqlite' ? join(p.dir, SERVERCONF_DB) : expect.stringMatching(/^postgresql:/) });
    expect(await store.read()).toEqual(conf);
    expect((await store.auditLog({ limit: 1 }))[0]).toMatchObject({ action: 'RESTORE_BACKUP', actor: { kind: 'system', name: 'xrd backup restore' } });
  });

  it.runIf(engine === 'postgres')('a program started in the data folder without the database URL is refused, not given an empty serverconf.db', async () => {
    const p = place();
    const store = await open(p);
    await store.change(ADMIN, 'INIT', {}, () => fullConf());
    await expect(openServerConfStore(p.dir)).rejects.toMatchObject({ code: 'InvalidConfiguration' });
    expect(existsSync(join(p.dir, SERVERCONF_DB))).toBe(false);
  });

  it('a database of a newer schema is refused, not rewritten', async () => {
    const p = place();
    await (await openServerConfStore(p.dir, p.url)).close();
    if (p.url === undefined) {
      const db = new Database(join(p.dir, SERVERCONF_DB));
      db.pragma('user_version = 99');
      db.close();
    } else {
      execFileSync('psql', ['-X', '-q', '-d', p.url, '-c', "UPDATE xrd_schema_versions SET version = 99 WHERE store = 'serverconf'"]);
    }
    await expect(openServerConfStore(p.dir, p.url)).rejects.toMatchObject({ code: 'DatabaseTooNew' });
  });

  it("a read does not wait for another process's change in progress: the reader's snapshot takes no write lock", async () => {
    const p = place();
    const store = await open(p);
    await store.change(ADMIN, 'INIT', {}, () => fullConf());
    // Another process holds a write transaction open (the CLI in the middle of a change) until it is told to end.
    const holder =
      p.url === undefined
        ? spawn('python3', ['-c', `import sqlite3,sys; c=sqlite3.connect(${JSON.stringify(join(p.dir, SERVERCONF_DB))}, isolation_level=None); c.execute('BEGIN IMMEDIATE'); c.execute('UPDATE server SET revision = revision'); print('locked', flush=True); sys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] })
        : spawn('psql', ['-X', '-q', '-d', p.url, '-c', 'BEGIN', '-c', 'SELECT revision FROM server FOR UPDATE', '-c', '\\echo locked', '-f', '-'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolveLocked, reject) => {
        holder.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolveLocked());
        holder.once('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)));
      });
      expect((await store.read())?.clients.length).toBe(fullConf().clients.length);
      expect(holder.exitCode).toBeNull();
    } finally {
      holder.stdin!.end();
      holder.kill();
    }
  });
});

const STORE = resolve(import.meta.dirname, '../../src/serverconf/store.ts');
const IDS = resolve(import.meta.dirname, '../../src/protocol/identifiers.ts');

function changeIn(p: { dir: string; url: string | undefined }, serverCode: string): string {
  return `
    import { openServerConfStore } from ${JSON.stringify(STORE)};
    import { parseSecurityServerId } from ${JSON.stringify(IDS)};
    const store = await openServerConfStore(${JSON.stringify(p.dir)}, ${JSON.stringify(p.url)});
    await store.change({ kind: 'os-user', name: 'other' }, 'EDIT', {}, (c) => ({ ...c, serverId: parseSecurityServerId('LOCAL/COM/1111/${serverCode}') }));
    await store.close();`;
}
