/**
 * Ids (non-negative integers) by a 32-bit hash, in open addressing over typed arrays: no key objects, so finding a
 * stack by its frame ids, or a tree node by (parent, name), allocates nothing. The caller computes the hash and
 * checks each candidate for equality: `probe(hash)`, then `next()` until it returns -1.
 */
export class IdIndex {
  private ids: Int32Array;
  private hashes: Int32Array;
  private mask: number;
  private size = 0;
  private cursor = 0;
  private probing = 0;

  constructor(capacity = 1024) {
    const slots = 2 ** Math.ceil(Math.log2(Math.max(capacity * 2, 16)));
    this.ids = new Int32Array(slots);
    this.hashes = new Int32Array(slots);
    this.mask = slots - 1;
  }

  /** Starts listing the ids stored under `hash`. */
  probe(hash: number): void {
    this.probing = hash | 0;
    this.cursor = hash & this.mask;
  }

  /** The next id stored under the probed hash, or -1 when there are no more. */
  next(): number {
    for (;;) {
      const slot = this.cursor;
      const stored = this.ids[slot] as number;
      if (stored === 0) return -1;
      this.cursor = (slot + 1) & this.mask;
      if (this.hashes[slot] === this.probing) return stored - 1;
    }
  }

  /** Stores `id` under `hash` (the caller has checked it is not there yet). */
  add(hash: number, id: number): void {
    if ((this.size + 1) * 2 > this.ids.length) this.grow();
    this.place(hash | 0, id + 1);
    this.size += 1;
  }

  private place(hash: number, stored: number): void {
    let slot = hash & this.mask;
    while (this.ids[slot] !== 0) slot = (slot + 1) & this.mask;
    this.ids[slot] = stored;
    this.hashes[slot] = hash;
  }

  private grow(): void {
    const { ids, hashes } = this;
    this.ids = new Int32Array(ids.length * 2);
    this.hashes = new Int32Array(ids.length * 2);
    this.mask = this.ids.length - 1;
    for (let slot = 0; slot < ids.length; slot++) {
      if (ids[slot] !== 0) this.place(hashes[slot] as number, ids[slot] as number);
    }
  }
}

/** One step of FNV-1a over 32-bit values. */
export function mix(hash: number, value: number): number {
  return Math.imul(hash ^ value, 0x01000193);
}

/** Spreads the bits of a hash (murmur3's finaliser), since slots are picked by its low bits. */
export function finish(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * A hash seed per table: hostile input cannot be crafted offline to make its stacks collide (which would make
 * lookups linear). Results never depend on it; only slot positions do.
 */
export function randomSeed(): number {
  return (Math.random() * 0x1_0000_0000) | 0;
}
