/**
 * The one typed description of a model's architecture, filled by every loader.
 *
 * RoPE convention: `interleaved` rotates adjacent pairs (x[2i], x[2i+1]) inside each head — llama2.c and
 * GGUF `llama` (llama.cpp's converter permutes Q/K rows into this order). `neox` rotates the two halves
 * (x[i], x[i + headDim/2]) — Hugging Face checkpoints and GGUF `qwen2`.
 */
export type Architecture = "llama" | "qwen2";
export type RopeStyle = "interleaved" | "neox";

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
  /** True when the classifier reuses the token embedding (no `output.weight`). */
  tiedEmbeddings: boolean;
  /** Q/K/V projections carry biases (Qwen2). */
  attentionBias: boolean;
}

/** Canonical tensor names: GGUF's, so a loaded model writes to GGUF without renaming. */
export const tensorNames = {
  tokenEmbedding: "token_embd.weight",
  outputNorm: "output_norm.weight",
  output: "output.weight",
  attnNorm: (l: number) => `blk.${l}.attn_norm.weight`,
  wq: (l: number) => `blk.${l}.attn_q.weight`,
  wk: (l: number) => `blk.${l}.attn_k.weight`,
  wv: (l: number) => `blk.${l}.attn_v.weight`,
  bq: (l: number) => `blk.${l}.attn_q.bias`,
  bk: (l: number) => `blk.${l}.attn_k.bias`,
  bv: (l: number) => `blk.${l}.attn_v.bias`,
  wo: (l: number) => `blk.${l}.attn_output.weight`,
  ffnNorm: (l: number) => `blk.${l}.ffn_norm.weight`,
  /** w1 in llama2.c: the SiLU-gated branch. */
  ffnGate: (l: number) => `blk.${l}.ffn_gate.weight`,
  /** w2 in llama2.c. */
  ffnDown: (l: number) => `blk.${l}.ffn_down.weight`,
  /** w3 in llama2.c. */
  ffnUp: (l: number) => `blk.${l}.ffn_up.weight`,
} as const;

/** The tensor names and shapes ([out, in]) a config requires; loaders check against this. */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const kvDim = c.nKvHeads * c.headDim;
  const qDim = c.nHeads * c.headDim;
  const m = new Map<string, number[]>();
  m.set(tensorNames.tokenEmbedding, [c.vocabSize, c.dim]);
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
    m.set(tensorNames.wo(l), [c.dim, qDim]);
    m.set(tensorNames.ffnNorm(l), [c.dim]);
    m.set(tensorNames.ffnGate(l), [c.hiddenDim, c.dim]);
    m.set(tensorNames.ffnDown(l), [c.dim, c.hiddenDim]);
    m.set(tensorNames.ffnUp(l), [c.hiddenDim, c.dim]);
  }
  m.set(tensorNames.outputNorm, [c.dim]);
  if (!c.tiedEmbeddings) m.set(tensorNames.output, [c.vocabSize, c.dim]);
  return m;
}
