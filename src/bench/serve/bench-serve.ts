import type { Variant } from "../../workload/compare.js";
import { type BenchSummary, type RequestRecord, summarize } from "../../workload/metrics.js";
import { checkServer, normalizeBaseUrl, type Target } from "../../workload/openai-client.js";
import type { Workload } from "../../workload/workload.js";
import { runLoad } from "./load-generator.js";
import { type ServerLaunch, startServer } from "./start-server.js";

export interface BenchTarget {
  baseUrl: string;
  endpoint: Target["endpoint"];
  /** Default: the first model the server lists. */
  model?: string;
  apiKey?: string;
  ignoreEos: boolean;
}

export interface BenchRun {
  label: string;
  model: string;
  summary: BenchSummary;
  records: RequestRecord[];
}

/** Checks the server, sends the workload and summarizes it. */
export async function benchServe(
  t: BenchTarget,
  workload: Workload,
  label = "measured",
  progress?: boolean,
): Promise<BenchRun> {
  const baseUrl = normalizeBaseUrl(t.baseUrl);
  const ids = await checkServer(baseUrl, t.apiKey);
  const model = t.model ?? ids[0];
  const target: Target = { baseUrl, endpoint: t.endpoint, model, apiKey: t.apiKey, ignoreEos: t.ignoreEos };
  const { records, duration } = await runLoad(target, workload, progress);
  return { label, model, summary: summarize(records, duration, workload.slo), records };
}

/** The same workload against one vellum server per variant, each started here and stopped after its run. */
export async function benchCompare(
  launch: Omit<ServerLaunch, "settings">,
  variants: readonly Variant[],
  t: Omit<BenchTarget, "baseUrl" | "model" | "apiKey">,
  workload: Workload,
  progress?: boolean,
): Promise<BenchRun[]> {
  const runs: BenchRun[] = [];
  for (const variant of variants) {
    const server = await startServer({ ...launch, settings: variant.settings });
    try {
      runs.push(await benchServe({ ...t, baseUrl: server.baseUrl }, workload, variant.label, progress));
    } finally {
      await server.stop();
    }
  }
  return runs;
}
