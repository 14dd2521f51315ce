import type { BuildOptions } from 'esbuild';

/**
 * The Lambda functions and how they are bundled: one definition for the CDK stack (NodejsFunction bundles
 * with local esbuild using these options) and for the tests and benchmarks that build the same bundles.
 */
export const LAMBDA_ENTRIES = {
  api: 'functions/lambda/api.lambda.ts',
  completion: 'functions/lambda/completion.lambda.ts',
  reconciler: 'functions/lambda/reconciler.lambda.ts',
  tick: 'functions/lambda/tick.lambda.ts',
} as const;

export type LambdaName = keyof typeof LAMBDA_ENTRIES;

/** The Lambda runtime's Node.js major version, which the bundles target. */
export const LAMBDA_NODE_MAJOR = 22;

/** ESM bundles of CommonJS dependencies need `require`; Node's ESM has none, so the bundle makes one. */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

/** esbuild options for one function: ESM, minified, the AWS SDK bundled (not the runtime's copy). */
export function lambdaBuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: `node${LAMBDA_NODE_MAJOR}`,
    format: 'esm',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    logLevel: 'silent',
  };
}
