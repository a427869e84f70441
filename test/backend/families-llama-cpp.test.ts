/**
 * vellum against llama.cpp (node-llama-cpp), the independent implementation, on the same GGUF files: every
 * family's switches, both backends, f32, f16 and q8_0 weights. On a 64-token teacher-forced prompt, the
 * next-token log-probabilities within a tolerance per dtype and the same most likely token everywhere; then the
 * same 32-token greedy continuation. A "near tie" — vellum's token within the tolerance of llama.cpp's in
 * llama.cpp's own log-probabilities, which rounding decides — counts as the same token: one in f32 (Gemma 2's
 * small model, where llama.cpp's f16 GELU decides), two in f16 (Phi-3.5 with its long factors), a few in q8_0.
 *
 * Tolerances are on log-probabilities (node-llama-cpp gives no logits), as a fraction of the largest |logit|,
 * which the errors grow with. Largest errors measured, then the tolerance:
 *   f32   5.7e-6 (2e-5): f32 rounding alone. But llama.cpp's CPU GELU rounds its input and output to f16 (a
 *         65536-entry table, GGML_GELU_FP16), 2⁻¹¹ relative per value, which vellum does not: Gemma's errors
 *         are those of f16 activations, 4.3e-4 (3e-3).
 *   f16   8.3e-4 (2e-3): llama.cpp rounds activations to f16 for f16 weights (ggml's vec_dot_f16); vellum
 *         multiplies f16 weights with f32 activations.
 *   q8_0  2.4e-2 (0.08): both round activations to 8 bits per 32-block, but llama.cpp keeps each block's scale as
 *         f16 and vellum as f32, so the integers differ where a value sits near a rounding boundary.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { Backend } from "../../src/backend/backend.js";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { loadHfModel, writeHfModel } from "../../src/model/formats/hf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import type { DType } from "../../src/model/tensor.js";
import { greedyIds, logitsAt, maxDiff, xorshift } from "../helpers.js";
import { families, familyModel } from "../model/family-configs.js";
import { type Agreement, agreement, llamaCppDistributions, logitsAtPositions } from "./llama-cpp-oracle.js";

const built = !(loadNativeAddon() instanceof Error);
const promptLength = 64;
const continuationLength = 32;
/** Both llama.cpp's context and the context vellum serves (which picks LongRoPE's factors alike). */
const contextSize = 128;
/** llama.cpp and vellum run one after the other, each on both cores. */
const threads = 2;

