import { describe, expect, it } from 'vitest';
import { href, parseRoute } from '../../web/src/router.ts';

describe('web UI addresses', () => {
  it("reads DESIGN.md's shareable addresses", () => {
    expect(parseRoute('')).toEqual({ view: 'fleet' });
    expect(parseRoute('#/')).toEqual({ view: 'fleet' });
    expect(parseRoute('#/clusters/prod')).toEqual({ view: 'cluster', cluster: 'prod' });
    expect(parseRoute('#/clusters/prod/jobmanager/profiler')).toEqual({
      view: 'profiler',
      target: { cluster: 'prod', role: 'jobmanager' },
    });
    expect(parseRoute('#/clusters/prod/taskmanagers/i-0abc/profiler')).toEqual({
      view: 'profiler',
      target: { cluster: 'prod', role: 'taskmanager', node: 'i-0abc' },
    });
    expect(parseRoute('#/clusters/prod/jobmanagers/i-0def/profiler/')).toEqual({
      view: 'profiler',
      target: { cluster: 'prod', role: 'jobmanager', node: 'i-0def' },
    });
  });

  it('writes addresses it reads back', () => {
    const targets = [
      { cluster: 'prod-eu.1', role: 'taskmanager', node: 'i-0abc123' },
      { cluster: 'prod', role: 'jobmanager' },
      { cluster: 'prod', role: 'jobmanager', node: '4242-1234567' },
    ] as const;
    for (const target of targets) expect(parseRoute(href.profiler(target))).toEqual({ view: 'profiler', target });
    expect(parseRoute(href.cluster('x_y'))).toEqual({ view: 'cluster', cluster: 'x_y' });
  });

  it("takes only names that match the API's patterns: a wildcard or a slash is no page", () => {
    for (const cluster of ['*', 'prod*', 'p?od', 'a b/c', '-prod', '.', 'x'.repeat(65)]) {
      expect(parseRoute(href.cluster(cluster)).view, cluster).toBe('not-found');
    }
    expect(parseRoute(href.profiler({ cluster: 'prod', role: 'taskmanager', node: 'node#1?x' })).view).toBe(
      'not-found',
    );
    expect(parseRoute(href.profiler({ cluster: 'prod', role: 'jobmanager', node: '10.0.0.1:6123' })).view).toBe(
      'not-found',
    );
  });

  it('reads the rules list, a new rule and one rule', () => {
    const id = '0d9c2f4e-4b7a-4a64-9d0b-3a4c5e6f7a8b';
    expect(parseRoute(href.rules())).toEqual({ view: 'rules' });
    expect(parseRoute(href.newRule())).toEqual({ view: 'rule', id: undefined });
    expect(parseRoute(href.rule(id))).toEqual({ view: 'rule', id });
    expect(parseRoute(`#/rules/${id}/`)).toEqual({ view: 'rule', id });
    expect(parseRoute('#/rules/abc').view).toBe('not-found');
  });

  it('reads a run page and a fan-out group page by the ids the service hands out', () => {
    const run = '0d9c2f4e-4b7a-4a64-9d0b-3a4c5e6f7a8b';
    const group = 'a1b2c3d4-0000-4111-8222-333344445555';
    expect(parseRoute(href.run(run))).toEqual({ view: 'run', id: run });
    expect(parseRoute(`#/runs/${run}/`)).toEqual({ view: 'run', id: run });
    expect(parseRoute(href.group(group))).toEqual({ view: 'group', id: group });
    for (const bad of ['abc', '*', `${run}*`, run.toUpperCase(), '../rules']) {
      expect(parseRoute(href.run(bad)).view, bad).toBe('not-found');
      expect(parseRoute(href.group(bad)).view, bad).toBe('not-found');
    }
    expect(parseRoute(`#/runs/${run}/diff`).view).toBe('not-found');
    expect(parseRoute('#/runs').view).toBe('not-found');
    expect(parseRoute('#/groups').view).toBe('not-found');
  });

  it('sends anything else to a not-found view', () => {
    for (const hash of [
      '#/nope',
      '#/clusters/prod/taskmanagers/profiler',
      '#/clusters//nodes',
      '#/clusters/%E0%A4%A',
      '#/rules/abc/runs',
    ]) {
      expect(parseRoute(hash).view).toBe('not-found');
    }
  });
});
