import { describe, expect, it } from "vitest";
import { type SamplingParams, samplingParams } from "../../src/core/sampling-params.js";
import { Sampler } from "../../src/runner/sampler.js";

const logits = Float32Array.from([2.0, 1.0, 0.5, 3.1, -1.0, 0.0, 2.9, 1.7, -3.0, 0.2, 2.0, 1.2]);
const ninf = Number.NEGATIVE_INFINITY;

/** softmax of `row` in float64 (-Infinity → 0). */
function softmax(row: readonly number[]): number[] {
  const max = Math.max(...row);
  const w = row.map((x) => Math.exp(x - max));
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / sum);
}

/** Seeded draws at temperature 1 match softmax(`expectedLogits`): within 4.5 σ, never a token of probability 0. */
function expectDrawsFrom(given: Partial<SamplingParams>, expectedLogits: number[], outputIds: number[] = []) {
  const draws = 30_000;
  const sampler = new Sampler(samplingParams({ seed: 5, ...given }));
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample(logits, [], outputIds).tokenId]++;
  softmax(expectedLogits).forEach((p, i) => {
    const observed = counts[i] / draws;
    if (p === 0) expect(observed, `token ${i} is excluded`).toBe(0);
    else
      expect(Math.abs(observed - p), `token ${i}`).toBeLessThanOrEqual(
        4.5 * Math.sqrt((p * (1 - p)) / draws),
      );
  });
}

describe("token constraints in the sampler (vLLM's allowed_token_ids, bad_words, logit_bias)", () => {
  it("logit_bias adds to the logit: draws follow softmax(logits + bias); greedy moves to a biased token", () => {
    const logitBias = new Map([
      [4, 5],
      [3, -100],
      [8, 2.5],
    ]);
    expectDrawsFrom(
      { logitBias },
      [...logits].map((x, i) => x + (logitBias.get(i) ?? 0)),
    );
    const greedy = new Sampler(samplingParams({ temperature: 0, logitBias: new Map([[8, 6.2]]) }));
    expect(greedy.sample(logits, [], []).tokenId).toBe(8); // -3 + 6.2 = 3.2 > 3.1
  });

  it("allowed_token_ids: only those are drawn, in their softmax proportions; greedy takes the best of them", () => {
    const allowed = [0, 5, 9, 11];
    expectDrawsFrom(
      { allowedTokenIds: allowed },
      [...logits].map((x, i) => (allowed.includes(i) ? x : ninf)),
    );
    const greedy = new Sampler(samplingParams({ temperature: 0, allowedTokenIds: allowed }));
    expect(greedy.sample(logits, [], []).tokenId).toBe(0);
  });

  it("rules that refuse every token a grammar allows yield to the grammar: draws follow the grammar alone", () => {
    const mask = new Int32Array([(1 << 2) | (1 << 5)]); // the grammar allows tokens 2 and 5 only
    const sampler = new Sampler(samplingParams({ seed: 3, allowedTokenIds: [3], badWords: [[2]] }));
    const drawn = new Set(Array.from({ length: 200 }, () => sampler.sample(logits, [], [], mask).tokenId));
    expect(drawn).toEqual(new Set([2, 5]));
    const kept = new Sampler(samplingParams({ temperature: 0, badWords: [[2]] }));
    expect(kept.sample(logits, [], [], mask).tokenId).toBe(5); // a rule that leaves a token still holds
  });

  it("bad_words: a word's last token is banned exactly where the output ends with the rest of it", () => {
    const badWords = [[3], [7, 6], [1, 2, 0]];
    expectDrawsFrom(
      { badWords },
      [...logits].map((x, i) => (i === 3 ? ninf : x)),
      [5, 9],
    );
    expectDrawsFrom(
      { badWords },
      [...logits].map((x, i) => (i === 3 || i === 6 ? ninf : x)),
      [4, 7],
    );
    expectDrawsFrom(
      { badWords },
      [...logits].map((x, i) => (i === 3 || i === 0 ? ninf : x)),
      [1, 2],
    );
    const greedy = new Sampler(samplingParams({ temperature: 0, badWords }));
    expect(greedy.sample(logits, [], [1, 2]).tokenId).toBe(6); // 3 and 0 banned
    expect(greedy.sample(logits, [], [2, 1]).tokenId).toBe(6); // 3 banned, 0 not (2.9 > 2.0)
    expect(greedy.sample(logits, [], [7]).tokenId).toBe(0); // 3 and 6 banned
  });

  it("they come before the penalties, and log-probs stay those of the raw logits", () => {
    // Token 4 (logit -1) biased by +5 → 4; a repetition penalty of 2 on it (seen in the prompt) halves that to 2.
    const p = samplingParams({
      temperature: 0,
      logitBias: new Map([[4, 5]]),
      repetitionPenalty: 2,
      logprobs: 2,
    });
    const out = new Sampler(p).sample(logits, [4, 3, 6], []);
    // Penalized: 3 → 1.55, 6 → 1.45, 4 → 2; the best left is 0 and 10 at 2.0 — ties to the lower id — then 4 at 2.0.
    expect(out.tokenId).toBe(0);
    const lse = Math.log([...logits].reduce((s, x) => s + Math.exp(x), 0));
    expect(out.logprob).toBeCloseTo(logits[0] - lse, 5);
    expect(out.topLogprobs?.map((t) => t.tokenId)).toEqual([3, 6]);
  });
});
