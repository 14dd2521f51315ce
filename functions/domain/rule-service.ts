import { ConflictError, DomainError, NotFoundError, ValidationError } from './errors.ts';
import type { Discovery, Logger, RuleScheduler, RuleStore } from './ports.ts';
import type { ProfilerService, StartRunsResult } from './profiler-service.ts';
import {
  MAX_SKIPPED_RECORDED,
  type Rule,
  type RuleFiring,
  type RuleSpec,
  ruleReplaceSchema,
  ruleSpecSchema,
  type SkippedRuleTarget,
  specOf,
} from './rule.ts';
import { firstFireAt, nextFireAfter, parseSchedule } from './schedule.ts';
import { parseOrThrow } from './validation.ts';

export interface RuleServiceDependencies {
  rules: RuleStore;
  scheduler: RuleScheduler;
  profiler: ProfilerService;
  discovery: Discovery;
  log: Logger;
  now?: () => number;
  newId?: () => string;
  /** A number in [0, 1), for sampling targets. */
  random?: () => number;
}

/** When to fire: the time the firing was scheduled for, and the rule version the trigger knew (AWS: the schedule's input). */
export interface FireOptions {
  /** Defaults to the rule's `nextFireAt`, or now. */
  scheduledAt?: number;
  /** A trigger that names an older version than the stored rule is stale and skipped. */
  version?: number;
}

export type FiringOutcome =
  | { ruleId: string; fired: true; firing: RuleFiring }
  | { ruleId: string; fired: false; reason: string };

/**
 * Scheduled profiling rules: CRUD with the rule store as the source of truth and the scheduler kept in step, and
 * the firing of a rule (one run per selected target, through the profiler's fan-out).
 */
export class RuleService {
  private readonly deps: RuleServiceDependencies;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly random: () => number;
  private readonly createSchema: ReturnType<typeof ruleSpecSchema>;
  private readonly replaceSchema: ReturnType<typeof ruleReplaceSchema>;

