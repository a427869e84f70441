import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KVCacheManager, type KvAllocation } from "../../src/core/kv-cache-manager.js";
import { Request } from "../../src/core/request.js";
import { samplingParams } from "../../src/core/sampling-params.js";

let nextId = 0;
function request(promptTokenIds: number[], cacheSalt?: string): Request {
  return new Request({
    id: `r${nextId++}`,
    promptTokenIds,
    samplingParams: samplingParams(),
    arrivalTime: 0,
    cacheSalt,
  });
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/** Admits a request the way the scheduler will: prefix lookup, then one allocation for the rest of the prompt. */
function admit(m: KVCacheManager, r: Request): number[] | null {
  const computed = m.getComputedBlocks(r);
  const blocks = m.allocateSlots(r, r.numTokens - computed.numComputedTokens, computed);
  if (blocks !== null) r.numComputedTokens = r.numTokens;
  return blocks;
}

/** One decode step: the sampled token joins the sequence, then gets a KV slot. */
function decode(m: KVCacheManager, r: Request, token: number): number[] | null {
  r.appendOutputTokenIds([token]);
  const blocks = m.allocateSlots(r, 1);
  if (blocks !== null) r.numComputedTokens++;
  return blocks;
}

/** Everything observable about the manager, to check that a failed allocation changed nothing. */
function snapshot(m: KVCacheManager, requests: readonly Request[]) {
  const pool = m.blockPool;
  return {
    free: pool.freeBlockIds(),
    blocks: range(pool.numBlocks).map((id) => [pool.refCount(id), pool.blockHash(id)]),
    tables: requests.map((r) => [...m.getBlockIds(r.id)]),
    stats: m.prefixCacheStats,
    evictions: pool.numEvictions,
  };
}

describe("KVCacheManager prefix caching", () => {
  it("hits the longest cached prefix of whole blocks, never the whole prompt", () => {
    const m = new KVCacheManager({ numBlocks: 20, maxModelLen: 128, blockSize: 16 });
    const a = request(range(32));
    expect(admit(m, a)).toEqual(m.getBlockIds(a.id));
    const aBlocks = m.getBlockIds(a.id);
    expect(aBlocks).toHaveLength(2);

    // exactly 2 full blocks: the last one is recomputed so the step has a token to produce logits from
    const same = request(range(32));
    expect(m.getComputedBlocks(same)).toEqual({ blocks: [aBlocks[0]], numComputedTokens: 16 });

    // one more token: both blocks hit, the same block ids the first request holds
    const longer = request(range(33));
    const hit = m.getComputedBlocks(longer);
    expect(hit).toEqual({ blocks: [...aBlocks], numComputedTokens: 32 });
    expect(m.allocateSlots(longer, 1, hit)).toHaveLength(1);
    expect(m.getBlockIds(longer.id).slice(0, 2)).toEqual(aBlocks);
    expect(m.blockPool.refCount(aBlocks[0])).toBe(2);

    // a different token in the second block: only the first block hits
    const diverging = request([...range(20), 999, ...range(12, 21)]);
    expect(m.getComputedBlocks(diverging).blocks).toEqual([aBlocks[0]]);
    expect(m.prefixCacheStats).toMatchObject({ requests: 2, queries: 32 + 33, hits: 32 });
  });

  it("caches blocks filled during decode, so a follow-up turn reuses the generated tokens", () => {
    const m = new KVCacheManager({ numBlocks: 10, maxModelLen: 64, blockSize: 4 });
    const a = request(range(6));
    admit(m, a);
    for (let t = 0; t < 10; t++) decode(m, a, 100 + t);
    expect(a.numTokens).toBe(16);
    const followUp = request([...a.allTokenIds, 7]);
    expect(m.getComputedBlocks(followUp).blocks).toEqual(m.getBlockIds(a.id));
  });

  it("keeps freed blocks findable until evicted, and evicts a sequence's tail first", () => {
    const m = new KVCacheManager({ numBlocks: 4, maxModelLen: 64, blockSize: 4 });
    const a = request(range(12));
    admit(m, a);
    const [b0, b1, b2] = m.getBlockIds(a.id);
    m.free(a);
    expect(m.usage).toBe(0);
    expect(m.getComputedBlocks(request(range(13))).blocks).toEqual([b0, b1, b2]);

    const other = request(range(8, 500)); // 2 blocks: the never-used one, then a's tail
    admit(m, other);
    expect(m.getBlockIds(other.id)).not.toContain(b0);
    expect(m.getBlockIds(other.id)).toContain(b2);
    expect(m.getComputedBlocks(request(range(13))).blocks).toEqual([b0, b1]);
  });

  it("isolates tenants by cache salt", () => {
    const m = new KVCacheManager({ numBlocks: 10, maxModelLen: 64, blockSize: 4 });
    admit(m, request(range(9), "tenant-a"));
    expect(m.getComputedBlocks(request(range(9), "tenant-a")).numComputedTokens).toBe(8);
    expect(m.getComputedBlocks(request(range(9), "tenant-b")).numComputedTokens).toBe(0);
    expect(m.getComputedBlocks(request(range(9))).numComputedTokens).toBe(0);
  });

  it("counts lookups once per admission, resumed requests apart, and can reset them", () => {
    const m = new KVCacheManager({ numBlocks: 10, maxModelLen: 64, blockSize: 4 });
    const a = request(range(9));
    admit(m, a);
    m.free(a);
    a.numComputedTokens = 0;
    a.numPreemptions++;
    admit(m, a); // resumes from its own cached blocks
    expect(m.prefixCacheStats).toEqual({
      requests: 1,
      queries: 9,
      hits: 0,
      preemptedRequests: 1,
      preemptedQueries: 9,
      preemptedHits: 8,
    });
    m.resetPrefixCacheStats();
    expect(m.prefixCacheStats.queries).toBe(0);
  });
});

describe("KVCacheManager allocation", () => {
  it("returns null without changing anything when evictable prefix hits leave too few free blocks", () => {
    const m = new KVCacheManager({ numBlocks: 4, maxModelLen: 64, blockSize: 4 });
    const a = request(range(9));
    admit(m, a);
    m.free(a); // its two full blocks stay cached, with ref count 0
    const c = request(range(8, 100));
    admit(m, c); // takes the two uncached free blocks
    const b = request([...range(8), ...range(5, 200)]); // 13 tokens: 2 hit blocks + 2 new
    const hit = m.getComputedBlocks(b);
    expect(hit.numComputedTokens).toBe(8);
    const before = snapshot(m, [a, b, c]);
    expect(m.allocateSlots(b, 5, hit)).toBeNull();
    expect(snapshot(m, [a, b, c])).toEqual(before);
  });

  it("contiguous allocation reserves maxModelLen at the first allocation and never caches", () => {
    const m = new KVCacheManager({ numBlocks: 40, maxModelLen: 64, blockSize: 4, allocation: "contiguous" });
    expect(m.prefixCaching).toBe(false);
    const a = request(range(5));
    expect(admit(m, a)).toHaveLength(16);
    expect(decode(m, a, 7)).toEqual([]);
    expect(m.getComputedBlocks(request(range(9))).numComputedTokens).toBe(0);
    admit(m, request(range(5)));
    expect(admit(m, request(range(5)))).toBeNull(); // 2 × 16 of 40 blocks taken
  });

  it("rejects at admission what could never run, naming the limit", () => {
    const m = new KVCacheManager({ numBlocks: 8, maxModelLen: 256, blockSize: 16 });
    expect(m.admissionError(100, 28)).toBeUndefined();
    expect(m.admissionError(0, 10)).toBe("the prompt is empty");
    expect(m.admissionError(200, 100)).toBe(
      "prompt (200 tokens) + max tokens (100) = 300 exceeds maxModelLen 256",
    );
    expect(m.admissionError(100, 50)).toBe(
      "request needs 10 KV cache blocks (150 tokens, paged allocation) but the whole KV cache has 8 blocks of 16 tokens",
    );
    const contiguous = new KVCacheManager({ numBlocks: 8, maxModelLen: 256, allocation: "contiguous" });
    expect(contiguous.admissionError(10, 10)).toMatch(/needs 16 KV cache blocks \(256 tokens, contiguous/);
  });

  it("refuses to grow a request past maxModelLen", () => {
    const m = new KVCacheManager({ numBlocks: 10, maxModelLen: 8, blockSize: 4 });
    expect(() => m.allocateSlots(request(range(9)), 9)).toThrow(/over maxModelLen 8/);
  });
});

type Op =
  | { kind: "arrive"; prefix: number; length: number; tail: number[] }
  | { kind: "admit"; pick: number; chunk: number }
  | { kind: "step"; pick: number; chunk: number; token: number }
  | { kind: "finish" | "preempt"; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("arrive" as const),
      prefix: fc.nat({ max: 2 }),
      length: fc.constantFrom(0, 4, 8, 12),
      tail: fc.array(fc.nat({ max: 1 }), { minLength: 1, maxLength: 6 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("admit" as const),
      pick: fc.nat(),
      chunk: fc.integer({ min: 1, max: 12 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("step" as const),
      pick: fc.nat(),
      chunk: fc.integer({ min: 1, max: 6 }),
      token: fc.nat({ max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constantFrom("finish" as const, "preempt" as const), pick: fc.nat() }),
  },
);

const SHARED_PREFIXES = [range(12), range(12, 40), [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]];

/**
 * Drives a manager like a scheduler and a forward pass would, over many requests, and checks every
 * invariant after every operation. `kv` stands in for the KV cache: the token each slot was last written
 * with, so a prefix hit can be checked against what the hit blocks really hold.
 */
function runScenario(ops: Op[], blockSize: number, prefixCaching: boolean, allocation: KvAllocation): void {
  const numBlocks = 16;
  const maxModelLen = 24;
  const m = new KVCacheManager({
    numBlocks,
    maxModelLen,
    blockSize,
    enablePrefixCaching: prefixCaching,
    allocation,
  });
  const kv = new Int32Array(numBlocks * blockSize).fill(-1);
  const waiting: Request[] = [];
  const running: Request[] = [];

  /** The forward pass: writes tokens [from, to) of r into their slots through its block table. */
  const compute = (r: Request, from: number, to: number) => {
    const table = m.getBlockIds(r.id);
    for (let pos = from; pos < to; pos++) {
      kv[table[Math.floor(pos / blockSize)] * blockSize + (pos % blockSize)] = r.allTokenIds[pos];
    }
    r.numComputedTokens = to;
  };

  /** Allocates, and on null checks that nothing changed; on success checks which blocks were handed out. */
  const allocate = (r: Request, n: number, hitBlocks: readonly number[] = [], hitTokens = 0) => {
    const everyone = [...waiting, ...running];
    const before = snapshot(m, everyone);
    const got = m.allocateSlots(r, n, { blocks: hitBlocks, numComputedTokens: hitTokens });
    if (got === null) {
      expect(snapshot(m, everyone)).toEqual(before);
      return false;
    }
    // new blocks come from the head of the free queue, after the hit blocks have left it
    expect(got).toEqual(before.free.filter((id) => !hitBlocks.includes(id)).slice(0, got.length));
    return true;
  };

  const apply = (o: Op) => {
    switch (o.kind) {
      case "arrive": {
        const prompt = [...SHARED_PREFIXES[o.prefix].slice(0, o.length), ...o.tail];
        waiting.push(request(prompt));
        return;
      }
      case "admit": {
        if (waiting.length === 0) return;
        const r = waiting[o.pick % waiting.length];
        const hit = m.getComputedBlocks(r);
        expect(hit.numComputedTokens).toBe(hit.blocks.length * blockSize);
        expect(hit.numComputedTokens).toBeLessThan(r.numTokens);
        if (!prefixCaching) expect(hit.blocks).toEqual([]);
        const hitContent = hit.blocks.flatMap((id) => [...kv.subarray(id * blockSize, (id + 1) * blockSize)]);
        expect(hitContent).toEqual(r.allTokenIds.slice(0, hit.numComputedTokens));
        const n = Math.min(o.chunk, r.numTokens - hit.numComputedTokens);
        if (!allocate(r, n, hit.blocks, hit.numComputedTokens)) return;
        expect(m.getBlockIds(r.id).slice(0, hit.blocks.length)).toEqual(hit.blocks);
        compute(r, hit.numComputedTokens, hit.numComputedTokens + n);
        waiting.splice(waiting.indexOf(r), 1);
        running.push(r);
        return;
      }
      case "step": {
        if (running.length === 0) return;
        const r = running[o.pick % running.length];
        if (r.numComputedTokens === r.numTokens) {
          if (r.numTokens === maxModelLen) return;
          r.appendOutputTokenIds([o.token]);
        }
        const n = Math.min(o.chunk, r.numTokens - r.numComputedTokens);
        if (allocate(r, n)) compute(r, r.numComputedTokens, r.numComputedTokens + n);
        return;
      }
      case "finish":
      case "preempt": {
        if (running.length === 0) return;
        const [r] = running.splice(o.pick % running.length, 1);
        m.free(r);
        expect(m.getBlockIds(r.id)).toEqual([]);
        if (o.kind === "preempt") {
          r.numComputedTokens = 0;
          r.numPreemptions++;
          waiting.push(r);
        }
        return;
      }
    }
  };

  const checkInvariants = () => {
    const pool = m.blockPool;
    const tables = running.map((r) => m.getBlockIds(r.id));
    const slots = running.map((r) => (allocation === "contiguous" ? maxModelLen : r.numComputedTokens));
    expect(tables.map((t) => t.length)).toEqual(slots.map((n) => Math.ceil(n / blockSize)));
    expect(tables.every((t) => new Set(t).size === t.length)).toBe(true);
    expect(waiting.every((r) => m.getBlockIds(r.id).length === 0)).toBe(true);
    expect(tables.flat().every((id) => Number.isInteger(id) && id >= 0 && id < numBlocks)).toBe(true);
    const holders = new Array<number>(numBlocks).fill(0);
    for (const t of tables) for (const id of t) holders[id]++;
    // each ref count is the number of block tables holding the block; a block is free exactly when unheld
    expect(range(numBlocks).map((id) => pool.refCount(id))).toEqual(holders);
    expect(range(numBlocks).map((id) => pool.isFree(id))).toEqual(holders.map((n) => n === 0));
    const inUse = holders.filter((n) => n > 0).length;
    expect(m.usage).toBeCloseTo(inUse / numBlocks, 12);
  };

  for (const o of ops) {
    apply(o);
    checkInvariants();
  }
  for (const r of running) m.free(r);
  expect(m.blockPool.numFreeBlocks).toBe(numBlocks);
  expect(m.usage).toBe(0);
}

describe("KVCacheManager under random interleavings", () => {
  it("keeps ref counts, free queue, block tables and cached content consistent", () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 40, maxLength: 150 }),
        fc.constantFrom(2, 4),
        fc.boolean(),
        fc.constantFrom<KvAllocation>("paged", "paged", "contiguous"),
        runScenario,
      ),
      { numRuns: 200 },
    );
  });
});

