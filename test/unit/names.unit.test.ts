import { describe, expect, it } from 'vitest';
import { isName, NAME_PATTERNS } from '#domain/names.ts';
import { callerFromJwtClaims, groupsOf } from '#http/caller.ts';
import { createTestService } from '#test/support/unit-fakes.ts';

/** Strings a user, a browser or a hostile client may put where a name goes. */
const HOSTILE = [
  '',
  '*',
  '?',
  'prod*',
  'p?od',
  '*prod',
  'prod\\*',
  '[prod]',
  'prod/../x',
  '../prod',
  '/prod',
  'prod/',
  'a b',
  ' prod',
  'prod ',
  'prod\n',
  'prod\t',
  'prod\u0000',
  'prod\u200b',
  'prøod',
  'prod;rm -rf /',
  '$(id)',
  '`id`',
  'prod|x',
  'prod&x',
  "prod'",
  'prod"',
  'prod%2A',
  'prod#x',
  'prod,x',
  '-prod',
  '.prod',
  '_prod',
  '.',
  '..',
];

describe('name patterns', () => {
  it('refuses every hostile string as a cluster, node or team', () => {
    for (const kind of ['cluster', 'node', 'team'] as const) {
      for (const value of HOSTILE) expect(isName(kind, value), `${kind} ${JSON.stringify(value)}`).toBe(false);
    }
  });

  it('takes the names real clusters and nodes have', () => {
    for (const value of ['prod', 'prod-eu-1', 'Prod.EU_1', 'local', 'a', 'x'.repeat(64)]) {
      expect(isName('cluster', value), value).toBe(true);
    }
    for (const value of ['i-0123456789abcdef0', '4242-1234567']) expect(isName('node', value), value).toBe(true);
    expect(isName('cluster', 'x'.repeat(65))).toBe(false);
    expect(isName('node', 'x'.repeat(65))).toBe(false);
    expect(isName('team', 'x'.repeat(128))).toBe(true);
    expect(isName('team', 'x'.repeat(129))).toBe(false);
  });

  it('takes only ids this service hands out, and only flame graph file names', () => {
    expect(isName('id', crypto.randomUUID())).toBe(true);
    for (const value of ['nope', '*', crypto.randomUUID().toUpperCase(), `${crypto.randomUUID()}x`]) {
      expect(isName('id', value), value).toBe(false);
    }
    expect(isName('outputFile', 'taskmanager_CPU_2026-11-27_10_15_00.html')).toBe(true);
    expect(isName('outputFile', 'i-0abc_ITIMER_2026-11-27_10_15_00.html')).toBe(true);
    for (const value of [
      '../x.html',
      'tm_CPU_2026-11-27_10_15_00.html/..',
      'x_cpu_2026-11-27_10_15_00.html',
      'a.html',
    ]) {
      expect(isName('outputFile', value), value).toBe(false);
    }
  });

  it('has anchored patterns without wildcard characters in what they accept', () => {
    for (const { pattern } of Object.values(NAME_PATTERNS)) {
      expect(pattern.source.startsWith('^') && pattern.source.endsWith('$')).toBe(true);
      expect(pattern.test('*')).toBe(false);
    }
  });
});

describe('the caller from JWT claims', () => {
  it("reads cognito:groups as API Gateway's authorizer hands it over (a string), or as an array", () => {
    expect(groupsOf('[team-a team-b]')).toEqual(['team-a', 'team-b']);
    expect(groupsOf('[team-a]')).toEqual(['team-a']);
    expect(groupsOf('[]')).toEqual([]);
    expect(groupsOf(['team-a', 'team-b'])).toEqual(['team-a', 'team-b']);
    expect(groupsOf(undefined)).toEqual([]);
    // A group name that no team tag can hold is no team.
    expect(groupsOf('[team-a prod* ../x]')).toEqual(['team-a']);
  });

  it('names the user and their teams; the admin group sees everything and is no team', () => {
    const options = { adminGroup: 'flink-profiler-admins' };
    expect(callerFromJwtClaims({ username: 'alice', 'cognito:groups': '[team-a team-b]' }, options)).toEqual({
      user: 'alice',
      teams: ['team-a', 'team-b'],
      seesEverything: false,
    });
    expect(
      callerFromJwtClaims({ 'cognito:username': 'root', 'cognito:groups': ['flink-profiler-admins'] }, options),
    ).toEqual({ user: 'root', teams: [], seesEverything: true });
    expect(callerFromJwtClaims({ sub: 'abc' }, options)).toEqual({ user: 'abc', teams: [], seesEverything: false });
    expect(callerFromJwtClaims({}, options)).toBeNull();
    expect(callerFromJwtClaims(undefined, options)).toBeNull();
  });
});

describe('the OpenAPI document', () => {
  it('carries the one pattern of each id it takes in a path or a query', async () => {
    const { app } = createTestService();
    // biome-ignore lint/suspicious/noExplicitAny: the document is read field by field
    const doc: any = await (await app.request('/api/v1/openapi.json')).json();
    const param = (path: string, name: string, method = 'get') =>
      doc.paths[path][method].parameters.find((p: { name: string }) => p.name === name).schema.pattern;
    expect(param('/api/v1/clusters/{cluster}/nodes', 'cluster')).toBe(NAME_PATTERNS.cluster.pattern.source);
    expect(param('/api/v1/clusters/{cluster}/taskmanagers/{node}/profiler', 'node')).toBe(
      NAME_PATTERNS.node.pattern.source,
    );
    expect(param('/api/v1/clusters/{cluster}/jobmanager/profiler/{outputFile}', 'outputFile')).toBe(
      NAME_PATTERNS.outputFile.pattern.source,
    );
    expect(param('/api/v1/runs/{id}', 'id')).toBe(NAME_PATTERNS.id.pattern.source);
    expect(param('/api/v1/runs', 'cluster')).toBe(NAME_PATTERNS.cluster.pattern.source);
  });
});
