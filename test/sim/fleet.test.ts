import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { BlockHash } from "../../src/core/block-hash.js";
import { kvCacheGroups } from "../../src/core/kv-cache-groups.js";
import { defaultEngineConfig } from "../../src/engine/engine-config.js";
import { type FleetInput, simulateFleet } from "../../src/sim/fleet.js";
import { fleetRow } from "../../src/sim/fleet-report.js";
import { hardwareProfile } from "../../src/sim/hardware.js";
import { KvEventTap } from "../../src/sim/kv-events.js";
import { modelProfile } from "../../src/sim/model-profile.js";
import { type RouterName, routerNames } from "../../src/sim/routers.js";
import { simSetup } from "../../src/sim/sim-setup.js";
import { simulate, simulation } from "../../src/sim/simulator.js";
import { chatSessions } from "../../src/workload/chat.js";
import type { WorkloadPrompt } from "../../src/workload/dataset.js";
import { WorkloadRandom } from "../../src/workload/random.js";
import { type WorkloadFlags, workloadFrom } from "../../src/workload/workload.js";

/** llama3-8b on an H100 by the datasheet, with a 4 GB KV cache so that each replica's block pool stays small. */
const { engine, cost } = simSetup({
  model: modelProfile("llama3-8b"),
  hardware: hardwareProfile("h100-80gb"),
  weightDtype: "fp16",
  kvDtype: "fp16",
  overheadBytes: 2e9,
  kvCacheBytes: 4e9,
  maxModelLen: 8192,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 2048,
  blockSize: 16,
  settings: { kvAllocation: "paged", batching: "continuous", prefixCaching: true },
});
const stepTime = (output: Parameters<typeof cost.stepTime>[0]) => cost.stepTime(output);

/** The chat workload of the tests below; `random` swaps in random prompts of the same lengths. */
const flags = (o: Partial<WorkloadFlags> = {}): WorkloadFlags => ({
  dataset: "chat",
  numPrompts: 60,
  inputLen: 48,
  outputLen: 24,
  rangeRatio: 0.5,
  prefixLen: 96,
  systemPrompts: 4,
  turns: 3,
  thinkTime: 0.5,
  vocabSize: 32000,
  requestRate: "40",
  burstiness: 1,
  seed: 0,
  ...o,
});

/** A fleet of 4 on the chat workload `flags` makes, seeded by the workload's seed. */
const fleet = ({ flags: f, ...o }: Partial<FleetInput> & { flags?: Partial<WorkloadFlags> }) =>
  simulateFleet({
    ...workloadFrom(flags(f)),
    replicas: 4,
    router: "round-robin",
    scrapeInterval: 0.05,
    engine,
    stepTime,
    ...o,
  });

describe("simulateFleet", () => {
  it("with one replica, gives every router the single-engine simulation's per-request timings", () => {
    const random = { dataset: "random", systemPrompts: undefined, turns: undefined, thinkTime: undefined };
    for (const [label, dataset] of [
      ["chat", {}],
      ["random", random],
    ] as const) {
      const workload = workloadFrom(flags({ ...dataset, numPrompts: 80, requestRate: "60" }));
      const single = simulate({ ...workload, engine, stepTime });
      for (const name of routerNames) {
        for (const scrapeInterval of [0, 0.05, Number.POSITIVE_INFINITY]) {
          const run = fleet({
            router: name,
            replicas: 1,
            scrapeInterval,
            flags: { ...dataset, numPrompts: 80, requestRate: "60" },
          });
          expect(run.records, `${label}, ${name}, ${scrapeInterval}`).toEqual(single.records);
          expect(run.duration).toBe(single.duration);
          expect(run.replicas[0].steps).toBe(single.steps);
        }
      }
    }
  });

  it("sends every request to one replica and completes it once", () => {
    const run = fleet({ router: "prefix-aware" });
    expect(run.records.every((r) => r.success)).toBe(true);
    expect(run.replicaOf).toHaveLength(60);
    expect(run.replicas.reduce((a, r) => a + r.requests, 0)).toBe(60);
    run.replicas.forEach((r, i) => {
      expect(r.requests).toBe(run.replicaOf.filter((x) => x === i).length);
    });
  });

  // With KV events delivered live or at the gateway's default 50 ms; events a second old leave the first second's
  // requests to the tie-break, which can be luckier or not than round-robin's order.
  it("gives prefix-aware routing at least round-robin's prefix hit rate on the shared-prefix chat workload", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 20, max: 120 }),
        fc.constantFrom(0, 0.05),
        (seed, replicas, numPrompts, scrapeInterval) => {
          const hitRate = (name: RouterName) =>
            fleetRow(name, 0, fleet({ router: name, replicas, scrapeInterval, flags: { seed, numPrompts } }))
              .prefixHitRate;
          expect(hitRate("prefix-aware")).toBeGreaterThanOrEqual(hitRate("round-robin"));
        },
      ),
      { numRuns: 40 },
    );
  });

  it("balances a skewed workload at least as well with least-queue as with round-robin", () => {
    // Every fourth request is long: round-robin over 4 replicas sends them all to the same one.
    const prompts: WorkloadPrompt[] = Array.from({ length: 120 }, (_, i) => ({
      promptTokenIds: Array.from(
        { length: i % 4 === 0 ? 3000 : 100 },
        (_, j) => 3 + ((i * 7919 + j) % 30000),
      ),
      promptText: "",
      textIsPrompt: false,
      outputLen: i % 4 === 0 ? 400 : 20,
    }));
    const sendTimes = prompts.map((_, i) => i * 0.01);
    for (const seed of [0, 1, 2, 3]) {
      const imbalance = (name: RouterName) =>
        fleetRow(
          name,
          0,
          simulateFleet({
            prompts,
            sendTimes,
            replicas: 4,
            router: name,
            scrapeInterval: 0.05,
            engine,
            stepTime,
            seed,
          }),
        ).tokenImbalance;
      expect(imbalance("least-queue")).toBeLessThanOrEqual(imbalance("round-robin"));
    }
  });

  it("routes on scraped state only: never scraped after the start, the scorers tie and the picker's draw decides", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom<RouterName>("least-queue", "kv-usage", "prefix-aware"),
        (seed, replicas, name) => {
          const run = fleet({
            router: name,
            replicas,
            scrapeInterval: Number.POSITIVE_INFINITY,
            flags: { requestRate: "200", seed },
          });
          const draws = new WorkloadRandom(seed);
          expect(run.replicaOf).toEqual(run.replicaOf.map(() => draws.int(0, replicas - 1)));
        },
      ),
      { numRuns: 20 },
    );
  });

  it("rejects a replica count or scrape interval it cannot run", () => {
    expect(() => fleet({ router: "round-robin", replicas: 0 })).toThrow(
      /replicas must be a positive integer, got 0/,
    );
    expect(() => fleet({ router: "round-robin", scrapeInterval: -1 })).toThrow(
      /scrapeInterval must be at least 0/,
    );
  });
});