  constructor(deps: RuleServiceDependencies) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.newId = deps.newId ?? (() => crypto.randomUUID());
    this.random = deps.random ?? Math.random;
    const maxDuration = deps.profiler.settings.maxDurationSeconds;
    this.createSchema = ruleSpecSchema(maxDuration);
    this.replaceSchema = ruleReplaceSchema(maxDuration);
  }

  list(): Promise<Rule[]> {
    return this.deps.rules.list();
  }

  async get(id: string): Promise<Rule> {
    const rule = await this.deps.rules.get(id);
    if (!rule) throw new NotFoundError(`rule '${id}' not found`);
    return rule;
  }

  /** Validates and stores a new rule, then creates its schedule; a schedule that cannot be created undoes the rule. */
  async create(body: unknown): Promise<Rule> {
    const spec = specOf(parseOrThrow(this.createSchema, body));
    await this.requireCluster(spec.cluster);
    const now = this.now();
    const rule: Rule = {
      ...spec,
      id: this.newId(),
      version: 1,
      createdAt: now,
      updatedAt: now,
      lastFiredAt: null,
      lastScheduledAt: null,
      nextFireAt: spec.enabled ? this.firstFire(spec, now) : null,
      lastFiring: null,
    };
    await this.deps.rules.create(rule);
    try {
      await this.deps.scheduler.put(rule);
    } catch (error) {
      await this.deps.rules.delete(rule.id);
      throw error;
    }
    return rule;
  }

  /**
   * Replaces a rule's spec. With `version` in the body, a rule changed since that version is refused (409). The
   * next fire time is kept when neither the schedule nor the time zone changed and the rule stays enabled;
   * otherwise it starts afresh (a rate fires at once, as a new EventBridge schedule does).
   */
  async replace(id: string, body: unknown): Promise<Rule> {
    const input = parseOrThrow(this.replaceSchema, body);
    if (input.id !== undefined && input.id !== id) {
      throw new ValidationError(`id: '${input.id}' is not the id of the rule addressed ('${id}'); leave it out`);
    }
    const current = await this.get(id);
    if (input.version !== undefined && input.version !== current.version) {
      throw new ConflictError(staleMessage(id, input.version, current.version));
    }
    const spec = specOf(input);
    await this.requireCluster(spec.cluster);
    const now = this.now();
    const sameTiming =
      spec.schedule === current.schedule && spec.timezone === current.timezone && spec.enabled && current.enabled;
    const nextFireAt = !spec.enabled ? null : sameTiming ? current.nextFireAt : this.firstFire(spec, now);
    const updated: Rule = { ...current, ...spec, version: current.version + 1, updatedAt: now, nextFireAt };
    if (!(await this.deps.rules.replace(updated, current.version))) {
      const latest = await this.deps.rules.get(id);
      if (!latest) throw new NotFoundError(`rule '${id}' not found`);
      throw new ConflictError(staleMessage(id, current.version, latest.version));
    }
    // The rule is stored: a schedule that fails to follow is a fault (500) and is put right by sending the PUT again.
    await this.deps.scheduler.put(updated);
    return (await this.deps.rules.get(id)) ?? updated;
  }

  async delete(id: string): Promise<void> {
    if (!(await this.deps.rules.delete(id))) throw new NotFoundError(`rule '${id}' not found`);
    await this.deps.scheduler.remove(id);
  }

  /**
   * Fires a rule once: re-reads it (a stale trigger, a disabled or deleted rule is skipped), claims the firing with
   * a conditional write (a double firing is refused there), starts one run per selected target in one batch — a
   * busy target is skipped, not failed — and records what it did on the rule.
   */
  async fireRule(ruleId: string, options: FireOptions = {}): Promise<FiringOutcome> {
    const rule = await this.deps.rules.get(ruleId);
    if (!rule) return { ruleId, fired: false, reason: 'the rule does not exist (deleted)' };
    if (options.version !== undefined && options.version < rule.version) {
      return { ruleId, fired: false, reason: `stale trigger: version ${options.version}, rule is at ${rule.version}` };
    }
    if (!rule.enabled) return { ruleId, fired: false, reason: 'the rule is disabled' };

    const firedAt = this.now();
    const scheduledAt = options.scheduledAt ?? rule.nextFireAt ?? firedAt;
    const schedule = parseSchedule(rule.schedule);
    // A firing that comes late (the local server was down) fires once and moves on: the next time is after now.
    const nextFireAt = nextFireAfter(schedule, rule.timezone, Math.max(scheduledAt, firedAt), scheduledAt);
    const claimed = await this.deps.rules.claimFiring({
      ruleId,
      version: rule.version,
      scheduledAt,
      firedAt,
      nextFireAt,
    });
    if (!claimed) return { ruleId, fired: false, reason: `already fired for ${new Date(scheduledAt).toISOString()}` };

    const firing = await this.startRuns(rule, firedAt, scheduledAt);
    await this.deps.rules.recordFiring(ruleId, firing);
    this.deps.log.info('rule fired', {
      ruleId,
      scheduledAt,
      runs: firing.runIds.length,
      skipped: firing.skippedCount,
      error: firing.error,
    });
    return { ruleId, fired: true, firing };
  }

  /** Fires every enabled rule that is due (local mode's timer calls this); each rule at most once per call. */
  async fireDue(): Promise<FiringOutcome[]> {
    const outcomes: FiringOutcome[] = [];
    for (const rule of await this.deps.rules.listDue(this.now())) {
      try {
        outcomes.push(await this.fireRule(rule.id, { scheduledAt: rule.nextFireAt ?? undefined }));
      } catch (error) {
        this.deps.log.error('rule firing failed', { ruleId: rule.id, error: String(error) });
      }
    }
    return outcomes;
  }

  private async startRuns(rule: Rule, firedAt: number, scheduledAt: number): Promise<RuleFiring> {
    const firing = (result: Partial<StartRunsResult> & { error?: string }): RuleFiring => {
      const skipped: SkippedRuleTarget[] = (result.skipped ?? []).map(({ node, reason, runningRunId }) =>
        runningRunId ? { node, reason, runningRunId } : { node, reason },
      );
      return {
        at: firedAt,
        scheduledAt,
        runIds: (result.runs ?? []).map((run) => run.id),
        skipped: skipped.slice(0, MAX_SKIPPED_RECORDED),
        skippedCount: skipped.length,
        ...(result.error ? { error: result.error } : {}),
      };
    };
    try {
      const nodes = await this.selectNodes(rule);
      const result = await this.deps.profiler.startRuns({
        cluster: rule.cluster,
        body: {
          mode: rule.mode,
          duration: rule.duration,
          role: rule.target.role,
          ...(nodes ? { nodes } : {}),
        },
        requestedBy: `rule:${rule.name}`,
        ruleId: rule.id,
      });
      return firing(result);
    } catch (error) {
      if (error instanceof DomainError) return firing({ error: error.message });
      // The firing is claimed: it is not tried again, so say in the rule what went wrong (details in the log).
      this.deps.log.error('rule firing failed', { ruleId: rule.id, error: String(error) });
      return firing({ error: `the firing failed: ${(error as Error).message}` });
    }
  }

  /** The nodes to name in the fan-out: the listed ones, or `sample` of them (or of the role's nodes) at random. */
  private async selectNodes(rule: Rule): Promise<string[] | undefined> {
    const { role, nodes, sample } = rule.target;
    if (sample === undefined) return nodes;
    const known = await this.deps.discovery.listNodes(rule.cluster);
    if (!known) throw new NotFoundError(`cluster '${rule.cluster}' not found`);
    const listed = nodes ? new Set(nodes) : undefined;
    const pool = known.filter((n) => n.role === role && (!listed || listed.has(n.id))).map((n) => n.id);
    if (pool.length === 0) {
      throw new NotFoundError(`no ${role} ${listed ? 'of those listed ' : ''}found in cluster '${rule.cluster}'`);
    }
    // Partial Fisher–Yates: the first `sample` places get a uniform random choice.
    for (let i = 0; i < Math.min(sample, pool.length); i++) {
      const j = i + Math.floor(this.random() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j] as string, pool[i] as string];
    }
    return pool.slice(0, sample);
  }

  private firstFire(spec: RuleSpec, now: number): number | null {
    const schedule = parseSchedule(spec.schedule);
    const first = firstFireAt(schedule, spec.timezone, now);
    if (first !== null) return first;
    throw new ValidationError(
      schedule.kind === 'at'
        ? `schedule: ${spec.schedule} is in the past in ${spec.timezone}`
        : `schedule: ${spec.schedule} never fires from now on (no date matches)`,
    );
  }

  private async requireCluster(cluster: string): Promise<void> {
    if (!(await this.deps.discovery.listNodes(cluster))) throw new NotFoundError(`cluster '${cluster}' not found`);
  }
}

function staleMessage(id: string, readVersion: number, currentVersion: number): string {
  return `rule '${id}' was changed since version ${readVersion} (it is at version ${currentVersion}); read it again and retry`;
}
