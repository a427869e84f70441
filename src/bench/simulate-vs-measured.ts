/**
 * The simulator's validation as one command (issue 9): starts a vellum server on a model, runs a workload
 * against it, stops it, then simulates the same workload on the `cpu-local` profile (rates measured right
 * after, on the same machine and model) and prints both side by side with the ±25% verdicts.
 * Usage: vellum bench simulate-vs-measured --model F.gguf [--kv-cache-memory 1GiB] [workload flags]
 */
import { writeFileSync } from "node:fs";
import { parseByteSize } from "../core/kv-cache-sizing.js";
import { defaultEngineConfig } from "../engine/engine-config.js";
import { tensorNames } from "../model/config.js";
import { InputError } from "../model/errors.js";
import { loadModel } from "../model/load.js";
import { formatHardware, hardwareProfile } from "../sim/hardware.js";
import { withMeasuredRates } from "../sim/measured-rates.js";
import { modelProfile } from "../sim/model-profile.js";
import { weightDtypes, weightStoredAs } from "../sim/plan.js";
import { simSetup } from "../sim/sim-setup.js";
import { simulate } from "../sim/simulator.js";
import { formatValidation } from "../sim/validation.js";
import { benchServe } from "./serve/bench-serve.js";
import { defaultServeSettings } from "./serve/compare.js";
import { summarize } from "./serve/metrics.js";
import { formatSummary } from "./serve/report-text.js";
import { startServer } from "./serve/start-server.js";
import type { Workload } from "./serve/workload-options.js";

export interface SimulateVsMeasuredOptions {
  modelPath: string;
  kvCacheMemory: string;
  resultJson?: string;
}

/** The server and the simulation get the same engine settings: vellum serve's defaults and this KV budget. */
export async function runSimulateVsMeasured(o: SimulateVsMeasuredOptions, workload: Workload) {
  let kvCacheBytes: number;
  try {
    kvCacheBytes = parseByteSize(o.kvCacheMemory);
  } catch (err) {
    throw new InputError(`--kv-cache-memory: ${(err as Error).message}`);
  }
  const model = loadModel(o.modelPath);
  const stored = model.tensors.get(tensorNames.ffnDown(0))?.dtype;
  // bf16 weights are simulated as fp16: the same bytes per weight.
  const weightDtype = weightDtypes.find((w) => weightStoredAs[w] === (stored === "bf16" ? "f16" : stored));
  if (!weightDtype) {
    throw new InputError(
      `${o.modelPath}: weights of type ${stored} have no simulator dtype (f32, f16, q8_0, q4_0)`,
    );
  }

  const server = await startServer({
    modelPath: o.modelPath,
    settings: defaultServeSettings,
    kvCacheMemory: o.kvCacheMemory,
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

  const profile = modelProfile(o.modelPath);
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
    kvCacheBytes,
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
  if (o.resultJson) {
    const json = {
      model: o.modelPath,
      weightDtype,
      measured: measured.summary,
      simulated,
      rates: hardware.measuredRates,
    };
    writeFileSync(o.resultJson, `${JSON.stringify(json, null, 2)}\n`);
  }
}
