/**
 * Tensor element types: their byte layouts, conversions from and to float32, and their GGUF type ids.
 *
 * Block layouts (GGUF's, byte for byte; a row of n values is n / blockSize blocks):
 *   f32   1 value  / 4 bytes   IEEE binary32, little-endian
 *   f16   1 value  / 2 bytes   IEEE binary16
 *   bf16  1 value  / 2 bytes   the high 16 bits of a binary32
 *   q8_0  32 values / 34 bytes  [d: f16][q: 32 × int8]                value = q * d
 *   q4_0  32 values / 18 bytes  [d: f16][16 bytes of nibbles]         value = (q - 8) * d
 *         byte j holds element j in its low nibble and element j + 16 in its high nibble.
 *   q4_k  256 values / 144 bytes: [d: f16][dmin: f16][scales: 12][qs: 128]   (read as stored; no quantizer)
 *         8 sub-blocks of 32 with 6-bit scale sc and min m packed in `scales`; value = d·sc·q − dmin·m,
 *         q = a nibble of qs: 64 values per 32 bytes, low nibbles first.
 *   q6_k  256 values / 210 bytes: [ql: 128][qh: 64][scales: 16 × int8][d: f16]   (read as stored)
 *         value = d·scale·(q − 32), q = 4 low bits from ql, 2 high bits from qh; a scale per 16 values.
 * Conversions assume a little-endian host (every platform Node ships for but s390x).
 */
import { type DType, numElements, type Tensor } from "./tensor.js";

export interface DTypeLayout {
  /** Values per block. */
  blockSize: number;
  bytesPerBlock: number;
}

export const dtypeLayout: Record<DType, DTypeLayout> = {
  f32: { blockSize: 1, bytesPerBlock: 4 },
  f16: { blockSize: 1, bytesPerBlock: 2 },
  bf16: { blockSize: 1, bytesPerBlock: 2 },
  q8_0: { blockSize: 32, bytesPerBlock: 34 },
  q4_0: { blockSize: 32, bytesPerBlock: 18 },
  q4_k: { blockSize: 256, bytesPerBlock: 144 },
  q6_k: { blockSize: 256, bytesPerBlock: 210 },
};

/** The types vellum writes (each has a quantizer); K-quants are read from GGUF files as stored. */
export const dtypes: DType[] = ["f32", "f16", "bf16", "q8_0", "q4_0"];
export const readOnlyDTypes: DType[] = ["q4_k", "q6_k"];

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
  q8_0: 8,
  q4_k: 12,
  q6_k: 14,
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
  return [...dtypes, ...readOnlyDTypes].find((d) => ggmlTypeOf[d] === id);
}

/** "Q4_K", or undefined for an id ggml does not define. */
export function ggmlTypeName(id: number): string | undefined {
  return ggmlTypeNames[id];
}

// ---- f16 and bf16 scalars ----

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

function f32Bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0];
}

/** binary16 bits of x (first rounded to binary32), round-to-nearest-even; NaN stays NaN, overflow gives ±inf. */
export function f32ToF16(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  if (exp > 112) {
    // Normal in f16 range (or overflowing): drop 13 mantissa bits, rounding to even. A carry out of the
    // mantissa bumps the exponent, and past the largest finite value lands exactly on inf (0x7c00).
    const h = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    const rounded = rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? h + 1 : h;
    return sign | Math.min(rounded, 0x7c00);
  }
  // f16 subnormal: value = m × 2^-24, and x = (1.mant) × 2^(exp-127) = full × 2^(exp-150), so m = full >> (126 - exp).
  const shift = 126 - exp;
  if (shift > 24) return sign; // below half the smallest subnormal
  const full = mant | 0x800000;
  const m = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rest > half || (rest === half && (m & 1) === 1) ? m + 1 : m);
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * The shortest decimal that rounds to the same float32: GGUF stores 1e-5 as 9.99999974737875e-6, and a config
 * should say 1e-5 again (the forward pass rounds it to the same float32 anyway).
 */
export function shortestFloat32(x: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === Math.fround(x)) return candidate;
  }
  return x;
}

