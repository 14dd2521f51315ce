/**
 * `npm run bench`: how fast the web UI's first view is interactive, in headless Chromium against the local
 * server (loopback), on a TaskManager's profiler panel with a history of runs.
 *
 * Each sample opens the panel's address in a new tab of a warm browser (the first load of a fresh browser is
 * reported apart: it pays for the renderer's start) and reads the page's own `ffp:interactive` mark, set once the
 * view shows its data and takes input, measured from navigation start. Aim (issue 6): well under a second.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installAsyncProfiler } from '#local/async-profiler.ts';
import { launchChromium } from '#test/support/browser.ts';
import { startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { startLocalServerProcess } from '#test/support/local-server-process.ts';
import { toolsDir } from '#test/support/paths.ts';
import { buildWeb } from '../../web/build.ts';

const SAMPLES = Number(process.env.BENCH_WEB_SAMPLES ?? 30);
const HISTORY_RUNS = 3;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function report(name: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const fmt = (ms: number) => `${ms.toFixed(0)} ms`.padStart(8);
  console.log(
    `${name.padEnd(44)} n=${String(samples.length).padStart(3)}  p50 ${fmt(percentile(sorted, 50))}  p95 ${fmt(percentile(sorted, 95))}  max ${fmt(sorted[sorted.length - 1] ?? Number.NaN)}`,
  );
}

const asprof = await installAsyncProfiler(toolsDir);
await buildWeb();
const dataDir = mkdtempSync(join(tmpdir(), 'ffp-bench-web-'));
const jvm = await startFakeFlinkJvm({ role: 'taskmanager' });
const server = await startLocalServerProcess({ ASPROF: asprof, FLINK_PROFILER_DATA: dataDir });
const browser = await launchChromium();
try {
  const { nodes } = (await (await fetch(`${server.api}/clusters/local/nodes`)).json()) as {
    nodes: Array<{ id: string; pid: number }>;
  };
  const node = nodes.find((n) => n.pid === jvm.pid)?.id;
  if (!node) throw new Error('the benchmark JVM was not discovered');
  const profiler = `${server.api}/clusters/local/taskmanagers/${node}/profiler`;
  for (let i = 0; i < HISTORY_RUNS; i++) {
    const created = (await (
      await fetch(profiler, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ mode: 'ITIMER', duration: 1 }),
      })
    ).json()) as { id: string };
    for (let status = 'RUNNING'; status === 'RUNNING'; ) {
      await new Promise((r) => setTimeout(r, 200));
      status = ((await (await fetch(`${server.api}/runs/${created.id}`)).json()) as { status: string }).status;
    }
  }

  const panel = `${server.url}/#/clusters/local/taskmanagers/${node}/profiler`;
  const load = async () => {
    const page = await browser.context.newPage();
    await page.goto(panel);
    await page.locator('html[data-ready=true]').waitFor();
    const timing = (await page.evaluate(`(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return {
        interactive: performance.getEntriesByName('ffp:interactive')[0].startTime,
        html: nav.responseEnd,
        domContentLoaded: nav.domContentLoadedEventEnd,
      };
    })()`)) as { interactive: number; html: number; domContentLoaded: number };
    await page.close();
    return timing;
  };

  const cold = await load();
  console.log(
    `first load in a fresh browser: interactive ${cold.interactive.toFixed(0)} ms (page received ${cold.html.toFixed(0)} ms, DOMContentLoaded ${cold.domContentLoaded.toFixed(0)} ms)`,
  );
  const samples = [];
  for (let i = 0; i < SAMPLES; i++) samples.push(await load());
  report(
    'profiler panel: page received',
    samples.map((s) => s.html),
  );
  report(
    'profiler panel: DOMContentLoaded',
    samples.map((s) => s.domContentLoaded),
  );
  report(
    'profiler panel: interactive, with its data',
    samples.map((s) => s.interactive),
  );
} finally {
  await browser.close();
  await server.stop();
  await jvm.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
