import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DirectoryArtifactStore } from '#adapters/local/directory-artifact-store.ts';
import { ProcDiscovery } from '#adapters/local/proc-discovery.ts';
import { SqliteRunStore } from '#adapters/local/sqlite-run-store.ts';
import { FLINK_MAIN_CLASSES, flinkRoleOf } from '#domain/flink-entrypoints.ts';
import type { Run } from '#domain/run.ts';
import { agentStep, loadAgentDocument } from '#node-agent/ssm-document.ts';
import { ConfigError, readLocalConfig } from '#shared/config.ts';
import { aRun } from '#test/support/runs.ts';

/** A directory for the test that calls this, removed when it ends. */
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'ffp-adapters-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

const runOf = (overrides: Partial<Run> = {}) =>
  aRun({ cluster: 'local', node: 'n1', triggerTime: 1_000, ...overrides });

describe('SqliteRunStore', () => {
  it('keeps runs in its file across a reopen', async () => {
    const file = join(tmp(), 'runs.sqlite');
    const first = new SqliteRunStore(file);
    const run = runOf();
    await first.insertRunning(run);
    await first.finish(run.id, {
      status: 'FAILED',
      finishedTime: 2_000,
      message: 'x',
      outputFile: null,
      artifactKey: null,
    });
    first.close();
    const reopened = new SqliteRunStore(file);
    expect(await reopened.get(run.id)).toMatchObject({ status: 'FAILED', message: 'x', finishedTime: 2_000 });
    reopened.close();
  });

  it('refuses a second RUNNING run of a target in the insert itself, naming the holder', async () => {
    const store = new SqliteRunStore(':memory:');
    const holder = runOf();
    expect(await store.insertRunning(holder)).toEqual({ inserted: true });
    expect(await store.insertRunning(runOf())).toEqual({ inserted: false, runningRunId: holder.id });
    expect(await store.insertRunning(runOf({ role: 'jobmanager' }))).toEqual({ inserted: true });
  });

  it('finishes a run only once', async () => {
    const store = new SqliteRunStore(':memory:');
    const run = runOf();
    await store.insertRunning(run);
    const outcome = {
      status: 'FINISHED',
      finishedTime: 5,
      message: 'ok',
      outputFile: 'f.html',
      artifactKey: 'k',
    } as const;
    expect(await store.finish(run.id, outcome)).toMatchObject({ status: 'FINISHED' });
    expect(await store.finish(run.id, { ...outcome, status: 'FAILED' })).toBeUndefined();
  });
});

describe('SqliteRunStore: group ids and the schema migration', () => {
  it('keeps the group id of a fan-out run, and none for a run started alone', async () => {
    const store = new SqliteRunStore(':memory:');
    const grouped = runOf({ groupId: 'group-1' });
    const alone = runOf({ node: 'n2' });
    await store.insertRunning(grouped);
    await store.insertRunning(alone);
    expect(await store.get(grouped.id)).toEqual(grouped);
    expect(await store.get(alone.id)).toEqual(alone);
    expect(await store.get(alone.id)).not.toHaveProperty('groupId');
  });

  it('opens a file written before group ids existed: adds the column and keeps the old runs', async () => {
    const file = join(tmp(), 'runs.sqlite');
    // The table as the first release created it, with one finished run in it.
    const old = new Database(file);
    old.exec(`CREATE TABLE runs (
      id TEXT PRIMARY KEY, cluster TEXT NOT NULL, node TEXT NOT NULL, role TEXT NOT NULL, mode TEXT NOT NULL,
      duration INTEGER NOT NULL, status TEXT NOT NULL, trigger_time INTEGER NOT NULL, finished_time INTEGER,
      message TEXT, output_file TEXT, command_id TEXT, artifact_key TEXT, requested_by TEXT, rule_id TEXT);
      CREATE UNIQUE INDEX runs_one_running_per_target ON runs (cluster, node, role) WHERE status = 'RUNNING';`);
    old
      .prepare(`INSERT INTO runs VALUES ('old-run', 'local', 'n1', 'taskmanager', 'CPU', 30, 'FINISHED', 1000, 31000,
                'Profiling Successful', 'n1_CPU.html', 'c1', 'k1', NULL, NULL)`)
      .run();
    old.close();

    const store = new SqliteRunStore(file);
    expect(await store.get('old-run')).toMatchObject({ id: 'old-run', status: 'FINISHED', outputFile: 'n1_CPU.html' });
    expect(await store.get('old-run')).not.toHaveProperty('groupId');
    const grouped = runOf({ groupId: 'group-2' });
    expect(await store.insertRunning(grouped)).toEqual({ inserted: true });
    expect(await store.get(grouped.id)).toEqual(grouped);
    store.close();
    // Opening it again finds nothing left to migrate.
    const again = new SqliteRunStore(file);
    expect((await again.get(grouped.id))?.groupId).toBe('group-2');
    again.close();
  });
});

