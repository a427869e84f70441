import { InputError } from "../model/errors.js";
import { arrivalTimes } from "./arrivals.js";
import { chatDefaults, chatSessions } from "./chat.js";
import { type DatasetName, datasetNames, makePrompts, type WorkloadPrompt } from "./dataset.js";
import { parseSlo, type Slo } from "./metrics.js";
import { WorkloadRandom } from "./random.js";

/** The workload flags `bench serve` and `simulate` share, as commander parses them (src/cli/options.ts). */
export interface WorkloadFlags {
  dataset: string;
  datasetPath?: string;
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  rangeRatio: number;
  prefixLen: number;
  sharegptOutputLen?: number;
  /** chat: distinct system prompts, mean turns per session, least seconds between turns (default chatDefaults). */
  systemPrompts?: number;
  turns?: number;
  thinkTime?: number;
  vocabSize: number;
  requestRate: string;
  burstiness: number;
  maxConcurrency?: number;
  seed: number;
  goodput?: string[];
  resultJson?: string;
}

export interface Workload {
  prompts: WorkloadPrompt[];
  sendTimes: number[];
  requestRate: number;
  burstiness: number;
  maxConcurrency: number;
  seed: number;
  slo?: Slo;
}

export function workloadFrom(f: WorkloadFlags): Workload {
  if (!datasetNames.includes(f.dataset as DatasetName)) {
    throw new InputError(`--dataset must be one of ${datasetNames.join(", ")}, got "${f.dataset}"`);
  }
  const requestRate = f.requestRate === "inf" ? Number.POSITIVE_INFINITY : Number(f.requestRate);
  if (!(requestRate > 0))
    throw new InputError(`--request-rate must be a positive number or inf, got "${f.requestRate}"`);
  if (!(f.burstiness > 0)) throw new InputError(`--burstiness must be positive, got ${f.burstiness}`);
  if (!(f.rangeRatio >= 0 && f.rangeRatio < 1))
    throw new InputError(`--range-ratio must be in [0, 1), got ${f.rangeRatio}`);
  for (const [flag, value] of [
    ["--num-prompts", f.numPrompts],
    ["--input-len", f.inputLen],
    ["--output-len", f.outputLen],
    ["--max-concurrency", f.maxConcurrency ?? 1],
  ] as const) {
    if (value < 1) throw new InputError(`${flag} must be at least 1, got ${value}`);
  }
  if (f.vocabSize < 4) throw new InputError(`--vocab-size must be at least 4, got ${f.vocabSize}`);
  const random = new WorkloadRandom(f.seed);
  const common = {
    requestRate,
    burstiness: f.burstiness,
    maxConcurrency: f.maxConcurrency ?? Number.POSITIVE_INFINITY,
    seed: f.seed,
    slo: f.goodput ? parseSlo(f.goodput) : undefined,
  };
  for (const [flag, value] of [
    ["--system-prompts", f.systemPrompts],
    ["--turns", f.turns],
    ["--think-time", f.thinkTime],
  ] as const) {
    if (f.dataset !== "chat" && value !== undefined)
      throw new InputError(`${flag} applies to --dataset chat only, not ${f.dataset}`);
  }
  if (f.dataset === "chat") {
    const chat = {
      systemPrompts: f.systemPrompts ?? chatDefaults.systemPrompts,
      turns: f.turns ?? chatDefaults.turns,
      thinkTime: f.thinkTime ?? chatDefaults.thinkTime,
    };
    if (!(Number.isInteger(chat.systemPrompts) && chat.systemPrompts >= 1))
      throw new InputError(`--system-prompts must be a positive integer, got ${chat.systemPrompts}`);
    if (!(Number.isInteger(chat.turns) && chat.turns >= 1))
      throw new InputError(`--turns must be a positive integer, got ${chat.turns}`);
    if (!(chat.thinkTime >= 0))
      throw new InputError(`--think-time must be at least 0, got ${chat.thinkTime}`);
    const sessions = chatSessions(
      {
        numPrompts: f.numPrompts,
        systemPromptLen: f.prefixLen,
        inputLen: f.inputLen,
        outputLen: f.outputLen,
        rangeRatio: f.rangeRatio,
        requestRate,
        burstiness: f.burstiness,
        vocabSize: f.vocabSize,
        ...chat,
      },
      random,
    );
    return { ...sessions, ...common };
  }
  const prompts = makePrompts(
    {
      dataset: f.dataset as Exclude<DatasetName, "chat">,
      numPrompts: f.numPrompts,
      inputLen: f.inputLen,
      outputLen: f.outputLen,
      rangeRatio: f.rangeRatio,
      prefixLen: f.prefixLen,
      vocabSize: f.vocabSize,
      datasetPath: f.datasetPath,
      sharegptOutputLen: f.sharegptOutputLen,
    },
    random,
  );
  return { prompts, sendTimes: arrivalTimes(prompts.length, requestRate, f.burstiness, random), ...common };
}

/** The run's settings in vLLM's result-JSON keys. */
export function workloadMetadata(w: Workload) {
  return {
    num_prompts: w.prompts.length,
    request_rate: Number.isFinite(w.requestRate) ? w.requestRate : "inf",
    burstiness: w.burstiness,
    max_concurrency: Number.isFinite(w.maxConcurrency) ? w.maxConcurrency : null,
    seed: w.seed,
  };
}
