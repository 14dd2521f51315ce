import { describe, expect, it } from 'vitest';
import { ValidationError } from '#domain/errors.ts';
import type { RunFilter, RunStore } from '#domain/ports.ts';
import type { Run } from '#domain/run.ts';
import { aRun } from '#test/support/runs.ts';

/** What a store under test needs: a fresh, empty store per test. */
export type RunStoreFactory = () => Promise<RunStore>;

const runOf = (overrides: Partial<Run> = {}) => aRun({ requestedBy: 'alice', ...overrides });

async function finished(store: RunStore, overrides: Partial<Run> = {}): Promise<Run> {
  const run = runOf(overrides);
  await store.insertRunning(run);
  const outputFile = `${run.node}_${run.mode}_${run.triggerTime}.html`;
  const done = await store.finish(run.id, {
    status: 'FINISHED',
    finishedTime: run.triggerTime + 30_000,
    message: 'Profiling Successful',
    outputFile,
    artifactKey: `profiles/${outputFile}`,
  });
  if (!done) throw new Error('finish returned nothing');
  return done;
}

const ids = (runs: Run[]) => runs.map((r) => r.id);

/** What a store answers to a page token it did not hand out for the query it is used with. */
export const TOKEN_REFUSED = 'nextToken: is not a token this service handed out for this query';

const base64url = (text: string) => Buffer.from(text).toString('base64url');
/** A page token's JSON: tokens are opaque, but every store's is base64url JSON, which a forger can edit. */
const tokenJson = (token: string) => Buffer.from(token, 'base64url').toString('utf8');

/** Every edit of one value, or one added field, of a JSON document: each gives a token nobody handed out. */
function edits(value: unknown): unknown[] {
  if (typeof value === 'string') {
    return [`${value}x`, value.slice(1), `${value.slice(0, -1)}${value.endsWith('0') ? '1' : '0'}`, 1];
  }
  if (typeof value === 'number') return [value + 1, value + 0.5, -value - 1, String(value)];
  if (Array.isArray(value)) return [[...value, 'x'], value.slice(1)];
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    return [
      { ...value, extra: 'x' },
      ...entries.map(([name]) => Object.fromEntries(entries.filter(([other]) => other !== name))),
      ...entries.flatMap(([name, field]) => edits(field).map((e) => ({ ...value, [name]: e }))),
    ];
  }
  return ['x'];
}

/** Expects `list` to refuse the token with a ValidationError naming nextToken (the HTTP layer's 400). */
async function expectRefused(store: RunStore, filter: RunFilter, token: string): Promise<void> {
  const outcome = await store.list(filter, 2, token).then(
    (page) => page,
    (error: unknown) => error,
  );
  const what = `token ${tokenJson(token)} with filter ${JSON.stringify(filter)}`;
  expect(outcome, what).toBeInstanceOf(ValidationError);
  expect((outcome as ValidationError).reasons, what).toEqual([TOKEN_REFUSED]);
}

/** The behaviour every RunStore adapter promises; run against each adapter. */
export interface RunStoreContractOptions {
  /**
   * The backend may drop a committed write when another transaction fails at the same moment. moto does: its
   * TransactWriteItems deep-copies the tables first and restores that copy when a transaction fails, wiping what
   * a concurrent winner wrote in between. DynamoDB does not; there the full assertion holds.
   */
  losesConcurrentTransactionWrites?: boolean;
}

