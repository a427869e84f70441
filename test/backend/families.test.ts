import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { Backend, KvCacheDtype } from "../../src/backend/backend.js";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { ropeFactorsTensor } from "../../src/backend/rope-factors.js";
import { expectedTensors, type ModelConfig, plainConfig, tensorNames } from "../../src/model/config.js";
import { dequantize, quantize } from "../../src/model/dtype.js";
import type { LoadedModel } from "../../src/model/model.js";
import { syntheticVocab } from "../../src/model/synth/synth-vocab.js";
import type { DType, Tensor } from "../../src/model/tensor.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import { Rng } from "../../src/util/rng.js";
import { logitsAt, maxDiff, scatteredBlockTables, xorshift } from "../helpers.js";

// Every family's switch set on a small model, both backends: the native one against the reference (the exact
// oracle), batched and paged execution against one sequence at a time, windows at contexts past the window.
// The families' real behaviour against llama.cpp is families-llama-cpp.test.ts.

const built = !(loadNativeAddon() instanceof Error);

const small = plainConfig({
  dim: 64,
  hiddenDim: 96,
  nLayers: 3,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 16,
  vocabSize: 300,
  maxSeqLen: 256,
  normEps: 1e-6,
  ropeTheta: 10000,
  ropeStyle: "neox",
  tiedEmbeddings: false,
  attentionBias: false,
});

const linear = {
  freqScale: 0.25,
  extFactor: 0,
  attnFactor: 1,
  betaFast: 32,
  betaSlow: 1,
  originalContext: 64,
};

/**
 * Each family's switches (as their loaders set them) on the small shape. Soft-caps are small enough to bite on
 * this model's small scores and logits; windows are shorter than the test sequences.
 */
const families: Record<string, Partial<ModelConfig>> = {
  "llama 3 (rope_freqs)": {
    ropeStyle: "interleaved",
    ropeTheta: 500000,
    ropeFreqFactors: "fixed",
    tiedEmbeddings: true,
  },
  "llama, linear scaling": { ropeStyle: "interleaved", ropeScaling: linear },
  "llama, YaRN": {
    ropeStyle: "interleaved",
    ropeScaling: { ...linear, extFactor: 1, attnFactor: 0.9, betaFast: 8, originalContext: 16 },
  },
  qwen2: { architecture: "qwen2", ropeTheta: 1e6, attentionBias: true, tiedEmbeddings: true },
  qwen3: { architecture: "qwen3", ropeTheta: 1e6, qkNorm: true },
  gemma2: {
    architecture: "gemma2",
    ffnActivation: "gelu_tanh",
    embeddingScale: 8,
    postNorms: true,
    attentionScale: 1 / Math.sqrt(24),
    attnSoftcap: 1.5,
    finalLogitSoftcap: 3,
    layerWindows: [7, 0, 7],
    ropeThetaLocal: 10000,
    tiedEmbeddings: true,
  },
  gemma3: {
    architecture: "gemma3",
    ffnActivation: "gelu_tanh",
    embeddingScale: 8,
    postNorms: true,
    qkNorm: true,
    layerWindows: [5, 5, 0],
    ropeTheta: 1e6,
    ropeThetaLocal: 10000,
    ropeScaling: linear,
    tiedEmbeddings: true,
  },
  "phi3 (partial rotary, LongRoPE)": {
    architecture: "phi3",
    ropeDims: 12,
    ropeFreqFactors: "longrope",
    ropeScaling: { ...linear, freqScale: 1, attnFactor: 1.19, originalContext: 32 },
  },
};

const familyConfig = (name: string): ModelConfig => ({ ...small, ...families[name] });

/**
 * Seeded random weights in every tensor the config needs, stored as `dtype` (vectors in f32): matrices uniform
 * in ±0.15, norm weights 1 ± 0.25, biases ±0.1, RoPE frequency divisors in [1, 5).
 */
