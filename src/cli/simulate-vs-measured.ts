/**
 * The simulator's validation as one command (issues 9 and 21): for each of three workloads, starts a vellum
 * server on a model, runs the workload against it, stops it, measures the cpu-local rates right before and right
 * after (on the same machine, model and kernels) and takes their mean, simulates the same workload and prints both side by side with the ±15% verdicts;
 * exits 1 when any workload's throughput or median TPOT is outside. With --explain, also each kind of real step
 * beside the cost model's price of it, term by term (from the server's --step-log).
 * Usage: vellum bench simulate-vs-measured [--model F.gguf] [--kernels PATH] [--workloads light,heavy,mixed] [--explain]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import type { KernelPath } from "../backend/native/addon.js";
import { benchServe } from "../bench/serve/bench-serve.js";
import { startServer } from "../bench/serve/start-server.js";
import { defaultEngineConfig } from "../engine/engine-config.js";
import type { StepStats } from "../engine/stats.js";
import { tensorNames } from "../model/config.js";
import { InputError } from "../model/errors.js";
import { loadModel } from "../model/load.js";
import { explainSteps } from "../sim/explain.js";
import { formatHardware, hardwareProfile } from "../sim/hardware.js";
import { meanRates, withMeasuredRates } from "../sim/measured-rates.js";
import { modelProfile } from "../sim/model-profile.js";
import { weightStoredAs } from "../sim/plan.js";
import { simSetup } from "../sim/sim-setup.js";
import { simulate } from "../sim/simulator.js";
import { type HardwareProfile, type MeasuredRates, type WeightDtype, weightDtypes } from "../sim/types.js";
import { formatValidation, tolerance, withinTolerance } from "../sim/validation.js";
import { defaultServeSettings } from "../workload/compare.js";
import { type BenchSummary, summarize } from "../workload/metrics.js";
import { type WorkloadFlags, workloadFrom } from "../workload/workload.js";
import { resolveModel } from "./default-model.js";
import { byteSizeOption, kernelsOption, listOption } from "./options.js";
import { runAction } from "./run-action.js";

const common = {
  vocabSize: 500,
  burstiness: 1,
  seed: 0,
  prefixLen: 0,
  rangeRatio: 0,
  datasetPath: undefined,
};

/** The three validation workloads: light load, overload, and mixed lengths sharing a prefix. */
const validationWorkloads: Record<string, { about: string; flags: WorkloadFlags }> = {
  light: {
    about: "30 requests at 1/s, 128 tokens in, 64 out",
    flags: { ...common, dataset: "random", numPrompts: 30, requestRate: "1", inputLen: 128, outputLen: 64 },
  },
  heavy: {
    about: "80 requests at 8/s, 128 tokens in, 64 out",
    flags: { ...common, dataset: "random", numPrompts: 80, requestRate: "8", inputLen: 128, outputLen: 64 },
  },
  mixed: {
    about: "50 requests at 3/s sharing a 256-token prefix, then 128 ± 50% tokens in, 64 ± 50% out",
    flags: {
      ...common,
      dataset: "prefix-shared",
      numPrompts: 50,
      requestRate: "3",
      inputLen: 128,
      outputLen: 64,
      rangeRatio: 0.5,
      prefixLen: 256,
    },
  },
};
const workloadNames = Object.keys(validationWorkloads);

interface SimulateVsMeasuredFlags {
  model?: string;
  kvCacheMemory: number;
  kernels?: KernelPath;
  workloads: string[];
  explain?: boolean;
  resultJson?: string;
}

export function registerSimulateVsMeasured(bench: Command) {
  bench
    .command("simulate-vs-measured")
    .description(
      `serve a model under three workloads, simulate each on cpu-local, and compare (exit 1 outside ±${tolerance * 100}% on throughput or median TPOT)`,
    )
    .option(
      "--model <file.gguf>",
      "the model both serve: f32, f16, q8_0 or q4_0 weights (default: the bundled model)",
    )
    .addOption(
      byteSizeOption("--kv-cache-memory <size>", "KV cache budget of the server and the simulation", "1GiB"),
    )
    .addOption(kernelsOption())
    .option(
      "--workloads <list>",
      `which of ${workloadNames.join(", ")}`,
      listOption((name) => {
        if (!workloadNames.includes(name))
          throw new InvalidArgumentError(`${name} is not one of ${workloadNames.join(", ")}`);
        return name;
      }),
      workloadNames,
    )
    .option("--explain", "print each kind of real step beside the simulated one, term by term")
    .option("--result-json <file>", "write the results as JSON")
    .action(runAction(runSimulateVsMeasured));
}

