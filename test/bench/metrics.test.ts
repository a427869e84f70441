import { describe, expect, it } from "vitest";
import { arrivalTimes } from "../../src/workload/arrivals.js";
import { makePrompts } from "../../src/workload/dataset.js";
import {
  mean,
  meetsSlo,
  parseSlo,
  percentile,
  type RequestRecord,
  std,
  summarize,
  tpot,
} from "../../src/workload/metrics.js";
import { WorkloadRandom } from "../../src/workload/random.js";

/** A request sent at `send` whose tokens arrive at the given absolute times (seconds). */
function timeline(send: number, tokenTimes: number[], promptTokens = 10): RequestRecord {
  return {
    success: true,
    promptTokens,
    outputTokens: tokenTimes.length,
    sendTime: send,
    ttft: tokenTimes[0] - send,
    itl: tokenTimes.slice(1).map((t, i) => t - tokenTimes[i]),
    e2e: tokenTimes[tokenTimes.length - 1] - send,
  };
}

const failed: RequestRecord = {
  success: false,
  error: "HTTP 500",
  promptTokens: 10,
  outputTokens: 0,
  sendTime: 0,
  ttft: 0,
  itl: [],
  e2e: 0,
};

describe("metric definitions on hand-made timelines", () => {
  // A: sent at 0, tokens at 0.1, 0.2, 0.4, 0.7 → TTFT 100 ms, ITL 100/200/300, E2E 700, TPOT 600/3 = 200.
  // B: sent at 1, tokens at 1.3, 1.35     → TTFT 300 ms, ITL 50, E2E 350, TPOT 50.
  // C: sent at 2, one token at 2.2        → TTFT 200 ms, no ITL, E2E 200, no TPOT.
  const a = timeline(0, [0.1, 0.2, 0.4, 0.7], 20);
  const b = timeline(1, [1.3, 1.35], 30);
  const c = timeline(2, [2.2], 40);
  const s = summarize([a, b, c, failed], 2.5, { ttft: 250, tpot: 100 });

  it("defines TPOT as (E2E − TTFT) / (output tokens − 1), only for more than one token", () => {
    expect(tpot(a)).toBeCloseTo(0.2, 12);
    expect(tpot(b)).toBeCloseTo(0.05, 12);
    expect(tpot(c)).toBeUndefined();
    expect(s.mean_tpot_ms).toBeCloseTo(125, 9);
  });

  it("takes TTFT, E2E and every inter-token gap as they are", () => {
    expect(s.mean_ttft_ms).toBeCloseTo(200, 9);
    expect(s.median_ttft_ms).toBeCloseTo(200, 9);
    expect(s.mean_itl_ms).toBeCloseTo(650 / 4, 9); // gaps 100, 200, 300, 50
    expect(s.median_itl_ms).toBeCloseTo(150, 9);
    expect(s.mean_e2el_ms).toBeCloseTo(1250 / 3, 9);
  });

  it("counts failed requests apart and throughput over the duration", () => {
    expect(s.completed).toBe(3);
    expect(s.failed).toBe(1);
    expect(s.total_input_tokens).toBe(90);
    expect(s.total_output_tokens).toBe(7);
    expect(s.request_throughput).toBeCloseTo(3 / 2.5, 12);
    expect(s.output_throughput).toBeCloseTo(7 / 2.5, 12);
    expect(s.total_token_throughput).toBeCloseTo(97 / 2.5, 12);
  });

  it("counts as goodput only requests meeting every objective, a single token's TPOT being 0", () => {
    expect(meetsSlo(a, { ttft: 250, tpot: 100 })).toBe(false); // TPOT 200 ms
    expect(meetsSlo(b, { ttft: 250, tpot: 100 })).toBe(false); // TTFT 300 ms
    expect(meetsSlo(c, { ttft: 250, tpot: 100 })).toBe(true);
    expect(meetsSlo(failed, {})).toBe(false);
    expect(s.request_goodput).toBeCloseTo(1 / 2.5, 12);
    expect(summarize([a], 1).request_goodput).toBeNull();
    expect(parseSlo(["ttft:250", "tpot:100", "e2el:2000.5"])).toEqual({ ttft: 250, tpot: 100, e2el: 2000.5 });
    expect(() => parseSlo(["latency:5"])).toThrow(/--goodput: "latency:5"/);
  });
});

describe("percentiles", () => {
  it("interpolate linearly like numpy.percentile", () => {
    // numpy.percentile([1, 2, 3, 4], [50, 90, 99]) = [2.5, 3.7, 3.97]
    expect(percentile([4, 1, 3, 2], 50)).toBeCloseTo(2.5, 12);
    expect(percentile([4, 1, 3, 2], 90)).toBeCloseTo(3.7, 12);
    expect(percentile([4, 1, 3, 2], 99)).toBeCloseTo(3.97, 12);
    expect(percentile([5], 99)).toBe(5);
    expect(percentile([], 50)).toBe(0);
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(std([1, 2, 3, 4])).toBeCloseTo(Math.sqrt(1.25), 12); // population std
  });
});

describe("arrivals and datasets", () => {
  it("sends everything at 0 for rate inf, and ends at exactly n / rate otherwise", () => {
    expect(arrivalTimes(3, Number.POSITIVE_INFINITY, 1, new WorkloadRandom(0))).toEqual([0, 0, 0]);
    const times = arrivalTimes(50, 10, 1, new WorkloadRandom(1));
    expect(times[49]).toBeCloseTo(5, 12);
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]);
    expect(arrivalTimes(50, 10, 1, new WorkloadRandom(1))).toEqual(times);
  });

  it("draws gamma gaps with mean shape × scale and variance shape × scale²", () => {
    for (const shape of [0.5, 1, 4]) {
      const random = new WorkloadRandom(42);
      const draws = Array.from({ length: 40_000 }, () => random.gamma(shape, 2));
      expect(mean(draws)).toBeCloseTo(shape * 2, 1);
      expect(std(draws) ** 2 / (shape * 4)).toBeCloseTo(1, 1);
    }
  });

  it("makes prefix-shared prompts that share exactly the prefix", () => {
    const prompts = makePrompts(
      {
        dataset: "prefix-shared",
        numPrompts: 3,
        inputLen: 20,
        outputLen: 5,
        rangeRatio: 0,
        prefixLen: 32,
        vocabSize: 500,
      },
      new WorkloadRandom(0),
    );
    expect(prompts.map((p) => p.promptTokenIds.length)).toEqual([52, 52, 52]);
    const prefix = prompts[0].promptTokenIds.slice(0, 32);
    for (const p of prompts) expect(p.promptTokenIds.slice(0, 32)).toEqual(prefix);
    expect(prompts[1].promptTokenIds.slice(32)).not.toEqual(prompts[0].promptTokenIds.slice(32));
    for (const p of prompts) for (const id of p.promptTokenIds) expect(id >= 3 && id < 500).toBe(true);
  });
});
