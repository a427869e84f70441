/**
 * Simulated against measured: does the cost model predict what a real server does? The documented check
 * (issues 9 and 21) runs three workloads both ways and compares output throughput and median TPOT, in one
 * command:
 *
 *   vellum synth-model --shape small-160m --dtype q8_0 --out small-160m.gguf
 *   vellum bench simulate-vs-measured --model small-160m.gguf
 *
 * or by hand: `vellum serve` + `vellum bench serve --ignore-eos --result-json measured.json`, then
 * `vellum simulate --hardware cpu-local … --measured measured.json` with the same workload flags.
 */
import { readFileSync } from "node:fs";
import { fileErrorText, InputError } from "../model/errors.js";
import type { BenchSummary } from "../workload/metrics.js";

const compared: [keyof BenchSummary, string][] = [
  ["request_throughput", "request throughput (req/s)"],
  ["output_throughput", "output throughput (tok/s)"],
  ["median_ttft_ms", "median TTFT (ms)"],
  ["median_tpot_ms", "median TPOT (ms)"],
  ["median_e2el_ms", "median E2EL (ms)"],
];

/** The figures the simulator must predict within ±15% (issue 21's criterion). */
const validated = new Set<keyof BenchSummary>(["output_throughput", "median_tpot_ms"]);
export const tolerance = 0.15;
const percent = `${tolerance * 100}%`;

/** Whether throughput and median TPOT are both within the tolerance. */
export function withinTolerance(simulated: BenchSummary, measured: BenchSummary): boolean {
  return [...validated].every(
    (key) => Math.abs((simulated[key] as number) / (measured[key] as number) - 1) <= tolerance,
  );
}

/** Reads a `bench serve --result-json` file (single run). */
export function readMeasured(path: string): BenchSummary {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new InputError(`${path}: cannot read as JSON: ${fileErrorText(err)}`);
  }
  const summary = json as Partial<BenchSummary>;
  if (typeof summary.output_throughput !== "number" || typeof summary.median_tpot_ms !== "number") {
    throw new InputError(
      `${path}: not a single-run result of vellum bench serve --result-json (no output_throughput)`,
    );
  }
  return summary as BenchSummary;
}

/** Simulated beside measured, with the ratio, and whether throughput and median TPOT are within the tolerance. */
export function formatValidation(simulated: BenchSummary, measured: BenchSummary): string {
  const rows = compared.map(([key, name]) => {
    const s = simulated[key] as number;
    const m = measured[key] as number;
    const ratio = m === 0 ? Number.NaN : s / m;
    const verdict = validated.has(key)
      ? Math.abs(ratio - 1) <= tolerance
        ? `within ±${percent}`
        : `OUTSIDE ±${percent}`
      : "";
    return [name, s.toFixed(2), m.toFixed(2), Number.isNaN(ratio) ? "-" : `${ratio.toFixed(2)}x`, verdict];
  });
  const table = [["", "simulated", "measured", "sim / measured", ""], ...rows];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  return table
    .map((r) =>
      r
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
