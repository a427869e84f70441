import type { PrefixCacheStats } from "../core/kv-cache-manager.js";
import type { SchedulerOutput } from "../core/scheduler-output.js";
import type { EngineConfig } from "../engine/engine-config.js";
import type { WorkloadPrompt } from "../workload/dataset.js";
import type { RequestRecord } from "../workload/metrics.js";
import { WorkloadRandom } from "../workload/random.js";
import { BlockIndex, type KvEvents, KvEventTap } from "./kv-events.js";
import { type FleetView, makeRouter, type RouterName } from "./routers.js";
import {
  type SimulationInput,
  type SimulationPause,
  type SimulationResult,
  simulation,
} from "./simulator.js";

export interface FleetInput {
  prompts: readonly WorkloadPrompt[];
  /** Send time of each prompt, seconds from the start, ascending. */
  sendTimes: readonly number[];
  replicas: number;
  router: RouterName;
  /**
   * Seconds between the router's scrapes of the replicas' metrics, which also deliver the KV events published
   * since the last one: 0 reads them live at every request, Infinity only once, at the start.
   */
  scrapeInterval: number;
  /** Every replica's engine and step time (replicas are alike). */
  engine: EngineConfig;
  stepTime: (output: SchedulerOutput) => number;
  /** Seeds the router's tie-breaks; replica r samples with seed + r. */
  seed: number;
}

export interface ReplicaSummary {
  requests: number;
  /** Prompt and output tokens of its requests. */
  tokens: number;
  steps: number;
  preemptions: number;
  prefixCache: PrefixCacheStats;
}

export interface FleetResult {
  /** Per request, in the input's order. */
  records: RequestRecord[];
  /** The replica each request went to. */
  replicaOf: number[];
  replicas: ReplicaSummary[];
  /** Virtual seconds from the start to the last finish. */
  duration: number;
}

/** One replica: a single-engine simulation that the router feeds request by request. */
class Replica {
  readonly prompts: WorkloadPrompt[] = [];
  readonly sendTimes: number[] = [];
  /** Input index of each of its prompts. */
  readonly inputIndex: number[] = [];
  /** KV events published and not yet delivered to the router, with the time of the step that published them. */
  readonly undelivered: { time: number; events: KvEvents }[] = [];
  private readonly run: Generator<SimulationPause, SimulationResult>;
  private tap?: KvEventTap;
  pause: SimulationPause;

  constructor(input: Pick<SimulationInput, "engine" | "stepTime" | "seed">, isOpen: () => boolean) {
    this.run = simulation({
      ...input,
      prompts: this.prompts,
      sendTimes: this.sendTimes,
      maxConcurrency: Number.POSITIVE_INFINITY,
      morePrompts: isOpen,
    });
    this.pause = this.resume() as SimulationPause;
  }

  /** When its next step starts: now if it has work, at its next prompt's send time if idle, else never. */
  get readyTime(): number {
    const p = this.pause;
    if (p.scheduler.hasUnfinishedRequests) return p.now;
    return p.admitted < this.prompts.length
      ? Math.max(p.now, this.sendTimes[p.admitted])
      : Number.POSITIVE_INFINITY;
  }

  /** Waiting requests, counting those routed here but not yet taken in (they arrived during its current step). */
  get waiting(): number {
    return this.pause.scheduler.stats().numWaiting + this.prompts.length - this.pause.admitted;
  }

  add(index: number, prompt: WorkloadPrompt, sendTime: number): void {
    this.prompts.push(prompt);
    this.sendTimes.push(sendTime);
    this.inputIndex.push(index);
  }

  step(): void {
    this.pause = this.resume() as SimulationPause;
    const output = this.pause.output;
    if (!output) return;
    this.tap ??= new KvEventTap(this.pause.kvCacheManager.blockPool, this.pause.kvCacheManager.blockSize);
    const events = this.tap.afterStep(output);
    if (events.stored.length + events.removed.length > 0)
      this.undelivered.push({ time: this.pause.now, events });
  }