let llama: Llama;
let dir: string;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  dir = mkdtempSync(join(tmpdir(), "vellum-families-llama-cpp-"));
});
// Each test's files (up to 1.3 GB) are gone before the next one writes its own.
afterEach(() => {
  for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
});
afterAll(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Any in-vocabulary ids past the first few (control tokens of the synthetic vocabularies). */
function promptIds(vocabSize: number, seed: number): number[] {
  const next = xorshift(seed);
  return Array.from({ length: promptLength }, () => 3 + Math.floor(next() * (vocabSize - 3)));
}

interface Run {
  native?: Agreement;
  reference?: Agreement;
}

/** Writes `model` as a `dtype` GGUF and loads it back, as a user's file would be. */
function writeAndLoad(model: LoadedModel, dtype: DType): { path: string; loaded: LoadedModel } {
  const path = join(dir, `model-${dtype}.gguf`);
  writeGgufModel(model, path, { dtype });
  return { path, loaded: loadModel(path) };
}

/**
 * Measures both backends against llama.cpp on one prompt of the GGUF at `path` (`loaded` from it): the greedy
 * continuation is decoded (natively when the addon is built), then the prompt and that continuation are
 * teacher-forced through llama.cpp and both backends, serving `contextSize` tokens. `fullAt`: the positions
 * whose whole distributions are compared (all by default); `referenceAt`: the positions whose logits the
 * reference computes (all by default; none skips it).
 */
async function againstLlamaCpp(
  path: string,
  loaded: LoadedModel,
  opts: {
    tolerance: number;
    contextSize?: number;
    fullAt?: readonly number[];
    referenceAt?: readonly number[];
  },
): Promise<Run> {
  const context = opts.contextSize ?? contextSize;
  const vocab = loaded.config.vocabSize;
  const prompt = promptIds(vocab, 7);
  const all = Array.from({ length: promptLength + continuationLength - 1 }, (_, i) => i);
  const native = built ? await NativeBackend.load(loaded, { threads, contextLength: context }) : undefined;
  const referenceAt = opts.referenceAt ?? all;
  const reference =
    referenceAt.length > 0 ? new ReferenceBackend(loaded, { contextLength: context }) : undefined;
  const decoder = native ?? reference;
  if (!decoder) throw new Error("no backend to decode with");
  const continuation = await greedyIds(decoder, prompt, continuationLength, [], context);
  const ids = [...prompt, ...continuation.slice(0, -1)];
  const oracle = await llamaCppDistributions(llama, path, ids, {
    contextSize: context,
    k: 40,
    fullAt: opts.fullAt ?? all,
    threads,
  });
  const measure = async (backend: Backend, positions: readonly number[]) =>
    agreement(
      await logitsAtPositions(backend, ids, positions, vocab),
      positions,
      oracle,
      promptLength,
      continuation,
      opts.tolerance,
    );
  return {
    native: native && (await measure(native, all)),
    reference: reference && (await measure(reference, referenceAt)),
  };
}

/**
 * Largest |Δ log p| allowed, as a fraction of the largest |logit| (errors grow with the logits' size): the
 * measured errors (see the header) a few times over. Gemma's f16 GELU table needs its own f32 bound.
 */
const tolerance = (dtype: DType, gelu: boolean): number =>
  ({ f32: gelu ? 3e-3 : 2e-5, f16: 2e-3, q8_0: 0.08 })[dtype as "f32" | "f16" | "q8_0"];

function expectAgreement(a: Agreement | undefined, tol: number, what: string) {
  if (!a) return;
  const bound = tol * a.logitScale;
  expect(a.fullError, `${what}: log-probabilities, whole vocabulary`).toBeLessThanOrEqual(bound);
  expect(a.topError, `${what}: log-probabilities, llama.cpp's top tokens`).toBeLessThanOrEqual(bound);
  expect(a.top1Differs, `${what}: most likely token`).toEqual([]);
  expect(a.greedyDiffers, `${what}: greedy continuation`).toEqual([]);
}

describe("small models of every family's switches (test/model/family-configs.ts), whole distributions", () => {
  for (const family of families())
    for (const dtype of ["f32", "f16", "q8_0"] as const)
      test(`${family.name}, ${dtype}`, async () => {
        const tol = tolerance(dtype, family.config.ffnActivation === "gelu_tanh");
        const { path, loaded } = writeAndLoad(familyModel(family, dtype), dtype);
        const run = await againstLlamaCpp(path, loaded, { tolerance: tol });
        expectAgreement(run.native, tol, "native");
        expectAgreement(run.reference, tol, "reference");
      });
});

/**
 * The real shapes (profiles/models.json): real widths, head layouts and vocabularies, depth cut to one layer
 * (Gemma 3: six, for one global layer after five windowed ones). Generating, writing and reading hundreds of
 * millions of weights is what this costs, so each family is checked in one dtype, and every dtype appears. The
 * reference's classifier row costs a quarter of a second on a 150k-token vocabulary: it computes every 8th
 * prompt position, where the native backend computes all 95.
 */
const realShapes: { shape: string; layers: number; dtype: DType }[] = [
  { shape: "llama-3.2-1b", layers: 1, dtype: "f32" },
  { shape: "qwen2.5-0.5b", layers: 1, dtype: "q8_0" },
  { shape: "qwen3-0.6b", layers: 1, dtype: "f32" },
  { shape: "gemma-3-1b", layers: 6, dtype: "f16" },
  { shape: "phi-3.5-mini", layers: 1, dtype: "f16" },
  { shape: "mistral-7b-v0.3", layers: 1, dtype: "q8_0" },
  { shape: "smollm2-135m", layers: 1, dtype: "f32" },
];

describe("real shapes, one layer (Gemma 3: six)", () => {
  const fullAt = [31, 63];
  const referenceAt = Array.from({ length: promptLength / 8 }, (_, i) => 8 * i + 7);
  // Minutes on a loaded 2-core machine: a bound well past the ~60 s the largest takes on an idle one.
  for (const { shape, layers, dtype } of realShapes)
    test(`${shape}, ${dtype}`, { timeout: 600_000 }, async () => {
      const model = syntheticModel(shape, dtype, 5, { layers });
      const tol = tolerance(dtype, model.config.ffnActivation === "gelu_tanh");
      const { path, loaded } = writeAndLoad(model, dtype);
      const run = await againstLlamaCpp(path, loaded, { tolerance: tol, fullAt, referenceAt });
      expectAgreement(run.native, tol, "native");
      expectAgreement(run.reference, tol, "reference");
      if (model.config.ropeFreqFactors === "longrope") {
        // Past the original context llama.cpp and vellum switch to the long factors.
        const long = await againstLlamaCpp(path, loaded, {
          tolerance: tol,
          fullAt,
          referenceAt: [],
          contextSize: 8192,
        });
        expectAgreement(long.native, tol, "native, long factors");
      }
    });
});

describe("the same weights as a Hugging Face directory give the GGUF's logits (in vellum)", () => {
  // Llama's Q/K rows are permuted between the two (interleaved and rotate-half pairs), so attention sums its head
  // dims in another order: f32 rounding apart, the same numbers.
  const agree = async (gguf: LoadedModel, hf: LoadedModel) => {
    expect(hf.config).toEqual({ ...gguf.config, ropeStyle: hf.config.ropeStyle });
    const ids = promptIds(gguf.config.vocabSize, 3);
    const makers: ((m: LoadedModel) => Promise<Backend>)[] = [
      async (m) => new ReferenceBackend(m, { contextLength: contextSize }),
    ];
    if (built) makers.push((m) => NativeBackend.load(m, { threads, contextLength: contextSize }));
    for (const make of makers) {
      const want = await logitsAt(await make(gguf), ids, gguf.config.vocabSize);
      const { diff, scale } = maxDiff(await logitsAt(await make(hf), ids, gguf.config.vocabSize), want);
      expect(diff).toBeLessThanOrEqual(1e-5 * scale);
    }
  };
  const viaHf = (model: LoadedModel, name: string) => {
    const hfDir = join(dir, `hf-${name}`);
    writeHfModel(model, hfDir, "f32");
    return loadHfModel(hfDir);
  };

  for (const family of families())
    test(family.name, async () => {
      const model = familyModel(family, "f32");
      await agree(writeAndLoad(model, "f32").loaded, viaHf(model, family.name));
    });

  test("smollm2-135m, real shape", async () => {
    const model = syntheticModel("smollm2-135m", "f32", 5, { layers: 1 });
    await agree(writeAndLoad(model, "f32").loaded, viaHf(model, "smollm2"));
  });
});
