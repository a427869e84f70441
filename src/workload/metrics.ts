/**
 * Benchmark metrics with vLLM's `bench serve` definitions, so results compare with vLLM's and llama.cpp's:
 * TTFT = send → first streamed chunk; ITL = every gap between consecutive chunks (usually one token each;
 * a server may merge tokens into one chunk); E2E latency = send → last chunk;
 * TPOT = (E2E − TTFT) / (output tokens − 1), only for requests with more than one output token.
 * Percentiles interpolate linearly between order statistics (numpy's default).
 */

import { InputError } from "../model/errors.js";

/** One request as the client saw it. Times in seconds. */
export interface RequestRecord {
  success: boolean;
  error?: string;
  promptTokens: number;
  outputTokens: number;
  /** When the request was sent, from the benchmark's start. */
  sendTime: number;
  ttft: number;
  /** Gaps between consecutive streamed chunks. */
  itl: number[];
  e2e: number;
}

/** Service-level objectives in milliseconds, for goodput. */
export interface Slo {
  ttft?: number;
  tpot?: number;
  e2el?: number;
}

export const latencyMetrics = ["ttft", "tpot", "itl", "e2el"] as const;
export type LatencyMetric = (typeof latencyMetrics)[number];
type LatencyKey = `${"mean" | "median" | "std" | "p90" | "p99"}_${LatencyMetric}_ms`;

/** The summary, with vLLM's result-JSON key names. Latencies in ms. */
export type BenchSummary = {
  completed: number;
  failed: number;
  duration: number;
  total_input_tokens: number;
  total_output_tokens: number;
  request_throughput: number;
  request_goodput: number | null;
  output_throughput: number;
  total_token_throughput: number;
} & Record<LatencyKey, number>;

/** numpy.percentile with linear interpolation: rank p/100 × (n − 1) between the sorted values. 0 for no data. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Population standard deviation (numpy's default). */
export function std(values: readonly number[]): number {
  const m = mean(values);
  return Math.sqrt(mean(values.map((v) => (v - m) ** 2)));
}

/** TPOT of one request, or undefined when it produced at most one token. */
export function tpot(r: RequestRecord): number | undefined {
  return r.outputTokens > 1 ? (r.e2e - r.ttft) / (r.outputTokens - 1) : undefined;
}

/** Whether a successful request met every objective; TPOT counts as 0 for single-token outputs. */
export function meetsSlo(r: RequestRecord, slo: Slo): boolean {
  const ms = (s: number) => s * 1e3;
  return (
    r.success &&
    (slo.ttft === undefined || ms(r.ttft) <= slo.ttft) &&
    (slo.tpot === undefined || ms(tpot(r) ?? 0) <= slo.tpot) &&
    (slo.e2el === undefined || ms(r.e2e) <= slo.e2el)
  );
}

/** Summarizes a run that took `duration` seconds. Failed requests count in `failed` and nowhere else. */
export function summarize(records: readonly RequestRecord[], duration: number, slo?: Slo): BenchSummary {
  const ok = records.filter((r) => r.success);
  const inputTokens = ok.reduce((a, r) => a + r.promptTokens, 0);
  const outputTokens = ok.reduce((a, r) => a + r.outputTokens, 0);
  const samples: Record<LatencyMetric, number[]> = {
    ttft: ok.map((r) => r.ttft * 1e3),
    tpot: ok.flatMap((r) => {
      const t = tpot(r);
      return t === undefined ? [] : [t * 1e3];
    }),
    itl: ok.flatMap((r) => r.itl.map((g) => g * 1e3)),
    e2el: ok.map((r) => r.e2e * 1e3),
  };
  const summary = {
    completed: ok.length,
    failed: records.length - ok.length,
    duration,
    total_input_tokens: inputTokens,
    total_output_tokens: outputTokens,
    request_throughput: ok.length / duration,
    request_goodput: slo ? ok.filter((r) => meetsSlo(r, slo)).length / duration : null,
    output_throughput: outputTokens / duration,
    total_token_throughput: (inputTokens + outputTokens) / duration,
  } as BenchSummary;
  for (const m of latencyMetrics) {
    const v = samples[m];
    summary[`mean_${m}_ms`] = mean(v);
    summary[`median_${m}_ms`] = percentile(v, 50);
    summary[`std_${m}_ms`] = std(v);
    summary[`p90_${m}_ms`] = percentile(v, 90);
    summary[`p99_${m}_ms`] = percentile(v, 99);
  }
  return summary;
}

/** Parses `--goodput ttft:500 tpot:50 e2el:2000` (milliseconds). */
export function parseSlo(parts: readonly string[]): Slo {
  const slo: Slo = {};
  for (const part of parts) {
    const m = /^(ttft|tpot|e2el):(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m) throw new InputError(`--goodput: "${part}" is not METRIC:MS with METRIC one of ttft, tpot, e2el`);
    slo[m[1] as keyof Slo] = Number(m[2]);
  }
  return slo;
}
