/**
 * A Hugging Face model directory, loaded and written:
 *   config.json             architecture and sizes (transformers' LlamaConfig / Qwen2Config)
 *   model.safetensors       weights under HF names, or shards + model.safetensors.index.json
 *   tokenizer.json          the tokenizer, with tokenizer_config.json (BOS/EOS names, chat_template)
 *
 * Weights are renamed to the canonical (GGUF) names and keep their dtype. HF checkpoints use the
 * rotate-half RoPE convention, so a loaded model has ropeStyle "neox" and its Q/K rows as stored;
 * converting to GGUF's interleaved order is the GGUF writer's job.
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { type Architecture, expectedTensors, type ModelConfig, plainConfig, tensorNames } from "../config.js";
import { dequantize, quantize } from "../dtype.js";
import { fileErrorText, InputError, quoteFileString, showFileValue } from "../errors.js";
import type { LoadedModel } from "../model.js";
import { reorderRopeRows } from "../rope-order.js";
import type { Tensor } from "../tensor.js";
import {
  type HfTokenizerConfig,
  loadHfTokenizer,
  tokenizerConfigFromVocab,
  tokenizerJsonFromVocab,
  vocabFromTokenizerJson,
} from "../tokenizer/hf-tokenizer.js";
import type { VocabSpec } from "../tokenizer/tokenizer.js";
import { SafetensorsCheckpoint, writeSafetensors } from "./safetensors.js";

export type HfDType = "f32" | "f16" | "bf16";

const architectureClass: Record<Architecture, string> = {
  llama: "LlamaForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  qwen3: "Qwen3ForCausalLM",
  gemma2: "Gemma2ForCausalLM",
  gemma3: "Gemma3ForCausalLM",
  phi3: "Phi3ForCausalLM",
};

const torchDtypeName: Record<HfDType, string> = { f32: "float32", f16: "float16", bf16: "bfloat16" };

// ---- loading ----

export function loadHfModel(dir: string): LoadedModel {
  const config = readHfConfig(join(dir, "config.json"));
  // The small files first, so that a broken tokenizer is reported before gigabytes of weights are read.
  const tokenizer = loadHfTokenizer(dir);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new InputError(
      `${join(dir, "tokenizer.json")}: ${tokenizer.vocabSize} tokens, more than config.json's vocab_size ${config.vocabSize}`,
    );
  }
  return {
    config,
    tensors: readWeights(dir, config),
    tokenizer,
    vocab: readVocab(dir),
    chatTemplate: tokenizer.chatTemplate,
    name: basename(dir),
    format: "safetensors",
    path: dir,
  };
}

/** config.json → ModelConfig; absent optional keys take transformers' defaults for the class. */
export function readHfConfig(path: string): ModelConfig {
  const raw = readJsonObject(path);
  const fail = (key: string, problem: string) => new InputError(`${path}: "${key}" ${problem}`);
  const count = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (v === undefined) throw fail(key, "is missing");
    if (!Number.isSafeInteger(v) || (v as number) < 1)
      throw fail(key, `is ${showFileValue(v)}, expected a positive integer`);
    return v as number;
  };
  const positive = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== "number" || !(v > 0))
      throw fail(key, `is ${showFileValue(v)}, expected a positive number`);
    return v;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const v = raw[key] ?? fallback;
    if (typeof v !== "boolean") throw fail(key, `is ${showFileValue(v)}, expected true or false`);
    return v;
  };

  const architecture = architectureOf(path, raw);
  // Features with no place in ModelConfig: loading anyway would compute a different model.
  if (raw.rope_scaling != null)
    throw fail("rope_scaling", `(${showFileValue(raw.rope_scaling)}) is not supported`);
  if ((raw.hidden_act ?? "silu") !== "silu")
    throw fail("hidden_act", `is ${showFileValue(raw.hidden_act)}; only silu is supported`);
  if (raw.use_sliding_window === true)
    throw fail("use_sliding_window", "is true; sliding-window attention is not supported");
  if (raw.mlp_bias === true) throw fail("mlp_bias", "is true; MLP biases are not supported");
  // HF llama's attention_bias also gives o_proj a bias, which ModelConfig cannot hold.
  if (architecture === "llama" && raw.attention_bias === true)
    throw fail("attention_bias", "is true; not supported for llama");

  const dim = count("hidden_size");
  const nHeads = count("num_attention_heads");
  const nKvHeads = count("num_key_value_heads", nHeads);
  if (nHeads % nKvHeads !== 0)
    throw fail("num_key_value_heads", `(${nKvHeads}) does not divide num_attention_heads (${nHeads})`);
  const headDim = count("head_dim", dim / nHeads);
  if (headDim % 2 !== 0) throw fail("head_dim", `is ${headDim}; RoPE needs an even head width`);
  return plainConfig({
    architecture,
    dim,
    hiddenDim: count("intermediate_size"),
    nLayers: count("num_hidden_layers"),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: count("vocab_size"),
    maxSeqLen: count("max_position_embeddings", architecture === "qwen2" ? 32768 : 2048),
    normEps: positive("rms_norm_eps", 1e-6),
    ropeTheta: positive("rope_theta", 10000),
    ropeStyle: "neox",
    tiedEmbeddings: flag("tie_word_embeddings", false),
    attentionBias: architecture === "qwen2",
  });
}

