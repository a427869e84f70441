import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelConfig } from "../../model/config.js";
import type { DType } from "../../model/tensor.js";
import type { ForwardTimes, KvCacheDtype } from "../backend.js";
import type { RopeParams } from "../reference/ops.js";

/**
 * The C++ addon (native/src/addon.cc): the native backend (native/src/backend/) and the training GEMM
 * (native/src/gemm.cc), built by `node-gyp rebuild` into build/Release/vellum_native.node. This module is its
 * one loader.
 */

/** The ModelConfig fields the addon takes as they are. */
export const nativeConfigFields = [
  "dim",
  "hiddenDim",
  "nLayers",
  "nHeads",
  "nKvHeads",
  "headDim",
  "vocabSize",
  "normEps",
  "ropeTheta",
  "ropeDims",
  "layerWindows",
  "qkNorm",
  "postNorms",
  "embeddingScale",
  "attentionScale",
  "attnSoftcap",
  "finalLogitSoftcap",
] as const satisfies readonly (keyof ModelConfig)[];

/**
 * The config NativeModel reads (native/src/backend/model.h, whose field list it gives as `configFields`): the
 * fields above, plus the rest written as numbers and flags — ropeStyle as `ropeNeox`, ffnActivation as `geluTanh`,
 * ropeScaling's fields flattened (neutral values without scaling) and ropeThetaLocal (0 without one).
 */
export type NativeModelConfig = Pick<ModelConfig, (typeof nativeConfigFields)[number]> & {
  ropeNeox: boolean;
  geluTanh: boolean;
  ropeFreqScale: number;
  ropeExtFactor: number;
  ropeAttnFactor: number;
  ropeBetaFast: number;
  ropeBetaSlow: number;
  ropeOriginalContext: number;
  ropeThetaLocal: number;
};

/**
 * A weight as the addon takes it: [rows, cols] row-major in GGUF's block layout, from a buffer or one of the
 * mapped files (its index in `files`).
 */
export type NativeTensorSpec = { dtype: DType; rows: number; cols: number } & (
  | { data: Uint8Array }
  | { file: number; offset: number }
);

export interface NativeLayerSpec {
  attnNorm: NativeTensorSpec;
  ffnNorm: NativeTensorSpec;
  wq: NativeTensorSpec;
  wk: NativeTensorSpec;
  wv: NativeTensorSpec;
  wo: NativeTensorSpec;
  gate: NativeTensorSpec;
  up: NativeTensorSpec;
  down: NativeTensorSpec;
  bq?: NativeTensorSpec;
  bk?: NativeTensorSpec;
  bv?: NativeTensorSpec;
  /** With qkNorm. */
  qNorm?: NativeTensorSpec;
  kNorm?: NativeTensorSpec;
  /** With postNorms. */
  postAttnNorm?: NativeTensorSpec;
  postFfnNorm?: NativeTensorSpec;
}

export interface NativeModelSpec {
  config: NativeModelConfig;
  weights: {
    embedding: NativeTensorSpec;
    outputNorm: NativeTensorSpec;
    classifier: NativeTensorSpec;
    /** RoPE's frequency divisors, the one set the served context uses (ropeFactorsTensor). */
    ropeFactors?: NativeTensorSpec;
    layers: NativeLayerSpec[];
  };
  /** GGUF files to memory-map (the shards of a split model); tensors with a `file` and `offset` point into them. */
  files?: string[];
  threads: number;
  /** "auto" picks the best path this CPU runs; the others force one. */
  kernels: KernelPath;
}

export const kernelPathNames = ["auto", "avx512-bf16", "avx512-vnni", "avx2", "scalar"] as const;
export type KernelPath = (typeof kernelPathNames)[number];

/**
 * Rows sampled natively: each row's token (-1 where a row has no finite value to draw from), and with
 * log-probabilities its log Σ exp(raw) and its min(logprobs, vocabulary) best raw ids, rows back to back.
 */
export interface NativeSampleResult {
  tokenIds: Int32Array;
  logNormalizers: Float64Array;
  topIds: Int32Array;
}

