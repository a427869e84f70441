/**
 * ggml's 32-value block types (ggml-common.h's block_q*_0/_1, byte for byte; every f16 little-endian):
 *   q8_0  34 bytes  [d: f16][q: 32 × int8]                       value = q·d
 *   q4_0  18 bytes  [d: f16][qs: 16]                             value = (q − 8)·d
 *   q4_1  20 bytes  [d: f16][m: f16][qs: 16]                     value = q·d + m
 *   q5_0  22 bytes  [d: f16][qh: 4][qs: 16]                      value = (q − 16)·d
 *   q5_1  24 bytes  [d: f16][m: f16][qh: 4][qs: 16]              value = q·d + m
 * qs byte j holds element j's 4 low bits in its low nibble and element j + 16's in its high nibble; for the 5-bit
 * types, bit j of qh (a little-endian u32) is element j's fifth bit.
 */
import { type BlockCodec, halfAt, int8, roundHalfAway, writeHalf } from "./block-codec.js";

export const q8_0: BlockCodec = {
  blockSize: 32,
  bytesPerBlock: 34,
  dequantize(data, out) {
    for (let block = 0, o = 0; o < out.length; block += 34) {
      const d = halfAt(data, block);
      for (let j = 0; j < 32; j++, o++) out[o] = int8(data[block + 2 + j]) * d;
    }
  },
  /**
   * ggml quantize_row_q8_0_ref: d = amax / 127, q = roundf(x * (1/d)), all in float32 (hence Math.fround).
   * The block stores d as f16, but q is computed from the float32 d, as ggml does.
   */
  quantize(x, data) {
    for (let i0 = 0, block = 0; i0 < x.length; i0 += 32, block += 34) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i0 + j]));
      const d = Math.fround(amax / 127);
      const id = d !== 0 ? Math.fround(1 / d) : 0;
      writeHalf(data, block, d);
      for (let j = 0; j < 32; j++) data[block + 2 + j] = roundHalfAway(Math.fround(x[i0 + j] * id)) & 0xff;
    }
  },
};

export const q4_0: BlockCodec = {
  blockSize: 32,
  bytesPerBlock: 18,
  dequantize(data, out) {
    for (let block = 0, o = 0; o < out.length; block += 18, o += 32) {
      const d = halfAt(data, block);
      for (let j = 0; j < 16; j++) {
        const byte = data[block + 2 + j];
        out[o + j] = ((byte & 0x0f) - 8) * d;
        out[o + j + 16] = ((byte >>> 4) - 8) * d;
      }
    }
  },
  /** ggml quantize_row_q4_0_ref: see symmetricCodes. */
  quantize(x, data) {
    const codes = new Uint8Array(32);
    for (let i0 = 0, block = 0; i0 < x.length; i0 += 32, block += 18) {
      writeHalf(data, block, symmetricCodes(x, i0, 4, codes));
      packNibbles(codes, data, block + 2);
    }
  },
};

export const q4_1: BlockCodec = {
  blockSize: 32,
  bytesPerBlock: 20,
  dequantize(data, out) {
    for (let block = 0, o = 0; o < out.length; block += 20, o += 32) {
      const d = halfAt(data, block);
      const m = halfAt(data, block + 2);
      for (let j = 0; j < 16; j++) {
        const byte = data[block + 4 + j];
        out[o + j] = (byte & 0x0f) * d + m;
        out[o + j + 16] = (byte >>> 4) * d + m;
      }
    }
  },
  /** ggml quantize_row_q4_1_ref: see affineCodes. */
  quantize(x, data) {
    const codes = new Uint8Array(32);
    for (let i0 = 0, block = 0; i0 < x.length; i0 += 32, block += 20) {
      const { d, min } = affineCodes(x, i0, 4, codes);
      writeHalf(data, block, d);
      writeHalf(data, block + 2, min);
      packNibbles(codes, data, block + 4);
    }
  },
};

