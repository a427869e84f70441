/**
 * Every supported family through the formats: a small model with the family's switches written as GGUF and
 * loaded back gives the same config and tensors; llama.cpp (node-llama-cpp) loads what vellum writes and
 * names the architecture; what llama.cpp would compute differently, or vellum does not implement, is refused
 * naming the key and the value.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { type ModelConfig, tensorNames } from "../../src/model/config.js";
import { dequantize, quantize } from "../../src/model/dtype.js";
import { loadGgufModel, writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { type GgufValue, readGgufFile, readGgufTensor } from "../../src/model/formats/gguf-reader.js";
import { type GgufTensorEntry, writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import { hfSpecFromJson } from "../../src/model/formats/hf-config.js";
import { loadHfModel, writeHfModel } from "../../src/model/formats/hf-model.js";
import { SafetensorsFile, writeSafetensors } from "../../src/model/formats/safetensors.js";
import type { LoadedModel } from "../../src/model/model.js";
import { reorderRopeRows } from "../../src/model/rope-order.js";
import type { Tensor } from "../../src/model/tensor.js";
import { expectInputError, logitsAt } from "../helpers.js";
import { type Family, families, familyModel } from "./family-configs.js";

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "vellum-families-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let fileCount = 0;
const freshPath = (name: string) => join(root, `${name}-${fileCount++}.gguf`);

/** dtype, shape and bytes, compared fast (toEqual walks typed arrays element by element). */
const summary = (t: Tensor | undefined) =>
  t && { dtype: t.dtype, shape: t.shape, hex: Buffer.from(t.data).toString("hex") };

function expectSameTensors(got: LoadedModel, want: LoadedModel) {
  expect([...got.tensors.keys()].sort()).toEqual([...want.tensors.keys()].sort());
  for (const [name, t] of want.tensors) expect(summary(got.tensors.get(name)), name).toEqual(summary(t));
}

const familyByName = new Map(families().map((f) => [f.name, f]));
const family = (name: string) => familyByName.get(name) as Family;

describe.each(families())("$name", (f) => {
  test("GGUF f32 → load: the same config and tensors", () => {
    const model = familyModel(f, "f32");
    const path = freshPath(f.name);
    writeGgufModel(model, path, { dtype: "f32" });
    const loaded = loadGgufModel(path);
    expect(loaded.config).toEqual(model.config);
    expectSameTensors(loaded, model);
  });
});

describe.each(families())("$name as a Hugging Face directory", (f) => {
  test("HF f32 → load: the same config and tensors (Q/K rows in rotate-half order), and back to the same GGUF", () => {
    const model = familyModel(f, "f32");
    const dir = join(root, `${f.name}-hf-${fileCount++}`);
    writeHfModel(model, dir, "f32");
    const loaded = loadHfModel(dir);
    expect(loaded.config).toEqual({ ...model.config, ropeStyle: "neox" });
    const { nLayers, nHeads, nKvHeads, ropeStyle } = model.config;
    const rotateHalf = new Map(model.tensors);
    if (ropeStyle === "interleaved") {
      for (let l = 0; l < nLayers; l++) {
        for (const [name, heads] of [
          [tensorNames.wq(l), nHeads],
          [tensorNames.wk(l), nKvHeads],
        ] as const)
          rotateHalf.set(name, reorderRopeRows(model.tensors.get(name) as Tensor, heads, "neox"));
      }
    }
    expectSameTensors(loaded, { ...model, tensors: rotateHalf });

    const path = freshPath(`${f.name}-from-hf`);
    writeGgufModel(loaded, path, { dtype: "f32" });
    const again = loadGgufModel(path);
    expect(again.config).toEqual(model.config);
    expectSameTensors(again, model);
  });
});