/** bfloat16 bits of x (first rounded to binary32), round-to-nearest-even as ggml does; NaN is kept quiet. */
export function f32ToBf16(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToF32(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0];
}

/** All 65536 f16 values as f32: widening one (a weight, a KV cache entry) is then one lookup. Built on first use. */
let f16Table: Float32Array | undefined;
export function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

// ---- whole tensors ----

/** A copy of `bytes` as a typed array (a copy, because a Uint8Array view may not be aligned for it). */
function copyAs<T extends Uint16Array | Float32Array>(
  bytes: Uint8Array,
  make: (length: number) => T,
  length: number,
): T {
  const out = make(length);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.byteLength));
  return out;
}

export function dequantize(t: Tensor): Float32Array {
  const n = numElements(t.shape);
  const expected = tensorBytes(t.dtype, t.shape);
  if (t.data.byteLength !== expected) {
    throw new RangeError(
      `${t.dtype} tensor of shape [${t.shape}] has ${t.data.byteLength} bytes, expected ${expected}`,
    );
  }
  switch (t.dtype) {
    case "f32":
      return copyAs(t.data, (k) => new Float32Array(k), n);
    case "f16": {
      const h = copyAs(t.data, (k) => new Uint16Array(k), n);
      const out = new Float32Array(n);
      const table = f16ToF32Table();
      for (let i = 0; i < n; i++) out[i] = table[h[i]];
      return out;
    }
    case "bf16": {
      const b = copyAs(t.data, (k) => new Uint16Array(k), n);
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = b[i] << 16;
      return out;
    }
    case "q8_0":
      return dequantizeQ8_0(t.data, n, f16ToF32Table());
    case "q4_0":
      return dequantizeQ4_0(t.data, n, f16ToF32Table());
    case "q4_k":
      return dequantizeQ4K(t.data, n, f16ToF32Table());
    case "q6_k":
      return dequantizeQ6K(t.data, n, f16ToF32Table());
  }
}

function dequantizeQ8_0(data: Uint8Array, n: number, f16: Float32Array): Float32Array {
  const out = new Float32Array(n);
  for (let block = 0, o = 0; o < n; block += 34) {
    const d = f16[data[block] | (data[block + 1] << 8)];
    for (let j = 0; j < 32; j++, o++) out[o] = ((data[block + 2 + j] << 24) >> 24) * d; // int8 via sign extension
  }
  return out;
}

