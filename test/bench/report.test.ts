import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { BenchRun } from "../../src/bench/serve/bench-serve.js";
import { formatComparison } from "../../src/bench/serve/compare-table.js";
import { htmlReport } from "../../src/bench/serve/html-report.js";
import { formatSummary } from "../../src/bench/serve/report-text.js";
import { parseCompare } from "../../src/workload/compare.js";
import { makePrompts } from "../../src/workload/dataset.js";
import { type RequestRecord, summarize } from "../../src/workload/metrics.js";
import { WorkloadRandom } from "../../src/workload/random.js";

const record = (send: number, ttft: number, gaps: number[]): RequestRecord => ({
  success: true,
  promptTokens: 5,
  outputTokens: gaps.length + 1,
  sendTime: send,
  ttft,
  itl: gaps,
  e2e: ttft + gaps.reduce((a, b) => a + b, 0),
});

const run = (label: string, scale: number): BenchRun => {
  const records = [
    record(0, 0.1 * scale, [0.05 * scale, 0.05 * scale]),
    record(0.5, 0.2 * scale, [0.1 * scale]),
  ];
  return { label, model: "m", records, summary: summarize(records, 1) };
};

describe("--compare", () => {
  it("turns SETTING=a,b into one server configuration per value", () => {
    expect(parseCompare("kv-allocation=paged,contiguous").map((v) => v.settings)).toEqual([
      { kvAllocation: "paged", batching: "continuous", prefixCaching: true },
      { kvAllocation: "contiguous", batching: "continuous", prefixCaching: true },
    ]);
    expect(parseCompare("prefix-caching=on,off")[1]).toEqual({
      label: "prefix-caching=off",
      settings: { kvAllocation: "paged", batching: "continuous", prefixCaching: false },
    });
    expect(() => parseCompare("batching=continuous,dynamic")).toThrow(/batching has no value "dynamic"/);
    expect(() => parseCompare("speed=fast,slow")).toThrow(/SETTING one of kv-allocation/);
    expect(() => parseCompare("batching=static")).toThrow(/at least two values/);
  });

  it("prints each configuration's ratio to the first", () => {
    const table = formatComparison([run("a", 1), run("b", 2)]);
    expect(table).toMatch(/median TTFT \(ms\)\s+150\.00\s+300\.00\s+2\.00x/);
    expect(table).toMatch(/request throughput \(req\/s\)\s+2\.00\s+2\.00\s+1\.00x/);
  });
});

describe("reports", () => {
  it("prints vLLM's summary layout", () => {
    const text = formatSummary(run("a", 1).summary);
    expect(text).toMatch(/^=+ Serving Benchmark Result =+$/m);
    expect(text).toMatch(/^Successful requests:\s+2$/m);
    expect(text).toMatch(/^Median TTFT \(ms\):\s+150\.00$/m);
    expect(text).toMatch(/^P99 E2EL \(ms\):\s+/m);
  });

  it("writes a self-contained HTML page with one SVG chart per view", () => {
    const html = htmlReport([run("paged", 1), run("contiguous", 2)], { model_id: "m" });
    expect(html.match(/<svg /g)).toHaveLength(6);
    for (const title of [
      "TTFT CDF",
      "TPOT CDF",
      "E2E latency CDF",
      "Throughput vs concurrency",
      "TTFT percentiles",
    ]) {
      expect(html).toContain(title);
    }
    expect(html).not.toMatch(/<script|src="http|href="http/); // nothing fetched from elsewhere
    expect(html).not.toMatch(/NaN|undefined/);
  });
});

describe("sharegpt dataset", () => {
  it("takes the first human turn as the prompt and skips unusable conversations", () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-sharegpt-"));
    const file = join(dir, "sg.json");
    const long = "x".repeat(400); // 100 tokens at 4 characters per token
    writeFileSync(
      file,
      JSON.stringify([
        {
          conversations: [
            { from: "human", value: long },
            { from: "gpt", value: "y".repeat(80) },
          ],
        },
        {
          conversations: [
            { from: "human", value: "hi" },
            { from: "gpt", value: "y".repeat(80) },
          ],
        }, // prompt too short
        { conversations: [{ from: "human", value: long }] }, // no reply
        { id: 3 },
      ]),
    );
    const options = {
      dataset: "sharegpt" as const,
      datasetPath: file,
      numPrompts: 1,
      inputLen: 0,
      outputLen: 0,
      rangeRatio: 0,
      prefixLen: 0,
      vocabSize: 500,
    };
    const [p] = makePrompts(options, new WorkloadRandom(0));
    expect(p).toMatchObject({ promptText: long, textIsPrompt: true, outputLen: 20 });
    expect(p.promptTokenIds).toHaveLength(100);
    expect(() => makePrompts({ ...options, numPrompts: 2 }, new WorkloadRandom(0))).toThrow(
      /only 1 usable conversations/,
    );
    expect(() =>
      makePrompts({ ...options, datasetPath: join(dir, "none.json") }, new WorkloadRandom(0)),
    ).toThrow(/none\.json: cannot read as JSON/);
  });
});
