import { describe, expect, it } from "vitest";
import { kvCacheGroups } from "../../src/core/kv-cache-groups.js";
import type { SchedulerOutput } from "../../src/core/scheduler-output.js";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/engine-config.js";
import { CostModel } from "../../src/sim/cost-model.js";
import { hardwareProfile } from "../../src/sim/hardware.js";
import { forwardSeconds, withMeasuredRates } from "../../src/sim/measured-rates.js";
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
    const cost = new CostModel(model.config, "fp16", "fp16", h100);
    // One decode of a request with 999 tokens computed: weights + 1000 tokens of K/V.
    const output = {
      scheduled: [{ numComputedTokens: 999, numNewTokens: 1, samples: true }],
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
    attentionFlopsPerS: 4e9,
    samplingSecondsPerLogit: 2e-9,
  };

  it("interpolates the forward curve between batch sizes and scales it beyond the last", () => {
    expect(forwardSeconds(rates, 1e6, 1)).toBeCloseTo(1e-4, 15);
    expect(forwardSeconds(rates, 1e6, 3)).toBeCloseTo(2.5e-4, 15); // halfway from 2 to 4
    expect(forwardSeconds(rates, 1e6, 48)).toBeCloseTo(7e-4, 15); // halfway from 32 to 64
    expect(forwardSeconds(rates, 1e6, 640)).toBeCloseTo(8e-3, 15); // ten chunks of 64
    expect(forwardSeconds(rates, 1e6, 0)).toBe(0);
  });

  it("adds the measured forward pass, attention, sampling and overhead for a step", () => {
    const model = modelProfile("small-160m");
    const c = model.config;
    const hardware = { ...hardwareProfile("h100-80gb"), stepOverheadS: 0.001, measuredRates: rates };
    const cost = new CostModel(c, "int8", "fp32", hardware);
    // Two decodes at contexts 100 and 200 (one new token each), both sampling.
    const output = {
      scheduled: [
        { numComputedTokens: 99, numNewTokens: 1, samples: true },
        { numComputedTokens: 199, numNewTokens: 1, samples: true },
      ],
      numScheduledTokens: 2,
    } as unknown as SchedulerOutput;
    const classifier = c.vocabSize * c.dim;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    // Every weight a token passes through but the embedding table: matrices and norms.
    const norms = (2 * c.nLayers + 1) * c.dim;
    const body = c.nLayers * (2 * c.dim * qDim + 2 * c.dim * kvDim + 3 * c.dim * c.hiddenDim) + norms;
    const bytesPerParam = 34 / 32;
    const expected =
      body * bytesPerParam * 2e-10 + // two tokens: the curve at batch 2
      classifier * bytesPerParam * 2e-10 + // two sampled rows
      (4 * c.nLayers * qDim * (100 + 200)) / 4e9 + // attention pairs
      2 * c.vocabSize * 2e-9 + // sampling
      0.001;
    expect(cost.stepTime(output)).toBeCloseTo(expected, 12);
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
    vocabSize: 256,
  };
  const ratesFor = { config, weightDtype: "int8", kvDtype: "fp16" } as const;

  it("are measured for cpu-local only", async () => {
    const h100 = hardwareProfile("h100-80gb");
    expect(await withMeasuredRates(h100, ratesFor)).toBe(h100);
    const local = await withMeasuredRates({ ...h100, name: "cpu-local" }, ratesFor);
    const r = local.measuredRates as MeasuredRates;
    expect(r.batches).toEqual([1, 2, 4, 8, 16, 32, 64]);
    for (const x of [...r.secondsPerWeightByte, r.attentionFlopsPerS, r.samplingSecondsPerLogit])
      expect(Number.isFinite(x) && x > 0).toBe(true);
    // 64 tokens cost more than one: every token goes through every weight
    expect(r.secondsPerWeightByte[6]).toBeGreaterThan(r.secondsPerWeightByte[0]);
  });
});
