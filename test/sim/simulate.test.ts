import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { kvCacheGroups } from "../../src/core/kv-cache-groups.js";
import { type SchedulerOutput, stepShape } from "../../src/core/scheduler-output.js";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/engine-config.js";
import { prefillBudget } from "../../src/engine/step-budget.js";
import { CostModel } from "../../src/sim/cost-model.js";
import { hardwareProfile } from "../../src/sim/hardware.js";
import {
  decodeAttentionSeconds,
  forwardSeconds,
  meanRates,
  withMeasuredRates,
} from "../../src/sim/measured-rates.js";
import { modelProfile } from "../../src/sim/model-profile.js";
import { simSetup } from "../../src/sim/sim-setup.js";
import { simulate } from "../../src/sim/simulator.js";
import type { MeasuredRates } from "../../src/sim/types.js";
import type { WorkloadPrompt } from "../../src/workload/dataset.js";
import { summarize } from "../../src/workload/metrics.js";
import { type WorkloadFlags, workloadFrom } from "../../src/workload/workload.js";

const engine = (o: Partial<EngineConfig> = {}): EngineConfig => ({
  ...defaultEngineConfig,
  maxModelLen: 256,
  numBlocks: 200,
  kvCacheGroups: kvCacheGroups([0], true), // full attention: what the simulator's KV cache manager needs to know
  ...o,
});

const prompt = (length: number, outputLen: number, first = 3): WorkloadPrompt => ({
  promptTokenIds: Array.from({ length }, (_, i) => first + i),
  promptText: "",
  textIsPrompt: false,
  outputLen,
});

const flags = (o: Partial<WorkloadFlags> = {}): WorkloadFlags => ({
  dataset: "random",
  numPrompts: 60,
  inputLen: 200,
  outputLen: 40,
  rangeRatio: 0.5,
  prefixLen: 0,
  vocabSize: 500,
  requestRate: "20",
  burstiness: 1,
  seed: 0,
  ...o,
});

describe("simulate on hand-made timelines", () => {
  it("gives a lone request one step of prefill then one step per token", () => {
    const run = simulate({
      prompts: [prompt(10, 3)],
      sendTimes: [0.5],
      maxConcurrency: Number.POSITIVE_INFINITY,
      engine: engine(),
      stepTime: () => 1,
      seed: 0,
    });
    expect(run.steps).toBe(3);
    expect(run.duration).toBe(3.5);
    expect(run.records[0]).toEqual({
      success: true,
      promptTokens: 10,
      outputTokens: 3,
      sendTime: 0.5,
      ttft: 1,
      itl: [1, 1],
      e2e: 3,
    });
  });

  it("holds a request back until a client slot frees under max concurrency", () => {
    const run = simulate({
      prompts: [prompt(10, 2), prompt(10, 2, 100)],
      sendTimes: [0, 0],
      maxConcurrency: 1,
      engine: engine(),
      stepTime: () => 1,
      seed: 0,
    });
    expect(run.records[1].sendTime).toBe(2); // the first finished after its 2 steps
    expect(run.records[1].ttft).toBe(1);
    expect(run.duration).toBe(4);
  });

  it("records a request that can never run as failed, without stopping the run", () => {
    const run = simulate({
      prompts: [prompt(250, 10), prompt(10, 2)],
      sendTimes: [0, 0],
      maxConcurrency: Number.POSITIVE_INFINITY,
      engine: engine(),
      stepTime: () => 1,
      seed: 0,
    });
    expect(run.records[0].success).toBe(false);
    expect(run.records[0].error).toMatch(/exceeds maxModelLen 256/);
    expect(summarize(run.records, run.duration)).toMatchObject({ completed: 1, failed: 1 });
  });

  it("runs fewer requests at once with contiguous allocation, so they take longer", () => {
    // 2 requests of 256 fit when preallocated; paging fits all 8 (each needs 4 blocks of 16); and the null block.
    const input = {
      prompts: Array.from({ length: 8 }, (_, i) => prompt(40, 20, 3 + 50 * i)),
      sendTimes: new Array(8).fill(0),
      maxConcurrency: Number.POSITIVE_INFINITY,
      stepTime: () => 1,
      seed: 0,
    };
    const paged = simulate({ ...input, engine: engine({ numBlocks: 33 }) });
    const contiguous = simulate({ ...input, engine: engine({ numBlocks: 33, kvAllocation: "contiguous" }) });
    expect(paged.steps).toBe(20);
    expect(contiguous.steps).toBe(4 * 20);
  });
});

