import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from '#test/support/browser.ts';
import { fakeFlinkMethods } from '#test/support/fake-flink-jvm.ts';
import type { LocalServerProcess } from '#test/support/local-server-process.ts';
import { api, type Json, type LocalWebFixture, startLocalWebFixture, waitForRunEnd } from '#test/support/local-web.ts';
import { repoRoot } from '#test/support/paths.ts';

/**
 * The run page and the fan-out group page in headless Chromium, against the real local server process and real
 * fake-Flink TaskManager JVMs profiled by the real async-profiler: a run's hottest methods and operators,
 * "Compare with…" an earlier run of the same TaskManager down to the methods that grew, and a fan-out's merged
 * profile with its TaskManagers side by side. Only these tests' own JVMs are profiled.
 */

const SCREENSHOTS = join(repoRoot, 'test-output', 'web-compare');

/** Profiles one TaskManager for `duration` s in ITIMER mode and waits until the run FINISHED. */
async function profile(server: LocalServerProcess, node: string, duration = 3): Promise<Json> {
  const { status, body } = await api(server, 'POST', `/clusters/local/taskmanagers/${node}/profiler`, {
    mode: 'ITIMER',
    duration,
  });
  expect(status, JSON.stringify(body)).toBe(200);
  const run = await waitForRunEnd(server, body.id);
  expect(run.status, run.message).toBe('FINISHED');
  return run;
}

