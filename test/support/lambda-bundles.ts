import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { LAMBDA_ENTRIES, type LambdaName, lambdaBuildOptions } from '../../infra/lambda-bundles.ts';
import { repoRoot } from './paths.ts';

export interface BuiltBundle {
  name: LambdaName;
  file: string;
  bytes: number;
}

/** Builds every Lambda function as the CDK stack does, into a fresh temporary directory. */
export async function buildLambdaBundles(): Promise<BuiltBundle[]> {
  const outDir = mkdtempSync(join(tmpdir(), 'ffp-bundles-'));
  return Promise.all(
    (Object.entries(LAMBDA_ENTRIES) as Array<[LambdaName, string]>).map(async ([name, entry]) => {
      const file = join(outDir, `${name}.mjs`);
      await build({ ...lambdaBuildOptions(join(repoRoot, entry), file), absWorkingDir: repoRoot });
      return { name, file, bytes: statSync(file).size };
    }),
  );
}
