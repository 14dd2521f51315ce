import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Tiers by file name: `*.unit.test.ts` (no network, no processes), `*.e2e.test.ts` (real JVMs, real
 * async-profiler), `*.integ.test.ts` and `*.contract.test.ts` (adapters against a local AWS endpoint).
 */
export default defineConfig({
  test: {
    root,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.unit.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.e2e.test.ts'],
          globalSetup: ['test/support/e2e-global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          // Profiles take wall-clock time and the machine has two cores: run e2e files one at a time.
          fileParallelism: false,
        },
      },
      {
        extends: true,
        // Synthesizing bundles three functions with esbuild: seconds, not milliseconds.
        test: { name: 'infra', include: ['test/infra/**/*.infra.test.ts'], hookTimeout: 180_000, testTimeout: 60_000 },
      },
      {
        extends: true,
        test: {
          name: 'integ',
          include: ['test/integ/**/*.integ.test.ts', 'test/contract/**/*.contract.test.ts'],
          globalSetup: ['test/support/moto-global-setup.ts', 'test/support/e2e-global-setup.ts'],
          setupFiles: ['test/support/aws-env.ts'],
          testTimeout: 60_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
