/**
 * Which type each tensor of a GGUF file gets when vellum writes it: one type for every weight matrix, or one of
 * llama.cpp's mixes (Q4_K_M …), tensor by tensor as `llama-quantize` chooses.
 *
 * Source: llama.cpp src/llama-quant.cpp (the version node-llama-cpp is built from):
 * - tensor_allows_quantization: only matrices whose name ends in "weight" are quantized, never a norm;
 * - llama_tensor_get_type_impl: the output rule (output.weight, or token_embd.weight when it doubles as the
 *   output, gets Q6_K, or Q8_0 when its rows are not whole blocks of the requested type) and each mix's
 *   per-tensor rules (`mixRules` below);
 * - tensor_type_fallback: a type whose blocks do not tile the rows falls back to a 32-value type (`fallbackOf`),
 *   and to F16 when even that does not fit.
 * Left out, since no model vellum loads has them: the rules for Falcon, 70B llama and mixture-of-experts models.
 *
 * llama.cpp counts attn_v and ffn_down tensors in the order it visits them (sorted by layer number, one per layer
 * in a dense model), so its counters i_attention_wv and i_ffn_down are the layer index of the tensor's "blk.N."
 * prefix, which is what vellum uses.
 */
import { dtypeLayout, dtypes } from "../dtype.js";
import type { DType } from "../tensor.js";

/** llama.cpp's mixes vellum writes. */
export const mixes = ["q4_k_m", "q5_k_m", "q3_k_m"] as const;
export type Mix = (typeof mixes)[number];
/** What `--dtype` names: one type for every weight matrix, or a mix. */
export type WeightType = DType | Mix;

/** Every `--dtype` vellum writes: the types with a quantizer, and the mixes. */
export const weightTypes: readonly WeightType[] = [...dtypes, ...mixes];

/** The model-wide facts the rules read. */
export interface MixContext {
  nLayers: number;
  /** No output.weight: token_embd.weight is also the output matrix. */
  tiedEmbeddings: boolean;
}

/** A layer-dependent choice: the type of layer `i` of `n`, or undefined to keep the mix's base type. */
type LayerRule = (i: number, n: number) => DType | undefined;

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third layer between. */
function useMoreBits(i: number, n: number): boolean {
  const eighth = Math.trunc(n / 8);
  return i < eighth || i >= Math.trunc((7 * n) / 8) || (i - eighth) % 3 === 2;
}

interface MixRules {
  /** llama_ftype_get_default_type: the type of every tensor no rule names. */
  base: DType;
  /** llama_ftype (include/llama.h), written as general.file_type. */
  fileType: number;
  /** attn_v (and a fused attn_qkv, which llama.cpp counts as attn_v). */
  attnV?: LayerRule;
  ffnDown?: LayerRule;
  attnOutput?: LayerRule;
}

const q6kWhenMoreBits: LayerRule = (i, n) => (useMoreBits(i, n) ? "q6_k" : undefined);

/** The per-tensor rules llama_tensor_get_type_impl applies for each mix (beyond the output rule). */
const mixRules: Record<Mix, MixRules> = {
  q4_k_m: { base: "q4_k", fileType: 15, attnV: q6kWhenMoreBits, ffnDown: q6kWhenMoreBits },
  q5_k_m: { base: "q5_k", fileType: 17, attnV: q6kWhenMoreBits, ffnDown: q6kWhenMoreBits },
  q3_k_m: {
    base: "q3_k",
    fileType: 12,
    attnV: (i) => (i < 2 ? "q5_k" : "q4_k"),
    ffnDown: (i, n) => (i < Math.trunc(n / 16) ? "q5_k" : "q4_k"),
    attnOutput: () => "q4_k",
  },
};

/**
 * The llama_ftype llama.cpp writes for a file of one type. A K-quant or IQ4 type has no ftype of its own; it
 * gets the ftype whose base type it is ("mostly Q4_K": Q4_K_S), though that ftype's own rules are not applied.
 */
// biome-ignore format: one table
const singleTypeFileType: Record<DType, number> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 11, q4_k: 14, q5_k: 16, q6_k: 18,
  iq4_nl: 25, iq4_xs: 30, bf16: 32,
};

/** tensor_type_fallback: the 32-value type a 256-value type falls back to when its blocks do not tile the rows. */
const fallbackOf: Partial<Record<DType, DType>> = {
  q2_k: "q4_0",
  q3_k: "q4_0",
  q4_k: "q5_0",
  q5_k: "q5_1",
  q6_k: "q8_0",
  iq4_xs: "iq4_nl",
};

const floatTypes: readonly DType[] = ["f32", "f16", "bf16"];

export function isMix(t: string): t is Mix {
  return (mixes as readonly string[]).includes(t);
}

/** general.file_type of a file written as `t`. */
export function fileTypeOf(t: WeightType): number {
  return isMix(t) ? mixRules[t].fileType : singleTypeFileType[t];
}

/** tensor_allows_quantization, for the tensor names of the architectures vellum loads: matrices, not norms. */
export function allowsQuantization(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && name.endsWith("weight") && !name.endsWith("_norm.weight");
}

/** tensor_type_fallback: `type`, or what llama.cpp stores instead when rows of `rowLength` are not whole blocks. */
export function fallbackType(type: DType, rowLength: number): DType {
  if (rowLength % dtypeLayout[type].blockSize === 0) return type;
  const fallback = fallbackOf[type] ?? type;
  return rowLength % dtypeLayout[fallback].blockSize === 0 ? fallback : "f16";
}

/** The type tensor `name` of `shape` (outermost first, so rows are the last dimension) is stored in. */
export function tensorType(
  weightType: WeightType,
  name: string,
  shape: readonly number[],
  model: MixContext,
): DType {
  if (!allowsQuantization(name, shape)) return "f32";
  const rules: MixRules = isMix(weightType) ? mixRules[weightType] : { base: weightType, fileType: 0 };
  if (floatTypes.includes(rules.base)) return rules.base;
  const rowLength = shape[shape.length - 1];
  return fallbackType(ruleType(rules, name, rowLength, model), rowLength);
}

/** llama_tensor_get_type_impl: the type the rules pick before the shape fallback. */
function ruleType(rules: MixRules, name: string, rowLength: number, model: MixContext): DType {
  const isOutput = name === "output.weight" || (model.tiedEmbeddings && name === "token_embd.weight");
  if (isOutput) {
    if (rowLength % dtypeLayout[rules.base].blockSize !== 0) return "q8_0";
    return rules.base === "q8_0" ? "q8_0" : "q6_k";
  }
  const layer = /^blk\.(\d+)\./.exec(name);
  if (!layer) return rules.base;
  const rule = /attn_(v|qkv|kv_b)\.weight/.test(name)
    ? rules.attnV
    : name.includes("attn_output.weight")
      ? rules.attnOutput
      : name.includes("ffn_down")
        ? rules.ffnDown
        : undefined;
  return rule?.(Number(layer[1]), model.nLayers) ?? rules.base;
}
