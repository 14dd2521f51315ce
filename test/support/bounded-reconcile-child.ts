// Run as a child process (node --import tsx) by test/unit/bounded-output.unit.test.ts, so that its peak memory is its
// own: the reconciler settles a run whose agent sent 2 GiB of HTML (as 2 MB of gzip), one with a corrupt gzip, and a
// good one, and prints what became of them and the process's peak RSS as one JSON line.
import { LOCAL_CALLER } from '#domain/access.ts';
import { corruptGzip, finishedStdoutWith, gzippedZerosHtml, peakRssBytes } from './hostile-payloads.ts';
import { createTestService, FLAME_GRAPH, finishedAgentStdout } from './unit-fakes.ts';

const service = createTestService();
const start = (role: 'taskmanager' | 'jobmanager') =>
  service.profiler.startRun({ caller: LOCAL_CALLER, cluster: 'local', role, mode: 'ITIMER', duration: 5 });
const huge = await start('taskmanager');
const corrupt = await start('jobmanager');
const baseline = await peakRssBytes();
const ended = (stdout: string) => ({ state: 'ended' as const, output: { stdout, stderr: '', exitCode: 0 } });
service.dispatcher.states.set(huge.id, ended(finishedStdoutWith(gzippedZerosHtml(2048))));
service.dispatcher.states.set(corrupt.id, ended(finishedStdoutWith(corruptGzip())));
const settledFirst = await service.profiler.reconcile('all');
// The next run on the same node works.
const next = await start('taskmanager');
service.dispatcher.states.set(next.id, ended(finishedAgentStdout(FLAME_GRAPH)));
const settledNext = await service.profiler.reconcile('all');
const runs = [...settledFirst, ...settledNext].map((run) => ({ id: run.id, status: run.status, message: run.message }));
process.stdout.write(
  `${JSON.stringify({ ids: { huge: huge.id, corrupt: corrupt.id, next: next.id }, runs, baseline, peak: await peakRssBytes() })}\n`,
);
