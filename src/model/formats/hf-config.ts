/**
 * config.json ↔ ModelConfig for the Hugging Face classes vellum runs (transformers' Llama, Mistral, Qwen2, Qwen3,
 * Gemma2, Gemma3 and Phi3 configs; of Gemma 3 with vision, the text model), computing what convert_hf_to_gguf.py
 * and llama.cpp compute from it (RoPE factor tensors, Gemma's windows and scales). hf-model.ts reads and writes the
 * weights and tokenizer beside it.
 */

import { existsSync, readFileSync } from "node:fs";
import {
  type Architecture,
  type ModelConfig,
  type RopeFreqFactors,
  type RopeScaling,
  tensorNames,
} from "../config.js";
import { dequantize } from "../dtype.js";
import { fileErrorText, InputError, showFileValue } from "../errors.js";
import { shortestFloat32 } from "../float-formats.js";
import type { LoadedModel } from "../model.js";
import { llama3Defaults, llama3RopeFreqs, longRopeAttnFactor, yarnAttnFactor } from "../rope-scaling.js";
import type { Tensor } from "../tensor.js";
import { configMismatch } from "./config-mismatch.js";
import { maxLayers, swaPeriodOf } from "./gguf-config.js";

export type HfDType = "f32" | "f16" | "bf16";

/** The class and model_type each architecture is written as (and read from; see hfArchitectures). */
const hfNames: Record<Architecture, { cls: string; modelType: string }> = {
  llama: { cls: "LlamaForCausalLM", modelType: "llama" },
  qwen2: { cls: "Qwen2ForCausalLM", modelType: "qwen2" },
  qwen3: { cls: "Qwen3ForCausalLM", modelType: "qwen3" },
  gemma2: { cls: "Gemma2ForCausalLM", modelType: "gemma2" },
  gemma3: { cls: "Gemma3ForCausalLM", modelType: "gemma3_text" },
  phi3: { cls: "Phi3ForCausalLM", modelType: "phi3" },
};

/** model_type → architecture; Mistral is a llama (as convert_hf_to_gguf.py converts it) without its window. */
const hfArchitectures: Record<string, Architecture> = {
  ...Object.fromEntries(Object.entries(hfNames).map(([arch, n]) => [n.modelType, arch as Architecture])),
  mistral: "llama",
};
const hfClasses: Record<string, string> = {
  ...Object.fromEntries(Object.values(hfNames).map((n) => [n.cls, n.modelType])),
  MistralForCausalLM: "mistral",
};

/** transformers' defaults, per model_type, for the keys a config.json may leave out (the sizes are required). */
const hfDefaults: Record<string, Record<string, unknown>> = {
  llama: { max_position_embeddings: 2048, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false },
  mistral: {
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    sliding_window: 4096,
  },
  qwen2: {
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
  },
  qwen3: {
    head_dim: 128,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
  },
  gemma2: {
    head_dim: 256,
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: true,
    hidden_activation: "gelu_pytorch_tanh",
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    attn_logit_softcapping: 50,
    final_logit_softcapping: 30,
  },
  gemma3_text: {
    // Gemma 3's text_config lists only what differs from these.
    vocab_size: 262208,
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-6,
    rope_theta: 1_000_000,
    rope_local_base_freq: 10000,
    tie_word_embeddings: true,
    hidden_activation: "gelu_pytorch_tanh",
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    sliding_window_pattern: 6,
    attn_logit_softcapping: null,
    final_logit_softcapping: null,
  },
  phi3: {
    max_position_embeddings: 4096,
    original_max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    partial_rotary_factor: 1,
  },
};

const torchDtypeName: Record<HfDType, string> = { f32: "float32", f16: "float16", bf16: "bfloat16" };

// ---- config.json ----

/** A config.json read: the config, and the RoPE factor tensors its rope_scaling defines (as convert_hf_to_gguf.py computes them). */
export interface HfModelSpec {
  config: ModelConfig;
  ropeFactors: Map<string, Float32Array>;
}

/** config.json → ModelConfig; absent optional keys take transformers' defaults for the class. */
export function readHfConfig(path: string): ModelConfig {
  return hfSpecFromJson(readJsonObject(path), path).config;
}

