import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Timeouts guard against hangs, never against slowness: end-to-end tests train and run the CLI, and a
    // busy laptop may take several times an idle machine's minute. No test may race the clock.
    testTimeout: 300_000,
    hookTimeout: 600_000,
    // Two cores: run files in two forks so sharp's thread pool is not oversubscribed.
    pool: 'forks',
    maxWorkers: 2,
  },
});
