/**
 * vellum against llama.cpp (node-llama-cpp), the independent implementation, on the same GGUF files: every
 * family's switches, both backends, f32, f16 and q8_0 weights. On a 64-token teacher-forced prompt, the
 * next-token log-probabilities within a tolerance per dtype and the same most likely token everywhere in f32 and
 * f16; then the same 32-token greedy continuation.
 *
 * Tolerances are on log-probabilities (node-llama-cpp gives no logits), measured, then set a few times above:
 *   f32   llama.cpp computes f32 weights with f32 activations like vellum, but its CPU GELU rounds its input and
 *         output to f16 (a 65536-entry table, GGML_GELU_FP16), 2⁻¹¹ relative per value: the Gemma families'
 *         errors are those of f16 activations, the others' f32 rounding alone.
 *   f16   llama.cpp rounds activations to f16 for f16 weights (ggml's vec_dot_f16); vellum multiplies f16 weights
 *         with f32 activations.
 *   q8_0  both round activations to 8 bits per 32-block, but llama.cpp keeps each block's scale as f16 and vellum
 *         as f32, so the integers differ where a value sits near a rounding boundary.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Backend } from "../../src/backend/backend.js";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import type { DType } from "../../src/model/tensor.js";
import { greedyIds, xorshift } from "../helpers.js";
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
  reference: Agreement;
}

/**
 * Writes `model` as a `dtype` GGUF, loads it back, and measures both backends against llama.cpp on one prompt:
 * the native backend's greedy continuation is decoded, then the prompt and that continuation are teacher-forced
 * through llama.cpp and both backends. `fullAt`: the positions where whole distributions are compared;
 * `referenceAt`: the positions whose logits the reference computes (all of them by default).
 */
async function runAgainstLlamaCpp(
  model: LoadedModel,
  dtype: DType,
  opts: { tolerance: number; fullAt?: readonly number[]; referenceAt?: readonly number[]; k?: number },
): Promise<Run> {
  // llama.cpp marks tokens of a vocabulary it takes for Phi-3's (by the model's name) and needs them present.
  const path = join(dir, `model-${dtype}.gguf`);
  writeGgufModel({ ...model, name: "vellum-test" }, path, { dtype });
  const loaded = loadModel(path);
  const vocab = loaded.config.vocabSize;
  const prompt = promptIds(vocab, 7);
  const all = Array.from({ length: promptLength + continuationLength - 1 }, (_, i) => i);
  const native = built ? new NativeBackend(loaded, { threads, contextLength: contextSize }) : undefined;
  const reference = new ReferenceBackend(loaded, { contextLength: contextSize });
  const continuation = await greedyIds(native ?? reference, prompt, continuationLength, [], contextSize);
  const ids = [...prompt, ...continuation.slice(0, -1)];
  const oracle = await llamaCppDistributions(llama, path, ids, {
    contextSize,
    k: opts.k ?? 40,
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
  const run: Run = { reference: await measure(reference, opts.referenceAt ?? all) };
  if (native) run.native = await measure(native, all);
  rmSync(path);
  return run;
}

/** Measured largest |Δ log p| (see the header) a few times over, per dtype; Gemma's f16 GELU needs its own f32 bound. */
const tolerance = (dtype: DType, gelu: boolean): number =>
  ({ f32: gelu ? 2e-3 : 1e-5, f16: 3e-3, q8_0: 0.05 })[dtype as "f32" | "f16" | "q8_0"];

function expectAgreement(a: Agreement | undefined, tol: number, what: string) {
  if (!a) return;
  expect(a.fullError, `${what}: log-probabilities, whole vocabulary`).toBeLessThanOrEqual(tol);
  expect(a.topError, `${what}: log-probabilities, llama.cpp's top tokens`).toBeLessThanOrEqual(tol);
  expect(a.top1Differs, `${what}: most likely token`).toEqual([]);
  expect(a.greedyDiffers, `${what}: greedy continuation`).toEqual([]);
}

describe("small models of every family's switches (test/model/family-configs.ts), whole distributions", () => {
  for (const family of families())
    for (const dtype of ["f32", "f16", "q8_0"] as const)
      test(`${family.name}, ${dtype}`, async () => {
        const tol = tolerance(dtype, family.config.ffnActivation === "gelu_tanh");
        const run = await runAgainstLlamaCpp(familyModel(family, dtype), dtype, { tolerance: tol });
        expectAgreement(run.native, tol, "native");
        expectAgreement(run.reference, tol, "reference");
      });
});
