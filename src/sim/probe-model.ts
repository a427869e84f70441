import { randomFillSync } from "node:crypto";
import { expectedTensors, type ModelConfig, tensorNames } from "../model/config.js";
import { dtypeLayout, tensorBytes } from "../model/dtype.js";
import { allowsQuantization, fallbackType } from "../model/quant/mixes.js";
import { type DType, numElements, type Tensor } from "../model/tensor.js";
import { weightBytesPerParam, weightStoredAs } from "./plan.js";
import type { WeightDtype } from "./types.js";

/** A model of a real model's shapes with random weights, for timing: speed does not depend on the values. */
export interface ProbeModel {
  config: ModelConfig;
  tensors: Map<string, Tensor>;
  /** Bytes of the layers' matrices, which every token goes through, and of the classifier (the tied table). */
  bodyBytes: number;
  classifierBytes: number;
}

const probeLayerBytes = 128 * 2 ** 20;

/**
 * The model's shapes with as many layers as make ~128 MiB of weights (at least one; far beyond the caches, as a
 * model's are), every matrix in the one type of `weightDtype` (llama-quantize --pure, so a rate is that type's),
 * and tied embeddings: the classifier costs the same, and the table is not held twice.
 */
export function probeModel(c: ModelConfig, weightDtype: WeightDtype): ProbeModel {
  const layerBytes =
    weightBytesPerParam[weightDtype] *
    [...expectedTensors({ ...c, nLayers: 1 })]
      .filter(([name]) => name.startsWith("blk."))
      .reduce((n, [, shape]) => n + numElements(shape), 0);
  const nLayers = Math.max(1, Math.min(c.nLayers, Math.floor(probeLayerBytes / layerBytes)));
  const config = { ...c, nLayers, layerWindows: c.layerWindows.slice(0, nLayers), tiedEmbeddings: true };
  const tensors = new Map<string, Tensor>();
  const matrixType = (name: string, shape: number[]) =>
    allowsQuantization(name, shape)
      ? fallbackType(weightStoredAs[weightDtype], shape[shape.length - 1])
      : "f32";
  for (const [name, shape] of expectedTensors(config))
    tensors.set(name, randomTensor(shape, matrixType(name, shape)));
  let bodyBytes = 0;
  for (const [name, t] of tensors) if (name !== tensorNames.tokenEmbedding) bodyBytes += t.data.length;
  const classifierBytes = (tensors.get(tensorNames.tokenEmbedding) as Tensor).data.length;
  return { config, tensors, bodyBytes, classifierBytes };
}

/** Random bytes as a `dtype` tensor, with finite moderate values. */
function randomTensor(shape: number[], dtype: DType): Tensor {
  if (dtype === "f32") {
    const values = Float32Array.from({ length: numElements(shape) }, () => Math.random() - 0.5);
    return { dtype, shape, data: new Uint8Array(values.buffer) };
  }
  const data = randomFillSync(new Uint8Array(tensorBytes(dtype, shape)));
  const view = new DataView(data.buffer);
  // f16: clear the exponent's top bits (|x| < 1); q8_0/q4_0: each block starts with its f16 scale, 2^-7.
  const { bytesPerBlock } = dtypeLayout[dtype];
  for (let at = 0; at < data.length; at += bytesPerBlock)
    view.setUint16(at, dtype === "f16" ? view.getUint16(at, true) & 0xbbff : 0x2000, true);
  return { dtype, shape, data };
}
