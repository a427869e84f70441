import { type Command, Option } from "commander";
import type { KvCacheDtype } from "../backend/backend.js";
import { physicalCores } from "../backend/native/physical-cores.js";
import { runAllocateSlots } from "../bench/allocate-slots.js";
import { runBatchScaling } from "../bench/batch-scaling.js";
import { runCompare } from "../bench/compare.js";
import { runImageBench } from "../bench/image.js";
import { runLatency } from "../bench/latency.js";
import { defaultLlamaCppDir, runBuildLlamaCpp } from "../bench/llama-cpp/build.js";
import { runLoadModel } from "../bench/load-model.js";
import { runProbe } from "../bench/probe.js";
import { runSamplerBench } from "../bench/sampler.js";
import { runBatching } from "../bench/static-vs-continuous.js";
import { runStructured } from "../bench/structured.js";
import { registerBenchServe } from "./bench-serve.js";
import { registerSoak } from "./bench-soak.js";
import { registerWebOverhead } from "./bench-web-overhead.js";
import { hubModelPath, projectRoot } from "./default-model.js";
import {
  backendOption,
  kernelsOption,
  kvCacheDtypeOption,
  listOption,
  positiveInteger,
  threadsOption,
} from "./options.js";
import { runAction } from "./run-action.js";
import { registerSimulateVsMeasured } from "./simulate-vs-measured.js";