describe("simulate with the cost model", () => {
  const model = modelProfile("llama-2-7b");
  const h100 = hardwareProfile("h100-80gb");

  it("prices a decode step at the roofline", () => {
    const cost = new CostModel(model.config, "fp16", "fp16", h100, 16);
    // One decode of a request with 999 tokens computed: weights + 1000 tokens of K/V.
    const output = {
      scheduled: [{ numComputedTokens: 999, numNewTokens: 1, samples: true, blockIds: [blocks(1, 63)] }],
      numScheduledTokens: 1,
    } as unknown as SchedulerOutput;
    const bytes = 2 * 6_738_415_616 + 1000 * 524_288;
    expect(cost.stepTime(output)).toBeCloseTo(bytes / 3.35e12 + 0.001, 12);
  });

  it("is deterministic for a seed, and the seed matters", () => {
    const run = (seed: number) => {
      const { engine: config, cost } = simSetup({
        model,
        hardware: h100,
        weightDtype: "fp16",
        kvDtype: "fp16",
        overheadBytes: 2e9,
        maxModelLen: 4096,
        maxNumSeqs: 256,
        maxNumBatchedTokens: 2048,
        blockSize: 16,
        settings: { kvAllocation: "paged", batching: "continuous", prefixCaching: true },
      });
      const workload = workloadFrom(flags({ seed }));
      return simulate({ ...workload, engine: config, stepTime: (o) => cost.stepTime(o) });
    };
    const a = run(7);
    expect(run(7)).toEqual(a);
    expect(run(8).records).not.toEqual(a.records);
    expect(a.records.every((r) => r.success)).toBe(true);
  });

  it("takes serve's step budgets: a long-prefill threshold caps every prefill chunk", () => {
    const setup = (longPrefillTokenThreshold?: number) =>
      simSetup({
        model,
        hardware: h100,
        weightDtype: "fp16",
        kvDtype: "fp16",
        overheadBytes: 2e9,
        maxModelLen: 4096,
        maxNumSeqs: 256,
        maxNumBatchedTokens: 2048,
        longPrefillTokenThreshold,
        blockSize: 16,
        settings: { kvAllocation: "paged", batching: "continuous", prefixCaching: true },
      }).engine;
    expect(setup().longPrefillTokenThreshold).toBe(0);
    const input = {
      prompts: [prompt(200, 2)],
      sendTimes: [0],
      maxConcurrency: Number.POSITIVE_INFINITY,
      stepTime: () => 1,
      seed: 0,
    };
    // 200 prompt tokens take 4 steps to the first token in chunks of 64, one step in a single chunk.
    expect(simulate({ ...input, engine: setup(64) }).records[0].ttft).toBe(4);
    expect(simulate({ ...input, engine: setup() }).records[0].ttft).toBe(1);
  });
});

