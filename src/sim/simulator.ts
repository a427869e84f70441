import { KVCacheManager } from "../core/kv-cache-manager.js";
import { isFinished, Request } from "../core/request.js";
import { samplingParams } from "../core/sampling-params.js";
import { AdmissionError, Scheduler } from "../core/scheduler.js";
import type { SchedulerOutput } from "../core/scheduler-output.js";
import type { EngineConfig } from "../engine/engine-config.js";
import { requestMetrics } from "../engine/stats.js";
import type { WorkloadPrompt } from "../workload/dataset.js";
import type { RequestRecord } from "../workload/metrics.js";
import { WorkloadRandom } from "../workload/random.js";

export interface SimulationInput {
  prompts: readonly WorkloadPrompt[];
  /** Send time of each prompt, seconds from the start, ascending. */
  sendTimes: readonly number[];
  /** Client-side limit on requests in flight (Infinity: none), as `bench serve --max-concurrency`. */
  maxConcurrency: number;
  engine: EngineConfig;
  /** Seconds one step takes. */
  stepTime: (output: SchedulerOutput) => number;
  /** Seeds the sampled token ids (they only matter to prefix-cache hashes of outputs). */
  seed: number;
  /**
   * Whether prompts may still be appended to `prompts` and `sendTimes` once all given ones have finished: the
   * fleet's router appends each request to its replica's input as it arrives (src/sim/fleet.ts). Default: no.
   */
  morePrompts?: () => boolean;
}

/** A simulation between two steps, as `simulation` yields it: read it, never change it. */
export interface SimulationPause {
  /** The virtual time: the end of the step just run. */
  now: number;
  /** Prompts taken from the input so far (admitted or rejected). */
  admitted: number;
  /** The step just run; undefined when the simulation waits for more prompts. */
  output?: SchedulerOutput;
  scheduler: Scheduler;
  kvCacheManager: KVCacheManager;
}

export interface SimulationResult {
  records: RequestRecord[];
  /** Virtual seconds from the start to the last finish. */
  duration: number;
  steps: number;
  preemptions: number;
}

/**
 * Runs a workload through the real Scheduler and KVCacheManager on a virtual clock: each step advances
 * the clock by the cost model's time instead of running a model. Requests generate exactly their output
 * length (as with --ignore-eos). Deterministic: the same input gives the same result.
 */
export function simulate(input: SimulationInput): SimulationResult {
  const steps = simulation(input);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/** `simulate`, pausing after every step (and while it waits for more prompts) so that a fleet can interleave replicas. */
export function* simulation(input: SimulationInput): Generator<SimulationPause, SimulationResult> {
  let now = 0;
  const c = input.engine;
  const kvCacheManager = new KVCacheManager({
    numBlocks: c.numBlocks,
    blockSize: c.blockSize,
    maxModelLen: c.maxModelLen,
    enablePrefixCaching: c.enablePrefixCaching,
    allocation: c.kvAllocation,
    groupWindows: c.kvCacheGroups.map((g) => g.window),
    maxChunkTokens: c.maxNumBatchedTokens,
  });
  const scheduler = new Scheduler(c, kvCacheManager, () => now);
  const tokens = new WorkloadRandom(input.seed);
  const records: RequestRecord[] = new Array(input.prompts.length);
  const indexOf = new Map<string, number>();
  // When each client slot became free; a request goes out at max(its send time, the earliest free slot).
  const freeSlots: number[] = Number.isFinite(input.maxConcurrency)
    ? new Array<number>(input.maxConcurrency).fill(0)
    : [];
  const slotAvailable = () => !Number.isFinite(input.maxConcurrency) || freeSlots.length > 0;
  const releaseSlot = (time: number) => {
    if (Number.isFinite(input.maxConcurrency)) freeSlots.push(time);
  };
  let next = 0;
  let steps = 0;

  for (;;) {
    while (next < input.prompts.length && input.sendTimes[next] <= now && slotAvailable()) {
      const i = next++;
      const prompt = input.prompts[i];
      const request = new Request({
        id: `sim-${i}`,
        promptTokenIds: prompt.promptTokenIds,
        samplingParams: samplingParams({ maxTokens: prompt.outputLen, ignoreEos: true }),
        arrivalTime: Math.max(input.sendTimes[i], freeSlots.shift() ?? 0),
      });
      try {
        scheduler.addRequest(request);
        indexOf.set(request.id, i);
      } catch (err) {
        if (!(err instanceof AdmissionError)) throw err;
        records[i] = failedRecord(prompt, request.timestamps.arrival, err.message);
        releaseSlot(now);
      }
    }
    if (!scheduler.hasUnfinishedRequests) {
      if (next >= input.prompts.length) {
        if (!input.morePrompts?.()) break;
        yield { now, admitted: next, scheduler, kvCacheManager };
        continue;
      }
      now = Math.max(now, input.sendTimes[next]);
      continue;
    }
    const output = scheduler.schedule();
    if (output.numScheduledTokens === 0) {
      throw new Error(
        "simulate: requests are waiting but the scheduler scheduled nothing (KV cache too small?)",
      );
    }
    now += input.stepTime(output);
    steps++;
    const sampled = new Map<string, number>();
    for (const s of output.scheduled) {
      if (!s.samples) continue;
      const reply = input.prompts[indexOf.get(s.request.id) as number].replyTokenIds;
      sampled.set(s.request.id, reply?.[s.request.outputTokenIds.length] ?? tokens.int(3, 30000));
    }
    for (const request of scheduler.updateFromOutput(output, sampled)) {
      if (!isFinished(request.status)) continue;
      records[indexOf.get(request.id) as number] = recordOf(request);
      releaseSlot(now);
    }
    yield { now, admitted: next, output, scheduler, kvCacheManager };
  }
  return { records, duration: now, steps, preemptions: scheduler.stats().numPreemptedTotal };
}

function recordOf(request: Request): RequestRecord {
  const m = requestMetrics(request);
  return {
    success: true,
    promptTokens: m.numPromptTokens,
    outputTokens: m.numGenerationTokens,
    sendTime: request.timestamps.arrival,
    ttft: m.ttft,
    itl: m.interTokenLatencies,
    e2e: m.e2e,
  };
}

function failedRecord(prompt: WorkloadPrompt, sendTime: number, error: string): RequestRecord {
  return {
    success: false,
    error,
    promptTokens: prompt.promptTokenIds.length,
    outputTokens: 0,
    sendTime,
    ttft: 0,
    itl: [],
    e2e: 0,
  };
}
