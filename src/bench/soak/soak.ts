import { readFileSync } from "node:fs";
import type { BackendName } from "../../backend/native/choose-backend.js";
import { defaultServeSettings } from "../../workload/compare.js";
import { checkServer } from "../../workload/openai-client.js";
import { WorkloadRandom } from "../../workload/random.js";
import { startServer } from "../serve/start-server.js";
import { healthSummary, OutcomeTally, type SoakReport } from "./report.js";
import { drawKind, greedyOutputs } from "./traffic.js";

export interface SoakOptions {
  modelPath: string;
  tokenizer?: string;
  backend?: BackendName;
  /** How long the traffic runs. */
  seconds: number;
  /** Clients sending at once, each one request after the other. */
  concurrency: number;
  /** At most this many requests in all, even if time remains. */
  maxRequests: number;
  seed: number;
}

/** One request may take this long before it counts as a failed connection. */
const requestTimeoutMs = 60_000;
const healthPeriodMs = 100;
const healthTimeoutMs = 5_000;

/**
 * Starts a vellum server on 127.0.0.1, runs mixed traffic against it for the given time while probing
 * /health every 100 ms, and reports what every request got, the server's memory at start and end, and
 * whether greedy outputs of fixed prompts stayed the same.
 */
export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const server = await startServer({
    modelPath: opts.modelPath,
    tokenizer: opts.tokenizer,
    backend: opts.backend,
    settings: defaultServeSettings,
  });
  try {
    const [model] = await checkServer(server.baseUrl);
    const greedyBefore = await greedyOutputs(server.baseUrl);
    const rssStart = residentBytes(server.pid);

    const started = performance.now();
    const deadline = started + opts.seconds * 1000;
    const tally = new OutcomeTally();
    let stopProbing = false;
    const health = probeHealth(server.baseUrl, () => stopProbing);
    let issued = 0;
    const client = async (index: number) => {
      const rnd = new WorkloadRandom(opts.seed * 1000 + index);
      while (performance.now() < deadline && issued < opts.maxRequests) {
        issued++;
        const kind = drawKind(rnd);
        tally.add(
          await kind.send(server.baseUrl, rnd, AbortSignal.timeout(requestTimeoutMs)).catch((err: Error) => ({
            kind: kind.name,
            status: "failed" as const,
            unexpected: (err.cause as Error | undefined)?.message ?? err.message,
          })),
        );
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, (_, i) => client(i)));
    const seconds = (performance.now() - started) / 1000;
    stopProbing = true;
    const { latencies, failed } = await health;

    const greedyAfter = await greedyOutputs(server.baseUrl);
    const rssEnd = residentBytes(server.pid);
    const changed = greedyBefore
      .map((before, i) => ({ before, after: greedyAfter[i] }))
      .filter((c) => c.before !== c.after);
    return {
      date: new Date().toISOString(),
      model,
      seconds,
      concurrency: opts.concurrency,
      seed: opts.seed,
      requests: { total: tally.total, byKind: tally.byKind },
      errors: {
        unexpected: tally.unexpected,
        serverErrors: tally.serverErrors,
        failedConnections: tally.failedConnections,
        examples: tally.examples,
      },
      rss:
        rssStart && rssEnd
          ? { startBytes: rssStart.rss, endBytes: rssEnd.rss, peakBytes: rssEnd.peak }
          : null,
      health: healthSummary(latencies, failed),
      greedy: { prompts: greedyBefore.length, identical: changed.length === 0, changed },
    };
  } finally {
    await server.stop();
  }
}

/** GET /health every 100 ms until `stopped()`: the latency of each answer, and how many got none or not 200. */
async function probeHealth(baseUrl: string, stopped: () => boolean) {
  const latencies: number[] = [];
  let failed = 0;
  while (!stopped()) {
    const t0 = performance.now();
    const ok = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(healthTimeoutMs) }).then(
      async (r) => {
        await r.arrayBuffer();
        return r.status === 200;
      },
      () => false,
    );
    const elapsed = performance.now() - t0;
    if (ok) latencies.push(elapsed);
    else failed++;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, healthPeriodMs - elapsed)));
  }
  return { latencies, failed };
}

/** The process's resident set and its peak, in bytes, from /proc; undefined where there is no /proc. */
function residentBytes(pid: number): { rss: number; peak: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}
