/**
 * What the native benchmarks share: options, loading a GGUF onto the native backend without keeping a JS
 * copy of its weights, the bytes one decode step reads (for roofline fractions), batches, medians, JSON.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import type { ForwardBatch } from "../backend/backend.js";
import { type KernelPath, kernelPathNames, nativeAddon } from "../backend/native/addon.js";
import { NativeBackend } from "../backend/native/native-backend.js";
import { physicalCores } from "../backend/native/physical-cores.js";
import { type KvCacheDtype, kvBytesPerToken, kvCacheDtypes } from "../core/kv-cache-sizing.js";
import { tensorNames } from "../model/config.js";
import { readGgufFile } from "../model/formats/gguf-reader.js";
import { loadModel } from "../model/load.js";
import type { LoadedModel } from "../model/model.js";

export interface BenchOptions {
  model: string;
  /** The first of --threads. */
  threads: number;
  /** --threads as a list ("1,2"), for benchmarks that compare thread counts. */
  threadList: number[];
  kvCacheDtype: KvCacheDtype;
  /** --kernels: "auto" (the best this CPU runs) or a path to force, to compare paths on one machine. */
  kernels: KernelPath;
  out: string;
}

/**
 * --model FILE.gguf [--threads N] [--kv-cache-dtype f32|f16] [--kernels PATH] [--out FILE.json]; extra string
 * options by name.
 */
export function benchOptions(bench: string, argv: string[], extra: Record<string, string> = {}) {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      threads: { type: "string" },
      "kv-cache-dtype": { type: "string", default: "f32" },
      kernels: { type: "string", default: "auto" },
      out: { type: "string" },
      ...Object.fromEntries(Object.keys(extra).map((k) => [k, { type: "string" as const }])),
    },
  });
  if (!values.model)
    throw new Error(`usage: bench ${bench} --model FILE.gguf [--threads N] [--out FILE.json]`);
  const threadList = values.threads ? String(values.threads).split(",").map(Number) : [physicalCores()];
  if (!threadList.every((t) => Number.isInteger(t) && t >= 1))
    throw new Error("--threads must be a positive integer (or a list such as 1,2)");
  const threads = threadList[0];
  const kvCacheDtype = values["kv-cache-dtype"] as KvCacheDtype;
  if (!kvCacheDtypes.includes(kvCacheDtype))
    throw new Error(`--kv-cache-dtype must be one of ${kvCacheDtypes.join(", ")} (got "${kvCacheDtype}")`);
  const kernels = values.kernels as KernelPath;
  if (!kernelPathNames.includes(kernels))
    throw new Error(`--kernels must be one of ${kernelPathNames.join(", ")} (got "${kernels}")`);
  const out =
    (values.out as string | undefined) ??
    join(tmpdir(), "vellum-bench", `${bench}-${basename(values.model as string, ".gguf")}-t${threads}.json`);
  const opts: BenchOptions = { model: values.model as string, threads, threadList, kvCacheDtype, kernels, out };
  const get = (k: string) => (values as Record<string, string | undefined>)[k] ?? extra[k];
  return { opts, get };
}

export interface BenchModel {
  model: LoadedModel;
  backend: NativeBackend;
  /** Weight bytes one decode step reads: every matrix once, plus one embedding row. */
  weightBytes: number;
  /** KV cache bytes a token at context length `ctx` reads (K and V of every layer). */
  kvBytes(ctx: number): number;
}

/** The model on the native backend, weights memory-mapped (the GGUF loader reads none of them). */
export function loadBenchModel(
  path: string,
  threads: number,
  kvCacheDtype: KvCacheDtype,
  kernels: KernelPath = "auto",
): BenchModel {
  const model = loadModel(path);
  const backend = new NativeBackend(model, { threads, kernels });
  const c = model.config;
  let weightBytes = 0;
  for (const t of readGgufFile(path).tensors) {
    const embeddingOnly = t.name === tensorNames.tokenEmbedding && !c.tiedEmbeddings;
    weightBytes += embeddingOnly ? t.byteLength / c.vocabSize : t.byteLength;
  }
  const kvBytes = (ctx: number) => ctx * kvBytesPerToken(c, kvCacheDtype);
  return { model, backend, weightBytes, kvBytes };
}

/** Read bandwidth (bytes/s) and f32 FMA peak (FLOP/s) on `threads` threads. */
export function probe(threads: number) {
  return nativeAddon().probe(threads, 512 * 2 ** 20);
}

/**
 * One step over sequences that each own `blocksPer` consecutive blocks (sequence s: blocks s·blocksPer …):
 * sequence s gets tokens at positions starts[s] … starts[s] + counts[s] − 1; logits for each one's last token.
 */
export function stepBatch(
  starts: number[],
  counts: number[],
  blocksPer: number,
  blockSize: number,
  vocabSize: number,
): ForwardBatch {
  const tokenIds: number[] = [];
  const positions: number[] = [];
  const slots: number[] = [];
  const queryStartLoc = [0];
  const logitsIndices: number[] = [];
  starts.forEach((start, s) => {
    for (let p = start; p < start + counts[s]; p++) {
      tokenIds.push((p * 7919 + s * 104729 + 3) % vocabSize);
      positions.push(p);
      slots.push((s * blocksPer + Math.floor(p / blockSize)) * blockSize + (p % blockSize));
    }
    queryStartLoc.push(tokenIds.length);
    logitsIndices.push(tokenIds.length - 1);
  });
  return {
    tokenIds: Int32Array.from(tokenIds),
    positions: Int32Array.from(positions),
    slotMapping: Int32Array.from(slots),
    queryStartLoc: Int32Array.from(queryStartLoc),
    seqLens: Int32Array.from(starts.map((st, s) => st + counts[s])),
    blockTables: starts.map((_, s) => Int32Array.from({ length: blocksPer }, (_, i) => s * blocksPer + i)),
    logitsIndices: Int32Array.from(logitsIndices),
  };
}

/** Seconds one awaited call takes. */
export async function timed(f: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await f();
  return (performance.now() - start) / 1000;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Writes the results with the machine's load average: other processes' load skews every timing. */
export function writeJson(path: string, data: object): void {
  const load = { loadAverage1m: loadavg()[0], cpus: availableParallelism() };
  console.log(`machine load average (1 min): ${load.loadAverage1m.toFixed(1)} on ${load.cpus} CPUs`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify({ ...data, ...load }, null, 2)}\n`);
  console.log(`wrote ${path}`);
}

export const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
