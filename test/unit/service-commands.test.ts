/**
 * `xrd service-description|service|endpoint|access|service-client|local-group` as an administrator
 * runs them: the real `xrd` binary against a proxy data directory with an initialised store, a
 * global configuration directory, and description documents served over loopback HTTP. Checks the
 * JSON views (the reference's API shapes), the human output, the coded refusals with exit code 1,
 * usage errors with 2, and that the changes are audited under the operating-system user.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGlobalConf } from '../../src/globalconf/writer.ts';
import { clientWithServices } from '../../src/serverconf/serverconf-json.ts';
import { changeServerConfIn, openServerConfStore } from '../../src/serverconf/store.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = join(ROOT, 'test/fixtures/service-descriptions');
const CLIENT = 'LOCAL:COM:1111:SUB';
const CONSUMER = 'LOCAL:GOV:2222:CONSUMER';
const OTHER = 'LOCAL:GOV:2222:OTHER';

let dir: string;
let proxyDir: string;
let confDir: string;
let server: Server;
let base: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

/** Runs `xrd` as a child process with --json (unless `human`), bounded in time. */
function xrd(args: string[], human = false): Promise<Run> {
  const argv = ['scripts/xrd.mjs', ...args, '--data-dir', proxyDir, '--conf', confDir, ...(human ? [] : ['--json'])];
  return new Promise((done) => {
    execFile(process.execPath, argv, { cwd: ROOT, timeout: 30_000, env: { ...process.env, XRD_LOG_LEVEL: 'warn' } }, (err, stdout, stderr) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr, json });
    });
  });
}

