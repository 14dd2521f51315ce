import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from '#test/support/browser.ts';
import { flameGraphFrames } from '#test/support/flame-graph.ts';
import type { LocalServerProcess } from '#test/support/local-server-process.ts';
import {
  api,
  type Json,
  type LocalWebFixture,
  RUN_TIMEOUT_MS,
  startLocalWebFixture,
  waitForRunEnd,
} from '#test/support/local-web.ts';
import { repoRoot } from '#test/support/paths.ts';

/**
 * The web UI in headless Chromium, against the real local server process (serving the built UI) and real
 * fake-Flink TaskManager JVMs profiled by the real async-profiler. Only these tests' own JVMs are profiled:
 * other Flink JVMs on the machine are left alone (the fan-out names its nodes).
 */

const SCREENSHOTS = join(repoRoot, 'test-output', 'web-ui');

/** Waits until a node has no RUNNING run (so a test does not inherit the runs of one before it). */
async function waitForIdle(server: LocalServerProcess, node: string): Promise<void> {
  const { body } = await api(server, 'GET', '/clusters/local/nodes');
  const running = body.nodes.find((n: Json) => n.id === node)?.runningRunId;
  if (running) await waitForRunEnd(server, running);
}

const hasMethod = (frames: string[], method: string) => frames.some((frame) => frame.endsWith(`.${method}`));

/** A run row's status, with the message when it FAILED (so a failure says why). */
async function statusOf(row: Locator): Promise<string | null> {
  const status = await row.getAttribute('data-status');
  return status === 'FAILED' ? `FAILED: ${await row.locator('td.message').textContent()}` : status;
}

