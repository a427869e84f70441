/**
 * A model's hyper-parameters as GGUF `<arch>.*` metadata, read and written the way llama.cpp reads them
 * (src/llama-model.cpp load_hparams, then each architecture's load_arch_hparams in src/models/). Where
 * llama.cpp hard-codes a switch per architecture (Gemma's √dim embedding scale, Qwen 3's q/k norms …) the
 * config takes it from the architecture; where llama.cpp would compute something ModelConfig cannot say, the
 * key and its value are refused.
 */

import {
  type Architecture,
  type ModelConfig,
  type RopeFreqFactors,
  type RopeScaling,
  tensorNames,
} from "../config.js";
import { type InputError, quoteFileString } from "../errors.js";
import { yarnAttnFactor } from "../rope-scaling.js";
import type { GgufValue } from "./gguf-reader.js";

/** The typed metadata access this needs (gguf-model.ts's Metadata). */
export interface GgufMetadata {
  has(key: string): boolean;
  /** The raw value, for keys llama.cpp reads either as a scalar or an array. */
  value(key: string): GgufValue | undefined;
  integer(key: string): number;
  /** Any finite number; float32 values come back as the shortest decimal that rounds to them. */
  number(key: string): number;
  positiveNumber(key: string): number;
  optional(key: string, type: "string"): string | undefined;
  error(key: string, problem: string): InputError;
}

/** The fused Q/K/V projection llama.cpp accepts for every architecture (create_tensor_qkv). */
export const qkvName = (l: number, kind: "weight" | "bias") => `blk.${l}.attn_qkv.${kind}`;

/** llama.cpp's default period of windowed layers when `attention.sliding_window_pattern` is absent. */
const defaultSwaPeriod: Partial<Record<Architecture, number>> = { gemma2: 2, gemma3: 6 };

/** llama_hparams::set_swa_pattern: with period p, layer l is windowed when p is 0 or l mod p < p − 1. */
function isWindowed(layer: number, period: number): boolean {
  return period === 0 || layer % period < period - 1;
}

/**
 * The period whose pattern gives exactly the windowed layers of `windows` (the architecture's default first), or
 * undefined when no period does.
 */
export function swaPeriodOf(arch: Architecture, windows: readonly number[]): number | undefined {
  const candidates = [defaultSwaPeriod[arch] ?? 0];
  for (let p = 0; p <= windows.length + 1; p++) candidates.push(p);
  return candidates.find((p) => windows.every((w, l) => w > 0 === isWindowed(l, p)));
}

/**
 * llama.cpp's gemma2/gemma3 attention scale (gemma_pytorch's query_pre_attn_scalar): 1/√(n_embd/n_head) for the
 * 27B models, which it recognizes by their layer count (46 and 62), else 1/√head_dim.
 */
export function gemmaAttentionScale(
  c: Pick<ModelConfig, "nLayers" | "dim" | "nHeads" | "headDim">,
  arch: Architecture,
) {
  const is27B = c.nLayers === (arch === "gemma2" ? 46 : 62);
  return 1 / Math.sqrt(is27B ? Math.floor(c.dim / c.nHeads) : c.headDim);
}

const ropeScalingTypes = ["none", "linear", "yarn", "longrope"];

/** llama.cpp's LLAMA_MAX_LAYERS: deeper models are refused (and a corrupt count builds nothing per layer). */
export const maxLayers = 512;

/**
 * The config of an `arch` model from its metadata. `fileTensors` are the file's tensor names: whether an output
 * matrix, biases or RoPE factor tensors exist decides switches as it does in llama.cpp.
 */
