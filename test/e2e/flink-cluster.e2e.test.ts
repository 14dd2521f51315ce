import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flameGraphFrames } from '#test/support/flame-graph.ts';
import {
  busyMapFrame,
  type FlinkCluster,
  flinkClusterMainClasses,
  startFlinkCluster,
} from '#test/support/flink-cluster.ts';

// A real Flink 1.20 session cluster (JobManager and TaskManagers as separate JVMs, from Flink's Maven artifacts) with
// the busy job running, and Flink's own REST profiler as the reference that Flink Fleet Profiler is measured against.

const run = promisify(execFile);

async function commandLine(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
}

/** Real, effective, saved and filesystem uid of a process. */
async function uids(pid: number): Promise<number[]> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const line = status.split('\n').find((l) => l.startsWith('Uid:'));
  return (line ?? '').split(/\s+/).slice(1).filter(Boolean).map(Number);
}

interface ProfilingInfo {
  status: 'RUNNING' | 'FINISHED' | 'FAILED';
  mode: string;
  triggerTime: number;
  finishedTime: number | null;
  duration: number;
  message: string | null;
  outputFile: string | null;
}

async function json<T>(response: Response): Promise<T> {
  const text = await response.text();
  if (!response.ok) throw new Error(`${response.url}: HTTP ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

describe('a real Flink cluster with one TaskManager and the REST profiler enabled', () => {
  let cluster: FlinkCluster;

  beforeAll(async () => {
    cluster = await startFlinkCluster({ taskManagers: 1, profilingEnabled: true });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('runs the JobManager and the TaskManager as separate JVMs with the entrypoint main classes', async () => {
    expect(cluster.flinkVersion).toMatch(/^1\.20\./);
    expect(cluster.taskManagers).toHaveLength(1);
    const [taskManager] = cluster.taskManagers;
    if (!taskManager) throw new Error('no TaskManager');
    expect(taskManager.pid).not.toBe(cluster.jobManager.pid);

    const jobManagerArgs = await commandLine(cluster.jobManager.pid);
    expect(jobManagerArgs[0]).toMatch(/java$/);
    expect(jobManagerArgs).toContain(flinkClusterMainClasses.jobmanager);
    expect(jobManagerArgs).toContain('-XX:+DebugNonSafepoints');
    const taskManagerArgs = await commandLine(taskManager.pid);
    expect(taskManagerArgs[0]).toMatch(/java$/);
    expect(taskManagerArgs).toContain(flinkClusterMainClasses.taskmanager);
    expect(taskManagerArgs).toContain('-XX:+DebugNonSafepoints');
    expect(taskManagerArgs).toContain(`taskmanager.resource-id=${taskManager.resourceId}`);

    const { taskmanagers } = await json<{ taskmanagers: Array<{ id: string }> }>(
      await fetch(`${cluster.restUrl}/taskmanagers`),
    );
    expect(taskmanagers.map((tm) => tm.id)).toEqual([taskManager.resourceId]);
    const job = await json<{ state: string; name: string }>(await fetch(`${cluster.restUrl}/jobs/${cluster.jobId}`));
    expect(job).toMatchObject({ state: 'RUNNING', name: 'fleet-profiler-busy-job' });
  });

  it("Flink's own ITIMER profiler returns a flame graph with the busy operator and StreamTask frames", async () => {
    const [taskManager] = cluster.taskManagers;
    if (!taskManager) throw new Error('no TaskManager');
    const base = `${cluster.restUrl}/taskmanagers/${encodeURIComponent(taskManager.resourceId)}/profiler`;

    const started = await json<ProfilingInfo>(
      await fetch(base, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ mode: 'ITIMER', duration: 5 }),
      }),
    );
    expect(started).toMatchObject({ status: 'RUNNING', mode: 'ITIMER', duration: 5, outputFile: null });

    let info: ProfilingInfo | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const { profilingList } = await json<{ profilingList: ProfilingInfo[] }>(await fetch(base));
      info = profilingList.find((entry) => entry.triggerTime === started.triggerTime);
      if (info && info.status !== 'RUNNING') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(info, `profiling did not finish:\n${await cluster.logTail(20)}`).toMatchObject({
      status: 'FINISHED',
      message: 'Profiling Successful',
    });
    const outputFile = info?.outputFile ?? '';
    expect(outputFile).toMatch(
      new RegExp(`^${taskManager.resourceId}_ITIMER_\\d{4}-\\d{2}-\\d{2}_\\d{2}_\\d{2}_\\d{2}\\.html$`),
    );

    const download = await fetch(`${base}/${encodeURIComponent(outputFile)}`);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toMatch(/^text\/plain/);
    const html = await download.text();
    expect(html).toMatch(/^<!DOCTYPE html>/i);

    const frames = flameGraphFrames(html);
    expect(frames).toContain(busyMapFrame);
    expect(frames.some((frame) => frame.startsWith('org/apache/flink/streaming/runtime/tasks/StreamTask.'))).toBe(true);
  });
});

describe('a real Flink cluster with two TaskManagers run as an unprivileged user', () => {
  const user = 'flink';
  let cluster: FlinkCluster;

  beforeAll(async () => {
    cluster = await startFlinkCluster({ taskManagers: 2, runAsUser: user });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("runs every JVM with that user's uid and the job on both TaskManagers", async () => {
    const uid = Number((await run('id', ['-u', user])).stdout.trim());
    expect(uid).toBeGreaterThan(0);
    expect(cluster.taskManagers.map((tm) => tm.resourceId)).toEqual(['fleet-tm-0', 'fleet-tm-1']);
    for (const pid of [cluster.jobManager.pid, ...cluster.taskManagers.map((tm) => tm.pid)]) {
      expect(await uids(pid)).toEqual([uid, uid, uid, uid]);
    }
    for (const { pid } of cluster.taskManagers) {
      expect(await commandLine(pid)).toContain(flinkClusterMainClasses.taskmanager);
    }

    const job = await json<{ state: string; vertices: Array<{ parallelism: number; tasks: Record<string, number> }> }>(
      await fetch(`${cluster.restUrl}/jobs/${cluster.jobId}`),
    );
    expect(job.state).toBe('RUNNING');
    expect(job.vertices.map((vertex) => [vertex.parallelism, vertex.tasks.RUNNING])).toEqual([[2, 2]]);

    // Without rest.profiling.enabled, Flink does not register its profiler endpoints at all.
    expect((await fetch(`${cluster.restUrl}/taskmanagers/fleet-tm-0/profiler`)).status).toBe(404);
  });

  it('stop() ends every JVM and removes the work directory', async () => {
    const pids = [cluster.jobManager.pid, ...cluster.taskManagers.map((tm) => tm.pid)];
    await cluster.stop();
    for (const pid of pids) {
      expect(() => process.kill(pid, 0)).toThrow();
    }
    await expect(readFile(`${cluster.workDir}/conf/config.yaml`)).rejects.toThrow();
  });
});
