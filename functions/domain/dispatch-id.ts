import type { Role, Run } from './run.ts';

/**
 * How a command finds its run without the command id. A run is stored before its command is sent, and the command
 * carries the run's dispatch id in its `runId` parameter: the run's own id for a run started alone, its fan-out
 * group's id otherwise (one SendCommand covers up to 50 runs of a group). A fan-out run's id derives from the group
 * and its target, so the command's parameters plus the instance an invocation ran on name exactly one run, even
 * when the sender died before it could record the command id.
 */

/** What a run's command carries in its `runId` parameter. */
export function dispatchIdOf(run: Pick<Run, 'id' | 'groupId'>): string {
  return run.groupId ?? run.id;
}

/** The id of a fan-out group's run on a target (node ids are unique across clusters: EC2 instance ids, local pids). */
export function fanOutRunId(groupId: string, role: Role, node: string): Promise<string> {
  return derivedId(`${groupId}|${role}|${node}`);
}

/** A lower-case UUID-shaped id derived from `seed` (SHA-256), so the same seed always names the same id. */
export async function derivedId(seed: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(seed)));
  const hex = [...digest.slice(0, 16)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The run a command with dispatch id `dispatchId` ran on `node` for `role`: the run itself, or its group's run there. */
export async function runIdsForDispatch(dispatchId: string, role: Role, node: string): Promise<string[]> {
  return [dispatchId, await fanOutRunId(dispatchId, role, node)];
}
