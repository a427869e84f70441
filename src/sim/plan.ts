import type { ModelConfig } from "../model/config.js";
import { dtypeLayout } from "../model/dtype.js";
import { InputError } from "../model/errors.js";
import type { DType } from "../model/tensor.js";
import { type ModelProfile, matmulParameterCount, parameterCount } from "./model-profile.js";
import { type HardwareProfile, type KvDtype, type WeightDtype, weightDtypes } from "./types.js";

/** The GGUF type vellum stores each weight dtype as: int8 and int4 are q8_0 / q4_0 (32 weights + an f16 scale). */
export const weightStoredAs: Record<WeightDtype, DType> = {
  fp32: "f32",
  fp16: "f16",
  int8: "q8_0",
  int4: "q4_0",
};

/** Bytes per weight as vellum stores them (int8: 34/32, int4: 18/32). */
export const weightBytesPerParam = Object.fromEntries(
  weightDtypes.map((w) => {
    const { bytesPerBlock, blockSize } = dtypeLayout[weightStoredAs[w]];
    return [w, bytesPerBlock / blockSize];
  }),
) as Record<WeightDtype, number>;
/** The round figures a back-of-envelope calculation uses (no block scales). */
const nominalBytesPerParam: Record<WeightDtype, number> = { fp32: 4, fp16: 2, int8: 1, int4: 0.5 };
const kvBytesPerElement: Record<KvDtype, number> = { fp32: 4, fp16: 2, fp8: 1, int8: 1 };

/** K and V of every layer for one token. */
export function kvBytesPerToken(c: ModelConfig, dtype: KvDtype): number {
  return 2 * c.nLayers * c.nKvHeads * c.headDim * kvBytesPerElement[dtype];
}

/**
 * K and V of a sequence's `tokens` tokens as a paged cache with sliding-window layers holds them: each window
 * layer only its window, rounded up to whole blocks of blockSize tokens (1: tokens exactly).
 */
export function kvBytesPerSequence(c: ModelConfig, dtype: KvDtype, tokens: number, blockSize = 1): number {
  const perLayerToken = kvBytesPerToken(c, dtype) / c.nLayers;
  let slots = 0;
  for (const w of c.layerWindows) slots += Math.ceil((w === 0 ? tokens : Math.min(tokens, w)) / blockSize);
  return slots * blockSize * perLayerToken;
}

