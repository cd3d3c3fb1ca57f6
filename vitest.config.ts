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
    // A fork imports the modules once for all its files, not once per file: that import was 55 s of the
    // suite's 11 minutes of CPU (measured). Tests that set environment variables or a TensorFlow.js
    // backend put them back, so files do not see each other's state.
    isolate: false,
  },
});
