/**
 * Picks the next token of one request from its logits row, the way vLLM does:
 *   grammar mask → the request's token constraints (allowed ids, bad words, logit bias) → penalties
 *   (repetition, frequency, presence) → temperature → min-p → top-k → top-p → draw.
 * Temperature 0 is greedy: argmax of the penalized logits, ties to the lowest id.
 * Log-probabilities, when asked for, are the log-softmax of the raw logits (vLLM's default).
 *
 * Everything works on one vocabulary-sized scratch row shared by all samplers (see `Scratch`),
 * so sampling a token allocates nothing of vocabulary size.
 *
 * This is the reference: a backend may sample a whole batch natively (Backend.sample), from the rows
 * `applyRules` leaves and the uniforms `nextUniform` draws, picking what `pickToken` picks.
 */

import type { SamplingParams, ValidSamplingParams } from "../core/sampling-params.js";
import { Rng, randomSeed } from "../util/rng.js";
import { applyTokenMask } from "./grammar-masks.js";
import { applyTokenConstraints } from "./token-constraints.js";

export interface TokenLogprob {
  tokenId: number;
  logprob: number;
}

export interface SampledToken {
  tokenId: number;
  /** Log-probability of `tokenId` under the raw logits; only when `params.logprobs > 0`. */
  logprob?: number;
  /** The `params.logprobs` most likely tokens under the raw logits, best first (ties: lower id first). */
  topLogprobs?: TokenLogprob[];
}

export class Sampler {
  private readonly rng: Rng;

  /** Unseeded requests get a random seed. */
  constructor(private readonly params: ValidSamplingParams) {
    this.rng = new Rng(params.seed ?? randomSeed());
  }

  /**
   * `logits`: one row of `vocabSize` values, left untouched. `promptIds` and `outputIds` are the
   * request's tokens so far (the penalties read them). `mask` (a grammar's, bit set = allowed) removes the
   * tokens it refuses before anything else. Where rules contradict one another, the grammar and min_tokens
   * (already in `logits`) win over allowed_token_ids and bad_words.
   */
  sample(
    logits: Float32Array,
    promptIds: readonly number[],
    outputIds: readonly number[],
    mask?: Int32Array,
  ): SampledToken {
    const row = scratch.prepare(logits);
    this.applyRules(row, logits, promptIds, outputIds, mask);
    const tokenId = pickToken(row, this.params, this.nextUniform());
    const n = this.params.logprobs;
    return n === 0 ? { tokenId } : withLogprobs(tokenId, logits, logSumExp(logits), bestIds(logits, n));
  }

  /** Whether `mask` or the request's own rules (constraints, penalties) change its logits before the draw. */
  changesLogits(mask?: Int32Array): boolean {
    const p = this.params;
    return (
      mask !== undefined ||
      p.allowedTokenIds.length > 0 ||
      p.badWords.length > 0 ||
      p.logitBias.size > 0 ||
      p.repetitionPenalty !== 1 ||
      p.frequencyPenalty !== 0 ||
      p.presencePenalty !== 0
    );
  }

  /** Applies the grammar mask, the request's token constraints and its penalties to `row`, a copy of `logits`. */
  applyRules(
    row: Float32Array,
    logits: Float32Array,
    promptIds: readonly number[],
    outputIds: readonly number[],
    mask?: Int32Array,
  ): void {
    const p = this.params;
    if (mask) applyTokenMask(row, mask);
    applyTokenConstraints(row, p, outputIds);
    // Only allowed_token_ids and bad_words can refuse tokens here, so only then is the row scanned.
    const mayBeEmpty = p.allowedTokenIds.length > 0 || p.badWords.length > 0;
    if (mayBeEmpty && !row.some((x) => x > Number.NEGATIVE_INFINITY)) {
      // The request's own rules refuse every token its grammar (or min_tokens) leaves, e.g. allowed_token_ids
      // outside a choice: those rules yield for this token, so that the request goes on instead of failing.
      row.set(logits);
      if (mask) applyTokenMask(row, mask);
    }
    applyPenalties(row, p, promptIds, outputIds);
  }

  /** The uniform in [0, 1) the next draw reads, from the request's Rng; a greedy request draws none (0). */
  nextUniform(): number {
    return this.params.temperature === 0 ? 0 : this.rng.nextFloat();
  }
}

/**
 * The token `p` picks from `row` (the logits after the request's rules) with the uniform `u`: the argmax at
 * temperature 0 (ties to the lowest id), else temperature, the filters, and a draw from what is left,
 * renormalized. Overwrites `row`.
 *
 * Each filter keeps a set defined by ranks alone (higher value first, equal values lower id first), and the
 * candidates stay in id order throughout, so the draw reads the same cumulative sums whichever algorithm found
 * the sets: a native sampler given the same `u` picks the same token.
 */
