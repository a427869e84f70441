import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BlockPool, NULL_BLOCK } from "../../src/core/block-pool.js";
import type { KvCacheEvent } from "../../src/core/kv-events.js";

const NUM_BLOCKS = 10;

type Op =
  | { kind: "allocate"; n: number }
  | { kind: "free"; table: number }
  | { kind: "hit"; block: number }
  | { kind: "cache"; table: number; salt: number; group: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("allocate" as const), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant("free" as const), table: fc.nat() }),
  fc.record({ kind: fc.constant("hit" as const), block: fc.nat() }),
  fc.record({
    kind: fc.constant("cache" as const),
    table: fc.nat(),
    salt: fc.nat({ max: 5 }),
    group: fc.nat({ max: 1 }),
  }),
);

/** The model's key of a cached block: its group and hash. */
const key = (group: number, hash: string) => `${group}/${hash}`;

/**
 * An independent model of the pool: block tables, the free queue as a plain array (head first, the null block
 * never in it), and hash ownership per group. After every operation the pool must agree with it exactly.
 */
class PoolModel {
  tables: number[][] = [];
  queue = Array.from({ length: NUM_BLOCKS - 1 }, (_, i) => i + 1);
  hashOf = new Map<number, { group: number; hash: string }>();
  blockOf = new Map<string, number>();
  evictions = 0;

  refCount(id: number): number {
    return this.tables.reduce((n, t) => n + t.filter((b) => b === id).length, 0);
  }
}

