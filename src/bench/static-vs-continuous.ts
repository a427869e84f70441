/**
 * What continuous batching buys: one workload run with `batching: "static"` (a batch takes no new request
 * until all of its requests have finished) and `"continuous"` (requests join and leave at every step), on
 * the reference backend (or `--backend native`). Prints steps, wall time and tokens/s of each and the static/continuous ratios;
 * then the scheduler's own cost per step at 256 running requests (schedule + updateFromOutput, no model).
 *
 *   vellum bench batching --model stories260K.bin --tokenizer tok512.bin [--backend native] [--json out.json]
 *
 * Workload: 48 requests, prompts of 4–120 tokens, 8–128 output tokens (EOS ignored, so every request
 * generates exactly its length in both runs), arrivals a Poisson process of 0.5 requests per step.
 * Greedy sampling, so both runs must generate the same tokens: the bench checks that.
 *
 * Steps are what continuous batching saves: on a backend whose step costs about the same whatever its
 * batch (decode reads every weight once per step), wall time follows steps. The reference backend is not
 * such a backend: it computes token by token, so its step costs in proportion to its tokens, and both
 * modes compute the same tokens; its wall-time ratio is printed for what it is. The native backend is
 * closer to such a backend: its matmuls serve every token of a batch from one pass over the weights.
 */
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { type BackendName, chooseBackend } from "../backend/native/choose-backend.js";
import { kvCacheGroups } from "../core/kv-cache-groups.js";
import { KVCacheManager } from "../core/kv-cache-manager.js";
import { Request } from "../core/request.js";
import { samplingParams } from "../core/sampling-params.js";
import { Scheduler } from "../core/scheduler.js";
import { defaultEngineConfig, type EngineConfig } from "../engine/engine-config.js";
import { EngineCore } from "../engine/engine-core.js";
import { loadModel } from "../model/load.js";
import type { LoadedModel } from "../model/model.js";

const NUM_REQUESTS = 48;
const ARRIVALS_PER_STEP = 0.5;
const MAX_MODEL_LEN = 512;
const BLOCK_SIZE = 16;

interface Job {
  promptTokenIds: number[];
  maxTokens: number;
  arrivalStep: number;
}

interface RunReport {
  batching: EngineConfig["batching"];
  steps: number;
  wallSeconds: number;
  /** CPU time of this process during the run: unlike wall time, not inflated by other processes' load. */
  cpuSeconds: number;
  generatedTokens: number;
  tokensPerSecond: number;
  /** Means over requests, in engine steps and in seconds (an arrival at step s happens when step s starts). */
  meanTtftSteps: number;
  meanE2eSteps: number;
  meanTtftSeconds: number;
  meanE2eSeconds: number;
  outputs: number[][];
}

