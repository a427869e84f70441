import { percentile } from "../../workload/metrics.js";
import type { Outcome } from "./traffic.js";

/** The soak's result, as printed and as written with --out. Bytes and milliseconds. */
export interface SoakReport {
  date: string;
  model: string;
  seconds: number;
  concurrency: number;
  seed: number;
  requests: {
    total: number;
    /** Per kind, the count of each status ("failed" when no answer came). */
    byKind: Record<string, Record<string, number>>;
  };
  errors: {
    /** Answers that are not what their kind must get: wrong status or shape, 5xx and failed connections included. */
    unexpected: number;
    serverErrors: number;
    failedConnections: number;
    /** The first few, as "kind status: why". */
    examples: string[];
  };
  /** The server's resident memory (from /proc); null where the system has no /proc. */
  rss: { startBytes: number; endBytes: number; peakBytes: number } | null;
  health: { probes: number; failed: number; p50Ms: number; p99Ms: number; maxMs: number };
  greedy: { prompts: number; identical: boolean; changed: { before: string; after: string }[] };
}

const maxExamples = 10;

/** Counts outcomes as they come, keeping the first few unexpected ones. */
export class OutcomeTally {
  readonly byKind: Record<string, Record<string, number>> = {};
  total = 0;
  unexpected = 0;
  serverErrors = 0;
  failedConnections = 0;
  readonly examples: string[] = [];

  add(o: Outcome): void {
    this.total++;
    this.byKind[o.kind] ??= {};
    const counts = this.byKind[o.kind];
    counts[o.status] = (counts[o.status] ?? 0) + 1;
    if (o.status === "failed") this.failedConnections++;
    else if (o.status >= 500) this.serverErrors++;
    if (o.unexpected === undefined) return;
    this.unexpected++;
    if (this.examples.length < maxExamples) this.examples.push(`${o.kind} ${o.status}: ${o.unexpected}`);
  }
}

/** /health latencies (ms) and failures. */
export function healthSummary(latencies: readonly number[], failed: number): SoakReport["health"] {
  return {
    probes: latencies.length + failed,
    failed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length === 0 ? 0 : Math.max(...latencies),
  };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const ms = (v: number) => `${v.toFixed(1)} ms`;

export function formatSoakReport(r: SoakReport): string {
  const lines = [
    `soak: ${r.seconds.toFixed(0)} s of mixed traffic against ${r.model}, ${r.concurrency} clients, seed ${r.seed}`,
    `requests: ${r.requests.total} (${(r.requests.total / r.seconds).toFixed(1)}/s)`,
    ...Object.entries(r.requests.byKind)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(
        ([kind, counts]) =>
          `  ${kind.padEnd(18)} ${Object.entries(counts)
            .map(([status, n]) => `${status} ×${n}`)
            .join(", ")}`,
      ),
    `errors: ${r.errors.unexpected} unexpected answers (${r.errors.serverErrors} 5xx, ${r.errors.failedConnections} failed connections)`,
    ...r.errors.examples.map((e) => `  ${e}`),
    r.rss
      ? `server RSS: ${mib(r.rss.startBytes)} at start, ${mib(r.rss.endBytes)} at end (peak ${mib(r.rss.peakBytes)})`
      : "server RSS: unavailable (no /proc on this system)",
    `/health: ${r.health.probes} probes, p50 ${ms(r.health.p50Ms)}, p99 ${ms(r.health.p99Ms)}, max ${ms(r.health.maxMs)}, ${r.health.failed} failed`,
    `greedy outputs of ${r.greedy.prompts} prompts: ${r.greedy.identical ? "identical from start to end" : `${r.greedy.changed.length} changed`}`,
    ...r.greedy.changed.map((c) => `  ${JSON.stringify(c.before)} -> ${JSON.stringify(c.after)}`),
  ];
  return lines.join("\n");
}
