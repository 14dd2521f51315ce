/**
 * `node --import tsx infra/build-lambda.ts <function> <outDir>`: builds one function's bundle into `outDir`. The
 * stack's local bundling runs it (infra/lambda-code.ts): CDK asks synchronously, esbuild's plugins run async.
 */
import { buildLambdaBundle, isLambdaName, LAMBDA_ENTRIES } from './lambda-bundles.ts';

const [name = '', outDir] = process.argv.slice(2);
if (!isLambdaName(name) || !outDir) {
  console.error(`usage: build-lambda.ts <${Object.keys(LAMBDA_ENTRIES).join('|')}> <outDir>`);
  process.exit(2);
}
await buildLambdaBundle(name, outDir);
