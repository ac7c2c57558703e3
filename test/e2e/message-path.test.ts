/**
 * The message path through ss2 and ss1, on one local instance for all its parts
 * (test/support/shared-instance.ts): they call, monitor and check health; each puts back what it
 * stops or logs out, and the shared subsystem is a client of its own. The proxy options are the
 * union of what the parts need.
 */
import { describe } from 'vitest';
import { shareLocalInstance } from '../support/shared-instance.ts';

shareLocalInstance('e2e-message-path', {
  proxyArgs: ['--max-message-bytes', String(256 * 1024), '--timestamping-interval', '1', '--opmonitor-records-offset', '0', '--health-cache-ms', '200'],
});

describe('metaservices', async () => {
  await import('./metaservices.part.ts');
});
describe('opmonitor queries', async () => {
  await import('./opmonitor-queries.part.ts');
});
describe('shared subsystem', async () => {
  await import('./shared-subsystem.part.ts');
});
describe('local instance', async () => {
  await import('./local-instance.part.ts');
});
describe('health', async () => {
  await import('./health.part.ts');
});
