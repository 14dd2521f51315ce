/**
 * `npx tsx test/bench/profile-compare.bench.ts`: the comparison library on profiles the size of a busy TaskManager's.
 *
 * Two synthetic collapsed profiles of 100,000 distinct stacks each (seeded, so runs are comparable), 30–50 frames
 * deep: a Flink task-thread prefix, then a walk through a call graph of 6,000 methods where each method calls one of
 * a few others (so stacks share prefixes, as real ones do), in the converter's format (`[thread tid=N];…_[j] count`).
 * Prints the time of parseCollapsed, mergeProfiles (the two; and 40 profiles of 10,000 stacks), diffFrames,
 * diffFlameGraphHtml (and its size), and the heap and RSS along the way.
 *
 * With names as long as real ones (about 60 characters), 100,000 stacks of 40 frames are about 200 MiB of text, over
 * PROFILE_LIMITS.maxBytes (64 MiB): such a text is parsed in pieces under the limit, at line boundaries, and the
 * pieces merged; the time of one parse of a piece at the limit is shown too, and of the same piece sorted (the
 * converter writes stacks in tree order, so a line shares its first frames with the line before; asprof's own
 * collapsed output, like the generator's, is in no particular order).
 *
 * Settings: BENCH_PROFILE_STACKS (default 100000), BENCH_PROFILE_SMALL (profiles of 10,000 stacks to merge, 40).
 */
import {
  diffFlameGraphHtml,
  diffFrames,
  mergeProfiles,
  PROFILE_LIMITS,
  type Profile,
  parseCollapsed,
} from '#domain/profile/index.ts';
import { seeded } from '#test/support/seeded.ts';

const STACKS = Number(process.env.BENCH_PROFILE_STACKS ?? 100_000);
const SMALL = Number(process.env.BENCH_PROFILE_SMALL ?? 40);
const METHODS = 6_000;
const CALLEES = 4;

const FLINK_PREFIX = [
  'java/lang/Thread.run_[j]',
  'org/apache/flink/runtime/taskmanager/Task.run_[j]',
  'org/apache/flink/runtime/taskmanager/Task.doRun_[j]',
  'org/apache/flink/runtime/taskmanager/Task.restoreAndInvoke_[j]',
  'org/apache/flink/streaming/runtime/tasks/StreamTask.invoke_[j]',
  'org/apache/flink/streaming/runtime/tasks/StreamTask.runMailboxLoop_[j]',
  'org/apache/flink/streaming/runtime/tasks/mailbox/MailboxProcessor.runMailboxLoop_[j]',
  'org/apache/flink/streaming/runtime/tasks/StreamTask.processInput_[j]',
  'org/apache/flink/streaming/runtime/io/StreamOneInputProcessor.processInput_[j]',
  'org/apache/flink/streaming/runtime/io/AbstractStreamTaskNetworkInput.emitNext_[j]',
  'org/apache/flink/streaming/runtime/tasks/OneInputStreamTask$StreamTaskNetworkOutput.emitRecord_[j]',
  'org/apache/flink/streaming/api/operators/StreamMap.processElement_[j]',
];
const PACKAGES = ['com/acme/orders', 'com/acme/pricing', 'com/acme/fraud', 'org/apache/kafka/clients', 'java/util'];
const CLASSES = ['Enricher', 'Parser', 'Scorer', 'Codec', 'Cache', 'Router', 'Validator', 'Window', 'Sink', 'Buffer'];
const VERBS = ['apply', 'decode', 'encode', 'lookup', 'score', 'merge', 'flush', 'emit', 'hash', 'compare', 'read'];
const SUFFIXES = ['_[j]', '_[j]', '_[j]', '_[i]', '_[1]', '_[0]'];

/** The call graph: method names, and for each the few methods it calls. */
function callGraph(random: () => number): { names: string[]; callees: number[][] } {
  const names = Array.from({ length: METHODS }, (_, i) => {
    const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)] as T;
    return `${pick(PACKAGES)}/${pick(CLASSES)}${i % 97}.${pick(VERBS)}${i}${pick(SUFFIXES)}`;
  });
  const callees = names.map(() => Array.from({ length: CALLEES }, () => Math.floor(random() * METHODS)));
  return { names, callees };
}

/** `count` distinct stacks as collapsed text, walks through the call graph chosen by `seed`. */
function syntheticCollapsed(count: number, seed: number, graph: ReturnType<typeof callGraph>): string {
  const random = seeded(seed);
  const threads = Array.from({ length: 8 }, (_, i) => `[Source: Orders -> Map (${i + 1}/8)#0 tid=${5000 + i}]`);
  const seen = new Set<string>();
  const lines: string[] = [];
  while (lines.length < count) {
    const depth = 30 + Math.floor(random() * 21) - FLINK_PREFIX.length;
    let method = Math.floor(random() * 64);
    const frames = [threads[Math.floor(random() * threads.length)] as string, ...FLINK_PREFIX];
    for (let d = 0; d < depth; d++) {
      frames.push(graph.names[method] as string);
      method = (graph.callees[method] as number[])[Math.floor(random() * CALLEES)] as number;
    }
    const stack = frames.join(';');
    if (seen.has(stack)) continue;
    seen.add(stack);
    // Heavy-tailed counts: most stacks seen a few times, some thousands of times.
    lines.push(`${stack} ${1 + Math.floor(random() ** 6 * 5000)}\n`);
  }
  return lines.join('');
}

