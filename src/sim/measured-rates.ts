/**
 * What vellum's hot paths really achieve on this machine, for the `cpu-local` profile, measured on the
 * model's own shapes. A datasheet roofline assumes peak bandwidth at batch 1 and peak FLOPs when batched;
 * a CPU's int8 matmul reaches neither (it is instruction-bound, see issue 7), its attention is far from FMA
 * peak, and sampling in JS costs time per sequence, so the simulator times each by these rates instead:
 * - matmul: seconds per weight byte at a range of batch sizes, over weights far larger than the caches
 *   (as a model's are) with rows as long as the model's: `dim` inputs (Q, K, V, O, gate, up, classifier)
 *   and `hiddenDim` inputs (down), averaged by their share of the weights;
 * - attention: FLOP/s of decode attention over a 512-token paged context with the model's heads, on an
 *   f32 cache for fp32 KV and on f16 (what the native backend runs) for the narrower KV dtypes;
 * - sampling: seconds the Sampler takes per vocabulary entry of a row, greedy (the temperature 0 that
 *   `bench serve` sends, like vLLM's benchmark).
 */
import { randomFillSync } from "node:crypto";
import type { KernelPath, NativeAddon } from "../backend/native/addon.js";
import type { ModelConfig } from "../model/config.js";
import type { DType } from "../model/tensor.js";
import { Sampler } from "../runner/sampler.js";
import { defaultSamplingParams } from "../runner/sampling-params.js";
import { matmulParameterCount } from "./model-profile.js";
import type { KvDtype, WeightDtype } from "./plan.js";

export interface MeasuredRates {
  weightDtype: WeightDtype;
  /** Batch sizes (tokens), ascending. */
  batches: number[];
  /** Matmul seconds per weight byte at each batch size. */
  secondsPerWeightByte: number[];
  /** Decode attention, 4 · headDim FLOPs per (query head, key) pair. */
  attentionFlopsPerS: number;
  /** Sampling one token, per vocabulary entry. */
  samplingSecondsPerLogit: number;
}

/** The GGUF type vellum stores each weight dtype as (plan.ts: weightBytesPerParam), and its block. */
const storedAs: Record<WeightDtype, { dtype: DType; values: number; bytes: number }> = {
  fp32: { dtype: "f32", values: 1, bytes: 4 },
  fp16: { dtype: "f16", values: 1, bytes: 2 },
  int8: { dtype: "q8_0", values: 32, bytes: 34 },
  int4: { dtype: "q4_0", values: 32, bytes: 18 },
};

const probeBatches = [1, 2, 4, 8, 16, 32, 64];
/** Twice the largest last-level cache in sight, so every call streams the weight from DRAM. */
const probeWeightBytes = 64 * 2 ** 20;
/** Runs per figure; the median is kept: what a run typically sees on a machine shared with other work. */
const repeats = 7;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function typicalSeconds(run: () => void): number {
  const seconds: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const started = performance.now();
    run();
    seconds.push((performance.now() - started) / 1000);
  }
  return median(seconds);
}

const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);

/** A [rows, cols] weight of random values with finite, moderate scales, as the file stores it. */
function randomWeight(weightDtype: WeightDtype, rows: number, cols: number): Uint8Array {
  const { values, bytes } = storedAs[weightDtype];
  const data = randomFillSync(new Uint8Array((rows * cols * bytes) / values));
  const view = new DataView(data.buffer);
  if (weightDtype === "int8" || weightDtype === "int4") {
    for (let at = 0; at < data.length; at += bytes) view.setUint16(at, 0x2000, true); // scale 2^-7
  } else if (weightDtype === "fp16") {
    for (let at = 0; at < data.length; at += 2) view.setUint16(at, view.getUint16(at, true) & 0xbbff, true);
  } else {
    for (let at = 0; at < data.length; at += 4) view.setFloat32(at, Math.random() - 0.5, true);
  }
  return data;
}