export function readGgufConfig(
  meta: GgufMetadata,
  arch: Architecture,
  vocabSize: number,
  fileTensors: ReadonlySet<string>,
): ModelConfig {
  const key = (name: string) => `${arch}.${name}`;
  const count = (name: string) => {
    const v = meta.integer(key(name));
    if (v < 1) throw meta.error(key(name), `is ${v}, must be positive`);
    return v;
  };
  const optionalCount = (name: string) => (meta.has(key(name)) ? count(name) : undefined);
  const optionalNumber = (name: string, check: (v: number) => string | undefined) => {
    if (!meta.has(key(name))) return undefined;
    const v = meta.number(key(name));
    const problem = check(v);
    if (problem) throw meta.error(key(name), `is ${v}, ${problem}`);
    return v;
  };
  const positive = (v: number) => (v > 0 ? undefined : "must be positive");
  const notNegative = (v: number) => (v >= 0 ? undefined : "must not be negative");
  const has = (name: string) => fileTensors.has(name);

  const nLayers = count("block_count");
  if (nLayers > maxLayers)
    throw meta.error(key("block_count"), `is ${nLayers}; llama.cpp allows at most ${maxLayers}`);
  if (nLayers > fileTensors.size) {
    throw meta.error(
      key("block_count"),
      `is ${nLayers}, but the file holds only ${fileTensors.size} tensors`,
    );
  }
  // Keys llama.cpp reads for every architecture that would make it compute another kind of model.
  if (meta.has(key("expert_count")) && meta.integer(key("expert_count")) > 0) {
    throw meta.error(
      key("expert_count"),
      `is ${meta.integer(key("expert_count"))}; mixture-of-experts models are not supported`,
    );
  }
  if (meta.value(key("attention.causal"))?.value === false) {
    throw meta.error(key("attention.causal"), "is false; only causal attention is supported");
  }
  const dim = count("embedding_length");
  const nHeads = count("attention.head_count");
  const nKvHeads = optionalCount("attention.head_count_kv") ?? nHeads;
  if (nHeads % nKvHeads !== 0) {
    throw meta.error(key("attention.head_count_kv"), `(${nKvHeads}) does not divide head_count (${nHeads})`);
  }
  const headDim = optionalCount("attention.key_length") ?? dim / nHeads;
  if (!Number.isInteger(headDim)) {
    throw meta.error(key("attention.head_count"), `(${nHeads}) does not divide embedding_length (${dim})`);
  }
  // One head width for Q, K and V on every layer is all the forward pass knows.
  for (const name of ["attention.value_length", "attention.key_length_swa", "attention.value_length_swa"]) {
    const v = optionalCount(name);
    if (v !== undefined && v !== headDim) {
      throw meta.error(key(name), `is ${v}; only ${headDim} (the head width) is supported`);
    }
  }
  // llama.cpp's qwen2 and phi3 size Q and the attention output by embedding_length.
  if ((arch === "qwen2" || arch === "phi3") && nHeads * headDim !== dim) {
    throw meta.error(
      key("attention.key_length"),
      `is ${headDim}, but ${arch} needs head_count × key_length = embedding_length (${dim})`,
    );
  }
  const ropeDims = optionalCount("rope.dimension_count") ?? headDim;
  if (arch === "llama" && ropeDims !== headDim) {
    // llama.cpp refuses this too ("invalid n_rot").
    throw meta.error(
      key("rope.dimension_count"),
      `is ${ropeDims}; only ${headDim} (the head width) is supported for llama`,
    );
  }
  if (ropeDims % 2 !== 0 || ropeDims > headDim) {
    throw meta.error(
      key("rope.dimension_count"),
      `is ${ropeDims}; must be even and at most the head width ${headDim}`,
    );
  }
  const swaRopeDims = optionalCount("rope.dimension_count_swa");
  if (swaRopeDims !== undefined && swaRopeDims !== ropeDims) {
    throw meta.error(
      key("rope.dimension_count_swa"),
      `is ${swaRopeDims}; only ${ropeDims} (rope.dimension_count) is supported`,
    );
  }
  const maxSeqLen = count("context_length");
  const ropeTheta = meta.has(key("rope.freq_base")) ? meta.positiveNumber(key("rope.freq_base")) : 10000;

  // RoPE scaling: llama.cpp's default type is linear, with factor 0 meaning none. The yarn_* keys are not read
  // for these architectures (llama.cpp keeps its defaults: beta_fast 32, beta_slow 1), so they are not here.
  const scalingType = meta.optional(key("rope.scaling.type"), "string") ?? "linear";
  if (!ropeScalingTypes.includes(scalingType)) {
    throw meta.error(
      key("rope.scaling.type"),
      `is ${quoteFileString(scalingType)}; llama.cpp knows ${ropeScalingTypes.join(", ")}`,
    );
  }
  const factor =
    optionalNumber("rope.scaling.factor", notNegative) ??
    optionalNumber("rope.scale_linear", notNegative) ??
    0;
  const freqScale = scalingType === "none" || factor === 0 ? 1 : 1 / factor;
  const extFactor = scalingType === "yarn" ? 1 : 0;
  const ropeAttnFactor = optionalNumber("rope.scaling.attn_factor", positive) ?? 1;
  const attnFactor = extFactor !== 0 ? yarnAttnFactor(1 / freqScale, ropeAttnFactor) : ropeAttnFactor;
  const originalContext = optionalCount("rope.scaling.original_context_length") ?? maxSeqLen;

  let ropeFreqFactors: RopeFreqFactors = "none";
  if (arch === "phi3" || (arch === "llama" && scalingType === "longrope")) {
    // Both are then expected: a missing one is reported as a missing tensor.
    if (has(tensorNames.ropeFactorsLong) || has(tensorNames.ropeFactorsShort)) ropeFreqFactors = "longrope";
  } else if (arch === "llama" && has(tensorNames.ropeFreqs)) {
    ropeFreqFactors = "fixed";
  }
  const ropeScaling: RopeScaling | undefined =
    freqScale !== 1 || extFactor !== 0 || attnFactor !== 1 || ropeFreqFactors === "longrope"
      ? { freqScale, extFactor, attnFactor, betaFast: 32, betaSlow: 1, originalContext }
      : undefined;

  const layerWindows = new Array<number>(nLayers).fill(0);
  let ropeThetaLocal: number | undefined;
  if (arch === "gemma2" || arch === "gemma3") {
    // gemma2 always has windowed layers (4096 by default); gemma3 only with a positive sliding_window.
    const window = meta.has(key("attention.sliding_window"))
      ? meta.integer(key("attention.sliding_window"))
      : arch === "gemma2"
        ? 4096
        : 0;
    if (arch === "gemma2" && window < 1) {
      throw meta.error(
        key("attention.sliding_window"),
        `is ${window}; gemma2's windowed layers need a positive window`,
      );
    }
    if (window > 0) {
      const period = swaPeriod(
        meta,
        key("attention.sliding_window_pattern"),
        defaultSwaPeriod[arch] as number,
      );
      for (let l = 0; l < nLayers; l++) if (isWindowed(l, period)) layerWindows[l] = window;
    }
    if (layerWindows.some((w) => w > 0)) {
      // gemma2's windowed layers take the base and the scaling of the others; gemma3's take no scaling.
      ropeThetaLocal = meta.has(key("rope.freq_base_swa"))
        ? meta.positiveNumber(key("rope.freq_base_swa"))
        : arch === "gemma2"
          ? ropeTheta
          : 10000;
      if (arch === "gemma2" && (freqScale !== 1 || extFactor !== 0)) {
        throw meta.error(
          key("rope.scaling.type"),
          `is ${quoteFileString(scalingType)}: llama.cpp would scale gemma2's windowed layers too, which vellum does not compute`,
        );
      }
      if (extFactor !== 0) {
        throw meta.error(key("rope.scaling.type"), `is "yarn": not supported with gemma3's windowed layers`);
      }
      if (ropeAttnFactor !== 1) {
        throw meta.error(
          key("rope.scaling.attn_factor"),
          `is ${ropeAttnFactor}: llama.cpp would apply it to ${arch}'s windowed layers too, which vellum does not compute`,
        );
      }
    }
  }
  // phi3's attention.sliding_window is read and then ignored by llama.cpp ("Phi SWA is currently disabled").

  const gemma = arch === "gemma2" || arch === "gemma3";
  const attnSoftcap = arch === "gemma2" ? (optionalNumber("attn_logit_softcapping", positive) ?? 50) : 0;
  const finalLogitSoftcap =
    arch === "gemma2"
      ? (optionalNumber("final_logit_softcapping", positive) ?? 30)
      : arch === "gemma3"
        ? (optionalNumber("final_logit_softcapping", notNegative) ?? 0)
        : 0;

  const declaredVocab = optionalCount("vocab_size");
  if (declaredVocab !== undefined && declaredVocab !== vocabSize) {
    throw meta.error(
      key("vocab_size"),
      `is ${declaredVocab} but tokenizer.ggml.tokens has ${vocabSize} tokens`,
    );
  }
  const config: ModelConfig = {
    architecture: arch,
    dim,
    hiddenDim: count("feed_forward_length"),
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    maxSeqLen,
    normEps: meta.positiveNumber(key("attention.layer_norm_rms_epsilon")),
    ropeTheta,
    ropeStyle: arch === "llama" ? "interleaved" : "neox",
    ropeDims,
    ropeFreqFactors,
    layerWindows,
    // llama.cpp's gemma2 always uses the token embedding as the classifier.
    tiedEmbeddings: arch === "gemma2" || !has(tensorNames.output),
    attentionBias: has(tensorNames.bq(0)) || has(qkvName(0, "bias")),
    qkNorm: arch === "qwen3" || arch === "gemma3",
    postNorms: gemma,
    ffnActivation: gemma ? "gelu_tanh" : "silu",
    embeddingScale: gemma ? Math.sqrt(dim) : 1,
    attentionScale: gemma
      ? gemmaAttentionScale({ nLayers, dim, nHeads, headDim }, arch)
      : 1 / Math.sqrt(headDim),
    attnSoftcap,
    finalLogitSoftcap,
  };
  if (ropeScaling) config.ropeScaling = ropeScaling;
  if (ropeThetaLocal !== undefined) config.ropeThetaLocal = ropeThetaLocal;
  return config;
}