describe("phi3's fused tensors", () => {
  test("q/k/v and gate/up are written fused, as llama.cpp's phi3 reads them, and load as views of their rows", () => {
    const model = familyModel(family("phi3"), "q8_0");
    const path = freshPath("phi3-q8_0");
    writeGgufModel(model, path, { dtype: "q8_0" });
    const file = readGgufFile(path);
    const infos = new Map(file.tensors.map((t) => [t.name, t]));
    const { dim, hiddenDim, nHeads, nKvHeads, headDim } = model.config;
    expect(infos.get("blk.1.attn_qkv.weight")?.shape).toEqual([(nHeads + 2 * nKvHeads) * headDim, dim]);
    expect(infos.get("blk.1.ffn_up.weight")?.shape).toEqual([2 * hiddenDim, dim]);
    for (const name of ["blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.ffn_gate.weight"])
      expect(infos.has(name), name).toBe(false);

    const loaded = loadGgufModel(path);
    expectSameTensors(loaded, model);
    // Each part lies where its rows lie in the fused tensor: q8_0 rows of 64 values are 2 blocks of 34 bytes.
    const rowBytes = 68;
    const qkv = infos.get("blk.1.attn_qkv.weight")?.fileOffset as number;
    const upGate = infos.get("blk.1.ffn_up.weight")?.fileOffset as number;
    const at = (name: string) => loaded.tensors.get(name)?.file?.offset;
    expect(at(tensorNames.wq(1))).toBe(qkv);
    expect(at(tensorNames.wk(1))).toBe(qkv + nHeads * headDim * rowBytes);
    expect(at(tensorNames.wv(1))).toBe(qkv + (nHeads + nKvHeads) * headDim * rowBytes);
    expect(at(tensorNames.ffnGate(1))).toBe(upGate);
    expect(at(tensorNames.ffnUp(1))).toBe(upGate + hiddenDim * rowBytes);
  });

  test("the native backend maps the views from the file and computes as with the same weights in memory", async () => {
    const path = freshPath("phi3-native");
    writeGgufModel(familyModel(family("phi3"), "q8_0", 3), path, { dtype: "q8_0" });
    const mapped = loadGgufModel(path);
    const inMemory: LoadedModel = {
      ...mapped,
      tensors: new Map([...mapped.tensors].map(([name, t]) => [name, { ...t, data: t.data.slice() }])),
    };
    for (const t of inMemory.tensors.values()) delete t.file;
    const fromFile = await NativeBackend.load(mapped, { threads: 1 });
    const fromBuffers = await NativeBackend.load(inMemory, { threads: 1 });
    expect(fromFile.weightSource).toBe("mapped");
    expect(fromBuffers.weightSource).toBe("buffers");
    const ids = [1, 17, 42, 99, 7];
    const vocab = mapped.config.vocabSize;
    expect(await logitsAt(fromFile, ids, vocab)).toEqual(await logitsAt(fromBuffers, ids, vocab));
  });

  test("a fused tensor whose rows contradict the metadata is refused naming it", () => {
    const path = freshPath("phi3-bad");
    writeGgufModel(familyModel(family("phi3"), "f32"), path, { dtype: "f32" });
    const file = readGgufFile(path);
    const bad = freshPath("phi3-bad-rows");
    const entries = file.tensors.map(
      (info): GgufTensorEntry => ({
        name: info.name,
        dtype: info.dtype,
        shape: info.name === "blk.0.ffn_up.weight" ? [info.shape[0] / 2, info.shape[1]] : info.shape,
        data: () => {
          const data = readGgufTensor(file, info).data;
          return info.name === "blk.0.ffn_up.weight" ? data.subarray(0, data.byteLength / 2) : data;
        },
      }),
    );
    writeGgufFile(bad, file.metadata, entries);
    expectInputError(() => loadGgufModel(bad), bad, '"blk.0.ffn_up.weight" has shape [128,64]', "[256,64]");
  });
});

/** The load error of `family`'s GGUF with `edit` applied to its metadata. */
function loadErrorFor(
  f: Family,
  edit: (metadata: Map<string, GgufValue>) => void,
  ...parts: string[]
): string {
  const good = freshPath(`${f.name}-good`);
  writeGgufModel(familyModel(f, "f32"), good, { dtype: "f32" });
  const file = readGgufFile(good);
  const entries = file.tensors.map(
    (info): GgufTensorEntry => ({ ...info, data: () => readGgufTensor(file, info).data }),
  );
  edit(file.metadata);
  const bad = freshPath(`${f.name}-bad`);
  writeGgufFile(bad, file.metadata, entries);
  try {
    return expectInputError(() => loadGgufModel(bad), bad, ...parts);
  } finally {
    rmSync(good);
    rmSync(bad);
  }
}

