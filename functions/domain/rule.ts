import { z } from 'zod';
import type { ProfilingMode } from './modes.ts';
import { ROLES, type Role } from './run.ts';
import { atTimeProblem, DEFAULT_TIME_ZONE, parseSchedule, scheduleProblem, timeZoneProblem } from './schedule.ts';
import { nameSchema, nodeListSchema, runRequestSchema } from './validation.ts';

/** Which targets a rule profiles: every node of `role`, or the `nodes` listed; `sample` picks that many at random per firing. */
export interface RuleTarget {
  role: Role;
  nodes?: string[];
  sample?: number;
}

/** A rule as clients write it (contract). */
export interface RuleSpec {
  name: string;
  cluster: string;
  target: RuleTarget;
  mode: ProfilingMode;
  duration: number;
  /** `rate(…)`, `cron(…)` (EventBridge's six fields) or `at(…)`. */
  schedule: string;
  /** IANA time zone the schedule is read in; UTC when left out. */
  timezone: string;
  enabled: boolean;
  /**
   * The team (Cognito group) the rule belongs to: only its members (and admins) see or change it, and it may only
   * profile clusters of that team. Null in local mode, which has no teams.
   */
  team: string | null;
}

/** A target a firing did not profile, and why (busy with another run, not found, …). */
export interface SkippedRuleTarget {
  node: string;
  reason: string;
  runningRunId?: string;
}

/** What one firing of a rule did. */
export interface RuleFiring {
  /** When it fired (epoch ms). */
  at: number;
  /** The time it was scheduled for (epoch ms); later than `at` never, earlier when it fired late (e.g. after a restart). */
  scheduledAt: number;
  /** The runs it started, one per target. */
  runIds: string[];
  /** The targets it skipped, at most {@link MAX_SKIPPED_RECORDED} of them. */
  skipped: SkippedRuleTarget[];
  /** How many targets it skipped in all. */
  skippedCount: number;
  /** Why it started nothing at all (unknown cluster, no node of the role, …). */
  error?: string;
}

/** How many skipped targets a firing keeps by name (a store item has a size limit; the count is always kept). */
export const MAX_SKIPPED_RECORDED = 200;

/** A stored rule: the spec plus bookkeeping. Times are epoch milliseconds. */
export interface Rule extends RuleSpec {
  id: string;
  /** Counts changes made by users (create = 1, each replace +1); a firing does not change it. */
  version: number;
  createdAt: number;
  updatedAt: number;
  /** When the rule last fired, or null. */
  lastFiredAt: number | null;
  /** The scheduled time of the last firing: a firing for the same or an earlier time is a double firing and refused. */
  lastScheduledAt: number | null;
  /** When it fires next, or null (disabled, or an at() rule that has fired). */
  nextFireAt: number | null;
  lastFiring: RuleFiring | null;
  /** Who created the rule, and who last changed it (user names from the token; null in local mode). */
  createdBy: string | null;
  updatedBy: string | null;
}

/** A claim on one firing of a rule: stored only if the rule is still at `version`, enabled, and has not fired for `scheduledAt` or later. */
export interface FiringClaim {
  ruleId: string;
  version: number;
  scheduledAt: number;
  firedAt: number;
  nextFireAt: number | null;
}

const isMissing = (input: unknown) => input === undefined;
const required = (rule: string) => (issue: { input: unknown }) => (isMissing(issue.input) ? 'is required' : rule);

/** The limits a rule body is checked against, from the configuration. */
export interface RuleBodyLimits {
  maxDurationSeconds: number;
  /** Most targets one firing may start runs on (the fan-out limit). */
  maxFanOut: number;
}

