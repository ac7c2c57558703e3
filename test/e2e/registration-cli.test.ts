/**
 * The administrator's work with the command line and seed 003, on one local instance for both parts
 * (test/support/shared-instance.ts): ss3 joins as member 4444 (MEMBER_01) with `xrd`, then seed 003
 * adds subsystems of its own on ss2 and ss1. Seed 003 goes last: it replaces the provider's service
 * descriptions.
 */
import { describe } from 'vitest';
import { shareLocalInstance } from '../support/shared-instance.ts';

shareLocalInstance('e2e-registration-cli', { proxyArgs: ['--timestamping-interval', '1'] });

describe('member registration (command line)', async () => {
  await import('./member-registration-cli.part.ts');
});
describe('seed 003', async () => {
  await import('./seed-003.part.ts');
});
