/**
 * The administrator's work through the admin API, on one local instance for all its parts
 * (test/support/shared-instance.ts): ss3 joins as member 4444 (MEMBER_01), ss1 describes the services
 * of a subsystem of its own, and ss2 registers, disables, moves and deletes clients of its own.
 * Each part works on servers and clients no other part touches; client registration goes last,
 * as its owner change (member 3333 made ss2's owner) stays.
 */
import { describe } from 'vitest';
import { DEFAULT_LAYOUT, type LocalLayout } from '../../src/dev/testpki/local-layout.ts';
import { shareLocalInstance } from '../support/shared-instance.ts';

/** The services part's subsystem of the provider on ss1, hosting nothing at first. */
const SUBSYSTEM = 'SERVICES';
/** The demo layout with that subsystem added. */
const LAYOUT: LocalLayout = {
  ...DEFAULT_LAYOUT,
  members: DEFAULT_LAYOUT.members.map((m) => (m.code === DEFAULT_LAYOUT.provider.owner ? { ...m, subsystems: [...m.subsystems, SUBSYSTEM] } : m)),
  provider: { ...DEFAULT_LAYOUT.provider, clients: [...DEFAULT_LAYOUT.provider.clients, `${DEFAULT_LAYOUT.provider.owner}/${SUBSYSTEM}`] },
};

shareLocalInstance('e2e-registration-api', { layout: LAYOUT, proxyArgs: ['--timestamping-interval', '1'] });

describe('member registration (admin API)', async () => {
  await import('./member-registration-api.part.ts');
});
describe('services (admin API)', async () => {
  await import('./services-api.part.ts');
});
describe('client registration (admin API and command line)', async () => {
  await import('./client-registration-api.part.ts');
});
