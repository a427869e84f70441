import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { samplingParams } from "../../src/core/sampling-params.js";
import { createEngine } from "../../src/engine/create-engine.js";
import { EngineMonitor } from "../../src/engine/engine-monitor.js";
import { type EngineSnapshot, EVICTABLE, FREE } from "../../src/engine/engine-snapshot.js";
import { RecordRing } from "../../src/engine/record-ring.js";
import type { RequestMetrics, StepStats } from "../../src/engine/stats.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";

/** The snapshot's block owners, one per usable block (index i is block id i + 1). */
function owners(s: EngineSnapshot): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.blocks.owners.length; i += 2) {
    for (let n = 0; n < s.blocks.owners[i + 1]; n++) out.push(s.blocks.owners[i]);
  }
  return out;
}

/** An engine over a random-weight model with `numBlocks` KV blocks, watched by a monitor. */
async function watchedEngine(numBlocks: number) {
  const { engine } = await createEngine(syntheticModel("tiny-test", "f32"), {
    numBlocks,
    backend: "reference",
  });
  return { engine, monitor: new EngineMonitor(engine) };
}

async function drain(streams: AsyncIterable<unknown>[]) {
  await Promise.all(
    streams.map(async (stream) => {
      for await (const _ of stream);
    }),
  );
}

describe("EngineMonitor snapshots", () => {
  test("the block map agrees with the block pool after every step: owners, shared ref counts, evictable blocks", async () => {
    const { engine, monitor } = await watchedEngine(40);
    const pool = engine.core.kvCacheManager.blockPool;
    let sawShared = false;
    let sawEvictable = false;
    const check = () => {
      const s = monitor.snapshot();
      const map = owners(s);
      expect(map).toHaveLength(pool.numUsableBlocks);
      map.forEach((owner, i) => {
        const id = i + 1;
        if (owner >= 0) {
          expect(pool.refCount(id)).toBeGreaterThan(0);
          // The owner is a running request whose block table holds the block.
          const tables = engine.core.kvCacheManager.getBlockIds(s.running[owner].id);
          expect(tables.some((table) => table.includes(id))).toBe(true);
        } else {
          expect(pool.isFree(id)).toBe(true);
          expect(owner).toBe(pool.blockHash(id) === undefined ? FREE : EVICTABLE);
        }
      });
      const shared = new Map(s.blocks.shared);
      for (let id = 1; id < pool.numBlocks; id++) {
        expect(shared.get(id)).toBe(pool.refCount(id) > 1 ? pool.refCount(id) : undefined);
      }
      sawShared ||= s.blocks.shared.length > 0;
      sawEvictable ||= map.includes(EVICTABLE);
    };
    engine.onStep(check);
    const params = samplingParams({ maxTokens: 20, ignoreEos: true });
    const prefix = Array.from({ length: 48 }, (_, i) => 10 + i); // 3 full blocks of 16
    await drain([
      engine.generate([...prefix, 100, 101], params),
      engine.generate([...prefix, 200, 201, 202], params),
      engine.generate([300, 301, 302], params),
    ]);
    // Two requests share the 3 blocks of their common prefix; once all finish, cached blocks are evictable.
    expect(sawShared).toBe(true);
    check();
    expect(sawEvictable).toBe(true);
    expect(monitor.snapshot().running).toEqual([]);
  });

  test("steps add up to what the scheduler computed: each prompt once (less cache hits) and one decode per later token", async () => {
    const { engine, monitor } = await watchedEngine(64);
    const finished: RequestMetrics[] = [];
    engine.onRequestFinished((m) => finished.push(m));
    const params = samplingParams({ maxTokens: 12, ignoreEos: true });
    await drain(
      [5, 30, 70].map((length, p) =>
        engine.generate(
          Array.from({ length }, (_, i) => 1 + p + i),
          params,
        ),
      ),
    );
    const s = monitor.snapshot();
    const prefill = s.steps.rows.reduce((n, row) => n + row[1], 0);
    const decode = s.steps.rows.reduce((n, row) => n + row[2], 0);
    expect(prefill).toBe(finished.reduce((n, m) => n + m.numPromptTokens - m.numCachedTokens, 0));
    expect(decode).toBe(finished.reduce((n, m) => n + m.numGenerationTokens - 1, 0));
    expect(s.steps.rows.map((row) => row[0])).toEqual(
      [...s.steps.rows.map((row) => row[0])].sort((a, b) => a - b),
    );
    expect(s.finished.rows.map((row) => [row[1], row[2], row[3]])).toEqual(
      finished.map((m) => [m.ttft, m.tpot, m.numGenerationTokens]),
    );
    // A later snapshot from the cursor carries only what happened since.
    const later = monitor.snapshot({ steps: s.steps.next, finished: s.finished.next });
    expect(later.steps.rows).toEqual([]);
    expect(later.finished.rows).toEqual([]);
  });

  test("a request preempted for lack of blocks is listed as preempted, not waiting, until it runs again", async () => {
    // 4 requests that each grow to 8 blocks, in 17 usable blocks: some must give theirs back.
    const { engine, monitor } = await watchedEngine(18);
    let preemptedSeen = 0;
    engine.onStep((stats: StepStats) => {
      const s = monitor.snapshot();
      expect(s.numPreempted).toBe(s.preempted.length);
      expect(s.preempted.every((r) => r.preemptions > 0 && r.blocks === 0)).toBe(true);
      expect(s.waiting.every((r) => r.preemptions === 0)).toBe(true);
      if (stats.numPreempted > 0) {
        expect(s.numPreempted).toBeGreaterThanOrEqual(stats.numPreempted);
        preemptedSeen++;
      }
    });
    const params = samplingParams({ maxTokens: 100, ignoreEos: true });
    await drain(
      [0, 1, 2, 3].map((p) =>
        engine.generate(
          Array.from({ length: 20 }, (_, i) => 1 + 40 * p + i),
          params,
        ),
      ),
    );
    expect(preemptedSeen).toBeGreaterThan(0);
  });
});

describe("RecordRing", () => {
  test("since(from) gives the retained rows from `from` on, oldest first, numbered as pushed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.nat(40), fc.nat(45), (capacity, pushes, from) => {
        const ring = new RecordRing<[number, number]>(capacity, 2);
        for (let n = 0; n < pushes; n++) ring.push([n, -n]);
        const { first, next, rows } = ring.since(from);
        const expected: [number, number][] = [];
        for (let n = Math.max(from, pushes - capacity); n < pushes; n++) expected.push([n, -n]);
        expect(rows).toEqual(expected);
        expect(next).toBe(pushes);
        if (rows.length > 0) expect(first).toBe(rows[0][0]);
      }),
    );
  });
});