describe('DirectoryArtifactStore links', () => {
  const secret = Buffer.from('another-unit-test-secret');
  const setup = () => {
    const clock = { now: 1_800_000_000_000 };
    const store = new DirectoryArtifactStore(
      tmp(),
      secret,
      () => 'http://x',
      () => clock.now,
    );
    return { store, clock };
  };
  const queryOf = (link: string) => Object.fromEntries(new URL(link).searchParams);

  it('opens a valid link until it expires, then refuses it', async () => {
    const { store, clock } = setup();
    await store.put('profiles/a/b.html', gzipSync('<html></html>'));
    const link = await store.link('profiles/a/b.html', {
      fileName: 'b.html',
      disposition: 'inline',
      expiresInSeconds: 60,
    });
    expect(new URL(link).pathname).toBe('/artifacts/b.html');
    expect((await store.open(queryOf(link))).fileName).toBe('b.html');
    clock.now += 61_000;
    await expect(store.open(queryOf(link))).rejects.toMatchObject({
      status: 403,
      reasons: [expect.stringMatching(/expired/)],
    });
  });

  it('refuses a link whose key, disposition, expiry or signature was changed', async () => {
    const { store } = setup();
    await store.put('profiles/a/b.html', gzipSync('<html></html>'));
    await store.put('profiles/a/c.html', gzipSync('<html></html>'));
    const query = queryOf(
      await store.link('profiles/a/b.html', { fileName: 'b.html', disposition: 'inline', expiresInSeconds: 60 }),
    );
    for (const change of [
      { key: 'profiles/a/c.html' },
      { disposition: 'attachment' },
      { expires: String(Number(query.expires) + 1) },
      { signature: `${query.signature?.slice(0, -1)}0` },
      { signature: '' },
    ]) {
      await expect(store.open({ ...query, ...change }), JSON.stringify(change)).rejects.toMatchObject({ status: 403 });
    }
  });

  it('refuses keys outside its directory and forgets deleted objects', async () => {
    const { store } = setup();
    await expect(store.put('../escape.html', Buffer.from(''))).rejects.toMatchObject({ status: 400 });
    await store.put('profiles/a/b.html', gzipSync('<html></html>'));
    const link = await store.link('profiles/a/b.html', {
      fileName: 'b.html',
      disposition: 'attachment',
      expiresInSeconds: 60,
    });
    await store.delete(['profiles/a/b.html', 'profiles/never/was.html']);
    await expect(store.open(queryOf(link))).rejects.toMatchObject({ status: 404 });
  });
});

