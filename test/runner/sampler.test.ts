import { describe, expect, it } from "vitest";
import {
  SamplingParamError,
  type SamplingParams,
  samplingParams,
  type ValidSamplingParams,
} from "../../src/core/sampling-params.js";
import { applyPenalties, Sampler } from "../../src/runner/sampler.js";
import { Rng } from "../../src/util/rng.js";

const params = (over: Partial<SamplingParams>) => samplingParams(over);

/**
 * The distribution a sampler must draw from, straight from the definitions, in float64 with full
 * sorts: softmax(logits / T), then min-p, top-k, top-p, each renormalizing what is left.
 */
function expectedDistribution(logits: number[], p: SamplingParams): number[] {
  const scaled = logits.map((x) => x / p.temperature);
  const max = scaled.reduce((a, b) => Math.max(a, b));
  let probs = normalize(scaled.map((x) => Math.exp(x - max)));
  const byRank = probs.map((_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  if (p.minP > 0) {
    const floor = p.minP * probs[byRank[0]];
    probs = normalize(probs.map((q) => (q >= floor ? q : 0)));
  }
  if (p.topK > 0) {
    const keep = new Set(byRank.slice(0, p.topK));
    probs = normalize(probs.map((q, i) => (keep.has(i) ? q : 0)));
  }
  if (p.topP < 1) {
    let above = 0;
    const keep = new Set<number>();
    for (const i of byRank) {
      if (above >= p.topP) break;
      keep.add(i);
      above += probs[i];
    }
    probs = normalize(probs.map((q, i) => (keep.has(i) ? q : 0)));
  }
  return probs;
}

function normalize(w: number[]): number[] {
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / sum);
}

function frequencies(sampler: Sampler, logits: Float32Array, draws: number): number[] {
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample(logits, [], []).tokenId]++;
  return counts.map((c) => c / draws);
}

/**
 * Empirical frequencies over `draws` seeded draws must match the exact distribution: each token within
 * 4.5 standard deviations of a binomial proportion (plus 1e-4 for p ≈ 0), and excluded tokens never drawn.
 */
function expectMatchesDistribution(logitsArr: number[], p: ValidSamplingParams, draws = 40_000): void {
  const logits = Float32Array.from(logitsArr);
  const expected = expectedDistribution(Array.from(logits), p);
  const observed = frequencies(new Sampler(p), logits, draws);
  for (let i = 0; i < logits.length; i++) {
    if (expected[i] === 0) {
      expect(observed[i], `token ${i} is excluded`).toBe(0);
      continue;
    }
    const sigma = Math.sqrt((expected[i] * (1 - expected[i])) / draws);
    expect(Math.abs(observed[i] - expected[i]), `token ${i}`).toBeLessThanOrEqual(4.5 * sigma + 1e-4);
  }
}

const twelve = [2.0, 1.0, 0.5, 3.1, -1.0, 0.0, 2.9, 1.7, -3.0, 0.2, 2.0, 1.2];

