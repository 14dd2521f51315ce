import { finish, IdIndex, mix, randomSeed } from './id-index.ts';
import type { Profile } from './profile.ts';

/**
 * The call tree of one or more profiles, threads ignored, as flat preorder rows: children sorted by name, node 0 the
 * root (`all`). For each profile (in the order given), `total[p][i]` and `self[p][i]` are node i's samples.
 */
export interface FlameTree {
  names: string[];
  /** Per node in preorder: index into `names` (-1 for the root) and depth (root 0). */
  name: number[];
  depth: number[];
  total: number[][];
  self: number[][];
}

/** Merges the stacks of each profile into one tree (a node per distinct root → frame path). */
export function buildFlameTree(profiles: Profile[]): FlameTree {
  const nameIds = new Map<string, number>();
  const names: string[] = [];
  const nodeName: number[] = [-1];
  const parent: number[] = [-1];
  // A node's child for a name, by a hash of (parent, name id): no key objects for millions of nodes.
  const children = new IdIndex(4096);
  const seed = randomSeed();
  const total = profiles.map(() => [0]);
  const self = profiles.map(() => [0]);

  profiles.forEach((profile, p) => {
    const totals = total[p] as number[];
    const selfs = self[p] as number[];
    // Stacks in tree order share a prefix with the one before: walk that prefix by the previous path.
    let previous: string[] = [];
    const path: number[] = [];
    for (const stack of profile.stacks) {
      let node = 0;
      totals[0] = (totals[0] as number) + stack.count;
      const frames = stack.frames;
      let depth = 0;
      while (depth < frames.length && depth < previous.length && frames[depth] === previous[depth]) {
        node = path[depth] as number;
        totals[node] = (totals[node] as number) + stack.count;
        depth += 1;
      }
      for (; depth < frames.length; depth++) {
        const frame = frames[depth] as string;
        let id = nameIds.get(frame);
        if (id === undefined) {
          id = names.length;
          names.push(frame);
          nameIds.set(frame, id);
        }
        const hash = finish(mix(mix(seed, node), id));
        children.probe(hash);
        let child = children.next();
        while (child !== -1 && (parent[child] !== node || nodeName[child] !== id)) child = children.next();
        if (child === -1) {
          child = nodeName.length;
          children.add(hash, child);
          nodeName.push(id);
          parent.push(node);
          for (let q = 0; q < profiles.length; q++) {
            (total[q] as number[]).push(0);
            (self[q] as number[]).push(0);
          }
        }
        totals[child] = (totals[child] as number) + stack.count;
        node = child;
        path[depth] = child;
      }
      previous = frames;
      selfs[node] = (selfs[node] as number) + stack.count;
    }
  });

  // Children of each node as contiguous runs (counting sort by parent), each run sorted by name.
  const count = nodeName.length;
  const start = new Int32Array(count + 1);
  for (let i = 1; i < count; i++) start[(parent[i] as number) + 1] = (start[(parent[i] as number) + 1] as number) + 1;
  for (let i = 0; i < count; i++) start[i + 1] = (start[i + 1] as number) + (start[i] as number);
  const fill = start.slice(0, count);
  const ordered = new Int32Array(Math.max(count - 1, 0));
  for (let i = 1; i < count; i++) {
    const p = parent[i] as number;
    ordered[fill[p] as number] = i;
    fill[p] = (fill[p] as number) + 1;
  }
  const byName = (a: number, b: number) => {
    const x = names[nodeName[a] as number] as string;
    const y = names[nodeName[b] as number] as string;
    return x < y ? -1 : x > y ? 1 : 0;
  };
  for (let i = 0; i < count; i++) {
    const from = start[i] as number;
    const to = start[i + 1] as number;
    if (to - from > 1) ordered.subarray(from, to).sort(byName);
  }

  const tree: FlameTree = { names, name: [], depth: [], total: profiles.map(() => []), self: profiles.map(() => []) };
  const pending: number[] = [0];
  const pendingDepth: number[] = [0];
  while (pending.length > 0) {
    const node = pending.pop() as number;
    const depth = pendingDepth.pop() as number;
    tree.name.push(nodeName[node] as number);
    tree.depth.push(depth);
    for (let q = 0; q < profiles.length; q++) {
      (tree.total[q] as number[]).push((total[q] as number[])[node] as number);
      (tree.self[q] as number[]).push((self[q] as number[])[node] as number);
    }
    for (let c = (start[node + 1] as number) - 1; c >= (start[node] as number); c--) {
      pending.push(ordered[c] as number);
      pendingDepth.push(depth + 1);
    }
  }
  return tree;
}