/**
 * A config.json's content → its model, computing what convert_hf_to_gguf.py and llama.cpp compute from it.
 * `source` names it in errors. What ModelConfig cannot express, or the GGUF llama.cpp would run cannot hold,
 * is refused naming the key and its value.
 */
export function hfSpecFromJson(configJson: Record<string, unknown>, source: string): HfModelSpec {
  const fail = (key: string, problem: string) => new InputError(`${source}: "${key}" ${problem}`);
  const json = textConfigOf(configJson, fail);
  const modelType = modelTypeOf(json, source);
  const arch = hfArchitectures[modelType];
  const defaults = hfDefaults[modelType];
  /** A key's value, or transformers' default when it is absent or null. */
  const get = (key: string) => json[key] ?? defaults[key];
  const count = (key: string, fallback?: number): number => {
    const v = get(key) ?? fallback;
    if (v === undefined) throw fail(key, "is missing");
    if (!Number.isSafeInteger(v) || (v as number) < 1)
      throw fail(key, `is ${showFileValue(v)}, expected a positive integer`);
    return v as number;
  };
  const positive = (key: string): number => {
    const v = get(key);
    if (typeof v !== "number" || !(v > 0))
      throw fail(key, `is ${showFileValue(v)}, expected a positive number`);
    return v;
  };
  const flag = (key: string): boolean => {
    const v = get(key);
    if (typeof v !== "boolean") throw fail(key, `is ${showFileValue(v)}, expected true or false`);
    return v;
  };
  /** A soft-capping value: null turns it off, absent takes the default. */
  const softcap = (key: string): number => {
    const v = key in json ? json[key] : defaults[key];
    if (v === null || v === undefined) return 0;
    if (typeof v !== "number" || !(v > 0))
      throw fail(key, `is ${showFileValue(v)}, expected a positive number or null`);
    return v;
  };
  const gemma = arch === "gemma2" || arch === "gemma3";

  // Features with no place in ModelConfig: loading anyway would compute a different model.
  if (json.rope_parameters != null)
    throw fail(
      "rope_parameters",
      `(${showFileValue(json.rope_parameters)}) is not supported; rope_theta and rope_scaling are`,
    );
  const activation = gemma ? "hidden_activation" : "hidden_act";
  const wantActivation = gemma ? "gelu_pytorch_tanh" : "silu";
  if ((get(activation) ?? wantActivation) !== wantActivation)
    throw fail(
      activation,
      `is ${showFileValue(get(activation))}; only ${wantActivation} is supported for ${modelType}`,
    );
  if ((arch === "qwen2" || arch === "qwen3") && json.use_sliding_window === true)
    throw fail("use_sliding_window", "is true; sliding-window attention is not supported for Qwen");
  const mistralWindow = "sliding_window" in json ? json.sliding_window : defaults.sliding_window;
  if (modelType === "mistral" && mistralWindow != null)
    throw fail(
      "sliding_window",
      `is ${showFileValue(mistralWindow)} (model_type "mistral"): sliding-window attention is not supported for llama-architecture models`,
    );
  if (json.mlp_bias === true) throw fail("mlp_bias", "is true; MLP biases are not supported");
  // An attention bias also gives o_proj a bias, which ModelConfig cannot hold (Qwen 2's q/k/v biases are built in).
  if (arch !== "qwen2" && json.attention_bias === true)
    throw fail("attention_bias", `is true; not supported for ${modelType}`);

  const dim = count("hidden_size");
  const nHeads = count("num_attention_heads");
  const nKvHeads = count("num_key_value_heads", nHeads);
  if (nHeads % nKvHeads !== 0)
    throw fail("num_key_value_heads", `(${nKvHeads}) does not divide num_attention_heads (${nHeads})`);
  const headDim = count("head_dim", dim / nHeads);
  if (headDim % 2 !== 0) throw fail("head_dim", `is ${headDim}; RoPE needs an even head width`);
  const nLayers = count("num_hidden_layers");
  if (nLayers > maxLayers)
    throw fail("num_hidden_layers", `is ${nLayers}; llama.cpp allows at most ${maxLayers}`);
  const maxSeqLen = count("max_position_embeddings");
  const ropeTheta = positive("rope_theta");
  // convert_hf_to_gguf.py's int(partial_rotary_factor · hidden_size) // num_attention_heads.
  const ropeDims =
    arch === "phi3" ? Math.floor(Math.floor(positive("partial_rotary_factor") * dim) / nHeads) : headDim;
  if (ropeDims % 2 !== 0 || ropeDims < 2 || ropeDims > headDim)
    throw fail(
      "partial_rotary_factor",
      `gives ${ropeDims} rotated dimensions of ${headDim}; must be even, 2 to ${headDim}`,
    );

  const layerWindows = gemma
    ? gemmaWindows(json, get, count, fail, arch, nLayers)
    : new Array<number>(nLayers).fill(0);
  // phi3's sliding_window is left out: llama.cpp disables Phi-3's windows, and the converter's GGUF computes so.
  const windowed = layerWindows.some((w) => w > 0);
  const rope = ropeScalingOf(json.rope_scaling, fail, {
    arch,
    modelType,
    headDim,
    ropeDims,
    ropeTheta,
    maxSeqLen,
    originalContext: arch === "phi3" ? count("original_max_position_embeddings") : maxSeqLen,
    windowed,
  });

  const config: ModelConfig = {
    architecture: arch,
    dim,
    hiddenDim: count("intermediate_size"),
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: count("vocab_size"),
    maxSeqLen,
    normEps: positive("rms_norm_eps"),
    ropeTheta,
    ropeStyle: "neox",
    ropeDims,
    ropeFreqFactors: rope.ropeFreqFactors,
    layerWindows,
    tiedEmbeddings: flag("tie_word_embeddings"),
    attentionBias: arch === "qwen2",
    qkNorm: arch === "qwen3" || arch === "gemma3",
    postNorms: gemma,
    ffnActivation: gemma ? "gelu_tanh" : "silu",
    embeddingScale: gemma ? Math.sqrt(dim) : 1,
    attentionScale: 1 / Math.sqrt(gemma ? positive("query_pre_attn_scalar") : headDim),
    attnSoftcap: gemma ? softcap("attn_logit_softcapping") : 0,
    finalLogitSoftcap: gemma ? softcap("final_logit_softcapping") : 0,
  };
  if (rope.ropeScaling) config.ropeScaling = rope.ropeScaling;
  if (windowed) config.ropeThetaLocal = arch === "gemma3" ? positive("rope_local_base_freq") : ropeTheta;
  return { config, ropeFactors: rope.factors };
}

