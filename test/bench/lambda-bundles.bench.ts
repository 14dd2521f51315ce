/**
 * Part of `npm run bench`: each Lambda bundle's size and its cold import time in a fresh Node process (the
 * module-level work a Lambda cold start pays: parsing the bundle, building the app and the SDK clients).
 * Aim (issue "The AWS path"): the API bundle under 500 KB minified and imported in under 150 ms here.
 */
import { spawnSync } from 'node:child_process';
import { buildLambdaBundles } from '#test/support/lambda-bundles.ts';

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

console.log(
  `Lambda bundles (esbuild, minified, AWS SDK bundled), Node ${process.version}, cold import median of ${RUNS}`,
);
for (const bundle of await buildLambdaBundles()) {
  const times = Array.from({ length: RUNS }, () => importMs(bundle.file));
  console.log(
    `${bundle.name.padEnd(11)} ${(bundle.bytes / 1024).toFixed(0).padStart(6)} KB   import p50 ${median(times).toFixed(1).padStart(6)} ms   max ${Math.max(...times).toFixed(1)} ms`,
  );
}
