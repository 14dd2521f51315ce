import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type { ProfileFormat } from '#domain/artifacts.ts';
import { ValidationError } from '#domain/errors.ts';
import type { InsertResult, RunFilter, RunOutcome, RunPage, RunStore, TargetSelector } from '#domain/ports.ts';
import type { Run, Target } from '#domain/run.ts';

interface RunRow {
  id: string;
  cluster: string;
  node: string;
  role: Run['role'];
  mode: Run['mode'];
  duration: number;
  status: Run['status'];
  trigger_time: number;
  finished_time: number | null;
  message: string | null;
  output_file: string | null;
  command_id: string | null;
  artifact_key: string | null;
  requested_by: string | null;
  rule_id: string | null;
  group_id: string | null;
  /** JSON array of team names. */
  teams: string | null;
  /** Until when the run's JVM may still be profiled after the run ended early (epoch ms). */
  busy_until: number | null;
  /** JSON array of the formats stored for a FINISHED run. */
  formats: string | null;
}

const TABLE = `
CREATE TABLE IF NOT EXISTS runs (
  id            TEXT PRIMARY KEY,
  cluster       TEXT NOT NULL,
  node          TEXT NOT NULL,
  role          TEXT NOT NULL,
  mode          TEXT NOT NULL,
  duration      INTEGER NOT NULL,
  status        TEXT NOT NULL,
  trigger_time  INTEGER NOT NULL,
  finished_time INTEGER,
  message       TEXT,
  output_file   TEXT,
  command_id    TEXT,
  artifact_key  TEXT,
  requested_by  TEXT,
  rule_id       TEXT,
  group_id      TEXT,
  teams         TEXT,
  busy_until    INTEGER,
  formats       TEXT
);
`;

/** Columns added after the first release, each with its definition: added to an older file when it opens. */
const ADDED_COLUMNS = { group_id: 'TEXT', teams: 'TEXT', busy_until: 'INTEGER', formats: 'TEXT' } as const;

const INDEXES = `
-- The one-RUNNING-run-per-target rule lives in the database: an insert that breaks it fails atomically.
CREATE UNIQUE INDEX IF NOT EXISTS runs_one_running_per_target ON runs (cluster, node, role) WHERE status = 'RUNNING';
CREATE INDEX IF NOT EXISTS runs_by_target ON runs (cluster, node, role, trigger_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (trigger_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS runs_by_command ON runs (command_id, node) WHERE command_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_output_file ON runs (cluster, node, role, output_file) WHERE output_file IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_group ON runs (group_id) WHERE group_id IS NOT NULL;
`;

function toRun(row: RunRow): Run {
  return {
    id: row.id,
    cluster: row.cluster,
    node: row.node,
    role: row.role,
    mode: row.mode,
    duration: row.duration,
    status: row.status,
    triggerTime: row.trigger_time,
    finishedTime: row.finished_time,
    message: row.message,
    outputFile: row.output_file,
    commandId: row.command_id,
    artifactKey: row.artifact_key,
    requestedBy: row.requested_by,
    ruleId: row.rule_id,
    ...(row.group_id === null ? {} : { groupId: row.group_id }),
    ...(row.teams === null ? {} : { teams: JSON.parse(row.teams) as string[] }),
    ...(row.formats === null ? {} : { formats: JSON.parse(row.formats) as ProfileFormat[] }),
  };
}

/** Where a page goes on: after the run with this trigger time and id, in `ORDER BY trigger_time DESC, id DESC`. */
interface PagePosition {
  t: number;
  id: string;
}

const TOKEN_REFUSED = 'nextToken: is not a token this service handed out for this query';

/**
 * A short digest of a filter and a position. It is a checksum, not a signature (there is no secret to sign
 * with): it catches a token edited by hand or passed back with another filter. A well-formed forgery can only
 * move the place the listing starts; the filter, teams included, still applies to every row.
 */
function pageDigest(filter: RunFilter, position: PagePosition): string {
  const fields = (Object.keys(FILTER_COLUMNS) as Array<keyof typeof FILTER_COLUMNS>)
    .filter((field) => filter[field] !== undefined)
    .map((field) => [field, filter[field]]);
  const teams = filter.teams ? [...new Set(filter.teams)].sort() : null;
  return createHash('sha256')
    .update(JSON.stringify([fields, teams, position.t, position.id]))
    .digest('base64url')
    .slice(0, 22);
}

