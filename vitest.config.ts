import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'server/**/*.test.ts', 'plugins/**/*.test.ts', 'test/**/*.test.ts', 'scripts/**/*.test.ts'],
    // Native modules (better-sqlite3, zstd-napi) are safest in forked processes.
    pool: 'forks',
    // The PostgreSQL store suites' server: IQP_TEST_DATABASE_URL, or a throwaway cluster per run.
    globalSetup: ['test/postgres/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: process.env['CI'] ? ['default'] : ['default'],
  },
});
