import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { startServer, type TestServer } from "../server-helpers.js";

const folder = join(import.meta.dirname, "..", "..", "deploy", "observability");

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
  /** Variables; those of type "query" hold PromQL (Grafana's label_values). */
  templating: { list: { type: string; query?: { query: string } }[] };
}

/** PromQL's functions, aggregations and the label names in `by (…)` that the dashboard's queries use. */
const promqlWords = new Set(["histogram_quantile", "sum", "by", "rate", "increase", "le", "finished_reason"]);

/**
 * The metric names one PromQL expression (or Grafana `label_values(metric, label)` query) reads. Label matchers,
 * ranges and strings are cut out first; every identifier left is either PromQL's own word or a metric name.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/"[^"]*"/g, " ")
    .replace(/label_values\(([^,)]+),\s*\w+\)/, "$1");
  const identifiers = bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return identifiers.filter((word) => !promqlWords.has(word));
}

/** Names of the samples a /metrics text holds (a histogram's _bucket, _sum and _count included). */
function exportedNames(text: string): Set<string> {
  return new Set(
    text
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => /^[^{ ]+/.exec(line)?.[0] ?? ""),
  );
}

describe("the Grafana dashboard and Prometheus config in deploy/observability", () => {
  const dashboard: Dashboard = JSON.parse(readFileSync(join(folder, "grafana-dashboard.json"), "utf8"));
  const model = loadModel(bundledModelPath);
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo" });
  });
  afterAll(() => s.close(1000));

  test("every metric the dashboard queries is exported by a running server", async () => {
    // One finished request, so that labeled counters (finish reasons) have a sample.
    await s.client.completions.create({ model: "demo", prompt: "In the beginning", max_tokens: 4 });
    const exported = exportedNames(await (await fetch(`${s.url}/metrics`)).text());
    const queries = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
      ...dashboard.templating.list.flatMap((v) => (v.type === "query" && v.query ? [v.query.query] : [])),
    ];
    const used = new Set(queries.flatMap(metricNames));
    expect(used.size).toBeGreaterThan(15);
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
  });

  test("vLLM's panels plus prefix-cache hit rate and preemptions, each query scoped to the chosen model", () => {
    const titles = dashboard.panels.map((p) => p.title);
    for (const title of [
      "E2E Request Latency",
      "Token Throughput",
      "Time Per Output Token Latency",
      "Scheduler State",
      "Time To First Token Latency",
      "Cache Utilization",
      "Request Prompt Length",
      "Request Generation Length",
      "Finish Reason",
      "Queue Time",
      "Requests Prefill and Decode Time",
      "Max Generation Token in Sequence Group",
      "Prefix Cache Hit Rate",
      "Preemptions",
    ]) {
      expect(titles).toContain(title);
    }
    for (const { expr } of dashboard.panels.flatMap((p) => p.targets)) {
      for (const selector of expr.match(/[a-z_:]+\{[^}]*\}/g) ?? []) {
        expect(selector).toContain('model_name="$model_name"');
      }
    }
  });

  test("the Prometheus config scrapes /metrics of vellum serve's default address", () => {
    const config = parse(readFileSync(join(folder, "prometheus.yaml"), "utf8"));
    const [job] = config.scrape_configs;
    expect(job.metrics_path).toBe("/metrics");
    expect(job.static_configs[0].targets).toEqual(["127.0.0.1:8000"]);
  });
});
