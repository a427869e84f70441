/**
 * Tensor element types: their codecs (byte layouts and conversions from and to float32, one file a family under
 * quant/) and their GGUF type ids.
 */
import type { BlockCodec } from "./quant/block-codec.js";
import { bf16, f16, f32 } from "./quant/float-types.js";
import { iq4_nl, iq4_xs } from "./quant/iq4-quants.js";
import { q2_k, q3_k, q4_k, q5_k, q6_k } from "./quant/k-quants.js";
import { q4_0, q4_1, q5_0, q5_1, q8_0 } from "./quant/legacy-quants.js";
import { type DType, numElements, type Tensor } from "./tensor.js";

const codecs: Record<DType, BlockCodec> = {
  f32,
  f16,
  bf16,
  q8_0,
  q4_0,
  q4_1,
  q5_0,
  q5_1,
  q2_k,
  q3_k,
  q4_k,
  q5_k,
  q6_k,
  iq4_nl,
  iq4_xs,
};

export interface DTypeLayout {
  /** Values per block. */
  blockSize: number;
  bytesPerBlock: number;
}

export const dtypeLayout: Record<DType, DTypeLayout> = codecs;

/** Every type vellum reads, in ggml's order. */
export const allDTypes = Object.keys(codecs) as DType[];
/** The types vellum writes (those with a quantizer). */
export const dtypes: DType[] = allDTypes.filter((d) => codecs[d].quantize);

/** Bytes of a tensor; its innermost (last) dimension must be a whole number of blocks. */
export function tensorBytes(dtype: DType, shape: readonly number[]): number {
  const { blockSize, bytesPerBlock } = dtypeLayout[dtype];
  const rowLength = shape.length === 0 ? 1 : shape[shape.length - 1];
  if (rowLength % blockSize !== 0) {
    throw new RangeError(
      `${dtype} tensor of shape [${shape}]: row length ${rowLength} is not a multiple of ${blockSize}`,
    );
  }
  return (numElements(shape) / blockSize) * bytesPerBlock;
}

// ---- GGUF (ggml) type ids ----

/** ggml_type ids of the types we hold. */
export const ggmlTypeOf: Record<DType, number> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q5_0: 6,
  q5_1: 7,
  q8_0: 8,
  q2_k: 10,
  q3_k: 11,
  q4_k: 12,
  q5_k: 13,
  q6_k: 14,
  iq4_nl: 20,
  iq4_xs: 23,
  bf16: 30,
};

/** Every ggml_type name by id, so a file with a type we do not hold yet gets a message that names it. */
// biome-ignore format: one table
const ggmlTypeNames = [
  "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
  "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32",
  "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8",
  "IQ4_NL_8_8", "MXFP4",
];

/** The DType of a ggml_type id, or undefined when we do not hold that type. */
export function dtypeOfGgmlType(id: number): DType | undefined {
  return allDTypes.find((d) => ggmlTypeOf[d] === id);
}

/** "Q4_K", or undefined for an id ggml does not define. */
export function ggmlTypeName(id: number): string | undefined {
  return ggmlTypeNames[id];
}

// ---- whole tensors ----

export function dequantize(t: Tensor): Float32Array {
  const expected = tensorBytes(t.dtype, t.shape);
  if (t.data.byteLength !== expected) {
    throw new RangeError(
      `${t.dtype} tensor of shape [${t.shape}] has ${t.data.byteLength} bytes, expected ${expected}`,
    );
  }
  const out = new Float32Array(numElements(t.shape));
  codecs[t.dtype].dequantize(t.data, out);
  return out;
}

/** Values (row-major, `shape`) in `dtype`, rounded as llama.cpp's reference quantizers round them. */
export function quantize(values: Float32Array, shape: number[], dtype: DType): Tensor {
  const n = numElements(shape);
  if (values.length !== n) throw new RangeError(`quantize: ${values.length} values for shape [${shape}]`);
  const { quantize } = codecs[dtype];
  if (!quantize)
    throw new RangeError(`quantize: vellum reads ${dtype} tensors but has no ${dtype} quantizer`);
  const data = new Uint8Array(tensorBytes(dtype, shape));
  quantize(values, data);
  return { dtype, shape: [...shape], data };
}
