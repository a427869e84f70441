import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { expectedTensors, type ModelConfig, plainConfig, tensorNames } from "../../src/model/config.js";
import { dequantize, quantize } from "../../src/model/dtype.js";
import { readHfConfig } from "../../src/model/formats/hf-config.js";
import { loadHfModel, writeHfModel } from "../../src/model/formats/hf-model.js";
import { SafetensorsFile, writeSafetensors } from "../../src/model/formats/safetensors.js";
import type { LoadedModel } from "../../src/model/model.js";
import type { Tensor } from "../../src/model/tensor.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import type { VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { Rng } from "../../src/util/rng.js";
import { expectInputError } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "vellum-hf-model-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCounter = 0;
const freshDir = () => join(root, `model-${dirCounter++}`);

/** A small SentencePiece vocabulary: unk, BOS, EOS, the 256 byte pieces, and a few merges spelling "hello". */
function tinyVocab(): VocabSpec {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const pieces = ["▁", "h", "e", "l", "o", "▁h", "ll", "llo", "ello", "▁hello"];
  return {
    model: "llama",
    tokens: ["<unk>", "<s>", "</s>", ...bytes, ...pieces],
    scores: [0, 0, 0, ...bytes.map(() => 0), ...pieces.map((_, i) => -i)],
    tokenTypes: [2, 3, 3, ...bytes.map(() => 6), ...pieces.map(() => 1)],
    unkId: 0,
    bosId: 1,
    eosId: 2,
    addBos: true,
    addEos: false,
  };
}

/** Random weights in every tensor the config needs. */
function randomModel(config: ModelConfig, seed: number, chatTemplate?: string): LoadedModel {
  const rng = new Rng(seed);
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of expectedTensors(config)) {
    const values = Float32Array.from(
      { length: shape.reduce((a, b) => a * b, 1) },
      () => rng.nextFloat() * 2 - 1,
    );
    tensors.set(name, { dtype: "f32", shape, data: new Uint8Array(values.buffer) });
  }
  const vocab = tinyVocab();
  return {
    config,
    tensors,
    tokenizer: createTokenizer(vocab),
    vocab,
    chatTemplate,
    name: "tiny",
    format: "gguf",
    path: "tiny.gguf",
  };
}

const llamaConfig: ModelConfig = plainConfig({
  dim: 16,
  hiddenDim: 24,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 4,
  vocabSize: tinyVocab().tokens.length,
  maxSeqLen: 64,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeStyle: "interleaved",
  tiedEmbeddings: false,
  attentionBias: false,
});

const qwenConfig: ModelConfig = {
  ...llamaConfig,
  architecture: "qwen2",
  headDim: 8,
  ropeDims: 8,
  attentionScale: 1 / Math.sqrt(8),
  nHeads: 2,
  nKvHeads: 1,
  ropeStyle: "neox",
  ropeTheta: 1_000_000,
  normEps: 1e-6,
  tiedEmbeddings: true,
  attentionBias: true,
};

/**
 * HF (rotate-half) → interleaved row order, written as convert_hf_to_gguf.py's permute():
 * w.reshape(heads, 2, rows / heads / 2, rest).swapaxes(1, 2).reshape(w.shape), with rows of `rowBytes` bytes.
 */
function llamaCppPermute(t: Tensor, heads: number): Uint8Array {
  const rowBytes = t.data.byteLength / t.shape[0];
  const half = t.shape[0] / heads / 2;
  const out = new Uint8Array(t.data.byteLength);
  let outRow = 0;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        // After swapaxes, index (h, i, j) reads the input at (h, j, i).
        const inRow = (h * 2 + j) * half + i;
        out.set(t.data.subarray(inRow * rowBytes, (inRow + 1) * rowBytes), outRow * rowBytes);
        outRow++;
      }
    }
  }
  return out;
}

