/**
 * The web interface on a local instance, one instance for all its parts
 * (test/support/shared-instance.ts): ss3 joins as member 4444 through the pages (MEMBER_01), carol
 * changes ss2's address and maintenance mode and puts them back, and seed 003 is done through the
 * pages. Seed 003 goes last: it turns LOCAL/COM/2222/CLIENT back to plain HTTP without certificates.
 */
import { describe } from 'vitest';
import { shareLocalInstance } from '../support/shared-instance.ts';

shareLocalInstance('browser-local-instance', { proxyArgs: ['--timestamping-interval', '1'] });

describe('member registration (pages)', async () => {
  await import('./member-01.part.ts');
});
describe('system settings (pages)', async () => {
  await import('./system.part.ts');
});
describe('seed 003 (pages)', async () => {
  await import('./seed-003.part.ts');
});
