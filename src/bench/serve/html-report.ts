import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { InputError } from "../../model/errors.js";
import type { RequestRecord } from "../../workload/metrics.js";
import { tpot } from "../../workload/metrics.js";
import type { BenchRun } from "./bench-serve.js";
import { formatComparison } from "./compare-table.js";
import { formatSummary } from "./report-text.js";
import { groupedBars, type Series, xyChart } from "./svg-chart.js";

/** Sorted values against their cumulative fraction. */
function cdf(values: number[]): [number, number][] {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.map((v, i) => [v, (i + 1) / sorted.length]);
}

/**
 * One point per second of the run: requests in flight (averaged over the second) against output tokens
 * that arrived in it. Token times are rebuilt from TTFT and the inter-token gaps.
 */
function throughputVsConcurrency(records: readonly RequestRecord[]): [number, number][] {
  const ok = records.filter((r) => r.success);
  const end = Math.max(0, ...ok.map((r) => r.sendTime + r.e2e));
  const seconds = Math.ceil(end);
  const tokens = new Array<number>(seconds).fill(0);
  const busy = new Array<number>(seconds).fill(0);
  for (const r of ok) {
    let t = r.sendTime + r.ttft;
    tokens[Math.min(Math.floor(t), seconds - 1)] += 1;
    for (const gap of r.itl) {
      t += gap;
      tokens[Math.min(Math.floor(t), seconds - 1)] += 1;
    }
    const from = r.sendTime;
    const to = r.sendTime + r.e2e;
    for (let s = Math.floor(from); s < Math.min(Math.ceil(to), seconds); s++) {
      busy[s] += Math.min(to, s + 1) - Math.max(from, s);
    }
  }
  return tokens.map((n, s) => [busy[s], n]);
}

const percentiles = ["p50", "p90", "p99"] as const;
const summaryKey = (p: (typeof percentiles)[number], metric: string) =>
  `${p === "p50" ? "median" : p}_${metric}_ms` as const;

export function htmlReport(runs: readonly BenchRun[], meta: Record<string, unknown>): string {
  const ms = (s: number) => s * 1e3;
  const series = (pick: (r: RequestRecord) => number[]): Series[] =>
    runs.map((run) => ({
      label: run.label,
      points: cdf(run.records.filter((r) => r.success).flatMap(pick)),
    }));
  const bars = (metric: "ttft" | "tpot") =>
    runs.map((run) => ({
      label: run.label,
      values: percentiles.map((p) => run.summary[summaryKey(p, metric) as `median_${typeof metric}_ms`]),
    }));
  const charts = [
    xyChart(
      "TTFT CDF",
      "TTFT (ms)",
      "fraction of requests",
      series((r) => [ms(r.ttft)]),
      "line",
    ),
    xyChart(
      "TPOT CDF",
      "TPOT (ms)",
      "fraction of requests",
      series((r) => {
        const t = tpot(r);
        return t === undefined ? [] : [ms(t)];
      }),
      "line",
    ),
    xyChart(
      "E2E latency CDF",
      "E2E latency (ms)",
      "fraction of requests",
      series((r) => [ms(r.e2e)]),
      "line",
    ),
    xyChart(
      "Throughput vs concurrency (one point per second)",
      "requests in flight",
      "output tokens/s",
      runs.map((run) => ({ label: run.label, points: throughputVsConcurrency(run.records) })),
      "points",
    ),
    groupedBars("TTFT percentiles", "ms", ["P50", "P90", "P99"], bars("ttft")),
    groupedBars("TPOT percentiles", "ms", ["P50", "P90", "P99"], bars("tpot")),
  ];
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const text = runs.length > 1 ? formatComparison(runs) : formatSummary(runs[0].summary);
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>vellum bench serve</title>
<style>body{font-family:sans-serif;margin:24px}pre{background:#f6f6f6;padding:12px}.charts{display:flex;flex-wrap:wrap;gap:16px}</style>
</head><body>
<h1>vellum bench serve</h1>
<pre>${esc(JSON.stringify(meta, null, 1))}</pre>
<pre>${esc(text)}</pre>
<div class="charts">${charts.join("\n")}</div>
</body></html>
`;
}

/** Writes the report; with png, renders it through Chromium and returns the PNG's path. */
export async function writeHtmlReport(
  path: string,
  runs: readonly BenchRun[],
  meta: Record<string, unknown>,
  png: boolean,
): Promise<string | undefined> {
  writeFileSync(path, htmlReport(runs, meta));
  if (!png) return undefined;
  const chromium = ["chromium", "chromium-browser", "google-chrome"]
    .flatMap((name) => (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, name)))
    .find((candidate) => existsSync(candidate));
  if (!chromium)
    throw new InputError(
      `--png: no Chromium on PATH (Debian: apt install chromium); the HTML report is at ${path}`,
    );
  const out = `${path.replace(/\.html?$/i, "")}.png`;
  execFileSync(
    chromium,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      `--screenshot=${resolve(out)}`,
      "--window-size=1200,1500",
      pathToFileURL(resolve(path)).href,
    ],
    { stdio: "ignore" },
  );
  return out;
}