function dequantizeQ4_0(data: Uint8Array, n: number, f16: Float32Array): Float32Array {
  const out = new Float32Array(n);
  for (let block = 0, o = 0; o < n; block += 18, o += 32) {
    const d = f16[data[block] | (data[block + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const byte = data[block + 2 + j];
      out[o + j] = ((byte & 0x0f) - 8) * d;
      out[o + j + 16] = ((byte >>> 4) - 8) * d;
    }
  }
  return out;
}

/** ggml get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) from a q4_k block's 12 scale bytes. */
function scaleMinK4(data: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [data[at + j] & 63, data[at + j + 4] & 63];
  return [
    (data[at + j + 4] & 0x0f) | ((data[at + j - 4] >> 6) << 4),
    (data[at + j + 4] >> 4) | ((data[at + j] >> 6) << 4),
  ];
}

/** ggml dequantize_row_q4_K. */
function dequantizeQ4K(data: Uint8Array, n: number, f16: Float32Array): Float32Array {
  const out = new Float32Array(n);
  for (let block = 0, o = 0; o < n; block += 144) {
    const d = f16[data[block] | (data[block + 1] << 8)];
    const dmin = f16[data[block + 2] | (data[block + 3] << 8)];
    for (let pair = 0; pair < 4; pair++) {
      const qs = block + 16 + pair * 32;
      for (const [j, shift] of [
        [2 * pair, 0],
        [2 * pair + 1, 4],
      ]) {
        const [sc, m] = scaleMinK4(data, block + 4, j);
        for (let l = 0; l < 32; l++, o++) out[o] = d * sc * ((data[qs + l] >> shift) & 0x0f) - dmin * m;
      }
    }
  }
  return out;
}

/** ggml dequantize_row_q6_K. */
function dequantizeQ6K(data: Uint8Array, n: number, f16: Float32Array): Float32Array {
  const out = new Float32Array(n);
  for (let block = 0, o = 0; o < n; block += 210, o += 256) {
    const d = f16[data[block + 208] | (data[block + 209] << 8)];
    for (let half = 0; half < 2; half++) {
      const ql = block + half * 64;
      const qh = block + 128 + half * 32;
      const sc = block + 192 + half * 8;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const q1 = ((data[ql + l] & 0xf) | (((data[qh + l] >> 0) & 3) << 4)) - 32;
        const q2 = ((data[ql + l + 32] & 0xf) | (((data[qh + l] >> 2) & 3) << 4)) - 32;
        const q3 = ((data[ql + l] >> 4) | (((data[qh + l] >> 4) & 3) << 4)) - 32;
        const q4 = ((data[ql + l + 32] >> 4) | (((data[qh + l] >> 6) & 3) << 4)) - 32;
        const scale = (k: number) => (data[sc + is + 2 * k] << 24) >> 24; // int8
        const y = o + half * 128 + l;
        out[y] = d * scale(0) * q1;
        out[y + 32] = d * scale(1) * q2;
        out[y + 64] = d * scale(2) * q3;
        out[y + 96] = d * scale(3) * q4;
      }
    }
  }
  return out;
}

/** Values (row-major, `shape`) in `dtype`, rounded as llama.cpp's reference quantizers round them. */
export function quantize(values: Float32Array, shape: number[], dtype: DType): Tensor {
  const n = numElements(shape);
  if (values.length !== n) throw new RangeError(`quantize: ${values.length} values for shape [${shape}]`);
  const data = new Uint8Array(tensorBytes(dtype, shape));
  switch (dtype) {
    case "f32":
      new Float32Array(data.buffer).set(values);
      break;
    case "f16": {
      const h = new Uint16Array(data.buffer);
      for (let i = 0; i < n; i++) h[i] = f32ToF16(values[i]);
      break;
    }
    case "bf16": {
      const b = new Uint16Array(data.buffer);
      for (let i = 0; i < n; i++) b[i] = f32ToBf16(values[i]);
      break;
    }
    case "q8_0":
      quantizeQ8_0(values, data);
      break;
    case "q4_0":
      quantizeQ4_0(values, data);
      break;
    case "q4_k":
    case "q6_k":
      throw new RangeError(
        `quantize: no ${dtype} quantizer (K-quant tensors are read from GGUF files as stored)`,
      );
  }
  return { dtype, shape: [...shape], data };
}

function writeF16(data: Uint8Array, at: number, x: number): void {
  const h = f32ToF16(x);
  data[at] = h & 0xff;
  data[at + 1] = h >>> 8;
}

/** C's roundf: halves go away from zero (Math.round sends -2.5 to -2). */
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * ggml quantize_row_q8_0_ref: d = amax / 127, q = roundf(x * (1/d)), all in float32 (hence Math.fround).
 * The block stores d as f16, but q is computed from the float32 d, as ggml does.
 */
function quantizeQ8_0(x: Float32Array, data: Uint8Array): void {
  for (let i0 = 0, block = 0; i0 < x.length; i0 += 32, block += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i0 + j]));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    writeF16(data, block, d);
    for (let j = 0; j < 32; j++) data[block + 2 + j] = roundHalfAway(Math.fround(x[i0 + j] * id)) & 0xff;
  }
}

/**
 * ggml quantize_row_q4_0_ref: `max` is the signed value of largest magnitude (the first one on ties), d = max / -8
 * (so max itself maps to q = 0), q = min(15, trunc(x * (1/d) + 8.5)), all in float32.
 */
function quantizeQ4_0(x: Float32Array, data: Uint8Array): void {
  for (let i0 = 0, block = 0; i0 < x.length; i0 += 32, block += 18) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i0 + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    writeF16(data, block, d);
    const q = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
    for (let j = 0; j < 16; j++) data[block + 2 + j] = q(x[i0 + j]) | (q(x[i0 + 16 + j]) << 4);
  }
}
