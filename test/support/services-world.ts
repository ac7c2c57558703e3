/**
 * The small world of the services pages' and the service client candidates' tests: instance
 * LOCAL's global configuration (written as the reference writes it) with a provider member, a
 * consumer member with two subsystems (one named), a member without subsystems and the security
 * server owners' global group; and a proxy data directory whose initialised server (owner
 * LOCAL/GOV/1111, ss1) has the provider's subsystem as a registered client.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeGlobalConf } from '../../src/globalconf/writer.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { addClient } from '../../src/serverconf/changes.ts';
import type { ServerConf } from '../../src/serverconf/model.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';

export const PROVIDER = 'LOCAL:GOV:1111:PROVIDER';
export const CONSUMER = 'LOCAL:COM:2222:CONSUMER';
export const OTHER = 'LOCAL:COM:2222:OTHER';

/** Writes the world into `dir` (the proxy data directory) and `dir`/globalconf, which it returns. */
export async function writeServicesWorld(dir: string): Promise<string> {
  const confDir = join(dir, 'globalconf');
  mkdirSync(confDir, { recursive: true });
  writeGlobalConf(confDir, {
    instanceIdentifier: 'LOCAL',
    configurationVersion: 3,
    authCertHashAlgorithm: 'sha256',
    approvedCas: [],
    approvedTsas: [],
    members: [
      { id: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111' }, name: 'Provider Agency', subsystems: ['PROVIDER'] },
      { id: { instance: 'LOCAL', memberClass: 'COM', memberCode: '2222' }, name: 'Consumer Ltd', subsystems: ['CONSUMER', 'OTHER'], subsystemNames: { CONSUMER: 'Consumer portal' } },
      { id: { instance: 'LOCAL', memberClass: 'COM', memberCode: '3333' }, name: 'No Subsystems Oy', subsystems: [] },
    ],
    securityServers: [],
    globalGroups: [{ groupCode: 'security-server-owners', description: 'Security server owners', members: [] }],
    memberClasses: [
      { code: 'COM', description: 'Companies' },
      { code: 'GOV', description: 'Government' },
    ],
    ocspFreshnessSeconds: 3600,
  });
  const empty: ServerConf = { serverId: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', serverCode: 'ss1' }, clients: [], timestampingServices: [] };
  await changeServerConfIn(dir, { kind: 'system', name: 'test' }, 'SEED', () =>
    ['LOCAL/GOV/1111', 'LOCAL/GOV/1111/PROVIDER'].reduce((conf, id) => addClient(conf, parseClientId(id), { connectionType: 'HTTP', registered: true }), empty),
  );
  return confDir;
}
