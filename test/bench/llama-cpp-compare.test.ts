import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cpuDescription } from "../../src/bench/compare.js";
import { parseBatchedBenchJsonl, parseLlamaBenchJson } from "../../src/bench/llama-cpp/bench-tools.js";
import {
  compareRows,
  type EngineFigures,
  formatCompareTable,
} from "../../src/bench/llama-cpp/compare-table.js";
import { partialUtf8Tokens } from "../../src/bench/llama-cpp/llama-server.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";

/** What the real binaries printed (see llama-cpp-output/README.md). */
const captured = (name: string) => readFileSync(new URL(`llama-cpp-output/${name}`, import.meta.url), "utf8");

describe("llama.cpp's benchmark output, as the binaries print it", () => {
  it("llama-bench -o json: the test's tokens/s, which is its tokens over its mean time", () => {
    for (const [name, tokens] of [
      ["llama-bench-prefill.stdout", 16],
      ["llama-bench-decode.stdout", 4],
    ] as const) {
      const text = captured(name);
      const avgNs = Number(/"avg_ns": (\d+)/.exec(text)?.[1]);
      expect(parseLlamaBenchJson(text), name).toBeCloseTo(tokens / (avgNs / 1e9), 3);
    }
  });

  it("llama-bench: anything but exactly one test is an error naming llama-bench", () => {
    const one = JSON.parse(captured("llama-bench-prefill.stdout"));
    expect(() => parseLlamaBenchJson(JSON.stringify([...one, ...one]))).toThrow(
      /llama-bench: expected one test/,
    );
    expect(() => parseLlamaBenchJson("[]")).toThrow(/llama-bench: expected one test/);
  });

  it("llama-batched-bench --output-format jsonl: decode tokens/s of all sequences, pl × tg ÷ t_tg", () => {
    const [row, ...more] = parseBatchedBenchJsonl(captured("batched-bench.stdout"));
    expect(more).toEqual([]);
    expect([row.pp, row.tg, row.pl]).toEqual([16, 4, 4]);
    const tTg = Number(/"t_tg": ([\d.]+)/.exec(captured("batched-bench.stdout"))?.[1]);
    expect(row.speed_tg).toBeCloseTo((4 * 4) / tTg, 3);
    expect(() => parseBatchedBenchJsonl("\nmain: error\n")).toThrow(/printed no results/);
  });
});

describe("bench compare's table", () => {
  const vellum: EngineFigures = {
    prefillTokensPerSecond: 1660,
    decodeTokensPerSecond: 126,
    batchedDecodeTokensPerSecond: 507,
    server: [
      { streams: 16, outputTokensPerSecond: 356, ttftP50Seconds: 1.54 },
      { streams: 1, outputTokensPerSecond: 90, ttftP50Seconds: 0.05 },
    ],
  };
  const llamaCpp: EngineFigures = {
    prefillTokensPerSecond: 869,
    decodeTokensPerSecond: 158,
    batchedDecodeTokensPerSecond: 465,
    server: [
      { streams: 16, outputTokensPerSecond: 278, ttftP50Seconds: 2.37 },
      { streams: 1, outputTokensPerSecond: 100, ttftP50Seconds: 0.1 },
    ],
  };
  const settings = {
    prompt: 512,
    batch: 16,
    readBytesPerSecond: 50e9,
    int8OpsPerSecond: 940e9,
    bytesPerDecodeToken: 0.2e9,
    opsPerToken: 0.3e9,
  };
  const rows = compareRows(settings, vellum, llamaCpp);
  const row = (measure: string) => rows.find((r) => r.measure === measure);

  it("divides vellum by llama.cpp for every measure, as issue 19's table does", () => {
    expect(row("prefill 512, tok/s")?.ratio).toBeCloseTo(1.91, 2);
    expect(row("decode, tok/s")?.ratio).toBeCloseTo(0.8, 2);
    expect(row("batched decode at 16, tok/s")?.ratio).toBeCloseTo(1.09, 2);
    expect(row("server, 16 streams, output tok/s")?.ratio).toBeCloseTo(1.28, 2);
    expect(row("server, 16 streams, TTFT p50 s")?.ratio).toBeCloseTo(0.65, 2);
    expect(row("server, 1 stream, output tok/s")?.ratio).toBeCloseTo(0.9, 2);
  });

  it("gives each engine's roofline fractions of the same run's roofs", () => {
    // 126 tok/s × 0.2 GB = 25.2 GB/s of 50; 1660 × 0.3 GOP = 498 GOP/s of 940.
    const decode = row("decode, fraction of read bandwidth");
    expect([decode?.vellum, decode?.llamaCpp].map((x) => x?.toFixed(9))).toEqual([
      "0.504000000",
      "0.632000000",
    ]);
    const prefill = row("prefill 512, fraction of int8 peak");
    expect(prefill?.vellum).toBeCloseTo(498 / 940, 9);
    expect(row("batched decode at 16, fraction of int8 peak")?.llamaCpp).toBeCloseTo(139.5 / 940, 9);
    expect(prefill?.ratio).toBeUndefined();
  });

  it("prints a Markdown table with the figures as the issue writes them", () => {
    const lines = formatCompareTable(rows).split("\n");
    expect(lines[0]).toMatch(/^\| measure +\| vellum \| llama\.cpp \| vellum ÷ llama\.cpp \|$/);
    expect(lines[1]).toMatch(/^\|-+\|-+:\|-+:\|-+:\|$/);
    expect(lines).toContainEqual(
      expect.stringMatching(/^\| prefill 512, tok\/s +\| +1660 \| +869 \| +1\.91× \|$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^\| server, 16 streams, TTFT p50 s +\| +1\.54 \| +2\.37 \| +0\.65× \|$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^\| decode, fraction of read bandwidth +\| +0\.50 \| +0\.63 \| +\|$/),
    );
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
    expect(lines).toHaveLength(2 + rows.length);
  });
});

describe("the CPU every figure comes from", () => {
  it("is /proc/cpuinfo's model name with its family and model numbers", () => {
    const cpuinfo =
      "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC 9R45\nstepping\t: 1\n";
    expect(cpuDescription(cpuinfo)).toBe("AMD EPYC 9R45 (family 26, model 2)");
    expect(cpuDescription("")).toBe("unknown CPU");
  });
});

describe("the tokens llama-server is told never to sample", () => {
  it("are, in a sentencepiece vocabulary, exactly the byte tokens <0x80>…<0xFF>: no UTF-8 character alone", () => {
    const { tokenizer, config } = loadModel(bundledModelPath);
    const highBytes = [];
    for (let id = 0; id < config.vocabSize; id++)
      if (/^<0x[89A-F][0-9A-F]>$/.test(tokenizer.idToToken(id))) highBytes.push(id);
    expect(highBytes).toHaveLength(128);
    expect(partialUtf8Tokens(tokenizer, config.vocabSize)).toEqual(highBytes);
  });
});
