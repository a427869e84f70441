/**
 * What vellum's hot paths really achieve on this machine, for the `cpu-local` profile, measured on the
 * model's own shapes. A datasheet roofline assumes peak bandwidth at batch 1 and peak FLOPs when batched;
 * a CPU's int8 forward pass reaches neither (its matmul is instruction-bound, small steps pay for many small
 * matrices and thread hand-offs, see issue 7), attention is far from FMA peak, and sampling runs in JS; so
 * the simulator times each part by what it measures here instead:
 * - forward: seconds per weight byte of a decode step at a range of batch sizes, timing the native
 *   backend's whole forward pass (short contexts) on a synthetic model of the model's shapes and weight
 *   dtype, with as many layers as make ~128 MiB of weights (far beyond the caches, as a model's are);
 * - attention: FLOP/s of decode attention over a 512-token paged context with the model's heads, on an
 *   f32 cache for fp32 KV and on f16 (what the native backend runs) for the narrower KV dtypes;
 * - sampling: seconds the Sampler takes per vocabulary entry of a row, greedy (the temperature 0 that
 *   `bench serve` sends, like vLLM's benchmark).
 */
import { randomFillSync } from "node:crypto";
import { type KernelPath, loadNativeAddon, type NativeAddon } from "../backend/native/addon.js";
import { specFromTensors } from "../backend/native/native-spec.js";
import { physicalCores } from "../backend/native/physical-cores.js";
import { samplingParams } from "../core/sampling-params.js";
import { expectedTensors, type ModelConfig, tensorNames } from "../model/config.js";
import { dtypeLayout, tensorBytes } from "../model/dtype.js";
import { allowsQuantization, fallbackType } from "../model/quant/mixes.js";
import { type DType, numElements, type Tensor } from "../model/tensor.js";
import { Sampler } from "../runner/sampler.js";
import { stepBatch } from "../workload/step-batch.js";
import { weightBytesPerParam, weightStoredAs } from "./plan.js";
import type { HardwareProfile, KvDtype, MeasuredRates, WeightDtype } from "./types.js";

/** What the rates are measured for: the model's shapes and the dtypes it is simulated with. */
export interface MeasuredRatesFor {
  config: ModelConfig;
  weightDtype: WeightDtype;
  kvDtype: KvDtype;
}

const probeBatches = [1, 2, 4, 8, 16, 32, 64];
const probeLayerBytes = 128 * 2 ** 20;
/** Runs per figure; the median is kept: what a run typically sees on a machine shared with other work. */
const repeats = 5;
const blockSize = 16;

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

/** Random bytes as a `dtype` tensor, with finite moderate values: speed does not depend on them. */
function randomTensor(shape: number[], dtype: DType): Tensor {
  if (dtype === "f32") return { dtype, shape, data: new Uint8Array(random(numElements(shape)).buffer) };
  const data = randomFillSync(new Uint8Array(tensorBytes(dtype, shape)));
  const view = new DataView(data.buffer);
  // f16: clear the exponent's top bits (|x| < 1); q8_0/q4_0: each block starts with its f16 scale, 2^-7.
  const { bytesPerBlock } = dtypeLayout[dtype];
  for (let at = 0; at < data.length; at += bytesPerBlock)
    view.setUint16(at, dtype === "f16" ? view.getUint16(at, true) & 0xbbff : 0x2000, true);
  return { dtype, shape, data };
}

/** The model's shapes with enough layers for ~probeLayerBytes of weights (at least one). */
function probeModel(
  c: ModelConfig,
  weightDtype: WeightDtype,
): { config: ModelConfig; tensors: Map<string, Tensor> } {
  const layerBytes =
    weightBytesPerParam[weightDtype] *
    [...expectedTensors({ ...c, nLayers: 1 })]
      .filter(([name]) => name.startsWith("blk."))
      .reduce((n, [, shape]) => n + numElements(shape), 0);
  // Tied embeddings: the classifier costs the same, and the table is not held twice.
  const nLayers = Math.max(1, Math.min(c.nLayers, Math.floor(probeLayerBytes / layerBytes)));
  const config = { ...c, nLayers, layerWindows: c.layerWindows.slice(0, nLayers), tiedEmbeddings: true };
  const tensors = new Map<string, Tensor>();
  // Every matrix in the one type (llama-quantize --pure), so the rate is that type's.
  const matrixType = (name: string, shape: number[]) =>
    allowsQuantization(name, shape)
      ? fallbackType(weightStoredAs[weightDtype], shape[shape.length - 1])
      : "f32";
  for (const [name, shape] of expectedTensors(config))
    tensors.set(name, randomTensor(shape, matrixType(name, shape)));
  return { config, tensors };
}

