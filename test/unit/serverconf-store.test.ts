/**
 * The server configuration's store (issue 14 item 1): a real SQLite file; serverconf.json imported
 * once; changes atomic and audited (who, what, when); the running proxy's reader sees a change
 * made by another process without a restart; two processes changing it at once lose nothing.
 */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { XrdError } from '../../src/platform/errors.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import type { ServerConf } from '../../src/serverconf/model.ts';
import { isQueryAllowed } from '../../src/serverconf/access.ts';
import { findService } from '../../src/serverconf/server-conf.ts';
import { parseServerConfJson, serializeServerConfJson } from '../../src/serverconf/serverconf-json.ts';
import { SERVERCONF_DB, openServerConfStore, serverConfReader, type Actor } from '../../src/serverconf/store.ts';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'xrd-serverconf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const dir = join(root, String(++n));
  mkdirSync(dir, { mode: 0o700 });
  return dir;
};
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

describe('the server configuration store', () => {
  it('imports a serverconf.json once, in the reference model, and moves it aside; one that turns up later is set aside unread', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'serverconf.json'), LEGACY);
    const store = openServerConfStore(dir);
    try {
      const conf = store.read()!;
      expect(existsSync(join(dir, 'serverconf.json'))).toBe(false);
      expect(existsSync(join(dir, 'serverconf.json.imported'))).toBe(true);
      expect(statSync(join(dir, SERVERCONF_DB)).mode & 0o777).toBe(0o600);
      const provider = conf.clients[0]!;
      // One WSDL description for the two SOAP services, one of its own for the REST service.
      expect(provider.serviceDescriptions.map((d) => [d.id, d.type, d.url, d.services.map((s) => s.code)])).toEqual([
        [1, 'WSDL', 'http://is.example/wsdl', ['getRandom', 'helloService']],
        [2, 'OPENAPI3', 'http://is.example/openapi.json', ['pets']],
      ]);
      expect(provider.endpoints.map((e) => `${e.serviceCode} ${e.method} ${e.path}`)).toEqual(['getRandom * **', 'helloService * **', 'pets * **']);
      expect(provider.accessRights.map((r) => `${r.subject} ${r.serviceCode}`)).toEqual(['LOCAL/COM/2222/CLIENT getRandom', 'GLOBALGROUP:LOCAL/owners helloService', 'LOCAL/COM/2222/CLIENT pets']);
      expect(findService(conf, parseClientId('LOCAL/COM/1111/PROVIDER'), 'getRandom', 'v1')).toMatchObject({ type: 'SOAP', url: 'http://is.example/', description: { type: 'WSDL', url: 'http://is.example/wsdl' } });
      expect(store.auditLog()).toEqual([expect.objectContaining({ actor: { kind: 'system', name: 'xrd' }, action: 'IMPORT_SERVERCONF_JSON' })]);
      // A file that turns up again later is not imported over the store.
      writeFileSync(join(dir, 'serverconf.json'), LEGACY.replace('ss1', 'ss9'));
    } finally {
      store.close();
    }
    const again = openServerConfStore(dir);
    try {
      expect(again.read()!.serverId.serverCode).toBe('ss1');
      expect(again.auditLog()).toHaveLength(1);
      expect(existsSync(join(dir, 'serverconf.json.ignored'))).toBe(true);
    } finally {
      again.close();
    }
  });

  it('a broken serverconf.json is refused naming the field, and stays where it is', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'serverconf.json'), '{"serverId":"LOCAL/COM/1111/ss1","clients":[{"id":"LOCAL/COM/1111/P","services":[{"code":"x","url":"nope"}]}]}');
    expect(() => openServerConfStore(dir)).toThrow(expect.objectContaining({ code: 'InvalidConfiguration', message: expect.stringContaining('clients[0].services[0].url is not a URL') }));
    expect(existsSync(join(dir, 'serverconf.json'))).toBe(true);
  });

  it('keeps every part of the model through the store and through its JSON export', () => {
    const dir = freshDir();
    const store = openServerConfStore(dir);
    try {
      const conf = fullConf();
      store.change(ADMIN, 'SET', {}, () => conf);
      expect(store.read()).toEqual(conf);
      expect(parseServerConfJson(serializeServerConfJson(conf))).toEqual(conf);
      // The local group's right is a right like any other.
      const provider = store.read()!.clients[0]!;
      expect(isQueryAllowed(provider, 'pets', parseClientId('LOCAL/COM/3333/FRIEND'), { method: 'GET', path: '/pets/7' }, () => false)).toBe(true);
      expect(isQueryAllowed(provider, 'pets', parseClientId('LOCAL/COM/3333/FRIEND'), { method: 'POST', path: '/pets/7' }, () => false)).toBe(false);
    } finally {
      store.close();
    }
  });

  it('a change is atomic and audited: who, what, when; a refused one leaves nothing behind', () => {
    const dir = freshDir();
    const store = openServerConfStore(dir);
    try {
      store.change(ADMIN, 'SET', { why: 'start' }, () => fullConf());
      const revision = store.revision();
      const before = store.read();
      expect(() =>
        store.change(ADMIN, 'REFUSED', {}, () => {
          throw new XrdError('InvalidRequest', { reason: 'refused' });
        }),
      ).toThrow(expect.objectContaining({ code: 'InvalidRequest' }));
      // A change the schema refuses: a right to an endpoint that does not exist.
      expect(() =>
        store.change(ADMIN, 'BROKEN', {}, (conf) => ({ ...conf!, clients: conf!.clients.map((c, i) => (i === 0 ? { ...c, accessRights: [...c.accessRights, { subject: 'LOCAL/COM/2222/CLIENT', serviceCode: 'nothing', method: '*', path: '**', grantedAt: '2026-12-06T10:00:00.000Z' }] } : c)) })),
      ).toThrow(expect.objectContaining({ code: 'InvalidConfiguration' }));
      expect(store.revision()).toBe(revision);
      expect(store.read()).toEqual(before);
      const [last] = store.auditLog();
      expect(last).toMatchObject({ actor: ADMIN, action: 'SET', detail: { why: 'start' } });
      expect(Date.now() - Date.parse(last!.at)).toBeLessThan(60_000);
      expect(store.auditLog()).toHaveLength(1);
    } finally {
      store.close();
    }
  });

  it("the proxy's reader sees another process's change without a restart, and keeps the last good configuration when the store cannot be read", async () => {
    const dir = freshDir();
    const store = openServerConfStore(dir);
    const errors: string[] = [];
    expect(() => serverConfReader(store)()).toThrow(expect.objectContaining({ code: 'ServerNotInitialized' }));
    store.change(ADMIN, 'SET', {}, () => fullConf());
    const read = serverConfReader(store, { recheckMs: 0, onError: (e) => errors.push(e.code) });
    expect(read().serverId.serverCode).toBe('ss1');
    await run(process.execPath, ['--import', 'tsx', '-e', changeIn(dir, 'ss2')]);
    expect(read().serverId.serverCode).toBe('ss2');
    store.close();
    // Closed under it: what it had stays in force.
    expect(read().serverId.serverCode).toBe('ss2');
    expect(errors).toEqual(['IOError']);
  }, 60_000);

  it('two processes changing the configuration at once lose no change; each is in the audit log', async () => {
    const dir = freshDir();
    const store = openServerConfStore(dir);
    try {
      store.change(ADMIN, 'SET', {}, () => ({ ...fullConf(), timestampingServices: [] }));
    } finally {
      store.close();
    }
    const script = (who: string) => `
      import { openServerConfStore } from ${JSON.stringify(STORE)};
      const store = openServerConfStore(${JSON.stringify(dir)});
      for (let i = 0; i < 40; i++) store.change({ kind: 'os-user', name: '${who}' }, 'ADD_TSP', { i }, (c) => ({ ...c, timestampingServices: [...c.timestampingServices, { name: '${who}' + i, url: 'http://tsa.example/' + '${who}' + i }] }));
      store.close();`;
    await Promise.all(['a', 'b'].map((who) => run(process.execPath, ['--import', 'tsx', '-e', script(who)])));
    const after = openServerConfStore(dir);
    try {
      expect(after.read()!.timestampingServices).toHaveLength(80);
      const log = after.auditLog({ limit: 1000 });
      expect(log.filter((e) => e.actor.name === 'a')).toHaveLength(40);
      expect(log.filter((e) => e.actor.name === 'b')).toHaveLength(40);
      expect(after.revision()).toBe(81);
    } finally {
      after.close();
    }
  }, 60_000);

  it('a file of a newer schema is refused, not rewritten', () => {
    const dir = freshDir();
    openServerConfStore(dir).close();
    const db = new Database(join(dir, SERVERCONF_DB));
    db.pragma('user_version = 99');
    db.close();
    expect(() => openServerConfStore(dir)).toThrow(expect.objectContaining({ code: 'IOError', message: expect.stringContaining('schema version 99 is newer'), cause: expect.objectContaining({ code: 'DatabaseTooNew' }) }));
  });
});

const STORE = resolve(import.meta.dirname, '../../src/serverconf/store.ts');
const IDS = resolve(import.meta.dirname, '../../src/protocol/identifiers.ts');

function changeIn(dir: string, serverCode: string): string {
  return `
    import { openServerConfStore } from ${JSON.stringify(STORE)};
    import { parseSecurityServerId } from ${JSON.stringify(IDS)};
    const store = openServerConfStore(${JSON.stringify(dir)});
    store.change({ kind: 'os-user', name: 'other' }, 'EDIT', {}, (c) => ({ ...c, serverId: parseSecurityServerId('LOCAL/COM/1111/${serverCode}') }));
    store.close();`;
}
