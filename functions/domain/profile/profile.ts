import { ValidationError } from '../errors.ts';
import { finish, IdIndex, mix, randomSeed } from './id-index.ts';

/**
 * One distinct stack: frames root → leaf, as async-profiler names them (e.g.
 * `org/apache/flink/.../StreamTask.runMailboxLoop`), thread = the thread frame's name without `tid=` (null when the
 * stack has no thread frame).
 */
export interface Stack {
  thread: string | null;
  frames: string[];
  count: number;
}

/** A collapsed profile: its distinct stacks; `samples` is the sum of their counts. */
export interface Profile {
  samples: number;
  stacks: Stack[];
}

/**
 * The input is not a collapsed profile, or it is over one of {@link PROFILE_LIMITS}. The message names the rule and,
 * when parsing, the line. A {@link ValidationError}, so the HTTP layer answers 400 with the message.
 */
export class ProfileDataError extends ValidationError {
  /** The 1-based line of the text the error is about, when there is one. */
  readonly line: number | undefined;

  constructor(message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.line = line;
  }
}

/** What {@link parseCollapsed} accepts at most: the text comes from nodes where untrusted job code runs. */
export const PROFILE_LIMITS: { maxBytes: number; maxStacks: number; maxDepth: number; maxFrameLength: number } =
  Object.freeze({
    maxBytes: 64 * 1024 * 1024,
    maxStacks: 1_000_000,
    maxDepth: 2048,
    maxFrameLength: 4096,
  });

/** The converter's frame-type suffixes: `_[j]` JIT-compiled, `_[i]` inlined, `_[k]` kernel, `_[0]` interpreted, `_[1]` C1. */
const TYPE_SUFFIX = /_\[[jik01]\]$/;
const TID = / tid=\d+$/;
const COUNT = /^\d+$/;

/**
 * Distinct stacks, each once: `add` sums the counts of equal (thread, frames). Frame and thread names are interned
 * to ids, so 100,000 stacks that share their frames hold each name once; equal stacks are found by a hash of the ids,
 * then compared id by id (no per-stack key string).
 */
class StackTable {
  readonly stacks: Stack[] = [];
  samples = 0;
  private readonly ids = new Map<string, number>();
  readonly names: string[] = [];
  /** Per stack, its thread id (-1: none) and where its frame ids start in `pool` (one array, not one per stack). */
  private readonly threadIds: number[] = [];
  private readonly offsets: number[] = [];
  private pool = new Int32Array(1 << 16);
  private used = 0;
  private scratch = new Int32Array(64);
  private readonly index = new IdIndex();
  private readonly seed = randomSeed();

  /** The id of `name`, registering (a flat copy of) it on first sight. */
  id(name: string): number {
    const known = this.ids.get(name);
    if (known !== undefined) return known;
    const id = this.names.length;
    // A fresh flat copy: a slice of the input would keep the whole input text alive as long as the profile.
    const own = name.length > 12 ? structuredClone(name) : name;
    this.names.push(own);
    this.ids.set(own, id);
    return id;
  }

  /** Adds `count` to the stack (thread id or -1, frame ids[0..depth)). Returns false when the total would overflow. */
  add(threadId: number, frameIds: Int32Array, depth: number, count: number): boolean {
    if (this.samples > Number.MAX_SAFE_INTEGER - count) return false;
    this.samples += count;
    let hash = mix(this.seed, threadId);
    for (let i = 0; i < depth; i++) hash = mix(hash, frameIds[i] as number);
    hash = finish(hash);
    this.index.probe(hash);
    for (let candidate = this.index.next(); candidate !== -1; candidate = this.index.next()) {
      if (this.threadIds[candidate] === threadId && this.sameIds(candidate, frameIds, depth)) {
        (this.stacks[candidate] as Stack).count += count;
        return true;
      }
    }
    if (this.used + depth > this.pool.length) {
      const grown = new Int32Array(Math.max(this.pool.length * 2, this.used + depth));
      grown.set(this.pool.subarray(0, this.used));
      this.pool = grown;
    }
    const frames: string[] = [];
    for (let i = 0; i < depth; i++) {
      const id = frameIds[i] as number;
      this.pool[this.used + i] = id;
      frames.push(this.names[id] as string);
    }
    this.index.add(hash, this.stacks.length);
    this.stacks.push({ thread: threadId === -1 ? null : (this.names[threadId] as string), frames, count });
    this.threadIds.push(threadId);
    this.offsets.push(this.used);
    this.used += depth;
    return true;
  }

  private sameIds(stack: number, frameIds: Int32Array, depth: number): boolean {
    if ((this.stacks[stack] as Stack).frames.length !== depth) return false;
    const offset = this.offsets[stack] as number;
    for (let i = 0; i < depth; i++) if (this.pool[offset + i] !== frameIds[i]) return false;
    return true;
  }

  /** Adds a stack given by names. */
  addStack(thread: string | null, frames: string[], count: number): boolean {
    if (this.scratch.length < frames.length) this.scratch = new Int32Array(frames.length * 2);
    const ids = this.scratch;
    for (let i = 0; i < frames.length; i++) ids[i] = this.id(frames[i] as string);
    return this.add(thread === null ? -1 : this.id(thread), ids, frames.length, count);
  }

  toProfile(): Profile {
    return { samples: this.samples, stacks: this.stacks };
  }
}

/**
 * Each frame as written in the input (type suffix included) → its name's id, so that a frame seen before costs one
 * Map lookup and no regex.
 */
class RawFrames {
  private readonly ids = new Map<string, number>();

  find(raw: string): number {
    return this.ids.get(raw) ?? -1;
  }

