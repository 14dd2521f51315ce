import { describe, expect, it } from 'vitest';
import {
  compareCandidates,
  directionOf,
  filterFrames,
  firingsOf,
  formatChange,
  formatShare,
  frameChanges,
  operatorBreakdown,
  orderDiff,
  RUNTIME_THREADS,
  type RunSummary,
  shortFrameName,
} from '../../web/src/profiles.ts';

/** A run with the fields these helpers read: by default a FINISHED CPU run of TaskManager tm-1 of prod. */
function run(fields: Partial<RunSummary> & { id: string }): RunSummary {
  return {
    cluster: 'prod',
    node: 'tm-1',
    role: 'taskmanager',
    status: 'FINISHED',
    mode: 'CPU',
    triggerTime: 1_000,
    groupId: null,
    ...fields,
  };
}

describe('web UI: shares and changes as text', () => {
  it('writes fractions as percentages and changes with an arrow and a sign', () => {
    expect(formatShare(0.1234)).toBe('12.3 %');
    expect(formatShare(0)).toBe('0.0 %');
    expect(formatChange(0.123)).toBe('▲ +12.3 %');
    expect(formatChange(-0.041)).toBe('▼ −4.1 %');
    expect(formatChange(0.0001)).toBe('0.0 %');
    expect(directionOf(0.01)).toBe('grew');
    expect(directionOf(-0.01)).toBe('shrank');
    expect(directionOf(0.0004)).toBe('same');
  });

  it('shortens method names to their class and method', () => {
    expect(shortFrameName('org/apache/flink/streaming/runtime/tasks/StreamTask.invoke')).toBe('StreamTask.invoke');
    expect(shortFrameName('java.util.concurrent.ThreadPoolExecutor.runWorker')).toBe('ThreadPoolExecutor.runWorker');
    expect(shortFrameName('Thread.run')).toBe('Thread.run');
    expect(shortFrameName('[unknown]')).toBe('[unknown]');
    expect(shortFrameName('<script>alert(1)</script>')).toBe('<script>alert(1)</script>');
    expect(shortFrameName('libc.so.6 [k] __memcpy')).toBe('libc.so.6 [k] __memcpy');
  });
});

describe('web UI: the hottest methods filter', () => {
  const frames = [
    { name: 'fakeflink/FakeFlinkWorkload.fakeFlinkHotLoop', self: 10, total: 10 },
    { name: 'java/lang/Thread.run', self: 1, total: 11 },
    { name: 'a.b(c)*.d', self: 1, total: 1 },
  ];

  it('keeps the frames containing the text, ignoring case; empty text keeps all', () => {
    expect(filterFrames(frames, 'hotloop').map((f) => f.name)).toEqual([frames[0]?.name]);
    expect(filterFrames(frames, '  THREAD ').map((f) => f.name)).toEqual(['java/lang/Thread.run']);
    expect(filterFrames(frames, '')).toEqual(frames);
  });

  it('reads the text as text, never as a pattern', () => {
    expect(filterFrames(frames, '(c)*').map((f) => f.name)).toEqual(['a.b(c)*.d']);
    expect(filterFrames(frames, '.*')).toEqual([]);
    expect(filterFrames(frames, '[')).toEqual([]);
  });
});

describe('web UI: operator breakdown', () => {
  it("sums threads by operator chain, largest first; threads of no task are the runtime's", () => {
    const rows = operatorBreakdown([
      { name: 'Source: Orders -> Map (1/2)#0', operator: 'Source: Orders -> Map', samples: 30 },
      { name: 'Source: Orders -> Map (2/2)#0', operator: 'Source: Orders -> Map', samples: 20 },
      { name: 'Window(Tumbling) -> Sink (1/1)#0', operator: 'Window(Tumbling) -> Sink', samples: 40 },
      { name: 'flink-akka.actor.default-dispatcher-4', operator: null, samples: 6 },
      { name: 'GC Thread#0', operator: null, samples: 4 },
    ]);
    expect(rows).toEqual([
      { operator: 'Source: Orders -> Map', threads: 2, samples: 50, share: 0.5 },
      { operator: 'Window(Tumbling) -> Sink', threads: 1, samples: 40, share: 0.4 },
      { operator: RUNTIME_THREADS, threads: 2, samples: 10, share: 0.1 },
    ]);
    expect(operatorBreakdown([])).toEqual([]);
  });
});