export function pickToken(row: Float32Array, p: Readonly<SamplingParams>, u: number): number {
  if (p.temperature === 0) return argmax(row);
  scratch.ensure(row.length);
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < row.length; i++) {
    row[i] = row[i] / p.temperature;
    if (row[i] > max) max = row[i];
  }
  if (!(max > Number.NEGATIVE_INFINITY)) throw new Error("sampler: logits row has no finite value");

  // min-p: prob_i ≥ minP · prob_max  ⇔  logit_i ≥ max + ln(minP). Also drops -Infinity (masked) tokens.
  const floor = p.minP > 0 ? max + Math.log(p.minP) : Number.NEGATIVE_INFINITY;
  const candidates = scratch.candidates;
  let n = 0;
  for (let i = 0; i < row.length; i++) {
    if (row[i] >= floor && row[i] > Number.NEGATIVE_INFINITY) candidates[n++] = i;
  }
  if (p.topK > 0 && p.topK < n) n = keepTopK(row, candidates, n, p.topK);

  // From here on the row holds weights exp(logit - max) (same order as the logits, so top-p can rank by them).
  let total = 0;
  for (let j = 0; j < n; j++) {
    const id = candidates[j];
    row[id] = Math.exp(row[id] - max);
    total += row[id];
  }
  if (p.topP < 1) {
    n = keepTopP(row, candidates, n, total, p.topP * total);
    total = 0;
    for (let j = 0; j < n; j++) total += row[candidates[j]];
  }

  // A uniform point in [0, total) picks the candidate whose stretch of the cumulative sum holds it.
  const point = u * total;
  let cumulative = 0;
  let chosen = candidates[0];
  for (let j = 0; j < n; j++) {
    const id = candidates[j];
    if (row[id] === 0) continue;
    cumulative += row[id];
    chosen = id;
    if (point < cumulative) break;
  }
  return chosen;
}

/**
 * The sampled token with its log-probability and those of `topIds` under the raw `logits`, whose
 * log Σ exp is `logNormalizer`.
 */
export function withLogprobs(
  tokenId: number,
  logits: Float32Array,
  logNormalizer: number,
  topIds: readonly number[],
): SampledToken {
  return {
    tokenId,
    logprob: logits[tokenId] - logNormalizer,
    topLogprobs: logprobsOf(topIds, logits, logNormalizer),
  };
}

/**
 * Vocabulary-sized working memory shared by every Sampler: `sample` is synchronous, so calls never
 * interleave, and one set (≈2.4 MB at a 152k vocabulary) serves all requests instead of one each.
 */
class Scratch {
  /** The row being processed: penalized, then scaled, then turned into weights. */
  row = new Float32Array(0);
  /** Token ids still allowed, in the first `n` entries, in id order. */
  candidates = new Int32Array(0);
  /** Token ids a filter works on: a heap (top-k) or a partitioned list (top-p). */
  order = new Int32Array(0);
  /** seenAt[t] === mark ⇔ token t was already visited in the current pass over a token list. */
  seenAt = new Uint32Array(0);
  /** Occurrences of a token in the output (valid for tokens visited in the current pass). */
  counts = new Uint32Array(0);
  private mark = 0;

  /** A copy of `logits` in the scratch row. */
  prepare(logits: Float32Array): Float32Array {
    this.ensure(logits.length);
    const row = this.row.subarray(0, logits.length);
    row.set(logits);
    return row;
  }

  /** Grows every array to at least `v` entries. */
  ensure(v: number): void {
    if (this.row.length < v) {
      this.row = new Float32Array(v);
      this.candidates = new Int32Array(v);
      this.order = new Int32Array(v);
      this.seenAt = new Uint32Array(v);
      this.counts = new Uint32Array(v);
      this.mark = 0;
    }
  }

  /** A value no entry of `seenAt` holds yet: starts a new pass without clearing the array. */
  nextMark(): number {
    if (++this.mark === 0xffffffff) {
      this.seenAt.fill(0);
      this.mark = 1;
    }
    return this.mark;
  }
}

const scratch = new Scratch();

/**
 * Repetition penalty (CTRL / HF) over prompt and output tokens, each distinct token once: a positive
 * logit is divided by it, a negative one multiplied. Then OpenAI's penalties over output tokens only:
 * logit -= frequencyPenalty · count + presencePenalty. Changes `row` in place.
 */
export function applyPenalties(
  row: Float32Array,
  p: Readonly<SamplingParams>,
  promptIds: readonly number[],
  outputIds: readonly number[],
): void {
  scratch.ensure(row.length);
  const { seenAt, counts } = scratch;
  const r = p.repetitionPenalty;
  if (r !== 1) {
    const mark = scratch.nextMark();
    for (const ids of [promptIds, outputIds]) {
      for (const t of ids) {
        if (seenAt[t] === mark) continue;
        seenAt[t] = mark;
        row[t] = row[t] > 0 ? row[t] / r : row[t] * r;
      }
    }
  }
  if (p.frequencyPenalty === 0 && p.presencePenalty === 0) return;
  const counting = scratch.nextMark();
  for (const t of outputIds) {
    if (seenAt[t] !== counting) {
      seenAt[t] = counting;
      counts[t] = 0;
    }
    counts[t]++;
  }
  const applied = scratch.nextMark();
  for (const t of outputIds) {
    if (seenAt[t] === applied) continue;
    seenAt[t] = applied;
    row[t] -= p.frequencyPenalty * counts[t] + p.presencePenalty;
  }
}

