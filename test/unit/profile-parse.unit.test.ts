import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  mergeProfiles,
  PROFILE_LIMITS,
  type Profile,
  ProfileDataError,
  parseCollapsed,
  toCollapsed,
} from '#domain/profile/index.ts';
import { repoRoot } from '#test/support/paths.ts';

const fixture = (name: string) => readFileSync(join(repoRoot, 'test/fixtures/profiles', name), 'utf8');
const hotA = fixture('cpu-hot-a.collapsed');
const hotB = fixture('cpu-hot-b.collapsed');

/** The counts of a collapsed text read the simplest way: the digits after each line's last space. */
function countsOf(text: string): number[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
}
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

function rejection(text: string): ProfileDataError {
  try {
    parseCollapsed(text);
  } catch (error) {
    if (error instanceof ProfileDataError) return error;
    throw error;
  }
  throw new Error('the text was accepted');
}

describe('parseCollapsed on real async-profiler output (converter, --threads --norm)', () => {
  it.each([
    ['cpu-hot-a.collapsed', hotA],
    ['cpu-hot-b.collapsed', hotB],
  ])('%s: samples are the sum of the counts, one stack per line', (_name, text) => {
    const profile = parseCollapsed(text);

    expect(profile.samples).toBe(sum(countsOf(text)));
    expect(sum(profile.stacks.map((stack) => stack.count))).toBe(profile.samples);
    // Every line of the fixture is a distinct stack (the tids differ from run to run, not within one).
    expect(profile.stacks).toHaveLength(countsOf(text).length);
  });

  it('takes the thread from the thread frame, without tid=', () => {
    const threads = new Set(parseCollapsed(hotA).stacks.map((stack) => stack.thread));

    expect(threads).toEqual(
      new Set(['Source: Orders -> Map (1/2)#0', 'Source: Orders -> Map (2/2)#0', 'Sink: Print (2/2)#0', 'main']),
    );
  });

  it("strips the converter's frame-type suffixes and keeps the frames root → leaf", () => {
    const profile = parseCollapsed(hotA);
    const frames = profile.stacks.flatMap((stack) => stack.frames);

    expect(hotA).toMatch(/_\[j\]/);
    expect(hotA).toMatch(/_\[i\]/);
    expect(hotA).toMatch(/_\[k\]/);
    expect(hotA).toMatch(/_\[0\]/);
    expect(frames.filter((frame) => /_\[[jik01]\]$/.test(frame))).toEqual([]);
    const hot = profile.stacks.find(
      (stack) => stack.frames.at(-1) === 'Busy.hotA' && stack.thread === 'Sink: Print (2/2)#0',
    );
    expect(hot?.frames).toEqual([
      'java/lang/Thread.run',
      'Busy$$Lambda$1.run',
      'Busy.lambda$main$0',
      'Busy.work',
      'Busy.recurse',
      'Busy.recurse',
      'Busy.recurse',
      'Busy.recurse',
      'Busy.hotA',
    ]);
    // Native frames carry no suffix and stay as they are.
    expect(frames).toContain('InterpreterRuntime::frequency_counter_overflow');
  });

  it("accepts asprof's own collapsed output, without thread frames", () => {
    const profile = parseCollapsed('java/lang/Thread.run;Busy.hot 197\njava/lang/Thread.run;Busy.cold 3\n');

    expect(profile).toEqual({
      samples: 200,
      stacks: [
        { thread: null, frames: ['java/lang/Thread.run', 'Busy.hot'], count: 197 },
        { thread: null, frames: ['java/lang/Thread.run', 'Busy.cold'], count: 3 },
      ],
    });
  });

  it('splits the count on the last space, so names may contain spaces; CRLF and blank lines are fine', () => {
    const profile = parseCollapsed(
      '\n[Flink Netty Server (0) Thread 0 tid=77];a b;c  d_[j] 5\r\n\r\n   \n[Flink Netty Server (0) Thread 0 tid=78];a b;c  d_[i] 2\n',
    );

    expect(profile.stacks).toEqual([{ thread: 'Flink Netty Server (0) Thread 0', frames: ['a b', 'c  d'], count: 7 }]);
  });

  it('strips only the exact suffixes, only at the end of a frame, once', () => {
    const profile = parseCollapsed('A_[x];B_[j]C;D_[J];E_[j]_[i];F_[1];G_[01];[H] 1\n');

    expect(profile.stacks[0]?.frames).toEqual(['A_[x]', 'B_[j]C', 'D_[J]', 'E_[j]', 'F', 'G_[01]', '[H]']);
  });

  it('reads a bracketed first frame as a thread only when frames follow it', () => {
    const profile = parseCollapsed('[unknown_Java] 3\n[GC Thread#0 tid=5];[GC_active] 2\n[odd tid=x];f 1\n');

    expect(profile.stacks).toEqual([
      { thread: null, frames: ['[unknown_Java]'], count: 3 },
      { thread: 'GC Thread#0', frames: ['[GC_active]'], count: 2 },
      { thread: 'odd tid=x', frames: ['f'], count: 1 },
    ]);
  });

  it('sums duplicate stacks (same thread, same frames after normalising)', () => {
    const profile = parseCollapsed('[main tid=1];a_[j];b 2\n[main tid=2];a_[i];b 3\n[other tid=1];a;b 4\na;b 5\n');

    expect(profile.samples).toBe(14);
    expect(profile.stacks).toEqual([
      { thread: 'main', frames: ['a', 'b'], count: 5 },
      { thread: 'other', frames: ['a', 'b'], count: 4 },
      { thread: null, frames: ['a', 'b'], count: 5 },
    ]);
  });

  it('gives an empty profile for empty text', () => {
    expect(parseCollapsed('')).toEqual({ samples: 0, stacks: [] });
    expect(parseCollapsed('\n\n')).toEqual({ samples: 0, stacks: [] });
  });
});

