/**
 * A Hugging Face model directory, loaded and written:
 *   config.json             architecture and sizes (transformers' Llama, Mistral, Qwen2, Qwen3, Gemma2,
 *                           Gemma3 and Phi3 configs; of Gemma 3 with vision, the text model)
 *   model.safetensors       weights under HF names, or shards + model.safetensors.index.json
 *   tokenizer.json          the tokenizer, with tokenizer_config.json (BOS/EOS names, chat_template)
 *
 * Weights are renamed to the canonical (GGUF) names and keep their dtype; Phi-3's fused projections are split
 * into views of their rows, Gemma's norms become 1 + w (GGUF's convention) and RoPE factor tensors are computed
 * from rope_scaling, all as convert_hf_to_gguf.py does. HF checkpoints use the rotate-half RoPE convention, so
 * a loaded model has ropeStyle "neox" and its Q/K rows as stored; converting to GGUF's interleaved order is
 * the GGUF writer's job.
 */

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { expectedTensors, type ModelConfig, tensorNames } from "../config.js";
import { dequantize, quantize } from "../dtype.js";
import { InputError, quoteFileString } from "../errors.js";
import type { LoadedModel, TensorProgress } from "../model.js";
import { reorderRopeRows } from "../rope-order.js";
import { concatRows, type Tensor } from "../tensor.js";
import {
  type HfTokenizerConfig,
  loadHfTokenizer,
  tokenizerConfigFromVocab,
  tokenizerJsonFromVocab,
  vocabFromTokenizerJson,
} from "../tokenizer/hf-tokenizer.js";
import type { VocabSpec } from "../tokenizer/tokenizer.js";
import {
  type HfDType,
  type HfModelSpec,
  hfConfigFor,
  hfSpecFromJson,
  isGemma,
  readJsonObject,
} from "./hf-config.js";
import { SafetensorsCheckpoint, writeSafetensors } from "./safetensors.js";

// ---- loading ----

export function loadHfModel(dir: string, onProgress?: TensorProgress): LoadedModel {
  const configPath = join(dir, "config.json");
  const spec = hfSpecFromJson(readJsonObject(configPath), configPath);
  // The small files first, so that a broken tokenizer is reported before gigabytes of weights are read.
  const tokenizer = loadHfTokenizer(dir);
  if (tokenizer.vocabSize > spec.config.vocabSize) {
    throw new InputError(
      `${join(dir, "tokenizer.json")}: ${tokenizer.vocabSize} tokens, more than config.json's vocab_size ${spec.config.vocabSize}`,
    );
  }
  return {
    config: spec.config,
    tensors: readWeights(dir, spec, onProgress),
    tokenizer,
    vocab: readVocab(dir),
    chatTemplate: tokenizer.chatTemplate,
    name: basename(dir),
    format: "safetensors",
    path: dir,
  };
}

// ---- weights ----

