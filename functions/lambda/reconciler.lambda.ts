import { createAwsProfiler, createLambdaLogger } from './wiring.ts';

const log = createLambdaLogger();
const profiler = createAwsProfiler(undefined, undefined, log);

/** Scheduled: settles RUNNING runs past their duration plus grace whose completion never came. */
export async function handler(): Promise<{ settled: number }> {
  const settled = await profiler.reconcile('overdue');
  for (const run of settled) log.info('run reconciled', { runId: run.id, status: run.status, message: run.message });
  return { settled: settled.length };
}
