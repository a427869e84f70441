import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { createEngine } from "../../src/engine/create-engine.js";
import { defaultEngineConfig } from "../../src/engine/engine-config.js";
import {
  decodeStepsPerChunk,
  minStepBudget,
  prefillBudget,
  type StepRates,
  stepBudgets,
} from "../../src/engine/step-budget.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { measureStepRates } from "../../src/workload/step-rates.js";

const rates = fc.record({
  decodeStepSeconds: fc.double({ min: 1e-4, max: 1, noNaN: true }),
  prefillTokenSeconds: fc.double({ min: 1e-7, max: 0.1, noNaN: true }),
});
const blockSizes = fc.constantFrom(1, 8, 16, 32, 48, 64, 128, 256);

describe("prefillBudget: the prefill chunk of about 2 decode steps", () => {
  test("whole blocks within the bounds, costing at most 2 decode steps above the floor, the most that does", () => {
    fc.assert(
      fc.property(rates, blockSizes, (r: StepRates, blockSize) => {
        const b = prefillBudget(r, blockSize);
        const lower = Math.ceil(Math.max(minStepBudget, blockSize) / blockSize) * blockSize;
        const upper = Math.max(
          lower,
          Math.floor(defaultEngineConfig.maxNumBatchedTokens / blockSize) * blockSize,
        );
        const allowed = decodeStepsPerChunk * r.decodeStepSeconds;
        expect(b % blockSize).toBe(0);
        expect(b).toBeGreaterThanOrEqual(lower);
        expect(b).toBeLessThanOrEqual(upper);
        if (b > lower) expect(b * r.prefillTokenSeconds).toBeLessThanOrEqual(allowed * (1 + 1e-12));
        if (b < upper) expect((b + blockSize) * r.prefillTokenSeconds).toBeGreaterThan(allowed * (1 - 1e-12));
      }),
    );
  });

  test("examples: a 2-core CPU hits the floor, a fast prefill the old default", () => {
    // small-160m on 2 threads: ~8 ms a decode step, ~0.6 ms a prefill token.
    expect(prefillBudget({ decodeStepSeconds: 0.008, prefillTokenSeconds: 0.0006 }, 16)).toBe(64);
    expect(prefillBudget({ decodeStepSeconds: 0.02, prefillTokenSeconds: 0.0001 }, 16)).toBe(400);
    expect(prefillBudget({ decodeStepSeconds: 0.05, prefillTokenSeconds: 1e-6 }, 16)).toBe(2048);
  });
});

describe("stepBudgets: measured unless the user set either flag", () => {
  const measured: StepRates = { decodeStepSeconds: 0.02, prefillTokenSeconds: 0.0001 };

  test("with neither flag each step's prefill is capped at the prefill budget; decodes keep the fixed total", () => {
    expect(stepBudgets({}, measured, 16)).toEqual({
      maxNumBatchedTokens: defaultEngineConfig.maxNumBatchedTokens,
      longPrefillTokenThreshold: defaultEngineConfig.longPrefillTokenThreshold,
      maxPrefillTokensPerStep: 400,
      measured: true,
    });
  });

  test("a flag the user gave wins, and the other keeps its fixed default; no rates, fixed defaults", () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
        fc.option(rates, { nil: undefined }),
        (maxNumBatchedTokens, longPrefillTokenThreshold, r) => {
          fc.pre(maxNumBatchedTokens !== undefined || longPrefillTokenThreshold !== undefined || !r);
          expect(stepBudgets({ maxNumBatchedTokens, longPrefillTokenThreshold }, r, 16)).toEqual({
            maxNumBatchedTokens: maxNumBatchedTokens ?? defaultEngineConfig.maxNumBatchedTokens,
            longPrefillTokenThreshold:
              longPrefillTokenThreshold ?? defaultEngineConfig.longPrefillTokenThreshold,
            maxPrefillTokensPerStep: 0,
            measured: false,
          });
        },
      ),
    );
  });
});

describe("createEngine's step budgets", () => {
  const model = syntheticModel("tiny-test", "f32");

  test("fixed defaults unless given measured rates; then the prefill budget, named in the summary", async () => {
    const plain = await createEngine(model, { backend: new ReferenceBackend(model), numBlocks: 16 });
    expect(plain.engine.core.config.maxNumBatchedTokens).toBe(defaultEngineConfig.maxNumBatchedTokens);
    expect(plain.engine.core.config.longPrefillTokenThreshold).toBe(0);
    expect(plain.summary).not.toContain("measured rates");

    const backend = new ReferenceBackend(model);
    const stepRates = await measureStepRates(backend, {
      vocabSize: model.config.vocabSize,
      blockSize: 16,
      dtype: "f32",
      contextLength: model.config.maxSeqLen,
    });
    for (const x of [stepRates.decodeStepSeconds, stepRates.prefillTokenSeconds])
      expect(Number.isFinite(x) && x > 0).toBe(true);
    const budget = prefillBudget(stepRates, 16);
    const tuned = await createEngine(model, { backend, numBlocks: 16, stepRates });
    expect(tuned.engine.core.config.maxNumBatchedTokens).toBe(defaultEngineConfig.maxNumBatchedTokens);
    expect(tuned.engine.core.config.maxPrefillTokensPerStep).toBe(budget);
    expect(tuned.summary).toContain(
      `prefill budget ${budget} tokens per step from measured rates (decode step `,
    );

    const given = await createEngine(model, { backend, numBlocks: 16, stepRates, maxNumBatchedTokens: 300 });
    expect(given.engine.core.config.maxNumBatchedTokens).toBe(300);
    expect(given.engine.core.config.longPrefillTokenThreshold).toBe(0);
    expect(given.engine.core.config.maxPrefillTokensPerStep).toBe(0);
    expect(given.summary).not.toContain("measured rates");
  });
});
