import { describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import type { BackendName } from "../../src/backend/native/choose-backend.js";
import { layersPerBlock } from "../../src/core/kv-cache-groups.js";
import { Request } from "../../src/core/request.js";
import { samplingParams } from "../../src/core/sampling-params.js";
import { createEngine, type EngineOptions } from "../../src/engine/create-engine.js";
import type { EngineCore } from "../../src/engine/engine-core.js";
import { plainConfig } from "../../src/model/config.js";
import { syntheticModelOf } from "../../src/model/synth/synth-model.js";
import { Rng } from "../../src/util/rng.js";

// Sliding-window layers in the paged KV cache, end to end: what a sequence holds, and that giving back the
// blocks that left the window changes no output.

const WINDOW = 32;
const BLOCK_SIZE = 16;
const CONTEXT = 4096;

/** Gemma 3's layer pattern at a small width: five window layers, then a full one, twice: 6 groups of 2 layers. */
const config = plainConfig({
  dim: 32,
  hiddenDim: 64,
  nLayers: 12,
  nHeads: 2,
  nKvHeads: 1,
  headDim: 16,
  vocabSize: 300,
  maxSeqLen: CONTEXT + 64,
  normEps: 1e-6,
  ropeTheta: 10000,
  ropeStyle: "neox",
  tiedEmbeddings: true,
  attentionBias: false,
  layerWindows: Array.from({ length: 12 }, (_, l) => (l % 6 === 5 ? 0 : WINDOW)),
});

const model = syntheticModelOf(config, "f32", { seed: 7, name: "gemma-like" });
const backends: BackendName[] = loadNativeAddon() instanceof Error ? ["reference"] : ["reference", "native"];
const kvDim = config.nKvHeads * config.headDim;

async function core(backend: BackendName, options: EngineOptions): Promise<EngineCore> {
  const { engine } = await createEngine(model, {
    backend,
    threads: 1,
    blockSize: BLOCK_SIZE,
    maxNumSeqs: 16,
    ...options,
  });
  return engine.core;
}

/** Seeded token ids of the synthetic vocabulary (past its byte tokens). */
function tokens(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => 259 + Math.floor(rng.nextFloat() * (config.vocabSize - 259)));
}

function greedyRequest(id: string, prompt: number[], maxTokens: number): Request {
  return new Request({
    id,
    promptTokenIds: prompt,
    samplingParams: samplingParams({ temperature: 0, maxTokens, ignoreEos: true }),
    arrivalTime: 0,
  });
}

test("the startup line names the groups; the KV budget's cap counts what a window layer holds", async () => {
  const created = (options: EngineOptions) =>
    createEngine(model, {
      backend: "reference",
      blockSize: BLOCK_SIZE,
      maxNumSeqs: 4,
      maxModelLen: CONTEXT,
      maxNumBatchedTokens: 256,
      kvCacheMemory: "1GiB",
      ...options,
    });
  const hybrid = await created({});
  expect(hybrid.summary).toContain("× 2 layers");
  expect(hybrid.summary).toContain("6 groups of 2 layers: 1 full attention, 5 window 32");
  // 4 sequences of 4096 tokens: 256 blocks in the full group, ⌈(31 + 256) / 16⌉ + 1 = 19 in each window group
  expect(hybrid.engine.core.config.numBlocks).toBe(4 * (256 + 5 * 19) + 1);
  const kept = await created({ disableHybridKvCacheManager: true });
  expect(kept.summary).toContain("× 12 layers");
  expect(kept.summary).not.toContain("groups");
  expect(kept.engine.core.config.numBlocks).toBe(4 * 256 + 1);
});