/**
 * The text model's config: Gemma 3 with vision (model_type "gemma3") keeps it in text_config, which
 * convert_hf_to_gguf.py lays over the top-level keys; any other config is its own.
 */
function textConfigOf(
  json: Record<string, unknown>,
  fail: (key: string, problem: string) => InputError,
): Record<string, unknown> {
  if (json.model_type !== "gemma3") return json;
  const text = json.text_config;
  if (typeof text !== "object" || text === null || Array.isArray(text))
    throw fail(
      "text_config",
      `is ${showFileValue(text)}; model_type "gemma3" needs its text model's config there`,
    );
  return { ...json, model_type: "gemma3_text", ...text };
}

function modelTypeOf(json: Record<string, unknown>, source: string): string {
  const modelType = json.model_type;
  if (typeof modelType === "string" && modelType in hfArchitectures) return modelType;
  if (modelType === undefined && Array.isArray(json.architectures)) {
    for (const cls of json.architectures)
      if (typeof cls === "string" && cls in hfClasses) return hfClasses[cls];
  }
  const what =
    modelType !== undefined
      ? `model_type ${showFileValue(modelType)}`
      : `architectures ${showFileValue(json.architectures)}`;
  throw new InputError(
    `${source}: ${what} is not supported (${Object.keys(hfArchitectures).join(", ")} are)`,
  );
}

/**
 * Gemma's windows: `layer_types` when given, else transformers' pattern (Gemma 2: even layers; Gemma 3: all but
 * every sliding_window_pattern-th), each of `sliding_window` tokens.
 */