describe("writeHfModel → loadHfModel", () => {
  it("round-trips an interleaved llama: config equal but ropeStyle, Q/K permuted to rotate-half", () => {
    const original = randomModel(llamaConfig, 1, "{{ messages[0].content }}");
    const dir = freshDir();
    writeHfModel(original, dir, "f32");
    const loaded = loadHfModel(dir);

    expect(loaded.format).toBe("safetensors");
    expect(loaded.path).toBe(dir);
    expect(loaded.config).toEqual({ ...llamaConfig, ropeStyle: "neox" });
    expect([...loaded.tensors.keys()].sort()).toEqual([...original.tensors.keys()].sort());
    const headsOf = (name: string) =>
      /attn_q\./.test(name) ? llamaConfig.nHeads : /attn_k\./.test(name) ? llamaConfig.nKvHeads : undefined;
    for (const [name, t] of loaded.tensors) {
      const source = original.tensors.get(name) as Tensor;
      expect(t.dtype, name).toBe("f32");
      expect(t.shape, name).toEqual(source.shape);
      const heads = headsOf(name);
      // Q and K were permuted on writing; permuting back with llama.cpp's formula must give the original.
      expect(heads === undefined ? t.data : llamaCppPermute(t, heads), name).toEqual(source.data);
      if (heads !== undefined) expect(t.data, `${name} is reordered`).not.toEqual(source.data);
    }

    expect(loaded.chatTemplate).toBe("{{ messages[0].content }}");
    for (const text of ["hello", "hello hello", "hi there ☃"]) {
      const ids = original.tokenizer.encode(text);
      expect(loaded.tokenizer.encode(text), text).toEqual(ids);
      expect(loaded.tokenizer.decode(ids)).toBe(text);
    }
    expect(loaded.tokenizer.bosId).toBe(1);
    expect(loaded.tokenizer.eosId).toBe(2);
  });

  it("round-trips a qwen2 (neox, biases, tied embeddings) unchanged", () => {
    const original = randomModel(qwenConfig, 2);
    const dir = freshDir();
    writeHfModel(original, dir, "f32");
    const loaded = loadHfModel(dir);
    expect(loaded.config).toEqual(qwenConfig);
    expect(loaded.tensors).toEqual(original.tensors);
    expect(loaded.tensors.has(tensorNames.output)).toBe(false);
    expect(loaded.tensors.has(tensorNames.bq(1))).toBe(true);
  });

  it("writes HF names and a config.json transformers reads", () => {
    const dir = freshDir();
    writeHfModel(randomModel(qwenConfig, 3), dir, "bf16");
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    expect(config).toMatchObject({
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      head_dim: 8,
      rope_theta: 1_000_000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      torch_dtype: "bfloat16",
    });
    const file = SafetensorsFile.open(join(dir, "model.safetensors"));
    expect(file.metadata).toEqual({ format: "pt" });
    expect(file.entries.get("model.layers.1.self_attn.k_proj.bias")).toMatchObject({
      dtype: "BF16",
      shape: [8],
    });
    expect(file.entries.get("model.layers.0.mlp.down_proj.weight")).toMatchObject({
      dtype: "BF16",
      shape: [16, 24],
    });
    expect(file.entries.has("lm_head.weight")).toBe(false);
    file.close();
  });

  it("converts to the requested dtype and keeps it on loading", () => {
    const original = randomModel(qwenConfig, 4);
    for (const dtype of ["f16", "bf16"] as const) {
      const dir = freshDir();
      writeHfModel(original, dir, dtype);
      const loaded = loadHfModel(dir);
      for (const [name, t] of loaded.tensors) {
        const source = original.tensors.get(name) as Tensor;
        expect(t.dtype).toBe(dtype);
        expect(t.data, name).toEqual(quantize(dequantize(source), source.shape, dtype).data);
      }
    }
  });

  it("loads a sharded checkpoint", () => {
    const original = randomModel(llamaConfig, 5);
    const dir = freshDir();
    writeHfModel(original, dir, "f32");
    const single = SafetensorsFile.open(join(dir, "model.safetensors"));
    const names = [...single.entries.keys()];
    const shards = [names.slice(0, 7), names.slice(7)];
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, file), new Map(shard.map((n) => [n, single.read(n)])));
      for (const n of shard) weightMap[n] = file;
    });
    const expected = loadHfModel(dir).tensors;
    single.close();
    unlinkSync(join(dir, "model.safetensors"));
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
    expect(loadHfModel(dir).tensors).toEqual(expected);
  });
});

