import type { BenchSummary, LatencyMetric } from "../../workload/metrics.js";

const titles: Record<LatencyMetric, [string, string]> = {
  ttft: ["Time to First Token", "TTFT"],
  tpot: ["Time per Output Token (excl. 1st token)", "TPOT"],
  itl: ["Inter-token Latency", "ITL"],
  e2el: ["End-to-end Latency", "E2EL"],
};

const width = 50;
const line = (label: string, value: string | number) =>
  `${label.padEnd(width - 10)}${String(value).padStart(10)}`;
const heading = (title: string, fill: string) => {
  const left = Math.floor((width - title.length) / 2);
  return `${fill.repeat(Math.max(left, 0))}${title}${fill.repeat(Math.max(width - left - title.length, 0))}`;
};

/** The summary in vLLM's `bench serve` console layout. */
export function formatSummary(s: BenchSummary, title = "Serving Benchmark Result"): string {
  const lines = [
    heading(` ${title} `, "="),
    line("Successful requests:", s.completed),
    line("Failed requests:", s.failed),
    line("Benchmark duration (s):", s.duration.toFixed(2)),
    line("Total input tokens:", s.total_input_tokens),
    line("Total generated tokens:", s.total_output_tokens),
    line("Request throughput (req/s):", s.request_throughput.toFixed(2)),
  ];
  if (s.request_goodput !== null) lines.push(line("Request goodput (req/s):", s.request_goodput.toFixed(2)));
  lines.push(
    line("Output token throughput (tok/s):", s.output_throughput.toFixed(2)),
    line("Total token throughput (tok/s):", s.total_token_throughput.toFixed(2)),
  );
  for (const [metric, [long, short]] of Object.entries(titles) as [LatencyMetric, [string, string]][]) {
    lines.push(
      heading(long, "-"),
      line(`Mean ${short} (ms):`, s[`mean_${metric}_ms`].toFixed(2)),
      line(`Median ${short} (ms):`, s[`median_${metric}_ms`].toFixed(2)),
      line(`P90 ${short} (ms):`, s[`p90_${metric}_ms`].toFixed(2)),
      line(`P99 ${short} (ms):`, s[`p99_${metric}_ms`].toFixed(2)),
    );
  }
  lines.push("=".repeat(width));
  return lines.join("\n");
}