describe('Flink JVM discovery', () => {
  it('knows a Flink JVM by its main class', () => {
    expect(
      flinkRoleOf([
        'java',
        '-cp',
        'x.jar',
        'org.apache.flink.runtime.taskexecutor.TaskManagerRunner',
        '--configDir',
        '/c',
      ]),
    ).toBe('taskmanager');
    expect(flinkRoleOf(['java', 'org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint'])).toBe(
      'jobmanager',
    );
    expect(flinkRoleOf(['java', '-jar', 'app.jar', '--name', 'TaskManagerRunner'])).toBeUndefined();
    expect(
      flinkRoleOf([
        'java',
        '--module-path',
        'm',
        '-m',
        'flink/org.apache.flink.runtime.taskexecutor.TaskManagerRunner',
      ]),
    ).toBe('taskmanager');
  });

  it('counts only the main class, as the node agent does: not a Flink class among the program’s arguments', () => {
    const tm = 'org.apache.flink.runtime.taskexecutor.TaskManagerRunner';
    // A job's own JVM (or any program) that names a Flink class as an argument is not a TaskManager.
    expect(flinkRoleOf(['java', '-cp', 'x.jar', 'com.example.Impostor', tm])).toBeUndefined();
    expect(flinkRoleOf(['java', 'Impostor.java', tm])).toBeUndefined();
    expect(flinkRoleOf(['java', '-jar', 'app.jar', tm])).toBeUndefined();
    // An @argfile's content is the JVM user's: a main class after one is not trusted.
    expect(flinkRoleOf(['java', '@/tmp/args', tm])).toBeUndefined();
    // The value of -cp is no main class, even when it looks like one.
    expect(flinkRoleOf(['java', '-cp', tm, 'com.example.Main'])).toBeUndefined();
    expect(flinkRoleOf(['java', '-Xmx1g', '-Dx=y', '-classpath', 'a:b', tm, '--configDir', '/c'])).toBe('taskmanager');
  });

  it('lists the same main classes as the node agent script', () => {
    const { script } = agentStep(loadAgentDocument().document);
    const block = /BEGIN FLINK MAIN CLASSES[^\n]*\n([\s\S]*?)# ---- END FLINK MAIN CLASSES/.exec(script)?.[1] ?? '';
    const listIn = (name: string) =>
      (new RegExp(`${name}=\\(([^)]*)\\)`).exec(block)?.[1] ?? '').split(/\s+/).filter(Boolean);
    expect(listIn('JOBMANAGER_MAIN_CLASSES')).toEqual(FLINK_MAIN_CLASSES.jobmanager);
    expect(listIn('TASKMANAGER_MAIN_CLASSES')).toEqual(FLINK_MAIN_CLASSES.taskmanager);
  });

  it('answers only for the local cluster', async () => {
    const discovery = new ProcDiscovery();
    expect(await discovery.listNodes('prod')).toBeUndefined();
    expect(Array.isArray(await discovery.listNodes('local'))).toBe(true);
  });
});

describe('local configuration', () => {
  it('has the documented defaults', () => {
    expect(readLocalConfig({})).toEqual({
      port: 8080,
      host: '127.0.0.1',
      publicUrl: undefined,
      dataDir: '.data',
      linkSecret: undefined,
      asprof: undefined,
      agentTmpDir: undefined,
      token: undefined,
      settings: {
        // Local agents start at once: no delivery time in a run's deadline.
        deliveryTimeoutSeconds: 0,
        maxDurationSeconds: 300,
        historySize: 10,
        graceSeconds: 60,
        linkTtlSeconds: 900,
        maxFanOut: 200,
        maxFiringSeconds: 3600,
        // Local mode's rules may fire every minute; AWS's default is every 5 minutes at most.
        minRuleIntervalSeconds: 60,
      },
    });
  });

  it('names each bad variable and its rule', () => {
    const read = () => readLocalConfig({ PORT: 'http', FLINK_PROFILER_HISTORY_SIZE: '0' });
    expect(read).toThrow(ConfigError);
    expect(read).toThrow('PORT: must be a whole number from 0 to 65535');
    expect(read).toThrow('FLINK_PROFILER_HISTORY_SIZE: must be a whole number from 1 to 1000');
  });
});
