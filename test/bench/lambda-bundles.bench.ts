/**
 * Part of `npm run bench`: each Lambda bundle's size and its cold import time in a fresh Node process (the
 * module-level work a Lambda cold start pays: parsing the bundle, building the app and the SDK clients), beside a
 * bundle of Hono alone built the same way, and how much of each bundle is the AWS SDK.
 * Aim (issue "Cold start and fleet-scale fan-out"): the API bundle at most 400 KB, its import within 3x Hono's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { buildLambdaBundles } from '#test/support/lambda-bundles.ts';
import { lambdaBuildOptions } from '../../infra/lambda-bundles.ts';
import { repoRoot } from '../support/paths.ts';

const RUNS = Number(process.env.BENCH_IMPORT_RUNS ?? 7);
const env = {
  ...process.env,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  FLINK_PROFILER_TABLE: 'bench-runs',
  FLINK_PROFILER_BUCKET: 'bench-artifacts',
  FLINK_PROFILER_DOCUMENT_NAME: 'FlinkFleetProfiler',
  FLINK_PROFILER_DOCUMENT_VERSION: '1',
  FLINK_PROFILER_SCHEDULE_GROUP: 'bench-rules',
  FLINK_PROFILER_TICK_FUNCTION_ARN: 'arn:aws:lambda:us-east-1:123456789012:function:bench-tick',
  FLINK_PROFILER_SCHEDULER_ROLE_ARN: 'arn:aws:iam::123456789012:role/bench-scheduler',
};

function importMs(file: string): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(file)}); process.stdout.write('MS:' + (performance.now() - t));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`importing ${file} failed: ${child.stderr}`);
  return Number(child.stdout.slice(child.stdout.lastIndexOf('MS:') + 3));
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

/** Hono alone, answering one route through the same Lambda adapter, built as the functions are. */
async function buildHonoAlone(): Promise<{ file: string; bytes: number }> {
  const file = join(mkdtempSync(join(tmpdir(), 'ffp-hono-alone-')), 'index.mjs');
  const { entryPoints: _none, ...options } = lambdaBuildOptions('', file);
  await build({
    ...options,
    stdin: {
      contents:
        "import { Hono } from 'hono'; import { handle } from 'hono/aws-lambda'; export const handler = handle(new Hono().get('/', (c) => c.text('ok')));",
      resolveDir: repoRoot,
      loader: 'ts',
    },
  });
  return { file, bytes: statSync(file).size };
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(0).padStart(6)} KB`;

console.log(
  `Lambda bundles (esbuild, minified, AWS SDK bundled), Node ${process.version}, cold import median of ${RUNS}`,
);
const hono = await buildHonoAlone();
const honoTimes = Array.from({ length: RUNS }, () => importMs(hono.file));
const honoMs = median(honoTimes);
console.log(
  `${'hono alone'.padEnd(11)} ${kb(hono.bytes)}                       import p50 ${honoMs.toFixed(1).padStart(6)} ms   max ${Math.max(...honoTimes).toFixed(1)} ms`,
);
for (const bundle of await buildLambdaBundles()) {
  const times = Array.from({ length: RUNS }, () => importMs(bundle.file));
  const ms = median(times);
  console.log(
    `${bundle.name.padEnd(11)} ${kb(bundle.bytes)} (AWS SDK ${kb(bundle.sdkBytes)})   import p50 ${ms.toFixed(1).padStart(6)} ms   max ${Math.max(...times).toFixed(1)} ms   ${(ms / honoMs).toFixed(1)}x Hono`,
  );
}
