import { existsSync } from "node:fs";
import { type ModelConfig, tensorNames } from "../../model/config.js";
import type { Tensor } from "../../model/tensor.js";
import { ropeFactorsTensor } from "../rope-factors.js";
import {
  type KernelPath,
  type NativeLayerSpec,
  type NativeModelConfig,
  type NativeModelSpec,
  type NativeTensorSpec,
  nativeConfigFields,
} from "./addon.js";

/** Where the addon finds each tensor: a JS buffer it keeps alive, or an offset into a GGUF file it maps. */
type TensorSource = (name: string) => NativeTensorSpec;

/** The config as the addon takes it. */
export function nativeModelConfig(config: ModelConfig): NativeModelConfig {
  const s = config.ropeScaling;
  const native = {
    ropeNeox: config.ropeStyle === "neox",
    geluTanh: config.ffnActivation === "gelu_tanh",
    ropeFreqScale: s?.freqScale ?? 1,
    ropeExtFactor: s?.extFactor ?? 0,
    ropeAttnFactor: s?.attnFactor ?? 1,
    ropeBetaFast: s?.betaFast ?? 32,
    ropeBetaSlow: s?.betaSlow ?? 1,
    ropeOriginalContext: s?.originalContext ?? config.maxSeqLen,
    ropeThetaLocal: config.ropeThetaLocal ?? 0,
  } as NativeModelConfig;
  for (const field of nativeConfigFields) (native as Record<string, unknown>)[field] = config[field];
  return native;
}

/** [out, in] → rows, cols; a 1-D [n] tensor is one row. */
function rowsCols(shape: readonly number[]): { rows: number; cols: number } {
  return shape.length === 1 ? { rows: 1, cols: shape[0] } : { rows: shape[0], cols: shape[shape.length - 1] };
}

function specFor(
  config: ModelConfig,
  tensor: TensorSource,
  has: (name: string) => boolean,
  threads: number,
  kernels: KernelPath,
  contextLength: number,
): NativeModelSpec {
  const optional = (name: string) => (has(name) ? tensor(name) : undefined);
  const layers: NativeLayerSpec[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const layer: NativeLayerSpec = {
      attnNorm: tensor(tensorNames.attnNorm(l)),
      ffnNorm: tensor(tensorNames.ffnNorm(l)),
      wq: tensor(tensorNames.wq(l)),
      wk: tensor(tensorNames.wk(l)),
      wv: tensor(tensorNames.wv(l)),
      wo: tensor(tensorNames.wo(l)),
      gate: tensor(tensorNames.ffnGate(l)),
      up: tensor(tensorNames.ffnUp(l)),
      down: tensor(tensorNames.ffnDown(l)),
    };
    const bq = optional(tensorNames.bq(l));
    const bk = optional(tensorNames.bk(l));
    const bv = optional(tensorNames.bv(l));
    if (bq) layer.bq = bq;
    if (bk) layer.bk = bk;
    if (bv) layer.bv = bv;
    if (config.qkNorm) {
      layer.qNorm = tensor(tensorNames.qNorm(l));
      layer.kNorm = tensor(tensorNames.kNorm(l));
    }
    if (config.postNorms) {
      layer.postAttnNorm = tensor(tensorNames.postAttnNorm(l));
      layer.postFfnNorm = tensor(tensorNames.postFfnNorm(l));
    }
    layers.push(layer);
  }
  const embedding = tensor(tensorNames.tokenEmbedding);
  const ropeFactors = ropeFactorsTensor(config, contextLength);
  return {
    config: nativeModelConfig(config),
    weights: {
      embedding,
      outputNorm: tensor(tensorNames.outputNorm),
      classifier: config.tiedEmbeddings ? embedding : tensor(tensorNames.output),
      ...(ropeFactors === undefined ? {} : { ropeFactors: tensor(ropeFactors) }),
      layers,
    },
    threads,
    kernels,
  };
}

/** Weights from tensors already in memory (llama2.c, safetensors): the addon reads the JS buffers in place. */
export function specFromTensors(
  config: ModelConfig,
  tensors: Map<string, Tensor>,
  path: string,
  threads: number,
  kernels: KernelPath,
  contextLength: number,
): NativeModelSpec {
  const tensor = (name: string): NativeTensorSpec => {
    const t = tensors.get(name);
    if (!t) throw new Error(`model ${path} has no tensor ${name}`);
    return { dtype: t.dtype, ...rowsCols(t.shape), data: t.data };
  };
  return specFor(config, tensor, (name) => tensors.has(name), threads, kernels, contextLength);
}

/**
 * Weights straight from the GGUF files the model was loaded from (one, or the shards of a split model), which the
 * addon memory-maps: each tensor at the file and offset the loader recorded (a part of a fused tensor at its
 * rows), nothing copied into the JS heap. Undefined unless every tensor of `loaded` lies in a file that is still
 * there.
 */
export function specFromGguf(
  config: ModelConfig,
  path: string,
  threads: number,
  kernels: KernelPath,
  contextLength: number,
  loaded: Map<string, Tensor>,
): NativeModelSpec | undefined {
  const files: string[] = [];
  for (const t of loaded.values()) {
    if (!t.file) return undefined;
    if (!files.includes(t.file.path)) files.push(t.file.path);
  }
  if (!files.every((file) => existsSync(file))) return undefined;
  const tensor = (name: string): NativeTensorSpec => {
    const t = loaded.get(name);
    if (!t?.file) throw new Error(`${path}: tensor "${name}" is missing`);
    return { dtype: t.dtype, ...rowsCols(t.shape), file: files.indexOf(t.file.path), offset: t.file.offset };
  };
  return { ...specFor(config, tensor, (name) => loaded.has(name), threads, kernels, contextLength), files };
}