async function ok(...args: string[]): Promise<any> {
  const r = await xrd(args);
  expect(r, r.stderr).toMatchObject({ code: 0 });
  return r.json;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xrd-service-cli-'));
  proxyDir = join(dir, 'proxy');
  confDir = join(dir, 'globalconf');
  mkdirSync(proxyDir, { mode: 0o700 });
  writeGlobalConf(confDir, {
    instanceIdentifier: 'LOCAL',
    configurationVersion: 3,
    authCertHashAlgorithm: 'sha256',
    approvedCas: [],
    approvedTsas: [],
    members: [
      { id: { instance: 'LOCAL', memberClass: 'COM', memberCode: '1111' }, name: 'Provider Ltd', subsystems: ['SUB'] },
      { id: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '2222' }, name: 'Agency', subsystems: ['CONSUMER', 'OTHER'] },
    ],
    securityServers: [],
    globalGroups: [{ groupCode: 'security-server-owners', description: 'Security server owners', members: [] }],
    memberClasses: [
      { code: 'COM', description: 'Companies' },
      { code: 'GOV', description: 'Government' },
    ],
    ocspFreshnessSeconds: 3600,
  });
  await changeServerConfIn(proxyDir, { kind: 'system', name: 'test' }, 'CREATE', () => ({
    serverId: { instance: 'LOCAL', memberClass: 'COM', memberCode: '1111', serverCode: 'ss1' },
    clients: [clientWithServices({ id: { instance: 'LOCAL', memberClass: 'COM', memberCode: '1111', subsystem: 'SUB' } })],
    timestampingServices: [],
  }));
  server = createServer((req, res) => {
    const name = (req.url ?? '/').slice(1);
    if (!['provider.wsdl', 'pets.yaml', 'warnings.yaml'].includes(name)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': name.endsWith('.wsdl') ? 'text/xml' : 'application/yaml' }).end(readFileSync(join(FIXTURES, name)));
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (server) await new Promise((closed) => server.close(closed));
  rmSync(dir, { recursive: true, force: true });
});

describe('xrd service-description and service', () => {
  it('adds a WSDL description (disabled until enabled), enables, lists, updates a service and disables with a notice', async () => {
    const added = await ok('service-description', 'add', CLIENT, '--type', 'wsdl', '--url', `${base}/provider.wsdl`);
    expect(added).toMatchObject({ id: '1', type: 'WSDL', url: `${base}/provider.wsdl`, disabled: true, client_id: CLIENT });
    expect(added.services.map((s: any) => s.id)).toEqual([`${CLIENT}:forecast.v1`, `${CLIENT}:observations.v2`, `${CLIENT}:ping`, `${CLIENT}:forecast.v12`]);

    expect(await ok('service-description', 'enable', '1')).toMatchObject({ id: '1', disabled: false });
    const human = await xrd(['service-description', 'list', CLIENT], true);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`1  WSDL  enabled  ${base}/provider.wsdl`);
    expect(human.stdout).toContain(`  ${CLIENT}:forecast.v1  http://weather.example:8080/soap  timeout 60 s  TLS authentication no  "Weather forecast for a town"`);

    // url_all and timeout_all: every service of the description gets them.
    const updated = await ok('service', 'update', `${CLIENT}:ping`, '--url', 'https://weather.example/v2', '--timeout', '30', '--url-all', '--ssl-auth', 'true');
    expect(updated).toMatchObject({ id: `${CLIENT}:ping`, url: 'https://weather.example/v2', timeout: 30, ssl_auth: true });
    const services = await ok('service', 'list', CLIENT);
    expect(services.map((s: any) => [s.service_code, s.url, s.timeout])).toEqual([
      ['forecast', 'https://weather.example/v2', 60],
      ['observations', 'https://weather.example/v2', 60],
      ['ping', 'https://weather.example/v2', 30],
      ['forecast', 'https://weather.example/v2', 60],
    ]);

    // TLS authentication is kept unless given, and an http URL has none.
    expect(await ok('service', 'update', `${CLIENT}:ping`, '--url', 'http://weather.example/plain')).toMatchObject({ url: 'http://weather.example/plain', timeout: 30, ssl_auth: false });
    const https = await xrd(['service', 'update', `${CLIENT}:ping`, '--url', 'http://weather.example/plain', '--ssl-auth', 'true']);
    expect(https.json.error).toMatchObject({ code: 'InvalidHttpsUrl', referenceCode: 'invalid_https_url' });

    expect(await ok('service-description', 'disable', '1', '--notice', 'maintenance until noon')).toMatchObject({ disabled: true, disabled_notice: 'maintenance until noon' });
    expect(await ok('service', 'show', `${CLIENT}:forecast.v1`)).toMatchObject({ service_code: 'forecast', full_service_code: 'forecast.v1', timeout: 60 });
  });

  it('adds an OpenAPI 3 description with its generated endpoints, adds, changes and deletes an endpoint of its own, and changes the service code', async () => {
    const added = await ok('service-description', 'add', CLIENT, '--type', 'OPENAPI3', '--url', `${base}/pets.yaml`, '--service-code', 'pets');
    expect(added).toMatchObject({ id: '2', type: 'OPENAPI3', disabled: true });
    expect(added.services).toHaveLength(1);
    const service = added.services[0];
    expect(service).toMatchObject({ id: `${CLIENT}:pets`, url: `${base}/api/v1` });
    expect(service.endpoints.filter((e: any) => e.generated).map((e: any) => `${e.method} ${e.path}`)).toEqual(expect.arrayContaining(['GET /pets', 'POST /pets', 'GET /pets/*', 'DELETE /pets/*']));

    const own = await ok('endpoint', 'add', `${CLIENT}:pets`, '--method', 'put', '--path', '/pets/*/tags');
    expect(own).toMatchObject({ method: 'PUT', path: '/pets/*/tags', generated: false });
    expect(await ok('endpoint', 'show', own.id)).toEqual(own);
    const moved = await ok('endpoint', 'update', own.id, '--path', '/pets/*/labels');
    expect(moved).toMatchObject({ method: 'PUT', path: '/pets/*/labels' });
    expect((await ok('endpoint', 'list', `${CLIENT}:pets`)).map((e: any) => `${e.method} ${e.path}`)).toContain('PUT /pets/*/labels');
    expect(await ok('endpoint', 'delete', moved.id)).toEqual({ id: moved.id, deleted: true });
    expect((await ok('endpoint', 'list', `${CLIENT}:pets`)).map((e: any) => e.path)).not.toContain('/pets/*/labels');

    const renamed = await ok('service-description', 'update', '2', '--new-service-code', 'animals');
    expect(renamed.services.map((s: any) => s.id)).toEqual([`${CLIENT}:animals`]);
    expect(await ok('service-description', 'refresh', '2')).toMatchObject({ id: '2', url: `${base}/pets.yaml` });
  });

  it('refuses an OpenAPI document with validation warnings unless they are ignored, printing the coded error and the warnings', async () => {
    const refused = await xrd(['service-description', 'add', CLIENT, '--type', 'OPENAPI3', '--url', `${base}/warnings.yaml`, '--service-code', 'warned']);
    expect(refused.code).toBe(1);
    expect(refused.json.error).toMatchObject({ code: 'WarningsDetected', referenceCode: 'warnings_detected', warnings: [{ code: 'openapi_validation_warnings', metadata: ['attribute info is missing', 'attribute paths is missing'] }] });
    const human = await xrd(['service-description', 'add', CLIENT, '--type', 'OPENAPI3', '--url', `${base}/warnings.yaml`, '--service-code', 'warned'], true);
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/^error: \S+\.WarningsDetected: .*attribute info is missing/m);
    expect(human.stderr).toContain('--ignore-warnings');
    expect((await ok('service-description', 'list', CLIENT)).map((d: any) => d.url)).not.toContain(`${base}/warnings.yaml`);

    const ignored = await ok('service-description', 'add', CLIENT, '--type', 'OPENAPI3', '--url', `${base}/warnings.yaml`, '--service-code', 'warned', '--ignore-warnings');
    expect(ignored.services.map((s: any) => s.service_code)).toEqual(['warned']);
    expect(await ok('service-description', 'delete', ignored.id)).toEqual({ id: ignored.id, deleted: true });
    expect((await xrd(['service-description', 'show', ignored.id])).json.error).toMatchObject({ code: 'ServiceDescriptionNotFound', referenceCode: 'service_description_not_found' });
  });
});

