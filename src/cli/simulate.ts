import { writeFileSync } from "node:fs";
import { type Command, Option } from "commander";
import type { KernelPath } from "../backend/native/addon.js";
import { formatComparison } from "../bench/serve/compare-table.js";
import { formatSummary } from "../bench/serve/report-text.js";
import type { KvAllocation } from "../core/kv-cache-manager.js";
import { defaultEngineConfig, type EngineConfig } from "../engine/engine-config.js";
import { InputError } from "../model/errors.js";
import { formatHardware, hardwareProfile } from "../sim/hardware.js";
import { withMeasuredRates } from "../sim/measured-rates.js";
import { modelProfile } from "../sim/model-profile.js";
import { routerNames } from "../sim/routers.js";
import { simSetup } from "../sim/sim-setup.js";
import { simulate } from "../sim/simulator.js";
import {
  type HardwareProfile,
  type KvDtype,
  kvDtypes,
  type WeightDtype,
  weightDtypes,
} from "../sim/types.js";
import { formatValidation, readMeasured } from "../sim/validation.js";
import { parseCompare, type Variant } from "../workload/compare.js";
import { type BenchSummary, summarize } from "../workload/metrics.js";
import { type WorkloadFlags, workloadFrom, workloadMetadata } from "../workload/workload.js";
import {
  addWorkloadOptions,
  byteSizeOption,
  kernelsOption,
  modelHardwareOptions,
  numberOption,
  oneOf,
  positiveInteger,
} from "./options.js";
import { runAction } from "./run-action.js";
import { defaultScrapeIntervalMs, runFleet } from "./simulate-fleet.js";

interface SimulateFlags extends WorkloadFlags {
  model: string;
  tokenizer?: string;
  hardware: string;
  weightDtype: string;
  kvDtype: string;
  overhead: number;
  kvCacheMemory?: number;
  maxModelLen?: number;
  maxNumSeqs: number;
  maxNumBatchedTokens?: number;
  longPrefillTokenThreshold?: number;
  kernels?: KernelPath;
  blockSize: number;
  kvAllocation: KvAllocation;
  batching: EngineConfig["batching"];
  prefixCaching: "on" | "off";
  stepOverheadMs?: number;
  compare?: string;
  measured?: string;
  replicas?: number;
  router?: string;
  scrapeInterval?: string;
}