/** The longest sequence whose K/V fit in budgetBytes (Infinity when every layer is a window and they all fit). */
function longestSequence(c: ModelConfig, dtype: KvDtype, budgetBytes: number): number {
  const perLayerToken = kvBytesPerToken(c, dtype) / c.nLayers;
  if (c.layerWindows.every((w) => w > 0)) {
    if (kvBytesPerSequence(c, dtype, Math.max(...c.layerWindows)) <= budgetBytes)
      return Number.POSITIVE_INFINITY;
  }
  // kvBytesPerSequence grows with tokens, by at least one layer's token each: search [0, budget / that].
  let lo = 0;
  let hi = Math.floor(budgetBytes / perLayerToken);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (kvBytesPerSequence(c, dtype, mid) <= budgetBytes) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export interface PlanInput {
  model: ModelProfile;
  hardware: HardwareProfile;
  weightDtype: WeightDtype;
  kvDtype: KvDtype;
  maxModelLen: number;
  /** Average tokens (prompt + output) a request holds: what paging reserves. */
  avgTokens: number;
  blockSize: number;
  /** Memory that is neither weights nor KV cache: activations, CUDA context, fragmentation. */
  overheadBytes: number;
  /** Context length of the decode step whose time floor is reported. */
  contextTokens: number;
  /** Prompt length of the prefill whose time is reported. */
  promptTokens: number;
}

/** A step's time under the roofline: whichever of moving the bytes and doing the FLOPs takes longer. */
export interface StepFloor {
  bytes: number;
  flops: number;
  memoryTimeS: number;
  computeTimeS: number;
  timeS: number;
  bound: "memory" | "compute";
}

/** Every figure exact, from the shapes, in bytes and seconds (decimal units when printed). */
export interface Plan {
  params: number;
  weightBytes: number;
  kvBytesPerToken: number;
  kvBytesPerMaxRequest: number;
  memoryBytes: number;
  kvBudgetBytes: number;
  /** Requests at max-model-len that fit when each reserves max-model-len up front, and the share of that reservation unused at avg-tokens. */
  preallocated: { maxRequests: number; waste: number };
  /** Requests at avg-tokens that fit with blocks allocated on demand, and the share of their blocks unused (the last partial block). */
  paged: { maxRequests: number; waste: number; blocksPerRequest: number; usableBlocks: number };
  decodeFloor: StepFloor;
  /** One decode step of the whole paged batch at avg-tokens: what continuous batching reaches. */
  batchedDecode: StepFloor & { tokensPerS: number };
  prefill: StepFloor;
  /** Tokens of KV cache one sequence could hold with all the KV memory. */
  longestSequence: number;
  /** The same, for each weight dtype (null: the weights do not fit). */
  longestSequenceByDtype: Record<WeightDtype, number | null>;
  backOfEnvelope: BackOfEnvelope;
}

/**
 * The textbook's arithmetic: the size in the model's name, 2/1/0.5 bytes per weight, and every figure
 * rounded to 0.1 of the unit it is quoted in (GB, MB, TB/s) before the next step uses it — or, for a figure
 * that would round to 0 (a small model's KV per token), to two significant digits; counts round down.
 */
export interface BackOfEnvelope {
  weightsGB: number;
  kvMBPerToken: number;
  requestGB: number;
  memoryGB: number;
  leftGB: number;
  preallocatedRequests: number;
  pagedRequests: number;
  bandwidthTBps: number;
  decodeFloorMs: number;
}

export function computePlan(p: PlanInput): Plan {
  const c = p.model.config;
  if (p.avgTokens > p.maxModelLen) {
    throw new InputError(`--avg-tokens ${p.avgTokens} is more than --max-model-len ${p.maxModelLen}`);
  }
  const params = parameterCount(c);
  const kvBytes = kvBytesPerToken(c, p.kvDtype);
  const kvOf = (tokens: number) => kvBytesPerSequence(c, p.kvDtype, tokens);
  const weightBytes = params * weightBytesPerParam[p.weightDtype];
  const kvBudgetBytes = p.hardware.memoryBytes - weightBytes - p.overheadBytes;
  const longestSequenceByDtype = Object.fromEntries(
    weightDtypes.map((d) => {
      const left = p.hardware.memoryBytes - params * weightBytesPerParam[d] - p.overheadBytes;
      return [d, left > 0 ? longestSequence(c, p.kvDtype, left) : null];
    }),
  ) as Record<WeightDtype, number | null>;
  if (kvBudgetBytes <= 0) throw doesNotFit(p, weightBytes, longestSequenceByDtype);

  const kvBytesPerMaxRequest = kvOf(p.maxModelLen);
  const blockBytes = p.blockSize * kvBytes;
  const usableBlocks = Math.floor(kvBudgetBytes / blockBytes);
  // Blocks of a full-attention layer; window layers hold only their window's blocks.
  const blocksPerRequest = Math.ceil(p.avgTokens / p.blockSize);
  const pagedRequests = Math.floor(
    kvBudgetBytes / kvBytesPerSequence(c, p.kvDtype, p.avgTokens, p.blockSize),
  );

  const peak = p.weightDtype === "fp32" ? p.hardware.peakFlops.fp32 : p.hardware.peakFlops.fp16;
  const matmulParams = matmulParameterCount(c);
  const qDim = c.nHeads * c.headDim;
  const roofline = (bytes: number, flops: number): StepFloor => {
    const memoryTimeS = bytes / p.hardware.bandwidthBytesPerS;
    const computeTimeS = flops / peak;
    return {
      bytes,
      flops,
      memoryTimeS,
      computeTimeS,
      timeS: Math.max(memoryTimeS, computeTimeS),
      bound: memoryTimeS >= computeTimeS ? "memory" : "compute",
    };
  };
  // Attention: QKᵀ and AV, 2 FLOPs per multiply-add, per layer: 4 × qDim × (keys attended) per query token.
  const decodeFlops = (context: number) => 2 * matmulParams + 4 * c.nLayers * qDim * context;
  const batched = roofline(
    weightBytes + pagedRequests * kvOf(p.avgTokens),
    pagedRequests * decodeFlops(p.avgTokens),
  );
  const n = p.promptTokens;
  return {
    params,
    weightBytes,
    kvBytesPerToken: kvBytes,
    kvBytesPerMaxRequest,
    memoryBytes: p.hardware.memoryBytes,
    kvBudgetBytes,
    // Preallocation keeps every block of every layer (vellum's --kv-allocation contiguous does).
    preallocated: {
      maxRequests: Math.floor(kvBudgetBytes / (p.maxModelLen * kvBytes)),
      waste: 1 - p.avgTokens / p.maxModelLen,
    },
    paged: {
      maxRequests: pagedRequests,
      waste: 1 - p.avgTokens / (blocksPerRequest * p.blockSize),
      blocksPerRequest,
      usableBlocks,
    },
    decodeFloor: roofline(weightBytes + kvOf(p.contextTokens), decodeFlops(p.contextTokens)),
    batchedDecode: { ...batched, tokensPerS: pagedRequests / batched.timeS },
    // Causal prefill of n tokens attends to n²/2 keys in all.
    prefill: roofline(weightBytes + kvOf(n), 2 * matmulParams * n + 2 * c.nLayers * qDim * n * n),
    longestSequence: longestSequence(c, p.kvDtype, kvBudgetBytes),
    longestSequenceByDtype,
    backOfEnvelope: backOfEnvelope(p, params, kvBytes),
  };
}

const round1 = (x: number) => (x > 0 && x < 0.05 ? Number(x.toPrecision(2)) : Math.round(x * 10) / 10);

function backOfEnvelope(p: PlanInput, params: number, kvBytesPerToken: number): BackOfEnvelope {
  const billions = p.model.nominalParams !== undefined ? p.model.nominalParams / 1e9 : round1(params / 1e9);
  const weightsGB = round1(billions * nominalBytesPerParam[p.weightDtype]);
  const kvMBPerToken = round1(kvBytesPerToken / 1e6);
  const requestGB = round1((p.maxModelLen * kvMBPerToken) / 1e3);
  const memoryGB = round1(p.hardware.memoryBytes / 2 ** 30); // the data sheet's "80 GB" is 80 GiB
  const leftGB = round1(memoryGB - weightsGB - round1(p.overheadBytes / 1e9));
  const bandwidthTBps = round1(p.hardware.bandwidthBytesPerS / 1e12);
  return {
    weightsGB,
    kvMBPerToken,
    requestGB,
    memoryGB,
    leftGB,
    preallocatedRequests: Math.max(Math.floor(leftGB / requestGB), 0),
    pagedRequests: Math.max(Math.floor((leftGB * 1e3) / (p.avgTokens * kvMBPerToken)), 0),
    bandwidthTBps,
    // GB ÷ TB/s = ms
    decodeFloorMs: (weightsGB + (p.contextTokens * kvMBPerToken) / 1e3) / bandwidthTBps,
  };
}

function doesNotFit(
  p: PlanInput,
  weightBytes: number,
  byDtype: Record<WeightDtype, number | null>,
): InputError {
  const fitting = weightDtypes.filter((d) => byDtype[d] !== null);
  const hint =
    fitting.length > 0
      ? `; these weight dtypes fit: ${fitting.map((d) => `${d} (longest sequence ${byDtype[d]?.toLocaleString("en-US")} tokens)`).join(", ")}`
      : "; no weight dtype fits";
  return new InputError(
    `${p.model.name} does not fit on ${p.hardware.name}: ${p.weightDtype} weights take ${(weightBytes / 1e9).toFixed(1)} GB + ${(p.overheadBytes / 1e9).toFixed(1)} GB overhead, the device has ${(p.hardware.memoryBytes / 1e9).toFixed(1)} GB${hint}`,
  );
}
