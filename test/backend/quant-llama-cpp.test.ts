/**
 * vellum's quantized files in llama.cpp (node-llama-cpp): for every type vellum writes and every mix, vellum
 * quantizes a synthetic model, llama.cpp loads the file, and both teacher-force the same 64 tokens; the next-token
 * log-probabilities of the native backend (and, for the mixes, the reference backend) must agree with llama.cpp's
 * over the whole vocabulary within a tolerance per type, with the same most likely token everywhere (near ties
 * aside, as in families-llama-cpp.test.ts). SHOW=1 prints the table.
 *
 * Shapes: small-160m (768-wide rows: whole 256-value blocks) and qwen2.5-0.5b (896-wide: every K-quant and iq4_xs
 * falls back to a 32-value type, see quant/mixes.ts). The widths that decide each tensor's type are the real
 * ones; what only sets how many rows there are is cut, since vellum's quantizers (reference code in TypeScript,
 * 0.5–8 M values/s) would otherwise take minutes: one layer, one KV head, a 256-wide FFN (the real 3072 and 4864
 * are whole 256-value blocks too, so ffn_down gets the same type) and a 1024-token vocabulary.
 *
 * node-llama-cpp gives probabilities, not logits, so the figures are on log-probabilities (the logits less one
 * constant per position), as a fraction of the largest |logit|. Both sides compute on the same quantized weights;
 * what differs is the activations: llama.cpp rounds them to 8 bits per block for every quantized type (q8_K for
 * the K-quants and iq4_xs, q8_0 or q8_1 for the others), vellum's native kernels to 8 bits with their own scales,
 * and the reference backend not at all (dequantize, then f32).
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
import { dequantize, quantize } from "../../src/model/dtype.js";
import { storedDTypes, writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { shapeSpec } from "../../src/model/profiles.js";
import { isMix, type WeightType, weightTypes } from "../../src/model/quant/mixes.js";
import { syntheticModelOf } from "../../src/model/synth/synth-model.js";
import type { Tensor } from "../../src/model/tensor.js";
import { xorshift } from "../helpers.js";
import { type Agreement, agreement, llamaCppDistributions, logitsAtPositions } from "./llama-cpp-oracle.js";

const built = !(loadNativeAddon() instanceof Error);
const promptLength = 64;
const contextSize = 64;
const threads = 2;
const quantized = weightTypes.filter((t) => !["f32", "f16", "bf16"].includes(t));

/**
 * Largest |Δ log p| allowed, as a fraction of the largest |logit|: the largest measured, 2.2e-2 (q6_k on the
 * small-160m widths; 0.6–2.2e-2 for every type and mix, native and reference alike), about 3.5 times over, as
 * families-llama-cpp.test.ts allows q8_0. The error is that of llama.cpp's 8-bit activations, much the same for
 * every type.
 */
const tolerance = 0.08;

