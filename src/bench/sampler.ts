/**
 * Sampling's cost per logits row: the JS Sampler (the reference, one row at a time on the event loop) against the
 * native batch sampler (every row in one call, on 1 thread and on --threads), side by side on the same rows.
 * Usage: vellum bench sampler [--vocab 32000,128000] [--rows 16] [--threads N] [--kernels PATH] [--out FILE.json]
 * The rows are logits-like (normal noise with a few strong tokens).
 */
import { performance } from "node:perf_hooks";
import type { SampleRow } from "../backend/backend.js";
import { type KernelPath, nativeAddon } from "../backend/native/addon.js";
import { sampleParams } from "../backend/native/native-backend.js";
import { type SamplingParams, samplingParams } from "../core/sampling-params.js";
import { Sampler } from "../runner/sampler.js";
import { Rng } from "../util/rng.js";
import { median, resultPath, writeJson } from "./native-bench-setup.js";

export interface SamplerBenchOptions {
  vocab: number[];
  rows: number;
  threads: number;
  kernels: KernelPath;
  runs: number;
  out?: string;
}

const settings: [string, Partial<SamplingParams>][] = [
  ["temperature 1", { temperature: 1 }],
  ["T 0.8, top-p 0.95", { temperature: 0.8, topP: 0.95 }],
  ["T 0.8, top-k 40, top-p 0.95, min-p 0.05", { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 }],
  ["greedy", { temperature: 0 }],
];

function logitsRows(vocab: number, rows: number, rng: Rng): Float32Array[] {
  return Array.from({ length: rows }, () => {
    const row = new Float32Array(vocab);
    for (let i = 0; i < vocab; i++) {
      const normal = Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());
      row[i] = 2 * normal + (rng.nextFloat() < 1e-3 ? 8 : 0);
    }
    return row;
  });
}

/** Median milliseconds of `f` over `runs` runs, after one warm-up run. */
function timeMs(runs: number, f: () => void): number {
  f();
  return median(
    Array.from({ length: runs }, () => {
      const start = performance.now();
      f();
      return performance.now() - start;
    }),
  );
}

export async function runSamplerBench(o: SamplerBenchOptions) {
  const addon = nativeAddon();
  const rng = new Rng(19);
  const results = [];
  console.log(
    `kernel path: ${o.kernels === "auto" ? addon.bestKernelPath() : o.kernels}; ${o.rows} rows per call`,
  );
  console.log(
    `vocab  | setting                                  | JS ms/row | native 1 thread | native ×${o.threads}`,
  );
  for (const vocab of o.vocab) {
    const rows = logitsRows(vocab, o.rows, rng);
    for (const [name, given] of settings) {
      const p = samplingParams({ ...given, seed: 1 });
      const sampler = new Sampler(p);
      const js = timeMs(o.runs, () => {
        for (const row of rows) sampler.sample(row, [], []);
      });
      const sampleRows: SampleRow[] = rows.map((row) => ({
        ...p,
        logits: row,
        rawLogits: row,
        u: 0.5,
        logprobs: 0,
      }));
      const params = sampleParams(sampleRows);
      const native = (threads: number) =>
        timeMs(o.runs, () => addon.kernelSample(o.kernels, rows, rows, params, vocab, threads));
      const [one, many] = [native(1), native(o.threads)];
      const perRow = (ms: number) => (ms / o.rows).toFixed(3).padStart(9);
      console.log(
        `${String(vocab).padEnd(6)} | ${name.padEnd(40)} | ${perRow(js)} | ${perRow(one).padStart(15)} | ${perRow(many)}`,
      );
      results.push({
        vocab,
        setting: name,
        jsMsPerRow: js / o.rows,
        nativeMsPerRow: one / o.rows,
        nativeThreadsMsPerRow: many / o.rows,
      });
    }
  }
  writeJson(o.out ?? resultPath(`sampler-t${o.threads}`), {
    kernels: o.kernels,
    rows: o.rows,
    threads: o.threads,
    results,
  });
}