  /** Delivers the KV events it published up to `time` to the router's index, as replica `replica`. */
  deliverEvents(time: number, index: BlockIndex, replica: number): void {
    let n = 0;
    for (; n < this.undelivered.length && this.undelivered[n].time <= time; n++)
      index.apply(replica, this.undelivered[n].events);
    this.undelivered.splice(0, n);
  }

  /** Ends the simulation once no more prompts can come. */
  finish(): SimulationResult {
    const last = this.resume();
    if (!("records" in last)) throw new Error("fleet: a replica went on after its last prompt");
    return last;
  }

  private resume(): SimulationPause | SimulationResult {
    return this.run.next().value;
  }
}

/**
 * N replicas of one engine on a shared virtual clock, each the single-engine simulator with vellum's real
 * Scheduler and KVCacheManager, behind a router that sees only what an endpoint picker sees: metrics scraped
 * every scrapeInterval and KV events delivered with them. Events run in time order; at one instant a scrape comes
 * before an arrival and an arrival before a step, as the single-engine simulator takes in every request sent by
 * the time a step starts. A replica's metrics are read between its steps: one in the middle of a step shows the
 * state at that step's end.
 */
export function simulateFleet(input: FleetInput): FleetResult {
  if (!(Number.isInteger(input.replicas) && input.replicas >= 1))
    throw new RangeError(`simulateFleet: replicas must be a positive integer, got ${input.replicas}`);
  if (!(input.scrapeInterval >= 0))
    throw new RangeError(`simulateFleet: scrapeInterval must be at least 0, got ${input.scrapeInterval}`);
  const router = makeRouter(input.router, new WorkloadRandom(input.seed), input.engine.blockSize);
  let open = true;
  const replicas = Array.from(
    { length: input.replicas },
    (_, r) =>
      new Replica({ engine: input.engine, stepTime: input.stepTime, seed: input.seed + r }, () => open),
  );
  const blocks = new BlockIndex();
  let view: FleetView = { replicas: replicas.map(() => ({ waiting: 0, kvUsage: 0 })), blocks };
  const scrape = (time: number) => {
    replicas.forEach((r, i) => {
      r.deliverEvents(time, blocks, i);
    });
    view = {
      replicas: replicas.map((r) => ({ waiting: r.waiting, kvUsage: r.pause.kvCacheManager.usage })),
      blocks,
    };
  };
  const replicaOf: number[] = [];
  const interval = input.scrapeInterval;
  let nextScrape = 0;
  let nextArrival = 0;
  for (;;) {
    const arrival =
      nextArrival < input.prompts.length ? input.sendTimes[nextArrival] : Number.POSITIVE_INFINITY;
    let first = replicas[0];
    for (const r of replicas) if (r.readyTime < first.readyTime) first = r;
    const event = Math.min(arrival, first.readyTime);
    if (event === Number.POSITIVE_INFINITY) break;
    if (interval === 0 && arrival <= first.readyTime) scrape(arrival);
    else if (interval > 0 && nextScrape <= event) {
      // The metrics do not change between events: of the scrapes due by now, the last one sees what all would.
      const periods = Number.isFinite(interval) ? Math.floor((event - nextScrape) / interval) : 0;
      const time = nextScrape + periods * interval;
      scrape(time);
      nextScrape = time + interval;
    }
    if (arrival <= first.readyTime) {
      const prompt = input.prompts[nextArrival];
      const chosen = router.choose(prompt.promptTokenIds, view);
      replicas[chosen].add(nextArrival, prompt, arrival);
      replicaOf.push(chosen);
      nextArrival++;
    } else {
      first.step();
    }
  }
  open = false;
  const records: RequestRecord[] = new Array(input.prompts.length);
  let duration = 0;
  const summaries = replicas.map((r): ReplicaSummary => {
    const result = r.finish();
    result.records.forEach((record, i) => {
      records[r.inputIndex[i]] = record;
    });
    duration = Math.max(duration, result.duration);
    return {
      requests: r.prompts.length,
      tokens: result.records.reduce((a, x) => a + x.promptTokens + x.outputTokens, 0),
      steps: result.steps,
      preemptions: result.preemptions,
      prefixCache: r.pause.kvCacheManager.prefixCacheStats,
    };
  });
  return { records, replicaOf, replicas: summaries, duration };
}