describe('xrd access, service-client and local-group', () => {
  it('grants and revokes access to a service and to one endpoint; refuses a subject global configuration does not know', async () => {
    const service = `${CLIENT}:animals`;
    const granted = await ok('access', 'grant', service, CONSUMER, 'LOCAL:security-server-owners');
    expect(granted.map((c: any) => [c.service_client_type, c.id])).toEqual([
      ['SUBSYSTEM', CONSUMER],
      ['GLOBALGROUP', 'LOCAL:security-server-owners'],
    ]);
    expect((await ok('access', 'list', service)).map((c: any) => c.id)).toEqual([CONSUMER, 'LOCAL:security-server-owners']);

    const getPets = (await ok('endpoint', 'list', service)).find((e: any) => e.method === 'GET' && e.path === '/pets');
    expect(await ok('access', 'grant', '--endpoint', getPets.id, OTHER)).toMatchObject([{ id: OTHER, service_client_type: 'SUBSYSTEM' }]);
    expect((await ok('access', 'list', '--endpoint', getPets.id)).map((c: any) => c.id)).toEqual([OTHER]);
    expect(await ok('access', 'revoke', '--endpoint', getPets.id, OTHER)).toEqual([]);

    const unknown = await xrd(['access', 'grant', service, 'LOCAL:GOV:2222:NOPE']);
    expect(unknown.code).toBe(1);
    expect(unknown.json.error).toMatchObject({ code: 'ServiceClientNotFound', referenceCode: 'service_client_not_found' });
    const twice = await xrd(['access', 'grant', service, CONSUMER]);
    expect(twice.json.error).toMatchObject({ code: 'DuplicateAccessRight' });
    const malformed = await xrd(['access', 'grant', service, 'not-a-subject']);
    expect(malformed.json.error).toMatchObject({ code: 'InvalidServiceClientId' });

    expect((await ok('access', 'revoke', service, 'LOCAL:security-server-owners')).map((c: any) => c.id)).toEqual([CONSUMER]);
    const notGranted = await xrd(['access', 'revoke', service, 'LOCAL:security-server-owners']);
    expect(notGranted.json.error).toMatchObject({ code: 'AccessRightNotFound' });
  });

  it('makes a local group with members, gives it access, and shows it among the service clients', async () => {
    const group = await ok('local-group', 'add', CLIENT, '--code', 'partners', '--description', 'Partner agencies');
    expect(group).toMatchObject({ code: 'partners', description: 'Partner agencies', member_count: 0 });
    const members = await ok('local-group', 'add-members', group.id, CONSUMER, OTHER);
    expect(members.members.map((m: any) => [m.id, m.member_name])).toEqual([
      [CONSUMER, 'Agency'],
      [OTHER, 'Agency'],
    ]);
    expect((await xrd(['local-group', 'add-members', group.id, 'LOCAL:GOV:9999:GHOST'])).json.error).toMatchObject({ code: 'LocalGroupMemberNotFound' });
    expect((await xrd(['local-group', 'add', CLIENT, '--code', 'partners', '--description', 'again'])).json.error).toMatchObject({ code: 'LocalGroupCodeAlreadyExists' });
    expect((await ok('local-group', 'remove-members', group.id, OTHER)).members.map((m: any) => m.id)).toEqual([CONSUMER]);
    expect(await ok('local-group', 'update', group.id, '--description', 'Partners')).toMatchObject({ description: 'Partners', member_count: 1 });

    // A service client's view: the rights of one subject by service code.
    expect(await ok('service-client', 'grant', CLIENT, group.id, 'ping', 'animals')).toEqual([
      expect.objectContaining({ service_code: 'ping' }),
      expect.objectContaining({ service_code: 'animals' }),
    ]);
    const clients = await ok('service-client', 'list', CLIENT);
    expect(clients.map((c: any) => [c.service_client_type, c.id])).toEqual(expect.arrayContaining([['SUBSYSTEM', CONSUMER], ['LOCALGROUP', group.id]]));
    expect(await ok('service-client', 'revoke', CLIENT, group.id, 'ping')).toEqual({ client: CLIENT, subject: group.id, revoked: ['ping'] });
    expect((await ok('service-client', 'show', CLIENT, group.id)).map((r: any) => r.service_code)).toEqual(['animals']);
    const human = await xrd(['access', 'list', `${CLIENT}:animals`], true);
    expect(human.stdout).toMatch(new RegExp(`^LOCALGROUP\\s+${group.id}\\s+partners\\s`, 'm'));

    expect((await ok('local-group', 'list', CLIENT)).map((g: any) => g.code)).toEqual(['partners']);
    expect(await ok('local-group', 'delete', group.id)).toEqual({ id: group.id, deleted: true });
    expect((await ok('access', 'list', `${CLIENT}:animals`)).map((c: any) => c.id)).toEqual([CONSUMER]);
    expect((await xrd(['local-group', 'show', group.id])).json.error).toMatchObject({ code: 'LocalGroupNotFound' });
  });

  it('answers a bad command line with its usage and exit code 2, changing nothing', async () => {
    for (const args of [
      ['service', 'update', `${CLIENT}:ping`, '--timeout', '5000'],
      ['service', 'update', `${CLIENT}:ping`, '--ssl-auth', 'yes'],
      ['service', 'update', `${CLIENT}:ping`, '--url', `https://weather.example/${'x'.repeat(250)}`],
      ['service-description', 'add', CLIENT, '--type', 'SOAP', '--url', `${base}/provider.wsdl`],
      ['service-description', 'add', CLIENT, '--type', 'REST', '--url', 'https://rest.example/api'],
      ['service-description', 'update', '1', '--new-service-code', 'weather'],
      ['access', 'grant', `${CLIENT}:ping`],
      ['local-group', 'frobnicate'],
    ]) {
      const r = await xrd(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('xrd service-description list <client>');
    }
    expect((await ok('service', 'show', `${CLIENT}:ping`)).timeout).toBe(30);
  });

  it('records every change in the audit log under the operating-system user', async () => {
    const store = await openServerConfStore(proxyDir);
    try {
      const log = await store.auditLog({ limit: 1000 });
      const actions = new Set(log.filter((e) => e.actor.kind === 'os-user').map((e) => e.action));
      expect(log.filter((e) => e.action !== 'CREATE').every((e) => e.actor.kind === 'os-user' && e.actor.name === userInfo().username)).toBe(true);
      for (const action of ['ADD_SERVICE_DESCRIPTION', 'ENABLE_SERVICE_DESCRIPTION', 'DISABLE_SERVICE_DESCRIPTION', 'EDIT_SERVICE', 'ADD_ENDPOINT', 'ADD_SERVICE_ACCESS_RIGHTS', 'ADD_ENDPOINT_ACCESS_RIGHTS', 'ADD_LOCAL_GROUP', 'ADD_LOCAL_GROUP_MEMBERS']) {
        expect(actions, action).toContain(action);
      }
    } finally {
      await store.close();
    }
  });
});
