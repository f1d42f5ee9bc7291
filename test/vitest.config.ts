import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Every system program the tests start (Redis, Chromium, Prometheus, PostgreSQL) is
    // looked for before the first test: one message lists all that are missing and how to
    // install them, instead of a failure per test.
    globalSetup: ['../scripts/preflight.mjs'],
    // CI's second pass under another Node version (.ci/run) re-runs every test but the
    // newcomer's paths: the fresh clone (npm ci + build of a fresh clone, ~3 min there) and
    // the packed tarballs in fresh projects (~1 min), which the first pass already ran on the
    // Node version the README names.
    exclude: process.env.TOKENMETER_CI_SECOND_RUNTIME
      ? [...configDefaults.exclude, 'examples/fresh-clone.test.ts', 'packaging/packed.test.ts']
      : configDefaults.exclude,
  },
});