function randomModel(config: ModelConfig, seed: number, dtype: DType = "f32"): LoadedModel {
  const rng = new Rng(seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * rng.nextFloat();
  const ropeFactors: string[] = [
    tensorNames.ropeFreqs,
    tensorNames.ropeFactorsShort,
    tensorNames.ropeFactorsLong,
  ];
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const value = ropeFactors.includes(name)
      ? () => uniform(1, 5)
      : name.endsWith(".bias")
        ? () => uniform(-0.1, 0.1)
        : shape.length === 1
          ? () => uniform(0.75, 1.25)
          : () => uniform(-0.15, 0.15);
    const values = Float32Array.from({ length: n }, value);
    tensors.set(name, quantize(values, shape, shape.length === 1 ? "f32" : dtype));
  }
  const vocab = syntheticVocab(config.vocabSize);
  return {
    config,
    tensors,
    tokenizer: createTokenizer(vocab),
    vocab,
    name: "family-test",
    format: "gguf",
    path: "family-test.gguf",
  };
}

const tokens = (n: number, seed: number, vocab: number) => {
  const next = xorshift(seed);
  return Array.from({ length: n }, () => Math.floor(next() * vocab));
};

/**
 * Runs several sequences through `backend` together, step by step: at step k sequence s computes its next
 * chunks[s][k] tokens (1 = a decode) while the others do theirs, over scattered blocks of `blockSize`. Returns
 * every token's logits, per sequence.
 */
async function runBatched(
  backend: Backend,
  seqs: number[][],
  chunks: number[][],
  blockSize: number,
  dtype: KvCacheDtype,
  vocab: number,
): Promise<Float32Array[][]> {
  const { numBlocks, blockTables } = scatteredBlockTables(
    seqs.map((s) => s.length),
    blockSize,
    xorshift(5),
  );
  backend.initKvCache({ numBlocks, blockSize, dtype });
  const done = seqs.map(() => 0);
  const logits: Float32Array[][] = seqs.map(() => []);
  for (let step = 0; done.some((d, s) => d < seqs[s].length); step++) {
    const ids: number[] = [];
    const positions: number[] = [];
    const slots: number[] = [];
    const starts = [0];
    const lens: number[] = [];
    const tables: Int32Array[] = [];
    const owners: number[] = [];
    seqs.forEach((seq, s) => {
      const n = Math.min(chunks[s][step] ?? 1, seq.length - done[s]);
      if (n <= 0) return;
      for (let p = done[s]; p < done[s] + n; p++) {
        ids.push(seq[p]);
        positions.push(p);
        slots.push(blockTables[s][Math.floor(p / blockSize)] * blockSize + (p % blockSize));
        owners.push(s);
      }
      done[s] += n;
      starts.push(ids.length);
      lens.push(done[s]);
      tables.push(blockTables[s]);
    });
    const out = await backend.forward({
      tokenIds: Int32Array.from(ids),
      positions: Int32Array.from(positions),
      slotMappings: [Int32Array.from(slots)],
      queryStartLoc: Int32Array.from(starts),
      seqLens: Int32Array.from(lens),
      blockTables: [tables],
      logitsIndices: Int32Array.from(ids, (_, i) => i),
    });
    owners.forEach((s, i) => {
      logits[s].push(out.slice(i * vocab, (i + 1) * vocab));
    });
  }
  return logits;
}

/**
 * Native against reference, as a fraction of the largest logit: f32 sums in another order; with an f16 cache, also
 * a K or V value now and then rounded to the neighbouring binary16 value (one f16 step, 2⁻¹¹ relative).
 */
const kvTolerance = { f32: 1e-4, f16: 2e-3 };

/** The backends under test: the reference, and the native one when its addon is built. */
const backends: { name: string; make: (m: LoadedModel, contextLength?: number) => Promise<Backend> }[] = [
  { name: "reference", make: async (m, contextLength) => new ReferenceBackend(m, { contextLength }) },
];
if (built)
  backends.push({
    name: "native",
    make: (m, contextLength) => NativeBackend.load(m, { threads: 2, contextLength }),
  });

const sequenceLength = 40;