/** Told how many bytes of weights have been laid out for the kernels, of how many (0 of 0: none to lay out). */
export type InterleaveProgress = (doneBytes: number, totalBytes: number) => void;

export interface NativeModel {
  readonly kernelPath: string;
  readonly threads: number;
  /**
   * Lays the weights out for the kernels (interleaved copies) on a worker thread, so the event loop runs on;
   * onProgress is called on the JS thread as it goes, the last time with done = total, before the promise
   * resolves. Once, before initKvCache, forward, sample and mappedWeightBytes.
   */
  prepare(onProgress?: InterleaveProgress): Promise<void>;
  /** Bytes of the mapped files the kernels read in place (weights without an interleaved copy); 0 without files. */
  readonly mappedWeightBytes: number;
  /** False while a thread still makes the KV cache's pages resident (zeroed-pages.h). */
  readonly kvCacheResident: boolean;
  /** The split of the last forward pass (model.h ForwardTimes); zeros before the first. */
  readonly lastForwardTimes: ForwardTimes;
  /** groups: the layers of each KV cache group (KvCacheSpec.groups). */
  initKvCache(numBlocks: number, blockSize: number, dtype: KvCacheDtype, groups: Int32Array[]): void;
  /**
   * One slot mapping per KV cache group; block tables per group and sequence, group by group. Given `out` (at least
   * the logits' floats), the logits go into its start and the result is a view of it.
   */
  forward(
    tokenIds: Int32Array,
    positions: Int32Array,
    slotMappings: Int32Array[],
    queryStartLoc: Int32Array,
    seqLens: Int32Array,
    blockTables: Int32Array[],
    logitsIndices: Int32Array,
    out?: Float32Array,
  ): Promise<Float32Array>;
  /**
   * Samples rows[r] (log-probabilities from raw[r]) on the model's threads; params holds 6 numbers per row:
   * temperature, topK, topP, minP, u, logprobs. Not while forward runs.
   */
  sample(rows: Float32Array[], raw: Float32Array[], params: Float64Array): Promise<NativeSampleResult>;
}

export interface NativeModelClass {
  new (spec: NativeModelSpec): NativeModel;
  /** The names of the config fields the constructor reads. */
  readonly configFields: readonly string[];
}

/**
 * C = op(A) · op(B) (or C += … with `accumulate`), row-major with leading dimensions: op(A) is M×K (A stored K×M
 * when transA), op(B) is K×N (B stored N×K when transB), C is M×N. Matrices may be subarray views. Runs
 * synchronously on `threads` threads.
 */
export type NativeGemm = (
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  lda: number,
  B: Float32Array,
  ldb: number,
  C: Float32Array,
  ldc: number,
  accumulate: boolean,
  threads: number,
) => void;

/** Read bandwidth when each thread reads `streams` separate regions in one loop, over repeated runs. */
export interface ReadPoint {
  streams: number;
  medianBytesPerSecond: number;
  bestBytesPerSecond: number;
}

/** The peak rate of one compute instruction a kernel path runs; a multiply-add counts as 2 ops. */
export interface ComputePeak {
  path: KernelPath;
  /** e.g. "int8 vpdpbusd zmm" */
  instruction: string;
  opsPerSecond: number;
}

export interface ProbeResult {
  /** The best of readCurve's best figures: what roofline fractions divide by. */
  readBytesPerSecond: number;
  /** 1, 2, 4 and 8 streams per thread. */
  readCurve: ReadPoint[];
  /** The best f32 FMA peak over the paths this CPU runs. */
  fmaFlopsPerSecond: number;
  /** The best int8 multiply-add peak. */
  int8OpsPerSecond: number;
  /** Only where the CPU has AVX512_BF16. */
  bf16FlopsPerSecond?: number;
  peaks: ComputePeak[];
}

