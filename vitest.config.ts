import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One process per file: a PKCS#11 library is initialised once per process and SoftHSM reads
    // SOFTHSM2_CONF at that moment, so each file gets its own token directory.
    pool: 'forks',
    globalSetup: ['test/support/temp-root.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
