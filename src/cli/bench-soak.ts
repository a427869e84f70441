import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { BackendName } from "../backend/native/choose-backend.js";
import { formatSoakReport } from "../bench/soak/report.js";
import { runSoak } from "../bench/soak/soak.js";
import { resolveModel } from "./default-model.js";
import { backendOption, numberOption, positiveInteger } from "./options.js";
import { runAction } from "./run-action.js";

interface SoakFlags {
  minutes: number;
  model?: string;
  tokenizer?: string;
  backend?: BackendName;
  concurrency: number;
  maxRequests: number;
  seed: number;
  out?: string;
}

export function registerSoak(bench: Command) {
  bench
    .command("soak")
    .description(
      "start a vellum server, run mixed traffic against it (completions, chat, streams, n>1, disconnects, bad bodies, /tokenize) " +
        "and report requests, errors, server RSS, /health latency and whether greedy outputs stayed the same",
    )
    .option(
      "--minutes <n>",
      "how long the traffic runs (fractions allowed, > 0)",
      numberOption(false, 0.001),
      10,
    )
    .option(
      "--model <path|ref>",
      "the model the server loads, a path or hf:ORG/REPO[:QUANT] (default: the bundled demo model)",
    )
    .option("--tokenizer <path>", "tokenizer for llama2.c models")
    .addOption(backendOption())
    .option("--concurrency <n>", "clients sending at once", positiveInteger, 8)
    .option(
      "--max-requests <n>",
      "stop after this many requests even if time remains",
      positiveInteger,
      1_000_000,
    )
    .option("--seed <n>", "seed of the traffic mix", numberOption(true), 0)
    .option("--out <file.json>", "also write the report as JSON")
    .action(runAction(runSoakCommand));
}

async function runSoakCommand(f: SoakFlags) {
  const report = await runSoak({
    modelPath: await resolveModel(f.model),
    tokenizer: f.tokenizer,
    backend: f.backend,
    seconds: f.minutes * 60,
    concurrency: f.concurrency,
    maxRequests: f.maxRequests,
    seed: f.seed,
  });
  process.stdout.write(`${formatSoakReport(report)}\n`);
  if (f.out) writeFileSync(f.out, `${JSON.stringify(report, null, 2)}\n`);
  if (report.errors.unexpected > 0 || !report.greedy.identical) process.exitCode = 1;
}