/** A deterministic stream of numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function makeWorkload(model: LoadedModel): Job[] {
  const rand = lcg(2024);
  const words =
    "once upon a time there was a little girl named lily she loved to play in the park with her big red ball and her dog".split(
      " ",
    );
  let step = 0;
  return Array.from({ length: NUM_REQUESTS }, () => {
    // Exponential gaps between arrivals: a Poisson process, rounded to whole steps.
    step += -Math.log(1 - rand()) / ARRIVALS_PER_STEP;
    const text = Array.from({ length: 200 }, () => words[Math.floor(rand() * words.length)]).join(" ");
    const promptLength = 4 + Math.floor(rand() * 117);
    return {
      promptTokenIds: model.tokenizer.encode(text).slice(0, promptLength),
      maxTokens: 8 + Math.floor(rand() * 121),
      arrivalStep: Math.floor(step),
    };
  });
}

async function runWorkload(
  model: LoadedModel,
  jobs: Job[],
  batching: EngineConfig["batching"],
  backend: BackendName,
): Promise<RunReport> {
  const groups = kvCacheGroups(model.config.layerWindows, true);
  const config: EngineConfig = {
    ...defaultEngineConfig,
    batching,
    maxModelLen: MAX_MODEL_LEN,
    maxNumSeqs: 16,
    maxNumBatchedTokens: 256,
    // Room for 16 sequences at full length in every group, and the null block: nothing is preempted, so the
    // runs differ only in batching.
    numBlocks: 1 + 16 * groups.length * Math.ceil(MAX_MODEL_LEN / BLOCK_SIZE),
    kvCacheGroups: groups,
  };
  let step = 0;
  const core = new EngineCore(
    await chooseBackend(model, { name: backend }),
    model.config.vocabSize,
    config,
    () => step,
  );
  const requests = jobs.map(
    (job, i) =>
      new Request({
        id: `r${i}`,
        promptTokenIds: job.promptTokenIds,
        samplingParams: samplingParams({ temperature: 0, maxTokens: job.maxTokens, ignoreEos: true }),
        arrivalTime: job.arrivalStep,
        eosTokenIds: model.tokenizer.stopIds,
      }),
  );
  let next = 0;
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  // stepStart[k]: seconds from the start of the run to the start of step k.
  const stepStart = [0];
  while (next < jobs.length || core.hasUnfinishedRequests) {
    while (next < jobs.length && jobs[next].arrivalStep <= step) core.addRequest(requests[next++]);
    await core.step();
    step++;
    stepStart.push((performance.now() - started) / 1000);
  }
  const wallSeconds = stepStart[step];
  const cpu = process.cpuUsage(cpuStarted);
  // A request's token sampled in step k (clock = k) is out when step k ends.
  const seconds = (event: number | undefined, arrival: number) =>
    stepStart[(event ?? 0) + 1] - stepStart[arrival];
  const generatedTokens = requests.reduce((sum, r) => sum + r.outputTokenIds.length, 0);
  const mean = (f: (r: Request) => number) => requests.reduce((sum, r) => sum + f(r), 0) / requests.length;
  return {
    batching,
    steps: step,
    wallSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    generatedTokens,
    tokensPerSecond: generatedTokens / wallSeconds,
    meanTtftSteps: mean((r) => (r.timestamps.firstToken ?? 0) - r.timestamps.arrival),
    meanE2eSteps: mean((r) => (r.timestamps.finished ?? 0) - r.timestamps.arrival),
    meanTtftSeconds: mean((r) => seconds(r.timestamps.firstToken, r.timestamps.arrival)),
    meanE2eSeconds: mean((r) => seconds(r.timestamps.finished, r.timestamps.arrival)),
    outputs: requests.map((r) => r.outputTokenIds),
  };
}

/**
 * The scheduler's own cost with 256 requests decoding: schedule() + updateFromOutput() per step, the
 * "model" being a constant token. CPU time over 200 steps after 50 warm-up steps.
 */
function schedulerCostMicros(numRunning = 256): number {
  const maxTokens = 400;
  const manager = new KVCacheManager({
    numBlocks: 1 + numRunning * Math.ceil(MAX_MODEL_LEN / BLOCK_SIZE),
    maxModelLen: MAX_MODEL_LEN,
    blockSize: BLOCK_SIZE,
  });
  const scheduler = new Scheduler(
    {
      ...defaultEngineConfig,
      maxModelLen: MAX_MODEL_LEN,
      maxNumSeqs: numRunning,
      maxNumBatchedTokens: 32 * numRunning,
    },
    manager,
    () => 0,
  );
  for (let i = 0; i < numRunning; i++) {
    scheduler.addRequest(
      new Request({
        id: `s${i}`,
        promptTokenIds: Array.from({ length: 32 }, (_, t) => 1 + ((i * 31 + t) % 500)),
        samplingParams: samplingParams({ maxTokens, ignoreEos: true }),
        arrivalTime: 0,
      }),
    );
  }
  const sampled = new Map(Array.from({ length: numRunning }, (_, i) => [`s${i}`, 7]));
  const step = () => {
    scheduler.updateFromOutput(scheduler.schedule(), sampled);
    if (scheduler.running.length !== numRunning) throw new Error("bench: not every request is running");
  };
  for (let i = 0; i < 50; i++) step();
  // CPU time, not wall time: other processes' load on the machine does not count.
  const cpuStarted = process.cpuUsage();
  for (let i = 0; i < 200; i++) step();
  const cpu = process.cpuUsage(cpuStarted);
  return (cpu.user + cpu.system) / 200;
}

