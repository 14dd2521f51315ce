/**
 * mulberry32: a small seeded generator of numbers in [0, 1), so that every run of a benchmark makes the same
 * choices (the same profiles, runs or throttled calls) and its figures compare.
 */
export function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