function checkAgainstModel(pool: BlockPool, m: PoolModel): void {
  expect(pool.freeBlockIds()).toEqual(m.queue);
  expect(pool.numFreeBlocks).toBe(m.queue.length);
  expect(pool.usage).toBeCloseTo(1 - m.queue.length / (NUM_BLOCKS - 1), 12);
  expect(pool.numEvictions).toBe(m.evictions);
  expect(pool.isFree(NULL_BLOCK)).toBe(false);
  for (let id = 1; id < NUM_BLOCKS; id++) {
    const held = m.refCount(id);
    expect(pool.refCount(id)).toBe(held);
    // never both free and in use; every unused block is free
    expect(pool.isFree(id)).toBe(held === 0);
    expect(pool.blockHash(id)).toBe(m.hashOf.get(id)?.hash);
  }
  for (const [id, { group, hash }] of m.hashOf) {
    expect(pool.getCachedBlock(group, hash)).toBe(id);
    expect(pool.getCachedBlock(1 - group, hash)).toBe(m.blockOf.get(key(1 - group, hash)));
  }
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
        const cached = m.hashOf.get(id);
        if (cached === undefined) continue;
        m.evictions++;
        m.hashOf.delete(id);
        m.blockOf.delete(key(cached.group, cached.hash));
        expect(pool.getCachedBlock(cached.group, cached.hash)).toBeUndefined();
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
      const { group, hash } = m.hashOf.get(id) as { group: number; hash: string };
      expect(pool.getCachedBlock(group, hash)).toBe(id);
      pool.touch([id]);
      m.queue = m.queue.filter((b) => b !== id);
      m.tables.push([id]);
      return;
    }
    case "cache": {
      if (m.tables.length === 0) return;
      const table = m.tables[o.table % m.tables.length];
      // A block already cached can only be registered again under its own group and hash.
      if (table.some((id) => m.hashOf.has(id) && m.hashOf.get(id)?.group !== o.group)) {
        const hashes = table.map((id) => m.hashOf.get(id)?.hash ?? "x");
        expect(() => pool.cacheFullBlocks(o.group, table, hashes, 0, table.length)).toThrow(
          /another hash or group/,
        );
        return;
      }
      const hashes = table.map((id, i) => m.hashOf.get(id)?.hash ?? `h${(o.salt + i) % 6}`);
      pool.cacheFullBlocks(o.group, table, hashes, 0, table.length);
      table.forEach((id, i) => {
        if (m.hashOf.has(id) || m.blockOf.has(key(o.group, hashes[i]))) return;
        m.hashOf.set(id, { group: o.group, hash: hashes[i] });
        m.blockOf.set(key(o.group, hashes[i]), id);
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
        expect(pool.numFreeBlocks).toBe(NUM_BLOCKS - 1);
        expect(pool.usage).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it("hands out every block but the null block, each once", () => {
    const pool = new BlockPool(4);
    expect(pool.numUsableBlocks).toBe(3);
    expect(pool.getNewBlocks(3).sort()).toEqual([1, 2, 3]);
    expect(() => pool.getNewBlocks(1)).toThrow(/only 0 free/);
  });

  it("evicts a freed sequence tail-first and reuses uncached blocks before any cached one", () => {
    const pool = new BlockPool(6);
    const seq = pool.getNewBlocks(3); // [1, 2, 3]
    pool.cacheFullBlocks(0, seq, ["a", "b"], 0, 2); // block 3 is a partial tail: not cached
    pool.freeBlocks(seq.slice().reverse());
    // 3 (uncached) first, then the never-used 4, 5; then cached 2 (the tail) before 1 (the head)
    expect(pool.freeBlockIds()).toEqual([3, 4, 5, 2, 1]);
    expect(pool.getNewBlocks(4)).toEqual([3, 4, 5, 2]);
    expect(pool.numEvictions).toBe(1);
    expect(pool.getCachedBlock(0, "b")).toBeUndefined();
    expect(pool.getCachedBlock(0, "a")).toBe(1);
  });

  it("keeps one block per hash and group when two sequences compute the same content", () => {
    const pool = new BlockPool(5);
    const [x, y, z] = pool.getNewBlocks(3);
    pool.cacheFullBlocks(0, [x], ["same"], 0, 1);
    pool.cacheFullBlocks(0, [y], ["same"], 0, 1);
    pool.cacheFullBlocks(1, [z], ["same"], 0, 1); // the same tokens in other layers: another block
    expect(pool.getCachedBlock(0, "same")).toBe(x);
    expect(pool.blockHash(y)).toBeUndefined();
    expect(pool.getCachedBlock(1, "same")).toBe(z);
  });

  it("never hands out, frees or caches the null block", () => {
    const pool = new BlockPool(3);
    const [a] = pool.getNewBlocks(1);
    pool.touch([NULL_BLOCK]);
    pool.cacheFullBlocks(0, [NULL_BLOCK, a], ["n", "a"], 0, 2);
    expect(pool.blockHash(NULL_BLOCK)).toBeUndefined();
    expect(pool.getCachedBlock(0, "n")).toBeUndefined();
    pool.freeBlocks([a, NULL_BLOCK]);
    expect(pool.freeBlockIds()).toEqual([2, a]);
  });

  it("reports each run of newly cached blocks as one BlockStored with its parent and tokens, and each eviction", () => {
    const events: KvCacheEvent[] = [];
    const pool = new BlockPool(8, (e) => events.push(e));
    const [other] = pool.getNewBlocks(1);
    pool.cacheFullBlocks(0, [NULL_BLOCK, other], ["h0", "h1"], 1, 2, {
      tokenIds: [9, 9, 9, 9],
      blockSize: 2,
      cacheSalt: "s",
    });
    events.length = 0;
    // Block 1 of this sequence duplicates `other` (h1 is cached there): runs [0] and [2, 3] are new.
    const seq = pool.getNewBlocks(4);
    const content = { tokenIds: [1, 2, 3, 4, 5, 6, 7, 8, 9], blockSize: 2, cacheSalt: "s" };
    pool.cacheFullBlocks(0, seq, ["h0", "h1", "h2", "h3"], 0, 4, content);
    expect(events).toEqual([
      {
        type: "BlockStored",
        group: 0,
        blockHashes: ["h0"],
        parentBlockHash: null,
        tokenIds: [1, 2],
        blockSize: 2,
        extraKeys: [["s"]],
      },
      {
        type: "BlockStored",
        group: 0,
        blockHashes: ["h2", "h3"],
        parentBlockHash: "h1",
        tokenIds: [5, 6, 7, 8],
        blockSize: 2,
        extraKeys: [null, null],
      },
    ]);
    events.length = 0;
    pool.freeBlocks([other]);
    pool.getNewBlocks(3); // two never-used blocks, then `other`: its h1 leaves the cache
    expect(events).toEqual([{ type: "BlockRemoved", group: 0, blockHashes: ["h1"] }]);
  });

  it("rejects a double free and a pool without a usable block", () => {
    const pool = new BlockPool(3);
    const blocks = pool.getNewBlocks(1);
    pool.freeBlocks(blocks);
    expect(() => pool.freeBlocks(blocks)).toThrow(/freed more times than taken/);
    expect(() => new BlockPool(1)).toThrow(/≥ 2/);
  });
});