/** Each tensor of a config's HF checkpoint: its name and the canonical tensors it holds, rows concatenated. */
function hfTensors(c: ModelConfig): Map<string, [string, number][]> {
  const gemma = c.architecture === "gemma2" || c.architecture === "gemma3";
  const phi3 = c.architecture === "phi3";
  const hfName = new Map<string, string>([
    [tensorNames.tokenEmbedding, "model.embed_tokens.weight"],
    [tensorNames.outputNorm, "model.norm.weight"],
    [tensorNames.output, "lm_head.weight"],
  ]);
  for (let l = 0; l < c.nLayers; l++) {
    const layer = `model.layers.${l}`;
    const attn = `${layer}.self_attn`;
    const mlp = `${layer}.mlp`;
    const set = (name: (l: number) => string, hf: string) => hfName.set(name(l), `${layer}.${hf}`);
    set(tensorNames.attnNorm, "input_layernorm.weight");
    set(tensorNames.ffnNorm, gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight");
    set(tensorNames.postAttnNorm, "post_attention_layernorm.weight");
    set(tensorNames.postFfnNorm, "post_feedforward_layernorm.weight");
    set(tensorNames.qNorm, "self_attn.q_norm.weight");
    set(tensorNames.kNorm, "self_attn.k_norm.weight");
    for (const [w, b, proj] of [
      [tensorNames.wq, tensorNames.bq, "q_proj"],
      [tensorNames.wk, tensorNames.bk, "k_proj"],
      [tensorNames.wv, tensorNames.bv, "v_proj"],
    ] as const) {
      hfName.set(w(l), `${attn}.${phi3 ? "qkv_proj" : proj}.weight`);
      hfName.set(b(l), `${attn}.${phi3 ? "qkv_proj" : proj}.bias`);
    }
    set(tensorNames.wo, "self_attn.o_proj.weight");
    hfName.set(tensorNames.ffnGate(l), `${mlp}.${phi3 ? "gate_up_proj" : "gate_proj"}.weight`);
    hfName.set(tensorNames.ffnUp(l), `${mlp}.${phi3 ? "gate_up_proj" : "up_proj"}.weight`);
    set(tensorNames.ffnDown, "mlp.down_proj.weight");
  }
  const out = new Map<string, [string, number][]>();
  for (const [name, shape] of expectedTensors(c)) {
    const hf = hfName.get(name);
    if (hf === undefined) continue; // RoPE factors: computed from config.json
    const parts = out.get(hf) ?? [];
    parts.push([name, shape[0]]);
    out.set(hf, parts);
  }
  return out;
}

/**
 * Gemma's RMSNorm multiplies by (1 + w); GGUF and the canonical model store 1 + w, added as
 * convert_hf_to_gguf.py adds it (in f16 for f16 weights, else in f32), kept in f32.
 */
function gemmaNormFromHf(t: Tensor): Tensor {
  const shifted = dequantize(t).map((w) => w + 1);
  return quantize(
    t.dtype === "f16" ? dequantize(quantize(shifted, t.shape, "f16")) : shifted,
    t.shape,
    "f32",
  );
}

function gemmaNormToHf(t: Tensor, dtype: HfDType): Tensor {
  return quantize(
    dequantize(t).map((w) => w - 1),
    t.shape,
    dtype,
  );
}

const isNorm = (name: string) => name.endsWith("norm.weight");

/**
 * Where a Gemma 3 checkpoint with vision keeps its text model ("model." of a text-only one): under
 * "language_model.model." as transformers saved it before 4.52, "model.language_model." since.
 */
function multimodalTextPrefix(checkpoint: SafetensorsCheckpoint): string | undefined {
  return ["language_model.model.", "model.language_model."].find((p) =>
    checkpoint.find(`${p}embed_tokens.weight`),
  );
}

function readWeights(dir: string, spec: HfModelSpec, onProgress?: TensorProgress): Map<string, Tensor> {
  const c = spec.config;
  const checkpoint = SafetensorsCheckpoint.open(dir);
  try {
    // Checked before listing the expected tensors: a corrupt count would list billions of them.
    const count = [...checkpoint.names()].length;
    if (c.nLayers > count) {
      throw new InputError(
        `${join(dir, "config.json")}: "num_hidden_layers" is ${c.nLayers}, but ${checkpoint.source} holds only ${count} tensors`,
      );
    }
    const textModel = c.architecture === "gemma3" ? multimodalTextPrefix(checkpoint) : undefined;
    const wanted = new Map<string, [string, number][]>();
    for (const [hfName, parts] of hfTensors(c)) {
      wanted.set(textModel && hfName.startsWith("model.") ? textModel + hfName.slice(6) : hfName, parts);
    }
    for (const hfName of checkpoint.names()) {
      // inv_freq is a RoPE buffer some old checkpoints saved (recomputed from rope_theta); a tied lm_head is a
      // copy; a multimodal checkpoint's vision tower is not the text model.
      const ignorable =
        hfName.endsWith(".rotary_emb.inv_freq") ||
        (c.tiedEmbeddings && (hfName === "lm_head.weight" || hfName === "language_model.lm_head.weight")) ||
        (textModel !== undefined && /^(model\.)?(vision_tower|multi_modal_projector)\./.test(hfName));
      if (!wanted.has(hfName) && !ignorable) {
        throw new InputError(
          `${checkpoint.source}: tensor ${quoteFileString(hfName)} is not supported (not part of the ${c.architecture} model config.json describes)`,
        );
      }
    }
    const expected = expectedTensors(c);
    const tensors = new Map<string, Tensor>();
    let read = 0;
    for (const [hfName, parts] of wanted) {
      const cols = (expected.get(parts[0][0]) ?? []).slice(1);
      const shape = [parts.reduce((sum, [, rows]) => sum + rows, 0), ...cols];
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
      const whole = found.file.read(hfName);
      const rowBytes = whole.data.byteLength / shape[0];
      let row = 0;
      for (const [name, rows] of parts) {
        const part: Tensor = {
          dtype: whole.dtype,
          shape: [rows, ...cols],
          data:
            parts.length === 1 ? whole.data : whole.data.subarray(row * rowBytes, (row + rows) * rowBytes),
        };
        tensors.set(name, isGemma(c) && isNorm(name) ? gemmaNormFromHf(part) : part);
        row += rows;
      }
      onProgress?.(++read, wanted.size);
    }
    for (const [name, values] of spec.ropeFactors)
      tensors.set(name, quantize(values, [values.length], "f32"));
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

// ---- writing ----

/**
 * Writes `model` as a Hugging Face directory with every tensor in `dtype` (quantized tensors are
 * dequantized first): config.json, model.safetensors, tokenizer.json and tokenizer_config.json.
 * config.json is read back first: a model it would not describe (a switch transformers derives from the
 * class, RoPE factors its rope_scaling does not give …) is refused before anything is written.
 */
export function writeHfModel(model: LoadedModel, dir: string, dtype: HfDType): void {
  if (!model.vocab) {
    throw new InputError(
      `${model.path}: the tokenizer of this model is not available as a vocabulary, so tokenizer.json cannot be written`,
    );
  }
  const config = hfConfigFor(model, dtype);
  const tensors = hfCheckpoint(model, dtype);
  const json = (value: object) => `${JSON.stringify(value, null, 2)}\n`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), json(config));
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), json(tokenizerJsonFromVocab(model.vocab)));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    json(tokenizerConfigFromVocab(model.vocab, model.chatTemplate)),
  );
}

