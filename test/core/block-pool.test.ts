import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BlockPool } from "../../src/core/block-pool.js";

const NUM_BLOCKS = 10;

type Op =
  | { kind: "allocate"; n: number }
  | { kind: "free"; table: number }
  | { kind: "hit"; block: number }
  | { kind: "cache"; table: number; salt: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("allocate" as const), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant("free" as const), table: fc.nat() }),
  fc.record({ kind: fc.constant("hit" as const), block: fc.nat() }),
  fc.record({ kind: fc.constant("cache" as const), table: fc.nat(), salt: fc.nat({ max: 5 }) }),
);

/**
 * An independent model of the pool: block tables, the free queue as a plain array (head first), and
 * hash ownership. After every operation the pool must agree with it exactly.
 */
class PoolModel {
  tables: number[][] = [];
  queue = Array.from({ length: NUM_BLOCKS }, (_, i) => i);
  hashOf = new Map<number, string>();
  blockOf = new Map<string, number>();
  evictions = 0;

  refCount(id: number): number {
    return this.tables.reduce((n, t) => n + t.filter((b) => b === id).length, 0);
  }
}

function checkAgainstModel(pool: BlockPool, m: PoolModel): void {
  expect(pool.freeBlockIds()).toEqual(m.queue);
  expect(pool.numFreeBlocks).toBe(m.queue.length);
  expect(pool.usage).toBeCloseTo(1 - m.queue.length / NUM_BLOCKS, 12);
  expect(pool.numEvictions).toBe(m.evictions);
  for (let id = 0; id < NUM_BLOCKS; id++) {
    const held = m.refCount(id);
    expect(pool.refCount(id)).toBe(held);
    // never both free and in use; every unused block is free
    expect(pool.isFree(id)).toBe(held === 0);
    expect(pool.blockHash(id)).toBe(m.hashOf.get(id));
  }
  for (const [hash, id] of m.blockOf) expect(pool.getCachedBlock(hash)).toBe(id);
}

function apply(pool: BlockPool, m: PoolModel, o: Op): void {
  switch (o.kind) {
    case "allocate": {
      if (o.n > m.queue.length) {
        expect(() => pool.getNewBlocks(o.n)).toThrow(/only \d+ free/);
        return;
      }
      const got = pool.getNewBlocks(o.n);
      // taken from the head of the free queue: fresh blocks first, then cached ones least recently freed
      expect(got).toEqual(m.queue.slice(0, o.n));
      m.queue = m.queue.slice(o.n);
      for (const id of got) {
        const hash = m.hashOf.get(id);
        if (hash === undefined) continue;
        m.evictions++;
        m.hashOf.delete(id);
        m.blockOf.delete(hash);
        expect(pool.getCachedBlock(hash)).toBeUndefined();
      }
      m.tables.push(got);
      return;
    }
    case "free": {
      if (m.tables.length === 0) return;
      const [table] = m.tables.splice(o.table % m.tables.length, 1);
      const lastFirst = table.slice().reverse();
      pool.freeBlocks(lastFirst);
      for (const id of lastFirst) {
        if (m.refCount(id) > 0) continue;
        if (m.hashOf.has(id)) m.queue.push(id);
        else m.queue.unshift(id);
      }
      return;
    }
    case "hit": {
      const cached = [...m.blockOf.values()];
      if (cached.length === 0) return;
      const id = cached[o.block % cached.length];
      const hash = m.hashOf.get(id) as string;
      expect(pool.getCachedBlock(hash)).toBe(id);
      pool.touch([id]);
      m.queue = m.queue.filter((b) => b !== id);
      m.tables.push([id]);
      return;
    }
    case "cache": {
      if (m.tables.length === 0) return;
      const table = m.tables[o.table % m.tables.length];
      const hashes = table.map((id, i) => m.hashOf.get(id) ?? `h${(o.salt + i) % 6}`);
      pool.cacheFullBlocks(table, hashes, 0, table.length);
      table.forEach((id, i) => {
        if (m.hashOf.has(id) || m.blockOf.has(hashes[i])) return;
        m.hashOf.set(id, hashes[i]);
        m.blockOf.set(hashes[i], id);
      });
      return;
    }
  }
}

describe("BlockPool", () => {
  it("agrees with an independent model over random allocate / free / hit / cache", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const pool = new BlockPool(NUM_BLOCKS);
        const m = new PoolModel();
        for (const o of ops) {
          apply(pool, m, o);
          checkAgainstModel(pool, m);
        }
        // when every holder has ended, every block is free
        for (const table of m.tables) pool.freeBlocks(table.slice().reverse());
        expect(pool.numFreeBlocks).toBe(NUM_BLOCKS);
        expect(pool.usage).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it("hands out every block, each once", () => {
    const pool = new BlockPool(4);
    expect(pool.getNewBlocks(4).sort()).toEqual([0, 1, 2, 3]);
    expect(() => pool.getNewBlocks(1)).toThrow(/only 0 free/);
  });

  it("evicts a freed sequence tail-first and reuses uncached blocks before any cached one", () => {
    const pool = new BlockPool(5);
    const seq = pool.getNewBlocks(3); // [0, 1, 2]
    pool.cacheFullBlocks(seq, ["a", "b"], 0, 2); // block 2 is a partial tail: not cached
    pool.freeBlocks(seq.slice().reverse());
    // 2 (uncached) first, then the never-used 3, 4; then cached 1 (the tail) before 0 (the head)
    expect(pool.freeBlockIds()).toEqual([2, 3, 4, 1, 0]);
    expect(pool.getNewBlocks(4)).toEqual([2, 3, 4, 1]);
    expect(pool.numEvictions).toBe(1);
    expect(pool.getCachedBlock("b")).toBeUndefined();
    expect(pool.getCachedBlock("a")).toBe(0);
  });

  it("keeps one block per hash when two sequences compute the same content", () => {
    const pool = new BlockPool(4);
    const [x] = pool.getNewBlocks(1);
    const [y] = pool.getNewBlocks(1);
    pool.cacheFullBlocks([x], ["same"], 0, 1);
    pool.cacheFullBlocks([y], ["same"], 0, 1);
    expect(pool.getCachedBlock("same")).toBe(x);
    expect(pool.blockHash(y)).toBeUndefined();
  });

  it("rejects a double free and a pool without a block", () => {
    const pool = new BlockPool(3);
    const blocks = pool.getNewBlocks(1);
    pool.freeBlocks(blocks);
    expect(() => pool.freeBlocks(blocks)).toThrow(/freed more times than taken/);
    expect(() => new BlockPool(0)).toThrow(/≥ 1/);
  });
});