/**
 * The page token for a filter that goes on after `position`: base64url JSON `{t, id, check}` (exported so tests
 * can build well-formed forgeries).
 */
export function runPageToken(filter: RunFilter, position: PagePosition): string {
  const token = { t: position.t, id: position.id, check: pageDigest(filter, position) };
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

/**
 * The position in a page token, if the token is one this store handed out for this very filter: exactly
 * `t` (a whole, non-negative number), `id` (a non-empty string) and the digest of the filter and position.
 */
function readPageToken(token: string, filter: RunFilter): PagePosition {
  let decoded: unknown;
  try {
    decoded = /^[A-Za-z0-9_-]+$/.test(token) ? JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) : null;
  } catch {
    decoded = null;
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
    throw new ValidationError(TOKEN_REFUSED);
  }
  const fields = decoded as Record<string, unknown>;
  const names = ['t', 'id', 'check'];
  const { t, id, check } = fields;
  if (
    Object.keys(fields).length !== names.length ||
    !names.every((name) => Object.hasOwn(fields, name)) ||
    typeof t !== 'number' ||
    !Number.isSafeInteger(t) ||
    t < 0 ||
    typeof id !== 'string' ||
    id === '' ||
    typeof check !== 'string' ||
    check !== pageDigest(filter, { t, id })
  ) {
    throw new ValidationError(TOKEN_REFUSED);
  }
  return { t, id };
}

const FILTER_COLUMNS = {
  cluster: 'cluster',
  node: 'node',
  role: 'role',
  status: 'status',
  ruleId: 'rule_id',
  groupId: 'group_id',
  requestedBy: 'requested_by',
} as const;

