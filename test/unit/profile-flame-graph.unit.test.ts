import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffFlameGraphHtml, flameGraphHtml, type Profile, parseCollapsed } from '#domain/profile/index.ts';
import { repoRoot } from '#test/support/paths.ts';

const fixture = (name: string) => readFileSync(join(repoRoot, 'test/fixtures/profiles', name), 'utf8');
const runA = parseCollapsed(fixture('cpu-hot-a.collapsed'));
const runB = parseCollapsed(fixture('cpu-hot-b.collapsed'));

const HOSTILE = '</script><script>alert(1)</script><!-- \u2028\u2029 & > "\'';

interface FlameData {
  kind: 'flame';
  samples: number;
  names: string[];
  nodes: number[];
}
interface DiffData {
  kind: 'diff';
  base: { samples: number };
  target: { samples: number };
  names: string[];
  nodes: number[];
  frames: { name: string; base: number; target: number; delta: number }[];
}

/** The JSON of `<script type="application/json" id="profile-data">`, found the way a browser ends a script. */
function embedded<T>(html: string): T {
  const open = '<script type="application/json" id="profile-data">';
  const start = html.indexOf(open);
  expect(start).toBeGreaterThan(-1);
  const end = html.indexOf('</script', start);
  return JSON.parse(html.slice(start + open.length, end)) as T;
}

/** Self samples per frame name from the flat nodes (stride values per node, name index first). */
function selfByName(data: { names: string[]; nodes: number[] }, stride: number, selfAt: number): Map<string, number> {
  const self = new Map<string, number>();
  for (let i = 0; i < data.nodes.length; i += stride) {
    const name = data.names[data.nodes[i] as number] ?? 'all';
    self.set(name, (self.get(name) ?? 0) + (data.nodes[i + selfAt] as number));
  }
  return self;
}