function gemmaWindows(
  json: Record<string, unknown>,
  get: (key: string) => unknown,
  count: (key: string) => number,
  fail: (key: string, problem: string) => InputError,
  arch: Architecture,
  nLayers: number,
): number[] {
  let sliding: boolean[];
  const types = json.layer_types;
  if (types != null) {
    if (
      !Array.isArray(types) ||
      types.length !== nLayers ||
      !types.every((t) => t === "sliding_attention" || t === "full_attention")
    ) {
      throw fail(
        "layer_types",
        `is ${showFileValue(types)}; expected ${nLayers} of "sliding_attention" and "full_attention"`,
      );
    }
    sliding = types.map((t) => t === "sliding_attention");
  } else if (arch === "gemma2") {
    sliding = Array.from({ length: nLayers }, (_, l) => l % 2 === 0);
  } else {
    const pattern = count("sliding_window_pattern");
    sliding = Array.from({ length: nLayers }, (_, l) => (l + 1) % pattern !== 0);
  }
  if (!sliding.includes(true)) return new Array<number>(nLayers).fill(0);
  if (get("sliding_window") == null) throw fail("sliding_window", "is missing, but layers have windows");
  const window = count("sliding_window");
  return sliding.map((s) => (s ? window : 0));
}

interface RopeContext {
  arch: Architecture;
  modelType: string;
  headDim: number;
  ropeDims: number;
  ropeTheta: number;
  maxSeqLen: number;
  /** Phi-3's original_max_position_embeddings (top level), which rope_scaling may override. */
  originalContext: number;
  windowed: boolean;
}

/**
 * rope_scaling → ModelConfig's RoPE scaling, with the numbers convert_hf_to_gguf.py writes and llama.cpp uses
 * (llama.cpp keeps YaRN's beta_fast 32 and beta_slow 1 for these architectures, so other values are refused).
 */