export function registerBench(program: Command) {
  const bench = program.command("bench").description("benchmarks");
  const cores = physicalCores();
  bench
    .command("image")
    .description(
      "build deploy/Dockerfile, serve one completion from a container, time its drain on docker stop (needs a Docker daemon)",
    )
    .option("--tag <tag>", "the image's tag", "vellum:bench")
    .option(
      "--ready-timeout <seconds>",
      "how long the container may take to turn ready",
      positiveInteger,
      300,
    )
    .action(
      runAction((o: { tag: string; readyTimeout: number }) => runImageBench({ root: projectRoot, ...o })),
    );
  bench
    .command("probe")
    .description(
      "read bandwidth with 1–8 streams per thread and int8/bf16/f32 peaks, on 1 thread and --threads",
    )
    .addOption(threadsOption(cores))
    .option("--out <file.json>", "where the results go (default: $TMPDIR/vellum-bench/probe-tN.json)")
    .action(runAction(runProbe));

  nativeBench(bench, "latency", "single-stream prefill and decode tokens/s, and decode's roofline fraction")
    .addOption(threadsOption(cores))
    .option("--prompt <n>", "prompt tokens of the prefill", positiveInteger, 512)
    .option("--decode <n>", "decode steps after it", positiveInteger, 32)
    .option("--runs <n>", "runs of each; medians are reported", positiveInteger, 3)
    .action(runAction(withLocalModel(runLatency)));

  nativeBench(bench, "batch-scaling", "decode tokens/s at batch 1, 4, 16, 64")
    .addOption(threadsOption(cores))
    .addOption(
      new Option("--batches <list>", "batch sizes")
        .argParser(listOption(positiveInteger))
        .default([1, 4, 16, 64], "1,4,16,64"),
    )
    .option("--context <n>", "context tokens of every sequence", positiveInteger, 256)
    .action(runAction(withLocalModel(runBatchScaling)));

  bench
    .command("build-llama-cpp")
    .description(
      "build a native llama.cpp (llama-bench, llama-batched-bench, llama-server) from the source node-llama-cpp ships, for bench compare",
    )
    .option("--dir <dir>", "where its source and build go", defaultLlamaCppDir())
    .option("--configure-only", "clone and configure, do not build")
    .action(runAction(runBuildLlamaCpp));

  nativeBench(
    bench,
    "compare",
    "vellum ÷ a native llama.cpp on one GGUF: every measure of issue 19, in one run",
    "f16", // llama.cpp's KV cache type: both engines read the same KV bytes a token
  )
    .requiredOption(
      "--llama-cpp <dir>",
      "the directory of llama-bench, llama-batched-bench and llama-server (bench build-llama-cpp prints it)",
    )
    .addOption(threadsOption(cores))
    .option("--prompt <n>", "prompt tokens of the prefill; decode runs after them", positiveInteger, 512)
    .option("--decode <n>", "single-stream decode steps", positiveInteger, 32)
    .option("--batch <n>", "sequences of the batched decode", positiveInteger, 16)
    .option("--batch-context <n>", "context tokens of each of them", positiveInteger, 256)
    .addOption(
      new Option("--streams <list>", "concurrent streams of each server run")
        .argParser(listOption(positiveInteger))
        .default([16, 1], "16,1"),
    )
    .option("--input-len <n>", "prompt tokens of each server request", positiveInteger, 64)
    .option("--output-len <n>", "output tokens of each server request", positiveInteger, 128)
    .option("--requests-per-stream <n>", "server requests per stream", positiveInteger, 2)
    .option("--runs <n>", "alternated runs; medians are compared", positiveInteger, 3)
    .action(runAction(withLocalModel(runCompare)));

  nativeBench(
    bench,
    "structured",
    "structured outputs: tokens/s with a JSON schema on every stream vs none, and the mask's time per token at 32k and 128k vocabularies",
  )
    .addOption(threadsOption(cores))
    .option("--streams <n>", "concurrent streams", positiveInteger, 16)
    .option("--max-tokens <n>", "tokens each stream generates", positiveInteger, 64)
    .option("--runs <n>", "alternated runs of each; medians are compared", positiveInteger, 3)
    .action(runAction(withLocalModel(runStructured)));

  bench
    .command("sampler")
    .description("sampling's ms per logits row: the JS Sampler vs the native batch sampler, side by side")
    .addOption(
      new Option("--vocab <list>", "vocabulary sizes")
        .argParser(listOption(positiveInteger))
        .default([32000, 128000], "32000,128000"),
    )
    .option("--rows <n>", "rows per native call", positiveInteger, 16)
    .option("--runs <n>", "timed runs of each; medians are reported", positiveInteger, 5)
    .addOption(threadsOption(cores))
    .addOption(kernelsOption().default("auto"))
    .option("--out <file.json>", "where the results go (default: $TMPDIR/vellum-bench/sampler-tN.json)")
    .action(runAction(runSamplerBench));

  bench
    .command("batching")
    .description("static vs continuous batching on one workload, and the scheduler's cost per step")
    .requiredOption(
      "--model <path|ref>",
      "GGUF file, Hugging Face directory, llama2.c .bin or hf:ORG/REPO[:QUANT]",
    )
    .option("--tokenizer <path>", "tokenizer file for formats that keep it apart (llama2.c tokenizer.bin)")
    .addOption(backendOption("reference"))
    .option("--repeat <n>", "runs of each mode; the median is reported", positiveInteger, 3)
    .option("--json <file>", "also write the report as JSON")
    .action(runAction(withLocalModel(runBatching)));

  bench
    .command("load-model")
    .description("load time and peak RSS of a model")
    .argument("<model>", "GGUF file, Hugging Face directory, llama2.c .bin or hf:ORG/REPO[:QUANT]")
    .option("--tokenizer <path>", "tokenizer file for formats that keep it apart (llama2.c tokenizer.bin)")
    .action(
      runAction(async (model: string, f: { tokenizer?: string }) =>
        runLoadModel(await hubModelPath(model), f),
      ),
    );

  bench
    .command("allocate-slots")
    .description("cost of KVCacheManager.allocateSlots at 1,000 running requests")
    .action(runAction(runAllocateSlots));

  registerBenchServe(bench);
  registerSimulateVsMeasured(bench);
  registerSoak(bench);
  registerWebOverhead(bench);
}

/** An action whose `--model` may be a Hub ref, given the local path instead. */
function withLocalModel<F extends { model: string }>(run: (f: F) => Promise<void>) {
  return async (f: F) => run({ ...f, model: await hubModelPath(f.model) });
}

/** A benchmark of one GGUF on the native backend: the flags all of them take but --threads. */
function nativeBench(
  bench: Command,
  name: string,
  description: string,
  kvCacheDtype: KvCacheDtype = "f32",
): Command {
  return bench
    .command(name)
    .description(description)
    .requiredOption("--model <file.gguf>", "the model (a synth-model file, or hf:ORG/REPO:QUANT)")
    .addOption(kvCacheDtypeOption().default(kvCacheDtype))
    .addOption(kernelsOption().default("auto"))
    .option("--out <file.json>", "where the results go (default: $TMPDIR/vellum-bench/NAME-MODEL-tN.json)");
}