describe("KvEventTap", () => {
  it("rebuilds the block pool's cached set from each step's events, evictions included", () => {
    const small = {
      ...defaultEngineConfig,
      maxModelLen: 1024,
      numBlocks: 80,
      kvCacheGroups: kvCacheGroups([0], true),
    };
    const { prompts, sendTimes } = chatSessions(
      {
        numPrompts: 80,
        systemPrompts: 6,
        systemPromptLen: 64,
        inputLen: 32,
        outputLen: 24,
        rangeRatio: 0.5,
        turns: 3,
        thinkTime: 0.2,
        requestRate: 20,
        burstiness: 1,
        vocabSize: 500,
      },
      new WorkloadRandom(7),
    );
    const steps = simulation({
      prompts,
      sendTimes,
      maxConcurrency: Number.POSITIVE_INFINITY,
      engine: small,
      stepTime: () => 0.01,
      seed: 0,
    });
    let tap: KvEventTap | undefined;
    const held = new Set<BlockHash>();
    let evictions = 0;
    for (let next = steps.next(); !next.done; next = steps.next()) {
      const { output, kvCacheManager } = next.value;
      if (!output) continue;
      const pool = kvCacheManager.blockPool;
      tap ??= new KvEventTap(pool, kvCacheManager.blockSize);
      const events = tap.afterStep(output);
      for (const h of events.removed) expect(held.delete(h)).toBe(true);
      for (const h of events.stored) held.add(h);
      const cached = new Set<BlockHash>();
      for (let id = 1; id < pool.numBlocks; id++) {
        const hash = pool.blockHash(id);
        if (hash !== undefined) cached.add(hash);
      }
      expect(held).toEqual(cached);
      evictions = pool.numEvictions;
    }
    expect(evictions).toBeGreaterThan(0);
  });
});

describe("chat sessions", () => {
  it("repeat the conversation so far, system prompt included, at least the think time after the turn before", () => {
    const o = {
      numPrompts: 200,
      systemPrompts: 5,
      systemPromptLen: 40,
      inputLen: 20,
      outputLen: 10,
      rangeRatio: 0.5,
      turns: 3,
      thinkTime: 1,
      requestRate: 10,
      burstiness: 1,
      vocabSize: 500,
    };
    const { prompts, sendTimes } = chatSessions(o, new WorkloadRandom(3));
    expect(prompts).toHaveLength(200);
    expect(sendTimes).toEqual([...sendTimes].sort((a, b) => a - b));
    expect(new Set(prompts.map((p) => p.promptTokenIds.slice(0, 40).join())).size).toBeLessThanOrEqual(5);
    const later = prompts.filter((p) => p.promptTokenIds.length > 40 + 30);
    expect(later.length).toBeGreaterThan(0);
    for (const p of later) {
      const at = prompts.indexOf(p);
      const before = prompts
        .slice(0, at)
        .findIndex((q) =>
          [...q.promptTokenIds, ...(q.replyTokenIds ?? [])].every((id, i) => p.promptTokenIds[i] === id),
        );
      expect(before).toBeGreaterThanOrEqual(0);
      expect(sendTimes[at] - sendTimes[before]).toBeGreaterThanOrEqual(1);
    }
    for (const p of prompts) expect(p.replyTokenIds).toHaveLength(p.outputLen);
  });

  it("let a later turn hit the earlier turn's prompt and reply in the prefix cache", () => {
    const first: WorkloadPrompt = {
      promptTokenIds: Array.from({ length: 32 }, (_, i) => 3 + i),
      promptText: "",
      textIsPrompt: false,
      outputLen: 32,
      replyTokenIds: Array.from({ length: 32 }, (_, i) => 100 + i),
    };
    const second: WorkloadPrompt = {
      promptTokenIds: [...first.promptTokenIds, ...(first.replyTokenIds as number[]), 7, 8, 9],
      promptText: "",
      textIsPrompt: false,
      outputLen: 4,
    };
    const run = simulateFleet({
      prompts: [first, second],
      sendTimes: [0, 10],
      replicas: 1,
      router: "round-robin",
      scrapeInterval: 0,
      engine,
      stepTime,
      seed: 0,
    });
    // Tokens 0–62 were computed (the last reply token never is): three full blocks of 16.
    expect(run.replicas[0].prefixCache.hits).toBe(48);
  });
});