describe('parseCollapsed rejects hostile input, naming the line and the rule', () => {
  it.each([
    ['a line without a count', 'a;b 1\na;b\n', 2, /no count/],
    ['a count of zero', 'a 0', 1, /count "0" is not a positive integer/],
    ['a negative count', 'a -3', 1, /not a positive integer/],
    ['a fractional count', 'a 1.5', 1, /not a positive integer/],
    ['a count in hex', 'a 0x10', 1, /not a positive integer/],
    ['a count that is not a number', 'a;b lots', 1, /count "lots" is not a positive integer/],
    ['a count beyond the safe integers', 'a 9007199254740993', 1, /not a positive integer/],
    ['a trailing space (no count after it)', 'a 3 ', 1, /count "" is not a positive integer/],
    ['an empty frame in the middle', 'ok 1\n\na;;b 1', 3, /frame 2 is empty/],
    ['an empty first frame', ';a 1', 1, /frame 1 is empty/],
    ['an empty leaf frame', 'a; 1', 1, /frame 2 is empty/],
    ['only a count', ' 4', 1, /frame 1 is empty/],
    ['a frame that is only a type suffix', 'a;_[j] 1', 1, /frame 2 is empty once its type suffix is cut/],
    [
      'a frame over the length limit',
      `a;${'x'.repeat(PROFILE_LIMITS.maxFrameLength + 1)} 1`,
      1,
      /frame 2 is longer than 4096/,
    ],
    [
      'a stack over the depth limit',
      `[t tid=1];${Array.from({ length: PROFILE_LIMITS.maxDepth + 1 }, (_, i) => `f${i}`).join(';')} 1`,
      1,
      /deeper than 2048 frames/,
    ],
    ['a total beyond Number.MAX_SAFE_INTEGER', `a ${Number.MAX_SAFE_INTEGER}\nb 1`, 2, /total of the counts is beyond/],
  ])('%s', (_rule, text, line, message) => {
    const error = rejection(text);

    expect(error.message).toMatch(message);
    expect(error.line).toBe(line);
    expect(error.message).toMatch(new RegExp(`^line ${line}: `));
  });

  it('accepts a frame of exactly the length limit and a stack of exactly the depth limit', () => {
    const deep = Array.from({ length: PROFILE_LIMITS.maxDepth }, (_, i) => `f${i}`).join(';');
    const profile = parseCollapsed(`[t tid=1];${deep} 1\n${'y'.repeat(PROFILE_LIMITS.maxFrameLength)} 1\n`);

    expect(profile.stacks.map((stack) => stack.frames.length)).toEqual([PROFILE_LIMITS.maxDepth, 1]);
  });

  it('rejects more stacks than the limit, at the first line over it', () => {
    const text = 'a;b 1\n'.repeat(PROFILE_LIMITS.maxStacks + 1);

    const error = rejection(text);

    expect(error.message).toMatch(/more than 1000000 stacks/);
    expect(error.line).toBe(PROFILE_LIMITS.maxStacks + 1);
  });

  it('rejects text over the size limit, counted in UTF-8 bytes', () => {
    expect(rejection('x'.repeat(PROFILE_LIMITS.maxBytes + 1)).message).toMatch(/larger than 67108864 bytes/);
    // Half as many characters, each two bytes in UTF-8.
    const wide = 'é'.repeat(PROFILE_LIMITS.maxBytes / 2 + 1);
    expect(wide.length).toBeLessThan(PROFILE_LIMITS.maxBytes);
    expect(rejection(wide).message).toMatch(/larger than 67108864 bytes/);
  });

  it('is a ValidationError (the HTTP layer answers 400) and quotes at most 40 characters of the input', () => {
    const error = rejection(`a ${'9'.repeat(5000)}`);

    expect(error.status).toBe(400);
    expect(error.message.length).toBeLessThan(120);
  });
});