/** The fields of a rule (contract), with a rule for each. */
function ruleShape({ maxDurationSeconds, maxFanOut }: RuleBodyLimits) {
  const { mode, duration } = runRequestSchema(maxDurationSeconds).shape;
  const sampleRule = `must be a whole number from 1 to ${maxFanOut} (at most ${maxFanOut} targets per firing)`;
  const target = z
    .strictObject(
      {
        role: z.enum(ROLES, { error: required(`must be one of ${ROLES.join(', ')}`) }),
        nodes: nodeListSchema(maxFanOut).optional(),
        sample: z
          .number({ error: sampleRule })
          .int({ error: sampleRule })
          .min(1, { error: sampleRule })
          .max(maxFanOut, { error: sampleRule })
          .optional(),
      },
      {
        error: (issue) =>
          issue.code === 'unrecognized_keys'
            ? 'unknown field; only role, nodes and sample are accepted'
            : isMissing(issue.input)
              ? 'is required'
              : 'must be an object {role, nodes?, sample?}',
      },
    )
    .superRefine((t, ctx) => {
      const listed = t.nodes ? new Set(t.nodes).size : undefined;
      if (t.sample !== undefined && listed !== undefined && t.sample > listed) {
        ctx.addIssue({
          code: 'custom',
          path: ['sample'],
          message: `must not exceed the ${listed} node${listed === 1 ? '' : 's'} listed in target.nodes`,
        });
      }
    });
  return {
    name: z
      .string({ error: required('must be a text of 1 to 100 characters') })
      .trim()
      .min(1, { error: 'must be a text of 1 to 100 characters' })
      .max(100, { error: 'must be a text of 1 to 100 characters' }),
    cluster: nameSchema('cluster'),
    target,
    mode,
    duration,
    schedule: z
      .string({ error: required('must be rate(…), cron(…) or at(…) as text') })
      .superRefine((expression, ctx) => {
        const problem = scheduleProblem(expression);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    timezone: z
      .string({ error: 'must be an IANA time zone name, e.g. Europe/Berlin' })
      .superRefine((zone, ctx) => {
        const problem = timeZoneProblem(zone);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    enabled: z.boolean({ error: required('must be true or false') }),
    // A rule read sends back `team: null` in local mode: null is "no team named", like leaving it out.
    team: nameSchema('team').nullable().optional(),
  };
}

const ACCEPTED = 'name, cluster, target, mode, duration, schedule, timezone, enabled and team';

function unknownField(issue: { code?: string; input: unknown }) {
  return issue.code === 'unrecognized_keys'
    ? `unknown field; only ${ACCEPTED} are accepted`
    : `must be a JSON object with ${ACCEPTED}`;
}

/** An at() time that the zone's clocks skip can never fire: say so rather than keep a rule that never runs. */
function atTimeExists(spec: { schedule: string; timezone?: string }, ctx: z.RefinementCtx) {
  const problem = atTimeProblem(parseSchedule(spec.schedule), spec.timezone ?? DEFAULT_TIME_ZONE);
  if (problem) ctx.addIssue({ code: 'custom', path: ['schedule'], message: problem });
}

/** The body of `POST /rules`: a rule (contract). */
export function ruleSpecSchema(limits: RuleBodyLimits) {
  return z.strictObject(ruleShape(limits), { error: unknownField }).superRefine(atTimeExists);
}

/**
 * The body of `PUT /rules/{id}`: a rule, optionally with the `version` it was read at (a stale version is refused
 * with 409). The other fields of a rule read are accepted and ignored, so a rule read can be edited and sent back.
 */
export function ruleReplaceSchema(limits: RuleBodyLimits) {
  const readOnly = z.unknown().optional();
  return z
    .strictObject(
      {
        ...ruleShape(limits),
        version: z
          .number({ error: 'must be the version the rule was read at' })
          .int({ error: 'must be the version the rule was read at' })
          .min(1, { error: 'must be the version the rule was read at' })
          .optional(),
        id: z.string({ error: 'must be the rule id' }).optional(),
        createdAt: readOnly,
        updatedAt: readOnly,
        lastFiredAt: readOnly,
        nextFireAt: readOnly,
        lastFiring: readOnly,
        createdBy: readOnly,
        updatedBy: readOnly,
      },
      { error: unknownField },
    )
    .superRefine(atTimeExists);
}

export type RuleSpecInput = z.infer<ReturnType<typeof ruleSpecSchema>>;
export type RuleReplaceInput = z.infer<ReturnType<typeof ruleReplaceSchema>>;

/** The spec fields of a rule, as stored. */
export const RULE_SPEC_FIELDS = [
  'name',
  'cluster',
  'target',
  'mode',
  'duration',
  'schedule',
  'timezone',
  'enabled',
  'team',
] as const satisfies ReadonlyArray<keyof RuleSpec>;

/** The spec of a parsed body, with the default time zone filled in; the team is the service's to decide. */
export function specOf(input: RuleSpecInput | RuleReplaceInput): Omit<RuleSpec, 'team'> {
  const target: RuleTarget = { role: input.target.role };
  if (input.target.nodes) target.nodes = [...new Set(input.target.nodes)];
  if (input.target.sample !== undefined) target.sample = input.target.sample;
  return {
    name: input.name,
    cluster: input.cluster,
    target,
    mode: input.mode,
    duration: input.duration,
    schedule: input.schedule.trim(),
    timezone: input.timezone ?? DEFAULT_TIME_ZONE,
    enabled: input.enabled,
  };
}
