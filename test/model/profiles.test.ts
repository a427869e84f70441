/**
 * The real shapes of profiles/models.json: each published config.json gives the config its model card and
 * llama.cpp's reading describe, with its RoPE factors, and the GGUF keys llama.cpp reads for the family.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ModelConfig, tensorNames } from "../../src/model/config.js";
import { ggufConfigMetadata } from "../../src/model/formats/gguf-config.js";
import { loadGgufModel, writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { modelShapes, shapeSpec } from "../../src/model/profiles.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { expectInputError } from "../helpers.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vellum-profiles-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (name: string, layers?: number) => shapeSpec(name, layers).config;
/** The metadata values of a shape's GGUF, float32 ones as stored. */
function ggufKeys(c: ModelConfig): Record<string, unknown> {
  return Object.fromEntries(
    [...ggufConfigMetadata(c)].map(([k, v]) => [k.replace(/^[a-z0-9]+\./, ""), v.value]),
  );
}

describe("the shapes' published configs", () => {
  test("every shape reads", () => {
    for (const name of modelShapes().keys()) expect(config(name).nLayers, name).toBeGreaterThan(0);
  });

  test("llama-3.2-1b and llama-3.1-8b: Llama 3 RoPE factors from rope_scaling", () => {
    for (const [name, factor, headDim] of [
      ["llama-3.2-1b", 32, 64],
      ["llama-3.1-8b", 8, 128],
    ] as const) {
      const { config: c, ropeFactors } = shapeSpec(name);
      expect(c).toMatchObject({ architecture: "llama", ropeStyle: "interleaved", ropeFreqFactors: "fixed" });
      expect(c.ropeScaling).toBeUndefined();
      // Meta's rule in double precision: wavelengths under 8192/4 keep 1, over 8192/1 take `factor`, a smooth
      // mix between.
      const freqs = ropeFactors.get(tensorNames.ropeFreqs) as Float32Array;
      expect(freqs.length).toBe(headDim / 2);
      for (let i = 0; i < headDim / 2; i++) {
        const wavelen = 2 * Math.PI * 500000 ** ((2 * i) / headDim);
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        const want = wavelen < 2048 ? 1 : wavelen > 8192 ? factor : 1 / ((1 - smooth) / factor + smooth);
        expect(freqs[i], `${name} pair ${i}`).toBeCloseTo(want, 4);
      }
    }
    expect(config("llama-3.2-1b")).toMatchObject({
      dim: 2048,
      nLayers: 16,
      headDim: 64,
      tiedEmbeddings: true,
    });
    expect(config("llama-3.1-8b")).toMatchObject({ dim: 4096, nKvHeads: 8, tiedEmbeddings: false });
  });

  test("gemma-3-1b: five windowed layers of 512 to one global, local base 10000, 1/√256, √1152", () => {
    const c = config("gemma-3-1b");
    expect(c.layerWindows).toEqual(Array.from({ length: 26 }, (_, l) => (l % 6 === 5 ? 0 : 512)));
    expect(c).toMatchObject({
      architecture: "gemma3",
      headDim: 256,
      nKvHeads: 1,
      ropeTheta: 1_000_000,
      ropeThetaLocal: 10000,
      attentionScale: 1 / 16,
      embeddingScale: Math.sqrt(1152),
      qkNorm: true,
      postNorms: true,
      ffnActivation: "gelu_tanh",
      attnSoftcap: 0,
      finalLogitSoftcap: 0,
      tiedEmbeddings: true,
    });
    expect(ggufKeys(c)).toMatchObject({
      "attention.sliding_window": 512,
      "attention.sliding_window_pattern": 6,
      "rope.freq_base": 1_000_000,
      "rope.freq_base_swa": 10000,
      "attention.key_length": 256,
    });
    // Cut to 8 layers, layer 5 stays the only global one.
    expect(config("gemma-3-1b", 8).layerWindows).toEqual([512, 512, 512, 512, 512, 0, 512, 512]);
  });

  test("phi-3.5-mini: LongRoPE factor lists, its attention factor and original context", () => {
    const { config: c, ropeFactors } = shapeSpec("phi-3.5-mini");
    expect(c).toMatchObject({ architecture: "phi3", ropeDims: 96, ropeFreqFactors: "longrope" });
    expect(c.layerWindows.every((w) => w === 0)).toBe(true);
    expect(c.ropeScaling?.originalContext).toBe(4096);
    expect(c.ropeScaling?.attnFactor).toBeCloseTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 6);
    expect(ropeFactors.get(tensorNames.ropeFactorsLong)?.[0]).toBeCloseTo(1.08, 6);
    expect(ropeFactors.get(tensorNames.ropeFactorsShort)?.[47]).toBeCloseTo(2.84, 5);
    expect(ggufKeys(c)).toMatchObject({
      "rope.dimension_count": 96,
      "rope.scaling.original_context_length": 4096,
      "rope.scaling.attn_factor": c.ropeScaling?.attnFactor,
    });
    expect(ggufKeys(c)["rope.scaling.type"]).toBeUndefined(); // as convert_hf_to_gguf.py writes phi3
  });

  test("qwen, mistral and smollm2", () => {
    expect(config("qwen2.5-0.5b")).toMatchObject({
      architecture: "qwen2",
      attentionBias: true,
      tiedEmbeddings: true,
    });
    expect(config("qwen3-0.6b")).toMatchObject({
      architecture: "qwen3",
      dim: 1024,
      headDim: 128,
      qkNorm: true,
    });
    expect(config("qwen3-8b")).toMatchObject({ nLayers: 36, headDim: 128, tiedEmbeddings: false });
    expect(config("mistral-7b-v0.3")).toMatchObject({
      architecture: "llama",
      vocabSize: 32768,
      ropeTheta: 1e6,
    });
    expect(config("smollm2-135m")).toMatchObject({
      nHeads: 9,
      nKvHeads: 3,
      headDim: 64,
      tiedEmbeddings: true,
    });
  });

  test("a cut deeper than the shape is refused", () => {
    expectInputError(() => shapeSpec("qwen3-0.6b", 29), "qwen3-0.6b has 28 layers");
    expectInputError(() => shapeSpec("no-such-shape"), 'unknown shape "no-such-shape"');
  });
});

test("a synthetic smollm2-135m cut to 2 layers writes a GGUF that vellum and llama.cpp load as it is", async () => {
  const model = syntheticModel("smollm2-135m", "q8_0", 7, { layers: 2 });
  expect(model.config.nLayers).toBe(2);
  const path = join(dir, "smollm2-2.gguf");
  writeGgufModel(model, path, { dtype: "q8_0" });
  const loaded = loadGgufModel(path);
  expect(loaded.config).toEqual(model.config);
  for (const [name, t] of model.tensors) {
    const got = loaded.tensors.get(name);
    expect(got && Buffer.from(got.data).equals(t.data), name).toBe(true);
  }
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  try {
    const theirs = await llama.loadModel({ modelPath: path });
    expect(theirs.fileInfo.metadata.general.architecture).toBe("llama");
    await theirs.dispose();
  } finally {
    await llama.dispose();
  }
});