/** The server and the simulation get the same engine settings: vellum serve's defaults and this KV budget. */
async function runSimulateVsMeasured(f: SimulateVsMeasuredFlags) {
  const modelPath = await resolveModel(f.model);
  const weightDtype = simulatedWeightDtype(modelPath);
  const profile = modelProfile(modelPath);
  const logs = mkdtempSync(join(tmpdir(), "vellum-steps-"));
  const results: { workload: string; measured: BenchSummary; simulated: BenchSummary }[] = [];
  try {
    for (const name of f.workloads) {
      const { about, flags } = validationWorkloads[name];
      const workload = workloadFrom(flags);
      const stepLog = join(logs, `${name}.jsonl`);
      const measureRates = () =>
        withMeasuredRates(hardwareProfile("cpu-local"), {
          config: profile.config,
          weightDtype,
          kvDtype: "fp32",
          kernels: f.kernels,
        });
      const before = await measureRates();
      const server = await startServer({
        modelPath,
        settings: defaultServeSettings,
        kvCacheBytes: f.kvCacheMemory,
        kernels: f.kernels,
        stepLog,
      });
      let measured: BenchSummary;
      try {
        const target = { baseUrl: server.baseUrl, endpoint: "completions", ignoreEos: true } as const;
        measured = (await benchServe(target, workload)).summary;
      } finally {
        await server.stop();
      }
      const after = await measureRates();
      // Rates bracketing the run: the machine's speed drifts between them.
      const hardware = { ...after, measuredRates: bracketed(before, after) };
      const { engine, cost } = simSetup({
        model: profile,
        hardware,
        weightDtype,
        kvDtype: "fp32",
        overheadBytes: 0,
        kvCacheBytes: f.kvCacheMemory,
        maxModelLen: profile.config.maxSeqLen,
        maxNumSeqs: defaultEngineConfig.maxNumSeqs,
        blockSize: defaultEngineConfig.blockSize,
        settings: defaultServeSettings,
      });
      const run = simulate({ ...workload, engine, stepTime: (output) => cost.stepTime(output) });
      const simulated = summarize(run.records, run.duration, workload.slo);
      results.push({ workload: name, measured, simulated });
      process.stdout.write(
        `== ${name}: ${about} ==\n${formatHardware(hardware)}\n\n${formatValidation(simulated, measured)}\n\n`,
      );
      if (f.explain) {
        const steps = readFileSync(stepLog, "utf8")
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line) as StepStats);
        process.stdout.write(
          `Real steps beside simulated ones (mean per step):\n${explainSteps(steps, cost)}\n\n`,
        );
      }
    }
  } finally {
    rmSync(logs, { recursive: true, force: true });
  }
  if (f.resultJson)
    writeFileSync(f.resultJson, `${JSON.stringify({ model: modelPath, weightDtype, results }, null, 2)}\n`);
  const outside = results.filter((r) => !withinTolerance(r.simulated, r.measured)).map((r) => r.workload);
  if (outside.length > 0) {
    process.stdout.write(`outside ±${tolerance * 100}%: ${outside.join(", ")}\n`);
    process.exitCode = 1;
  }
}

function bracketed(before: HardwareProfile, after: HardwareProfile): MeasuredRates | undefined {
  const rates = [before.measuredRates, after.measuredRates].filter((r) => r !== undefined);
  return rates.length === 2 ? meanRates(rates) : undefined;
}

/** The simulator's weight dtype of the model's matrices (bf16 is simulated as fp16: the same bytes per weight). */
function simulatedWeightDtype(path: string): WeightDtype {
  const stored = loadModel(path).tensors.get(tensorNames.ffnDown(0))?.dtype;
  const weightDtype = weightDtypes.find((w) => weightStoredAs[w] === (stored === "bf16" ? "f16" : stored));
  if (!weightDtype)
    throw new InputError(`${path}: weights of type ${stored} have no simulator dtype (f32, f16, q8_0, q4_0)`);
  return weightDtype;
}
