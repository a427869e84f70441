import { writeFileSync } from "node:fs";
import { type Command, Option } from "commander";
import type { BackendName } from "../backend/native/choose-backend.js";
import { runAllocateSlots } from "../bench/allocate-slots.js";
import { runBatchScaling } from "../bench/batch-scaling.js";
import { runLatency } from "../bench/latency.js";
import { runLlamaCppCompare } from "../bench/llama-cpp-compare.js";
import { runLoadModel } from "../bench/load-model.js";
import { runProbe } from "../bench/probe.js";
import { type BenchRun, benchCompare, benchServe } from "../bench/serve/bench-serve.js";
import type { Endpoint } from "../bench/serve/client.js";
import { parseCompare } from "../bench/serve/compare.js";
import { formatComparison } from "../bench/serve/compare-table.js";
import { writeHtmlReport } from "../bench/serve/html-report.js";
import { formatSummary } from "../bench/serve/report-text.js";
import {
  addWorkloadOptions,
  type WorkloadFlags,
  workloadFrom,
  workloadMetadata,
} from "../bench/serve/workload-options.js";
import { runSimulateVsMeasured } from "../bench/simulate-vs-measured.js";
import { formatSoakReport } from "../bench/soak/report.js";
import { runSoak } from "../bench/soak/soak.js";
import { runBatching } from "../bench/static-vs-continuous.js";
import { type KvCacheDtype, kvCacheDtypes } from "../core/kv-cache-sizing.js";
import { InputError } from "../model/errors.js";
import { resolveModelPath } from "./default-model.js";
import { oneOf } from "./plan.js";
import { numberOption, runAction } from "./run-action.js";

interface BenchServeFlags extends WorkloadFlags {
  baseUrl: string;
  endpoint: string;
  model?: string;
  apiKey?: string;
  ignoreEos?: boolean;
  compare?: string;
  serverModel?: string;
  tokenizer?: string;
  serverBackend?: string;
  kvCacheMemory?: string;
  kvCacheDtype?: KvCacheDtype;
  maxNumSeqs?: number;
  maxModelLen?: number;
  report?: string;
  png?: boolean;
}

/** Benchmarks that parse their own flags (each prints its usage). */
const selfParsing: [string, string, (argv: string[]) => Promise<void>][] = [
  ["probe", "this machine's read bandwidth and FMA peak [--threads N]", runProbe],
  [
    "latency",
    "single-stream prefill and decode tokens/s, roofline fraction --model F.gguf [--threads N]",
    runLatency,
  ],
  ["batch-scaling", "decode tokens/s at batch 1, 4, 16, 64 --model F.gguf [--threads N]", runBatchScaling],
  [
    "llama-cpp-compare",
    "vellum vs llama.cpp on one GGUF --model F.gguf [--threads 1,2 --peer-threads 1,2]",
    runLlamaCppCompare,
  ],
  [
    "batching",
    "static vs continuous batching --model F [--tokenizer T] [--backend native|reference]",
    runBatching,
  ],
  ["load-model", "load time and peak RSS of a model: MODEL [--tokenizer PATH]", runLoadModel],
  ["allocate-slots", "cost of KVCacheManager.allocateSlots at 1,000 running requests", runAllocateSlots],
];