function hfCheckpoint(model: LoadedModel, dtype: HfDType): Map<string, Tensor> {
  const c = model.config;
  const headsOf = new Map<string, number>();
  if (c.ropeStyle === "interleaved") {
    for (let l = 0; l < c.nLayers; l++) {
      for (const name of [tensorNames.wq(l), tensorNames.bq(l)]) headsOf.set(name, c.nHeads);
      for (const name of [tensorNames.wk(l), tensorNames.bk(l)]) headsOf.set(name, c.nKvHeads);
    }
  }
  const expected = expectedTensors(c);
  const converted = (name: string): Tensor => {
    const shape = expected.get(name) ?? [];
    const source = model.tensors.get(name);
    if (!source || source.shape.join() !== shape.join()) {
      throw new InputError(
        `${model.path}: tensor "${name}" is ${source ? `of shape [${source.shape}]` : "missing"}, expected [${shape}]`,
      );
    }
    const t =
      isGemma(c) && isNorm(name)
        ? gemmaNormToHf(source, dtype)
        : source.dtype === dtype
          ? source
          : quantize(dequantize(source), shape, dtype);
    const heads = headsOf.get(name);
    return heads === undefined ? t : reorderRopeRows(t, heads, "neox");
  };
  const out = new Map<string, Tensor>();
  for (const [hfName, parts] of hfTensors(c))
    out.set(hfName, concatRows(parts.map(([name]) => converted(name))));
  return out;
}