describe("tokenizers", () => {
  it("loads a tokenizer.json that no VocabSpec expresses, with vocab left undefined", () => {
    const dir = freshDir();
    writeHfModel(randomModel(llamaConfig, 10), dir, "f32");
    const wordPiece = {
      version: "1.0",
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: "Whitespace" },
      post_processor: null,
      decoder: { type: "WordPiece", prefix: "##", cleanup: true },
      model: {
        type: "WordPiece",
        unk_token: "[UNK]",
        continuing_subword_prefix: "##",
        max_input_chars_per_word: 100,
        vocab: { "[UNK]": 0, hello: 1, world: 2, "##s": 3 },
      },
    };
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(wordPiece));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ unk_token: "[UNK]" }));
    const loaded = loadHfModel(dir);
    expect(loaded.vocab).toBeUndefined();
    expect(loaded.tokenizer.encode("hello worlds")).toEqual([1, 2, 3]);
  });
});

describe("readHfConfig on published configs", () => {
  const write = (config: object) => {
    const dir = freshDir();
    writeHfModel(randomModel(llamaConfig, 6), dir, "f32");
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    return join(dir, "config.json");
  };

  it("TinyLlama-1.1B", () => {
    const path = write({
      architectures: ["LlamaForCausalLM"],
      bos_token_id: 1,
      eos_token_id: 2,
      hidden_act: "silu",
      hidden_size: 2048,
      initializer_range: 0.02,
      intermediate_size: 5632,
      max_position_embeddings: 2048,
      model_type: "llama",
      num_attention_heads: 32,
      num_hidden_layers: 22,
      num_key_value_heads: 4,
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
      rope_scaling: null,
      tie_word_embeddings: false,
      torch_dtype: "bfloat16",
      use_cache: true,
      vocab_size: 32000,
    });
    expect(readHfConfig(path)).toEqual(
      plainConfig({
        architecture: "llama",
        dim: 2048,
        hiddenDim: 5632,
        nLayers: 22,
        nHeads: 32,
        nKvHeads: 4,
        headDim: 64,
        vocabSize: 32000,
        maxSeqLen: 2048,
        normEps: 1e-5,
        ropeTheta: 10000,
        ropeStyle: "neox",
        tiedEmbeddings: false,
        attentionBias: false,
      }),
    );
  });

  it("Qwen2.5-0.5B", () => {
    const path = write({
      architectures: ["Qwen2ForCausalLM"],
      attention_dropout: 0.0,
      bos_token_id: 151643,
      eos_token_id: 151643,
      hidden_act: "silu",
      hidden_size: 896,
      intermediate_size: 4864,
      max_position_embeddings: 32768,
      max_window_layers: 24,
      model_type: "qwen2",
      num_attention_heads: 14,
      num_hidden_layers: 24,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      sliding_window: 32768,
      tie_word_embeddings: true,
      torch_dtype: "bfloat16",
      use_sliding_window: false,
      vocab_size: 151936,
    });
    expect(readHfConfig(path)).toEqual(
      plainConfig({
        architecture: "qwen2",
        dim: 896,
        hiddenDim: 4864,
        nLayers: 24,
        nHeads: 14,
        nKvHeads: 2,
        headDim: 64,
        vocabSize: 151936,
        maxSeqLen: 32768,
        normEps: 1e-6,
        ropeTheta: 1_000_000,
        ropeStyle: "neox",
        tiedEmbeddings: true,
        attentionBias: true,
      }),
    );
  });

  it("rejects what ModelConfig cannot express, naming the key", () => {
    const base = { model_type: "llama", hidden_size: 64, intermediate_size: 128, num_hidden_layers: 1 };
    const sizes = { ...base, num_attention_heads: 4, vocab_size: 100 };
    const cases: [object, string][] = [
      [{ ...sizes, model_type: "mistral" }, '"mistral"'],
      [{ ...sizes, model_type: undefined, architectures: ["GPT2LMHeadModel"] }, "GPT2LMHeadModel"],
      [{ ...sizes, rope_scaling: { rope_type: "dynamic", factor: 2 } }, '"rope_scaling"'],
      [{ ...sizes, rope_scaling: { rope_type: "llama3", factor: 32, mscale: 1 } }, '"rope_scaling.mscale"'],
      [{ ...sizes, hidden_act: "gelu" }, '"hidden_act"'],
      [{ ...sizes, attention_bias: true }, '"attention_bias"'],
      [{ ...sizes, num_key_value_heads: 3 }, '"num_key_value_heads"'],
      [{ ...sizes, hidden_size: 0 }, '"hidden_size"'],
      [base, '"num_attention_heads" is missing'],
      [{ ...sizes, rms_norm_eps: "small" }, '"rms_norm_eps"'],
    ];
    for (const [config, part] of cases) {
      const path = write(config);
      expectInputError(() => readHfConfig(path), path, part);
    }
    // Without model_type, the architectures list decides.
    const byClass = write({ ...sizes, model_type: undefined, architectures: ["Qwen2ForCausalLM"] });
    expect(readHfConfig(byClass).architecture).toBe("qwen2");
  });
});