function architectureOf(path: string, raw: Record<string, unknown>): Architecture {
  if (raw.model_type === "llama" || raw.model_type === "qwen2") return raw.model_type;
  const classes = Array.isArray(raw.architectures) ? raw.architectures : [];
  for (const arch of ["llama", "qwen2"] as const) {
    if (raw.model_type === undefined && classes.includes(architectureClass[arch])) return arch;
  }
  const what =
    raw.model_type !== undefined
      ? `model_type ${showFileValue(raw.model_type)}`
      : `architectures ${showFileValue(raw.architectures)}`;
  throw new InputError(`${path}: ${what} is not supported (llama and qwen2 are)`);
}

/** Canonical (GGUF) tensor name → Hugging Face name, for every tensor a config can have. */
export function hfTensorNames(c: ModelConfig): Map<string, string> {
  const m = new Map<string, string>([
    [tensorNames.tokenEmbedding, "model.embed_tokens.weight"],
    [tensorNames.outputNorm, "model.norm.weight"],
    [tensorNames.output, "lm_head.weight"],
  ]);
  for (let l = 0; l < c.nLayers; l++) {
    const layer = `model.layers.${l}`;
    m.set(tensorNames.attnNorm(l), `${layer}.input_layernorm.weight`);
    m.set(tensorNames.wq(l), `${layer}.self_attn.q_proj.weight`);
    m.set(tensorNames.wk(l), `${layer}.self_attn.k_proj.weight`);
    m.set(tensorNames.wv(l), `${layer}.self_attn.v_proj.weight`);
    m.set(tensorNames.bq(l), `${layer}.self_attn.q_proj.bias`);
    m.set(tensorNames.bk(l), `${layer}.self_attn.k_proj.bias`);
    m.set(tensorNames.bv(l), `${layer}.self_attn.v_proj.bias`);
    m.set(tensorNames.wo(l), `${layer}.self_attn.o_proj.weight`);
    m.set(tensorNames.ffnNorm(l), `${layer}.post_attention_layernorm.weight`);
    m.set(tensorNames.ffnGate(l), `${layer}.mlp.gate_proj.weight`);
    m.set(tensorNames.ffnUp(l), `${layer}.mlp.up_proj.weight`);
    m.set(tensorNames.ffnDown(l), `${layer}.mlp.down_proj.weight`);
  }
  return m;
}

function readWeights(dir: string, c: ModelConfig): Map<string, Tensor> {
  const checkpoint = SafetensorsCheckpoint.open(dir);
  try {
    // Checked before listing the expected tensors: a corrupt count would list billions of them.
    const count = [...checkpoint.names()].length;
    if (c.nLayers > count) {
      throw new InputError(
        `${join(dir, "config.json")}: "num_hidden_layers" is ${c.nLayers}, but ${checkpoint.source} holds only ${count} tensors`,
      );
    }
    const hfNames = hfTensorNames(c);
    const wanted = new Map<string, { name: string; shape: number[] }>();
    for (const [name, shape] of expectedTensors(c)) wanted.set(hfNames.get(name) as string, { name, shape });
    for (const hfName of checkpoint.names()) {
      // inv_freq is a RoPE buffer some old checkpoints saved (recomputed from rope_theta); a tied lm_head is a copy.
      const ignorable =
        hfName.endsWith(".rotary_emb.inv_freq") || (c.tiedEmbeddings && hfName === "lm_head.weight");
      if (!wanted.has(hfName) && !ignorable) {
        throw new InputError(
          `${checkpoint.source}: tensor ${quoteFileString(hfName)} is not supported (not part of a plain ${c.architecture} model)`,
        );
      }
    }
    const tensors = new Map<string, Tensor>();
    for (const [hfName, { name, shape }] of wanted) {
      const found = checkpoint.find(hfName);
      if (!found) {
        throw new InputError(
          `${checkpoint.source}: tensor "${hfName}" is missing (expected shape [${shape}])`,
        );
      }
      if (found.entry.shape.join() !== shape.join()) {
        throw new InputError(
          `${found.file.path}: tensor "${hfName}" has shape [${found.entry.shape}], expected [${shape}]`,
        );
      }
      tensors.set(name, found.file.read(hfName));
    }
    return tensors;
  } finally {
    checkpoint.close();
  }
}