  remember(raw: string, nameId: number): void {
    // A flat copy: the key is a slice of the input, which would otherwise stay alive as long as the profile.
    this.ids.set(raw.length > 12 ? structuredClone(raw) : raw, nameId);
  }
}

/**
 * Parses async-profiler's collapsed text: `[thread tid=N];f1;f2;…;fn count` per line, as its converter writes with
 * `--threads --norm -o collapsed`, or without the thread frame, as `asprof -o collapsed` writes. The count follows
 * the LAST space (names may contain spaces); the converter's frame-type suffixes (`_[j]`, `_[i]`, `_[k]`, `_[0]`,
 * `_[1]`) are stripped; a first frame `[...]` followed by more frames is the thread frame (alone, it is an ordinary
 * frame such as `[unknown_Java]`). Equal stacks are summed; blank lines are skipped.
 *
 * @throws ProfileDataError naming the line and the rule when the text is not a collapsed profile or is over
 *   {@link PROFILE_LIMITS}.
 */
export function parseCollapsed(text: string): Profile {
  const { maxBytes, maxStacks, maxDepth, maxFrameLength } = PROFILE_LIMITS;
  // UTF-8 is never shorter than UTF-16 code units, so the cheap check goes first.
  if (text.length > maxBytes || Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new ProfileDataError(`the profile is larger than ${maxBytes} bytes`);
  }
  const table = new StackTable();
  const raws = new RawFrames();
  const ids = new Int32Array(maxDepth);
  let lineNo = 0;
  let stacks = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    lineNo += 1;
    const lineStart = start;
    const lineEnd = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    start = end + 1;
    if (isBlank(text, lineStart, lineEnd)) continue;
    stacks += 1;
    if (stacks > maxStacks) throw new ProfileDataError(`more than ${maxStacks} stacks`, lineNo);
    const space = lineEnd > lineStart ? text.lastIndexOf(' ', lineEnd - 1) : -1;
    if (space < lineStart) throw new ProfileDataError('no count: a line is `frame;frame;… count`', lineNo);
    const countText = text.slice(space + 1, lineEnd);
    const count = COUNT.test(countText) ? Number(countText) : Number.NaN;
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new ProfileDataError(`the count ${quote(countText)} is not a positive integer`, lineNo);
    }
    let threadId = -1;
    let depth = 0;
    let from = lineStart;
    let index = 0;
    while (from <= space) {
      let to = text.indexOf(';', from);
      if (to === -1 || to > space) to = space;
      const length = to - from;
      index += 1;
      if (length === 0) throw new ProfileDataError(`frame ${index} is empty`, lineNo);
      if (length > maxFrameLength) {
        throw new ProfileDataError(`frame ${index} is longer than ${maxFrameLength} characters`, lineNo);
      }
      if (index === 1 && to < space && text.charCodeAt(from) === 91 && text.charCodeAt(to - 1) === 93) {
        threadId = table.id(text.slice(from + 1, to - 1).replace(TID, ''));
        from = to + 1;
        continue;
      }
      if (depth === maxDepth) throw new ProfileDataError(`the stack is deeper than ${maxDepth} frames`, lineNo);
      const raw = text.slice(from, to);
      let id = raws.find(raw);
      if (id === -1) {
        const name = raw.replace(TYPE_SUFFIX, '');
        if (name.length === 0)
          throw new ProfileDataError(`frame ${index} is empty once its type suffix is cut`, lineNo);
        id = table.id(name);
        raws.remember(raw, id);
      }
      ids[depth++] = id;
      from = to + 1;
    }
    if (!table.add(threadId, ids, depth, count)) {
      throw new ProfileDataError(`the total of the counts is beyond ${Number.MAX_SAFE_INTEGER}`, lineNo);
    }
  }
  return table.toProfile();
}

/** Whether `text[from, to)` is only whitespace (as String.prototype.trim sees it). */
function isBlank(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    // Fast path: printable ASCII other than the space is never blank.
    if (c > 32 && c < 127) return false;
    if (text[i]?.trim() !== '') return false;
  }
  return true;
}

/** At most 40 characters of hostile text, JSON-quoted, for an error message. */
function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/**
 * Writes async-profiler's collapsed format, one `f1;f2;…;fn count\n` line per stack. With `threads: true` a line
 * starts with `[<thread>];` when the stack has a thread; without, stacks that become equal are summed into one line.
 */
export function toCollapsed(profile: Profile, options: { threads?: boolean } = {}): string {
  let stacks = profile.stacks;
  if (!options.threads) {
    const table = new StackTable();
    for (const stack of stacks) {
      if (!table.addStack(null, stack.frames, stack.count)) {
        throw new ProfileDataError(`the total of the counts is beyond ${Number.MAX_SAFE_INTEGER}`);
      }
    }
    stacks = table.stacks;
  }
  const lines: string[] = [];
  for (const stack of stacks) {
    const frames = stack.frames.join(';');
    lines.push(
      options.threads && stack.thread !== null
        ? `[${stack.thread}];${frames} ${stack.count}\n`
        : `${frames} ${stack.count}\n`,
    );
  }
  return lines.join('');
}

/**
 * One profile of all the given ones: equal (thread, frames) stacks are summed, in order of first appearance.
 *
 * @throws ProfileDataError when the total would be beyond Number.MAX_SAFE_INTEGER.
 */
export function mergeProfiles(profiles: Profile[]): Profile {
  const table = new StackTable();
  for (const profile of profiles) {
    for (const stack of profile.stacks) {
      if (!table.addStack(stack.thread, stack.frames, stack.count)) {
        throw new ProfileDataError(`the merged total of the counts is beyond ${Number.MAX_SAFE_INTEGER}`);
      }
    }
  }
  return table.toProfile();
}