/** RunStore on one SQLite file: history survives restarts, and the busy-target check is a unique index. */
export class SqliteRunStore implements RunStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    // WAL keeps reads fast while a write is in flight; NORMAL sync is durable across process crashes.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db
      .transaction(() => {
        this.db.exec(TABLE);
        this.migrate();
        this.db.exec(INDEXES);
      })
      .immediate();
  }

  /** Brings a file written by an older version up to date: adds the columns it lacks (NULL in old rows). */
  private migrate(): void {
    const columns = new Set(
      (this.db.prepare('SELECT name FROM pragma_table_info(?)').all('runs') as Array<{ name: string }>).map(
        (c) => c.name,
      ),
    );
    for (const [column, definition] of Object.entries(ADDED_COLUMNS)) {
      if (!columns.has(column)) this.db.exec(`ALTER TABLE runs ADD COLUMN ${column} ${definition}`);
    }
  }

  close(): void {
    this.db.close();
  }

  async insertRunning(run: Run): Promise<InsertResult> {
    // One transaction: the checks and the insert see the same rows.
    return this.db.transaction((): InsertResult => {
      // Stored already: an earlier try of the same rule firing (its run ids derive from the firing, not chance).
      const same = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(run.id) as RunRow | undefined;
      if (same) return { inserted: false, existing: toRun(same) };
      const stillProfiled = this.db
        .prepare(
          `SELECT id, busy_until FROM runs WHERE cluster = ? AND node = ? AND role = ? AND busy_until > ?
           ORDER BY busy_until DESC LIMIT 1`,
        )
        .get(run.cluster, run.node, run.role, run.triggerTime) as { id: string; busy_until: number } | undefined;
      if (stillProfiled)
        return { inserted: false, runningRunId: stillProfiled.id, busyUntil: stillProfiled.busy_until };
      const inserted = this.db
        .prepare(
          `INSERT INTO runs (id, cluster, node, role, mode, duration, status, trigger_time, finished_time, message,
                             output_file, command_id, artifact_key, requested_by, rule_id, group_id, teams)
           VALUES (@id, @cluster, @node, @role, @mode, @duration, 'RUNNING', @triggerTime, NULL, NULL, NULL, NULL, NULL,
                   @requestedBy, @ruleId, @groupId, @teams)
           ON CONFLICT DO NOTHING`,
        )
        .run({ ...run, groupId: run.groupId ?? null, teams: run.teams ? JSON.stringify(run.teams) : null });
      if (inserted.changes === 1) return { inserted: true };
      const holder = this.db
        .prepare(`SELECT id FROM runs WHERE cluster = ? AND node = ? AND role = ? AND status = 'RUNNING'`)
        .get(run.cluster, run.node, run.role) as { id: string } | undefined;
      if (!holder) throw new Error(`run ${run.id} was not inserted and no RUNNING run holds its target`);
      return { inserted: false, runningRunId: holder.id };
    })();
  }

  async get(id: string): Promise<Run | undefined> {
    const row = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
    return row && toRun(row);
  }

  async setCommandId(id: string, commandId: string): Promise<void> {
    this.db.prepare('UPDATE runs SET command_id = ? WHERE id = ?').run(commandId, id);
  }

  async finish(id: string, outcome: RunOutcome): Promise<Run | undefined> {
    const row = this.db
      .prepare(
        `UPDATE runs SET status = @status, finished_time = @finishedTime, message = @message,
                         output_file = @outputFile, artifact_key = @artifactKey, busy_until = @busyUntil,
                         formats = @formats
         WHERE id = @id AND status = 'RUNNING' RETURNING *`,
      )
      .get({
        id,
        ...outcome,
        busyUntil: outcome.busyUntil ?? null,
        formats: outcome.formats?.length ? JSON.stringify(outcome.formats) : null,
      }) as RunRow | undefined;
    return row && toRun(row);
  }

  async listForTarget(target: Target, limit: number): Promise<Run[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM runs WHERE cluster = ? AND node = ? AND role = ?
         ORDER BY trigger_time DESC, id DESC LIMIT ?`,
      )
      .all(target.cluster, target.node, target.role, limit) as RunRow[];
    return rows.map(toRun);
  }

  async list(filter: RunFilter, limit: number, nextToken?: string): Promise<RunPage> {
    const where: string[] = [];
    const params: Record<string, string | number> = { limit: limit + 1 };
    for (const [key, column] of Object.entries(FILTER_COLUMNS) as Array<[keyof typeof FILTER_COLUMNS, string]>) {
      const value = filter[key];
      if (value === undefined) continue;
      where.push(`${column} = @${key}`);
      params[key] = value;
    }
    if (filter.teams) {
      // Visible to one of the teams: the run's team list shares a name with the caller's (none: nothing).
      where.push(
        `EXISTS (SELECT 1 FROM json_each(runs.teams) WHERE json_each.value IN (SELECT value FROM json_each(@teams)))`,
      );
      params.teams = JSON.stringify(filter.teams);
    }
    if (nextToken) {
      const after = readPageToken(nextToken, filter);
      where.push('(trigger_time < @afterTime OR (trigger_time = @afterTime AND id < @afterId))');
      params.afterTime = after.t;
      params.afterId = after.id;
    }
    const rows = this.db
      .prepare(
        `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY trigger_time DESC, id DESC LIMIT @limit`,
      )
      .all(params) as RunRow[];
    const runs = rows.slice(0, limit).map(toRun);
    const last = runs[runs.length - 1];
    return rows.length > limit && last
      ? { runs, nextToken: runPageToken(filter, { t: last.triggerTime, id: last.id }) }
      : { runs };
  }

  async findByOutputFile(target: TargetSelector, outputFile: string): Promise<Run | undefined> {
    const row = this.db
      .prepare(
        `SELECT * FROM runs WHERE cluster = @cluster AND role = @role AND output_file = @outputFile
         AND (@node IS NULL OR node = @node)`,
      )
      .get({ cluster: target.cluster, role: target.role, node: target.node ?? null, outputFile }) as RunRow | undefined;
    return row && toRun(row);
  }

  async findByCommand(commandId: string, node: string): Promise<Run | undefined> {
    const row = this.db.prepare('SELECT * FROM runs WHERE command_id = ? AND node = ?').get(commandId, node) as
      | RunRow
      | undefined;
    return row && toRun(row);
  }

  async listRunning(): Promise<Run[]> {
    const rows = this.db
      .prepare(`SELECT * FROM runs WHERE status = 'RUNNING' ORDER BY trigger_time ASC`)
      .all() as RunRow[];
    return rows.map(toRun);
  }

  async trimTarget(target: Target, keep: number): Promise<Run[]> {
    const rows = this.db
      .prepare(
        `DELETE FROM runs WHERE status != 'RUNNING' AND id IN (
           SELECT id FROM runs WHERE cluster = ? AND node = ? AND role = ?
           ORDER BY trigger_time DESC, id DESC LIMIT -1 OFFSET ?)
         RETURNING *`,
      )
      .all(target.cluster, target.node, target.role, keep) as RunRow[];
    return rows.map(toRun);
  }
}
