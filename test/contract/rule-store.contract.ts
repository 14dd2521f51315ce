import { describe, expect, it } from 'vitest';
import type { RuleStore } from '#domain/ports.ts';
import type { Rule, RuleFiring } from '#domain/rule.ts';

/** What a store under test needs: a fresh, empty store per test. */
export type RuleStoreFactory = () => Promise<RuleStore>;

const T0 = 1_800_000_000_000;
let sequence = 0;

function ruleOf(overrides: Partial<Rule> = {}): Rule {
  sequence += 1;
  return {
    id: `rule-${String(sequence).padStart(4, '0')}-${crypto.randomUUID()}`,
    name: `nightly ${sequence}`,
    cluster: 'prod',
    target: { role: 'taskmanager', nodes: ['i-0001', 'i-0002'], sample: 1 },
    mode: 'ITIMER',
    duration: 30,
    schedule: 'cron(0 3 * * ? *)',
    timezone: 'Europe/Berlin',
    enabled: true,
    version: 1,
    createdAt: T0 + sequence,
    updatedAt: T0 + sequence,
    lastFiredAt: null,
    lastScheduledAt: null,
    nextFireAt: T0 + 60_000,
    lastFiring: null,
    team: 'team-a',
    createdBy: 'alice',
    updatedBy: 'alice',
    ...overrides,
  };
}

const claimOf = (
  rule: Rule,
  scheduledAt: number,
  overrides: Partial<Parameters<RuleStore['claimFiring']>[0]> = {},
) => ({
  ruleId: rule.id,
  version: rule.version,
  scheduledAt,
  firedAt: scheduledAt + 150,
  nextFireAt: scheduledAt + 86_400_000,
  ...overrides,
});

export interface RuleStoreContractOptions {
  /**
   * The endpoint checks a condition and writes in two steps that concurrent requests interleave: moto_server (one
   * thread per request, no lock around UpdateItem's condition and write) lets two of eight simultaneous claims
   * through now and then. DynamoDB evaluates a condition atomically with its write; there the full assertion holds.
   */
  racesConditionalWrites?: boolean;
}

