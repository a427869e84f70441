/**
 * vellum side by side with a native llama.cpp (`bench build-llama-cpp` builds it) on one GGUF, every measure of
 * issue 19 in one run: prefill of a 512-token prompt (llama-bench -p 512 -n 0 vs one forward pass), single-stream
 * decode after it (llama-bench -p 0 -n N -d 512 vs decode steps), 16 sequences decoding together
 * (llama-batched-bench -fa on vs one 16-sequence step), and a server under 16 concurrent streams and under 1
 * (`vellum serve` vs `llama-server -np N -fa on`, the same load generator, same context per sequence, both told
 * to ignore EOS so every request generates exactly its output length). Runs alternate (vellum, llama.cpp, vellum,
 * …) so both see the same machine state; medians are compared. The read bandwidth and the int8 peak that the
 * roofline fractions divide by are measured in the same run.
 * Usage: vellum bench compare --llama-cpp DIR --model FILE.gguf [--threads 2] [--runs 3] [--out F]
 */
import { readFileSync } from "node:fs";
import { untilKvCacheResident } from "../backend/backend.js";
import { tensorNames } from "../model/config.js";
import { readGgufFile } from "../model/formats/gguf-reader.js";
import { defaultServeSettings } from "../workload/compare.js";
import { stepBatch } from "../workload/step-batch.js";
import { workloadFrom } from "../workload/workload.js";
import { batchDecodeKvBlocks, batchDecodeStepSeconds, benchBlockSize } from "./batch-scaling.js";
import { batchedBenchSpeed, llamaBenchSpeed } from "./llama-cpp/bench-tools.js";
import { llamaCppBinaries } from "./llama-cpp/binaries.js";
import {
  type CompareSettings,
  compareRows,
  type EngineFigures,
  formatCompareTable,
  type ServerFigures,
} from "./llama-cpp/compare-table.js";
import { partialUtf8Tokens, startLlamaServer } from "./llama-cpp/llama-server.js";
import {
  gb,
  loadBenchModel,
  median,
  type NativeBenchOptions,
  probe,
  timed,
  writeModelResult,
} from "./native-bench-setup.js";
import { benchServe } from "./serve/bench-serve.js";
import type { StartedServer } from "./serve/start-server.js";
import { startServer } from "./serve/start-server.js";

export interface CompareOptions extends NativeBenchOptions {
  /** The directory of llama-bench, llama-batched-bench and llama-server. */
  llamaCpp: string;
  /** Prompt tokens of the prefill; single-stream decode runs after them. */
  prompt: number;
  /** Single-stream decode steps. */
  decode: number;
  /** Sequences of the batched decode. */
  batch: number;
  /** Context tokens of each of them. */
  batchContext: number;
  /** Concurrent streams of each server run. */
  streams: number[];
  /** Prompt and output tokens of each server request. */
  inputLen: number;
  outputLen: number;
  /** Server requests per stream. */
  requestsPerStream: number;
  runs: number;
}

/** "AMD EPYC 9R45 (family 26, model 17)": the CPU of /proc/cpuinfo's text, which every figure depends on. */
export function cpuDescription(cpuinfo: string): string {
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(cpuinfo)?.[1].trim();
  const name = field("model name") ?? "unknown CPU";
  const family = field("cpu family");
  const model = field("model");
  return family && model ? `${name} (family ${family}, model ${model})` : name;
}

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}

/** Multiply-add ops of one token through the model's matrices: 2 per weight (the embedding is a lookup unless tied). */
function matmulOpsPerToken(path: string, tiedEmbeddings: boolean): number {
  let weights = 0;
  for (const t of readGgufFile(path).tensors) {
    if (t.shape.length !== 2 || (t.name === tensorNames.tokenEmbedding && !tiedEmbeddings)) continue;
    weights += t.shape[0] * t.shape[1];
  }
  return 2 * weights;
}

