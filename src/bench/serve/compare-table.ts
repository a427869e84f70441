import type { BenchSummary } from "../../workload/metrics.js";

const rows: [keyof BenchSummary, string][] = [
  ["completed", "successful requests"],
  ["failed", "failed requests"],
  ["request_throughput", "request throughput (req/s)"],
  ["output_throughput", "output throughput (tok/s)"],
  ["median_ttft_ms", "median TTFT (ms)"],
  ["p99_ttft_ms", "P99 TTFT (ms)"],
  ["median_tpot_ms", "median TPOT (ms)"],
  ["p99_tpot_ms", "P99 TPOT (ms)"],
  ["median_e2el_ms", "median E2EL (ms)"],
];

/** One column per configuration, then each one's ratio to the first. */
export function formatComparison(results: readonly { label: string; summary: BenchSummary }[]): string {
  const base = results[0].summary;
  const header = [
    "",
    ...results.map((r) => r.label),
    ...results.slice(1).map((r) => `${r.label} / ${results[0].label}`),
  ];
  const body = rows.map(([key, name]) => {
    const value = (s: BenchSummary) => s[key] as number;
    return [
      name,
      ...results.map((r) => value(r.summary).toFixed(2)),
      ...results
        .slice(1)
        .map((r) => (value(base) === 0 ? "-" : `${(value(r.summary) / value(base)).toFixed(2)}x`)),
    ];
  });
  const table = [header, ...body];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  return table
    .map((row) =>
      row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "),
    )
    .join("\n");
}
