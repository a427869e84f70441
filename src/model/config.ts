/**
 * The one typed description of a model's architecture, filled by every loader.
 *
 * RoPE convention: `interleaved` rotates adjacent pairs (x[2i], x[2i+1]) inside each head — llama2.c and
 * GGUF `llama` (llama.cpp's converter permutes Q/K rows into this order). `neox` rotates the two halves
 * (x[i], x[i + ropeDims/2]) — Hugging Face checkpoints and GGUF `qwen2`, `qwen3`, `gemma2`, `gemma3`, `phi3`.
 *
 * Every architecture is the same decoder block with switches (llama.cpp's per-arch graphs, written once):
 *   x = embedding[token] · embeddingScale
 *   per layer l:
 *     h = attnNorm(x); q, k, v = h·Wq (+bq), h·Wk (+bk), h·Wv (+bv)
 *     if qkNorm: q, k = RMSNorm per head (attn_q_norm, attn_k_norm, width headDim)
 *     q, k = RoPE over the first ropeDims of each head (base: ropeTheta, or ropeThetaLocal on windowed layers)
 *     scores = q·k · attentionScale; if attnSoftcap: scores = c · tanh(scores / c); causal, and within
 *       layerWindows[l] tokens when that is not 0
 *     a = softmax(scores)·v · Wo;  if postNorms: a = postAttnNorm(a);  x = x + a
 *     h = ffnNorm(x); f = (act(h·Wgate) ⊙ h·Wup)·Wdown, act = silu or gelu_tanh
 *     if postNorms: f = postFfnNorm(f);  x = x + f
 *   logits = outputNorm(x)·Wout; if finalLogitSoftcap: logits = c · tanh(logits / c)
 */
export type Architecture = "llama" | "qwen2" | "qwen3" | "gemma2" | "gemma3" | "phi3";
export const architectures: readonly Architecture[] = ["llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"];
export type RopeStyle = "interleaved" | "neox";
export type FfnActivation = "silu" | "gelu_tanh";

/**
 * RoPE scaling as llama.cpp's ggml_rope_ext takes it (linear, YaRN, LongRoPE's attention factor). Pair i of a
 * head turns by θ_i = pos · ropeTheta^(−2i/ropeDims) / freqFactor[i] (freqFactor from ropeFreqFactors, else 1):
 *   θ = freqScale · θ_i, mixed back toward θ_i by YaRN's ramp · extFactor when extFactor ≠ 0;
 *   cos θ and sin θ are multiplied by attnFactor (and, with YaRN, by 1 + 0.1·ln(1/freqScale)).
 */
export interface RopeScaling {
  /** Positions are multiplied by this: 1/factor for linear and YaRN scaling, 1 otherwise. */
  freqScale: number;
  /** YaRN's extrapolation mix (1 for YaRN), 0 otherwise. */
  extFactor: number;
  /** cos and sin are multiplied by this. */
  attnFactor: number;
  /** YaRN's correction range, in rotations. */
  betaFast: number;
  betaSlow: number;
  /** The context the model was trained at before scaling. */
  originalContext: number;
}

/**
 * Where RoPE's per-pair frequency divisors come from:
 * - "none": all 1;
 * - "fixed": tensor rope_freqs.weight [ropeDims/2] (Llama 3 scaling);
 * - "longrope": rope_factors_short.weight, or rope_factors_long.weight when the served context is longer than
 *   ropeScaling.originalContext (Phi-3's LongRoPE; llama.cpp chooses the same way).
 */
export type RopeFreqFactors = "none" | "fixed" | "longrope";

export interface ModelConfig {
  architecture: Architecture;
  /** Model (embedding) width. */
  dim: number;
  /** FFN inner width. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Context length the model was trained for. */
  maxSeqLen: number;
  normEps: number;
  ropeTheta: number;
  ropeStyle: RopeStyle;
  /** Width of each head that RoPE rotates: headDim, or less with partial rotary (Phi-4-mini). Even. */
  ropeDims: number;
  ropeScaling?: RopeScaling;
  ropeFreqFactors: RopeFreqFactors;
  /** RoPE base of the sliding-window layers, which take no scaling (Gemma 3's local layers); absent: ropeTheta. */
  ropeThetaLocal?: number;
  /**
   * Per layer, its attention window: a query at position p sees keys at p − w + 1 … p (llama.cpp's standard
   * SWA); 0 for full causal attention. Length nLayers.
   */
  layerWindows: number[];
  /** True when the classifier reuses the token embedding (no `output.weight`). */
  tiedEmbeddings: boolean;
  /** Q/K/V projections carry biases (Qwen2). */
  attentionBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3). */
  qkNorm: boolean;
  /** Norms on the attention and FFN outputs before the residual add (Gemma 2/3). */
  postNorms: boolean;
  ffnActivation: FfnActivation;
  /** Token embeddings are multiplied by this (Gemma: √dim), else 1. */
  embeddingScale: number;
  /** q·k is multiplied by this: 1/√headDim, or Gemma's 1/√query_pre_attn_scalar. */
  attentionScale: number;
  /** tanh soft-capping of attention scores (Gemma 2) and of the final logits; 0 = none. */
  attnSoftcap: number;
  finalLogitSoftcap: number;
}

