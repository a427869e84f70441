import cliProgress from "cli-progress";
import type { RequestRecord } from "../../workload/metrics.js";
import { sendRequest, type Target } from "../../workload/openai-client.js";
import type { Workload } from "../../workload/workload.js";

export interface LoadResult {
  records: RequestRecord[];
  /** Seconds from the first send time to the last response's end. */
  duration: number;
}

/**
 * Sends the workload: each request at its send time (and only while fewer than maxConcurrency are in
 * flight), all streamed at once. Shows a progress bar on a terminal.
 */
export async function runLoad(
  target: Target,
  workload: Workload,
  progress = process.stderr.isTTY,
): Promise<LoadResult> {
  const bar = progress
    ? new cliProgress.SingleBar(
        {
          format: "{bar} {value}/{total} requests | {failed} failed | {duration_formatted}",
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let failed = 0;
  bar?.start(workload.prompts.length, 0, { failed });
  const start = performance.now();
  const inFlight = new Set<Promise<void>>();
  const records: RequestRecord[] = new Array(workload.prompts.length);
  for (let i = 0; i < workload.prompts.length; i++) {
    const wait = start + workload.sendTimes[i] * 1000 - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    while (inFlight.size >= workload.maxConcurrency) await Promise.race(inFlight);
    const task = sendRequest(target, workload.prompts[i], start).then((record) => {
      records[i] = record;
      if (!record.success) failed++;
      bar?.increment(1, { failed });
      inFlight.delete(task);
    });
    inFlight.add(task);
  }
  await Promise.all(inFlight);
  const duration = (performance.now() - start) / 1000;
  bar?.stop();
  return { records, duration };
}
