import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'server/**/*.test.ts', 'plugins/**/*.test.ts', 'test/**/*.test.ts', 'scripts/**/*.test.ts'],
    // Native modules (better-sqlite3, zstd-napi) are safest in forked processes.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: process.env['CI'] ? ['default'] : ['default'],
  },
});
