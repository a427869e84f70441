import type { Llama, Token } from "node-llama-cpp";
import type { Backend } from "../../src/backend/backend.js";

/**
 * llama.cpp (node-llama-cpp's prebuilt binary) as the oracle of next-token distributions. node-llama-cpp gives
 * no logits, only probabilities after its sampler chain: with a top-k sampler at temperature 1 they are the
 * softmax over the k most likely tokens (most likely first), so their logarithms are the logits of those tokens
 * less one constant; with the greedy sampler they cover the whole vocabulary, but handing 150k of them to JS
 * takes about half a second per position, so large vocabularies ask for that at a few positions only.
 */
export interface LlamaCppDistributions {
  /** Per position: the k most likely next tokens, most likely first, and their log-probabilities among those k. */
  top: { ids: number[]; logprobs: number[] }[];
  /** At the positions asked for: log-probabilities of every token of the vocabulary. */
  full: Map<number, Float64Array>;
}

/**
 * Teacher-forces `ids` through llama.cpp in one batch on a fresh context: f32 K/V (vellum's default), no flash
 * attention (whose f16 rounding of Q and K vellum does not share), `threads` threads.
 */
export async function llamaCppDistributions(
  llama: Llama,
  path: string,
  ids: readonly number[],
  opts: { contextSize: number; k: number; fullAt: readonly number[]; threads: number },
): Promise<LlamaCppDistributions> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    const context = await model.createContext({
      contextSize: opts.contextSize,
      threads: opts.threads,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    try {
      const topK = { temperature: 1, topK: opts.k, topP: 1, minP: 0, seed: 1 };
      const results = await context.getSequence().controlledEvaluate(
        ids.map((id, i): [Token, { generateNext: object }] => [
          id as Token,
          {
            generateNext: opts.fullAt.includes(i)
              ? { probabilities: true }
              : { probabilities: true, options: topK },
          },
        ]),
      );
      const top: LlamaCppDistributions["top"] = [];
      const full = new Map<number, Float64Array>();
      results.forEach((r, i) => {
        const probabilities = r?.next.probabilities;
        if (!probabilities) throw new Error(`llama.cpp gave no probabilities at position ${i}`);
        const entries = [...probabilities.entries()];
        if (opts.fullAt.includes(i)) {
          const logprobs = new Float64Array(entries.length);
          for (const [id, p] of entries) logprobs[id] = Math.log(p);
          full.set(i, logprobs);
        }
        const head = entries.slice(0, opts.k);
        const mass = head.reduce((a, [, p]) => a + p, 0);
        top.push({ ids: head.map(([id]) => id), logprobs: head.map(([, p]) => Math.log(p / mass)) });
      });
      return { top, full };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** What one vellum backend gives on a prompt and its greedy continuation, measured against llama.cpp. */
export interface Agreement {
  /** Largest |Δ log p| over the whole vocabulary, at the positions with full distributions. */
  fullError: number;
  /** Largest |Δ log p| among llama.cpp's k most likely tokens (renormalized over them), at every position. */
  topError: number;
  /** Prompt positions whose most likely next token is not llama.cpp's (near ties aside). */
  top1Differs: number[];
  /** Continuation steps whose greedy token is not llama.cpp's most likely one on the same prefix (near ties aside). */
  greedyDiffers: number[];
  /**
   * Positions where vellum's choice is not llama.cpp's but within the tolerance of it in llama.cpp's own
   * log-probabilities: a tie that rounding decides, where either token is right.
   */
  nearTies: number[];
  /** Largest |logit|, for scale. */
  logitScale: number;
}

/**
 * Compares logits rows of `ids` (the prompt then its continuation but the last token) with llama.cpp's
 * distributions on the same ids: rows[j] are the logits at position positions[j]. The first `promptLength`
 * positions are the teacher-forced check; position promptLength − 1 + i must give continuation[i] as llama.cpp's
 * most likely token, which is llama.cpp's greedy continuation being the same (same prefixes, by induction).
 * Most likely tokens closer than `relativeTie` · the largest |logit| in llama.cpp's log-probabilities are a near
 * tie (see Agreement).
 */
export function agreement(
  rows: Float32Array[],
  positions: readonly number[],
  oracle: LlamaCppDistributions,
  promptLength: number,
  continuation: readonly number[],
  relativeTie: number,
): Agreement {
  let logitScale = 0;
  for (const row of rows) for (const v of row) logitScale = Math.max(logitScale, Math.abs(v));
  const tieMargin = relativeTie * logitScale;
  const a: Agreement = {
    fullError: 0,
    topError: 0,
    top1Differs: [],
    greedyDiffers: [],
    nearTies: [],
    logitScale,
  };
  // Whether `token` is llama.cpp's choice at position p, or within tieMargin of it (a near tie, then noted).
  const agrees = (p: number, token: number) => {
    const { ids, logprobs } = oracle.top[p];
    if (token === ids[0]) return true;
    const i = ids.indexOf(token);
    const tie = i > 0 && logprobs[0] - logprobs[i] <= tieMargin;
    if (tie) a.nearTies.push(p);
    return tie;
  };
  positions.forEach((p, j) => {
    const row = rows[j];
    if (p < promptLength) {
      const full = oracle.full.get(p);
      if (full) {
        const lse = logSumExp(row, null);
        for (let t = 0; t < row.length; t++)
          a.fullError = Math.max(a.fullError, Math.abs(row[t] - lse - full[t]));
      }
      const { ids, logprobs } = oracle.top[p];
      const lse = logSumExp(row, ids);
      ids.forEach((t, i) => {
        a.topError = Math.max(a.topError, Math.abs(row[t] - lse - logprobs[i]));
      });
      if (!agrees(p, argmax(row))) a.top1Differs.push(p);
    }
    const step = p - (promptLength - 1);
    if (step >= 0 && step < continuation.length && !agrees(p, continuation[step])) a.greedyDiffers.push(step);
  });
  a.nearTies = [...new Set(a.nearTies)];
  return a;
}

/** log Σ exp(row[t]) over the tokens `ids` (every token when null), in float64. */
function logSumExp(row: Float32Array, ids: readonly number[] | null): number {
  const values = ids ? ids.map((t) => row[t]) : Array.from(row);
  let max = -Infinity;
  for (const v of values) max = Math.max(max, v);
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return Math.log(sum) + max;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let t = 1; t < row.length; t++) if (row[t] > row[best]) best = t;
  return best;
}

/** Logits of `ids` teacher-forced in one pass, at `positions` only: [positions.length][vocab]. */
export async function logitsAtPositions(
  backend: Backend,
  ids: readonly number[],
  positions: readonly number[],
  vocabSize: number,
): Promise<Float32Array[]> {
  const n = ids.length;
  const blockSize = 16;
  const numBlocks = Math.ceil(n / blockSize);
  backend.initKvCache({ numBlocks, blockSize, dtype: "f32" });
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const logits = await backend.forward({
    tokenIds: Int32Array.from(ids),
    positions: all,
    slotMappings: [all],
    queryStartLoc: Int32Array.of(0, n),
    seqLens: Int32Array.of(n),
    blockTables: [[Int32Array.from({ length: numBlocks }, (_, i) => i)]],
    logitsIndices: Int32Array.from(positions),
  });
  return positions.map((_, j) => logits.slice(j * vocabSize, (j + 1) * vocabSize));
}