const str = (value: string): GgufValue => ({ type: "string", value });
const u32 = (value: number): GgufValue => ({ type: "uint32", value });
const f32 = (value: number): GgufValue => ({ type: "float32", value });

describe("GGUF metadata vellum does not compute is refused, naming the key and the value", () => {
  test("an unknown architecture or RoPE scaling type (property)", () => {
    const llama = family("llama");
    const known = new Set(["llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"]);
    const scaling = new Set(["none", "linear", "yarn", "longrope"]);
    const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,11}$/);
    fc.assert(
      fc.property(
        name.filter((n) => !known.has(n)),
        name.filter((n) => !scaling.has(n)),
        (arch, type) => {
          loadErrorFor(
            llama,
            (m) => m.set("general.architecture", str(arch)),
            '"general.architecture"',
            `"${arch}"`,
          );
          loadErrorFor(
            llama,
            (m) => m.set("llama.rope.scaling.type", str(type)),
            '"llama.rope.scaling.type"',
            `"${type}"`,
          );
        },
      ),
      { numRuns: 8 },
    );
  });

  test("per-family keys", () => {
    loadErrorFor(
      family("gemma3"),
      (m) =>
        m.set("gemma3.attention.sliding_window_pattern", { type: "array", itemType: "bool", value: [true] }),
      '"gemma3.attention.sliding_window_pattern"',
      "array",
    );
    loadErrorFor(
      family("gemma2"),
      (m) => m.set("gemma2.attention.sliding_window", u32(0)),
      '"gemma2.attention.sliding_window" is 0',
    );
    loadErrorFor(
      family("gemma2"),
      (m) => m.set("gemma2.attn_logit_softcapping", f32(-1)),
      '"gemma2.attn_logit_softcapping" is -1',
    );
    loadErrorFor(
      family("gemma2"),
      (m) => {
        m.set("gemma2.rope.scaling.type", str("linear"));
        m.set("gemma2.rope.scaling.factor", f32(2));
      },
      '"gemma2.rope.scaling.type" is "linear"',
      "windowed layers",
    );
    loadErrorFor(
      family("gemma3"),
      (m) => m.set("gemma3.rope.scaling.type", str("yarn")),
      '"gemma3.rope.scaling.type" is "yarn"',
    );
    loadErrorFor(
      family("qwen2"),
      (m) => {
        m.set("qwen2.attention.key_length", u32(32));
        m.set("qwen2.attention.value_length", u32(32));
      },
      '"qwen2.attention.key_length" is 32',
    );
    loadErrorFor(
      family("phi3"),
      (m) => m.set("phi3.rope.dimension_count", u32(13)),
      '"phi3.rope.dimension_count" is 13',
    );
    loadErrorFor(
      family("qwen3"),
      (m) => m.set("qwen3.attention.value_length", u32(16)),
      '"qwen3.attention.value_length" is 16',
    );
  });

  test("keys that would make llama.cpp compute another kind of model", () => {
    loadErrorFor(family("llama"), (m) => m.set("llama.expert_count", u32(8)), '"llama.expert_count" is 8');
    loadErrorFor(
      family("qwen3"),
      (m) => m.set("qwen3.attention.causal", { type: "bool", value: false }),
      '"qwen3.attention.causal" is false',
    );
  });

  test("phi3's sliding_window is ignored, as llama.cpp does", () => {
    const path = freshPath("phi3-swa");
    writeGgufModel(familyModel(family("phi3"), "f32"), path, {
      dtype: "f32",
      extraMetadata: new Map([["phi3.attention.sliding_window", u32(8)]]),
    });
    expect(loadGgufModel(path).config.layerWindows).toEqual([0, 0]);
  });
});

