import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '#shared/config.ts';
import { SCHEDULER_ENVIRONMENT } from '#test/support/aws-resources.ts';
import { type BuiltBundle, buildLambdaBundleForTest, ZOD_FOREIGN_MESSAGES } from '#test/support/lambda-bundles.ts';
import { httpApiEvent, lambdaContext } from '#test/support/lambda-events.ts';
import { repoRoot } from '#test/support/paths.ts';
import { lambdaBuildOptions } from '../../infra/lambda-bundles.ts';

/**
 * The Lambda bundles carry zod's English messages only (infra/lambda-bundles.ts): the API bundle, built as the stack
 * builds it, holds no other language's messages and still answers with zod's English one.
 */

/** Configuration enough for the API bundle to start; any AWS call would go to a closed port. */
const API_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  [ENV.table]: 'runs',
  [ENV.bucket]: 'artifacts',
  [ENV.documentName]: 'FlinkFleetProfiler',
  [ENV.documentVersion]: '1',
  ...SCHEDULER_ENVIRONMENT,
};

describe('zod in the Lambda bundles', () => {
  let api: BuiltBundle;

  beforeAll(async () => {
    api = await buildLambdaBundleForTest('api');
  });

  it('has no locale but English in the API bundle', () => {
    const code = readFileSync(api.file, 'utf8');
    // Not toContain: a failure would print the whole bundle.
    for (const message of ZOD_FOREIGN_MESSAGES) expect(code.includes(message), message).toBe(false);
  });

  it("answers a bad query with zod's English message, from the API bundle in a fresh process", () => {
    // Our fields have our own messages; nextToken keeps zod's (an empty one is too short).
    const event = httpApiEvent('GET', '/api/v1/runs?nextToken=');
    const script = `
      const { handler } = await import(${JSON.stringify(api.file)});
      const result = await handler(${JSON.stringify(event)}, ${JSON.stringify(lambdaContext)});
      process.stdout.write('RESULT:' + JSON.stringify(result));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH, ...API_ENV },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.status, child.stderr).toBe(0);
    // Powertools logs to stdout too: the result follows its marker.
    const result = JSON.parse(child.stdout.slice(child.stdout.lastIndexOf('RESULT:') + 'RESULT:'.length));
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toEqual({
      errors: ['nextToken: Too small: expected string to have >=1 characters'],
    });
  });

  it('refuses to build a bundle that would carry another locale (the check is live)', async () => {
    const { entryPoints: _none, ...options } = lambdaBuildOptions(
      '',
      join(mkdtempSync(join(tmpdir(), 'ffp-')), 'x.mjs'),
    );
    const german = build({
      ...options,
      write: false,
      stdin: { contents: "export { default } from 'zod/v4/locales/de.js';", resolveDir: repoRoot },
    });
    await expect(german).rejects.toThrow(/zod locales other than English are in the bundle \(.*de\.js\)/);
  });
});
