import { dtypeLayout, tensorBytes } from "../../src/model/dtype.js";
import { f32ToF16 } from "../../src/model/float-formats.js";
import type { DType, Tensor } from "../../src/model/tensor.js";

/**
 * Where each quantized type keeps its f16 scale `d` (and its min, when it has one) in a block, and the RMS of a
 * block's values per unit of d over random bytes, so random blocks can be given weights of a chosen size. `min`
 * is set to `minRatio`·d, which roughly centres the values (q4_1's m = −7.5·d against nibbles 0..15; the
 * K-quants' dmin against the mean of sc·q).
 */
const scaleFields: Partial<Record<DType, { d: number; rms: number; min?: number; minRatio?: number }>> = {
  q8_0: { d: 0, rms: 74 },
  q4_0: { d: 0, rms: 4.6 },
  q4_1: { d: 0, rms: 4.6, min: 2, minRatio: -7.5 },
  q5_0: { d: 0, rms: 9.2 },
  q5_1: { d: 0, rms: 9.2, min: 2, minRatio: -15.5 },
  iq4_nl: { d: 0, rms: 67 },
  q2_k: { d: 80, rms: 10, min: 82, minRatio: 1.5 },
  q3_k: { d: 108, rms: 43 },
  q4_k: { d: 0, rms: 166, min: 2, minRatio: 7.5 },
  q5_k: { d: 0, rms: 330, min: 2, minRatio: 15.5 },
  q6_k: { d: 208, rms: 1370 },
  iq4_xs: { d: 0, rms: 1240 },
};

/** The quantized types, in ggml's order. */
export const quantizedTypes = Object.keys(scaleFields) as DType[];

function setF16(data: Uint8Array, at: number, x: number) {
  const h = f32ToF16(x);
  data[at] = h & 0xff;
  data[at + 1] = h >>> 8;
}

/**
 * A [rows, cols] tensor of random blocks of `dtype`: random bytes, with each block's scale drawn so that its
 * values have an RMS of about 0.01 (half to one and a half times it; negative half the time) and its min
 * centring them.
 */
export function randomBlocks(dtype: DType, rows: number, cols: number, rand: () => number): Tensor {
  const fields = scaleFields[dtype];
  if (!fields) throw new Error(`${dtype} is not a quantized type`);
  const data = new Uint8Array(tensorBytes(dtype, [rows, cols]));
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  for (let block = 0; block < data.length; block += dtypeLayout[dtype].bytesPerBlock) {
    const d = (0.01 / fields.rms) * (0.5 + rand()) * (rand() < 0.5 ? -1 : 1);
    setF16(data, block + fields.d, d);
    if (fields.min !== undefined) setF16(data, block + fields.min, d * (fields.minRatio ?? 0));
  }
  return { dtype, shape: [rows, cols], data };
}