export function describeRunStoreContract(
  adapter: string,
  createStore: RunStoreFactory,
  options: RunStoreContractOptions = {},
): void {
  describe(`RunStore contract: ${adapter}`, () => {
    it('stores a RUNNING run and reads it back as it was', async () => {
      const store = await createStore();
      const run = runOf({ ruleId: 'rule-1' });
      expect(await store.insertRunning(run)).toEqual({ inserted: true });
      expect(await store.get(run.id)).toEqual(run);
      expect(await store.get('no-such-run')).toBeUndefined();
    });

    it('keeps the group of a fan-out run, and gives a run started alone none', async () => {
      const store = await createStore();
      const grouped = runOf({ groupId: 'group-1' });
      const alone = runOf({ node: 'i-0002' });
      await store.insertRunning(grouped);
      await store.insertRunning(alone);
      expect(await store.get(grouped.id)).toEqual(grouped);
      expect(await store.get(alone.id)).not.toHaveProperty('groupId');
      expect((await store.list({ cluster: 'prod' }, 10)).runs.find((r) => r.id === grouped.id)?.groupId).toBe(
        'group-1',
      );
    });

    it("lists a group's runs, and keeps the formats a finished run stored", async () => {
      const store = await createStore();
      const first = runOf({ groupId: 'group-7' });
      const second = runOf({ node: 'i-0002', groupId: 'group-7', triggerTime: first.triggerTime + 1 });
      const other = runOf({ node: 'i-0003', groupId: 'group-8' });
      for (const run of [first, second, other]) await store.insertRunning(run);
      expect((await store.list({ groupId: 'group-7' }, 10)).runs.map((run) => run.id)).toEqual([second.id, first.id]);

      const outcome = {
        status: 'FINISHED' as const,
        finishedTime: first.triggerTime + 5_000,
        message: 'Profiling Successful',
        outputFile: 'i-0001_ITIMER_2026-11-27_10_00_05.html',
        artifactKey: 'profiles/prod/taskmanager/i-0001/x/i-0001_ITIMER_2026-11-27_10_00_05.html',
        formats: ['html' as const, 'collapsed' as const, 'pprof' as const, 'jfr' as const],
      };
      expect((await store.finish(first.id, outcome))?.formats).toEqual(outcome.formats);
      expect((await store.get(first.id))?.formats).toEqual(outcome.formats);
      const failed = await store.finish(second.id, { ...outcome, status: 'FAILED', formats: [], artifactKey: null });
      expect(failed).not.toHaveProperty('formats');
    });

    it('refuses a second RUNNING run of a target, naming the holder; other targets are free', async () => {
      const store = await createStore();
      const holder = runOf();
      await store.insertRunning(holder);
      expect(await store.insertRunning(runOf())).toEqual({ inserted: false, runningRunId: holder.id });
      expect(await store.insertRunning(runOf({ role: 'jobmanager' }))).toEqual({ inserted: true });
      expect(await store.insertRunning(runOf({ node: 'i-0002' }))).toEqual({ inserted: true });
      expect(await store.insertRunning(runOf({ cluster: 'staging' }))).toEqual({ inserted: true });
    });

    it('lets exactly one of many simultaneous inserts for a target through', async () => {
      const store = await createStore();
      const results = await Promise.all(Array.from({ length: 8 }, () => store.insertRunning(runOf())));
      expect(results.filter((r) => r.inserted)).toHaveLength(1);
      const running = (await store.listRunning()).length;
      if (options.losesConcurrentTransactionWrites) expect(running).toBeLessThanOrEqual(1);
      else expect(running).toBe(1);
    });

    it('finishes a run once, which frees its target', async () => {
      const store = await createStore();
      const run = runOf();
      await store.insertRunning(run);
      const outcome = {
        status: 'FAILED',
        finishedTime: run.triggerTime + 5,
        message: 'boom',
        outputFile: null,
        artifactKey: null,
      } as const;
      expect(await store.finish(run.id, outcome)).toEqual({ ...run, ...outcome });
      expect(await store.finish(run.id, { ...outcome, message: 'again' })).toBeUndefined();
      expect((await store.get(run.id))?.message).toBe('boom');
      expect(await store.finish('no-such-run', outcome)).toBeUndefined();
      expect(await store.insertRunning(runOf())).toEqual({ inserted: true });
    });

    it('keeps a target busy until the time a run that ended early says its JVM may still be profiled', async () => {
      const store = await createStore();
      const run = runOf();
      await store.insertRunning(run);
      const busyUntil = run.triggerTime + 150_000;
      const ended = await store.finish(run.id, {
        status: 'FAILED',
        finishedTime: run.triggerTime + 5_000,
        message: 'killed',
        outputFile: null,
        artifactKey: null,
        busyUntil,
      });
      expect(ended?.status).toBe('FAILED');
      // Before then the next run is refused, saying which run and until when; nothing is stored.
      const early = runOf({ triggerTime: busyUntil - 1 });
      expect(await store.insertRunning(early)).toEqual({ inserted: false, runningRunId: run.id, busyUntil });
      expect(await store.get(early.id)).toBeUndefined();
      // Another target of the same host is not held.
      expect(await store.insertRunning(runOf({ role: 'jobmanager', triggerTime: busyUntil - 1 }))).toEqual({
        inserted: true,
      });
      // After then the target takes a run, and that run holds it as any RUNNING run does.
      const later = runOf({ triggerTime: busyUntil + 1 });
      expect(await store.insertRunning(later)).toEqual({ inserted: true });
      expect(await store.insertRunning(runOf({ triggerTime: busyUntil + 2 }))).toEqual({
        inserted: false,
        runningRunId: later.id,
      });
    });

    it('finds a run by its command and node', async () => {
      const store = await createStore();
      const a = runOf({ node: 'i-a' });
      const b = runOf({ node: 'i-b' });
      await store.insertRunning(a);
      await store.insertRunning(b);
      await store.setCommandId(a.id, 'cmd-1');
      await store.setCommandId(b.id, 'cmd-1');
      expect((await store.findByCommand('cmd-1', 'i-b'))?.id).toBe(b.id);
      expect((await store.findByCommand('cmd-1', 'i-a'))?.commandId).toBe('cmd-1');
      expect(await store.findByCommand('cmd-2', 'i-a')).toBeUndefined();
    });

    it("lists a target's history newest first, up to a limit", async () => {
      const store = await createStore();
      const runs = [await finished(store), await finished(store), await finished(store)];
      await finished(store, { node: 'i-0002' });
      expect(ids(await store.listForTarget({ cluster: 'prod', node: 'i-0001', role: 'taskmanager' }, 2))).toEqual(
        ids(runs).reverse().slice(0, 2),
      );
    });

    it('lists runs across targets newest first, filtered, in pages', async () => {
      const store = await createStore();
      const tm1 = await finished(store, { ruleId: 'nightly' });
      const jm = await finished(store, { role: 'jobmanager', node: 'i-0009' });
      const other = await finished(store, { cluster: 'staging', ruleId: 'nightly' });
      const tm2 = await finished(store);
      const running = runOf({ node: 'i-0003' });
      await store.insertRunning(running);

      const pages: string[][] = [];
      let token: string | undefined;
      do {
        const page = await store.list({}, 2, token);
        pages.push(ids(page.runs));
        token = page.nextToken;
      } while (token);
      expect(pages).toEqual([[running.id, tm2.id], [other.id, jm.id], [tm1.id]]);
      expect(ids((await store.list({ cluster: 'prod' }, 10)).runs)).toEqual([running.id, tm2.id, jm.id, tm1.id]);
      expect(ids((await store.list({ cluster: 'prod', role: 'taskmanager', node: 'i-0001' }, 10)).runs)).toEqual([
        tm2.id,
        tm1.id,
      ]);
      expect(ids((await store.list({ role: 'jobmanager' }, 10)).runs)).toEqual([jm.id]);
      expect(ids((await store.list({ status: 'RUNNING' }, 10)).runs)).toEqual([running.id]);
      expect(ids((await store.list({ ruleId: 'nightly' }, 10)).runs)).toEqual([other.id, tm1.id]);
      expect(ids((await store.list({ ruleId: 'nightly', cluster: 'prod' }, 10)).runs)).toEqual([tm1.id]);
      const exact = await store.list({ cluster: 'prod' }, 4);
      expect(exact.nextToken).toBeUndefined();
      await expect(store.list({}, 2, 'not-a-token')).rejects.toMatchObject({ status: 400, reasons: [TOKEN_REFUSED] });
    });

    it('refuses a page token that is not a token at all', async () => {
      const store = await createStore();
      for (let i = 0; i < 3; i++) await finished(store);
      const garbage = [
        'not-a-token',
        'garbage',
        '%%%',
        'eyJ0Ijox.fQ',
        base64url('not json'),
        ...['null', '[]', '{}', '"x"', '42', 'true', '{"pk":"RUN#x"}', '{"t":1,"id":"x"}'].map(base64url),
      ];
      for (const token of garbage) await expectRefused(store, {}, token);
      for (const token of garbage) await expectRefused(store, { cluster: 'prod' }, token);
    });

    it('refuses a real page token edited in any way: another run, another partition, any field', async () => {
      const store = await createStore();
      const prod = [await finished(store), await finished(store), await finished(store)];
      const staging = [await finished(store, { cluster: 'staging' }), await finished(store, { cluster: 'staging' })];
      const page = await store.list({ cluster: 'prod' }, 2);
      expect(ids(page.runs)).toEqual([prod[2]?.id, prod[1]?.id]);
      const token = page.nextToken as string;
      const json = tokenJson(token);
      // The token still pages as it should with its own filter.
      expect(ids((await store.list({ cluster: 'prod' }, 2, token)).runs)).toEqual([prod[0]?.id]);

      const otherRun = (id: string) => base64url(json.replaceAll(prod[1]?.id as string, id));
      await expectRefused(store, { cluster: 'prod' }, otherRun(prod[2]?.id as string));
      await expectRefused(store, { cluster: 'prod' }, otherRun(staging[1]?.id as string));
      // A store whose token names the partition (DynamoDB's does) sees it moved; one whose token does not, sees
      // its own token used with another filter.
      const otherPartition = json.replaceAll('"prod"', '"staging"');
      await expectRefused(store, { cluster: 'staging' }, base64url(otherPartition));
      if (otherPartition !== json) await expectRefused(store, { cluster: 'prod' }, base64url(otherPartition));
      const forged = edits(JSON.parse(json)).map((edited) => base64url(JSON.stringify(edited)));
      expect(forged.length).toBeGreaterThan(8);
      for (const edited of forged) await expectRefused(store, { cluster: 'prod' }, edited);
    });

    it('refuses a real page token used with another filter; each pages with its own', async () => {
      const store = await createStore();
      for (let i = 0; i < 3; i++) {
        await finished(store, { teams: ['team-a'], ruleId: 'nightly' });
        await finished(store, { cluster: 'staging', teams: ['team-a'], ruleId: 'nightly' });
      }
      const filters: RunFilter[] = [
        {},
        { cluster: 'prod' },
        { cluster: 'staging' },
        { cluster: 'prod', status: 'FINISHED' },
        { cluster: 'prod', requestedBy: 'alice' },
        { cluster: 'prod', teams: ['team-a'] },
        { cluster: 'prod', teams: ['team-a', 'team-b'] },
        { cluster: 'prod', role: 'taskmanager', node: 'i-0001' },
        { ruleId: 'nightly' },
        { ruleId: 'nightly', cluster: 'prod' },
      ];
      const tokens = new Map<RunFilter, string>();
      for (const filter of filters) {
        const first = await store.list(filter, 2);
        const token = first.nextToken;
        expect(token, JSON.stringify(filter)).toBeDefined();
        tokens.set(filter, token as string);
        const rest = await store.list(filter, 100, token);
        const all = await store.list(filter, 100);
        expect([...ids(first.runs), ...ids(rest.runs)], JSON.stringify(filter)).toEqual(ids(all.runs));
      }
      for (const [from, token] of tokens) {
        for (const to of filters) if (to !== from) await expectRefused(store, to, token);
      }
    });

    it('lists runs across days newest first, in pages of 2 and 3 that resume exactly, same millisecond or not', async () => {
      const store = await createStore();
      const day = 86_400_000;
      const noon = Date.UTC(2027, 0, 20, 12);
      // Days with gaps between them, runs on both sides of midnight, and runs sharing one millisecond.
      const times = [
        noon,
        noon,
        noon,
        noon - 12 * 3600_000,
        noon - 12 * 3600_000 - 1,
        noon - day,
        noon - day,
        noon - 3 * day,
        noon - 3 * day + 1,
        noon - 40 * day,
        noon - 41 * day,
        noon - 41 * day,
      ];
      const runs = times.map((triggerTime, i) =>
        runOf({
          triggerTime,
          node: `i-${String(i).padStart(4, '0')}`,
          cluster: i % 3 === 0 ? 'staging' : 'prod',
          role: i % 4 === 0 ? 'jobmanager' : 'taskmanager',
        }),
      );
      // Inserted in an order of their own, not by time.
      for (const i of [5, 0, 11, 3, 8, 1, 9, 4, 10, 2, 7, 6]) await store.insertRunning(runs[i] as Run);
      const newestFirst = (some: Run[]) =>
        ids([...some].sort((a, b) => b.triggerTime - a.triggerTime || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)));

      for (const filter of [{}, { role: 'taskmanager' }, { status: 'RUNNING' }] satisfies RunFilter[]) {
        const all = runs.filter((run) => filter.role === undefined || run.role === filter.role);
        for (const size of [2, 3]) {
          const pages: string[][] = [];
          let token: string | undefined;
          do {
            const page = await store.list(filter, size, token);
            pages.push(ids(page.runs));
            token = page.nextToken;
            expect(pages.length, `${JSON.stringify(filter)} in pages of ${size}`).toBeLessThanOrEqual(all.length);
          } while (token);
          const what = `${JSON.stringify(filter)} in pages of ${size}`;
          expect(pages.flat(), what).toEqual(newestFirst(all));
          expect(
            pages.slice(0, -1).every((page) => page.length === size),
            what,
          ).toBe(true);
        }
      }
      expect(ids((await store.list({ role: 'jobmanager' }, 100)).runs)).toEqual(
        newestFirst(runs.filter((run) => run.role === 'jobmanager')),
      );
      expect((await store.list({ status: 'FAILED' }, 10)).runs).toEqual([]);
    });

    it('resumes a fleet-wide page token right after its run, whatever was written since', async () => {
      const store = await createStore();
      const at = Date.UTC(2027, 0, 20, 12);
      const same = Array.from({ length: 5 }, (_, i) => runOf({ triggerTime: at, node: `i-same-${i}` }));
      const older = runOf({ triggerTime: at - 86_400_000, node: 'i-older' });
      for (const run of [...same, older]) await store.insertRunning(run);
      const first = await store.list({}, 2);
      const whole = ids((await store.list({}, 100)).runs);
      expect(ids(first.runs)).toEqual(whole.slice(0, 2));
      // Newer runs written between two pages do not move the next page.
      await store.insertRunning(runOf({ triggerTime: at + 1, node: 'i-newer' }));
      const second = await store.list({}, 3, first.nextToken);
      expect(ids(second.runs)).toEqual(whole.slice(2, 5));
      const last = await store.list({}, 3, second.nextToken);
      expect(ids(last.runs)).toEqual(whole.slice(5));
      expect(last.nextToken).toBeUndefined();
      // A token is not used up: the same token reads the same page again.
      expect(ids((await store.list({}, 3, first.nextToken)).runs)).toEqual(whole.slice(2, 5));
    });

    it('refuses a fleet-wide page token edited in any way, or used with another filter', async () => {
      const store = await createStore();
      const at = Date.UTC(2027, 0, 20, 12);
      const runs = [at, at, at - 86_400_000, at - 2 * 86_400_000].map((triggerTime, i) =>
        runOf({ triggerTime, node: `i-${i}` }),
      );
      for (const run of runs) await store.insertRunning(run);
      const page = await store.list({}, 2);
      const token = page.nextToken as string;
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
      const json = tokenJson(token);
      const forged = edits(JSON.parse(json)).map((edited) => base64url(JSON.stringify(edited)));
      expect(forged.length).toBeGreaterThan(8);
      for (const edited of forged) await expectRefused(store, {}, edited);
      // Another run's place, written into the token by hand.
      const [, second, third] = ids((await store.list({}, 10)).runs);
      await expectRefused(store, {}, base64url(json.replaceAll(second as string, third as string)));
      for (const other of [{ role: 'taskmanager' }, { status: 'RUNNING' }, { cluster: 'prod' }] satisfies RunFilter[]) {
        await expectRefused(store, other, token);
      }
      // Refusals leave the real token as good as it was.
      expect(ids((await store.list({}, 2, token)).runs)).toHaveLength(2);
    });

    it('finds a flame graph by output file, for one node or across a role', async () => {
      const store = await createStore();
      const run = await finished(store, { role: 'jobmanager', node: 'i-jm' });
      const file = run.outputFile as string;
      expect((await store.findByOutputFile({ cluster: 'prod', role: 'jobmanager', node: 'i-jm' }, file))?.id).toBe(
        run.id,
      );
      expect((await store.findByOutputFile({ cluster: 'prod', role: 'jobmanager' }, file))?.id).toBe(run.id);
      expect(await store.findByOutputFile({ cluster: 'prod', role: 'taskmanager' }, file)).toBeUndefined();
      expect(
        await store.findByOutputFile({ cluster: 'prod', role: 'jobmanager', node: 'i-other' }, file),
      ).toBeUndefined();
    });

    it('lists RUNNING runs oldest first', async () => {
      const store = await createStore();
      const first = runOf({ node: 'i-1' });
      const second = runOf({ node: 'i-2' });
      await store.insertRunning(first);
      await store.insertRunning(second);
      await finished(store, { node: 'i-3' });
      expect(ids(await store.listRunning())).toEqual([first.id, second.id]);
    });

    it('trims a target to its newest runs; the trimmed ones are gone from every read', async () => {
      const store = await createStore();
      const old = await finished(store);
      await store.setCommandId(old.id, 'cmd-old');
      const kept = [await finished(store), await finished(store)];
      const elsewhere = await finished(store, { node: 'i-0002' });
      const trimmed = await store.trimTarget({ cluster: 'prod', node: 'i-0001', role: 'taskmanager' }, 2);
      expect(ids(trimmed)).toEqual([old.id]);
      expect(trimmed[0]?.artifactKey).toBe(old.artifactKey);
      expect(await store.get(old.id)).toBeUndefined();
      expect(ids(await store.listForTarget({ cluster: 'prod', node: 'i-0001', role: 'taskmanager' }, 10))).toEqual(
        ids(kept).reverse(),
      );
      expect(ids((await store.list({}, 10)).runs)).toEqual([elsewhere.id, ...ids(kept).reverse()]);
      expect(
        await store.findByOutputFile({ cluster: 'prod', role: 'taskmanager' }, old.outputFile as string),
      ).toBeUndefined();
      expect(await store.findByCommand('cmd-old', 'i-0001')).toBeUndefined();
      expect(await store.trimTarget({ cluster: 'prod', node: 'i-0001', role: 'taskmanager' }, 2)).toEqual([]);
    });

    it('never trims a RUNNING run', async () => {
      const store = await createStore();
      await finished(store);
      const running = runOf();
      await store.insertRunning(running);
      expect(await store.trimTarget({ cluster: 'prod', node: 'i-0001', role: 'taskmanager' }, 0)).toHaveLength(1);
      expect((await store.get(running.id))?.status).toBe('RUNNING');
    });
  });
}
