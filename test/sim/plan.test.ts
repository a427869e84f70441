import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { plainConfig } from "../../src/model/config.js";
import { InputError } from "../../src/model/errors.js";
import { hardwareProfile } from "../../src/sim/hardware.js";
import { modelProfile, parameterCount } from "../../src/sim/model-profile.js";
import { computePlan, type PlanInput } from "../../src/sim/plan.js";

const GiB = 2 ** 30;

function textbookInput(overrides: Partial<PlanInput> = {}): PlanInput {
  return {
    model: modelProfile("llama-2-7b"),
    hardware: hardwareProfile("a100-80gb"),
    weightDtype: "fp16",
    kvDtype: "fp16",
    maxModelLen: 4096,
    avgTokens: 300,
    blockSize: 16,
    overheadBytes: 2e9,
    contextTokens: 1000,
    promptTokens: 300,
    ...overrides,
  };
}

describe("plan: Llama-2-7B fp16 on an A100-80GB with 2 GB overhead", () => {
  const plan = computePlan(textbookInput());

  it("reproduces the textbook figures with its rounding (0.1 of each unit, counts down)", () => {
    const b = plan.backOfEnvelope;
    expect(b.weightsGB).toBe(14);
    expect(b.kvMBPerToken).toBe(0.5);
    expect(b.requestGB).toBe(2);
    expect(b.leftGB).toBe(64);
    expect(b.preallocatedRequests).toBe(32);
    expect(b.pagedRequests).toBe(426); // 64 GB ÷ (300 × 0.5 MB) = 426.7
    expect(b.decodeFloorMs).toBe(7.25); // (14 GB + 1000 × 0.5 MB) ÷ 2.0 TB/s
  });

  it("keeps a small model's KV per token at two significant digits instead of rounding it to 0", () => {
    const b = computePlan(textbookInput({ model: modelProfile("smollm2-135m") })).backOfEnvelope;
    expect(b.kvMBPerToken).toBe(0.023); // 30 layers × 3 KV heads × 64 × (K, V) × 2 bytes = 23,040 B
    expect(b.requestGB).toBe(0.1); // 4,096 × 0.023 MB = 0.094 GB, rounded to 0.1 GB as usual
    expect(b.preallocatedRequests).toBe(Math.floor(b.leftGB / 0.1));
    expect(b.pagedRequests).toBe(Math.floor((b.leftGB * 1e3) / (300 * 0.023)));
  });

  it("computes the exact figures from the shapes", () => {
    // Published parameter count of Llama-2-7B.
    expect(plan.params).toBe(6_738_415_616);
    expect(plan.weightBytes).toBe(2 * 6_738_415_616); // 13.48 GB: the textbook's 14 GB is 7B × 2
    // 2 (K,V) × 32 layers × 32 heads × 128 dims × 2 bytes: exactly 0.5 MiB, and 2 GiB per 4096 tokens.
    expect(plan.kvBytesPerToken).toBe(0.5 * 2 ** 20);
    expect(plan.kvBytesPerMaxRequest).toBe(2 * GiB);
    const budget = 80 * GiB - 2 * 6_738_415_616 - 2e9;
    expect(plan.kvBudgetBytes).toBe(budget);
    expect(plan.preallocated.maxRequests).toBe(32);
    expect(plan.preallocated.waste).toBeCloseTo(1 - 300 / 4096, 12);
    // Paging in 16-token blocks: 300 tokens take 19 blocks.
    const usable = Math.floor(budget / (16 * 0.5 * 2 ** 20));
    expect(plan.paged.usableBlocks).toBe(usable);
    expect(plan.paged.maxRequests).toBe(Math.floor(usable / 19));
    expect(plan.paged.maxRequests).toBe(441);
    expect(plan.paged.waste).toBeCloseTo(4 / 304, 12);
    // Decode floor: weights + 1000 tokens of KV over 2.039 TB/s.
    expect(plan.decodeFloor.bound).toBe("memory");
    expect(plan.decodeFloor.timeS).toBeCloseTo((2 * 6_738_415_616 + 1000 * 524_288) / 2.039e12, 12);
    expect(plan.decodeFloor.timeS * 1e3).toBeCloseTo(6.87, 2);
    expect(plan.longestSequence).toBe(Math.floor(budget / 524_288));
  });

  it("finds prefill compute-bound and single-stream decode memory-bound", () => {
    const long = computePlan(textbookInput({ promptTokens: 2048 }));
    expect(long.prefill.bound).toBe("compute");
    // 2 FLOPs per weight per token (embedding lookups excluded) + causal attention.
    const matmul = 6_738_415_616 - 32000 * 4096;
    expect(long.prefill.flops).toBe(2 * matmul * 2048 + 2 * 32 * 4096 * 2048 * 2048);
    expect(long.prefill.timeS).toBeCloseTo(long.prefill.flops / 312e12, 12);
  });
});