/** Output tokens/s and TTFT p50 of the workload against one server, which is stopped afterwards. */
async function serverFigures(
  server: StartedServer,
  streams: number,
  o: CompareOptions,
  vocabSize: number,
): Promise<ServerFigures> {
  const workload = workloadFrom({
    dataset: "random",
    numPrompts: streams * o.requestsPerStream,
    inputLen: o.inputLen,
    outputLen: o.outputLen,
    rangeRatio: 0,
    prefixLen: 0,
    vocabSize: Math.min(500, vocabSize),
    requestRate: "inf",
    burstiness: 1,
    maxConcurrency: streams,
    seed: 0,
  });
  try {
    const run = await benchServe(
      { baseUrl: server.baseUrl, endpoint: "completions", ignoreEos: true },
      workload,
      "compare",
      false,
    );
    const short = run.records.find((r) => !r.success || r.outputTokens !== o.outputLen);
    if (short)
      throw new Error(
        `a request to ${server.baseUrl} ${short.error ? `failed: ${short.error}` : `generated ${short.outputTokens} tokens, not ${o.outputLen}`}`,
      );
    return {
      streams,
      outputTokensPerSecond: run.summary.output_throughput,
      ttftP50Seconds: run.summary.median_ttft_ms / 1000,
    };
  } finally {
    await server.stop();
  }
}

