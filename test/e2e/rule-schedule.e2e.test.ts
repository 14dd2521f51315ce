import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FakeFlinkJvm, startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { flameGraphFrames } from '#test/support/flame-graph.ts';
import { type LocalServerProcess, startLocalServerProcess } from '#test/support/local-server-process.ts';

/**
 * A scheduled profiling rule in local mode, in real time: the real server process with its in-process scheduler,
 * the real node agent and async-profiler, a real JVM. The shortest rate, rate(1 minute), fires at once (as a new
 * EventBridge Scheduler rate schedule does) and again one minute later. Restarts, double firings and time zones are
 * covered with an injected clock in test/unit/rules.unit.test.ts and test/unit/schedule.unit.test.ts.
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

async function request(method: string, url: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Polls `read` until `done` holds for its answer, or fails with what it saw last. */
async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms; last seen: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('a scheduled rule in local mode (real time)', () => {
  let dataDir: string;
  let jvm: FakeFlinkJvm;
  let server: LocalServerProcess;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ffp-e2e-rules-'));
    const agentTmp = join(dataDir, 'agent-tmp');
    mkdirSync(agentTmp, { recursive: true });
    jvm = await startFakeFlinkJvm({ role: 'taskmanager' });
    server = await startLocalServerProcess({
      ASPROF: inject('asprofPath'),
      FLINK_PROFILER_DATA: dataDir,
      FLINK_PROFILER_TMPDIR: agentTmp,
    });
  });

  afterAll(async () => {
    await server?.stop();
    await jvm?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('fires rate(1 minute) at once and a minute later; its runs finish with flame graphs and list by ruleId', async () => {
    const nodes = (await request('GET', `${server.api}/clusters/local/nodes`)).body.nodes as Json[];
    const node = nodes.find((n) => n.pid === jvm.pid)?.id;
    expect(node, JSON.stringify(nodes)).toBeDefined();

    // Name the node: other JVMs on this machine (other test files) are nodes of "local" too.
    const created = await request('POST', `${server.api}/rules`, {
      name: 'every minute',
      cluster: 'local',
      target: { role: 'taskmanager', nodes: [node] },
      mode: 'ITIMER',
      duration: 1,
      schedule: 'rate(1 minute)',
      enabled: true,
    });
    expect(created.status).toBe(201);
    const ruleId = created.body.id as string;
    const runsOfRule = async () => (await request('GET', `${server.api}/runs?ruleId=${ruleId}`)).body.runs as Json[];

    // First firing: at once. Its run profiles the JVM and finishes with a flame graph of its hot method.
    const [first] = await waitFor(runsOfRule, (runs) => runs[0]?.status === 'FINISHED', 30_000);
    expect(first).toMatchObject({ ruleId, node, mode: 'ITIMER', status: 'FINISHED', requestedBy: `rule:${ruleId}` });
    const html = await (await fetch(first.url)).text();
    expect(flameGraphFrames(html).some((frame) => frame.endsWith('.fakeFlinkHotLoop'))).toBe(true);
    const afterFirst = (await request('GET', `${server.api}/rules/${ruleId}`)).body;
    expect(afterFirst.lastFiring).toMatchObject({ runIds: [first.id], skipped: [] });
    expect(afterFirst.nextFireAt - afterFirst.lastFiring.scheduledAt).toBe(60_000);

    // Second firing: one minute after the first (the scheduler looks every second).
    const runs = await waitFor(runsOfRule, (list) => list.length === 2, 75_000);
    const rule = (await request('GET', `${server.api}/rules/${ruleId}`)).body;
    expect(rule.lastFiring.scheduledAt).toBe(afterFirst.nextFireAt);
    expect(rule.lastFiredAt - afterFirst.lastFiredAt).toBeGreaterThanOrEqual(60_000);
    expect(rule.lastFiredAt - afterFirst.lastFiredAt).toBeLessThan(62_500);
    expect(runs.map((r) => r.id)).toEqual([rule.lastFiring.runIds[0], first.id]);
  }, 150_000);
});