// The same budget, 5,120 tokens, in blocks of 16 (the default) and of 8. Paged admission reaches
// mean tokens / (mean tokens + mean tail waste) of budget / actual tokens: ~84% at 16 for ~40-token
// requests (a tail wastes 7.5 slots on average), above the 90% target at 8.
describe.each([
  { blockSize: 16, target: undefined },
  { blockSize: 8, target: 0.9 },
])("the memory effect of paging (issue 5, item 4), blocks of $blockSize", ({ blockSize, target }) => {
  const maxModelLen = 512;
  const budgetBlocks = 5120 / blockSize;
  /** A deterministic workload of requests of about 40 tokens: prompt 20..32, output 8..20. */
  const workload = range(1000).map((i) => ({ prompt: 20 + ((i * 7) % 13), output: 8 + ((i * 5) % 13) }));

  /** Admits requests in order, each run to completion, until one does not fit; they all stay running. */
  function admitUntilFull(allocation: KvAllocation) {
    const m = new KVCacheManager({ numBlocks: budgetBlocks, maxModelLen, blockSize, allocation });
    const admitted: Request[] = [];
    for (const [i, w] of workload.entries()) {
      expect(m.admissionError(w.prompt, w.output)).toBeUndefined();
      const r = request(range(w.prompt, i * 1000)); // no shared prefixes: paging alone is measured
      let fits = admit(m, r) !== null;
      for (let t = 0; fits && t < w.output; t++) fits = decode(m, r, 1) !== null;
      if (!fits) break;
      admitted.push(r);
    }
    const usedSlots = admitted.reduce((n, r) => n + r.numTokens, 0);
    const allocatedSlots = (budgetBlocks - m.blockPool.numFreeBlocks) * blockSize;
    return { m, admitted, usedSlots, allocatedSlots };
  }

  it("contiguous admits floor(blocks / (maxModelLen / blockSize)); paged admits all whose rounded-up blocks fit, wasting < 1 block each", () => {
    const contiguous = admitUntilFull("contiguous");
    expect(contiguous.admitted).toHaveLength(Math.floor(budgetBlocks / (maxModelLen / blockSize)));

    const paged = admitUntilFull("paged");
    // independent count: requests fit while the sum of their ceil(tokens / blockSize) stays within the budget
    let expected = 0;
    for (let used = 0; ; expected++) {
      const w = workload[expected];
      used += Math.ceil((w.prompt + w.output) / blockSize);
      if (used > budgetBlocks) break;
    }
    expect(paged.admitted).toHaveLength(expected);
    for (const r of paged.admitted) {
      const waste = paged.m.getBlockIds(r.id).length * blockSize - r.numTokens;
      expect(waste).toBeGreaterThanOrEqual(0);
      expect(waste).toBeLessThan(blockSize);
    }
    const waste = paged.allocatedSlots - paged.usedSlots;
    expect(waste).toBeLessThan(blockSize * paged.admitted.length);

    const meanTokens = paged.usedSlots / paged.admitted.length;
    const ideal = (budgetBlocks * blockSize) / meanTokens;
    const ratio = paged.admitted.length / ideal;
    // the waste bound above implies this
    expect(ratio).toBeGreaterThanOrEqual(meanTokens / (meanTokens + blockSize - 1));
    if (target !== undefined) expect(ratio).toBeGreaterThanOrEqual(target);
    console.log(
      `memory effect: budget ${budgetBlocks} blocks × ${blockSize} = ${budgetBlocks * blockSize} tokens, maxModelLen ${maxModelLen}, ` +
        `mean request ${meanTokens.toFixed(1)} tokens: contiguous ${contiguous.admitted.length}, paged ${paged.admitted.length} ` +
        `(${(paged.admitted.length / contiguous.admitted.length).toFixed(1)}x); budget/actual = ${ideal.toFixed(1)}, ` +
        `paged = ${(100 * ratio).toFixed(1)}% of it; waste ${waste} slots = ${(waste / paged.admitted.length).toFixed(1)} per request`,
    );
  });
});
