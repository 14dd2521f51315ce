import Database from 'better-sqlite3';
import type { RuleStore } from '#domain/ports.ts';
import type { FiringClaim, Rule, RuleFiring, RuleSpec } from '#domain/rule.ts';

interface RuleRow {
  id: string;
  spec: string;
  version: number;
  enabled: number;
  created_at: number;
  updated_at: number;
  next_fire_at: number | null;
  last_fired_at: number | null;
  last_scheduled_at: number | null;
  last_firing: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS rules (
  id                TEXT PRIMARY KEY,
  spec              TEXT NOT NULL,     -- the rule as clients write it (JSON)
  version           INTEGER NOT NULL,
  enabled           INTEGER NOT NULL,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  next_fire_at      INTEGER,
  last_fired_at     INTEGER,
  last_scheduled_at INTEGER,
  last_firing       TEXT               -- JSON
);
CREATE INDEX IF NOT EXISTS rules_due ON rules (next_fire_at) WHERE enabled = 1 AND next_fire_at IS NOT NULL;
`;

/** What the `spec` column holds: the rule as clients write it, and who wrote it. */
type StoredSpec = RuleSpec & Pick<Rule, 'createdBy' | 'updatedBy'>;

function toRule(row: RuleRow): Rule {
  const spec = JSON.parse(row.spec) as Partial<StoredSpec> & Omit<RuleSpec, 'team'>;
  return {
    ...spec,
    // Rules written before teams and authors were kept have neither.
    team: spec.team ?? null,
    createdBy: spec.createdBy ?? null,
    updatedBy: spec.updatedBy ?? null,
    enabled: row.enabled === 1,
    id: row.id,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    nextFireAt: row.next_fire_at,
    lastFiredAt: row.last_fired_at,
    lastScheduledAt: row.last_scheduled_at,
    lastFiring: row.last_firing === null ? null : (JSON.parse(row.last_firing) as RuleFiring),
  };
}

function specJson(rule: Rule): string {
  const { name, cluster, target, mode, duration, schedule, timezone, enabled, team, createdBy, updatedBy } = rule;
  return JSON.stringify({
    name,
    cluster,
    target,
    mode,
    duration,
    schedule,
    timezone,
    enabled,
    team,
    createdBy,
    updatedBy,
  } satisfies StoredSpec);
}

/**
 * RuleStore in a table of local mode's SQLite file (the same file as the runs). Each conditional write is one
 * UPDATE … WHERE, atomic in SQLite, so two schedulers on the same file (or one restarted) never both claim a firing.
 */
export class SqliteRuleStore implements RuleStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  async create(rule: Rule): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO rules (id, spec, version, enabled, created_at, updated_at, next_fire_at, last_fired_at,
                            last_scheduled_at, last_firing)
         VALUES (@id, @spec, @version, @enabled, @createdAt, @updatedAt, @nextFireAt, @lastFiredAt,
                 @lastScheduledAt, @lastFiring)`,
      )
      .run({
        id: rule.id,
        spec: specJson(rule),
        version: rule.version,
        enabled: rule.enabled ? 1 : 0,
        createdAt: rule.createdAt,
        updatedAt: rule.updatedAt,
        nextFireAt: rule.nextFireAt,
        lastFiredAt: rule.lastFiredAt,
        lastScheduledAt: rule.lastScheduledAt,
        lastFiring: rule.lastFiring ? JSON.stringify(rule.lastFiring) : null,
      });
  }

  async get(id: string): Promise<Rule | undefined> {
    const row = this.db.prepare('SELECT * FROM rules WHERE id = ?').get(id) as RuleRow | undefined;
    return row && toRule(row);
  }

  async list(): Promise<Rule[]> {
    return (this.db.prepare('SELECT * FROM rules ORDER BY created_at, id').all() as RuleRow[]).map(toRule);
  }

  async replace(rule: Rule, expectedVersion: number): Promise<boolean> {
    const result = this.db
      .prepare(
        `UPDATE rules SET spec = @spec, version = @version, enabled = @enabled, updated_at = @updatedAt,
                          next_fire_at = @nextFireAt
         WHERE id = @id AND version = @expectedVersion`,
      )
      .run({
        id: rule.id,
        spec: specJson(rule),
        version: rule.version,
        enabled: rule.enabled ? 1 : 0,
        updatedAt: rule.updatedAt,
        nextFireAt: rule.nextFireAt,
        expectedVersion,
      });
    return result.changes === 1;
  }

  async delete(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM rules WHERE id = ?').run(id).changes === 1;
  }

  async claimFiring(claim: FiringClaim): Promise<boolean> {
    const result = this.db
      .prepare(
        `UPDATE rules SET last_fired_at = @firedAt, last_scheduled_at = @scheduledAt, next_fire_at = @nextFireAt
         WHERE id = @ruleId AND version = @version AND enabled = 1
           AND (last_scheduled_at IS NULL OR last_scheduled_at < @scheduledAt)`,
      )
      .run(claim);
    return result.changes === 1;
  }

  async recordFiring(ruleId: string, firing: RuleFiring): Promise<void> {
    this.db
      .prepare('UPDATE rules SET last_firing = ? WHERE id = ? AND last_fired_at = ?')
      .run(JSON.stringify(firing), ruleId, firing.at);
  }

  async listDue(now: number): Promise<Rule[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM rules WHERE enabled = 1 AND next_fire_at IS NOT NULL AND next_fire_at <= ?
         ORDER BY next_fire_at, id`,
      )
      .all(now) as RuleRow[];
    return rows.map(toRule);
  }
}
