import { defineConfig } from 'vitest/config';

const contract = ['test/contract/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
    // The contract suites run three times: alone on SQLite (with everything else), alone on
    // PostgreSQL, and as two replicas on one PostgreSQL behind a round-robin balancer.
    projects: [
      { extends: true, test: { name: 'sqlite', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'postgres', include: contract, env: { FERRY_TEST_TOPOLOGY: 'postgres' } },
      },
      {
        extends: true,
        test: { name: 'replicas', include: contract, env: { FERRY_TEST_TOPOLOGY: 'replicas' } },
      },
    ],
  },
});