describe("the cost model with measured rates (cpu-local)", () => {
  const rates: MeasuredRates = {
    weightDtype: "int8",
    batches: [1, 2, 4, 8, 16, 32, 64],
    secondsPerWeightByte: [1, 2, 3, 4, 5, 6, 8].map((s) => s * 1e-10),
    classifierSecondsPerByte: [1, 3, 5, 7, 9, 11, 15].map((s) => s * 1e-10),
    attention: {
      decodeStepSeconds: [1, 2, 3, 4, 5, 6, 8].map((s) => s * 1e-4),
      decodePairSeconds: [8, 7, 6, 5, 4, 3, 2].map((s) => s * 1e-9),
      decodeKeySeconds: [9, 8, 7, 6, 5, 4, 3].map((s) => s * 1e-9),
      prefillStepSeconds: 1e-4,
      prefillTokenSeconds: 4e-6,
      prefillPairSeconds: 5e-10,
    },
    sampling: { stepSeconds: 2e-4, logitSeconds: 2e-9 },
    overhead: { stepSeconds: 5e-4, requestSeconds: 6e-5 },
  };
  const model = modelProfile("small-160m");
  const c = model.config;
  const hardware = { ...hardwareProfile("h100-80gb"), name: "cpu-local", measuredRates: rates };
  const cost = new CostModel(c, "int8", "fp32", hardware, 16);

  it("interpolates the forward curve between batch sizes and scales it beyond the last", () => {
    expect(forwardSeconds(rates, 1e6, 1)).toBeCloseTo(1e-4, 15);
    expect(forwardSeconds(rates, 1e6, 3)).toBeCloseTo(2.5e-4, 15); // halfway from 2 to 4
    expect(forwardSeconds(rates, 1e6, 48)).toBeCloseTo(7e-4, 15); // halfway from 32 to 64
    expect(forwardSeconds(rates, 1e6, 640)).toBeCloseTo(8e-3, 15); // ten chunks of 64
    expect(forwardSeconds(rates, 1e6, 0)).toBe(0);
  });

  it("prices decode attention at the step's number of decodes: once, per pair and per key", () => {
    const attention = (decodeRequests: number, decodePairs: number, decodeKeys: number) =>
      decodeAttentionSeconds(rates.batches, rates.attention, { decodeRequests, decodePairs, decodeKeys });
    expect(attention(0, 0, 0)).toBe(0);
    expect(attention(1, 100, 100)).toBeCloseTo(1e-4 + 100 * 8e-9 + 100 * 9e-9, 15);
    // halfway from 16 to 32 decodes
    expect(attention(24, 1000, 400)).toBeCloseTo(5.5e-4 + 1000 * 3.5e-9 + 400 * 4.5e-9, 15);
    // beyond 64: the once-a-step part grows with the decodes, the per-pair and per-key costs stay
    expect(attention(128, 1000, 500)).toBeCloseTo(16e-4 + 1000 * 2e-9 + 500 * 3e-9, 15);
  });

  it("adds the measured forward pass, attention, sampling and overhead for a step, term by term", () => {
    // Two decodes at contexts 100 and 200 (one new token each) sharing their first 6 blocks (96 keys), both
    // sampling, and a prefill chunk of 10 tokens after 50 computed ones that does not reach its prompt's end.
    const output = {
      scheduled: [
        { numComputedTokens: 99, numNewTokens: 1, samples: true, blockIds: [blocks(1, 7)] },
        {
          numComputedTokens: 199,
          numNewTokens: 1,
          samples: true,
          blockIds: [[...blocks(1, 6), ...blocks(8, 7)]],
        },
        { numComputedTokens: 50, numNewTokens: 10, samples: false, blockIds: [blocks(15, 4)] },
      ],
      numScheduledTokens: 12,
    } as unknown as SchedulerOutput;
    const shape = stepShape(output, 16);
    expect(shape).toEqual({
      contexts: [100, 200, 60],
      numRequests: 3,
      numTokens: 12,
      numSampled: 2,
      decodeRequests: 2,
      decodePairs: 300,
      decodeKeys: 300 - 96,
      prefillTokens: 10,
      prefillPairs: 10 * 50 + 55,
    });
    const classifier = c.vocabSize * c.dim;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    // Every weight a token passes through but the embedding table: matrices and norms.
    const norms = (2 * c.nLayers + 1) * c.dim;
    const body = c.nLayers * (2 * c.dim * qDim + 2 * c.dim * kvDim + 3 * c.dim * c.hiddenDim) + norms;
    const bytesPerParam = 34 / 32;
    const terms = cost.stepTerms(shape);
    // 12 tokens: the layers' curve a quarter of the way from 8 to 16; two sampled rows: the classifier's at 2.
    expect(terms.forward).toBeCloseTo(
      body * bytesPerParam * 4.5e-10 + classifier * bytesPerParam * 3e-10,
      12,
    );
    // Decode attention at 2 decodes; the prefill chunk's.
    expect(terms.attention).toBeCloseTo(2e-4 + 300 * 7e-9 + 204 * 8e-9 + 1e-4 + 10 * 4e-6 + 555 * 5e-10, 15);
    expect(terms.sampling).toBeCloseTo(2e-4 + 2 * c.vocabSize * 2e-9, 15);
    expect(terms.overhead).toBeCloseTo(5e-4 + 3 * 6e-5, 15);
    expect(cost.stepTime(output)).toBeCloseTo(
      terms.forward + terms.attention + terms.sampling + terms.overhead,
      15,
    );
  });

  it("counts every (query, key) pair of a step once: new token j of a request attends to computed + j + 1 keys", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ computed: fc.nat(500), added: fc.integer({ min: 1, max: 64 }) }), {
          maxLength: 8,
        }),
        (requests) => {
          const output = {
            scheduled: requests.map((r, i) => ({
              numComputedTokens: r.computed,
              numNewTokens: r.added,
              samples: true,
              blockIds: [blocks(1 + 40 * i, Math.ceil((r.computed + r.added) / 16))],
            })),
            numScheduledTokens: requests.reduce((n, r) => n + r.added, 0),
          } as unknown as SchedulerOutput;
          const shape = stepShape(output, 16);
          let pairs = 0;
          for (const r of requests) for (let j = 0; j < r.added; j++) pairs += r.computed + j + 1;
          expect(shape.decodePairs + shape.prefillPairs).toBe(pairs);
          expect(shape.decodeRequests + requests.filter((r) => r.added > 1).length).toBe(requests.length);
          expect(shape.prefillTokens + shape.decodeRequests).toBe(shape.numTokens);
          // No block shared: every decode reads each of its keys.
          expect(shape.decodeKeys).toBe(shape.decodePairs);
        },
      ),
    );
  });

  it("counts the keys of blocks that decodes share once", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 8 }),
        (sharedBlocks, ownTokens) => {
          // Decode i: the shared blocks 1..sharedBlocks (full), then blocks of its own, ownTokens[i] keys in all.
          const scheduled = ownTokens.map((own, i) => {
            const context = 16 * sharedBlocks + own;
            return {
              numComputedTokens: context - 1,
              numNewTokens: 1,
              samples: true,
              blockIds: [[...blocks(1, sharedBlocks), ...blocks(100 + 20 * i, Math.ceil(own / 16))]],
            };
          });
          const output = { scheduled, numScheduledTokens: scheduled.length } as unknown as SchedulerOutput;
          const shape = stepShape(output, 16);
          const contexts = ownTokens.reduce((sum, own) => sum + 16 * sharedBlocks + own, 0);
          expect(shape.decodePairs).toBe(contexts);
          expect(shape.decodeKeys).toBe(contexts - (ownTokens.length - 1) * 16 * sharedBlocks);
        },
      ),
    );
  });

  it("sets serve's prefill budget from its own step rates, as serve does from the rates it measures", () => {
    const setup = (given: { maxNumBatchedTokens?: number }) =>
      simSetup({
        model,
        hardware,
        weightDtype: "int8",
        kvDtype: "fp32",
        overheadBytes: 0,
        kvCacheBytes: 2 ** 30,
        maxModelLen: 2048,
        maxNumSeqs: 256,
        blockSize: 16,
        settings: { kvAllocation: "paged", batching: "continuous", prefixCaching: true },
        ...given,
      }).engine;
    const rates = cost.stepRates();
    // serve times a 64-token chunk's forward pass and a decode's, attention included, with one logits row each.
    const chunk = cost.stepTerms({
      contexts: [65],
      numRequests: 1,
      numTokens: 64,
      numSampled: 1,
      decodeRequests: 0,
      decodePairs: 0,
      decodeKeys: 0,
      prefillTokens: 64,
      prefillPairs: 64 + (64 * 65) / 2,
    });
    expect(rates.prefillTokenSeconds).toBeCloseTo((chunk.forward + chunk.attention) / 64, 15);
    expect(setup({}).maxPrefillTokensPerStep).toBe(prefillBudget(rates, 16));
    expect(setup({}).maxNumBatchedTokens).toBe(defaultEngineConfig.maxNumBatchedTokens);
    // A budget the user gives is kept, and nothing is capped beyond it (as serve).
    expect(setup({ maxNumBatchedTokens: 512 }).maxPrefillTokensPerStep).toBe(0);
    expect(setup({ maxNumBatchedTokens: 512 }).maxNumBatchedTokens).toBe(512);
    // Datasheet profiles (no measured rates) have no measured budget.
    expect(
      simSetup({
        model,
        hardware: hardwareProfile("h100-80gb"),
        weightDtype: "int8",
        kvDtype: "fp32",
        overheadBytes: 0,
        maxModelLen: 2048,
        maxNumSeqs: 256,
        blockSize: 16,
        settings: { kvAllocation: "paged", batching: "continuous", prefixCaching: true },
      }).engine.maxPrefillTokensPerStep,
    ).toBe(0);
  });
});