describe("Sampler: distributions", () => {
  it("temperature 1 draws from softmax(logits)", () => {
    expectMatchesDistribution(twelve, params({ seed: 1 }));
  });

  it("temperature 0.5 and 2 draw from softmax(logits / T)", () => {
    expectMatchesDistribution(twelve, params({ seed: 2, temperature: 0.5 }));
    expectMatchesDistribution(twelve, params({ seed: 3, temperature: 2 }));
  });

  it("top-k keeps exactly the k best, renormalized", () => {
    expectMatchesDistribution(twelve, params({ seed: 4, topK: 3 }));
    expectMatchesDistribution(twelve, params({ seed: 5, topK: 1 }));
  });

  it("top-k breaks ties at the boundary toward the lower id", () => {
    // Tokens 0 and 10 share the 3rd-best logit (2.0): top-3 keeps 0, not 10.
    const sampler = new Sampler(params({ seed: 6, topK: 3, temperature: 5 }));
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(sampler.sample(Float32Array.from(twelve), [], []).tokenId);
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 3, 6]);
  });

  it("top-p keeps the smallest best-first set whose mass reaches p", () => {
    expectMatchesDistribution(twelve, params({ seed: 7, topP: 0.8 }));
    expectMatchesDistribution(twelve, params({ seed: 8, topP: 0.3, temperature: 1.5 }));
  });

  it("min-p drops tokens below min_p × the top probability", () => {
    expectMatchesDistribution(twelve, params({ seed: 9, minP: 0.2 }));
    expectMatchesDistribution(twelve, params({ seed: 10, minP: 0.05, temperature: 0.7 }));
  });

  it("all filters together follow vLLM's order", () => {
    expectMatchesDistribution(twelve, params({ seed: 11, minP: 0.05, topK: 5, topP: 0.7, temperature: 1.3 }));
  });

  it("top-p applies to the distribution renormalized after top-k", () => {
    // probs 0.4 0.3 0.2 0.1; top-2 renormalizes to 0.571 0.429, so top-p 0.5 keeps only token 0.
    // (Computed on the original probabilities, 0.4 < 0.5 would have kept token 1 as well.)
    const logits = Float32Array.from([0.4, 0.3, 0.2, 0.1].map(Math.log));
    const sampler = new Sampler(params({ seed: 12, topK: 2, topP: 0.5 }));
    for (let i = 0; i < 500; i++) expect(sampler.sample(logits, [], []).tokenId).toBe(0);
  });

  it("never draws masked (-Infinity) tokens", () => {
    const logits = Float32Array.from([0, Number.NEGATIVE_INFINITY, 0, Number.NEGATIVE_INFINITY]);
    const sampler = new Sampler(params({ seed: 13 }));
    for (let i = 0; i < 1000; i++) expect([0, 2]).toContain(sampler.sample(logits, [], []).tokenId);
  });

  it("samples only allowed tokens from a large, realistic vocabulary", () => {
    const rng = new Rng(99);
    const vocab = 152_064;
    // Gaussian-ish logits (sum of uniforms) with a few strong tokens, like a real LM head.
    const logits = new Float32Array(vocab);
    for (let i = 0; i < vocab; i++)
      logits[i] = (rng.nextFloat() + rng.nextFloat() + rng.nextFloat() - 1.5) * 4;
    for (const [id, x] of [
      [17, 14],
      [4242, 13.5],
      [99_999, 13],
      [150_000, 12],
    ])
      logits[id] = x;
    for (const p of [
      params({ seed: 14, topK: 50 }),
      params({ seed: 15, topP: 0.9 }),
      params({ seed: 16, minP: 0.1 }),
    ]) {
      const expected = expectedDistribution(Array.from(logits), p);
      const sampler = new Sampler(p);
      for (let i = 0; i < 50; i++) {
        const t = sampler.sample(logits, [], []).tokenId;
        expect(expected[t], `token ${t} must be allowed`).toBeGreaterThan(0);
      }
    }
  });

  it("works after a larger vocabulary was sampled (shared scratch is reused)", () => {
    new Sampler(params({ seed: 17 })).sample(new Float32Array(1000), [], []);
    expectMatchesDistribution([1, 2, 3], params({ seed: 18 }), 20_000);
  });
});

