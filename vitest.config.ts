import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: run files in two forks so sharp's thread pool is not oversubscribed.
    pool: 'forks',
    maxWorkers: 2,
  },
});
