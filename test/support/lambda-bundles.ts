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
}

/** Builds one Lambda function as the CDK stack does, into a fresh temporary directory. */
export async function buildLambdaBundleForTest(name: LambdaName): Promise<BuiltBundle> {
  const file = await buildLambdaBundle(name, mkdtempSync(join(tmpdir(), `ffp-bundle-${name}-`)));
  return { name, file, bytes: statSync(file).size };
}

/** Builds every Lambda function as the CDK stack does, each into a fresh temporary directory. */
export async function buildLambdaBundles(): Promise<BuiltBundle[]> {
  return Promise.all((Object.keys(LAMBDA_ENTRIES) as LambdaName[]).map(buildLambdaBundleForTest));
}
