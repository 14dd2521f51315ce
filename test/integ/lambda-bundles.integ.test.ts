import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '#shared/config.ts';
import { createBucket, createRunTable, SCHEDULER_ENVIRONMENT } from '#test/support/aws-resources.ts';
import { type BuiltBundle, buildLambdaBundles } from '#test/support/lambda-bundles.ts';
import { httpApiEvent, lambdaContext } from '#test/support/lambda-events.ts';

/** The bundles as the CDK stack builds them, loaded and called in a fresh Node process like a Lambda cold start. */
describe('Lambda bundles', () => {
  let bundles: BuiltBundle[];
  let env: Record<string, string>;

  beforeAll(async () => {
    bundles = await buildLambdaBundles();
    env = {
      [ENV.table]: await createRunTable(),
      [ENV.bucket]: await createBucket(),
      [ENV.documentName]: 'FlinkFleetProfiler',
      [ENV.documentVersion]: '1',
      ...SCHEDULER_ENVIRONMENT,
    };
  });

  it('builds every function without local-mode code', () => {
    expect(bundles.map((b) => b.name).sort()).toEqual(['api', 'completion', 'reconciler', 'tick']);
    for (const bundle of bundles) {
      const code = readFileSync(bundle.file, 'utf8');
      expect(code, bundle.name).not.toContain('better_sqlite3');
      expect(code, bundle.name).not.toContain('better-sqlite3');
    }
  });

  it('answers an API Gateway request from the API bundle in a fresh process', () => {
    const api = bundles.find((b) => b.name === 'api') as BuiltBundle;
    const script = `
      const { handler } = await import(${JSON.stringify(api.file)});
      const result = await handler(${JSON.stringify(httpApiEvent('GET', '/api/v1/runs?limit=5'))}, ${JSON.stringify(lambdaContext)});
      process.stdout.write('RESULT:' + JSON.stringify(result));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.status, child.stderr).toBe(0);
    // Powertools logs to stdout too: the result follows its marker.
    const result = JSON.parse(child.stdout.slice(child.stdout.lastIndexOf('RESULT:') + 'RESULT:'.length));
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ runs: [] });
  });

  it('refuses to start with a configuration error naming the variable', () => {
    const reconciler = bundles.find((b) => b.name === 'reconciler') as BuiltBundle;
    const child = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `await import(${JSON.stringify(reconciler.file)})`],
      {
        env: { ...process.env, ...env, [ENV.table]: '' },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(child.status).not.toBe(0);
    expect(child.stderr).toContain(`${ENV.table}: is required`);
  });
});