describe('web UI: a diff as rows', () => {
  it('lists what grew, most first, then what shrank, most first, and leaves out what did not change', () => {
    const rows = orderDiff([
      { name: 'shrankALot', base: 0.3, target: 0.1, delta: -0.2 },
      { name: 'grewALittle', base: 0.1, target: 0.12, delta: 0.02 },
      { name: 'same', base: 0.1, target: 0.1, delta: 0 },
      { name: 'grewALot', base: 0.1, target: 0.4, delta: 0.3 },
      { name: 'shrankALittle', base: 0.1, target: 0.09, delta: -0.01 },
    ]);
    expect(rows.map((r) => r.name)).toEqual(['grewALot', 'grewALittle', 'shrankALot', 'shrankALittle']);
  });

  it('keeps at most `limit` of each', () => {
    const frames = Array.from({ length: 10 }, (_, i) => ({ name: `m${i}`, base: 0, target: 0, delta: (i - 5) / 100 }));
    expect(orderDiff(frames, 2).map((r) => r.name)).toEqual(['m9', 'm8', 'm0', 'm1']);
  });
});

describe('web UI: the runs to compare with', () => {
  it("offers the target's earlier FINISHED runs of the same mode first, then the others of that mode, newest first", () => {
    const current = run({ id: 'now', triggerTime: 5_000 });
    const runs = [
      run({ id: 'earlier-1', triggerTime: 1_000 }),
      run({ id: 'earlier-3', triggerTime: 3_000 }),
      run({ id: 'later-same-target', triggerTime: 9_000 }),
      run({ id: 'other-node', node: 'tm-2', triggerTime: 4_000 }),
      run({ id: 'other-cluster', cluster: 'staging', triggerTime: 2_000 }),
      run({ id: 'other-mode', mode: 'WALL', triggerTime: 2_000 }),
      run({ id: 'failed', status: 'FAILED', triggerTime: 2_000 }),
      run({ id: 'running', status: 'RUNNING', triggerTime: 2_000 }),
      current,
      run({ id: 'earlier-3', triggerTime: 3_000 }),
    ];
    const { earlier, others } = compareCandidates(current, runs);
    expect(earlier.map((r) => r.id)).toEqual(['earlier-3', 'earlier-1']);
    expect(others.map((r) => r.id)).toEqual(['later-same-target', 'other-node', 'other-cluster']);
  });
});

describe("web UI: a rule's firings", () => {
  it('groups runs by their fan-out group, newest firing first, runs in node order', () => {
    const firings = firingsOf([
      run({ id: 'b2', groupId: 'g2', node: 'tm-2', triggerTime: 2_001 }),
      run({ id: 'b1', groupId: 'g2', node: 'tm-1', triggerTime: 2_000 }),
      run({ id: 'lonely', triggerTime: 1_500 }),
      run({ id: 'a1', groupId: 'g1', node: 'tm-1', triggerTime: 1_000, mode: 'WALL' }),
    ]);
    expect(firings.map((f) => [f.id, f.groupId, f.firedAt, f.mode, f.runs.map((r) => r.id)])).toEqual([
      ['g2', 'g2', 2_000, 'CPU', ['b1', 'b2']],
      ['lonely', null, 1_500, 'CPU', ['lonely']],
      ['g1', 'g1', 1_000, 'WALL', ['a1']],
    ]);
  });

  it("compares each method's share of its own profile's samples, largest change first, at most `top`", () => {
    const previous = {
      samples: 1_000,
      frames: [
        { name: 'parse', self: 400, total: 400 },
        { name: 'serialize', self: 200, total: 300 },
        { name: 'steady', self: 100, total: 100 },
        { name: 'gone', self: 50, total: 50 },
      ],
    };
    const current = {
      samples: 2_000,
      frames: [
        { name: 'serialize', self: 900, total: 1_000 },
        { name: 'parse', self: 400, total: 400 },
        { name: 'steady', self: 200, total: 200 },
        { name: 'new', self: 60, total: 60 },
      ],
    };
    const changes = frameChanges(current, previous, 3);
    expect(changes.map((c) => c.name)).toEqual(['serialize', 'parse', 'gone']);
    expect(changes[0]).toEqual({ name: 'serialize', before: 0.2, after: 0.45, delta: expect.closeTo(0.25, 10) });
    expect(changes[1]?.delta).toBeCloseTo(-0.2, 10);
    expect(changes[2]).toEqual({ name: 'gone', before: 0.05, after: 0, delta: -0.05 });
    // 'steady' kept its 10 %: no change to show.
    expect(frameChanges(current, previous, 10).map((c) => c.name)).not.toContain('steady');
  });
});
