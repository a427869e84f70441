import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { defaultServeSettings, parseCompare, type Variant } from "../bench/serve/compare.js";
import { formatComparison } from "../bench/serve/compare-table.js";
import { type BenchSummary, summarize } from "../bench/serve/metrics.js";
import { formatSummary } from "../bench/serve/report-text.js";
import {
  addWorkloadOptions,
  type WorkloadFlags,
  workloadFrom,
  workloadMetadata,
} from "../bench/serve/workload-options.js";
import { defaultEngineConfig } from "../engine/engine-config.js";
import { formatHardware, hardwareProfile } from "../sim/hardware.js";
import { withMeasuredRates } from "../sim/measured-rates.js";
import { modelProfile } from "../sim/model-profile.js";
import { type KvDtype, kvDtypes, type WeightDtype, weightDtypes } from "../sim/plan.js";
import { simSetup } from "../sim/sim-setup.js";
import { simulate } from "../sim/simulator.js";
import { formatValidation, readMeasured } from "../sim/validation.js";
import { byteSize, modelHardwareOptions, oneOf, positiveInteger } from "./plan.js";
import { numberOption, runAction } from "./run-action.js";

interface SimulateFlags extends WorkloadFlags {
  model: string;
  tokenizer?: string;
  hardware: string;
  weightDtype: string;
  kvDtype: string;
  overhead: string;
  kvCacheMemory?: string;
  maxModelLen?: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  blockSize: number;
  kvAllocation: string;
  batching: string;
  prefixCaching: string;
  stepOverheadMs?: number;
  compare?: string;
  measured?: string;
}

export function registerSimulate(program: Command) {
  const command = modelHardwareOptions(
    program
      .command("simulate")
      .description(
        "run a workload through the real scheduler on a virtual clock with a roofline cost model (cpu-local: measured rates)",
      ),
  )
    .option("--overhead <size>", "memory for neither weights nor KV", "2GB")
    .option("--kv-cache-memory <size>", "KV cache budget (default: what is left after weights and overhead)")
    .option(
      "--max-num-seqs <n>",
      "most requests running at once",
      numberOption(true),
      defaultEngineConfig.maxNumSeqs,
    )
    .option(
      "--max-num-batched-tokens <n>",
      "token budget of a step",
      numberOption(true),
      defaultEngineConfig.maxNumBatchedTokens,
    )
    .option("--block-size <n>", "tokens per KV block", numberOption(true), defaultEngineConfig.blockSize)
    .option("--kv-allocation <mode>", "paged, contiguous", "paged")
    .option("--batching <mode>", "continuous, static", "continuous")
    .option("--prefix-caching <on|off>", "prefix caching", "on")
    .option(
      "--step-overhead-ms <ms>",
      "fixed time per step (default: the hardware profile's)",
      numberOption(),
    )
    .option(
      "--measured <result.json>",
      "compare with a `bench serve --result-json` file of the same workload",
    )
    .option(
      "--compare <setting=a,b>",
      "run once per value: kv-allocation=paged,contiguous | batching=continuous,static | prefix-caching=on,off",
    );
  addWorkloadOptions(command).action(runAction(runSimulate));
}

async function runSimulate(f: SimulateFlags) {
  const model = modelProfile(f.model, f.tokenizer);
  const weightDtype = oneOf<WeightDtype>("--weight-dtype", f.weightDtype, weightDtypes);
  const kvDtype = oneOf<KvDtype>("--kv-dtype", f.kvDtype, kvDtypes);
  const profile = await withMeasuredRates(hardwareProfile(f.hardware), {
    config: model.config,
    weightDtype,
    kvDtype,
  });
  const hardware =
    f.stepOverheadMs === undefined ? profile : { ...profile, stepOverheadS: f.stepOverheadMs / 1000 };
  const workload = workloadFrom(f);
  process.stdout.write(`${formatHardware(hardware)}\n\n`);
  const base = {
    kvAllocation: oneOf("--kv-allocation", f.kvAllocation, ["paged", "contiguous"] as const),
    batching: oneOf("--batching", f.batching, ["continuous", "static"] as const),
    prefixCaching: oneOf("--prefix-caching", f.prefixCaching, ["on", "off"] as const) === "on",
  };
  const variants: Variant[] = f.compare
    ? parseCompare(f.compare, base)
    : [{ label: "simulated", settings: { ...defaultServeSettings, ...base } }];
  const common = {
    model,
    hardware,
    weightDtype,
    kvDtype,
    overheadBytes: byteSize("--overhead", f.overhead),
    kvCacheBytes: f.kvCacheMemory === undefined ? undefined : byteSize("--kv-cache-memory", f.kvCacheMemory),
    maxModelLen: positiveInteger("--max-model-len", f.maxModelLen ?? model.config.maxSeqLen),
    maxNumSeqs: positiveInteger("--max-num-seqs", f.maxNumSeqs),
    maxNumBatchedTokens: positiveInteger("--max-num-batched-tokens", f.maxNumBatchedTokens),
    blockSize: positiveInteger("--block-size", f.blockSize),
  };
  const results: {
    label: string;
    summary: BenchSummary;
    steps: number;
    preemptions: number;
    numBlocks: number;
  }[] = [];
  for (const variant of variants) {
    const { engine, cost } = simSetup({ ...common, settings: variant.settings });
    const run = simulate({
      ...workload,
      engine,
      stepTime: (output) => cost.stepTime(output),
    });
    const summary = summarize(run.records, run.duration, workload.slo);
    results.push({
      label: variant.label,
      summary,
      steps: run.steps,
      preemptions: run.preemptions,
      numBlocks: engine.numBlocks,
    });
    const firstError = run.records.find((r) => !r.success)?.error;
    process.stdout.write(
      `${formatSummary(summary, `Simulated: ${variant.label}`)}\n` +
        `${run.steps} steps, ${run.preemptions} preemptions, ${(engine.numBlocks - 1).toLocaleString("en-US")} KV blocks of ${engine.blockSize}` +
        `${firstError ? `; first failure: ${firstError}` : ""}\n\n`,
    );
  }
  if (results.length > 1) process.stdout.write(`${formatComparison(results)}\n`);
  if (f.measured) process.stdout.write(`${formatValidation(results[0].summary, readMeasured(f.measured))}\n`);
  if (f.resultJson) {
    const meta = {
      date: new Date().toISOString(),
      backend: "vellum-simulate",
      model_id: model.name,
      hardware: hardware.name,
      weight_dtype: f.weightDtype,
      ...workloadMetadata(workload),
    };
    const json = results.length === 1 ? { ...meta, ...results[0].summary } : { ...meta, variants: results };
    writeFileSync(f.resultJson, `${JSON.stringify(json, null, 2)}\n`);
  }
}