describe("loadHfModel rejects bad directories, naming the file and tensor", () => {
  /** A good llama directory whose model.safetensors is rewritten by `edit`. */
  function withTensors(edit: (tensors: Map<string, Tensor>) => void): string {
    const dir = freshDir();
    writeHfModel(randomModel(llamaConfig, 7), dir, "f32");
    const path = join(dir, "model.safetensors");
    const file = SafetensorsFile.open(path);
    const tensors = new Map([...file.entries.keys()].map((n) => [n, file.read(n)]));
    file.close();
    edit(tensors);
    writeSafetensors(path, tensors);
    return dir;
  }

  it("a missing tensor", () => {
    const dir = withTensors((t) => t.delete("model.layers.1.mlp.up_proj.weight"));
    expectInputError(
      () => loadHfModel(dir),
      join(dir, "model.safetensors"),
      '"model.layers.1.mlp.up_proj.weight"',
      "missing",
    );
  });

  it("a mis-shaped tensor", () => {
    const dir = withTensors((t) =>
      t.set("model.norm.weight", { dtype: "f32", shape: [15], data: new Uint8Array(60) }),
    );
    expectInputError(() => loadHfModel(dir), '"model.norm.weight"', "[15]", "[16]");
  });

  it("a tensor that is not part of the model", () => {
    const dir = withTensors((t) =>
      t.set("model.layers.0.self_attn.o_proj.bias", { dtype: "f32", shape: [16], data: new Uint8Array(64) }),
    );
    expectInputError(() => loadHfModel(dir), '"model.layers.0.self_attn.o_proj.bias"', "not supported");
  });

  it("tolerates rotary_emb.inv_freq buffers", () => {
    const dir = withTensors((t) =>
      t.set("model.layers.0.self_attn.rotary_emb.inv_freq", {
        dtype: "f32",
        shape: [2],
        data: new Uint8Array(8),
      }),
    );
    expect(loadHfModel(dir).tensors.size).toBe(expectedTensors(llamaConfig).size);
  });

  it("missing config.json, weights or tokenizer.json", () => {
    for (const [file, part] of [
      ["config.json", "config.json"],
      ["model.safetensors", "model.safetensors"],
      ["tokenizer.json", "tokenizer.json"],
    ]) {
      const dir = freshDir();
      writeHfModel(randomModel(llamaConfig, 8), dir, "f32");
      unlinkSync(join(dir, file));
      expectInputError(() => loadHfModel(dir), dir, part);
    }
  });

  it("a tokenizer with more tokens than vocab_size", () => {
    const dir = freshDir();
    writeHfModel(randomModel(llamaConfig, 11), dir, "f32");
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, vocab_size: 100 }));
    expectInputError(() => loadHfModel(dir), join(dir, "tokenizer.json"), "vocab_size 100");
  });

  it("a config.json that is not JSON", () => {
    const dir = freshDir();
    writeHfModel(randomModel(llamaConfig, 9), dir, "f32");
    writeFileSync(join(dir, "config.json"), "{ oops");
    expectInputError(() => loadHfModel(dir), join(dir, "config.json"), "JSON");
  });
});