function ropeScalingOf(
  value: unknown,
  fail: (key: string, problem: string) => InputError,
  c: RopeContext,
): { ropeScaling?: RopeScaling; ropeFreqFactors: RopeFreqFactors; factors: Map<string, Float32Array> } {
  const none = { ropeFreqFactors: "none" as const, factors: new Map<string, Float32Array>() };
  if (value == null) return none;
  if (typeof value !== "object" || Array.isArray(value))
    throw fail("rope_scaling", `is ${showFileValue(value)}, expected an object`);
  const rs = value as Record<string, unknown>;
  const type = rs.rope_type ?? rs.type;
  const unsupported = (why: string) => fail("rope_scaling", `with rope_type ${showFileValue(type)} ${why}`);
  const allow = (...keys: string[]) => {
    for (const k of Object.keys(rs)) {
      if (k !== "rope_type" && k !== "type" && !keys.includes(k))
        throw fail(
          `rope_scaling.${k}`,
          `(${showFileValue(rs[k])}) is not supported with rope_type ${showFileValue(type)}`,
        );
    }
  };
  const number = (key: string, fallback?: number): number => {
    const v = rs[key] ?? fallback;
    if (typeof v !== "number" || !(v > 0))
      throw fail(`rope_scaling.${key}`, `is ${showFileValue(v)}, expected a positive number`);
    return v;
  };
  const scaling = (fields: Partial<RopeScaling>): RopeScaling => ({
    freqScale: 1,
    extFactor: 0,
    attnFactor: 1,
    betaFast: 32,
    betaSlow: 1,
    originalContext: c.maxSeqLen,
    ...fields,
  });
  if (type === "default") {
    allow();
    return none;
  }
  if (c.arch === "phi3" && type !== "longrope" && type !== "su")
    throw unsupported("is not supported for phi3 (its GGUF keeps only LongRoPE)");
  if (c.arch === "gemma2")
    throw unsupported("is not supported for gemma2 (llama.cpp would scale its windowed layers too)");
  switch (type) {
    case "linear": {
      allow("factor");
      return { ...none, ropeScaling: scaling({ freqScale: 1 / number("factor") }) };
    }
    case "yarn": {
      if (c.windowed) throw unsupported("is not supported with windowed layers");
      allow("factor", "original_max_position_embeddings", "beta_fast", "beta_slow");
      for (const [key, llamaCpp] of [
        ["beta_fast", 32],
        ["beta_slow", 1],
      ] as const) {
        if (rs[key] != null && rs[key] !== llamaCpp)
          throw fail(`rope_scaling.${key}`, `is ${showFileValue(rs[key])}; llama.cpp uses ${llamaCpp}`);
      }
      const factor = number("factor");
      const originalContext = number("original_max_position_embeddings");
      return {
        ...none,
        ropeScaling: scaling({
          freqScale: 1 / factor,
          extFactor: 1,
          attnFactor: yarnAttnFactor(factor, 1),
          originalContext,
        }),
      };
    }
    case "llama3": {
      if (c.arch !== "llama") throw unsupported(`is not supported for ${c.modelType}`);
      allow("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings");
      const params = {
        factor: number("factor", llama3Defaults.factor),
        lowFreqFactor: number("low_freq_factor", llama3Defaults.lowFreqFactor),
        highFreqFactor: number("high_freq_factor", llama3Defaults.highFreqFactor),
        originalContext: number("original_max_position_embeddings", llama3Defaults.originalContext),
      };
      return {
        ropeFreqFactors: "fixed",
        factors: new Map([[tensorNames.ropeFreqs, llama3RopeFreqs(params, c.ropeTheta, c.headDim)]]),
      };
    }
    case "longrope":
    case "su": {
      if (c.arch !== "phi3") throw unsupported(`is not supported for ${c.modelType}`);
      allow("long_factor", "short_factor", "original_max_position_embeddings");
      const factors = (key: string) => {
        const v = rs[key];
        if (
          !Array.isArray(v) ||
          v.length !== c.ropeDims / 2 ||
          !v.every((x) => typeof x === "number" && x > 0)
        )
          throw fail(
            `rope_scaling.${key}`,
            `is ${showFileValue(v)}; expected ${c.ropeDims / 2} positive numbers`,
          );
        return Float32Array.from(v as number[]);
      };
      const originalContext = number("original_max_position_embeddings", c.originalContext);
      // Stored as the converter's float32 rope.scaling.attn_factor reads back.
      const attnFactor = shortestFloat32(longRopeAttnFactor(c.maxSeqLen, originalContext));
      return {
        ropeFreqFactors: "longrope",
        ropeScaling: scaling({ attnFactor, originalContext }),
        factors: new Map([
          [tensorNames.ropeFactorsLong, factors("long_factor")],
          [tensorNames.ropeFactorsShort, factors("short_factor")],
        ]),
      };
    }
    default:
      throw unsupported("is not supported");
  }
}