describe('flameGraphHtml', () => {
  const html = flameGraphHtml(runA, { title: 'Run A', subtitle: 'cluster prod, 5 s CPU' });

  it('marks the page, titles it, and embeds JSON that parses back to the merged tree', () => {
    const data = embedded<FlameData>(html);

    expect(html).toMatch(/<meta name="flink-profiler-profile" content="flame">/);
    expect(html).toContain('<h1>Run A</h1>');
    expect(html).toContain('<p>cluster prod, 5 s CPU</p>');
    expect(data.kind).toBe('flame');
    expect(data.samples).toBe(runA.samples);
    // Root first: [name -1, depth 0, total = all samples].
    expect(data.nodes.slice(0, 3)).toEqual([-1, 0, runA.samples]);
    // Threads are merged away: the three workers' Thread.run are one node at depth 1.
    const depth1 = [];
    for (let i = 0; i < data.nodes.length; i += 3) {
      if (data.nodes[i + 1] === 1) depth1.push(data.names[data.nodes[i] as number]);
    }
    expect(depth1).toEqual(['Busy.main', 'java/lang/Thread.run']);
    expect(data.names).not.toContain('Sink: Print (2/2)#0');
  });

  it('merges stacks into one tree, children by name, whatever order the stacks come in', () => {
    const profile = parseCollapsed(
      '[t1 tid=1];a;b;c 1\n[t2 tid=2];a;b 2\nx;b 3\n[t1 tid=1];a;d 4\n[t3 tid=3];a;b;c 5\n',
    );

    const data = embedded<FlameData>(flameGraphHtml(profile, { title: 't' }));

    const rows = [];
    for (let i = 0; i < data.nodes.length; i += 3) {
      rows.push([data.names[data.nodes[i] as number] ?? 'all', data.nodes[i + 1], data.nodes[i + 2]]);
    }
    expect(rows).toEqual([
      ['all', 0, 15],
      ['a', 1, 12],
      ['b', 2, 8],
      ['c', 3, 6],
      ['d', 2, 4],
      ['x', 1, 3],
      ['b', 2, 3],
    ]);
  });

  it('draws in an inline script: no external fetches, no eval, no innerHTML', () => {
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link\b/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/\beval\(|new Function|innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(html).not.toMatch(/localStorage|sessionStorage|document\.cookie/);
  });

  it('keeps a hostile frame name and title inert', () => {
    const hostile: Profile = { samples: 3, stacks: [{ thread: HOSTILE, frames: ['main', HOSTILE], count: 3 }] };

    const page = flameGraphHtml(hostile, { title: `<img src=x onerror=alert(1)>${HOSTILE}`, subtitle: HOSTILE });

    expect(page).not.toContain('<script>alert(1)');
    expect(page).not.toContain('<img');
    expect(page).not.toContain('<!--');
    const from = page.indexOf('id="profile-data">') + 'id="profile-data">'.length;
    const json = page.slice(from, page.indexOf('</script', from));
    expect(json).not.toMatch(/[\u2028\u2029<>&]/);
    expect(json).toContain('\\u003c/script\\u003e');
    // The two script elements of the page end, nothing else does.
    expect(page.match(/<\/script/g)).toHaveLength(2);
    expect(embedded<FlameData>(page).names).toEqual(['main', HOSTILE]);
  });

  it('grows with the tree in the JSON, not in markup', () => {
    const wide: Profile = {
      samples: 2000,
      stacks: Array.from({ length: 2000 }, (_, i) => ({ thread: null, frames: ['root', `leaf${i}`], count: 1 })),
    };

    const small = flameGraphHtml(runA, { title: 't' });
    const large = flameGraphHtml(wide, { title: 't' });

    expect(large.split('<').length).toBe(small.split('<').length);
    expect(embedded<FlameData>(large).nodes).toHaveLength((2000 + 2) * 3);
  });
});

describe('frames too narrow to draw', () => {
  it('are left out with what is above them, in every profile drawn; their samples stay in the parents', () => {
    const profile = parseCollapsed('main;work;hot 200000\nmain;work;rare;deeper 5\nmain;work;seen 20\n');
    const flame = embedded<{ names: string[]; nodes: number[]; samples: number }>(
      flameGraphHtml(profile, { title: 't' }),
    );
    expect(flame.names).toEqual(expect.arrayContaining(['main', 'work', 'hot', 'seen']));
    expect(flame.names).not.toContain('rare');
    expect(flame.names).not.toContain('deeper');
    expect(flame.nodes[2]).toBe(200_025);

    // In a diff, a frame visible in either profile is drawn.
    const base = parseCollapsed('main;work;rare 100\n');
    const diff = embedded<{ names: string[] }>(diffFlameGraphHtml(base, profile, { title: 't' }));
    expect(diff.names).toContain('rare');
    expect(diff.names).not.toContain('deeper');
  });
});

describe('diffFlameGraphHtml on the two real runs', () => {
  const html = diffFlameGraphHtml(runA, runB, { title: 'A → B', subtitle: 'hotA → hotB' });
  const data = embedded<DiffData>(html);

  it('marks the page as a diff and says which colour means which way', () => {
    expect(html).toMatch(/<meta name="flink-profiler-profile" content="diff">/);
    expect(html).toMatch(/red[^<]*grew/);
    expect(html).toMatch(/blue[^<]*shrank/);
    expect(html).toMatch(/grey[^<]*unchanged/);
  });

  it('embeds which frames grew and shrank, normalised by each run', () => {
    const hotA = data.frames.find((frame) => frame.name === 'Busy.hotA');
    const hotB = data.frames.find((frame) => frame.name === 'Busy.hotB');

    expect(hotB?.delta).toBeGreaterThan(0);
    expect(hotA?.delta).toBeLessThan(0);
    expect(data.base.samples).toBe(runA.samples);
    expect(data.target.samples).toBe(runB.samples);
  });

  it("carries both runs' counts per node: self sums per name match each run's leaves", () => {
    const leaves = (profile: Profile, name: string) =>
      profile.stacks.filter((s) => s.frames.at(-1) === name).reduce((n, s) => n + s.count, 0);

    const targetSelf = selfByName(data, 6, 3);
    const baseSelf = selfByName(data, 6, 5);

    for (const name of ['Busy.hotA', 'Busy.hotB', 'Busy.hotMain']) {
      expect(targetSelf.get(name)).toBe(leaves(runB, name));
      expect(baseSelf.get(name)).toBe(leaves(runA, name));
    }
    expect(data.nodes.slice(0, 6)).toEqual([-1, 0, runB.samples, 0, runA.samples, 0]);
  });

  it('keeps frames that are only in the base', () => {
    const baseOnly = runA.stacks.flatMap((s) => s.frames).filter((f) => !runB.stacks.some((s) => s.frames.includes(f)));

    expect(baseOnly.length).toBeGreaterThan(0);
    for (const name of baseOnly) expect(data.names).toContain(name);
  });

  it('keeps a hostile frame name inert', () => {
    const base: Profile = { samples: 1, stacks: [{ thread: null, frames: [HOSTILE], count: 1 }] };

    const page = diffFlameGraphHtml(base, runB, { title: HOSTILE });

    expect(page).not.toContain('<script>alert(1)');
    expect(page.match(/<\/script/g)).toHaveLength(2);
    expect(embedded<DiffData>(page).frames.find((f) => f.name === HOSTILE)?.delta).toBe(-1);
  });
});