export async function runCompare(o: CompareOptions) {
  const bin = llamaCppBinaries(o.llamaCpp);
  const { model, backend, weightBytes, kvBytes } = await loadBenchModel(o);
  const vocab = model.config.vocabSize;
  const cpu = cpuDescription(readCpuinfo());
  const singleBlocks = Math.ceil((o.prompt + o.decode + 1) / benchBlockSize);
  const batched = { batch: o.batch, context: o.batchContext, steps: 8 };
  backend.initKvCache({
    numBlocks: Math.max(singleBlocks, batchDecodeKvBlocks(batched)),
    blockSize: benchBlockSize,
    dtype: o.kvCacheDtype,
  });
  await untilKvCacheResident(backend);
  const prompt = stepBatch([0], [o.prompt], singleBlocks, benchBlockSize, vocab);
  // Kept across steps, as the engine's runner keeps it: a fresh array a step pays its allocation and page faults.
  const logits = new Float32Array(vocab);
  // The roofs, measured before and after the runs: the machine's bandwidth drifts with other tenants, and the best
  // of the two is the most the runs between could have had.
  const roofBefore = probe(o.threads);
  // Each server sequence holds its prompt and output; llama.cpp pads a slot's context to a multiple of 256.
  const contextPerSequence = Math.ceil((o.inputLen + o.outputLen) / 256) * 256;
  const llamaRun = { model: o.model, threads: o.threads };
  const banned = partialUtf8Tokens(model.tokenizer, vocab);
  const prefillTest = ["-p", String(o.prompt), "-n", "0"];
  const decodeTest = ["-p", "0", "-n", String(o.decode), "-d", String(o.prompt)];

  type Samples = { prefill: number[]; decode: number[]; batched: number[]; server: ServerFigures[] };
  const samples = (): Samples => ({ prefill: [], decode: [], batched: [], server: [] });
  const ours = samples();
  const theirs = samples();
  for (let r = 0; r < o.runs; r++) {
    process.stderr.write(`run ${r + 1} of ${o.runs}\n`);
    // A warm-up in every run: spawning llama.cpp forks this process, which leaves every page it has written
    // copy-on-write, and the next forward pass pays ~20,000 page faults (half the speed of small-160m's prefill).
    // llama-bench warms up before each test too.
    await backend.forward(prompt, logits);
    ours.prefill.push(o.prompt / (await timed(() => backend.forward(prompt, logits))));
    const decodeStart = performance.now();
    for (let s = 0; s < o.decode; s++)
      await backend.forward(stepBatch([o.prompt + s], [1], singleBlocks, benchBlockSize, vocab), logits);
    ours.decode.push(o.decode / ((performance.now() - decodeStart) / 1000));
    theirs.prefill.push(await llamaBenchSpeed(bin["llama-bench"], llamaRun, prefillTest));
    theirs.decode.push(await llamaBenchSpeed(bin["llama-bench"], llamaRun, decodeTest));

    ours.batched.push(o.batch / median(await batchDecodeStepSeconds(backend, vocab, batched)));
    theirs.batched.push(
      await batchedBenchSpeed(bin["llama-batched-bench"], llamaRun, {
        parallel: o.batch,
        context: o.batchContext,
        steps: batched.steps,
      }),
    );

    for (const streams of o.streams) {
      const vellumServer = await startServer({
        modelPath: o.model,
        settings: defaultServeSettings,
        threads: o.threads,
        kvCacheDtype: o.kvCacheDtype,
        kvCacheBytes: kvBytes(streams * contextPerSequence),
        maxNumSeqs: streams,
        maxModelLen: contextPerSequence,
      });
      ours.server.push(await serverFigures(vellumServer, streams, o, vocab));
      const llamaServer = await startLlamaServer({
        binary: bin["llama-server"],
        model: o.model,
        threads: o.threads,
        parallel: streams,
        contextPerSequence,
        banned,
      });
      theirs.server.push(await serverFigures(llamaServer, streams, o, vocab));
    }
  }

  const medians = (s: Samples): EngineFigures => ({
    prefillTokensPerSecond: median(s.prefill),
    decodeTokensPerSecond: median(s.decode),
    batchedDecodeTokensPerSecond: median(s.batched),
    server: o.streams.map((streams) => {
      const runs = s.server.filter((f) => f.streams === streams);
      return {
        streams,
        outputTokensPerSecond: median(runs.map((f) => f.outputTokensPerSecond)),
        ttftP50Seconds: median(runs.map((f) => f.ttftP50Seconds)),
      };
    }),
  });
  const roofAfter = probe(o.threads);
  const readBytesPerSecond = Math.max(roofBefore.readBytesPerSecond, roofAfter.readBytesPerSecond);
  const int8OpsPerSecond = Math.max(roofBefore.int8OpsPerSecond, roofAfter.int8OpsPerSecond);
  const settings: CompareSettings = {
    prompt: o.prompt,
    batch: o.batch,
    readBytesPerSecond,
    int8OpsPerSecond,
    bytesPerDecodeToken: weightBytes + kvBytes(o.prompt + o.decode / 2),
    opsPerToken: matmulOpsPerToken(o.model, model.config.tiedEmbeddings),
  };
  const vellum = medians(ours);
  const llamaCpp = medians(theirs);
  const rows = compareRows(settings, vellum, llamaCpp);
  console.log(`${o.model}, ${o.threads} threads, ${o.runs} alternated runs, medians`);
  console.log(`CPU: ${cpu}; vellum's kernel path ${backend.kernelPath}`);
  console.log(
    `this run's read bandwidth ${gb(readBytesPerSecond)} GB/s, int8 peak ${gb(int8OpsPerSecond)} GOP/s; KV cache: vellum ${o.kvCacheDtype}, llama.cpp f16`,
  );
  console.log(
    `batched: ${o.batch} sequences at ${o.batchContext} tokens; servers: ${o.inputLen}-token prompts, ${o.outputLen} output tokens, requests per stream ${o.requestsPerStream}`,
  );
  console.log(formatCompareTable(rows));
  writeModelResult("compare", o, o.threads, {
    model: o.model,
    cpu,
    kernelPath: backend.kernelPath,
    threads: o.threads,
    runs: o.runs,
    settings,
    workload: { inputLen: o.inputLen, outputLen: o.outputLen, requestsPerStream: o.requestsPerStream },
    vellum,
    llamaCpp,
    rows,
    samples: { vellum: ours, llamaCpp: theirs },
  });
}