const MiB = 1024 * 1024;
const memory: { step: string; heap: number; rss: number }[] = [];
function snapshot(step: string): void {
  const { heapUsed, rss } = process.memoryUsage();
  memory.push({ step, heap: heapUsed, rss });
}

/** Wall time, and this process's CPU time (user + system), which other load on the machine disturbs less. */
const timings: { what: string; ms: number; cpuMs: number; note: string }[] = [];
function measure<T>(what: string, work: () => T, note: (value: T) => string = () => ''): T {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const value = work();
  const ms = performance.now() - started;
  const { user, system } = process.cpuUsage(cpu);
  timings.push({ what, ms, cpuMs: (user + system) / 1000, note: note(value) });
  return value;
}

snapshot('start');
const graph = callGraph(seeded(7));
/** `text` cut at line boundaries into pieces of at most maxBytes (the generator writes ASCII: a byte per character). */
function pieces(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + PROFILE_LIMITS.maxBytes, text.length);
    if (end < text.length) end = text.lastIndexOf('\n', end - 1) + 1;
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}
const parseWhole = (text: string) => {
  const parts = pieces(text);
  return parts.length === 1 ? parseCollapsed(text) : mergeProfiles(parts.map(parseCollapsed));
};
const label = (name: string, text: string) => {
  const count = pieces(text).length;
  return `parse ${name} (${(text.length / MiB).toFixed(0)} MiB${count > 1 ? `, ${count} pieces + merge` : ''})`;
};

const stacksOf = (p: Profile) =>
  `${p.stacks.length.toLocaleString('en')} stacks, ${p.samples.toLocaleString('en')} samples`;
// Each text is generated just before it is parsed and dropped after, so the heap holds one text at a time.
let text = syntheticCollapsed(STACKS, 1, graph);
const first = pieces(text)[0] as string;
measure(`parseCollapsed, one text of ${(first.length / MiB).toFixed(0)} MiB`, () => parseCollapsed(first), stacksOf);
const sorted = `${first.trimEnd().split('\n').sort().join('\n')}\n`;
measure('parseCollapsed, the same text in tree order', () => parseCollapsed(sorted), stacksOf);
snapshot('one text of 64 MiB parsed');
const a = measure(label('A', text), () => parseWhole(text), stacksOf);
text = syntheticCollapsed(STACKS, 2, graph);
const b = measure(label('B', text), () => parseWhole(text), stacksOf);
text = '';
snapshot('A and B parsed');
const small: Profile[] = [];
let smallMs = 0;
let smallCpuMs = 0;
for (let i = 0; i < SMALL; i++) {
  const piece = syntheticCollapsed(10_000, 100 + i, graph);
  const cpu = process.cpuUsage();
  const started = performance.now();
  small.push(parseCollapsed(piece));
  smallMs += performance.now() - started;
  const { user, system } = process.cpuUsage(cpu);
  smallCpuMs += (user + system) / 1000;
}
timings.push({
  what: `parseCollapsed ${SMALL} × 10,000 stacks`,
  ms: smallMs,
  cpuMs: smallCpuMs,
  note: 'sum of the parses',
});
snapshot(`${SMALL} small ones parsed`);
measure('mergeProfiles [A, B]', () => mergeProfiles([a, b]), stacksOf);
measure(`mergeProfiles ${SMALL} × 10,000 stacks`, () => mergeProfiles(small), stacksOf);
snapshot('merged');
measure(
  'diffFrames A → B (limit 100)',
  () => diffFrames(a, b, 100),
  (d) => `${d.frames.length} frames, top ${d.frames[0]?.name.slice(0, 40)}`,
);
const html = measure(
  'diffFlameGraphHtml A → B',
  () => diffFlameGraphHtml(a, b, { title: 'A → B' }),
  (page) => `${(page.length / MiB).toFixed(1)} MiB of HTML`,
);
snapshot('diff page built');

console.log(`profile comparison: ${STACKS.toLocaleString('en')} distinct stacks per profile, Node ${process.version}`);
console.log(`${''.padEnd(44)} ${'wall'.padStart(9)} ${'CPU'.padStart(9)}`);
for (const { what, ms, cpuMs, note } of timings) {
  console.log(
    `${what.padEnd(44)} ${`${ms.toFixed(0)} ms`.padStart(9)} ${`${cpuMs.toFixed(0)} ms`.padStart(9)}   ${note}`,
  );
}
console.log(`${'memory, after'.padEnd(44)} ${'heap used'.padStart(11)} ${'RSS'.padStart(11)}`);
for (const { step, heap, rss } of memory) {
  console.log(
    `${step.padEnd(42)} ${`${(heap / MiB).toFixed(0)} MiB`.padStart(11)} ${`${(rss / MiB).toFixed(0)} MiB`.padStart(11)}`,
  );
}
// Keep the page alive until the last snapshot, so its memory is in it.
if (html.length === 0) throw new Error('empty page');
