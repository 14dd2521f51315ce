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

  it('writes addresses it reads back, whatever the names hold', () => {
    const targets = [
      { cluster: 'a b/c', role: 'taskmanager', node: 'node#1?x' },
      { cluster: 'prod', role: 'jobmanager' },
      { cluster: 'prod', role: 'jobmanager', node: '10.0.0.1:6123' },
    ] as const;
    for (const target of targets) expect(parseRoute(href.profiler(target))).toEqual({ view: 'profiler', target });
    expect(parseRoute(href.cluster('x/y'))).toEqual({ view: 'cluster', cluster: 'x/y' });
  });

  it('reads the rules list, a new rule and one rule', () => {
    expect(parseRoute(href.rules())).toEqual({ view: 'rules' });
    expect(parseRoute(href.newRule())).toEqual({ view: 'rule', id: undefined });
    expect(parseRoute(href.rule('0d9c/2f'))).toEqual({ view: 'rule', id: '0d9c/2f' });
    expect(parseRoute('#/rules/abc/')).toEqual({ view: 'rule', id: 'abc' });
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