describe("config.json vellum does not compute is refused, naming the key and the value", () => {
  const json = (modelType: string, fields: Record<string, unknown> = {}) => ({
    model_type: modelType,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 300,
    ...fields,
  });
  const read = (config: Record<string, unknown>) => () => hfSpecFromJson(config, "config.json");

  test("an unknown rope_type or activation (property)", () => {
    const known = new Set(["default", "linear", "yarn", "llama3", "longrope", "su"]);
    const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,11}$/);
    fc.assert(
      fc.property(
        name.filter((n) => !known.has(n)),
        name.filter((n) => n !== "silu"),
        (type, act) => {
          expectInputError(
            read(json("llama", { rope_scaling: { rope_type: type } })),
            '"rope_scaling"',
            `"${type}"`,
          );
          expectInputError(read(json("qwen3", { hidden_act: act })), '"hidden_act"', `"${act}"`);
        },
      ),
    );
  });

  test.each([
    ["gemma2", { rope_scaling: { rope_type: "linear", factor: 2 } }, ['"rope_scaling"', "gemma2"]],
    ["gemma2", { hidden_activation: "gelu" }, ['"hidden_activation" is "gelu"']],
    ["gemma3_text", { rope_scaling: { rope_type: "yarn", factor: 2 } }, ['"rope_scaling"', "windowed"]],
    ["gemma3_text", { layer_types: ["sliding_attention"] }, ['"layer_types"']],
    ["gemma3", {}, ['"text_config" is undefined', 'model_type "gemma3"']],
    [
      "phi3",
      { rope_scaling: { type: "longrope", long_factor: [1, 2], short_factor: [1, 2] } },
      ['"rope_scaling.long_factor"', "8 positive numbers"],
    ],
    ["phi3", { rope_scaling: { rope_type: "linear", factor: 2 } }, ['"rope_scaling"', "phi3"]],
    ["qwen3", { attention_bias: true }, ['"attention_bias" is true']],
    [
      "qwen2",
      { rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 64, beta_fast: 16 } },
      ['"rope_scaling.beta_fast" is 16'],
    ],
    ["qwen2", { rope_scaling: { rope_type: "llama3", factor: 8 } }, ['"rope_scaling"', "qwen2"]],
    ["mistral", { sliding_window: 4096 }, ['"sliding_window" is 4096']],
    ["llama", { rope_parameters: { rope_type: "default", rope_theta: 10000 } }, ['"rope_parameters"']],
  ] as const)("%s %j", (modelType, fields, parts) => {
    expectInputError(read(json(modelType, fields)), "config.json: ", ...parts);
  });

  test("a mistral with sliding_window null is a llama", () => {
    expect(hfSpecFromJson(json("mistral", { sliding_window: null }), "config.json").config.architecture).toBe(
      "llama",
    );
  });
});

describe("Gemma 3 with vision (Gemma3ForConditionalGeneration): its text model", () => {
  test("gemma-3-4b-it's config.json: text_config over transformers' defaults", () => {
    const { config } = hfSpecFromJson(
      {
        architectures: ["Gemma3ForConditionalGeneration"],
        model_type: "gemma3",
        eos_token_id: [1, 106],
        text_config: {
          hidden_size: 2560,
          intermediate_size: 10240,
          model_type: "gemma3_text",
          num_hidden_layers: 34,
          rope_scaling: { factor: 8.0, rope_type: "linear" },
          sliding_window: 1024,
        },
        vision_config: { hidden_size: 1152, model_type: "siglip_vision_model" },
      },
      "config.json",
    );
    expect(config).toMatchObject({
      architecture: "gemma3",
      nHeads: 8,
      nKvHeads: 4,
      headDim: 256,
      vocabSize: 262208,
      ropeTheta: 1_000_000,
      ropeThetaLocal: 10000,
      ropeScaling: { freqScale: 0.125, extFactor: 0, attnFactor: 1 },
      attentionScale: 1 / 16,
    });
    expect(config.layerWindows).toEqual(Array.from({ length: 34 }, (_, l) => (l % 6 === 5 ? 0 : 1024)));
  });

  test.each(["language_model.model.", "model.language_model."])(
    "loads from under %s, the vision tower left aside",
    (prefix) => {
      const dir = join(root, `gemma3-vision-${fileCount++}`);
      writeHfModel(familyModel(family("gemma3"), "f32"), dir, "f32");
      const text = loadHfModel(dir);
      const configPath = join(dir, "config.json");
      const { architectures: _, ...textConfig } = JSON.parse(readFileSync(configPath, "utf8"));
      writeFileSync(
        configPath,
        JSON.stringify({
          architectures: ["Gemma3ForConditionalGeneration"],
          model_type: "gemma3",
          text_config: textConfig,
          vision_config: { hidden_size: 8 },
        }),
      );
      const weights = join(dir, "model.safetensors");
      const file = SafetensorsFile.open(weights);
      const tensors = new Map(
        [...file.entries.keys()].map((name) => [name.replace(/^model\./, prefix), file.read(name)]),
      );
      file.close();
      const tower = prefix.startsWith("model.") ? "model.vision_tower" : "vision_tower";
      tensors.set(`${tower}.vision_model.post_layernorm.weight`, quantize(new Float32Array(8), [8], "f32"));
      writeSafetensors(weights, tensors);
      const loaded = loadHfModel(dir);
      expect(loaded.config).toEqual(text.config);
      expectSameTensors(loaded, text);
    },
  );
});

