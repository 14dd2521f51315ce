import { type Caller, canSee } from './access.ts';
import { teamsOf, visibleCluster } from './cluster-access.ts';
import { ConflictError, DomainError, NotFoundError, ValidationError } from './errors.ts';
import type { Discovery, Logger, RuleScheduler, RuleStore } from './ports.ts';
import type { ProfilerService, StartRunsResult } from './profiler-service.ts';
import {
  MAX_SKIPPED_RECORDED,
  type Rule,
  type RuleFiring,
  type RuleReplaceInput,
  type RuleSpec,
  type RuleSpecInput,
  type SkippedRuleTarget,
  specOf,
} from './rule.ts';
import { firstFireAt, nextFireAfter, parseSchedule, shortestIntervalMs } from './schedule.ts';

export interface RuleServiceDependencies {
  rules: RuleStore;
  scheduler: RuleScheduler;
  profiler: ProfilerService;
  discovery: Discovery;
  log: Logger;
  /** Whether rules belong to teams (AWS: Cognito groups). Local mode has none. */
  teamsInForce?: boolean;
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

  constructor(deps: RuleServiceDependencies) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.newId = deps.newId ?? (() => crypto.randomUUID());
    this.random = deps.random ?? Math.random;
  }

  /** The limits a rule body is checked against at the edge (the HTTP schemas). */
  get bodyLimits() {
    const { maxDurationSeconds, maxFanOut } = this.deps.profiler.settings;
    return { maxDurationSeconds, maxFanOut };
  }

  /** The rules the caller may see, oldest first. */
  async list(caller: Caller): Promise<Rule[]> {
    return (await this.deps.rules.list()).filter((rule) => ruleVisibleTo(caller, rule));
  }

  /** One rule the caller may see; another team's rule is answered like an unknown one (404). */
  async get(caller: Caller, id: string): Promise<Rule> {
    const rule = await this.deps.rules.get(id);
    if (!rule || !ruleVisibleTo(caller, rule)) throw new NotFoundError(`rule '${id}' not found`);
    return rule;
  }

  /**
   * Stores a new rule for one of the caller's teams, then creates its schedule; a schedule that cannot be created
   * undoes the rule. The rule may only profile a cluster of its team, within the guardrails.
   */
  async create(caller: Caller, input: RuleSpecInput): Promise<Rule> {
    const spec: RuleSpec = { ...specOf(input), team: this.teamOf(caller, input.team ?? undefined) };
    await this.checkTargets(caller, spec);
    const now = this.now();
    const rule: Rule = {
      ...spec,
      id: this.newId(),
      version: 1,
      createdAt: now,
      updatedAt: now,
      createdBy: caller.user,
      updatedBy: caller.user,
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
    this.audit('rule.create', caller, rule);
    return rule;
  }

  /**
   * Replaces a rule's spec. With `version` in the body, a rule changed since that version is refused (409). The
   * next fire time is kept when neither the schedule nor the time zone changed and the rule stays enabled;
   * otherwise it starts afresh (a rate fires at once, as a new EventBridge schedule does). Left out, `team` stays.
   */
  async replace(caller: Caller, id: string, input: RuleReplaceInput): Promise<Rule> {
    if (input.id !== undefined && input.id !== id) {
      throw new ValidationError(`id: '${input.id}' is not the id of the rule addressed ('${id}'); leave it out`);
    }
    const current = await this.get(caller, id);
    if (input.version !== undefined && input.version !== current.version) {
      throw new ConflictError(staleMessage(id, input.version, current.version));
    }
    const named = input.team ?? undefined;
    const team = named === undefined || named === current.team ? current.team : this.teamOf(caller, named);
    const spec: RuleSpec = { ...specOf(input), team };
    await this.checkTargets(caller, spec);
    const now = this.now();
    const sameTiming =
      spec.schedule === current.schedule && spec.timezone === current.timezone && spec.enabled && current.enabled;
    const nextFireAt = !spec.enabled ? null : sameTiming ? current.nextFireAt : this.firstFire(spec, now);
    const updated: Rule = {
      ...current,
      ...spec,
      version: current.version + 1,
      updatedAt: now,
      updatedBy: caller.user,
      nextFireAt,
    };
    if (!(await this.deps.rules.replace(updated, current.version))) {
      const latest = await this.deps.rules.get(id);
      if (!latest) throw new NotFoundError(`rule '${id}' not found`);
      throw new ConflictError(staleMessage(id, current.version, latest.version));
    }
    // The rule is stored: a schedule that fails to follow is a fault (500) and is put right by sending the PUT again.
    await this.deps.scheduler.put(updated);
    this.audit('rule.update', caller, updated);
    return (await this.deps.rules.get(id)) ?? updated;
  }

  async delete(caller: Caller, id: string): Promise<void> {
    const rule = await this.get(caller, id);
    if (!(await this.deps.rules.delete(id))) throw new NotFoundError(`rule '${id}' not found`);
    await this.deps.scheduler.remove(id);
    this.audit('rule.delete', caller, rule);
  }

  /** One structured audit line per change of a rule: who, for which team, what, on which target. */
  private audit(action: string, caller: Caller, rule: Rule): void {
    this.deps.log.info('audit', {
      action,
      who: caller.user,
      team: rule.team,
      ruleId: rule.id,
      target: { cluster: rule.cluster, ...rule.target },
    });
  }

  /**
   * The team a new or moved rule belongs to: the one named (one of the caller's, or any for an admin), else the
   * caller's only team. Local mode has no teams: the rule has none.
   */
  private teamOf(caller: Caller, named: string | undefined): string | null {
    if (!this.deps.teamsInForce) {
      if (named !== undefined)
        throw new ValidationError('team: this deployment has no teams (local mode); leave it out');
      return null;
    }
    if (named !== undefined) {
      if (caller.seesEverything || caller.teams.includes(named)) return named;
      throw new ValidationError(
        `team: '${named}' is not one of your teams (${caller.teams.join(', ') || 'you belong to none'})`,
      );
    }
    if (caller.teams.length === 1) return caller.teams[0] as string;
    if (caller.teams.length === 0) {
      throw new ValidationError(
        caller.seesEverything
          ? 'team: is required: name the team (Cognito group) the rule belongs to'
          : 'team: you belong to no team; ask an admin to add you to a Cognito group',
      );
    }
    throw new ValidationError(`team: is required when you are in several teams (${caller.teams.join(', ')})`);
  }

  /**
   * Checks that the rule's cluster is one the caller may see (else 404, like an unknown one) and belongs to the
   * rule's team, and that the rule stays within the guardrails: no more often than the shortest interval, and at
   * most the configured profiling seconds (duration × targets) per firing.
   */
  private async checkTargets(caller: Caller, spec: RuleSpec): Promise<void> {
    const { minRuleIntervalSeconds, maxFiringSeconds, maxFanOut } = this.deps.profiler.settings;
    const interval = shortestIntervalMs(parseSchedule(spec.schedule));
    if (interval !== null && interval < minRuleIntervalSeconds * 1000) {
      throw new ValidationError(
        `schedule: ${spec.schedule} fires every ${formatSeconds(interval / 1000)}; rules may fire at most every ${formatSeconds(minRuleIntervalSeconds)}`,
      );
    }
    const { nodes, teams } = await visibleCluster(this.deps.discovery, caller, spec.cluster);
    if (spec.team !== null && !teams.includes(spec.team)) {
      throw new ValidationError(
        `cluster: cluster '${spec.cluster}' does not belong to team '${spec.team}' (its teams: ${teams.join(', ') || 'none'}); tag its instances for the team or choose another team`,
      );
    }
    const ofRole = nodes.filter((node) => node.role === spec.target.role).length;
    const targets = spec.target.sample ?? spec.target.nodes?.length ?? ofRole;
    if (targets > maxFanOut) {
      throw new ValidationError(
        `target: the rule would profile ${targets} ${spec.target.role}s per firing, more than the limit of ${maxFanOut}; list fewer nodes or set target.sample`,
      );
    }
    if (targets * spec.duration > maxFiringSeconds) {
      throw new ValidationError(
        `duration: ${spec.duration} s × ${targets} target${targets === 1 ? '' : 's'} = ${targets * spec.duration} s of profiling per firing, more than the limit of ${maxFiringSeconds} s; shorten the duration or set target.sample`,
      );
    }
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
    let claimedAt = firedAt;
    if (!claimed) {
      // Claimed by an earlier try that never recorded what it did (it died, or is still at it): this try finishes
      // the job. The runs' ids derive from the rule, the scheduled time and the target, so none is made twice.
      const latest = await this.deps.rules.get(ruleId);
      const unfinished =
        latest?.lastScheduledAt === scheduledAt && latest.lastFiring?.scheduledAt !== scheduledAt && latest.lastFiredAt;
      if (!unfinished)
        return { ruleId, fired: false, reason: `already fired for ${new Date(scheduledAt).toISOString()}` };
      claimedAt = unfinished;
    }

    const firing = await this.startRuns(rule, claimedAt, scheduledAt);
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
      const { maxFiringSeconds } = this.deps.profiler.settings;
      if (nodes.length * rule.duration > maxFiringSeconds) {
        return firing({
          error: `the firing would profile ${nodes.length} ${rule.target.role}s × ${rule.duration} s = ${nodes.length * rule.duration} s, more than the limit of ${maxFiringSeconds} s per firing; shorten the duration or set target.sample`,
        });
      }
      const result = await this.deps.profiler.startRuns({
        caller: ruleCaller(rule),
        cluster: rule.cluster,
        role: rule.target.role,
        nodes,
        mode: rule.mode,
        duration: rule.duration,
        ruleId: rule.id,
        idempotencyKey: `rule:${rule.id}@${scheduledAt}`,
      });
      return firing(result);
    } catch (error) {
      if (error instanceof DomainError) return firing({ error: error.message });
      // The firing is claimed: it is not tried again, so say in the rule what went wrong (details in the log).
      this.deps.log.error('rule firing failed', { ruleId: rule.id, error: String(error) });
      return firing({ error: `the firing failed: ${(error as Error).message}` });
    }
  }

  /**
   * The nodes a firing profiles: the listed ones, or `sample` of them (or of the role's nodes) at random, or every
   * node of the role. A cluster that no longer carries the rule's team fires nothing, and the firing says why.
   */
  private async selectNodes(rule: Rule): Promise<string[]> {
    const { role, nodes, sample } = rule.target;
    const known = await this.deps.discovery.listNodes(rule.cluster);
    if (!known) throw new NotFoundError(`cluster '${rule.cluster}' not found`);
    if (rule.team !== null && !teamsOf(known).includes(rule.team)) {
      throw new NotFoundError(
        `cluster '${rule.cluster}' no longer belongs to team '${rule.team}' (its instances' team tag does not name it); the rule starts no runs until it does`,
      );
    }
    if (sample === undefined) return nodes ?? known.filter((n) => n.role === role).map((n) => n.id);
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
}

/** Whether the caller may see (and change) a rule: its team's members and admins. A rule without a team is local. */
function ruleVisibleTo(caller: Caller, rule: Rule): boolean {
  return canSee(caller, rule.team === null ? [] : [rule.team]);
}

/** Who a rule's firing acts as: the rule itself, for its team (a rule without a team sees what local mode sees). */
function ruleCaller(rule: Rule): Caller {
  return { user: `rule:${rule.id}`, teams: rule.team === null ? [] : [rule.team], seesEverything: rule.team === null };
}

function formatSeconds(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function staleMessage(id: string, readVersion: number, currentVersion: number): string {
  return `rule '${id}' was changed since version ${readVersion} (it is at version ${currentVersion}); read it again and retry`;
}