export function registerSimulate(program: Command) {
  const command = modelHardwareOptions(
    program
      .command("simulate")
      .description(
        "run a workload through the real scheduler on a virtual clock with a roofline cost model (cpu-local: measured rates)",
      ),
  )
    .addOption(byteSizeOption("--overhead <size>", "memory for neither weights nor KV", "2GB"))
    .addOption(
      byteSizeOption(
        "--kv-cache-memory <size>",
        "KV cache budget (default: what is left after weights and overhead)",
      ),
    )
    .option(
      "--max-num-seqs <n>",
      "most requests running at once",
      positiveInteger,
      defaultEngineConfig.maxNumSeqs,
    )
    .option(
      "--max-num-batched-tokens <n>",
      `token budget of a step (default ${defaultEngineConfig.maxNumBatchedTokens}; on cpu-local, as serve: prefill capped by the step rates)`,
      positiveInteger,
    )
    .option(
      "--long-prefill-token-threshold <n>",
      "cap on one request's prefill chunk per step (0 = off, the default)",
      numberOption(true, 0),
    )
    .addOption(kernelsOption())
    .option("--block-size <n>", "tokens per KV block", positiveInteger, defaultEngineConfig.blockSize)
    .addOption(
      new Option("--kv-allocation <mode>", "KV blocks on demand, or max-model-len per request up front")
        .choices(["paged", "contiguous"])
        .default("paged"),
    )
    .addOption(
      new Option("--batching <mode>", "requests join the batch at every step, or only an empty one")
        .choices(["continuous", "static"])
        .default("continuous"),
    )
    .addOption(new Option("--prefix-caching <on|off>", "prefix caching").choices(["on", "off"]).default("on"))
    .option(
      "--step-overhead-ms <ms>",
      "fixed engine time per step (default: the hardware profile's; cpu-local: measured, per step and per request)",
      numberOption(),
    )
    .option(
      "--measured <result.json>",
      "compare with a `bench serve --result-json` file of the same workload",
    )
    .option(
      "--compare <setting=a,b>",
      "run once per value: kv-allocation=paged,contiguous | batching=continuous,static | prefix-caching=on,off",
    )
    .option("--replicas <n>", "simulate a fleet: N replicas behind a router (see --router)", positiveInteger)
    .option(
      "--router <names>",
      `with --replicas: ${routerNames.join(", ")}; several, comma-separated, run once each (default: all)`,
    )
    .option(
      "--scrape-interval <ms>",
      `with --replicas: ms between the router's scrapes of metrics and KV events, 0 = live, inf = only at the start; several, comma-separated, run once each (default ${defaultScrapeIntervalMs})`,
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
    kernels: f.kernels,
  });
  const hardware =
    f.stepOverheadMs === undefined ? profile : withStepOverhead(profile, f.stepOverheadMs / 1000);
  const workload = workloadFrom(f);
  checkFleetFlags(f);
  process.stdout.write(`${formatHardware(hardware)}\n\n`);
  const base = {
    kvAllocation: f.kvAllocation,
    batching: f.batching,
    prefixCaching: f.prefixCaching === "on",
  };
  const variants: Variant[] = f.compare
    ? parseCompare(f.compare, base)
    : [{ label: "simulated", settings: base }];
  const common = {
    model,
    hardware,
    weightDtype,
    kvDtype,
    overheadBytes: f.overhead,
    kvCacheBytes: f.kvCacheMemory,
    maxModelLen: f.maxModelLen ?? model.config.maxSeqLen,
    maxNumSeqs: f.maxNumSeqs,
    maxNumBatchedTokens: f.maxNumBatchedTokens,
    longPrefillTokenThreshold: f.longPrefillTokenThreshold,
    blockSize: f.blockSize,
  };
  if (f.replicas !== undefined) {
    const { engine, cost } = simSetup({ ...common, settings: base });
    const title = `${f.replicas} × ${model.name} on ${hardware.name}, ${f.dataset} workload of ${workload.prompts.length} requests: routers compared`;
    const metadata = {
      date: new Date().toISOString(),
      backend: "vellum-simulate",
      model_id: model.name,
      hardware: hardware.name,
    };
    runFleet({ ...f, replicas: f.replicas }, { engine, cost, title, workload, metadata });
    return;
  }
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
        `${run.steps} steps, ${run.preemptions} preemptions, ${engine.numBlocks.toLocaleString("en-US")} KV blocks of ${engine.blockSize}` +
        `${engine.maxPrefillTokensPerStep ? `, prefill budget ${engine.maxPrefillTokensPerStep} tokens per step from the step rates` : ""}` +
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

/** The profile with a fixed engine overhead per step, measured rates included. */
function withStepOverhead(profile: HardwareProfile, seconds: number): HardwareProfile {
  const rates = profile.measuredRates;
  return {
    ...profile,
    stepOverheadS: seconds,
    measuredRates: rates && { ...rates, overhead: { stepSeconds: seconds, requestSeconds: 0 } },
  };
}

/** --replicas runs a fleet, with its own flags; the single-engine comparisons do not apply to it. */
function checkFleetFlags(f: SimulateFlags) {
  if (f.replicas === undefined) {
    for (const [flag, value] of [
      ["--router", f.router],
      ["--scrape-interval", f.scrapeInterval],
    ] as const)
      if (value !== undefined) throw new InputError(`${flag} needs --replicas`);
    return;
  }
  for (const [flag, value] of [
    ["--compare", f.compare],
    ["--measured", f.measured],
    ["--max-concurrency", f.maxConcurrency],
    ["--goodput", f.goodput],
  ] as const)
    if (value !== undefined) throw new InputError(`${flag} cannot be combined with --replicas`);
}