describe.each(backends)("sliding-window layers in the paged KV cache (%s backend)", (backend) => {
  test(`a sequence at ${CONTEXT} tokens holds the window's blocks in window layers, and the same greedy ids`, async () => {
    /** Runs one request to CONTEXT tokens of context and on; the blocks in use when its last query ran at CONTEXT − 1. */
    async function run(options: EngineOptions) {
      const c = await core(backend, { numBlocks: 2 * CONTEXT, maxNumBatchedTokens: 1024, ...options });
      const request = greedyRequest("long", tokens(CONTEXT - 1, 1), 8);
      c.addRequest(request);
      let blocksInUse = 0;
      while (c.hasUnfinishedRequests) {
        await c.step();
        const pool = c.kvCacheManager.blockPool;
        if (request.numComputedTokens === CONTEXT) blocksInUse = pool.numUsableBlocks - pool.numFreeBlocks;
      }
      return {
        blocksInUse,
        layersPerBlock: layersPerBlock(c.config.kvCacheGroups),
        output: request.outputTokenIds,
      };
    }
    const hybrid = await run({});
    const kept = await run({ disableHybridKvCacheManager: true });

    // Independently of the allocator: a full layer holds every block of the context; a window layer the blocks
    // of the keys the query at CONTEXT − 1 reads, CONTEXT − WINDOW … CONTEXT − 1.
    const fullLayers = config.layerWindows.filter((w) => w === 0).length;
    const windowLayers = config.nLayers - fullLayers;
    const allBlocks = Math.ceil(CONTEXT / BLOCK_SIZE);
    const windowBlocks =
      Math.floor((CONTEXT - 1) / BLOCK_SIZE) - Math.floor((CONTEXT - WINDOW) / BLOCK_SIZE) + 1;
    expect([hybrid.layersPerBlock, kept.layersPerBlock]).toEqual([2, config.nLayers]);
    expect(hybrid.blocksInUse * hybrid.layersPerBlock).toBe(
      fullLayers * allBlocks + windowLayers * windowBlocks,
    );
    expect(kept.blocksInUse * kept.layersPerBlock).toBe(config.nLayers * allBlocks);
    const layerBlockBytes = BLOCK_SIZE * 2 * kvDim * 4;
    const bytes = (r: { blocksInUse: number; layersPerBlock: number }) =>
      r.blocksInUse * r.layersPerBlock * layerBlockBytes;
    console.log(
      `${backend}: KV per sequence at ${CONTEXT} tokens, window ${WINDOW}, ${windowLayers} window + ${fullLayers} full layers: ` +
        `${hybrid.blocksInUse} blocks of ${hybrid.layersPerBlock} layers = ${bytes(hybrid) / 1024} KiB, every block kept ` +
        `${kept.blocksInUse} blocks of ${kept.layersPerBlock} layers = ${bytes(kept) / 1024} KiB (${(bytes(hybrid) / bytes(kept)).toFixed(4)}x)`,
    );
    expect(hybrid.output).toHaveLength(8);
    expect(hybrid.output).toEqual(kept.output);
  });

  test("requests sharing prefixes, under preemption: the same greedy ids with blocks given back, kept, or no prefix cache", async () => {
    const shared = tokens(150, 2);
    const prompts = Array.from({ length: 8 }, (_, i) => [
      ...shared.slice(0, 40 + 15 * i),
      ...tokens(10 + i, 10 + i),
    ]);
    async function run(options: EngineOptions) {
      const c = await core(backend, { maxNumBatchedTokens: 64, ...options });
      const requests = prompts.map((p, i) => greedyRequest(`r${i}`, p, 24));
      let preempted = 0;
      for (const [i, r] of requests.entries()) {
        c.addRequest(r);
        // Arrivals spread over the first steps, so later ones find the earlier ones' blocks cached.
        if (i % 2 === 1) preempted += (await c.step()).stats.numPreempted;
      }
      while (c.hasUnfinishedRequests) preempted += (await c.step()).stats.numPreempted;
      const cachedTokens = requests.reduce((n, r) => n + r.numCachedTokens, 0);
      return { outputs: requests.map((r) => r.outputTokenIds), preempted, cachedTokens };
    }
    // A pool too small for all of them at once: requests are preempted and resume from cached blocks.
    const hybrid = await run({ numBlocks: 70 });
    const kept = await run({ numBlocks: 1000, disableHybridKvCacheManager: true });
    const uncached = await run({ numBlocks: 1000, enablePrefixCaching: false });
    expect(hybrid.preempted).toBeGreaterThan(0);
    expect(hybrid.cachedTokens).toBeGreaterThan(0);
    expect(uncached.cachedTokens).toBe(0);
    expect(hybrid.outputs).toEqual(kept.outputs);
    expect(hybrid.outputs).toEqual(uncached.outputs);
  });
});
