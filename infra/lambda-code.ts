import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { AssetHashType, DockerImage, type ILocalBundling } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LAMBDA_ENTRIES, type LambdaName } from './lambda-bundles.ts';

const REPO_ROOT = join(import.meta.dirname, '..');
const BUILD_SCRIPT = join(import.meta.dirname, 'build-lambda.ts');

/**
 * CDK's local bundling of one function with `buildLambdaBundle` (infra/lambda-bundles.ts), never Docker. CDK asks
 * synchronously and esbuild's plugins need its async API, so the build runs in a child process.
 */
class LocalLambdaBundling implements ILocalBundling {
  // Fields, not only a closure: CDK keys its asset cache on the bundling options' JSON, so each function's
  // options must differ or all four would get the first one's bundle.
  readonly entry: string;

  constructor(readonly name: LambdaName) {
    this.entry = LAMBDA_ENTRIES[name];
  }

  tryBundle(outputDir: string): boolean {
    try {
      execFileSync(process.execPath, ['--import', 'tsx', BUILD_SCRIPT, this.name, outputDir], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'inherit', 'pipe'],
        encoding: 'utf8',
      });
    } catch (error) {
      // CDK rethrows with the message only (no cause): esbuild's own errors go into it.
      const stderr = (error as { stderr?: string }).stderr?.trim() || String(error);
      throw new Error(
        `bundling the ${this.name} function (${this.entry}) with infra/build-lambda.ts failed:\n${stderr}`,
      );
    }
    return true;
  }
}

/**
 * A function's code: its bundle, `index.mjs` (handler `index.handler`), built locally at synth. Hashed by its
 * output, so synth never walks the repository (node_modules) to fingerprint the source.
 */
export function lambdaCode(name: LambdaName): lambda.Code {
  return lambda.Code.fromAsset(REPO_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Required by the type, never pulled or run: tryBundle builds or throws, it never hands over to Docker.
      image: DockerImage.fromRegistry('unused-functions-bundle-locally'),
      local: new LocalLambdaBundling(name),
    },
  });
}
