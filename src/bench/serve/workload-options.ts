import type { Command } from "commander";
import { numberOption } from "../../cli/run-action.js";
import { InputError } from "../../model/errors.js";
import { arrivalTimes } from "./arrivals.js";
import { type DatasetName, datasetNames, makePrompts, type WorkloadPrompt } from "./dataset.js";
import { parseSlo, type Slo } from "./metrics.js";
import { WorkloadRandom } from "./random.js";

/** The workload flags `bench serve` and `simulate` share, as commander parses them. */
export interface WorkloadFlags {
  dataset: string;
  datasetPath?: string;
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  rangeRatio: number;
  prefixLen: number;
  sharegptOutputLen?: number;
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

export function addWorkloadOptions(command: Command): Command {
  return command
    .option("--dataset <name>", datasetNames.join(", "), "random")
    .option("--dataset-path <file>", "sharegpt: a local ShareGPT-format JSON file")
    .option("--num-prompts <n>", "requests to send", numberOption(true), 200)
    .option(
      "--input-len <n>",
      "random, prefix-shared: prompt tokens (after the prefix)",
      numberOption(true),
      1024,
    )
    .option("--output-len <n>", "random, prefix-shared: output tokens", numberOption(true), 128)
    .option("--range-ratio <r>", "lengths uniform in L·(1 ± r)", numberOption(), 0)
    .option(
      "--prefix-len <n>",
      "prefix-shared: tokens of the prefix every prompt shares",
      numberOption(true),
      256,
    )
    .option(
      "--sharegpt-output-len <n>",
      "sharegpt: output tokens instead of each reply's length",
      numberOption(true),
    )
    .option("--vocab-size <n>", "random token ids are drawn below this", numberOption(true), 500)
    .option("--request-rate <r>", "requests per second, or inf to send all at once", "inf")
    .option("--burstiness <b>", "gamma shape of the gaps: 1 = Poisson, < 1 burstier", numberOption(), 1)
    .option("--max-concurrency <n>", "most requests in flight", numberOption(true))
    .option("--seed <n>", "seed of the workload", numberOption(true), 0)
    .option("--goodput <slo...>", "service-level objectives, e.g. ttft:500 tpot:50 e2el:5000 (ms)")
    .option("--result-json <file>", "write the results as JSON");
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
  const prompts = makePrompts(
    {
      dataset: f.dataset as DatasetName,
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
  return {
    prompts,
    sendTimes: arrivalTimes(prompts.length, requestRate, f.burstiness, random),
    requestRate,
    burstiness: f.burstiness,
    maxConcurrency: f.maxConcurrency ?? Number.POSITIVE_INFINITY,
    seed: f.seed,
    slo: f.goodput ? parseSlo(f.goodput) : undefined,
  };
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