describe.skipIf(!built)("each family's switches: native against the reference", () => {
  for (const name of Object.keys(families)) {
    for (const [dtype, kv, tolerance] of [
      // Float weights: only f32 rounding and summation order differ (through three layers of this model, ~2e-5
      // of the largest logit). An f16 cache can round a K or V value that differs in its last f32 bit to the
      // neighbouring binary16 value (2⁻¹¹ relative). q8_0: activations are also rounded to int8 per 32-block.
      ["f32", "f32", 1e-4],
      ["f32", "f16", kvTolerance.f16],
      ["q8_0", "f16", 0.03],
    ] as const) {
      test(`${name}: ${dtype} weights, ${kv} KV, ${sequenceLength} tokens (windows of 5 and 7 included)`, async () => {
        const model = randomModel(familyConfig(name), 1, dtype);
        const ids = tokens(sequenceLength, 2, model.config.vocabSize);
        const want = await logitsAt(new ReferenceBackend(model), ids, model.config.vocabSize, kv);
        const got = await logitsAt(
          await NativeBackend.load(model, { threads: 2 }),
          ids,
          model.config.vocabSize,
          kv,
        );
        const { diff, scale } = maxDiff(got, want);
        expect(diff).toBeLessThanOrEqual(tolerance * scale);
      });
    }
  }
});

describe("each family's switches: batched, paged, chunked execution equals one sequence at a time", () => {
  // Three sequences of different lengths: prefill chunks of several sizes sharing steps with decodes.
  const lengths = [37, 23, 30];
  const chunks = [
    [9, 1, 1, 12, 1],
    [1, 6, 6, 1],
    [14, 14],
  ];
  // The reference computes each token on its own in a fixed order: bit for bit equal. The native one tiles
  // attention by chunk, so its f32 sums may round differently.
  const tolerance: Record<string, number> = { reference: 0, native: 1e-4 };
  for (const name of Object.keys(families))
    for (const { name: backendName, make } of backends)
      for (const kv of ["f32", "f16"] as const)
        test(`${name}: ${backendName}, ${kv} KV`, async () => {
          const model = randomModel(familyConfig(name), 3);
          const vocab = model.config.vocabSize;
          const seqs = lengths.map((n, s) => tokens(n, 10 + s, vocab));
          const batched = await runBatched(await make(model), seqs, chunks, 4, kv, vocab);
          for (const [s, seq] of seqs.entries()) {
            const solo = await logitsAt(await make(model), seq, vocab, kv);
            const { diff, scale } = maxDiff(batched[s], solo);
            expect(diff, `sequence ${s}`).toBeLessThanOrEqual(tolerance[backendName] * scale);
          }
        });
});

describe.skipIf(!built)("any mix of switches: native against the reference", () => {
  test("random configs (properties)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          seed: fc.integer({ min: 1, max: 1000 }),
          headDim: fc.constantFrom(8, 16, 20),
          ropeFraction: fc.constantFrom(0.5, 0.75, 1),
          ropeStyle: fc.constantFrom("interleaved", "neox"),
          factors: fc.constantFrom("none", "fixed", "longrope"),
          scaling: fc.constantFrom(undefined, linear, { ...linear, extFactor: 1, originalContext: 16 }),
          qkNorm: fc.boolean(),
          postNorms: fc.boolean(),
          attentionBias: fc.boolean(),
          ffnActivation: fc.constantFrom("silu", "gelu_tanh"),
          embeddingScale: fc.constantFrom(1, 5),
          attentionScale: fc.constantFrom(undefined, 0.1),
          attnSoftcap: fc.constantFrom(0, 2),
          finalLogitSoftcap: fc.constantFrom(0, 4),
          windows: fc.array(fc.constantFrom(0, 1, 3, 9), { minLength: 2, maxLength: 2 }),
          local: fc.boolean(),
          kv: fc.constantFrom("f32", "f16"),
          length: fc.integer({ min: 1, max: 30 }),
        }),
        async (r) => {
          const config: ModelConfig = {
            ...small,
            nLayers: 2,
            headDim: r.headDim,
            ropeDims: 2 * Math.round((r.headDim * r.ropeFraction) / 2),
            ropeStyle: r.ropeStyle as ModelConfig["ropeStyle"],
            ropeFreqFactors: r.factors as ModelConfig["ropeFreqFactors"],
            ropeScaling: r.scaling,
            ropeThetaLocal: r.local ? 10000 : undefined,
            qkNorm: r.qkNorm,
            postNorms: r.postNorms,
            attentionBias: r.attentionBias,
            ffnActivation: r.ffnActivation as ModelConfig["ffnActivation"],
            embeddingScale: r.embeddingScale,
            attentionScale: r.attentionScale ?? 1 / Math.sqrt(r.headDim),
            attnSoftcap: r.attnSoftcap,
            finalLogitSoftcap: r.finalLogitSoftcap,
            layerWindows: r.windows,
          };
          const model = randomModel(config, r.seed);
          const ids = tokens(r.length, r.seed, config.vocabSize);
          const kv = r.kv as KvCacheDtype;
          const want = await logitsAt(new ReferenceBackend(model), ids, config.vocabSize, kv);
          const got = await logitsAt(
            await NativeBackend.load(model, { threads: 2 }),
            ids,
            config.vocabSize,
            kv,
          );
          const { diff, scale } = maxDiff(got, want);
          expect(diff).toBeLessThanOrEqual(kvTolerance[kv] * scale);
        },
      ),
      { numRuns: 40 },
    );
  });
});

