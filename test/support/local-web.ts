import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWeb } from '../../web/build.ts';
import { type Browser, launchChromium } from './browser.ts';
import { type FakeFlinkJvm, startFakeFlinkJvm } from './fake-flink-jvm.ts';
import { type LocalServerProcess, startLocalServerProcess } from './local-server-process.ts';

/**
 * What the browser tests of local mode share: fake-Flink TaskManager JVMs, the real local server process (serving
 * the built UI) that profiles them with the real async-profiler, headless Chromium, and the API calls the tests
 * make beside the browser.
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
export type Json = any;

/** How long a run may stay RUNNING before a test gives up on it (a few seconds of profile, and the agent). */
export const RUN_TIMEOUT_MS = 60_000;

/** Calls the local server's API: the status and the parsed body (undefined when there is none). */
export async function api(
  server: LocalServerProcess,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${server.api}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Polls a run until it is no longer RUNNING, and answers it; fails with the server's output when it takes too long. */
export async function waitForRunEnd(server: LocalServerProcess, id: string): Promise<Json> {
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  for (;;) {
    const { body } = await api(server, 'GET', `/runs/${id}`);
    if (body.status !== 'RUNNING') return body;
    if (Date.now() > deadline) throw new Error(`run ${id} still RUNNING:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface LocalWebFixture {
  server: LocalServerProcess;
  browser: Browser;
  /** The node ids the server discovered for its TaskManager JVMs, in the order they were started. */
  nodes: string[];
  /** Stops the browser, the server and the JVMs, and deletes the server's data. */
  close(): Promise<void>;
}

/**
 * Builds the UI, starts `taskManagers` fake-Flink TaskManager JVMs and a local server whose data lives in a fresh
 * directory (`ffp-<name>-…`), finds the JVMs among the nodes it discovers, and launches Chromium.
 */
export async function startLocalWebFixture(options: {
  name: string;
  asprofPath: string;
  taskManagers?: number;
}): Promise<LocalWebFixture> {
  await buildWeb();
  const dataDir = mkdtempSync(join(tmpdir(), `ffp-${options.name}-`));
  const agentTmp = join(dataDir, 'agent-tmp');
  mkdirSync(agentTmp);
  const jvms: FakeFlinkJvm[] = [];
  let server: LocalServerProcess | undefined;
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    await server?.stop();
    await Promise.all(jvms.map((jvm) => jvm.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const starting = Array.from({ length: options.taskManagers ?? 2 }, () =>
      startFakeFlinkJvm({ role: 'taskmanager' }).then((jvm) => {
        jvms.push(jvm);
        return jvm;
      }),
    );
    const started = await Promise.all(starting);
    server = await startLocalServerProcess({
      ASPROF: options.asprofPath,
      FLINK_PROFILER_DATA: dataDir,
      FLINK_PROFILER_TMPDIR: agentTmp,
    });
    const listed = (await api(server, 'GET', '/clusters/local/nodes')).body.nodes as Json[];
    const nodes = started.map((jvm) => {
      const node = listed.find((n) => n.pid === jvm.pid);
      if (!node) throw new Error(`pid ${jvm.pid} not discovered: ${JSON.stringify(listed)}`);
      return node.id as string;
    });
    browser = await launchChromium();
    return { server, browser, nodes, close };
  } catch (error) {
    // Nothing of a half-started fixture outlives it: the JVMs would be found by the next test's discovery.
    await close();
    throw error;
  }
}
