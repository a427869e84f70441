/**
 * The simulator's validation as one command (issue 9): starts a vellum server on a model, runs a workload
 * against it, stops it, then simulates the same workload on the `cpu-local` profile (rates measured right
 * after, on the same machine and model) and prints both side by side with the ±25% verdicts.
 * Usage: vellum bench simulate-vs-measured --model F.gguf [--kv-cache-memory 1GiB] [workload flags]
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { benchServe } from "../bench/serve/bench-serve.js";
import { formatSummary } from "../bench/serve/report-text.js";
import { startServer } from "../bench/serve/start-server.js";
import { defaultEngineConfig } from "../engine/engine-config.js";
import { tensorNames } from "../model/config.js";
import { InputError } from "../model/errors.js";
import { loadModel } from "../model/load.js";
import { formatHardware, hardwareProfile } from "../sim/hardware.js";
import { withMeasuredRates } from "../sim/measured-rates.js";
import { modelProfile } from "../sim/model-profile.js";
import { weightStoredAs } from "../sim/plan.js";
import { simSetup } from "../sim/sim-setup.js";
import { simulate } from "../sim/simulator.js";
import { weightDtypes } from "../sim/types.js";
import { formatValidation } from "../sim/validation.js";
import { defaultServeSettings } from "../workload/compare.js";
import { summarize } from "../workload/metrics.js";
import { type WorkloadFlags, workloadFrom } from "../workload/workload.js";
import { addWorkloadOptions, byteSizeOption } from "./options.js";
import { runAction } from "./run-action.js";

interface SimulateVsMeasuredFlags extends WorkloadFlags {
  model: string;
  kvCacheMemory: number;
}

export function registerSimulateVsMeasured(bench: Command) {
  const command = bench
    .command("simulate-vs-measured")
    .description(
      "serve a model, run a workload against it, then simulate the same workload on cpu-local and compare (±25%)",
    )
    .requiredOption(
      "--model <file.gguf>",
      "the model both serve (a synth-model file: f32, f16, q8_0 or q4_0)",
    )
    .addOption(
      byteSizeOption("--kv-cache-memory <size>", "KV cache budget of the server and the simulation", "1GiB"),
    );
  addWorkloadOptions(command).action(runAction(runSimulateVsMeasured));
}

/** The server and the simulation get the same engine settings: vellum serve's defaults and this KV budget. */
async function runSimulateVsMeasured(f: SimulateVsMeasuredFlags) {
  const workload = workloadFrom(f);
  const model = loadModel(f.model);
  const stored = model.tensors.get(tensorNames.ffnDown(0))?.dtype;
  // bf16 weights are simulated as fp16: the same bytes per weight.
  const weightDtype = weightDtypes.find((w) => weightStoredAs[w] === (stored === "bf16" ? "f16" : stored));
  if (!weightDtype) {
    throw new InputError(
      `${f.model}: weights of type ${stored} have no simulator dtype (f32, f16, q8_0, q4_0)`,
    );
  }

  const server = await startServer({
    modelPath: f.model,
    settings: defaultServeSettings,
    kvCacheBytes: f.kvCacheMemory,
  });
  let measured: Awaited<ReturnType<typeof benchServe>>;
  try {
    measured = await benchServe(
      { baseUrl: server.baseUrl, endpoint: "completions", ignoreEos: true },
      workload,
    );
  } finally {
    await server.stop();
  }
  process.stdout.write(`${formatSummary(measured.summary, "measured")}\n`);

  const profile = modelProfile(f.model);
  const hardware = await withMeasuredRates(hardwareProfile("cpu-local"), {
    config: profile.config,
    weightDtype,
    kvDtype: "fp32",
  });
  const { engine, cost } = simSetup({
    model: profile,
    hardware,
    weightDtype,
    kvDtype: "fp32",
    overheadBytes: 0,
    kvCacheBytes: f.kvCacheMemory,
    maxModelLen: profile.config.maxSeqLen,
    maxNumSeqs: defaultEngineConfig.maxNumSeqs,
    maxNumBatchedTokens: defaultEngineConfig.maxNumBatchedTokens,
    blockSize: defaultEngineConfig.blockSize,
    settings: defaultServeSettings,
  });
  const run = simulate({ ...workload, engine, stepTime: (output) => cost.stepTime(output) });
  const simulated = summarize(run.records, run.duration, workload.slo);
  process.stdout.write(
    `${formatSummary(simulated, "simulated (cpu-local)")}\n${formatHardware(hardware)}\n\n`,
  );
  process.stdout.write(`${formatValidation(simulated, measured.summary)}\n`);
  if (f.resultJson) {
    const json = {
      model: f.model,
      weightDtype,
      measured: measured.summary,
      simulated,
      rates: hardware.measuredRates,
    };
    writeFileSync(f.resultJson, `${JSON.stringify(json, null, 2)}\n`);
  }
}
