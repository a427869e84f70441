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
  /**
   * ggml quantize_row_q4_0_ref: `max` is the signed value of largest magnitude (the first one on ties), d = max / -8
   * (so max itself maps to q = 0), q = min(15, trunc(x * (1/d) + 8.5)), all in float32.
   */
  quantize(x, data) {
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
      writeHalf(data, block, d);
      const q = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
      for (let j = 0; j < 16; j++) data[block + 2 + j] = q(x[i0 + j]) | (q(x[i0 + 16 + j]) << 4);
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
  };
}

export const q5_0 = fiveBit(2, -16);
export const q5_1 = fiveBit(4, 0);
