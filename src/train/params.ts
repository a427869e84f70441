import { expectedTensors, type ModelConfig } from "../model/config.js";
import { Rng } from "../util/rng.js";
import type { Compute, Vec } from "./compute.js";

/** One trainable tensor under its GGUF name: row-major values and, during training, its gradient. */
export interface Param {
  name: string;
  shape: number[];
  value: Vec;
  grad: Vec;
}

/** Every tensor of `config` (GGUF names and [out, in] shapes), in expectedTensors order. */
export type ParamSet = Map<string, Param>;

/**
 * Fresh parameters: norm weights 1, matrices normal(0, std) with std = 0.02 (GPT-2/llama2.c style), and
 * the two projections that write into the residual stream (attn_output, ffn_down) scaled by 1/√(2·layers)
 * so the stream's variance does not grow with depth.
 */
export function initParams(config: ModelConfig, compute: Compute, seed: number): ParamSet {
  const rng = new Rng(seed);
  const normal = () => {
    const u1 = (rng.nextUint32() + 1) / 2 ** 32;
    const u2 = rng.nextUint32() / 2 ** 32;
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  };
  const params: ParamSet = new Map();
  for (const [name, shape] of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const value = compute.alloc(n);
    if (shape.length === 1) value.fill(1);
    else {
      const residual = name.endsWith("attn_output.weight") || name.endsWith("ffn_down.weight");
      const std = residual ? 0.02 / Math.sqrt(2 * config.nLayers) : 0.02;
      for (let i = 0; i < n; i++) value[i] = normal() * std;
    }
    params.set(name, { name, shape, value, grad: compute.alloc(n) });
  }
  return params;
}

/** Parameters holding given values (e.g. a loaded model's), with zero gradients. */
export function paramsFromValues(
  config: ModelConfig,
  compute: Compute,
  values: (name: string) => ArrayLike<number>,
) {
  const params: ParamSet = new Map();
  for (const [name, shape] of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const value = compute.alloc(n);
    value.set(values(name));
    params.set(name, { name, shape, value, grad: compute.alloc(n) });
  }
  return params;
}

export function countParams(params: ParamSet): number {
  let n = 0;
  for (const p of params.values()) n += p.value.length;
  return n;
}

export function zeroGrads(params: ParamSet) {
  for (const p of params.values()) p.grad.fill(0);
}