/** The behaviour every RuleStore adapter promises; run against each adapter. */
export function describeRuleStoreContract(
  adapter: string,
  createStore: RuleStoreFactory,
  options: RuleStoreContractOptions = {},
): void {
  describe(`RuleStore contract: ${adapter}`, () => {
    it('stores a rule and reads it back as it was; lists rules oldest first; unknown ids read as undefined', async () => {
      const store = await createStore();
      const first = ruleOf();
      const second = ruleOf({ target: { role: 'jobmanager' }, timezone: 'UTC', nextFireAt: null, enabled: false });
      await store.create(first);
      await store.create(second);
      expect(await store.get(first.id)).toEqual(first);
      expect(await store.get(second.id)).toEqual(second);
      expect(await store.get('no-such-rule')).toBeUndefined();
      expect((await store.list()).map((r) => r.id)).toEqual([first.id, second.id]);
    });

    it('refuses a second rule with the same id', async () => {
      const store = await createStore();
      const rule = ruleOf();
      await store.create(rule);
      await expect(store.create({ ...rule, name: 'other' })).rejects.toThrow();
      expect((await store.get(rule.id))?.name).toBe(rule.name);
    });

    it('replaces the spec at the expected version only, keeping the firing record', async () => {
      const store = await createStore();
      const rule = ruleOf();
      await store.create(rule);
      await store.claimFiring(claimOf(rule, T0 + 60_000));
      const updated: Rule = {
        ...rule,
        name: 'renamed',
        target: { role: 'taskmanager' },
        schedule: 'rate(1 hour)',
        enabled: true,
        version: 2,
        updatedAt: T0 + 99,
        nextFireAt: T0 + 3_600_000,
      };
      expect(await store.replace(updated, 1)).toBe(true);
      const read = await store.get(rule.id);
      expect(read).toMatchObject({
        name: 'renamed',
        target: { role: 'taskmanager' },
        schedule: 'rate(1 hour)',
        version: 2,
        nextFireAt: T0 + 3_600_000,
        lastFiredAt: T0 + 60_150,
        lastScheduledAt: T0 + 60_000,
      });
      // A writer that read version 1 is refused, and nothing changes.
      expect(await store.replace({ ...updated, name: 'stale', version: 2 }, 1)).toBe(false);
      expect((await store.get(rule.id))?.name).toBe('renamed');
      expect(await store.replace({ ...updated, id: 'no-such-rule' }, 2)).toBe(false);
      // Disabling clears the next fire time.
      expect(await store.replace({ ...updated, enabled: false, nextFireAt: null, version: 3 }, 2)).toBe(true);
      expect(await store.get(rule.id)).toMatchObject({ enabled: false, nextFireAt: null, version: 3 });
    });

    it('claims each scheduled time once: a duplicate or an older time is refused', async () => {
      const store = await createStore();
      const rule = ruleOf();
      await store.create(rule);
      expect(await store.claimFiring(claimOf(rule, T0 + 60_000))).toBe(true);
      expect(await store.get(rule.id)).toMatchObject({
        lastFiredAt: T0 + 60_150,
        lastScheduledAt: T0 + 60_000,
        nextFireAt: T0 + 60_000 + 86_400_000,
      });
      expect(await store.claimFiring(claimOf(rule, T0 + 60_000))).toBe(false);
      expect(await store.claimFiring(claimOf(rule, T0 + 30_000))).toBe(false);
      expect(await store.claimFiring(claimOf(rule, T0 + 120_000, { nextFireAt: null }))).toBe(true);
      expect((await store.get(rule.id))?.nextFireAt).toBeNull();
    });

    it('lets exactly one of many simultaneous claims of the same time through', async () => {
      const store = await createStore();
      const rule = ruleOf();
      await store.create(rule);
      const results = await Promise.all(Array.from({ length: 8 }, () => store.claimFiring(claimOf(rule, T0 + 60_000))));
      if (options.racesConditionalWrites) expect(results.filter(Boolean).length).toBeGreaterThanOrEqual(1);
      else expect(results.filter(Boolean)).toHaveLength(1);
      // Whatever got through, a claim of the same time after them is refused.
      expect(await store.claimFiring(claimOf(rule, T0 + 60_000))).toBe(false);
    });

    it('refuses a claim for a stale version, a disabled rule or a deleted one', async () => {
      const store = await createStore();
      const rule = ruleOf();
      await store.create(rule);
      expect(await store.replace({ ...rule, version: 2 }, 1)).toBe(true);
      expect(await store.claimFiring(claimOf(rule, T0 + 60_000))).toBe(false);
      expect(await store.claimFiring(claimOf({ ...rule, version: 2 }, T0 + 60_000))).toBe(true);

      const disabled = ruleOf({ enabled: false, nextFireAt: null });
      await store.create(disabled);
      expect(await store.claimFiring(claimOf(disabled, T0 + 60_000))).toBe(false);
      expect(await store.claimFiring(claimOf(ruleOf(), T0 + 60_000))).toBe(false);
    });

    it("records the last firing's runs and skipped targets, but not over a newer firing", async () => {
      const store = await createStore();
      const rule = ruleOf();
      await store.create(rule);
      await store.claimFiring(claimOf(rule, T0 + 60_000));
      const firing: RuleFiring = {
        at: T0 + 60_150,
        scheduledAt: T0 + 60_000,
        runIds: ['run-1', 'run-2'],
        skipped: [{ node: 'i-0003', reason: 'busy', runningRunId: 'run-0' }],
        skippedCount: 1,
      };
      await store.recordFiring(rule.id, firing);
      expect((await store.get(rule.id))?.lastFiring).toEqual(firing);
      // A slow firing that finishes after a newer one was claimed does not overwrite it.
      await store.claimFiring(claimOf(rule, T0 + 120_000));
      await store.recordFiring(rule.id, { ...firing, runIds: ['late'] });
      expect((await store.get(rule.id))?.lastFiring).toEqual(firing);
      await store.recordFiring(rule.id, { ...firing, at: T0 + 120_150, error: 'cluster gone', runIds: [] });
      expect((await store.get(rule.id))?.lastFiring).toMatchObject({ error: 'cluster gone', runIds: [] });
    });

    it('lists the enabled rules that are due, earliest first', async () => {
      const store = await createStore();
      const late = ruleOf({ nextFireAt: T0 + 50_000 });
      const early = ruleOf({ nextFireAt: T0 + 10_000 });
      const future = ruleOf({ nextFireAt: T0 + 500_000 });
      const disabled = ruleOf({ enabled: false, nextFireAt: T0 });
      const done = ruleOf({ nextFireAt: null });
      for (const rule of [late, early, future, disabled, done]) await store.create(rule);
      expect((await store.listDue(T0 + 60_000)).map((r) => r.id)).toEqual([early.id, late.id]);
      expect(await store.listDue(T0)).toEqual([]);
    });

    it('deletes a rule once', async () => {
      const store = await createStore();
      const rule = ruleOf();
      await store.create(rule);
      expect(await store.delete(rule.id)).toBe(true);
      expect(await store.delete(rule.id)).toBe(false);
      expect(await store.get(rule.id)).toBeUndefined();
      expect(await store.list()).toEqual([]);
    });
  });
}
