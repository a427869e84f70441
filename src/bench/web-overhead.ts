import type { Workload } from "../workload/workload.js";
import { benchServe } from "./serve/bench-serve.js";

export interface OverheadRun {
  watched: boolean;
  /** Output tokens per second of the run. */
  throughput: number;
  /** Engine snapshots the subscriber read during a watched run. */
  snapshots: number;
  seconds: number;
}

export interface OverheadReport {
  runs: OverheadRun[];
  /** Median throughput watched ÷ median unwatched. */
  ratio: number;
}

/**
 * Reads /v1/engine/events as the web page does (every snapshot parsed) until stopped; stop() resolves with the
 * number of snapshots read. Stopping cancels the body's reader, which ends the request at once.
 */
function watchEngine(baseUrl: string): { stop(): Promise<number> } {
  const reader = fetch(`${baseUrl}/v1/engine/events`).then((response) => {
    if (!response.ok || response.body === null)
      throw new Error(`GET /v1/engine/events: HTTP ${response.status}`);
    return response.body.pipeThrough(new TextDecoderStream()).getReader();
  });
  const reading = reader.then(async (events) => {
    let snapshots = 0;
    let buffer = "";
    for (let chunk = await events.read(); !chunk.done; chunk = await events.read()) {
      const complete = (buffer + chunk.value).split("\n\n");
      buffer = complete.pop() ?? "";
      for (const event of complete) JSON.parse(event.slice("data: ".length));
      snapshots += complete.length;
    }
    return snapshots;
  });
  return {
    async stop() {
      await (await reader).cancel();
      return reading;
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * What an open web page costs the engine: the same workload against the server at `baseUrl`, alternately with no
 * subscriber and with one reading the engine-snapshot stream, `rounds` pairs in ABBA order (so that a drift in the
 * machine's speed falls on both sides), after one unmeasured warm-up run.
 */
export async function benchWebOverhead(
  baseUrl: string,
  workload: Workload,
  rounds: number,
  log: (line: string) => void = () => {},
): Promise<OverheadReport> {
  const target = { baseUrl, endpoint: "completions" as const, ignoreEos: true };
  const runs: OverheadRun[] = [];
  await benchServe(target, workload, "warm-up");
  for (let round = 0; round < rounds; round++) {
    for (const watched of round % 2 === 0 ? [false, true] : [true, false]) {
      const watcher = watched ? watchEngine(baseUrl) : undefined;
      const { summary } = await benchServe(target, workload, watched ? "watched" : "unwatched");
      const run = {
        watched,
        throughput: summary.output_throughput,
        snapshots: (await watcher?.stop()) ?? 0,
        seconds: summary.duration,
      };
      runs.push(run);
      log(
        `${watched ? "one subscriber" : "no subscriber "}  ${run.throughput.toFixed(1)} output tokens/s` +
          (watched ? `  (${run.snapshots} snapshots in ${run.seconds.toFixed(1)} s)` : ""),
      );
    }
  }
  const throughputs = (watched: boolean) =>
    runs.filter((r) => r.watched === watched).map((r) => r.throughput);
  return { runs, ratio: median(throughputs(true)) / median(throughputs(false)) };
}