export function readJsonObject(path: string): Record<string, unknown> {
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

/**
 * config.json for `model` with tensors in `dtype`, read back first: a model it would not describe (a switch
 * transformers derives from the class, RoPE factors its rope_scaling does not give …) is refused.
 */
export function hfConfigFor(model: LoadedModel, dtype: HfDType): Record<string, unknown> {
  const json = hfConfigJson(model, dtype);
  checkReadBack(model, json);
  return json;
}

export const isGemma = (c: ModelConfig) => c.architecture === "gemma2" || c.architecture === "gemma3";

function hfConfigJson(model: LoadedModel, dtype: HfDType): Record<string, unknown> {
  const c = model.config;
  const { cls, modelType } = hfNames[c.architecture];
  const json: Record<string, unknown> = {
    architectures: [cls],
    model_type: modelType,
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
    rope_scaling: ropeScalingJson(model),
    tie_word_embeddings: c.tiedEmbeddings,
  };
  if (isGemma(c)) {
    json.hidden_activation = "gelu_pytorch_tanh";
    json.query_pre_attn_scalar = queryPreAttnScalar(c.attentionScale);
    json.attn_logit_softcapping = c.attnSoftcap || null;
    json.final_logit_softcapping = c.finalLogitSoftcap || null;
    json.sliding_window = c.layerWindows.find((w) => w > 0) ?? null;
    json.layer_types = c.layerWindows.map((w) => (w > 0 ? "sliding_attention" : "full_attention"));
    if (c.architecture === "gemma3") {
      json.rope_local_base_freq = c.ropeThetaLocal ?? hfDefaults.gemma3_text.rope_local_base_freq;
      // For transformers versions before layer_types.
      const period = swaPeriodOf("gemma3", c.layerWindows);
      if (period) json.sliding_window_pattern = period;
    }
  } else {
    json.hidden_act = "silu";
    if (c.architecture === "qwen2" || c.architecture === "qwen3") json.use_sliding_window = false;
    if (c.architecture !== "qwen2") json.attention_bias = false;
    if (c.architecture === "llama") json.mlp_bias = false;
  }
  if (c.architecture === "phi3") {
    json.partial_rotary_factor = (c.ropeDims * c.nHeads) / c.dim;
    json.original_max_position_embeddings = c.ropeScaling?.originalContext ?? c.maxSeqLen;
  }
  json.bos_token_id = model.tokenizer.bosId ?? null;
  json.eos_token_id = model.tokenizer.eosId ?? null;
  json.torch_dtype = torchDtypeName[dtype];
  return json;
}

/** query_pre_attn_scalar giving `scale` = 1/√q, as the integer configs carry when one does. */
function queryPreAttnScalar(scale: number): number {
  const q = 1 / (scale * scale);
  return 1 / Math.sqrt(Math.round(q)) === scale ? Math.round(q) : q;
}

/**
 * rope_scaling for the model's RoPE: LongRoPE's factor lists; Llama 3's parameters for rope_freqs.weight (its
 * largest factor, and the converter's defaults for the rest, which the read-back check confirms); linear, YaRN.
 */
function ropeScalingJson(model: LoadedModel): Record<string, unknown> | null {
  const c = model.config;
  const values = (name: string) => Array.from(dequantize(model.tensors.get(name) as Tensor));
  if (c.ropeFreqFactors === "longrope") {
    return {
      rope_type: "longrope",
      long_factor: values(tensorNames.ropeFactorsLong),
      short_factor: values(tensorNames.ropeFactorsShort),
    };
  }
  if (c.ropeFreqFactors === "fixed") {
    return {
      rope_type: "llama3",
      factor: Math.max(...values(tensorNames.ropeFreqs)),
      low_freq_factor: llama3Defaults.lowFreqFactor,
      high_freq_factor: llama3Defaults.highFreqFactor,
      original_max_position_embeddings: llama3Defaults.originalContext,
    };
  }
  const s = c.ropeScaling;
  if (s?.extFactor) {
    return {
      rope_type: "yarn",
      factor: 1 / s.freqScale,
      original_max_position_embeddings: s.originalContext,
    };
  }
  if (s && s.freqScale !== 1) return { rope_type: "linear", factor: 1 / s.freqScale };
  return null;
}

/** Refuses a model that `json` read back would not give: another config, or other RoPE factors. */
function checkReadBack(model: LoadedModel, json: Record<string, unknown>): void {
  const c = model.config;
  const cannot = `${model.path}: cannot be written as a Hugging Face ${hfNames[c.architecture].cls}`;
  let spec: HfModelSpec;
  try {
    spec = hfSpecFromJson(json, "config.json");
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    throw new InputError(`${cannot}: ${e.message}`);
  }
  const mismatch = configMismatch({ ...c, ropeStyle: "neox" }, spec.config);
  if (mismatch) throw new InputError(`${cannot}: read back, ${mismatch}`);
  for (const [name, values] of spec.ropeFactors) {
    // Factors a converter computed in torch may differ from vellum's in the last bit of a few entries.
    const have = dequantize(model.tensors.get(name) as Tensor);
    if (!values.every((v, i) => Math.abs(v - have[i]) <= 1e-6 * Math.abs(have[i]))) {
      throw new InputError(
        `${cannot}: ${name} differs from the factors of rope_scaling ${showFileValue(json.rope_scaling)}`,
      );
    }
  }
}

/** The model's tensors under HF names, in `dtype`: Q/K rows in rotate-half order, Gemma norms as w − 1. */