describe('toCollapsed', () => {
  it('round-trips the real fixtures with threads', () => {
    const profile = parseCollapsed(hotA);

    const text = toCollapsed(profile, { threads: true });

    expect(parseCollapsed(text)).toEqual(profile);
    expect(text.split('\n')[0]).toMatch(/^\[[^\]]+\];java\/lang\/Thread\.run;/);
    expect(text).toMatch(/^(\S.* [1-9]\d*\n)+$/);
  });

  it('without threads, sums the stacks that become equal', () => {
    const profile = parseCollapsed(hotA);
    const byFrames = new Map<string, number>();
    for (const stack of profile.stacks) {
      const key = stack.frames.join(';');
      byFrames.set(key, (byFrames.get(key) ?? 0) + stack.count);
    }

    const text = toCollapsed(profile);

    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(byFrames.size);
    expect(byFrames.size).toBeLessThan(profile.stacks.length);
    expect(
      new Map(lines.map((line) => [line.slice(0, line.lastIndexOf(' ')), Number(line.split(' ').at(-1))])),
    ).toEqual(byFrames);
    expect(text).not.toContain('[');
  });

  it('writes an empty profile as empty text', () => {
    expect(toCollapsed({ samples: 0, stacks: [] }, { threads: true })).toBe('');
  });
});

describe('mergeProfiles', () => {
  const a = parseCollapsed(hotA);
  const b = parseCollapsed(hotB);

  it('sums equal (thread, frames) stacks across profiles', () => {
    const merged = mergeProfiles([a, b]);

    expect(merged.samples).toBe(a.samples + b.samples);
    const count = (profile: Profile, thread: string, leaf: string) =>
      sum(profile.stacks.filter((s) => s.thread === thread && s.frames.at(-1) === leaf).map((s) => s.count));
    for (const thread of ['Sink: Print (2/2)#0', 'main']) {
      for (const leaf of ['Busy.hotA', 'Busy.hotB', 'Busy.hotMain']) {
        expect(count(merged, thread, leaf)).toBe(count(a, thread, leaf) + count(b, thread, leaf));
      }
    }
    const keys = merged.stacks.map((s) => `${s.thread}|${s.frames.join(';')}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('of a profile with itself doubles every count and adds no stack', () => {
    const merged = mergeProfiles([a, a]);

    expect(merged.stacks).toEqual(a.stacks.map((stack) => ({ ...stack, count: stack.count * 2 })));
  });

  it('keeps stacks apart that differ only by thread, and leaves its inputs alone', () => {
    const x = parseCollapsed('[t1 tid=1];a;b 1\n');
    const y = parseCollapsed('[t2 tid=1];a;b 2\na;b 3\n[t1 tid=9];a;b 4\n');

    expect(mergeProfiles([x, y])).toEqual({
      samples: 10,
      stacks: [
        { thread: 't1', frames: ['a', 'b'], count: 5 },
        { thread: 't2', frames: ['a', 'b'], count: 2 },
        { thread: null, frames: ['a', 'b'], count: 3 },
      ],
    });
    expect(x.stacks[0]?.count).toBe(1);
  });

  it('of nothing is the empty profile; past the safe integers it throws', () => {
    expect(mergeProfiles([])).toEqual({ samples: 0, stacks: [] });
    const big = parseCollapsed(`a ${Number.MAX_SAFE_INTEGER - 1}`);
    expect(() => mergeProfiles([big, big])).toThrow(ProfileDataError);
  });
});
