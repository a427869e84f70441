import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { BackendName } from "../backend/native/choose-backend.js";
import { startServer } from "../bench/serve/start-server.js";
import { benchWebOverhead, type OverheadReport } from "../bench/web-overhead.js";
import { defaultServeSettings } from "../workload/compare.js";
import { type WorkloadFlags, workloadFrom, workloadMetadata } from "../workload/workload.js";
import { resolveModel } from "./default-model.js";
import { addWorkloadOptions, backendOption, positiveInteger } from "./options.js";
import { runAction } from "./run-action.js";

interface WebOverheadFlags extends WorkloadFlags {
  model?: string;
  backend?: BackendName;
  rounds: number;
}

export function registerWebOverhead(bench: Command) {
  const command = bench
    .command("web-overhead")
    .description(
      "start a vellum server and run the same workload alternately with and without a subscriber to the web page's " +
        "engine-snapshot stream (/v1/engine/events): output throughput of each and their ratio",
    )
    .option(
      "--model <path|ref>",
      "the model the server loads, a path or hf:ORG/REPO[:QUANT] (default: the bundled demo model)",
    )
    .addOption(backendOption())
    .option("--rounds <n>", "pairs of runs (one of each kind)", positiveInteger, 3);
  addWorkloadOptions(command).action(runAction(runWebOverhead));
}

async function runWebOverhead(f: WebOverheadFlags) {
  const workload = workloadFrom(f);
  const launch = {
    modelPath: await resolveModel(f.model),
    backend: f.backend,
    settings: defaultServeSettings,
  };
  const server = await startServer(launch);
  let report: OverheadReport;
  try {
    report = await benchWebOverhead(server.baseUrl, workload, f.rounds, (line) =>
      process.stdout.write(`${line}\n`),
    );
  } finally {
    await server.stop();
  }
  process.stdout.write(`throughput with one subscriber ÷ without (medians): ${report.ratio.toFixed(3)}\n`);
  if (f.resultJson) {
    const json = { date: new Date().toISOString(), ...workloadMetadata(workload), ...report };
    writeFileSync(f.resultJson, `${JSON.stringify(json, null, 2)}\n`);
  }
}