describe("measured rates", () => {
  const config = {
    ...modelProfile("small-160m").config,
    dim: 64,
    hiddenDim: 128,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 16,
    ropeDims: 16,
    layerWindows: [0, 0],
    vocabSize: 512,
  };
  const ratesFor = { config, weightDtype: "int8", kvDtype: "fp16" } as const;

  it("are measured for cpu-local only, serving the model's shapes", async () => {
    const h100 = hardwareProfile("h100-80gb");
    expect(await withMeasuredRates(h100, ratesFor)).toBe(h100);
    const local = await withMeasuredRates({ ...h100, name: "cpu-local" }, ratesFor);
    const r = local.measuredRates as MeasuredRates;
    expect(r.batches).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64]);
    const values = [
      ...r.secondsPerWeightByte,
      ...r.classifierSecondsPerByte,
      ...Object.values(r.attention).flat(),
      ...Object.values(r.sampling),
      ...Object.values(r.overhead),
    ];
    for (const x of values) expect(Number.isFinite(x) && x >= 0).toBe(true);
    for (const x of r.secondsPerWeightByte) expect(x).toBeGreaterThan(0);
    // 64 tokens cost more than one: every token goes through every weight
    expect(r.secondsPerWeightByte.at(-1)).toBeGreaterThan(r.secondsPerWeightByte[0]);
    // A step costs something beyond its forward pass: the engine's own work
    expect(r.overhead.stepSeconds + r.overhead.requestSeconds).toBeGreaterThan(0);
  });

  it("average over moments field by field", () => {
    const a = { ...ratesOf(1), batches: [1, 2] };
    const b = { ...ratesOf(3), batches: [1, 2] };
    expect(meanRates([a, b])).toEqual({ ...ratesOf(2), batches: [1, 2] });
  });
});

/** Rates whose every figure is x. */
function ratesOf(x: number): MeasuredRates {
  return {
    weightDtype: "int8",
    batches: [],
    secondsPerWeightByte: [x, x],
    classifierSecondsPerByte: [x, x],
    attention: {
      decodeStepSeconds: [x, x],
      decodePairSeconds: [x, x],
      decodeKeySeconds: [x, x],
      prefillStepSeconds: x,
      prefillTokenSeconds: x,
      prefillPairSeconds: x,
    },
    sampling: { stepSeconds: x, logitSeconds: x },
    overhead: { stepSeconds: x, requestSeconds: x },
  };
}

/** Block ids first, first + 1, … (count of them). */
function blocks(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}