/** Bytes of the matrices a token goes through: every tensor but the embedding table (unless tied). */
function matmulBytes(tensors: Map<string, Tensor>, c: ModelConfig): number {
  let total = 0;
  for (const [name, t] of tensors)
    if (name !== tensorNames.tokenEmbedding || c.tiedEmbeddings) total += t.data.length;
  return total;
}

async function forwardSecondsPerByte(
  addon: NativeAddon,
  kernels: KernelPath,
  f: MeasuredRatesFor,
  threads: number,
): Promise<number[]> {
  const { config, tensors } = probeModel(f.config, f.weightDtype);
  const model = new addon.NativeModel(
    specFromTensors(config, tensors, "probe", threads, kernels, config.maxSeqLen),
  );
  const maxBatch = probeBatches[probeBatches.length - 1];
  const everyLayer = [Int32Array.from({ length: config.nLayers }, (_, l) => l)];
  model.initKvCache(maxBatch, blockSize, f.kvDtype === "fp32" ? "f32" : "f16", everyLayer);
  // Every sequence of the batch decodes at position blockSize − 1 of its own block (short contexts).
  const steps = probeBatches.map((B) =>
    stepBatch(new Array(B).fill(blockSize - 1), new Array(B).fill(1), 1, blockSize, config.vocabSize),
  );
  const forward = (i: number) => {
    const b = steps[i];
    return model.forward(
      b.tokenIds,
      b.positions,
      b.slotMappings,
      b.queryStartLoc,
      b.seqLens,
      b.blockTables.flat(),
      b.logitsIndices,
    );
  };
  await forward(probeBatches.length - 1); // warm-up: scratch buffers grow once
  // Rounds over every batch size, so a slow spell of a shared machine touches all of them alike.
  const seconds = probeBatches.map(() => [] as number[]);
  for (let r = 0; r < repeats; r++) {
    for (let i = 0; i < probeBatches.length; i++) {
      const started = performance.now();
      await forward(i);
      seconds[i].push((performance.now() - started) / 1000);
    }
  }
  const bytes = matmulBytes(tensors, config);
  return seconds.map((s) => median(s) / bytes);
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
  const sampler = new Sampler(samplingParams({ temperature: 0 }));
  const rows = 20;
  const seconds = typicalSeconds(() => {
    for (let i = 0; i < rows; i++) sampler.sample(logits, [], []);
  });
  return seconds / rows / vocabSize;
}

export async function measureRates(
  addon: NativeAddon,
  f: MeasuredRatesFor,
  threads: number,
): Promise<MeasuredRates> {
  const kernels: KernelPath = "auto";
  return {
    weightDtype: f.weightDtype,
    batches: probeBatches,
    secondsPerWeightByte: await forwardSecondsPerByte(addon, kernels, f, threads),
    attentionFlopsPerS: attentionFlopsPerS(addon, kernels, f.config, f.kvDtype, threads),
    samplingSecondsPerLogit: samplingSecondsPerLogit(f.config.vocabSize),
  };
}

/**
 * `profile` with vellum's measured rates when it is cpu-local and the native addon loads (on all physical
 * cores, as `vellum serve` runs); any other profile as it is.
 */
export async function withMeasuredRates(
  profile: HardwareProfile,
  f: MeasuredRatesFor,
): Promise<HardwareProfile> {
  const addon = loadNativeAddon();
  if (profile.name !== "cpu-local" || addon instanceof Error) return profile;
  const measuredRates = await measureRates(addon, f, physicalCores());
  return {
    ...profile,
    description: `${profile.description}; ${f.weightDtype} forward, attention and sampling timed on the model's shapes`,
    measuredRates,
  };
}

/**
 * Forward-pass seconds for `bytes` of weights and a batch of `tokens`: linear between measured batch sizes, and
 * proportional to tokens beyond the largest (64, the native matmul's token chunk: a larger batch goes through
 * in chunks of 64, each streaming the weights again).
 */
export function forwardSeconds(rates: MeasuredRates, bytes: number, tokens: number): number {
  if (tokens <= 0) return 0;
  const { batches: b, secondsPerWeightByte: s } = rates;
  const last = b.length - 1;
  if (tokens >= b[last]) return (bytes * s[last] * tokens) / b[last];
  let i = 1;
  while (b[i] < tokens) i++;
  const at = Math.max(tokens, b[0]);
  return bytes * (s[i - 1] + ((s[i] - s[i - 1]) * (at - b[i - 1])) / (b[i] - b[i - 1]));
}