describe("Sampler: greedy and seeds", () => {
  it("temperature 0 takes the argmax, ties to the lowest id", () => {
    const sampler = new Sampler(params({ temperature: 0 }));
    expect(sampler.sample(Float32Array.from(twelve), [], []).tokenId).toBe(3);
    expect(sampler.sample(Float32Array.from([1, 5, 2, 5, 5]), [], []).tokenId).toBe(1);
    expect(sampler.sample(Float32Array.from([-3, -1, -1]), [], []).tokenId).toBe(1);
  });

  it("greedy applies penalties first", () => {
    // 2.0 / 1.5 = 1.33 < 1.5: the penalty moves the argmax; 2.0 / 1.25 = 1.6 > 1.5: it does not.
    const logits = Float32Array.from([2.0, 1.5]);
    expect(
      new Sampler(params({ temperature: 0, repetitionPenalty: 1.5 })).sample(logits, [0], []).tokenId,
    ).toBe(1);
    expect(
      new Sampler(params({ temperature: 0, repetitionPenalty: 1.25 })).sample(logits, [0], []).tokenId,
    ).toBe(0);
  });

  it("the same seed gives the same tokens; other seeds other tokens", () => {
    const logits = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i));
    const run = (seed?: number) => {
      const sampler = new Sampler(params({ seed, temperature: 1.5 }));
      return Array.from({ length: 64 }, () => sampler.sample(logits, [], []).tokenId);
    };
    expect(run(1234)).toEqual(run(1234));
    expect(run(1234)).not.toEqual(run(1235));
    expect(run(2 ** 40 + 1234)).not.toEqual(run(1234)); // the high bits of a seed count too
    expect(run(undefined)).not.toEqual(run(undefined)); // unseeded: a fresh random seed each
  });

  it("Rng yields uniform floats in [0, 1)", () => {
    const rng = new Rng(0);
    const buckets = new Array<number>(16).fill(0);
    const n = 64_000;
    for (let i = 0; i < n; i++) {
      const u = rng.nextFloat();
      expect(u >= 0 && u < 1).toBe(true);
      buckets[Math.floor(u * 16)]++;
    }
    // Chi-square with 15 degrees of freedom: 37.7 is its 0.999 quantile.
    const chi2 = buckets.reduce((s, c) => s + (c - n / 16) ** 2 / (n / 16), 0);
    expect(chi2).toBeLessThan(37.7);
  });
});

function expectAllClose(actual: number[], expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i], `index ${i}`).toBeCloseTo(expected[i], 6);
}

describe("applyPenalties", () => {
  const base = [1.5, -2.0, 0.8, 3.0, -0.5, 0.0];
  const penalize = (p: Partial<SamplingParams>, prompt: number[], output: number[]) => {
    const row = Float32Array.from(base);
    applyPenalties(row, params(p), prompt, output);
    return Array.from(row);
  };

  it("repetition penalty divides positive and multiplies negative logits of prompt and output tokens, once each", () => {
    const row = penalize({ repetitionPenalty: 1.3 }, [0, 1, 0, 0], [4, 1, 4]);
    const expected = [1.5 / 1.3, -2.0 * 1.3, 0.8, 3.0, -0.5 * 1.3, 0.0];
    expectAllClose(row, expected);
  });

  it("frequency and presence penalties apply to output tokens only, per occurrence and once", () => {
    const row = penalize({ frequencyPenalty: 0.25, presencePenalty: 0.5 }, [2, 3], [0, 4, 0, 0, 5]);
    const expected = [1.5 - 3 * 0.25 - 0.5, -2.0, 0.8, 3.0, -0.5 - 0.25 - 0.5, 0.0 - 0.25 - 0.5];
    expectAllClose(row, expected);
  });

  it("repetition first, then frequency and presence (vLLM's order)", () => {
    const row = penalize({ repetitionPenalty: 2, frequencyPenalty: 0.5, presencePenalty: -0.5 }, [1], [0, 0]);
    const expected = [1.5 / 2 - 2 * 0.5 + 0.5, -2.0 * 2, 0.8, 3.0, -0.5, 0.0];
    expectAllClose(row, expected);
  });

  it("leaves the logits alone when every penalty is off", () => {
    expect(penalize({}, [0, 1, 2], [3, 4, 5])).toEqual(Array.from(Float32Array.from(base)));
  });

  it("the sampler does not modify the caller's logits", () => {
    const logits = Float32Array.from(base);
    new Sampler(params({ seed: 1, repetitionPenalty: 2, topK: 2, topP: 0.5 })).sample(logits, [0, 1], [3]);
    expect(Array.from(logits)).toEqual(Array.from(Float32Array.from(base)));
  });
});

