/**
 * GET /clients/{id}/service-client-candidates as the reference answers it
 * (AccessRightService.findAccessRightHolderCandidates): the subsystems of global configuration
 * (never members), its global groups and the client's local groups, each search term contained in
 * its field ignoring case; a service_client_type outside the three is refused; observers may ask.
 * Through the admin API in this process, in the world of test/support/services-world.ts.
 */
import Fastify from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/serverconf/api-keys.ts';
import { API_PREFIX, registerAdminRoutes } from '../../src/admin/api-server.ts';
import { ServerAdmin } from '../../src/admin/server-admin.ts';
import { globalConfReader } from '../../src/globalconf/global-conf.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { addLocalGroup } from '../../src/serverconf/changes.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';
import { PROVIDER, writeServicesWorld } from '../support/services-world.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-candidates-'));
const server = Fastify();
let admin: ServerAdmin;
let observerKey: string;
let registrationOfficerKey: string;

beforeAll(async () => {
  const confDir = await writeServicesWorld(dir);
  await changeServerConfIn(dir, { kind: 'system', name: 'test' }, 'SEED', (conf) => addLocalGroup(conf!, parseClientId('LOCAL/GOV/1111/PROVIDER'), 'partners', 'Partner agencies'));
  const keys = new ApiKeyStore(join(dir, 'admin', 'api-keys.json'));
  observerKey = keys.create(['XROAD_SECURESERVER_OBSERVER']).key;
  registrationOfficerKey = keys.create(['XROAD_REGISTRATION_OFFICER']).key;
  // Nothing here calls the signer: the socket is never connected.
  admin = new ServerAdmin({ proxyDataDir: dir, signerSocket: join(dir, 'none.sock'), globalConf: globalConfReader(confDir), logger: silentLogger() });
  registerAdminRoutes(server, { admin, keys, logger: silentLogger() });
  await server.ready();
});

afterAll(async () => {
  await admin?.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function candidates(query = '', key = observerKey): Promise<{ status: number; body: any }> {
  const answer = await server.inject({ method: 'GET', url: `${API_PREFIX}/clients/${encodeURIComponent(PROVIDER)}/service-client-candidates${query}`, headers: { authorization: `X-Road-ApiKey token=${key}` } });
  return { status: answer.statusCode, body: answer.json() };
}
const ids = async (query: string) => ((await candidates(query)).body as { id: string; local_group_code?: string }[]).map((c) => c.local_group_code ?? c.id);

describe('GET /clients/{id}/service-client-candidates', () => {
  it('findAccessRightHolderCandidates: every subsystem of global configuration (named as there, else by code), its global groups and the client\'s local groups; no members', async () => {
    const { status, body } = await candidates();
    expect(status).toBe(200);
    expect(body).toEqual([
      { id: 'LOCAL:GOV:1111:PROVIDER', name: 'PROVIDER', service_client_type: 'SUBSYSTEM' },
      { id: 'LOCAL:COM:2222:CONSUMER', name: 'Consumer portal', service_client_type: 'SUBSYSTEM' },
      { id: 'LOCAL:COM:2222:OTHER', name: 'OTHER', service_client_type: 'SUBSYSTEM' },
      { id: 'LOCAL:security-server-owners', name: 'Security server owners', service_client_type: 'GLOBALGROUP' },
      { id: expect.any(String), name: 'Partner agencies', local_group_code: 'partners', service_client_type: 'LOCALGROUP' },
    ]);
  });

  it('buildSubjectSearchPredicate: each term is contained in its field, ignoring case; terms combine', async () => {
    expect(await ids('?service_client_type=LOCALGROUP')).toEqual(['partners']);
    expect(await ids('?service_client_type=GLOBALGROUP')).toEqual(['LOCAL:security-server-owners']);
    // A member's name finds its subsystems; a group's description finds the group.
    expect(await ids('?member_name_group_description=consumer')).toEqual(['LOCAL:COM:2222:CONSUMER', 'LOCAL:COM:2222:OTHER']);
    expect(await ids('?member_name_group_description=PARTNER')).toEqual(['partners']);
    expect(await ids('?member_group_code=222')).toEqual(['LOCAL:COM:2222:CONSUMER', 'LOCAL:COM:2222:OTHER']);
    expect(await ids('?member_group_code=owners')).toEqual(['LOCAL:security-server-owners']);
    expect(await ids('?member_class=gov')).toEqual(['LOCAL:GOV:1111:PROVIDER']);
    expect(await ids('?subsystem_code=oth&member_class=COM')).toEqual(['LOCAL:COM:2222:OTHER']);
    // Local groups have no instance: an instance term leaves them out.
    expect(await ids('?instance=LOC&service_client_type=LOCALGROUP')).toEqual([]);
    expect(await ids('?instance=EE')).toEqual([]);
  });

  it('refuses a service_client_type outside SUBSYSTEM, GLOBALGROUP, LOCALGROUP, and a caller without a services role', async () => {
    const wrong = await candidates('?service_client_type=MEMBER');
    expect([wrong.status, wrong.body.error.code]).toEqual([400, 'InvalidRequest']);
    const refused = await candidates('', registrationOfficerKey);
    expect([refused.status, refused.body.error.code]).toEqual([403, 'PermissionDenied']);
  });
});