describe('web UI in headless Chromium', () => {
  let fixture: LocalWebFixture;
  let server: LocalServerProcess;
  let browser: Browser;
  let nodes: string[];
  let page: Page;
  const panelUrl = (node: string) => `${server.url}/#/clusters/local/taskmanagers/${node}/profiler`;
  const screenshot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

  /** Opens an address in a fresh page and waits for the first view to show its data. */
  const open = async (url: string) => {
    await page?.close();
    page = await browser.context.newPage();
    const started = performance.now();
    await page.goto(url);
    await page.locator('html[data-ready=true]').waitFor();
    return performance.now() - started;
  };

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    fixture = await startLocalWebFixture({ name: 'web-ui', asprofPath: inject('asprofPath') });
    ({ server, browser, nodes } = fixture);
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it("opens a TaskManager's profiler panel by its address, with Flink's labels and defaults", async () => {
    const [node] = nodes as [string];
    const loadMs = await open(panelUrl(node));
    const interactiveMs = await page.evaluate("performance.getEntriesByName('ffp:interactive')[0].startTime");
    console.log(
      `web UI, profiler panel: interactive ${Math.round(interactiveMs as number)} ms after navigation start (page mark); ${Math.round(loadMs)} ms from goto to ready (test side)`,
    );

    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(`TaskManager ${node} · cluster local`);
    const duration = page.getByLabel('Profiling Duration');
    expect(await duration.inputValue()).toBe('30');
    expect(await duration.getAttribute('min')).toBe('1');
    expect(await duration.getAttribute('step')).toBe('30');
    expect(await duration.getAttribute('max')).toBe('300');
    const mode = page.getByLabel('Profiling Mode');
    expect(await mode.inputValue()).toBe('ITIMER');
    const create = page.getByRole('button', { name: 'Create Profiling Instance' });
    expect(await create.isEnabled()).toBe(true);
    expect(await page.locator('#runs tbody tr').count()).toBe(0);

    // Arrow keys step by 30 s, as Flink's field does.
    await duration.focus();
    await page.keyboard.press('ArrowUp');
    expect(await duration.inputValue()).toBe('60');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    expect(await duration.inputValue()).toBe('1');
    await duration.fill('30');

    // Each mode's description: on its option (hover in the open list), and beside the field on hover and on keyboard focus.
    const config = (await api(server, 'GET', '/config')).body;
    for (const { mode: name, description } of config.modes) {
      expect(await page.locator(`#run-mode option[value=${name}]`).getAttribute('title')).toBe(description);
    }
    const describeItimer = config.modes.find((m: Json) => m.mode === 'ITIMER').description;
    const tooltip = page.getByRole('tooltip');
    await page.getByRole('heading', { level: 1 }).click();
    expect(await tooltip.isVisible()).toBe(false);
    await mode.hover();
    await expect.poll(() => tooltip.isVisible()).toBe(true);
    expect(await tooltip.textContent()).toBe(describeItimer);
    await page.mouse.move(0, 0);
    await expect.poll(() => tooltip.isVisible()).toBe(false);
    await duration.focus();
    await page.keyboard.press('Tab');
    expect(await mode.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await expect.poll(() => tooltip.isVisible()).toBe(true);
    await mode.selectOption('WALL');
    expect(await tooltip.textContent()).toBe(config.modes.find((m: Json) => m.mode === 'WALL').description);
    expect(await mode.getAttribute('aria-describedby')).toContain(await tooltip.getAttribute('id'));
    await mode.selectOption('ITIMER');
    await screenshot('profiler-panel');
  });

  it("shows the API's own message next to the field when the duration is bad", async () => {
    const [node] = nodes as [string];
    await open(panelUrl(node));
    const duration = page.getByLabel('Profiling Duration');
    const error = page.locator('#run-duration-error');
    const create = page.getByRole('button', { name: 'Create Profiling Instance' });
    for (const [value, body] of [
      ['0', { mode: 'ITIMER', duration: 0 }],
      ['301', { mode: 'ITIMER', duration: 301 }],
      ['', { mode: 'ITIMER' }],
    ] as const) {
      await duration.fill(value);
      await create.click();
      // The text is what the API answers for the same request, shown where the field is.
      const expected = (await api(server, 'POST', `/clusters/local/taskmanagers/${node}/profiler`, body)).body;
      expect(expected.errors[0]).toMatch(/^duration: /);
      await expect.poll(() => error.textContent()).toBe(expected.errors[0]);
      expect(await error.isVisible()).toBe(true);
      expect(await duration.getAttribute('aria-invalid')).toBe('true');
      expect(await duration.getAttribute('aria-describedby')).toContain('run-duration-error');
    }
    await duration.fill('301');
    await create.click();
    await expect.poll(() => error.isVisible()).toBe(true);
    await screenshot('profiler-panel-bad-duration');
    expect(await page.locator('#runs tbody tr').count()).toBe(0);
  });

  it('creates an ITIMER run: RUNNING with a progress bar and the button disabled, then FINISHED with a flame graph of the JVM', async () => {
    const [node] = nodes as [string];
    await open(panelUrl(node));
    await page.getByLabel('Profiling Duration').fill('4');
    await page.getByLabel('Profiling Mode').selectOption('ITIMER');
    const create = page.getByRole('button', { name: 'Create Profiling Instance' });
    await create.click();

    const row = page.locator('#runs tbody tr').first();
    await expect.poll(() => statusOf(row)).toBe('RUNNING');
    const runId = (await row.getAttribute('data-run-id')) as string;
    const progress = row.locator('progress');
    expect(await progress.isVisible()).toBe(true);
    expect(await progress.getAttribute('max')).toBe('4');
    const first = Number(await progress.evaluate((el) => (el as unknown as { value: number }).value));
    await expect
      .poll(async () => Number(await progress.evaluate((el) => (el as unknown as { value: number }).value)))
      .toBeGreaterThan(first);
    expect(await row.locator('.progress-label').textContent()).toMatch(/^\d s of 4 s/);
    expect(await create.isDisabled()).toBe(true);
    expect(await page.locator('#create-reason').textContent()).toMatch(
      /still RUNNING: wait for the last profiling to finish/,
    );
    await screenshot('profiler-panel-running');

    const finished = page.locator(`#runs tbody tr[data-run-id="${runId}"]`);
    await expect.poll(() => statusOf(finished), { timeout: RUN_TIMEOUT_MS }).toBe('FINISHED');
    expect(await finished.locator('td.message').textContent()).toBe('Profiling Successful');
    await expect.poll(() => create.isEnabled()).toBe(true);
    const run = (await api(server, 'GET', `/runs/${runId}`)).body;
    expect(await finished.locator('.file').textContent()).toBe(run.outputFile);
    await screenshot('profiler-panel-finished');

    // Open: the flame graph in a new tab, with the JVM's hot method among its frames.
    const [tab] = await Promise.all([
      browser.context.waitForEvent('page'),
      finished.getByRole('link', { name: /^Open / }).click(),
    ]);
    await tab.waitForLoadState();
    const frames = flameGraphFrames(await tab.content());
    expect(hasMethod(frames, 'fakeFlinkHotLoop'), frames.slice(0, 40).join(', ')).toBe(true);
    await tab.close();

    // Download: the same flame graph, saved as its output file.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      finished.getByRole('link', { name: /^Download / }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(run.outputFile);

    // A second run over the first: the history newest first, the live one on top (the README's picture).
    await page.getByLabel('Profiling Duration').fill('3');
    await create.click();
    await expect.poll(() => page.locator('#runs tbody tr').count()).toBe(2);
    const second = page.locator('#runs tbody tr').first();
    expect(await statusOf(second)).toBe('RUNNING');
    const elapsed = async () => Number.parseInt((await second.locator('.progress-label').textContent()) ?? '', 10);
    await expect.poll(elapsed).toBeGreaterThanOrEqual(1);
    await screenshot('profiler-panel-history');
    const secondId = (await second.getAttribute('data-run-id')) as string;
    await expect
      .poll(() => statusOf(page.locator(`#runs tbody tr[data-run-id="${secondId}"]`)), {
        timeout: RUN_TIMEOUT_MS,
      })
      .toBe('FINISHED');
  });

  it('refreshes every 3 s: a run started elsewhere disables the button with the reason, and pauses while the tab is hidden', async () => {
    const [, node] = nodes as [string, string];
    await open(panelUrl(node));
    const create = page.getByRole('button', { name: 'Create Profiling Instance' });
    expect(await create.isEnabled()).toBe(true);

    const started = (
      await api(server, 'POST', `/clusters/local/taskmanagers/${node}/profiler`, { mode: 'ITIMER', duration: 3 })
    ).body;
    await expect.poll(() => create.isDisabled(), { timeout: 5_000 }).toBe(true);
    expect(await page.locator('#create-reason').textContent()).toMatch(/still RUNNING/);
    await waitForRunEnd(server, started.id);
    await expect.poll(() => create.isEnabled(), { timeout: 5_000 }).toBe(true);

    // Hidden: no request at all; shown again: a refresh at once.
    const requests: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/api/v1/')) requests.push(request.url());
    });
    await page.evaluate(
      "Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }); document.dispatchEvent(new Event('visibilitychange'))",
    );
    await new Promise((r) => setTimeout(r, 4_000));
    expect(requests).toEqual([]);
    await page.evaluate(
      "Object.defineProperty(document, 'hidden', { configurable: true, get: () => false }); document.dispatchEvent(new Event('visibilitychange'))",
    );
    await expect.poll(() => requests.length, { timeout: 1_000 }).toBeGreaterThan(0);
  });

  it('profiles TaskManagers at once from the cluster view: grouped runs, each with its own status and links', async () => {
    const fleetMs = await open(`${server.url}/#/`);
    console.log(`web UI, fleet view: ready ${Math.round(fleetMs)} ms from goto (test side)`);
    await page.getByRole('link', { name: 'local', exact: true }).click();
    await expect.poll(() => page.locator('html').getAttribute('data-view')).toBe('cluster');
    const nodeRow = (node: string) => page.locator(`#nodes tbody tr[data-node="${node}"]`);
    await nodeRow(nodes[0] as string).waitFor();
    // A new view puts the keyboard focus on its heading, as a page load would.
    await expect.poll(() => page.evaluate('document.activeElement.tagName')).toBe('H1');
    for (const node of nodes) {
      expect(await nodeRow(node).locator('td').nth(2).textContent()).toBe('TaskManager');
      expect(await nodeRow(node).locator('td').nth(5).textContent()).toBe('yes');
    }

    // Only this test's TaskManagers: untick all, tick ours.
    await page.getByLabel('Include every TaskManager in the fan-out').uncheck();
    const button = page.locator('#fan-out');
    expect(await button.isDisabled()).toBe(true);
    expect(await page.locator('#fan-out-reason').textContent()).toBe('Tick at least one TaskManager above.');
    for (const node of nodes) await page.getByLabel(`Include TaskManager ${node} in the fan-out`).check();
    expect(await button.textContent()).toMatch(/^Profile (all|2) TaskManagers$/);
    await page.locator('#fanout-duration').fill('3');
    await button.click();

    const group = page.locator('#groups .group').first();
    await group.waitFor();
    const groupId = (await group.getAttribute('data-group-id')) as string;
    expect(await group.locator('tbody tr').count()).toBe(2);
    expect(
      (await group.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-node')))).sort(),
    ).toEqual([...nodes].sort());
    const runs = (await api(server, 'GET', '/runs?cluster=local&limit=10')).body.runs.filter(
      (r: Json) => r.groupId === groupId,
    );
    expect(runs.map((r: Json) => r.node).sort()).toEqual([...nodes].sort());
    await expect.poll(() => group.locator('tbody tr[data-status=RUNNING] progress').count()).toBeGreaterThan(0);
    await screenshot('cluster-fan-out-running');
    await expect
      .poll(async () => Promise.all((await group.locator('tbody tr').all()).map(statusOf)), {
        timeout: RUN_TIMEOUT_MS,
      })
      .toEqual(['FINISHED', 'FINISHED']);
    for (const row of await group.locator('tbody tr').all()) {
      expect(await row.getByRole('link', { name: /^Open / }).getAttribute('href')).toMatch(/\/artifacts\//);
      expect(await row.getByRole('link', { name: /^Download / }).count()).toBe(1);
    }
    expect(await group.locator('h3').textContent()).toMatch(/^ITIMER · 3 s · started .* · 2 TaskManagers: 2 FINISHED$/);
    await screenshot('cluster-fan-out-finished');

    // A busy TaskManager is skipped, with the reason next to the action; the others start.
    const busy = (
      await api(server, 'POST', `/clusters/local/taskmanagers/${nodes[0]}/profiler`, { mode: 'WALL', duration: 3 })
    ).body;
    await button.click();
    const skipped = page.locator('#fan-out-skipped');
    await expect.poll(() => skipped.isVisible()).toBe(true);
    expect(await skipped.textContent()).toContain(`run ${busy.id} is still RUNNING`);
    const second = page.locator('#groups .group').first();
    await expect.poll(() => second.getAttribute('data-group-id')).not.toBe(groupId);
    const rows = () =>
      second
        .locator('tbody tr')
        .evaluateAll((trs) => trs.map((tr) => `${tr.getAttribute('data-node')} ${tr.getAttribute('data-status')}`));
    await expect.poll(rows).toEqual([`${nodes[1]} RUNNING`]);
    expect(await second.locator('tbody tr').getAttribute('data-node')).toBe(nodes[1]);
    await expect.poll(() => statusOf(second.locator('tbody tr')), { timeout: RUN_TIMEOUT_MS }).toBe('FINISHED');
    await waitForRunEnd(server, busy.id);
  });

  it('goes from the fleet to a profiler panel by keyboard alone', async () => {
    await waitForIdle(server, nodes[1] as string);
    await open(`${server.url}/#/`);
    const link = page.getByRole('link', { name: 'local', exact: true });
    await tabTo(page, link);
    await page.keyboard.press('Enter');
    const profilerLink = page
      .locator(`#nodes tbody tr[data-node="${nodes[1]}"]`)
      .getByRole('link', { name: 'Open profiler' });
    await profilerLink.waitFor();
    await tabTo(page, profilerLink);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/clusters/local/taskmanagers/${nodes[1]}/profiler`);
    await page.getByRole('button', { name: 'Create Profiling Instance' }).waitFor();
    await tabTo(page, page.getByLabel('Profiling Duration'));
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Create Profiling Instance');
  });

  it('schedules a rule from the rules page: the API message next to a bad schedule, then the runs its firing created', async () => {
    const [node] = nodes as [string];
    await waitForIdle(server, node);
    await open(`${server.url}/#/`);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).click();
    await expect.poll(() => page.locator('html').getAttribute('data-view')).toBe('rules');
    await page.getByRole('link', { name: 'New rule' }).click();
    const schedule = page.getByLabel('Schedule');
    await schedule.waitFor();
    const timezone = page.getByLabel('Time zone');
    expect(await timezone.inputValue()).toBe(await page.evaluate('Intl.DateTimeFormat().resolvedOptions().timeZone'));
    expect(await page.getByLabel('Cluster').inputValue()).toBe('local');

    // Only this test's TaskManager: listed by node, so other JVMs on the machine are never touched.
    const name = `web-ui rule ${Date.now()}`;
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Role').selectOption('taskmanager');
    await page.getByLabel('Nodes (optional)').fill(node);
    await page.getByLabel('Profiling Mode').selectOption('ITIMER');
    await page.getByLabel('Profiling Duration').fill('3');
    const create = page.getByRole('button', { name: 'Create rule' });

    // A bad schedule: the API's own message, next to the schedule field.
    await schedule.fill('cron(0 25 * * ? *)');
    await create.click();
    const body = {
      name,
      cluster: 'local',
      target: { role: 'taskmanager', nodes: [node] },
      mode: 'ITIMER',
      duration: 3,
      schedule: 'cron(0 25 * * ? *)',
      timezone: await timezone.inputValue(),
      enabled: true,
    };
    const refused = await api(server, 'POST', '/rules', body);
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0]).toMatch(/^schedule: /);
    const scheduleError = page.locator('#rule-schedule-error');
    await expect.poll(() => scheduleError.textContent()).toBe(refused.body.errors.join(' '));
    expect(await scheduleError.isVisible()).toBe(true);
    expect(await schedule.getAttribute('aria-invalid')).toBe('true');
    expect(await schedule.getAttribute('aria-describedby')).toContain('rule-schedule-error');
    expect(await schedule.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await screenshot('rule-bad-schedule');

    // A good one: created, and the page becomes the rule's own.
    await schedule.fill('rate(1 minute)');
    await create.click();
    await expect.poll(() => page.evaluate('location.hash')).toMatch(/^#\/rules\/(?!new$)[^/]+$/);
    const ruleId = decodeURIComponent(((await page.evaluate('location.hash')) as string).slice('#/rules/'.length));
    const stored = (await api(server, 'GET', `/rules/${ruleId}`)).body;
    expect(stored).toMatchObject({ name, target: { role: 'taskmanager', nodes: [node] }, schedule: 'rate(1 minute)' });

    // The list: the rule with its schedule and a next fire time.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).click();
    const row = page.locator(`#rules tbody tr[data-rule-id="${ruleId}"]`);
    await row.waitFor();
    expect(await row.locator('td.schedule code').textContent()).toBe('rate(1 minute)');
    expect(await row.locator('td.target').textContent()).toBe(`TaskManager ${node}`);
    await expect.poll(() => row.locator('td.next-fire').textContent()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await screenshot('rules');

    // The rule's page: the run its firing created, up to FINISHED with its flame graph link.
    await row.getByRole('link', { name, exact: true }).click();
    const runRow = page.locator('#rule-runs tbody tr').first();
    await runRow.waitFor({ timeout: 90_000 });
    expect(await runRow.getAttribute('data-node')).toBe(node);
    await expect.poll(() => statusOf(runRow), { timeout: 90_000 }).toBe('FINISHED');
    expect(await runRow.getByRole('link', { name: /^Open / }).getAttribute('href')).toMatch(/\/artifacts\//);
    const runId = (await runRow.getAttribute('data-run-id')) as string;
    expect((await api(server, 'GET', `/runs/${runId}`)).body.ruleId).toBe(ruleId);
    expect(await page.locator('#rule-last-fired').textContent()).toMatch(/^\d{4}-/);
    expect(await page.locator('#rule-next-fire').textContent()).toMatch(/^\d{4}-/);
    await screenshot('rule-runs');

    // Delete it from the list, after a confirm, so it fires no more.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).click();
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: `Delete ${name}` }).click();
    await expect.poll(() => page.locator(`#rules tbody tr[data-rule-id="${ruleId}"]`).count()).toBe(0);
    expect((await api(server, 'GET', `/rules/${ruleId}`)).status).toBe(404);
    await waitForIdle(server, node);
  });
});

/** Presses Tab until `target` has the focus (at most 60 times), as a keyboard user would. */
async function tabTo(page: Page, target: Locator): Promise<void> {
  for (let i = 0; i < 60; i++) {
    if (await target.evaluate((el) => el === el.ownerDocument.activeElement)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error('Tab never reached the element');
}
