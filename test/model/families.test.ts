/**
 * Every supported family through the formats: a small model with the family's switches written as GGUF and
 * loaded back gives the same config and tensors; llama.cpp (node-llama-cpp) loads what vellum writes and
 * names the architecture; what llama.cpp would compute differently, or vellum does not implement, is refused
 * naming the key and the value.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { type ModelConfig, tensorNames } from "../../src/model/config.js";
import { loadGgufModel, writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { type GgufValue, readGgufFile, readGgufTensor } from "../../src/model/formats/gguf-reader.js";
import { type GgufTensorEntry, writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import type { LoadedModel } from "../../src/model/model.js";
import type { Tensor } from "../../src/model/tensor.js";
import { expectInputError, logitsAt } from "../helpers.js";
import { type Family, families, familyModel } from "./family-configs.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vellum-families-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
const freshPath = (name: string) => join(dir, `${name}-${fileCount++}.gguf`);

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
    const at = (name: string) => loaded.tensors.get(name)?.fileOffset;
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
    for (const t of inMemory.tensors.values()) delete t.fileOffset;
    const fromFile = new NativeBackend(mapped, { threads: 1 });
    const fromBuffers = new NativeBackend(inMemory, { threads: 1 });
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

  test("phi3's sliding_window is ignored, as llama.cpp does", () => {
    const path = freshPath("phi3-swa");
    writeGgufModel(familyModel(family("phi3"), "f32"), path, {
      dtype: "f32",
      extraMetadata: new Map([["phi3.attention.sliding_window", u32(8)]]),
    });
    expect(loadGgufModel(path).config.layerWindows).toEqual([0, 0]);
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
    // llama.cpp looks up Phi-3's special tokens when general.name says "phi3"; the synthetic vocabulary has none.
    writeGgufModel({ ...familyModel(f, "q8_0"), name: "tiny" }, path, { dtype: "q8_0" });
    const model = await llama.loadModel({ modelPath: path });
    try {
      expect(model.fileInfo.metadata.general.architecture).toBe(f.config.architecture);
    } finally {
      await model.dispose();
    }
  });
});
