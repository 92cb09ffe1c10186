import { defineConfig } from 'vitest/config';
import { SDK_WARNING_ENV } from './scripts/sdk-env.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The console's page is bundled once here; servers started by tests then find it built.
    globalSetup: ['test/support/build-console.ts'],
    // Integration and e2e tests start real servers; keep them from starving each other on 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { ...SDK_WARNING_ENV },
  },
});