export function registerBench(program: Command) {
  const bench = program.command("bench").description("benchmarks");
  for (const [name, description, run] of selfParsing) {
    bench
      .command(name)
      .description(description)
      .helpOption(false)
      .allowUnknownOption()
      .argument("[flags...]")
      .action(runAction((flags: string[]) => run(flags)));
  }
  const serve = bench
    .command("serve")
    .description("load-test an OpenAI-compatible server (vellum, vLLM, llama.cpp) like vLLM's bench serve")
    .option("--base-url <url>", "the server", "http://127.0.0.1:8000")
    .option("--endpoint <type>", "completions, chat", "completions")
    .option("--model <name>", "model name to send (default: the first the server lists)")
    .option("--api-key <key>", "Bearer key (default: $OPENAI_API_KEY)")
    .option("--ignore-eos", "generate exactly the output length")
    .option(
      "--compare <setting=a,b>",
      "start one vellum server per value and run the same workload on each: kv-allocation=paged,contiguous | batching=continuous,static | prefix-caching=on,off",
    )
    .option("--server-model <path>", "--compare: the model the servers load (default: the bundled model)")
    .option("--tokenizer <path>", "--compare: tokenizer for llama2.c models")
    .option("--server-backend <name>", "--compare: native or reference (default: native when built)")
    .option("--kv-cache-memory <size>", "--compare: the servers' KV cache budget")
    .addOption(
      new Option("--kv-cache-dtype <dtype>", "--compare: the servers' KV element type").choices(
        kvCacheDtypes,
      ),
    )
    .option("--max-num-seqs <n>", "--compare: the servers' batch limit", numberOption(true))
    .option("--max-model-len <n>", "--compare: the servers' longest sequence", numberOption(true))
    .option("--report <file.html>", "write a self-contained HTML report with charts")
    .option("--png", "also render the report to PNG with Chromium");
  addWorkloadOptions(serve).action(runAction(runBenchServe));

  const check = bench
    .command("simulate-vs-measured")
    .description(
      "serve a model, run a workload against it, then simulate the same workload on cpu-local and compare (±25%)",
    )
    .requiredOption(
      "--model <file.gguf>",
      "the model both serve (a synth-model file: f32, f16, q8_0 or q4_0)",
    )
    .option("--kv-cache-memory <size>", "KV cache budget of the server and the simulation", "1GiB");
  addWorkloadOptions(check).action(
    runAction((f: WorkloadFlags & { model: string; kvCacheMemory: string }) =>
      runSimulateVsMeasured(
        { modelPath: f.model, kvCacheMemory: f.kvCacheMemory, resultJson: f.resultJson },
        workloadFrom(f),
      ),
    ),
  );

  bench
    .command("soak")
    .description(
      "start a vellum server, run mixed traffic against it (completions, chat, streams, n>1, disconnects, bad bodies, /tokenize) " +
        "and report requests, errors, server RSS, /health latency and whether greedy outputs stayed the same",
    )
    .option("--minutes <n>", "how long the traffic runs (fractions allowed)", numberOption(), 10)
    .option("--model <path>", "the model the server loads (default: the bundled demo model)")
    .option("--tokenizer <path>", "tokenizer for llama2.c models")
    .addOption(
      new Option("--backend <name>", "the server's backend (default: native when built)").choices([
        "native",
        "reference",
      ]),
    )
    .option("--concurrency <n>", "clients sending at once", numberOption(true), 8)
    .option(
      "--max-requests <n>",
      "stop after this many requests even if time remains",
      numberOption(true),
      1_000_000,
    )
    .option("--seed <n>", "seed of the traffic mix", numberOption(true), 0)
    .option("--out <file.json>", "also write the report as JSON")
    .action(runAction(runSoakCommand));
}

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

async function runSoakCommand(f: SoakFlags) {
  if (!(f.minutes > 0)) throw new InputError(`--minutes must be > 0 (got ${f.minutes})`);
  if (f.concurrency < 1) throw new InputError(`--concurrency must be ≥ 1 (got ${f.concurrency})`);
  if (f.maxRequests < 1) throw new InputError(`--max-requests must be ≥ 1 (got ${f.maxRequests})`);
  const report = await runSoak({
    modelPath: resolveModelPath(f.model),
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

async function runBenchServe(f: BenchServeFlags) {
  const workload = workloadFrom(f);
  const target = {
    endpoint: oneOf<Endpoint>("--endpoint", f.endpoint, ["completions", "chat"]),
    ignoreEos: f.ignoreEos ?? false,
  };
  if (f.png && !f.report) throw new InputError("--png renders the HTML report: give --report FILE.html too");
  let runs: BenchRun[];
  if (f.compare) {
    const variants = parseCompare(f.compare);
    const launch = {
      modelPath: resolveModelPath(f.serverModel),
      tokenizer: f.tokenizer,
      backend:
        f.serverBackend === undefined
          ? undefined
          : oneOf<BackendName>("--server-backend", f.serverBackend, ["native", "reference"]),
      kvCacheMemory: f.kvCacheMemory,
      kvCacheDtype: f.kvCacheDtype,
      maxNumSeqs: f.maxNumSeqs,
      maxModelLen: f.maxModelLen,
    };
    runs = await benchCompare(launch, variants, target, workload);
  } else {
    const apiKey = f.apiKey ?? process.env.OPENAI_API_KEY;
    runs = [await benchServe({ ...target, baseUrl: f.baseUrl, model: f.model, apiKey }, workload)];
  }
  for (const run of runs) {
    const firstError = run.records.find((r) => !r.success)?.error;
    process.stdout.write(
      `${formatSummary(run.summary, runs.length > 1 ? run.label : undefined)}\n${firstError ? `first failure: ${firstError}\n` : ""}\n`,
    );
  }
  if (runs.length > 1) process.stdout.write(`${formatComparison(runs)}\n`);
  const meta = {
    date: new Date().toISOString(),
    backend: "openai",
    endpoint_type: f.endpoint,
    model_id: runs[0].model,
    ...(f.compare ? { compare: f.compare } : {}),
    ...workloadMetadata(workload),
  };
  if (f.resultJson) {
    const json =
      runs.length === 1
        ? { ...meta, ...runs[0].summary }
        : { ...meta, variants: runs.map((r) => ({ label: r.label, ...r.summary })) };
    writeFileSync(f.resultJson, `${JSON.stringify(json, null, 2)}\n`);
  }
  if (f.report) {
    const png = await writeHtmlReport(f.report, runs, meta, f.png ?? false);
    process.stderr.write(`report: ${f.report}${png ? `, ${png}` : ""}\n`);
  }
}
