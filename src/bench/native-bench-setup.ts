/**
 * What the native benchmarks share: options, loading a GGUF onto the native backend without keeping a JS
 * copy of its weights, the bytes one decode step reads (for roofline fractions), medians, JSON.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { KvCacheDtype } from "../backend/backend.js";
import { type KernelPath, nativeAddon } from "../backend/native/addon.js";
import { NativeBackend } from "../backend/native/native-backend.js";
import { kvBytesPerToken } from "../core/kv-cache-sizing.js";
import { tensorNames } from "../model/config.js";
import { readGgufFile } from "../model/formats/gguf-reader.js";
import { loadModel } from "../model/load.js";
import type { LoadedModel } from "../model/model.js";

/** What every native benchmark takes; src/cli/bench.ts defines the flags. */
export interface NativeBenchOptions {
  model: string;
  threads: number;
  kvCacheDtype: KvCacheDtype;
  /** "auto" (the best this CPU runs) or a path to force, to compare paths on one machine. */
  kernels: KernelPath;
  /** Where the results go as JSON (default: resultPath). */
  out?: string;
}

/** $TMPDIR/vellum-bench/NAME.json, where a benchmark writes its results unless given --out. */
export function resultPath(name: string): string {
  return join(tmpdir(), "vellum-bench", `${name}.json`);
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
export async function loadBenchModel(o: NativeBenchOptions): Promise<BenchModel> {
  const model = loadModel(o.model);
  const backend = await NativeBackend.load(model, { threads: o.threads, kernels: o.kernels });
  const c = model.config;
  let weightBytes = 0;
  for (const t of readGgufFile(o.model).tensors) {
    const embeddingOnly = t.name === tensorNames.tokenEmbedding && !c.tiedEmbeddings;
    weightBytes += embeddingOnly ? t.byteLength / c.vocabSize : t.byteLength;
  }
  const kvBytes = (ctx: number) => ctx * kvBytesPerToken(c, o.kvCacheDtype);
  return { model, backend, weightBytes, kvBytes };
}

/** Read bandwidth over stream counts and compute peaks on `threads` threads (ProbeResult). */
export function probe(threads: number) {
  return nativeAddon().probe(threads, 512 * 2 ** 20);
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

/** Writes a benchmark's results on one model to --out, by default $TMPDIR/vellum-bench/BENCH-MODEL-tTHREADS.json. */
export function writeModelResult(
  bench: string,
  opts: Pick<NativeBenchOptions, "model" | "out">,
  threads: number,
  data: object,
): void {
  writeJson(opts.out ?? resultPath(`${bench}-${basename(opts.model, ".gguf")}-t${threads}`), data);
}

export const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
