/**
 * vellum's native backend side by side with a native llama.cpp (its `llama-bench`, built with CMake Release
 * -DGGML_NATIVE=ON from the source node-llama-cpp ships; see the README) on the same GGUF: prefill tokens/s of a
 * 512-token prompt and decode tokens/s after it (llama-bench's tg at depth = the prompt). Runs alternate (vellum,
 * llama.cpp, vellum, …) so both see the same machine state; medians are compared. llama.cpp runs at each of
 * --peer-threads (its workers spin, so on few cores fewer threads can be faster) and its best setting is the one
 * the ratios use; vellum likewise runs at each of --threads (a list) and its best counts.
 * Usage: vellum bench llama-cpp-compare --model FILE.gguf --llama-bench PATH [--threads 1,2] [--peer-threads 1,2]
 *        [--prompt 512] [--decode 32] [--runs 3] [--out F]
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import type { Backend } from "../backend/backend.js";
import { NativeBackend } from "../backend/native/native-backend.js";
import { InputError } from "../model/errors.js";
import { stepBatch } from "../workload/step-batch.js";
import {
  loadBenchModel,
  median,
  type NativeBenchOptions,
  timed,
  writeModelResult,
} from "./native-bench-setup.js";

export interface LlamaCppCompareOptions extends Omit<NativeBenchOptions, "threads"> {
  /** vellum's thread counts; the best counts. */
  threads: number[];
  /** llama.cpp's thread counts; the best counts. */
  peerThreads: number[];
  /** Path of a native llama-bench binary. */
  llamaBench: string;
  /** Prompt tokens of the prefill. */
  prompt: number;
  /** Decode steps after it. */
  decode: number;
  runs: number;
}

interface Speeds {
  prefill: number[];
  decode: number[];
}

/** One llama-bench test's mean tokens/s (`-o json` prints an array of tests; this asks for exactly one). */
async function llamaBenchSpeed(binary: string, args: string[]): Promise<number> {
  const { stdout } = await promisify(execFile)(binary, [...args, "-r", "1", "-o", "json"], {
    maxBuffer: 16 * 2 ** 20,
  });
  const tests = JSON.parse(stdout) as { avg_ts: number }[];
  if (tests.length !== 1)
    throw new Error(`${binary} ${args.join(" ")}: expected one test, got ${tests.length}`);
  return tests[0].avg_ts;
}

export async function runLlamaCppCompare(opts: LlamaCppCompareOptions) {
  const { threads: ourThreads, peerThreads, prompt: promptLen, decode: decodeSteps, runs } = opts;
  if (!existsSync(opts.llamaBench)) {
    throw new InputError(
      `--llama-bench ${opts.llamaBench}: no such file (build llama.cpp natively as the README's Benchmarks section says)`,
    );
  }
  const { model, backend } = loadBenchModel({ ...opts, threads: ourThreads[0] });
  const vocab = model.config.vocabSize;
  const blockSize = 16;
  const blocks = Math.ceil((promptLen + decodeSteps + 1) / blockSize);
  // The GGUF is mapped again for each further thread count (the loader's copies are already dropped).
  const backends = new Map<number, Backend>([[ourThreads[0], backend]]);
  for (const t of ourThreads.slice(1))
    backends.set(t, new NativeBackend(model, { threads: t, kernels: opts.kernels }));
  for (const b of backends.values())
    b.initKvCache({ numBlocks: blocks, blockSize, dtype: opts.kvCacheDtype });
  const prompt = stepBatch([0], [promptLen], blocks, blockSize, vocab);
  // llama-bench runs an f16 KV cache (it has no f32 one): compare with --kv-cache-dtype f16 for like with like.
  const kvType = ["-ctk", "f16", "-ctv", "f16"];

  const ours = new Map<number, Speeds>(ourThreads.map((t) => [t, { prefill: [], decode: [] }]));
  const theirs = new Map<number, Speeds>(peerThreads.map((t) => [t, { prefill: [], decode: [] }]));
  for (let r = 0; r < runs; r++) {
    for (const [t, b] of backends) {
      const speeds = ours.get(t) as Speeds;
      speeds.prefill.push(promptLen / (await timed(() => b.forward(prompt))));
      const decodeStart = performance.now();
      for (let s = 0; s < decodeSteps; s++)
        await b.forward(stepBatch([promptLen + s], [1], blocks, blockSize, vocab));
      speeds.decode.push(decodeSteps / ((performance.now() - decodeStart) / 1000));
    }
    for (const t of peerThreads) {
      const speeds = theirs.get(t) as Speeds;
      const common = ["-m", opts.model, "-t", String(t), ...kvType];
      speeds.prefill.push(
        await llamaBenchSpeed(opts.llamaBench, [...common, "-p", String(promptLen), "-n", "0"]),
      );
      speeds.decode.push(
        await llamaBenchSpeed(opts.llamaBench, [
          ...common,
          ...["-p", "0", "-n", String(decodeSteps), "-d", String(promptLen)],
        ]),
      );
    }
  }

  const summarize = (m: Map<number, Speeds>) =>
    [...m].map(([t, s]) => ({ threads: t, prefill: median(s.prefill), decode: median(s.decode), raw: s }));
  const vellum = summarize(ours);
  const peers = summarize(theirs);
  console.log(`${opts.model}: prompt ${promptLen}, decode ${decodeSteps}, ${runs} alternated runs, medians`);
  console.log(`KV cache: vellum ${opts.kvCacheDtype}, llama.cpp f16`);
  console.log(`${"engine".padEnd(30)} | prefill tok/s | decode tok/s`);
  const row = (name: string, p: { prefill: number; decode: number }) =>
    console.log(
      `${name.padEnd(30)} | ${p.prefill.toFixed(1).padStart(13)} | ${p.decode.toFixed(2).padStart(12)}`,
    );
  for (const p of vellum) row(`vellum native (${p.threads} threads)`, p);
  for (const p of peers) row(`llama.cpp native (${p.threads} threads)`, p);
  const best = (list: { prefill: number; decode: number }[], key: "prefill" | "decode") =>
    Math.max(...list.map((p) => p[key]));
  const ratios = {
    prefill: best(vellum, "prefill") / best(peers, "prefill"),
    decode: best(vellum, "decode") / best(peers, "decode"),
  };
  console.log(
    `vellum / llama.cpp (best setting of each): prefill ${ratios.prefill.toFixed(2)}, decode ${ratios.decode.toFixed(2)}`,
  );
  writeModelResult("llama-cpp-compare", opts, ourThreads[0], {
    model: opts.model,
    promptTokens: promptLen,
    decodeTokens: decodeSteps,
    runs,
    kernelPath: backend.kernelPath,
    vellum,
    llamaCpp: peers,
    ratios,
  });
}