function matmulSecondsPerByte(
  addon: NativeAddon,
  kernels: KernelPath,
  weightDtype: WeightDtype,
  cols: number,
  threads: number,
): number[] {
  const { dtype, values, bytes } = storedAs[weightDtype];
  const rows = Math.floor(probeWeightBytes / ((cols * bytes) / values));
  const weight = randomWeight(weightDtype, rows, cols);
  const x = random(probeBatches[probeBatches.length - 1] * cols);
  // Rounds over every batch size, so a slow spell of a shared machine touches all of them alike.
  const seconds = probeBatches.map(() => [] as number[]);
  for (let r = 0; r < repeats; r++) {
    probeBatches.forEach((T, i) => {
      const started = performance.now();
      addon.kernelMatmul(kernels, dtype, weight, rows, cols, x, T, threads);
      seconds[i].push((performance.now() - started) / 1000);
    });
  }
  return seconds.map((s) => median(s) / weight.length);
}

function attentionFlopsPerS(
  addon: NativeAddon,
  kernels: KernelPath,
  c: ModelConfig,
  kvDtype: KvDtype,
  threads: number,
): number {
  const numSeqs = 8;
  const context = 512;
  const blockSize = 16;
  const blocksPerSeq = context / blockSize;
  const length = numSeqs * context * c.nKvHeads * c.headDim;
  const cache = kvDtype === "fp32" ? random(length) : new Uint16Array(length).fill(0x3000); // f16 0.125
  // Sequence s owns blocks s·blocksPerSeq …, and decodes its last position.
  const tables = Array.from({ length: numSeqs }, (_, s) =>
    Int32Array.from({ length: blocksPerSeq }, (_, b) => s * blocksPerSeq + b),
  );
  const positions = new Int32Array(numSeqs).fill(context - 1);
  const queryStartLoc = Int32Array.from({ length: numSeqs + 1 }, (_, s) => s);
  const q = random(numSeqs * c.nHeads * c.headDim);
  const seconds = typicalSeconds(() =>
    addon.kernelAttention(
      kernels,
      q,
      cache,
      cache,
      positions,
      queryStartLoc,
      tables,
      c.nHeads,
      c.nKvHeads,
      c.headDim,
      blockSize,
      threads,
    ),
  );
  return (numSeqs * context * c.nHeads * 4 * c.headDim) / seconds;
}

function samplingSecondsPerLogit(vocabSize: number): number {
  const logits = random(vocabSize);
  const sampler = new Sampler({ ...defaultSamplingParams, temperature: 0 });
  const rows = 20;
  const seconds = typicalSeconds(() => {
    for (let i = 0; i < rows; i++) sampler.sample(logits, [], []);
  });
  return seconds / rows / vocabSize;
}

/** What the rates are measured for: the model's shapes and the dtypes it is simulated with. */
export interface MeasuredRatesFor {
  config: ModelConfig;
  weightDtype: WeightDtype;
  kvDtype: KvDtype;
}

export function measureRates(addon: NativeAddon, f: MeasuredRatesFor, threads: number): MeasuredRates {
  const kernels: KernelPath = "auto";
  const c = f.config;
  const downShare = (c.nLayers * c.dim * c.hiddenDim) / matmulParameterCount(c);
  const byHidden = matmulSecondsPerByte(addon, kernels, f.weightDtype, c.hiddenDim, threads);
  return {
    weightDtype: f.weightDtype,
    batches: probeBatches,
    secondsPerWeightByte: matmulSecondsPerByte(addon, kernels, f.weightDtype, f.config.dim, threads).map(
      (s, i) => (1 - downShare) * s + downShare * byHidden[i],
    ),
    attentionFlopsPerS: attentionFlopsPerS(addon, kernels, f.config, f.kvDtype, threads),
    samplingSecondsPerLogit: samplingSecondsPerLogit(f.config.vocabSize),
  };
}

/**
 * Seconds to multiply `bytes` of weights by a batch of `tokens`: linear between measured batch sizes, and
 * proportional to tokens beyond the largest (64, the native matmul's token chunk: a larger batch goes through
 * in chunks of 64, each streaming the weights again).
 */
export function matmulSeconds(rates: MeasuredRates, bytes: number, tokens: number): number {
  if (tokens <= 0) return 0;
  const { batches: b, secondsPerWeightByte: s } = rates;
  const last = b.length - 1;
  if (tokens >= b[last]) return (bytes * s[last] * tokens) / b[last];
  let i = 1;
  while (b[i] < tokens) i++;
  const at = Math.max(tokens, b[0]);
  return bytes * (s[i - 1] + ((s[i] - s[i - 1]) * (at - b[i - 1])) / (b[i] - b[i - 1]));
}