describe('run and fan-out pages in headless Chromium', () => {
  let fixture: LocalWebFixture;
  let server: LocalServerProcess;
  let browser: Browser;
  let nodes: string[];
  let page: Page;
  let ruleId: string | undefined;
  const screenshot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

  /** Opens an address in a fresh page and waits for the first view to show its data. */
  const open = async (hash: string) => {
    await page?.close();
    page = await browser.context.newPage();
    await page.goto(`${server.url}/${hash}`);
    await page.locator('html[data-ready=true]').waitFor();
  };

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    fixture = await startLocalWebFixture({ name: 'web-compare', asprofPath: inject('asprofPath') });
    ({ server, browser, nodes } = fixture);
  });

  afterAll(async () => {
    if (ruleId) {
      // No more firings, and none left running when the JVMs stop.
      await api(server, 'DELETE', `/rules/${ruleId}`);
      const { runs } = (await api(server, 'GET', `/runs?ruleId=${ruleId}&status=RUNNING`)).body as { runs: Json[] };
      for (const run of runs) await waitForRunEnd(server, run.id);
    }
    await fixture?.close();
  });

  it('shows a fan-out: the merged profile of its runs and its TaskManagers side by side', async () => {
    const started = await api(server, 'POST', '/clusters/local/profiler', {
      mode: 'ITIMER',
      duration: 3,
      role: 'taskmanager',
      nodes,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const { groupId } = started.body;
    for (const run of started.body.runs as Json[])
      expect((await waitForRunEnd(server, run.id)).status).toBe('FINISHED');

    // From the cluster's fan-out list to the group's page.
    await open('#/clusters/local');
    const group = page.locator(`#groups .group[data-group-id="${groupId}"]`);
    await group.getByRole('link', { name: /side by side/ }).click();
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/groups/${groupId}`);

    await expect.poll(() => page.locator('#group-merged').textContent()).toContain('merged 2 runs');
    await expect.poll(() => page.locator('#group-frames tbody tr').count()).toBeGreaterThan(0);
    expect(await page.getByRole('button', { name: 'Open merged flame graph' }).isVisible()).toBe(true);
    const rows = page.locator('#group-runs tbody tr');
    expect((await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-node')))).sort()).toEqual(
      [...nodes].sort(),
    );
    for (const row of await rows.all()) {
      expect(await row.getAttribute('data-status')).toBe('FINISHED');
      await expect.poll(() => row.locator('td.top-frame').count()).toBeGreaterThan(0);
    }
    await screenshot('group-page');
  });

  it("shows a run's hottest methods and operators, and compares it with the TaskManager's earlier run", async () => {
    const [node, ruleNode] = nodes as [string, string];
    // A rule firing every minute on the other TaskManager, for the last test to compare its firings.
    const rule = await api(server, 'POST', '/rules', {
      name: `web-compare ${Date.now()}`,
      cluster: 'local',
      target: { role: 'taskmanager', nodes: [ruleNode] },
      mode: 'ITIMER',
      duration: 3,
      schedule: 'rate(1 minute)',
      timezone: 'UTC',
      enabled: true,
    });
    expect(rule.status, JSON.stringify(rule.body)).toBe(201);
    ruleId = rule.body.id;
    const base = await profile(server, node);
    const current = await profile(server, node);

    // From the TaskManager's history to the newest run's page.
    await open(`#/clusters/local/taskmanagers/${node}/profiler`);
    await page
      .locator(`#runs tbody tr[data-run-id="${current.id}"]`)
      .getByRole('link', { name: /^Details/ })
      .click();
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/runs/${current.id}`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(
      `ITIMER run of TaskManager ${node} · cluster local`,
    );
    expect(await page.locator('#run-status').getAttribute('data-status')).toBe('FINISHED');
    expect(await page.locator('#run-message').textContent()).toBe('Profiling Successful');

    // Exports: the flame graph always, the other formats the run has.
    await page.getByRole('button', { name: 'Open flame graph' }).waitFor();
    const formats: string[] = (await api(server, 'GET', `/runs/${current.id}`)).body.formats ?? ['html'];
    for (const [format, label] of [
      ['collapsed', 'Collapsed'],
      ['pprof', 'pprof'],
      ['jfr', 'JFR'],
    ] as const) {
      expect(await page.getByRole('button', { name: label, exact: true }).count(), format).toBe(
        formats.includes(format) ? 1 : 0,
      );
    }

    // Hottest methods: the JVM's hot loop among them; the filter keeps the rows that contain the text.
    const frameRows = page.locator('#frames tbody tr');
    await expect.poll(() => frameRows.count()).toBeGreaterThan(1);
    const names = () => frameRows.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-frame') ?? ''));
    expect((await names()).some((name) => name.endsWith(fakeFlinkMethods.hot))).toBe(true);
    await page.getByLabel('Filter methods').fill('HOTLOOP');
    await expect.poll(async () => (await names()).length).toBeGreaterThan(0);
    for (const name of await names()) expect(name.toLowerCase()).toContain('hotloop');
    await page.getByLabel('Filter methods').fill('(.*');
    await expect.poll(() => frameRows.count()).toBe(0);
    await page.getByLabel('Filter methods').fill('');
    await expect.poll(() => frameRows.count()).toBeGreaterThan(1);

    // Operators: a fake JVM runs no Flink task, so all its samples are the runtime's and the JVM's threads.
    const operatorRow = page.locator('#operators tbody tr[data-operator="Flink runtime & JVM threads"]');
    await operatorRow.waitFor();
    expect(await operatorRow.locator('td').last().textContent()).toBe('100.0 %');

    // Compare with…: the earlier run is offered first, among this TaskManager's runs; one choice shows the diff.
    const picker = page.getByLabel('Compare with…');
    const earlier = page.locator('#compare-base optgroup').first();
    expect(await earlier.getAttribute('label')).toBe('Earlier runs of this TaskManager');
    expect(await earlier.locator('option').first().getAttribute('value')).toBe(base.id);
    await screenshot('run-page');
    await picker.selectOption(base.id);
    const grown = page.locator('#diff tbody tr[data-direction=grew]');
    await expect.poll(() => grown.count()).toBeGreaterThan(0);
    expect(await grown.first().locator('.change').textContent()).toMatch(/^▲ \+\d+\.\d %$/);
    // The table is the API's own comparison: its most grown method first.
    const expected = (await api(server, 'GET', `/runs/${current.id}/diff?base=${base.id}&format=json`)).body
      .frames as Json[];
    const mostGrown = expected.filter((f) => f.delta > 0).sort((a, b) => b.delta - a.delta)[0];
    expect(await grown.first().getAttribute('data-frame')).toBe(mostGrown.name);
    await screenshot('run-page-diff');

    // The differential flame graph opens in a new tab.
    const [tab] = await Promise.all([
      browser.context.waitForEvent('page'),
      page.getByRole('button', { name: 'Open differential flame graph' }).click(),
    ]);
    await tab.waitForLoadState();
    expect(tab.url()).not.toBe('about:blank');
    expect((await tab.content()).length).toBeGreaterThan(1_000);
    await tab.close();
  });

  it("shows what changed between a rule's firings", { timeout: 240_000 }, async () => {
    expect(ruleId).toBeDefined();
    // Two firings, a minute apart, each with its FINISHED run.
    const firings = async () => {
      const { runs } = (await api(server, 'GET', `/runs?ruleId=${ruleId}&status=FINISHED`)).body as { runs: Json[] };
      return new Set(runs.map((r) => r.groupId)).size;
    };
    await expect.poll(firings, { timeout: 200_000, interval: 2_000 }).toBeGreaterThanOrEqual(2);

    await open(`#/rules/${ruleId}`);
    const newest = page.locator('#firings article.firing').first();
    await expect.poll(() => page.locator('#firings article.firing').count()).toBeGreaterThanOrEqual(2);
    await expect.poll(() => newest.locator('.top-frames li').count()).toBeGreaterThan(0);
    const changes = newest.locator('.changes li');
    await expect.poll(() => changes.count()).toBeGreaterThan(0);
    expect(await changes.count()).toBeLessThanOrEqual(5);
    expect(await changes.first().locator('.change').textContent()).toMatch(/^[▲▼] [+−]\d+\.\d %$/);
    // The firing links to its group's page.
    const groupLink = newest.getByRole('link', { name: /side by side/ });
    expect(await groupLink.getAttribute('href')).toMatch(/^#\/groups\/[0-9a-f-]{36}$/);
    await screenshot('rule-firings');
  });
});