describe("plan: the longest sequence a 70B model serves on one A100-80GB, per weight dtype", () => {
  it("counts GQA's 8 KV heads, and fits only int8 and int4 for Llama-2-70B", () => {
    const plan = computePlan(
      textbookInput({ model: modelProfile("llama-2-70b"), weightDtype: "int4", maxModelLen: 4096 }),
    );
    const params = 68_976_648_192; // Llama-2-70B's published count
    expect(plan.params).toBe(params);
    expect(plan.kvBytesPerToken).toBe(2 * 80 * 8 * 128 * 2); // 320 KiB, not 8× that as with 64 KV heads
    const longest = (bytesPerWeight: number) =>
      Math.floor((80 * GiB - params * bytesPerWeight - 2e9) / 327_680);
    expect(plan.longestSequenceByDtype).toEqual({
      fp32: null,
      fp16: null,
      int8: longest(34 / 32),
      int4: longest(18 / 32),
    });
    expect(plan.longestSequenceByDtype.int8).toBe(32_384);
  });

  it("reports a model that does not fit as one InputError naming the dtypes that do", () => {
    const attempt = () => computePlan(textbookInput({ model: modelProfile("llama-3-70b") }));
    expect(attempt).toThrow(InputError);
    expect(attempt).toThrow(
      /llama-3-70b does not fit on a100-80gb: fp16 weights take 141\.\d GB.*int8.*int4/,
    );
  });
});

describe("plan: sliding-window layers hold only their window", () => {
  // Gemma 3's mix: 5 window-512 layers per full one; 1 KV head of 256, fp16: 1 KiB per layer per token.
  const config = plainConfig({
    dim: 1152,
    hiddenDim: 6912,
    nLayers: 6,
    nHeads: 4,
    nKvHeads: 1,
    headDim: 256,
    vocabSize: 32000,
    maxSeqLen: 32768,
    normEps: 1e-6,
    ropeTheta: 1e6,
    ropeStyle: "neox",
    tiedEmbeddings: true,
    attentionBias: false,
    layerWindows: [512, 512, 512, 512, 512, 0],
  });
  const plan = computePlan(
    textbookInput({
      model: { name: "gemma-like", config },
      maxModelLen: 4096,
      avgTokens: 1000,
      contextTokens: 3000,
    }),
  );
  const layerToken = 1024;

  it("counts a window layer's K/V up to its window, per request, per step and in the longest sequence", () => {
    expect(plan.kvBytesPerToken).toBe(6 * layerToken);
    expect(plan.kvBytesPerMaxRequest).toBe((5 * 512 + 4096) * layerToken);
    // paged at 1000 tokens: 32 blocks of 16 in the window layers (512 tokens), 63 in the full one
    expect(plan.paged.maxRequests).toBe(Math.floor(plan.kvBudgetBytes / ((5 * 32 + 63) * 16 * layerToken)));
    // preallocated to 4096 keeps every block of every layer
    expect(plan.preallocated.maxRequests).toBe(Math.floor(plan.kvBudgetBytes / (4096 * 6 * layerToken)));
    expect(plan.decodeFloor.bytes).toBe(plan.weightBytes + (5 * 512 + 3000) * layerToken);
    // past the windows, each more token costs the full layer alone
    expect(plan.longestSequence).toBe(Math.floor(plan.kvBudgetBytes / layerToken) - 5 * 512);
  });
});

describe("plan: profiles", () => {
  it("rejects unknown hardware and models with one line listing the known ones", () => {
    expect(() => hardwareProfile("tpu-v9")).toThrow(
      /unknown hardware "tpu-v9" \(known: a100-80gb, .*cpu-local\)/,
    );
    expect(() => modelProfile("gpt-5")).toThrow(/unknown model "gpt-5": .*llama-2-7b/);
  });

  it("reads a Hugging Face config.json given as a path", () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-plan-"));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        architectures: ["LlamaForCausalLM"],
        model_type: "llama",
        hidden_size: 2048,
        intermediate_size: 5632,
        num_hidden_layers: 22,
        num_attention_heads: 32,
        num_key_value_heads: 4,
        vocab_size: 32000,
        max_position_embeddings: 2048,
        rms_norm_eps: 1e-5,
      }),
    );
    const fromPath = modelProfile(dir);
    const named = modelProfile("tinyllama-1.1b");
    expect(parameterCount(fromPath.config)).toBe(parameterCount(named.config));
    expect(parameterCount(named.config)).toBe(1_100_048_384); // TinyLlama-1.1B's published count
    expect(named.nominalParams).toBe(1.1e9);
    expect(fromPath.nominalParams).toBeUndefined();
  });
});
