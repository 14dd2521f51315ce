import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  diffFrames,
  hottestFrames,
  operatorOf,
  type Profile,
  parseCollapsed,
  threadBreakdown,
} from '#domain/profile/index.ts';
import { repoRoot } from '#test/support/paths.ts';

const fixture = (name: string) => readFileSync(join(repoRoot, 'test/fixtures/profiles', name), 'utf8');
const textA = fixture('cpu-hot-a.collapsed');
const textB = fixture('cpu-hot-b.collapsed');
const runA = parseCollapsed(textA);
const runB = parseCollapsed(textB);

/** From the raw text, not through the parser: the samples of lines whose leaf frame is `method` with any suffix. */
function rawSelf(text: string, method: string): number {
  let self = 0;
  for (const line of text.split('\n')) {
    const match = /^(.*) (\d+)$/.exec(line);
    if (match && new RegExp(`(^|;)${method.replace(/[.$]/g, '\\$&')}(_\\[[jik01]\\])?$`).test(match[1] as string)) {
      self += Number(match[2]);
    }
  }
  return self;
}
function rawSamples(text: string): number {
  return text
    .split('\n')
    .filter(Boolean)
    .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
const scaled = (profile: Profile, factor: number): Profile => ({
  samples: profile.samples * factor,
  stacks: profile.stacks.map((stack) => ({ ...stack, count: stack.count * factor })),
});

describe('hottestFrames', () => {
  it('counts self at the leaf and total once per stack, even when the frame recurs in it', () => {
    const profile = parseCollapsed('a;b;a;b 3\na;c 2\nb 1\nc;a 4\n');

    expect(hottestFrames(profile, 10)).toEqual({
      samples: 10,
      frames: [
        { name: 'a', self: 4, total: 9 },
        { name: 'b', self: 4, total: 4 },
        { name: 'c', self: 2, total: 6 },
      ],
    });
  });

  it('orders by self, then total, then name, and keeps `limit` frames', () => {
    // self: y 2, w 2, z 2, x 1; total: y 3, w 2, z 2, x 2
    const profile = parseCollapsed('r;z 2\nr;y 2\nq;y;x 1\nq;x;w 1\nq;w 1\n');

    expect(hottestFrames(profile, 4).frames.map((frame) => frame.name)).toEqual(['y', 'w', 'z', 'x']);
    expect(hottestFrames(profile, 0).frames).toEqual([]);
  });

  it('finds the hot method of each real run', () => {
    const a = hottestFrames(runA, 3);
    const b = hottestFrames(runB, 3);

    expect(a.frames[0]).toMatchObject({ name: 'Busy.hotA', self: rawSelf(textA, 'Busy.hotA') });
    expect(b.frames[0]).toMatchObject({ name: 'Busy.hotB', self: rawSelf(textB, 'Busy.hotB') });
    expect(a.samples).toBe(rawSamples(textA));
    // Thread.run is under every worker stack: its total is all samples but main's.
    const all = hottestFrames(runA, Number.POSITIVE_INFINITY).frames;
    const mainSamples = runA.stacks.filter((s) => s.thread === 'main').reduce((n, s) => n + s.count, 0);
    expect(all.find((frame) => frame.name === 'java/lang/Thread.run')?.total).toBe(runA.samples - mainSamples);
    expect(all.find((frame) => frame.name === 'Busy.recurse')?.self).toBe(rawSelf(textA, 'Busy.recurse'));
  });
});

describe('diffFrames on the two real runs', () => {
  it('says hotB grew and hotA shrank, as self fractions of each run', () => {
    const { frames } = diffFrames(runA, runB, 10);

    const a = frames.find((frame) => frame.name === 'Busy.hotA');
    const b = frames.find((frame) => frame.name === 'Busy.hotB');
    expect(a?.base).toBeCloseTo(rawSelf(textA, 'Busy.hotA') / rawSamples(textA), 12);
    expect(a?.target).toBeCloseTo(rawSelf(textB, 'Busy.hotA') / rawSamples(textB), 12);
    expect(b?.base).toBeCloseTo(rawSelf(textA, 'Busy.hotB') / rawSamples(textA), 12);
    expect(b?.target).toBeCloseTo(rawSelf(textB, 'Busy.hotB') / rawSamples(textB), 12);
    expect(a?.delta).toBeLessThan(-0.3);
    expect(b?.delta).toBeGreaterThan(0.3);
    expect(new Set(frames.slice(0, 2).map((frame) => frame.name))).toEqual(new Set(['Busy.hotA', 'Busy.hotB']));
    for (const frame of frames) expect(frame.delta).toBeCloseTo(frame.target - frame.base, 15);
  });

  it('normalises by each profile: the target ×3 gives the same fractions', () => {
    expect(diffFrames(runA, scaled(runB, 3), 50)).toEqual(diffFrames(runA, runB, 50));
    expect(diffFrames(scaled(runA, 3), runB, 50)).toEqual(diffFrames(runA, runB, 50));
  });

  it('leaves out unchanged frames: a run against itself ×3 has none', () => {
    expect(diffFrames(runA, scaled(runA, 3), 50)).toEqual({ frames: [] });
  });

  it('orders by |delta| desc, then name; 0 samples give fractions of 0', () => {
    const base = parseCollapsed('a 2\nb 2\n');
    const target = parseCollapsed('a 1\nb 1\nc 2\n');

    expect(diffFrames(base, target, 10).frames).toEqual([
      { name: 'c', base: 0, target: 0.5, delta: 0.5 },
      { name: 'a', base: 0.5, target: 0.25, delta: -0.25 },
      { name: 'b', base: 0.5, target: 0.25, delta: -0.25 },
    ]);
    expect(diffFrames(base, target, 1).frames.map((frame) => frame.name)).toEqual(['c']);
    expect(diffFrames({ samples: 0, stacks: [] }, base, 10).frames).toEqual([
      { name: 'a', base: 0, target: 0.5, delta: 0.5 },
      { name: 'b', base: 0, target: 0.5, delta: 0.5 },
    ]);
  });
});

describe('threadBreakdown', () => {
  it('sums the samples of each real thread and names its operator', () => {
    const expected = new Map<string, number>();
    for (const line of textA.split('\n').filter(Boolean)) {
      const thread = /^\[(.*) tid=\d+\];/.exec(line)?.[1] as string;
      expected.set(thread, (expected.get(thread) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
    }

    const { threads } = threadBreakdown(runA);

    expect(new Map(threads.map((t) => [t.name, t.samples]))).toEqual(expected);
    expect(threads.map((t) => t.samples)).toEqual([...threads.map((t) => t.samples)].sort((x, y) => y - x));
    expect(threads.find((t) => t.name === 'main')?.operator).toBeNull();
    expect(threads.find((t) => t.name === 'Sink: Print (2/2)#0')?.operator).toBe('Sink: Print');
    expect(threads.filter((t) => t.operator === 'Source: Orders -> Map')).toHaveLength(2);
  });

  it('puts stacks without a thread under "(no thread)"; ties by name', () => {
    const profile = parseCollapsed('a 2\n[b tid=1];x 3\n[Map (1/1)#0 tid=2];x 3\n');

    expect(threadBreakdown(profile)).toEqual({
      threads: [
        { name: 'Map (1/1)#0', operator: 'Map', samples: 3 },
        { name: 'b', operator: null, samples: 3 },
        { name: '(no thread)', operator: null, samples: 2 },
      ],
    });
  });
});

describe('operatorOf', () => {
  it.each([
    ['Source: Orders -> Map (1/4)#0', 'Source: Orders -> Map'],
    ['Source: Orders -> Map (1/2)#0', 'Source: Orders -> Map'],
    ['Sink: Print (2/2)#0', 'Sink: Print'],
    ['Map (2/4)', 'Map'],
    [
      'Window(TumblingEventTimeWindows(60000), EventTimeTrigger, Sum) (3/8)#12',
      'Window(TumblingEventTimeWindows(60000), EventTimeTrigger, Sum)',
    ],
    ['Join (1/1) (4/4)#0', 'Join (1/1)'],
    ['flink-akka.actor.default-dispatcher-5', null],
    ['Flink Netty Server (0) Thread 0', null],
    ['GC Thread#0', null],
    ['C2 CompilerThread0', null],
    ['main', null],
    ['Map (5/4)#0', null],
    ['Map (0/4)#0', null],
    ['Map (1/0)', null],
    ['Map (-1/4)', null],
    ['Map (1/4)#', null],
    ['Map (1/4)#x', null],
    ['Map (1/4) ', null],
    [' (1/4)', null],
    ['(1/4)#0', null],
    ['Map(1/4)', null],
  ])('%j → %j', (thread, operator) => {
    expect(operatorOf(thread)).toBe(operator);
  });

  it('answers at once on a long hostile name', () => {
    const started = performance.now();

    expect(operatorOf(`${' ('.repeat(50_000)}1/1`)).toBeNull();
    expect(performance.now() - started).toBeLessThan(500);
  });
});