export interface NativeAddon {
  NativeModel: NativeModelClass;
  /** The f32 GEMM training runs on (native/src/gemm.cc). */
  gemm: NativeGemm;
  /** y [T, rows] = x [T, cols] · wᵀ. */
  kernelMatmul(
    kernels: KernelPath,
    dtype: DType,
    w: Uint8Array,
    rows: number,
    cols: number,
    x: Float32Array,
    T: number,
    threads: number,
  ): Float32Array;
  /** Caches: both f32 values, or both f16 bits (Uint16Array). Default scale 1/√headDim, no softcap, no window. */
  kernelAttention(
    kernels: KernelPath,
    q: Float32Array,
    kCache: Float32Array | Uint16Array,
    vCache: Float32Array | Uint16Array,
    positions: Int32Array,
    queryStartLoc: Int32Array,
    blockTables: Int32Array[],
    nHeads: number,
    nKvHeads: number,
    headDim: number,
    blockSize: number,
    threads: number,
    options?: { scale?: number; softcap?: number; window?: number },
  ): Float32Array;
  /** x as one row of a `dtype` KV cache: f32 values, or f16 bits as the native path rounds them. */
  kernelStoreKv(kernels: KernelPath, dtype: KvCacheDtype, x: Float32Array): Float32Array | Uint16Array;
  /** x (whole 32-value blocks) quantized for integer matmuls: per block a scale d and 32 int8 q. */
  kernelQuantizeActs(kernels: KernelPath, x: Float32Array): { d: Float32Array; q: Int8Array };
  kernelRmsNorm(x: Float32Array, weight: Float32Array, T: number, n: number, eps: number): Float32Array;
  /** Rotates x: [T, nHeads, headDim] in place. */
  kernelRope(x: Float32Array, positions: Int32Array, nHeads: number, headDim: number, rope: RopeParams): void;
  /** gate ← silu(gate) · up, in place. */
  kernelSwiglu(kernels: KernelPath, gate: Float32Array, up: Float32Array): void;
  /** gate ← gelu_tanh(gate) · up, in place. */
  kernelGeglu(kernels: KernelPath, gate: Float32Array, up: Float32Array): void;
  /** Rows `ids` of a [rows, cols] tensor as f32: the embedding lookup. */
  kernelDequantizeRows(
    dtype: DType,
    w: Uint8Array,
    rows: number,
    cols: number,
    ids: Int32Array,
  ): Float32Array;
  /** NativeModel.sample's work, synchronous, on a given kernel path. */
  kernelSample(
    kernels: KernelPath,
    rows: Float32Array[],
    raw: Float32Array[],
    params: Float64Array,
    vocabSize: number,
    threads: number,
  ): NativeSampleResult;
  /** This machine's limits on `threads` threads, reading a buffer of `bufferBytes` (all 0 without AVX2+FMA). */
  probe(threads: number, bufferBytes: number): ProbeResult;
  /** The kernel path "auto" picks on this CPU, e.g. "avx2+fma". */
  bestKernelPath(): string;
  /** The paths this CPU runs, "scalar" first: what tests compare. */
  kernelPaths(): KernelPath[];
}

/** build/ sits three levels above this file both in src/backend/native and in dist/backend/native. */
export const addonPath = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "build",
  "Release",
  "vellum_native.node",
);

let cached: NativeAddon | Error | undefined;

/** The addon, or the Error saying why it cannot load (not built, or built without the backend). */
export function loadNativeAddon(): NativeAddon | Error {
  if (cached === undefined) {
    try {
      const addon = createRequire(import.meta.url)(addonPath) as Partial<NativeAddon>;
      cached = addon.NativeModel
        ? (addon as NativeAddon)
        : new Error(`${addonPath}: the addon has no native backend (rebuild it with \`npm run install\`)`);
    } catch (err) {
      const reason = err instanceof Error ? err.message.split("\n")[0] : String(err);
      cached = new Error(
        `${addonPath}: cannot load the native addon (rebuild it with \`npm run install\`): ${reason}`,
      );
    }
  }
  return cached;
}

/** The addon; throws the load error when it is missing. */
export function nativeAddon(): NativeAddon {
  const addon = loadNativeAddon();
  if (addon instanceof Error) throw addon;
  return addon;
}
