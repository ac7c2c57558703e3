/**
 * The configuration anchor in the admin API (the reference's SystemApi getAnchor, downloadAnchor,
 * previewAnchor, uploadInitialAnchor, replaceAnchor): the hash as the reference computes it
 * (SHA-224 of the file, upper-case hex; checked with OpenSSL), the file downloaded as it is, the
 * reference's anchors (shared vectors) accepted, and coded refusals: a second initial anchor, an
 * anchor of another instance, what is not an anchor, an entity-expansion document; roles as the
 * reference's view_anchor, download_anchor and upload_anchor; changes audited under the caller.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore, type Role } from '../../src/serverconf/api-keys.ts';
import { API_PREFIX, registerAdminRoutes } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { configurationAnchorXml } from '../../src/globalconf/writer.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { lastAuditEntry } from '../support/admin-api.ts';
import { openssl } from '../support/openssl.ts';
import { VECTORS } from '../support/vectors.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-anchor-'));
const anchorFile = join(dir, 'configuration-anchor.xml');
const keys = new ApiKeyStore(join(dir, 'admin', 'api-keys.json'));
const keyOf = (role: Role) => keys.create([role], role).key;
const REFERENCE_ANCHOR = readFileSync(join(VECTORS, 'configuration-anchor1.xml'));
const REFERENCE_ANCHOR_2 = readFileSync(join(VECTORS, 'globalconf-versions', 'configuration-anchor2.xml'));
const GENERATED_AT = new Date('2026-11-30T08:15:42.000Z');
const cert = Buffer.from(openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=conf', '-days', '1', '-outform', 'PEM']).replace(/-----[^-]+-----|\s/g, ''), 'base64');
const anchorOf = (instance: string) => Buffer.from(configurationAnchorXml({ instanceIdentifier: instance, generatedAt: GENERATED_AT, sources: [{ downloadUrl: 'http://cs.example.org/internalconf', verificationCerts: [cert] }] }));
let app: FastifyInstance;
let bare: FastifyInstance;

async function appWith(anchor: string | undefined): Promise<FastifyInstance> {
  const server = Fastify();
  const admin = new ServerAdmin({ proxyDataDir: join(dir, 'proxy'), signerSocket: join(dir, 'none.sock'), globalConf: () => { throw new Error('no configuration'); }, logger: silentLogger(), anchorFile: anchor });
  // Many calls in a moment from one address: the rate limit is tested elsewhere (api-security.test.ts).
  registerAdminRoutes(server, { admin, keys, logger: silentLogger(), rateLimit: { perSecond: 1000, perMinute: 10_000 } });
  await server.ready();
  return server;
}

beforeAll(async () => {
  app = await appWith(anchorFile);
  bare = await appWith(undefined);
});
afterAll(async () => {
  await app?.close();
  await bare?.close();
  rmSync(dir, { recursive: true, force: true });
});

const call = (method: 'GET' | 'POST' | 'PUT', path: string, role: Role, body?: Buffer, server = app) =>
  server.inject({ method, url: `${API_PREFIX}${path}`, headers: { authorization: `X-Road-ApiKey token=${keyOf(role)}`, ...(body ? { 'content-type': 'application/octet-stream' } : {}) }, ...(body ? { payload: body } : {}) });
const sha224 = (bytes: Buffer) => openssl(['dgst', '-sha224', '-r'], bytes).split(' ')[0]!.toUpperCase();
const lastAudit = (action: string) => lastAuditEntry(join(dir, 'proxy'), action);

describe('the configuration anchor', () => {
  it('is AnchorNotFound while there is none, and when the API was not told where it is', async () => {
    for (const server of [app, bare]) {
      const res = await call('GET', '/system/anchor', 'XROAD_SECURESERVER_OBSERVER', undefined, server);
      expect(res.statusCode).toBe(404);
      expect(res.json().error).toMatchObject({ code: 'AnchorNotFound', reference_code: 'anchor_not_found' });
    }
  });

  it("POST /system/anchor saves the first anchor (the reference's own), answering its SHA-224; a second is AnchorAlreadyExists", async () => {
    const res = await call('POST', '/system/anchor', 'XROAD_SYSTEM_ADMINISTRATOR', REFERENCE_ANCHOR);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ hash: sha224(REFERENCE_ANCHOR), created_at: null });
    expect(readFileSync(anchorFile).equals(REFERENCE_ANCHOR)).toBe(true);
    expect(await lastAudit('INIT_ANCHOR')).toMatchObject({ actor: { kind: 'api-key', name: 'XROAD_SYSTEM_ADMINISTRATOR' }, detail: { anchorFileHash: sha224(REFERENCE_ANCHOR) } });
    const again = await call('POST', '/system/anchor', 'XROAD_SYSTEM_ADMINISTRATOR', REFERENCE_ANCHOR);
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatchObject({ code: 'AnchorAlreadyExists', reference_code: 'anchor_already_exists' });
  });

  it('GET /system/anchor shows the hash to an observer; the download (not to the observer) is the file as it is', async () => {
    expect((await call('GET', '/system/anchor', 'XROAD_SECURESERVER_OBSERVER')).json()).toEqual({ hash: sha224(REFERENCE_ANCHOR), created_at: null });
    expect((await call('GET', '/system/anchor/download', 'XROAD_SECURESERVER_OBSERVER')).statusCode).toBe(403);
    const res = await call('GET', '/system/anchor/download', 'XROAD_SECURITY_OFFICER');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/xml/);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="configuration_anchor_UTC_\d{4}-\d\d-\d\d_\d\d_\d\d_\d\d\.xml"$/);
    expect(res.rawPayload.equals(REFERENCE_ANCHOR)).toBe(true);
  });

  it('POST /system/anchor/previews answers hash and date without saving; PUT replaces the anchor with one of the same instance', async () => {
    const next = anchorOf('EE');
    const preview = await call('POST', '/system/anchor/previews', 'XROAD_SECURITY_OFFICER', next);
    expect(preview.statusCode).toBe(200);
    expect(preview.json()).toEqual({ hash: sha224(next), created_at: GENERATED_AT.toISOString() });
    expect(readFileSync(anchorFile).equals(REFERENCE_ANCHOR)).toBe(true);

    const res = await call('PUT', '/system/anchor', 'XROAD_SECURITY_OFFICER', next);
    expect(res.statusCode).toBe(201);
    expect(readFileSync(anchorFile).equals(next)).toBe(true);
    expect((await call('GET', '/system/anchor', 'XROAD_SECURESERVER_OBSERVER')).json()).toEqual({ hash: sha224(next), created_at: GENERATED_AT.toISOString() });
    expect((await call('GET', '/system/anchor/download', 'XROAD_SECURITY_OFFICER')).headers['content-disposition']).toBe('attachment; filename="configuration_anchor_UTC_2026-11-30_08_15_42.xml"');
    expect(await lastAudit('UPLOAD_ANCHOR')).toMatchObject({ actor: { name: 'XROAD_SECURITY_OFFICER' }, detail: { anchorFileHash: sha224(next) } });
    // The reference's second test anchor (instance EE) is accepted too.
    expect((await call('PUT', '/system/anchor', 'XROAD_SECURITY_OFFICER', REFERENCE_ANCHOR_2)).statusCode).toBe(201);
  });

  it('refuses an anchor of another instance with InvalidAnchorInstance (a preview too, unless validate_instance=false)', async () => {
    const other = anchorOf('DEV');
    for (const path of ['/system/anchor/previews', '/system/anchor']) {
      const res = await call(path.endsWith('previews') ? 'POST' : 'PUT', path, 'XROAD_SECURITY_OFFICER', other);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'InvalidAnchorInstance', reference_code: 'internal_anchor_upload_invalid_instance_id' });
    }
    expect((await call('POST', '/system/anchor/previews?validate_instance=false', 'XROAD_SECURITY_OFFICER', other)).statusCode).toBe(200);
    expect(readFileSync(anchorFile).equals(REFERENCE_ANCHOR_2)).toBe(true);
  });

  it('refuses what is not an anchor with MalformedAnchor: other XML, broken XML, a DTD with entities, more than 1 MiB', async () => {
    const bomb = Buffer.from(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;">]><configurationAnchor>&y;</configurationAnchor>`);
    const large = Buffer.concat([anchorOf('EE'), Buffer.alloc(1024 * 1024 + 1, 0x20)]);
    for (const body of [Buffer.from('<shared/>'), Buffer.from('<configurationAnchor><instanceIdentifier>EE'), bomb, large, Buffer.from('<configurationAnchor><instanceIdentifier>EE</instanceIdentifier></configurationAnchor>')]) {
      const res = await call('PUT', '/system/anchor', 'XROAD_SECURITY_OFFICER', body);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'MalformedAnchor', reference_code: 'malformed_anchor' });
    }
    expect(readFileSync(anchorFile).equals(REFERENCE_ANCHOR_2)).toBe(true);
  });

  it('is changed only by the security officer and the system administrator', async () => {
    for (const role of ['XROAD_SECURESERVER_OBSERVER', 'XROAD_SERVICE_ADMINISTRATOR', 'XROAD_REGISTRATION_OFFICER'] as const) {
      expect((await call('PUT', '/system/anchor', role, anchorOf('EE'))).statusCode).toBe(403);
      expect((await call('POST', '/system/anchor/previews', role, anchorOf('EE'))).statusCode).toBe(403);
    }
    expect((await call('GET', '/system/anchor', 'XROAD_SERVICE_ADMINISTRATOR')).statusCode).toBe(403);
  });
});
