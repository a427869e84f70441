import { writeFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { type KvCacheDtype, kvCacheDtypes } from "../backend/backend.js";
import type { BackendName } from "../backend/native/choose-backend.js";
import { type BenchRun, benchCompare, benchServe } from "../bench/serve/bench-serve.js";
import { formatComparison } from "../bench/serve/compare-table.js";
import { writeHtmlReport } from "../bench/serve/html-report.js";
import { formatSummary } from "../bench/serve/report-text.js";
import { InputError } from "../model/errors.js";
import { parseCompare } from "../workload/compare.js";
import type { Endpoint } from "../workload/openai-client.js";
import { type WorkloadFlags, workloadFrom, workloadMetadata } from "../workload/workload.js";
import { resolveModel } from "./default-model.js";
import { addWorkloadOptions, byteSizeOption, positiveInteger } from "./options.js";
import { runAction } from "./run-action.js";

interface BenchServeFlags extends WorkloadFlags {
  baseUrl: string;
  endpoint: Endpoint;
  model?: string;
  apiKey?: string;
  ignoreEos?: boolean;
  compare?: string;
  serverModel?: string;
  tokenizer?: string;
  serverBackend?: BackendName;
  kvCacheMemory?: number;
  kvCacheDtype?: KvCacheDtype;
  maxNumSeqs?: number;
  maxModelLen?: number;
  report?: string;
  png?: boolean;
}

export function registerBenchServe(bench: Command) {
  const serve = bench
    .command("serve")
    .description("load-test an OpenAI-compatible server (vellum, vLLM, llama.cpp) like vLLM's bench serve")
    .option("--base-url <url>", "the server", "http://127.0.0.1:8000")
    .addOption(
      new Option("--endpoint <type>", "the API to load")
        .choices(["completions", "chat"])
        .default("completions"),
    )
    .option("--model <name>", "model name to send (default: the first the server lists)")
    .option("--api-key <key>", "Bearer key (default: $OPENAI_API_KEY)")
    .option("--ignore-eos", "generate exactly the output length")
    .option(
      "--compare <setting=a,b>",
      "start one vellum server per value and run the same workload on each: kv-allocation=paged,contiguous | batching=continuous,static | prefix-caching=on,off",
    )
    .option(
      "--server-model <path|ref>",
      "--compare: the model the servers load, a path or hf:ORG/REPO[:QUANT] (default: the bundled model)",
    )
    .option("--tokenizer <path>", "--compare: tokenizer for llama2.c models")
    .addOption(
      new Option(
        "--server-backend <name>",
        "--compare: the servers' backend (default: native when built)",
      ).choices(["native", "reference"]),
    )
    .addOption(byteSizeOption("--kv-cache-memory <size>", "--compare: the servers' KV cache budget"))
    .addOption(
      new Option("--kv-cache-dtype <dtype>", "--compare: the servers' KV element type").choices(
        kvCacheDtypes,
      ),
    )
    .option("--max-num-seqs <n>", "--compare: the servers' batch limit", positiveInteger)
    .option("--max-model-len <n>", "--compare: the servers' longest sequence", positiveInteger)
    .option("--report <file.html>", "write a self-contained HTML report with charts")
    .option("--png", "also render the report to PNG with Chromium");
  addWorkloadOptions(serve).action(runAction(runBenchServe));
}

async function runBenchServe(f: BenchServeFlags) {
  const workload = workloadFrom(f);
  const target = { endpoint: f.endpoint, ignoreEos: f.ignoreEos ?? false };
  if (f.png && !f.report) throw new InputError("--png renders the HTML report: give --report FILE.html too");
  let runs: BenchRun[];
  if (f.compare) {
    const variants = parseCompare(f.compare);
    const launch = {
      modelPath: await resolveModel(f.serverModel),
      tokenizer: f.tokenizer,
      backend: f.serverBackend,
      kvCacheBytes: f.kvCacheMemory,
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