/** The 5-bit types: `header` bytes before qh ([d] or [d][m]), value = (q + offset)·d (+ m when there is one). */
function fiveBit(header: 2 | 4, offset: number): BlockCodec {
  const bytesPerBlock = header + 20;
  return {
    blockSize: 32,
    bytesPerBlock,
    dequantize(data, out) {
      for (let block = 0, o = 0; o < out.length; block += bytesPerBlock, o += 32) {
        const d = halfAt(data, block);
        const m = header === 4 ? halfAt(data, block + 2) : undefined;
        const qh =
          data[block + header] |
          (data[block + header + 1] << 8) |
          (data[block + header + 2] << 16) |
          (data[block + header + 3] << 24);
        for (let j = 0; j < 16; j++) {
          const byte = data[block + header + 4 + j];
          const x0 = ((byte & 0x0f) + (((qh >>> j) & 1) << 4) + offset) * d;
          const x1 = ((byte >>> 4) + (((qh >>> (j + 16)) & 1) << 4) + offset) * d;
          // q5_0 has no m: adding 0 would turn ggml's −0 into +0.
          out[o + j] = m === undefined ? x0 : x0 + m;
          out[o + j + 16] = m === undefined ? x1 : x1 + m;
        }
      }
    },
    /** ggml quantize_row_q5_0_ref (symmetricCodes) or quantize_row_q5_1_ref (affineCodes). */
    quantize(x, data) {
      const codes = new Uint8Array(32);
      for (let i0 = 0, block = 0; i0 < x.length; i0 += 32, block += bytesPerBlock) {
        if (header === 2) writeHalf(data, block, symmetricCodes(x, i0, 5, codes));
        else {
          const { d, min } = affineCodes(x, i0, 5, codes);
          writeHalf(data, block, d);
          writeHalf(data, block + 2, min);
        }
        let qh = 0;
        for (let j = 0; j < 32; j++) qh |= (codes[j] >>> 4) << j;
        for (let k = 0; k < 4; k++) data[block + header + k] = (qh >>> (8 * k)) & 0xff;
        packNibbles(codes, data, block + header + 4);
      }
    },
  };
}

export const q5_0 = fiveBit(2, -16);
export const q5_1 = fiveBit(4, 0);

/**
 * ggml's rule for the types without a zero point (q4_0, q5_0), all in float32 (hence Math.fround): `max` is the
 * signed value of largest magnitude (the first one on ties), d = max / −2^(bits−1) (so max itself maps to code 0),
 * code = min(2^bits − 1, trunc(x·(1/d) + 2^(bits−1) + 0.5)) (C's cast: castToInt). Writes the 32 codes of the
 * block at x[i0] into `codes` and returns d (the block stores it as f16, the codes use the float32 d).
 */
function symmetricCodes(x: Float32Array, i0: number, bits: 4 | 5, codes: Uint8Array): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = x[i0 + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  const half = 1 << (bits - 1);
  const d = Math.fround(max / -half);
  const id = d !== 0 ? Math.fround(1 / d) : 0;
  const offset = half + 0.5;
  for (let j = 0; j < 32; j++) {
    codes[j] = Math.min(2 * half - 1, castToInt(Math.fround(Math.fround(x[i0 + j] * id) + offset)));
  }
  return d;
}

/**
 * ggml's rule for the types with a zero point (q4_1, q5_1), all in float32: d = (max − min) / (2^bits − 1),
 * code = trunc((x − min)·(1/d) + 0.5) (castToInt), which float32 rounding keeps below 2^bits (ggml still clamps
 * q4_1's to 15; the clamp here is the same no-op for both). Writes the codes into `codes`; the block stores d and min
 * as f16.
 */
function affineCodes(
  x: Float32Array,
  i0: number,
  bits: 4 | 5,
  codes: Uint8Array,
): { d: number; min: number } {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = 0; j < 32; j++) {
    const v = x[i0 + j];
    if (v < min) min = v; // the first of equal values, as ggml keeps it (0 and −0 store different f16 bits)
    if (v > max) max = v;
  }
  const top = (1 << bits) - 1;
  const d = Math.fround(Math.fround(max - min) / top);
  const id = d !== 0 ? Math.fround(1 / d) : 0;
  for (let j = 0; j < 32; j++) {
    codes[j] = Math.min(top, castToInt(Math.fround(Math.fround(Math.fround(x[i0 + j] - min) * id) + 0.5)));
  }
  return { d, min };
}

const FLT_MAX = 3.4028234663852886e38;

/**
 * C's float-to-integer cast as ggml's x86 build computes it: truncation. Only a block of float32 subnormals, whose
 * 1/d overflows to infinity, gives ±inf or NaN here; C leaves that cast undefined, x86 yields 0x80000000 (low byte
 * 0), so such codes are 0. Their d is 0 in f16, so the block reads back as zeros whatever the codes are.
 */
function castToInt(x: number): number {
  return Number.isFinite(x) ? Math.trunc(x) : 0;
}

/** The low 4 bits of 32 codes into 16 bytes at data[at]: code j in byte j's low nibble, code j + 16 in its high one. */
function packNibbles(codes: Uint8Array, data: Uint8Array, at: number): void {
  for (let j = 0; j < 16; j++) data[at + j] = (codes[j] & 0x0f) | ((codes[j + 16] & 0x0f) << 4);
}