export interface BatchingOptions {
  model: string;
  tokenizer?: string;
  backend: BackendName;
  /** Runs of each mode; the median's figures are reported. */
  repeat: number;
  /** Where the report goes as JSON, if anywhere. */
  json?: string;
}

export async function runBatching({ model: modelPath, tokenizer, backend, repeat, json }: BatchingOptions) {
  const model = loadModel(modelPath, { tokenizer });
  const jobs = makeWorkload(model);
  const lastArrival = jobs[jobs.length - 1].arrivalStep;
  console.log(
    `workload: ${jobs.length} requests arriving over ${lastArrival} steps, ` +
      `${jobs.reduce((s, j) => s + j.promptTokenIds.length, 0)} prompt tokens, ` +
      `${jobs.reduce((s, j) => s + j.maxTokens, 0)} output tokens; maxNumSeqs 16, token budget 256, ` +
      `${backend} backend; median wall time of ${repeat} runs each, alternating`,
  );

  // Alternate the order each round so that drift in the machine's load hits both modes alike.
  const all: Record<EngineConfig["batching"], RunReport[]> = { static: [], continuous: [] };
  for (let round = 0; round < repeat; round++) {
    const order = round % 2 === 0 ? (["static", "continuous"] as const) : (["continuous", "static"] as const);
    for (const batching of order) all[batching].push(await runWorkload(model, jobs, batching, backend));
  }
  const median = (rs: RunReport[]) => [...rs].sort((a, b) => a.wallSeconds - b.wallSeconds)[rs.length >> 1];
  const runs = [median(all.static), median(all.continuous)];
  for (const r of runs) {
    console.log(
      `${r.batching.padEnd(10)}  ${String(r.steps).padStart(5)} steps  ${r.wallSeconds.toFixed(2).padStart(6)} s wall  ` +
        `${r.cpuSeconds.toFixed(2).padStart(6)} s CPU  ` +
        `${r.tokensPerSecond.toFixed(0).padStart(6)} tokens/s  mean TTFT ${r.meanTtftSteps.toFixed(1)} steps ` +
        `(${r.meanTtftSeconds.toFixed(2)} s)  mean E2E ${r.meanE2eSteps.toFixed(1)} steps (${r.meanE2eSeconds.toFixed(2)} s)`,
    );
  }
  const [stat, cont] = runs;
  const sameTokens = stat.outputs.every((ids, i) => ids.join() === cont.outputs[i].join());
  if (!sameTokens) throw new Error("bench: static and continuous batching generated different tokens");
  const ratios = {
    steps: stat.steps / cont.steps,
    wallTime: stat.wallSeconds / cont.wallSeconds,
    cpuTime: stat.cpuSeconds / cont.cpuSeconds,
    tokensPerSecond: cont.tokensPerSecond / stat.tokensPerSecond,
    meanE2eSeconds: stat.meanE2eSeconds / cont.meanE2eSeconds,
  };
  console.log(
    `static/continuous: steps ${ratios.steps.toFixed(2)}x, wall time ${ratios.wallTime.toFixed(2)}x, ` +
      `CPU time ${ratios.cpuTime.toFixed(2)}x, ` +
      `mean E2E latency ${ratios.meanE2eSeconds.toFixed(2)}x ` +
      `(continuous has ${ratios.tokensPerSecond.toFixed(2)}x the tokens/s; same tokens generated: ${sameTokens})`,
  );
  const schedulerMicros = schedulerCostMicros();
  console.log(
    `scheduler cost at 256 running requests: ${schedulerMicros.toFixed(0)} µs per step ` +
      `(${(schedulerMicros / 256).toFixed(2)} µs per request)`,
  );

  if (json) {
    const strip = ({ outputs: _, ...rest }: RunReport) => rest;
    const report = {
      runs: runs.map(strip),
      wallSecondsOfEachRun: {
        static: all.static.map((r) => r.wallSeconds),
        continuous: all.continuous.map((r) => r.wallSeconds),
      },
      cpuSecondsOfEachRun: {
        static: all.static.map((r) => r.cpuSeconds),
        continuous: all.continuous.map((r) => r.cpuSeconds),
      },
      ratios,
      schedulerMicrosPerStepAt256: schedulerMicros,
    };
    writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  }
}