/** The same weights under another config; RoPE's divisors cut to a narrower rotation. */
function withConfig(model: LoadedModel, config: ModelConfig): LoadedModel {
  const tensors = new Map(model.tensors);
  const factors = tensors.get(tensorNames.ropeFreqs);
  if (factors && factors.shape[0] > config.ropeDims / 2) {
    const cut = dequantize(factors).subarray(0, config.ropeDims / 2);
    tensors.set(tensorNames.ropeFreqs, quantize(cut, [cut.length], "f32"));
  }
  return { ...model, config, tensors };
}

describe("no switch is ignored: turning one off moves the logits, in both backends", () => {
  const off: Record<string, Partial<ModelConfig>> = {
    qkNorm: { qkNorm: false },
    postNorms: { postNorms: false },
    ffnActivation: { ffnActivation: "silu" },
    embeddingScale: { embeddingScale: 1 },
    attentionScale: { attentionScale: 1 / Math.sqrt(16) },
    attnSoftcap: { attnSoftcap: 0 },
    finalLogitSoftcap: { finalLogitSoftcap: 0 },
    layerWindows: { layerWindows: [0, 0, 0] },
    ropeThetaLocal: { ropeThetaLocal: undefined },
    ropeScaling: { ropeScaling: undefined },
    ropeDims: { ropeDims: 8 },
    ropeFreqFactors: { ropeFreqFactors: "none" },
  };
  // A config with every switch on.
  const all: ModelConfig = {
    ...familyConfig("gemma2"),
    qkNorm: true,
    attentionScale: 0.1,
    ropeScaling: linear,
    ropeDims: 12,
    ropeFreqFactors: "fixed",
  };
  const ids = tokens(24, 4, all.vocabSize);
  for (const { name: backendName, make } of backends)
    test(backendName, async () => {
      const model = randomModel(all, 6);
      const base = await logitsAt(await make(model), ids, all.vocabSize);
      for (const [name, change] of Object.entries(off)) {
        const changed = await logitsAt(
          await make(withConfig(model, { ...all, ...change })),
          ids,
          all.vocabSize,
        );
        const { diff, scale } = maxDiff(changed, base);
        expect(diff, name).toBeGreaterThan(1e-3 * scale);
      }
    });
});

describe("LongRoPE's factors follow the served context, as llama.cpp's context size picks them", () => {
  const config = familyConfig("phi3 (partial rotary, LongRoPE)");
  test("short up to the original context (32 here), long beyond", () => {
    expect(ropeFactorsTensor(config, 32)).toBe(tensorNames.ropeFactorsShort);
    expect(ropeFactorsTensor(config, 33)).toBe(tensorNames.ropeFactorsLong);
    expect(ropeFactorsTensor(familyConfig("llama 3 (rope_freqs)"), 8)).toBe(tensorNames.ropeFreqs);
    expect(ropeFactorsTensor(small, 8)).toBeUndefined();
  });

  for (const { name: backendName, make } of backends)
    test(`${backendName}: the default (the model's maxSeqLen, 256) serves with the long factors`, async () => {
      const model = randomModel(config, 8);
      const ids = tokens(20, 9, config.vocabSize);
      const byDefault = await logitsAt(await make(model), ids, config.vocabSize);
      const long = await logitsAt(await make(model, 33), ids, config.vocabSize);
      const short = await logitsAt(await make(model, 32), ids, config.vocabSize);
      expect(maxDiff(byDefault, long).diff).toBe(0);
      expect(maxDiff(short, long).diff).toBeGreaterThan(1e-3 * maxDiff(short, long).scale);
    });
});