/**
 * The tokenizer as a VocabSpec, which writing GGUF needs; undefined when tokenizer.json is of a kind no
 * VocabSpec expresses (the model still loads and runs, through the HF tokenizer).
 */
function readVocab(dir: string): VocabSpec | undefined {
  const jsonPath = join(dir, "tokenizer.json");
  const configPath = join(dir, "tokenizer_config.json");
  const config: HfTokenizerConfig = existsSync(configPath) ? readJsonObject(configPath) : {};
  try {
    return vocabFromTokenizerJson(readJsonObject(jsonPath), config, jsonPath);
  } catch (e) {
    if (e instanceof InputError) return undefined;
    throw e;
  }
}

function readJsonObject(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new InputError(`${path}: not found`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new InputError(`${path}: not valid JSON: ${fileErrorText(e)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new InputError(`${path}: not a JSON object`);
  return value as Record<string, unknown>;
}

// ---- writing ----

/**
 * Writes `model` as a Hugging Face directory with every tensor in `dtype` (quantized tensors are
 * dequantized first): config.json, model.safetensors, tokenizer.json and tokenizer_config.json.
 */
export function writeHfModel(model: LoadedModel, dir: string, dtype: HfDType): void {
  const c = model.config;
  if (c.architecture === "llama" && c.attentionBias) {
    throw new InputError(
      `${model.path}: a llama model with Q/K/V biases has no Hugging Face llama equivalent`,
    );
  }
  if (!model.vocab) {
    throw new InputError(
      `${model.path}: the tokenizer of this model is not available as a vocabulary, so tokenizer.json cannot be written`,
    );
  }
  const tensors = hfTensors(model, dtype);
  const json = (value: object) => `${JSON.stringify(value, null, 2)}\n`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), json(hfConfigJson(model, dtype)));
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), json(tokenizerJsonFromVocab(model.vocab)));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    json(tokenizerConfigFromVocab(model.vocab, model.chatTemplate)),
  );
}

function hfConfigJson(model: LoadedModel, dtype: HfDType): Record<string, unknown> {
  const c = model.config;
  return {
    architectures: [architectureClass[c.architecture]],
    model_type: c.architecture,
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tiedEmbeddings,
    hidden_act: "silu",
    ...(c.architecture === "llama"
      ? { attention_bias: false, mlp_bias: false }
      : { use_sliding_window: false }),
    bos_token_id: model.tokenizer.bosId ?? null,
    eos_token_id: model.tokenizer.eosId ?? null,
    torch_dtype: torchDtypeName[dtype],
  };
}

/** The model's tensors under HF names, in `dtype`, Q/K rows in rotate-half order. */
function hfTensors(model: LoadedModel, dtype: HfDType): Map<string, Tensor> {
  const c = model.config;
  const hfNames = hfTensorNames(c);
  const headsOf = new Map<string, number>();
  if (c.ropeStyle === "interleaved") {
    for (let l = 0; l < c.nLayers; l++) {
      for (const name of [tensorNames.wq(l), tensorNames.bq(l)]) headsOf.set(name, c.nHeads);
      for (const name of [tensorNames.wk(l), tensorNames.bk(l)]) headsOf.set(name, c.nKvHeads);
    }
  }
  const out = new Map<string, Tensor>();
  for (const [name, shape] of expectedTensors(c)) {
    const source = model.tensors.get(name);
    if (!source || source.shape.join() !== shape.join()) {
      throw new InputError(
        `${model.path}: tensor "${name}" is ${source ? `of shape [${source.shape}]` : "missing"}, expected [${shape}]`,
      );
    }
    const converted = source.dtype === dtype ? source : quantize(dequantize(source), source.shape, dtype);
    const heads = headsOf.get(name);
    out.set(
      hfNames.get(name) as string,
      heads === undefined ? converted : reorderRopeRows(converted, heads, "neox"),
    );
  }
  return out;
}
