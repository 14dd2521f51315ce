/**
 * The UI's shareable addresses (DESIGN.md): `#/` the fleet, `#/clusters/{cluster}` a cluster's nodes and
 * fan-outs, `#/clusters/{cluster}/jobmanager/profiler` and `#/clusters/{cluster}/taskmanagers/{node}/profiler`
 * a JVM's profiler panel (and `#/clusters/{cluster}/jobmanagers/{node}/profiler` one of several JobManagers);
 * `#/rules` the scheduled profiling rules, `#/rules/new` a new one and `#/rules/{id}` one rule with its runs;
 * `#/runs/{id}` one run (its hottest methods, operators, exports and comparisons) and `#/groups/{groupId}` a
 * fan-out group (its merged profile and its TaskManagers side by side).
 */
import { isName } from '#domain/names.ts';
import type { Target } from './target.ts';

export type Route =
  | { view: 'fleet' }
  | { view: 'cluster'; cluster: string }
  | { view: 'profiler'; target: Target }
  | { view: 'rules' }
  | { view: 'rule'; id: string | undefined }
  | { view: 'run'; id: string }
  | { view: 'group'; id: string }
  | { view: 'not-found'; hash: string };

const enc = encodeURIComponent;

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/\/+$/, '');
  if (path === '' || path === '/') return { view: 'fleet' };
  const parts = path.replace(/^\//, '').split('/').map(decode);
  if (parts.some((p) => p === undefined || p === '')) return { view: 'not-found', hash };
  const [first, cluster, third, fourth, fifth] = parts as string[];
  if (first === 'rules') {
    if (parts.length === 1) return { view: 'rules' };
    if (parts.length === 2 && cluster === 'new') return { view: 'rule', id: undefined };
    if (parts.length === 2 && isName('id', cluster)) return { view: 'rule', id: cluster };
    return { view: 'not-found', hash };
  }
  if (first === 'runs' || first === 'groups') {
    // Run and group ids are ids this service handed out: the API's one pattern for them.
    if (parts.length === 2 && isName('id', cluster)) return { view: first === 'runs' ? 'run' : 'group', id: cluster };
    return { view: 'not-found', hash };
  }
  // The API's own name patterns: an address with anything else is no page (and never reaches the API).
  if (first !== 'clusters' || !isName('cluster', cluster)) return { view: 'not-found', hash };
  if (fourth !== undefined && third !== 'jobmanager' && !isName('node', fourth)) return { view: 'not-found', hash };
  if (parts.length === 2) return { view: 'cluster', cluster };
  if (parts.length === 4 && third === 'jobmanager' && fourth === 'profiler') {
    return { view: 'profiler', target: { cluster, role: 'jobmanager' } };
  }
  if (parts.length === 5 && third === 'taskmanagers' && fourth !== undefined && fifth === 'profiler') {
    return { view: 'profiler', target: { cluster, role: 'taskmanager', node: fourth } };
  }
  if (parts.length === 5 && third === 'jobmanagers' && fourth !== undefined && fifth === 'profiler') {
    return { view: 'profiler', target: { cluster, role: 'jobmanager', node: fourth } };
  }
  return { view: 'not-found', hash };
}

export const href = {
  fleet: () => '#/',
  cluster: (cluster: string) => `#/clusters/${enc(cluster)}`,
  profiler: (target: Target) =>
    target.role === 'jobmanager'
      ? target.node === undefined
        ? `#/clusters/${enc(target.cluster)}/jobmanager/profiler`
        : `#/clusters/${enc(target.cluster)}/jobmanagers/${enc(target.node)}/profiler`
      : `#/clusters/${enc(target.cluster)}/taskmanagers/${enc(target.node)}/profiler`,
  rules: () => '#/rules',
  newRule: () => '#/rules/new',
  rule: (id: string) => `#/rules/${enc(id)}`,
  run: (id: string) => `#/runs/${enc(id)}`,
  group: (groupId: string) => `#/groups/${enc(groupId)}`,
};