describe("Sampler: logprobs", () => {
  const logits = Float32Array.from([0.3, 2.5, -1.0, 2.5, 1.0, 0.0, -4.0, 1.9]);
  // Independent float64 log-softmax of the raw logits.
  const lse = Math.log(Array.from(logits).reduce((s, x) => s + Math.exp(x), 0));
  const logSoftmax = Array.from(logits).map((x) => x - lse);

  it("returns the chosen token's and the N best log-probabilities of the raw logits", () => {
    // Penalties and temperature change what is sampled, not the reported logprobs.
    const sampler = new Sampler(params({ seed: 5, logprobs: 3, temperature: 0.3, repetitionPenalty: 1.7 }));
    for (let i = 0; i < 20; i++) {
      const r = sampler.sample(logits, [1, 4], [7]);
      expect(r.logprob).toBeCloseTo(logSoftmax[r.tokenId], 6);
      expect(r.topLogprobs?.map((t) => t.tokenId)).toEqual([1, 3, 7]); // 1 and 3 tie: lower id first
      for (const t of r.topLogprobs ?? []) expect(t.logprob).toBeCloseTo(logSoftmax[t.tokenId], 6);
    }
  });

  it("returns every token when N equals the vocabulary, best first", () => {
    const r = new Sampler(params({ temperature: 0, logprobs: 8 })).sample(logits, [], []);
    expect(r.topLogprobs?.map((t) => t.tokenId)).toEqual([1, 3, 7, 4, 0, 5, 2, 6]);
    expect(r.logprob).toBeCloseTo(logSoftmax[1], 6);
  });

  it("omits logprobs when none are asked for", () => {
    const r = new Sampler(params({ temperature: 0 })).sample(logits, [], []);
    expect(r).toEqual({ tokenId: 1 });
  });
});

describe("samplingParams", () => {
  it("accepts the defaults and the edges of each range", () => {
    samplingParams();
    samplingParams({ temperature: 0, topP: 1, topK: -1, minP: 1, logprobs: 20, seed: -5 });
    samplingParams({ presencePenalty: -2, frequencyPenalty: 2, maxTokens: 1 });
  });

  const bad: [Partial<SamplingParams>, keyof SamplingParams, string][] = [
    [{ temperature: -0.1 }, "temperature", "temperature"],
    [{ temperature: Number.NaN }, "temperature", "temperature"],
    [{ topP: 0 }, "topP", "top_p"],
    [{ topP: 1.01 }, "topP", "top_p"],
    [{ topK: -2 }, "topK", "top_k"],
    [{ topK: 2.5 }, "topK", "top_k"],
    [{ minP: -0.01 }, "minP", "min_p"],
    [{ minP: 1.5 }, "minP", "min_p"],
    [{ repetitionPenalty: 0 }, "repetitionPenalty", "repetition_penalty"],
    [{ presencePenalty: 2.5 }, "presencePenalty", "presence_penalty"],
    [{ frequencyPenalty: -3 }, "frequencyPenalty", "frequency_penalty"],
    [{ maxTokens: 0 }, "maxTokens", "max_tokens"],
    [{ logprobs: 21 }, "logprobs", "logprobs"],
    [{ logprobs: -1 }, "logprobs", "logprobs"],
    [{ seed: 1.5 }, "seed", "seed"],
  ];
  it.each(bad)("rejects %o naming the parameter", (over, field, apiName) => {
    let error: unknown;
    try {
      samplingParams(over);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SamplingParamError);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as SamplingParamError).param).toBe(field);
    expect((error as Error).message.startsWith(`${apiName} `)).toBe(true);
  });

  it("rejects a field it does not know, and takes undefined as not given", () => {
    expect(() => samplingParams({ temprature: 0 } as Partial<SamplingParams>)).toThrow(
      'unknown sampling parameter "temprature"',
    );
    expect(samplingParams({ temperature: undefined }).temperature).toBe(samplingParams().temperature);
  });
});