/** attention.sliding_window_pattern: a period; llama.cpp ignores an array there for gemma2/3, so it is refused. */
function swaPeriod(meta: GgufMetadata, key: string, fallback: number): number {
  const v = meta.value(key);
  if (v === undefined) return fallback;
  if (v.type === "array") {
    throw meta.error(key, "is an array; llama.cpp reads only a period (an integer) here and would ignore it");
  }
  const period = meta.integer(key);
  if (period < 0) throw meta.error(key, `is ${period}, must not be negative`);
  return period;
}

/**
 * The `<arch>.*` keys of a config, as convert_hf_to_gguf.py writes them for the architecture. Switches llama.cpp
 * derives from the architecture are not written: whether they match is checked by reading the keys back.
 */
export function ggufConfigMetadata(c: ModelConfig): Map<string, GgufValue> {
  const a = c.architecture;
  const u32 = (value: number): GgufValue => ({ type: "uint32", value });
  const f32 = (value: number): GgufValue => ({ type: "float32", value });
  const m = new Map<string, GgufValue>([
    [`${a}.vocab_size`, u32(c.vocabSize)],
    [`${a}.context_length`, u32(c.maxSeqLen)],
    [`${a}.embedding_length`, u32(c.dim)],
    [`${a}.block_count`, u32(c.nLayers)],
    [`${a}.feed_forward_length`, u32(c.hiddenDim)],
    [`${a}.attention.head_count`, u32(c.nHeads)],
    [`${a}.attention.head_count_kv`, u32(c.nKvHeads)],
    [`${a}.attention.key_length`, u32(c.headDim)],
    [`${a}.attention.value_length`, u32(c.headDim)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(c.normEps)],
    [`${a}.rope.dimension_count`, u32(c.ropeDims)],
    [`${a}.rope.freq_base`, f32(c.ropeTheta)],
  ]);
  const s = c.ropeScaling;
  if (s) {
    // phi3's LongRoPE is written as the converter does, without a type (its factor tensors say it).
    const type =
      c.ropeFreqFactors === "longrope"
        ? a === "phi3"
          ? undefined
          : "longrope"
        : s.extFactor !== 0
          ? "yarn"
          : s.freqScale !== 1
            ? "linear"
            : undefined;
    if (type) m.set(`${a}.rope.scaling.type`, { type: "string", value: type });
    if (s.freqScale !== 1) m.set(`${a}.rope.scaling.factor`, f32(1 / s.freqScale));
    const ropeAttnFactor =
      s.extFactor !== 0 ? s.attnFactor / yarnAttnFactor(1 / s.freqScale, 1) : s.attnFactor;
    if (ropeAttnFactor !== 1) m.set(`${a}.rope.scaling.attn_factor`, f32(ropeAttnFactor));
    m.set(`${a}.rope.scaling.original_context_length`, u32(s.originalContext));
  }
  if (a === "gemma2" || a === "gemma3") {
    const window = c.layerWindows.find((w) => w > 0);
    if (window !== undefined) {
      m.set(`${a}.attention.sliding_window`, u32(window));
      const period = swaPeriodOf(a, c.layerWindows);
      if (period !== undefined) m.set(`${a}.attention.sliding_window_pattern`, u32(period));
      m.set(`${a}.rope.freq_base_swa`, f32(c.ropeThetaLocal ?? c.ropeTheta));
    } else if (a === "gemma2") {
      m.set(`${a}.attention.sliding_window_pattern`, u32(1)); // period 1: no windowed layer
    }
    if (a === "gemma2") m.set(`${a}.attn_logit_softcapping`, f32(c.attnSoftcap));
    if (a === "gemma2" || c.finalLogitSoftcap !== 0)
      m.set(`${a}.final_logit_softcapping`, f32(c.finalLogitSoftcap));
  }
  return m;
}