/** The fields a plain Llama-style model gives; the rest take their neutral values in `plainConfig`. */
export type PlainConfigFields = Pick<
  ModelConfig,
  | "dim"
  | "hiddenDim"
  | "nLayers"
  | "nHeads"
  | "nKvHeads"
  | "headDim"
  | "vocabSize"
  | "maxSeqLen"
  | "normEps"
  | "ropeTheta"
  | "ropeStyle"
  | "tiedEmbeddings"
  | "attentionBias"
> &
  Partial<ModelConfig>;

/** A config with every architecture switch off (a Llama 2 block) unless `fields` sets it. */
export function plainConfig(fields: PlainConfigFields): ModelConfig {
  return {
    architecture: "llama",
    ropeDims: fields.headDim,
    ropeFreqFactors: "none",
    layerWindows: new Array<number>(fields.nLayers).fill(0),
    qkNorm: false,
    postNorms: false,
    ffnActivation: "silu",
    embeddingScale: 1,
    attentionScale: 1 / Math.sqrt(fields.headDim),
    attnSoftcap: 0,
    finalLogitSoftcap: 0,
    ...fields,
  };
}

/** Canonical tensor names: GGUF's, so a loaded model writes to GGUF without renaming. */
export const tensorNames = {
  tokenEmbedding: "token_embd.weight",
  outputNorm: "output_norm.weight",
  output: "output.weight",
  /** [ropeDims/2] RoPE frequency divisors (ropeFreqFactors "fixed"). */
  ropeFreqs: "rope_freqs.weight",
  /** [ropeDims/2] LongRoPE divisors (ropeFreqFactors "longrope"). */
  ropeFactorsShort: "rope_factors_short.weight",
  ropeFactorsLong: "rope_factors_long.weight",
  attnNorm: (l: number) => `blk.${l}.attn_norm.weight`,
  wq: (l: number) => `blk.${l}.attn_q.weight`,
  wk: (l: number) => `blk.${l}.attn_k.weight`,
  wv: (l: number) => `blk.${l}.attn_v.weight`,
  bq: (l: number) => `blk.${l}.attn_q.bias`,
  bk: (l: number) => `blk.${l}.attn_k.bias`,
  bv: (l: number) => `blk.${l}.attn_v.bias`,
  /** [headDim] (qkNorm). */
  qNorm: (l: number) => `blk.${l}.attn_q_norm.weight`,
  kNorm: (l: number) => `blk.${l}.attn_k_norm.weight`,
  wo: (l: number) => `blk.${l}.attn_output.weight`,
  /** [dim] (postNorms). */
  postAttnNorm: (l: number) => `blk.${l}.post_attention_norm.weight`,
  ffnNorm: (l: number) => `blk.${l}.ffn_norm.weight`,
  /** w1 in llama2.c: the activated (gated) branch. */
  ffnGate: (l: number) => `blk.${l}.ffn_gate.weight`,
  /** w2 in llama2.c. */
  ffnDown: (l: number) => `blk.${l}.ffn_down.weight`,
  /** w3 in llama2.c. */
  ffnUp: (l: number) => `blk.${l}.ffn_up.weight`,
  /** [dim] (postNorms). */
  postFfnNorm: (l: number) => `blk.${l}.post_ffw_norm.weight`,
} as const;

/** The tensor names and shapes ([out, in]) a config requires; loaders check against this. */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const kvDim = c.nKvHeads * c.headDim;
  const qDim = c.nHeads * c.headDim;
  const m = new Map<string, number[]>();
  m.set(tensorNames.tokenEmbedding, [c.vocabSize, c.dim]);
  if (c.ropeFreqFactors === "fixed") m.set(tensorNames.ropeFreqs, [c.ropeDims / 2]);
  if (c.ropeFreqFactors === "longrope") {
    m.set(tensorNames.ropeFactorsShort, [c.ropeDims / 2]);
    m.set(tensorNames.ropeFactorsLong, [c.ropeDims / 2]);
  }
  for (let l = 0; l < c.nLayers; l++) {
    m.set(tensorNames.attnNorm(l), [c.dim]);
    m.set(tensorNames.wq(l), [qDim, c.dim]);
    m.set(tensorNames.wk(l), [kvDim, c.dim]);
    m.set(tensorNames.wv(l), [kvDim, c.dim]);
    if (c.attentionBias) {
      m.set(tensorNames.bq(l), [qDim]);
      m.set(tensorNames.bk(l), [kvDim]);
      m.set(tensorNames.bv(l), [kvDim]);
    }
    if (c.qkNorm) {
      m.set(tensorNames.qNorm(l), [c.headDim]);
      m.set(tensorNames.kNorm(l), [c.headDim]);
    }
    m.set(tensorNames.wo(l), [c.dim, qDim]);
    if (c.postNorms) m.set(tensorNames.postAttnNorm(l), [c.dim]);
    m.set(tensorNames.ffnNorm(l), [c.dim]);
    m.set(tensorNames.ffnGate(l), [c.hiddenDim, c.dim]);
    m.set(tensorNames.ffnDown(l), [c.dim, c.hiddenDim]);
    m.set(tensorNames.ffnUp(l), [c.hiddenDim, c.dim]);
    if (c.postNorms) m.set(tensorNames.postFfnNorm(l), [c.dim]);
  }
  m.set(tensorNames.outputNorm, [c.dim]);
  if (!c.tiedEmbeddings) m.set(tensorNames.output, [c.vocabSize, c.dim]);
  return m;
}