/** Index of the largest value; ties go to the lowest index. */
function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** a ranks above b: higher logit, or the same logit and a lower id. */
function ranksAbove(row: Float32Array, a: number, b: number): boolean {
  return row[a] > row[b] || (row[a] === row[b] && a < b);
}

/**
 * Keeps, in order, the k best of candidates[0..n) and returns k. A heap of the best k so far, whose root is
 * the worst of them, so most tokens are rejected by a single comparison with the root: O(n log k) worst case,
 * about O(n) on real logits.
 */
function keepTopK(row: Float32Array, candidates: Int32Array, n: number, k: number): number {
  const heap = scratch.order;
  heap.set(candidates.subarray(0, k));
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(row, heap, i, k);
  for (let j = k; j < n; j++) {
    if (!ranksAbove(row, candidates[j], heap[0])) continue;
    heap[0] = candidates[j];
    siftDown(row, heap, 0, k);
  }
  return keepFrom(row, candidates, n, heap[0]);
}

/** Keeps, in order, the candidates ranked at or above `worst`; returns their count. */
function keepFrom(row: Float32Array, candidates: Int32Array, n: number, worst: number): number {
  let m = 0;
  for (let j = 0; j < n; j++) {
    const id = candidates[j];
    if (id === worst || ranksAbove(row, id, worst)) candidates[m++] = id;
  }
  return m;
}

/** Restores the worst-at-root heap order of heap[0..size) below position i. */
function siftDown(row: Float32Array, heap: Int32Array, i: number, size: number): void {
  const item = heap[i];
  for (;;) {
    let child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && ranksAbove(row, heap[child], heap[child + 1])) child++;
    if (!ranksAbove(row, item, heap[child])) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = item;
}

/**
 * Nucleus: keeps the best-first prefix of the candidates whose weight reaches `target` (topP × `total`,
 * their summed weight): a token stays iff the weight ranked above it is < target. Rather than sorting,
 * a quickselect on weight over a copy of the candidates: each round partitions the undecided range around a
 * pivot and settles one side whole, so it takes expected O(n). Then keeps, in order, the candidates ranked at or
 * above the worst kept one; returns their count.
 */
function keepTopP(
  weights: Float32Array,
  candidates: Int32Array,
  n: number,
  total: number,
  target: number,
): number {
  const order = scratch.order;
  // Free cut first: tokens lighter than (total - target) / n weigh < total - target all together, so each
  // has > target ranked above it and is out. On real logits this drops most of the vocabulary.
  const cut = (total - target) / n;
  let m = 0;
  for (let j = 0; j < n; j++) if (weights[candidates[j]] >= cut) order[m++] = candidates[j];
  // Invariant: order[0..lo) are kept (weight `kept`), order[hi..m) dropped, [lo..hi) undecided.
  let lo = 0;
  let hi = m;
  let kept = 0;
  while (lo < hi) {
    const mid = lo + ((hi - lo) >> 1);
    const pivot = order[mid];
    order[mid] = order[hi - 1];
    // Partition [lo, hi - 1): those ranked above the pivot move to the front, their weight summed.
    let store = lo;
    let aboveWeight = 0;
    for (let j = lo; j < hi - 1; j++) {
      const id = order[j];
      if (!ranksAbove(weights, id, pivot)) continue;
      order[j] = order[store];
      order[store++] = id;
      aboveWeight += weights[id];
    }
    order[hi - 1] = order[store];
    order[store] = pivot;
    if (kept + aboveWeight >= target) {
      hi = store; // the pivot already has ≥ target above it: it and everything below are out
    } else {
      kept += aboveWeight + weights[pivot]; // the pivot and everything above it are in
      lo = store + 1;
      if (kept >= target) break;
    }
  }
  let worst = order[0];
  for (let j = 1; j < lo; j++) if (ranksAbove(weights, worst, order[j])) worst = order[j];
  return keepFrom(weights, candidates, n, worst);
}

/** log Σ exp(logits), in float64, shifted by the max for range. */
export function logSumExp(logits: Float32Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

/** The n largest logits as log-probabilities, best first; equal logits keep the lower id first. */
export function topN(logits: Float32Array, n: number, logNormalizer: number): TokenLogprob[] {
  return logprobsOf(bestIds(logits, n), logits, logNormalizer);
}

/** The ids of the n largest logits, best first; equal logits keep the lower id first. */
export function bestIds(logits: Float32Array, n: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (ids.length === n && !(x > logits[ids[n - 1]])) continue;
    // Insertion into a list of at most n (≤ 20): after every entry ≥ x.
    let at = ids.length === n ? n - 1 : ids.length;
    while (at > 0 && logits[ids[at - 1]] < x) {
      ids[at] = ids[at - 1];
      at--;
    }
    ids[at] = i;
  }
  return ids;
}

function logprobsOf(ids: readonly number[], logits: Float32Array, logNormalizer: number): TokenLogprob[] {
  return ids.map((tokenId) => ({ tokenId, logprob: logits[tokenId] - logNormalizer }));
}
