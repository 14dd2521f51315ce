import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLambdaBundle, LAMBDA_ENTRIES, type LambdaName } from '../../infra/lambda-bundles.ts';

/**
 * Text found only in zod's German and Spanish messages (v4/locales/de.js, es.js), ASCII so that esbuild's escaping
 * of other characters leaves it as it is: in every bundle if zod's locales came back (infra/lambda-bundles.ts).
 */
export const ZOD_FOREIGN_MESSAGES = ['Eingabe: erwartet', 'se esperaba'];

export interface BuiltBundle {
  name: LambdaName;
  file: string;
  bytes: number;
  /** How many of its bytes come from the AWS SDK (@aws-sdk/*, @smithy/*, @aws-crypto/*), by esbuild's metafile. */
  sdkBytes: number;
}

/** Builds one Lambda function as the CDK stack does, into a fresh temporary directory. */
export async function buildLambdaBundleForTest(name: LambdaName): Promise<BuiltBundle> {
  const { file, metafile } = await buildLambdaBundle(name, mkdtempSync(join(tmpdir(), `ffp-bundle-${name}-`)));
  const [output] = Object.values(metafile?.outputs ?? {});
  const sdkBytes = Object.entries(output?.inputs ?? {})
    .filter(([input]) => /node_modules\/(@aws-sdk|@smithy|@aws-crypto)\//.test(input))
    .reduce((sum, [, { bytesInOutput }]) => sum + bytesInOutput, 0);
  return { name, file, bytes: statSync(file).size, sdkBytes };
}

/** Builds every Lambda function as the CDK stack does, each into a fresh temporary directory. */
export async function buildLambdaBundles(): Promise<BuiltBundle[]> {
  return Promise.all((Object.keys(LAMBDA_ENTRIES) as LambdaName[]).map(buildLambdaBundleForTest));
}