let llama: Llama;
let dir: string;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  dir = mkdtempSync(join(tmpdir(), "vellum-quant-llama-cpp-"));
});
afterAll(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** The shape's widths with the row counts cut (see the header). */
function testModel(shape: string): LoadedModel {
  const { config, ropeFactors } = shapeSpec(shape, 1);
  return syntheticModelOf({ ...config, nKvHeads: 1, hiddenDim: 256, vocabSize: 1024 }, "f32", {
    seed: 11,
    name: shape,
    ropeFactors,
  });
}

/** `model` stored as `weightType`, each tensor quantized once per type across all the files of a shape. */
function storedAs(model: LoadedModel, weightType: WeightType, cache: Map<string, Tensor>): LoadedModel {
  const tensors = new Map<string, Tensor>();
  for (const [name, dtype] of storedDTypes(model.config, weightType)) {
    const key = `${name} ${dtype}`;
    const source = model.tensors.get(name) as Tensor;
    let t = cache.get(key);
    if (!t) {
      t = quantize(dequantize(source), source.shape, dtype);
      cache.set(key, t);
    }
    tensors.set(name, t);
  }
  return { ...model, tensors };
}

interface Row {
  shape: string;
  type: WeightType;
  native?: Agreement & { rms: number };
  reference?: Agreement & { rms: number };
  types: string;
}
const rows: Row[] = [];

/** Agreement plus the RMS of Δ log p over every position and token (relative to the largest |logit|). */
async function measure(
  backend: Backend,
  ids: number[],
  oracle: Awaited<ReturnType<typeof llamaCppDistributions>>,
  vocab: number,
): Promise<Agreement & { rms: number }> {
  const positions = ids.map((_, i) => i);
  const logits = await logitsAtPositions(backend, ids, positions, vocab);
  const a = agreement(logits, positions, oracle, promptLength, [], tolerance);
  let sum = 0;
  logits.forEach((row, p) => {
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - max);
    const lse = Math.log(s) + max;
    const full = oracle.full.get(p) as Float64Array;
    for (let t = 0; t < vocab; t++) sum += (row[t] - lse - full[t]) ** 2;
  });
  return { ...a, rms: Math.sqrt(sum / (positions.length * vocab)) / a.logitScale };
}

function expectAgreement(a: Agreement | undefined, what: string) {
  if (!a) return;
  expect(a.fullError, `${what}: log-probabilities`).toBeLessThanOrEqual(tolerance * a.logitScale);
  expect(a.top1Differs, `${what}: most likely token`).toEqual([]);
}

for (const shape of ["small-160m", "qwen2.5-0.5b"]) {
  describe(`${shape} widths`, () => {
    const cache = new Map<string, Tensor>();
    let model: LoadedModel;
    beforeAll(() => {
      model = testModel(shape);
    });

    test.each(quantized)("%s", { timeout: 120_000 }, async (type) => {
      const path = join(dir, `${shape}-${type}.gguf`);
      writeGgufModel(storedAs(model, type, cache), path, { dtype: type });
      const loaded = loadModel(path);
      const vocab = loaded.config.vocabSize;
      const next = xorshift(7);
      const ids = Array.from({ length: promptLength }, () => 3 + Math.floor(next() * (vocab - 3)));
      const all = ids.map((_, i) => i);
      const oracle = await llamaCppDistributions(llama, path, ids, {
        contextSize,
        k: 40,
        fullAt: all,
        threads,
      });
      const row: Row = {
        shape,
        type,
        types: [...new Set([...loaded.tensors.values()].map((t) => t.dtype))].sort().join(" "),
      };
      if (built)
        row.native = await measure(
          await NativeBackend.load(loaded, { threads, contextLength: contextSize }),
          ids,
          oracle,
          vocab,
        );
      if (isMix(type) || !built) {
        row.reference = await measure(
          new ReferenceBackend(loaded, { contextLength: contextSize }),
          ids,
          oracle,
          vocab,
        );
      }
      rows.push(row);
      rmSync(path);
      expectAgreement(row.native, `${type}, native`);
      expectAgreement(row.reference, `${type}, reference`);
    });
  });
}

afterAll(() => {
  if (!process.env.SHOW) return;
  const fmt = (a?: Agreement & { rms: number }) =>
    a
      ? `${a.fullError.toExponential(1)} (${(a.fullError / a.logitScale).toExponential(1)}) | ${a.rms.toExponential(1)} | ${promptLength - a.top1Differs.length}/${promptLength}${a.nearTies.length ? ` (${a.nearTies.length} near ties)` : ""}`
      : "– | – | –";
  const lines = [
    "| shape | --dtype | tensor types | native max |Δ log p| (relative) | RMS Δ / max |logit| | top-1 | reference max |Δ log p| (relative) | RMS | top-1 |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.shape} | ${r.type} | ${r.types} | ${fmt(r.native)} | ${fmt(r.reference)} |`),
  ];
  console.log(lines.join("\n"));
});
