import { percentile, tpot } from "../workload/metrics.js";
import type { FleetResult } from "./fleet.js";

/** One fleet run's figures: what the routing table shows. Latencies in ms. */
export interface FleetRow {
  router: string;
  /** ms; Infinity: scraped once, at the start. */
  scrapeIntervalMs: number;
  completed: number;
  failed: number;
  requestThroughput: number;
  outputThroughput: number;
  ttft: { p50: number; p90: number; p99: number };
  tpot: { p50: number; p90: number; p99: number };
  /** Prompt tokens found in a replica's prefix cache ÷ prompt tokens, over first admissions. */
  prefixHitRate: number;
  /** Busiest replica ÷ mean, by requests and by tokens (prompt + output). 1 is perfect balance. */
  requestImbalance: number;
  tokenImbalance: number;
  preemptions: number;
}

export function fleetRow(router: string, scrapeIntervalMs: number, run: FleetResult): FleetRow {
  const ok = run.records.filter((r) => r.success);
  const percentiles = (ms: number[]) => ({
    p50: percentile(ms, 50),
    p90: percentile(ms, 90),
    p99: percentile(ms, 99),
  });
  const sum = (f: (r: FleetResult["replicas"][number]) => number) =>
    run.replicas.reduce((a, r) => a + f(r), 0);
  const imbalance = (f: (r: FleetResult["replicas"][number]) => number) => {
    const mean = sum(f) / run.replicas.length;
    return mean === 0 ? 1 : Math.max(...run.replicas.map(f)) / mean;
  };
  const queries = sum((r) => r.prefixCache.queries);
  return {
    router,
    scrapeIntervalMs,
    completed: ok.length,
    failed: run.records.length - ok.length,
    requestThroughput: ok.length / run.duration,
    outputThroughput: ok.reduce((a, r) => a + r.outputTokens, 0) / run.duration,
    ttft: percentiles(ok.map((r) => r.ttft * 1e3)),
    tpot: percentiles(ok.flatMap((r) => (r.outputTokens > 1 ? [(tpot(r) as number) * 1e3] : []))),
    prefixHitRate: queries === 0 ? 0 : sum((r) => r.prefixCache.hits) / queries,
    requestImbalance: imbalance((r) => r.requests),
    tokenImbalance: imbalance((r) => r.tokens),
    preemptions: sum((r) => r.preemptions),
  };
}

const fixed = (digits: number) => (x: number) => x.toFixed(digits);
const columns: [string, (r: FleetRow) => string][] = [
  ["router", (r) => r.router],
  [
    "scrape ms",
    (r) =>
      r.router === "round-robin"
        ? "-"
        : Number.isFinite(r.scrapeIntervalMs)
          ? String(r.scrapeIntervalMs)
          : "inf",
  ],
  ["req/s", (r) => fixed(2)(r.requestThroughput)],
  ["out tok/s", (r) => Math.round(r.outputThroughput).toLocaleString("en-US")],
  ["TTFT p50/p90/p99 ms", (r) => [r.ttft.p50, r.ttft.p90, r.ttft.p99].map(fixed(0)).join(" / ")],
  ["TPOT p50/p90/p99 ms", (r) => [r.tpot.p50, r.tpot.p90, r.tpot.p99].map(fixed(1)).join(" / ")],
  ["prefix hits", (r) => `${(r.prefixHitRate * 100).toFixed(1)}%`],
  ["max/mean req", (r) => fixed(2)(r.requestImbalance)],
  ["max/mean tok", (r) => fixed(2)(r.tokenImbalance)],
  ["preempt", (r) => String(r.preemptions)],
  ["failed", (r) => String(r.failed)],
];

/** The routing table: one row per run, columns aligned as `vellum plan` aligns its table. */
export function formatFleet(title: string, rows: readonly FleetRow[]): string {
  const cells = [columns.map(([name]) => name), ...rows.map((r) => columns.map(([, cell]) => cell(r)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((x, i) => (i < 2 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  ");
  return [title, "", ...cells.map(line)].join("\n");
}
