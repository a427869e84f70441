/**
 * vellum's native backend side by side with llama.cpp (node-llama-cpp 3.21.1, CPU) on the same GGUF, same
 * prompt ids and lengths: prefill tokens/s of a 512-token prompt and decode tokens/s after it. Runs alternate
 * (vellum, llama.cpp, vellum, …) so both see the same machine state; medians are compared. llama.cpp runs
 * at each of --peer-threads (its workers spin, so on few cores fewer threads can be faster) and its best
 * setting is the one the ratios use; vellum likewise runs at each of --threads (a list) and its best counts.
 * Usage: vellum bench llama-cpp-compare --model FILE.gguf [--threads 1,2] [--peer-threads 1,2]
 *        [--prompt 512] [--decode 32] [--runs 3] [--out F]
 */
import type { Token } from "node-llama-cpp";
import type { Backend } from "../backend/backend.js";
import { NativeBackend } from "../backend/native/native-backend.js";
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

export async function runLlamaCppCompare(opts: LlamaCppCompareOptions) {
  const { threads: ourThreads, peerThreads, prompt: promptLen, decode: decodeSteps, runs } = opts;
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

  // Imported only here: node-llama-cpp is a dev dependency, and every other command runs without it.
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const peerModel = await llama.loadModel({ modelPath: opts.model });
  const contexts = new Map<number, Awaited<ReturnType<typeof peerModel.createContext>>>();
  for (const t of [...new Set(peerThreads)])
    contexts.set(
      t,
      await peerModel.createContext({ contextSize: blocks * blockSize, threads: t, batchSize: promptLen }),
    );

  const ours = new Map<number, Speeds>(ourThreads.map((t) => [t, { prefill: [], decode: [] }]));
  const theirs = new Map<number, Speeds>(peerThreads.map((t) => [t, { prefill: [], decode: [] }]));
  const promptIds = [...prompt.tokenIds] as Token[];
  for (let r = 0; r < runs; r++) {
    for (const [t, b] of backends) {
      const speeds = ours.get(t) as Speeds;
      speeds.prefill.push(promptLen / (await timed(() => b.forward(prompt))));
      const decodeStart = performance.now();
      for (let s = 0; s < decodeSteps; s++)
        await b.forward(stepBatch([promptLen + s], [1], blocks, blockSize, vocab));
      speeds.decode.push(decodeSteps / ((performance.now() - decodeStart) / 1000));
    }
    for (const [t, context] of contexts) {
      const sequence = context.getSequence();
      await sequence.clearHistory();
      const speeds = theirs.get(t) as Speeds;
      speeds.prefill.push(
        promptLen / (await timed(() => sequence.evaluateWithoutGeneratingNewTokens(promptIds))),
      );
      const tokens = sequence.evaluate([promptIds[1]], { temperature: 0 })[Symbol.asyncIterator]();
      const start = performance.now();
      for (let s = 0; s < decodeSteps; s++) await tokens.next();
      speeds.decode.push(decodeSteps / ((performance.now() - start) / 1000));
      await tokens.return?.();
      sequence.dispose();
    }
  }

  const summarize = (m: Map<number, Speeds>) =>
    [...m].map(([t, s]) => ({ threads: t, prefill: median(s.prefill), decode: median(s.decode), raw: s }));
  const vellum = summarize(ours);
  const peers = summarize(theirs);
  console.log(`${opts.model}: prompt ${promptLen}, decode ${decodeSteps}, ${runs} alternated runs, medians`);
  console.log("engine                     | prefill tok/s | decode tok/s");
  const row = (name: string, p: { prefill: number; decode: number }) =>
    console.log(
      `${name.padEnd(26)} | ${p.prefill.toFixed(1).padStart(13)} | ${p.decode.toFixed(2).padStart(12)}`,
    );
  for (const p of vellum) row(`vellum native (${p.threads} threads)`, p);
  for (const p of peers) row(`llama.cpp (${p.threads} threads)`, p);
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
  for (const context of contexts.values()) await context.dispose();
  await peerModel.dispose();
  await llama.dispose();
}