describe("Gemma norms in an f16 checkpoint", () => {
  test("1 is added in f16, as convert_hf_to_gguf.py adds it, and kept in f32", () => {
    const model = familyModel(family("gemma3"), "f32");
    const dir = join(root, `gemma3-f16-${fileCount++}`);
    writeHfModel(model, dir, "f16");
    const file = SafetensorsFile.open(join(dir, "model.safetensors"));
    const stored = dequantize(file.read("model.layers.0.self_attn.q_norm.weight"));
    file.close();
    const loaded = loadHfModel(dir).tensors.get(tensorNames.qNorm(0)) as Tensor;
    expect(loaded.dtype).toBe("f32");
    const plusOne = stored.map((w) => w + 1);
    expect(dequantize(loaded)).toEqual(dequantize(quantize(plusOne, [plusOne.length], "f16")));
  });
});

describe("writing refuses a model llama.cpp would compute differently, naming the field", () => {
  const cases: [string, Partial<ModelConfig>, string][] = [
    ["gemma2", { attnSoftcap: 0 }, "gemma2.attn_logit_softcapping"],
    ["gemma3", { attentionScale: 0.1 }, "attentionScale"],
    ["gemma3", { layerWindows: [16, 0, 16, 0, 0, 16, 16] }, "layerWindows"],
    ["qwen3", { qkNorm: false }, "qkNorm"],
    ["llama", { embeddingScale: 2 }, "embeddingScale"],
    [
      "phi3",
      { ropeDims: 16, ropeFreqFactors: "none", ropeScaling: undefined, layerWindows: [8, 8] },
      "layerWindows",
    ],
  ];
  test.each(cases)("%s: %j", (name, fields, part) => {
    const model = familyModel(family(name), "f32");
    expectInputError(
      () =>
        writeGgufModel({ ...model, config: { ...model.config, ...fields } }, freshPath("refused"), {
          dtype: "f32",
        }),
      `cannot be written as GGUF ${name}`,
      part,
    );
  });

  test("gemma2: llama.cpp always ties the classifier to the embedding", () => {
    const model = familyModel(family("gemma2"), "f32");
    model.tensors.set(tensorNames.output, model.tensors.get(tensorNames.tokenEmbedding) as Tensor);
    expectInputError(
      () =>
        writeGgufModel(
          { ...model, config: { ...model.config, tiedEmbeddings: false } },
          freshPath("refused"),
          {
            dtype: "f32",
          },
        ),
      "cannot be written as GGUF gemma2",
      "tiedEmbeddings would be true",
    );
  });
});

describe("llama.cpp loads each family's GGUF and names its architecture", () => {
  let llama: Llama;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  });
  afterAll(async () => {
    await llama?.dispose();
  });

  test.each(families())("$name", async (f) => {
    const path = freshPath(`${f.name}-llama-cpp`);
    // phi3's is named "phi3-synthetic": llama.cpp looks up Phi-3's special tokens, which its vocabulary carries.
    writeGgufModel(familyModel(f, "q8_0"), path, { dtype: "q8_0" });
    const model = await llama.loadModel({ modelPath: path });
    try {
      expect(model.fileInfo.metadata.general.architecture).toBe(f.config.architecture);
    } finally {
      await model.dispose();
    }
  });
});
