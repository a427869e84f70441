/**
 * ggml's K-quants: 256-value super-blocks of 16 or 32-value sub-blocks, each with its own quantized scale (and
 * min), and f16 super-block scales d and dmin (ggml-common.h's block_q*_K, byte for byte):
 *
 *   q2_k   84 bytes  [scales: 16][qs: 64][d: f16][dmin: f16]
 *          16 sub-blocks of 16: scale byte s = sc | m << 4; value = d·sc·q − dmin·m, q = 2 bits of qs
 *   q3_k  110 bytes  [hmask: 32][qs: 64][scales: 12][d: f16]
 *          16 sub-blocks of 16, 6-bit scales packed in 12 bytes (scaleQ3K); value = d·(scale − 32)·q,
 *          q = 2 bits of qs − (hmask bit set ? 0 : 4)
 *   q4_k  144 bytes  [d: f16][dmin: f16][scales: 12][qs: 128]
 *          8 sub-blocks of 32, 6-bit scale sc and min m packed in 12 bytes (scaleMinK4); value = d·sc·q − dmin·m
 *   q5_k  176 bytes  [d: f16][dmin: f16][scales: 12][qh: 32][qs: 128]
 *          as q4_k with a fifth bit: bit j of qh[l] for sub-block j
 *   q6_k  210 bytes  [ql: 128][qh: 64][scales: 16 × int8][d: f16]
 *          16 sub-blocks of 16; value = d·scale·(q − 32), q = 4 bits of ql + 2 bits of qh
 *
 * The 2- and 3-bit types (and q6_k) walk a super-block in two halves of 128 values: half n, quarter j (32 values)
 * takes bits 2j..2j+1 of qs bytes 32n..32n+31 (q6_k: its own layout below); the 4- and 5-bit types take 64 values
 * from each 32 bytes of qs, low nibbles first.
 *
 * Each quantize is ggml's quantize_row_q*_K_ref (what llama-quantize runs without an importance matrix), byte for
 * byte: a scale search per sub-block (k-quant-scales.ts), the sub-block scales quantized against the largest, then
 * every value rounded again against the scales as stored.
 */
import { type BlockCodec, halfAt, int8, writeHalf } from "./block-codec.js";
import {
  fitQ3Scale,
  fitScaleAndMin,
  fitSymmetricScale,
  GROUP_MAX_EPS,
  nearestInt,
  type ScaleGrid,
} from "./k-quant-scales.js";

const f32 = Math.fround;

/**
 * Scratch of the quantizers (one super-block at a time; quantizing is synchronous): levels, per-sub-block scales
 * and mins, the scale search's weights.
 */
const levels = new Uint8Array(256);
const signedLevels = new Int8Array(256);
const subScales = new Float32Array(16);
const subMins = new Float32Array(16);
const weights = new Float32Array(32);
const packedScales = new Uint8Array(8);
const packedMins = new Uint8Array(8);

/** x rounded to f16 and stored at data[at..at+1]; returns the stored value, which the levels are then fitted to. */
function storeHalf(data: Uint8Array, at: number, x: number): number {
  writeHalf(data, at, x);
  return halfAt(data, at);
}

/**
 * 2-bit levels (0..3) of one super-block into 64 qs bytes at `at`: half n, quarter j of 32 values goes to bits
 * 2j..2j+1 of bytes at + 32n .. at + 32n + 31.
 */
function packTwoBits(l: Uint8Array | Int8Array, data: Uint8Array, at: number): void {
  for (let n = 0; n < 2; n++)
    for (let i = 0; i < 32; i++) {
      const v = 128 * n + i;
      data[at + 32 * n + i] = l[v] | (l[v + 32] << 2) | (l[v + 64] << 4) | (l[v + 96] << 6);
    }
}

/** ggml get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) from 12 scale bytes at `at`. */
export function scaleMinK4(data: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [data[at + j] & 63, data[at + j + 4] & 63];
  return [
    (data[at + j + 4] & 0x0f) | ((data[at + j - 4] >> 6) << 4),
    (data[at + j + 4] >> 4) | ((data[at + j] >> 6) << 4),
  ];
}

/**
 * The 6-bit scale i (0..15) of a q3_k block from its 12 scale bytes at `at`: the low 4 bits are nibble i of bytes
 * 0..7 (low nibbles for i < 8), the high 2 bits are bits 2·⌊i / 4⌋ of byte 8 + i % 4.
 */
export function scaleQ3K(data: Uint8Array, at: number, i: number): number {
  const low = i < 8 ? data[at + i] & 0x0f : data[at + i - 8] >> 4;
  const high = (data[at + 8 + (i % 4)] >> (2 * (i >> 2))) & 3;
  return low | (high << 4);
}

/** q2_k's scale search: levels 0..3, inverse scales (3 − 0.5 + 0.1·k) / range for k = 0..15, absolute error. */
const Q2_GRID: ScaleGrid = { nmax: 3, rmin: -0.5, rdelta: 0.1, steps: 15, absoluteError: true };

export const q2_k: BlockCodec = {
  blockSize: 256,
  bytesPerBlock: 84,
  dequantize(data, out) {
    for (let block = 0, o = 0; o < out.length; block += 84, o += 256) {
      const d = halfAt(data, block + 80);
      const dmin = halfAt(data, block + 82);
      for (let v = 0; v < 256; v++) {
        const n = v >> 7;
        const j = (v >> 5) & 3;
        const s = data[block + (v >> 4)]; // sub-block 8n + 2j + half = v >> 4
        const q = (data[block + 16 + 32 * n + (v & 31)] >> (2 * j)) & 3;
        out[o + v] = d * (s & 0x0f) * q - dmin * (s >> 4);
      }
    }
  },
  /**
   * ggml quantize_row_q2_K_ref: each sub-block of 16 gets a scale and min from fitScaleAndMin (weights |x|, absolute
   * error); both are quantized to 4 bits against the largest (d = max scale / 15, dmin = max min / 15), and the
   * values are rounded again against the stored scales (a sub-block whose stored scale is 0 keeps its search levels).
   */
  quantize(x, data) {
    for (let i0 = 0, block = 0; i0 < x.length; i0 += 256, block += 84) {
      let maxScale = 0;
      let maxMin = 0;
      for (let j = 0; j < 16; j++) {
        for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[i0 + 16 * j + l]);
        subScales[j] = fitScaleAndMin(x, i0 + 16 * j, 16, weights, Q2_GRID, levels, 16 * j, subMins, j);
        if (subScales[j] > maxScale) maxScale = subScales[j];
        if (subMins[j] > maxMin) maxMin = subMins[j];
      }
      // A scale byte is nearest_int's int stored into a uint8_t: C's truncation to 8 bits.
      data.fill(0, block, block + 16);
      if (maxScale > 0) {
        const iscale = f32(15 / maxScale);
        for (let j = 0; j < 16; j++) data[block + j] = nearestInt(f32(iscale * subScales[j]));
      }
      if (maxMin > 0) {
        const iscale = f32(15 / maxMin);
        for (let j = 0; j < 16; j++) data[block + j] |= nearestInt(f32(iscale * subMins[j])) << 4;
      }
      const d = storeHalf(data, block + 80, maxScale > 0 ? f32(maxScale / 15) : 0);
      const dmin = storeHalf(data, block + 82, maxMin > 0 ? f32(maxMin / 15) : 0);
      for (let j = 0; j < 16; j++) {
        const dj = f32(d * (data[block + j] & 0x0f));
        if (dj === 0) continue;
        const mj = f32(dmin * (data[block + j] >> 4));
        for (let i = 16 * j; i < 16 * j + 16; i++)
          levels[i] = Math.max(0, Math.min(3, nearestInt(f32(f32(x[i0 + i] + mj) / dj))));
      }
      packTwoBits(levels, data, block + 16);
    }
  },
};

export const q3_k: BlockCodec = {
  blockSize: 256,
  bytesPerBlock: 110,
  dequantize(data, out) {
    for (let block = 0, o = 0; o < out.length; block += 110, o += 256) {
      const d = halfAt(data, block + 108);
      for (let v = 0; v < 256; v++) {
        const n = v >> 7;
        const j = (v >> 5) & 3;
        const l = v & 31;
        const low = (data[block + 32 + 32 * n + l] >> (2 * j)) & 3;
        const high = (data[block + l] >> (4 * n + j)) & 1;
        out[o + v] = d * (scaleQ3K(data, block + 96, v >> 4) - 32) * (low - (high ? 0 : 4));
      }
    }
  },
  /**
   * ggml quantize_row_q3_K_ref: each sub-block of 16 gets a signed scale from fitQ3Scale; the scales are quantized
   * to 6 bits (−32..31) against the one of largest magnitude (d = that scale / −32), and the values are rounded
   * again (−4..3) against the stored scales (a sub-block whose stored scale is 0 keeps its search levels).
   */
  quantize(x, data) {
    for (let i0 = 0, block = 0; i0 < x.length; i0 += 256, block += 110) {
      let maxScale = 0;
      let amax = 0;
      for (let j = 0; j < 16; j++) {
        subScales[j] = fitQ3Scale(x, i0 + 16 * j, 16, 4, signedLevels, 16 * j);
        if (Math.abs(subScales[j]) > amax) {
          amax = Math.abs(subScales[j]);
          maxScale = subScales[j];
        }
      }
      data.fill(0, block + 96, block + 108);
      let d = storeHalf(data, block + 108, 0);
      if (maxScale !== 0) {
        const iscale = f32(-32 / maxScale);
        for (let j = 0; j < 16; j++) {
          // nearest_int's int is stored into an int8_t (C's truncation) before the clamp; scaleQ3K reads it back.
          const l = Math.max(-32, Math.min(31, int8(nearestInt(f32(iscale * subScales[j]))))) + 32;
          data[block + 96 + (j % 8)] |= (l & 0x0f) << (j < 8 ? 0 : 4);
          data[block + 104 + (j % 4)] |= (l >> 4) << (2 * (j >> 2));
        }
        d = storeHalf(data, block + 108, f32(1 / iscale));
      }
      for (let j = 0; j < 16; j++) {
        const dj = f32(d * (scaleQ3K(data, block + 96, j) - 32));
        if (dj === 0) continue;
        for (let i = 16 * j; i < 16 * j + 16; i++)
          signedLevels[i] = Math.max(-4, Math.min(3, nearestInt(f32(x[i0 + i] / dj)))) + 4;
      }
      // Levels 4..7 set their bit in hmask (value v: bit ⌊v / 32⌋ of byte v % 32) and keep their low 2 bits.
      data.fill(0, block, block + 32);
      for (let v = 0; v < 256; v++) {
        if (signedLevels[v] > 3) {
          data[block + (v & 31)] |= 1 << (v >> 5);
          signedLevels[v] -= 4;
        }
      }
      packTwoBits(signedLevels, data, block + 32);
    }
  },
};

/**
 * q4_k and q5_k: `qhBytes` of fifth bits (0 or 32) between the scales and qs; `grid` is the type's scale search
 * (ggml quantize_row_q4_K_ref / quantize_row_q5_K_ref).
 */
function kQuant45(qhBytes: 0 | 32, grid: ScaleGrid): BlockCodec {
  const bytesPerBlock = 144 + qhBytes;
  const { nmax } = grid;
  return {
    blockSize: 256,
    bytesPerBlock,
    dequantize(data, out) {
      for (let block = 0, o = 0; o < out.length; block += bytesPerBlock, o += 256) {
        const d = halfAt(data, block);
        const dmin = halfAt(data, block + 2);
        for (let j = 0; j < 8; j++) {
          const [sc, m] = scaleMinK4(data, block + 4, j);
          const qs = block + 16 + qhBytes + (j >> 1) * 32;
          const shift = (j & 1) * 4;
          for (let l = 0; l < 32; l++) {
            const fifth = qhBytes ? ((data[block + 16 + l] >> j) & 1) << 4 : 0;
            out[o + 32 * j + l] = d * sc * (((data[qs + l] >> shift) & 0x0f) + fifth) - dmin * m;
          }
        }
      }
    },
    /**
     * Each sub-block of 32 gets a scale and min from fitScaleAndMin (weights rms(x) + |x|, squared error); both are
     * quantized to 6 bits against the largest (d = max scale / 63, dmin = max min / 63), and the values are rounded
     * again against the stored scales (a sub-block whose stored scale is 0 keeps its search levels).
     */
    quantize(x, data) {
      for (let i0 = 0, block = 0; i0 < x.length; i0 += 256, block += bytesPerBlock) {
        let maxScale = 0;
        let maxMin = 0;
        for (let j = 0; j < 8; j++) {
          const at = i0 + 32 * j;
          let sumX2 = 0;
          for (let l = 0; l < 32; l++) sumX2 = f32(sumX2 + f32(x[at + l] * x[at + l]));
          const rms = f32(Math.sqrt(f32(sumX2 / 32)));
          for (let l = 0; l < 32; l++) weights[l] = rms + Math.abs(x[at + l]);
          subScales[j] = fitScaleAndMin(x, at, 32, weights, grid, levels, 32 * j, subMins, j);
          if (subScales[j] > maxScale) maxScale = subScales[j];
          if (subMins[j] > maxMin) maxMin = subMins[j];
        }
        // nearest_int's int is stored into a uint8_t (C's truncation to 8 bits) before the clamp to 63.
        const iscale = maxScale > 0 ? f32(63 / maxScale) : 0;
        const imin = maxMin > 0 ? f32(63 / maxMin) : 0;
        for (let j = 0; j < 8; j++) {
          packedScales[j] = Math.min(63, nearestInt(f32(iscale * subScales[j])) & 0xff);
          packedMins[j] = Math.min(63, nearestInt(f32(imin * subMins[j])) & 0xff);
        }
        packScalesMinsK4(packedScales, packedMins, data, block + 4);
        const d = storeHalf(data, block, f32(maxScale / 63));
        const dmin = storeHalf(data, block + 2, f32(maxMin / 63));
        for (let j = 0; j < 8; j++) {
          const dj = f32(d * packedScales[j]);
          if (dj === 0) continue;
          const mj = f32(dmin * packedMins[j]);
          for (let i = 32 * j; i < 32 * j + 32; i++)
            levels[i] = Math.max(0, Math.min(nmax, nearestInt(f32(f32(x[i0 + i] + mj) / dj))));
        }
        // Pair p (values 64p..64p+63): byte l of its 32 qs bytes holds value 64p + l's low 4 bits in its low nibble
        // and 64p + 32 + l's in its high nibble; their fifth bits are bits 2p and 2p + 1 of qh[l].
        const qs = block + 16 + qhBytes;
        if (qhBytes) data.fill(0, block + 16, block + 48);
        for (let p = 0; p < 4; p++)
          for (let l = 0; l < 32; l++) {
            const low = levels[64 * p + l];
            const high = levels[64 * p + 32 + l];
            data[qs + 32 * p + l] = (low & 0x0f) | ((high & 0x0f) << 4);
            if (qhBytes) data[block + 16 + l] |= ((low >> 4) << (2 * p)) | ((high >> 4) << (2 * p + 1));
          }
      }
    },
  };
}

/** The inverse of scaleMinK4: 6-bit scales and mins of the 8 sub-blocks into 12 bytes at `at`. */
function packScalesMinsK4(scales: Uint8Array, mins: Uint8Array, data: Uint8Array, at: number): void {
  for (let j = 0; j < 4; j++) {
    data[at + j] = scales[j] | ((scales[j + 4] >> 4) << 6);
    data[at + j + 4] = mins[j] | ((mins[j + 4] >> 4) << 6);
    data[at + j + 8] = (scales[j + 4] & 0x0f) | ((mins[j + 4] & 0x0f) << 4);
  }
}

/**
 * ggml's scale searches: q4_k tries inverse scales (15 − 1 + 0.1·k) / range for k = 0..20, q5_k
 * (31 − 0.5 + 0.1·k) / range for k = 0..15.
 */
export const q4_k = kQuant45(0, { nmax: 15, rmin: -1, rdelta: 0.1, steps: 20, absoluteError: false });
export const q5_k = kQuant45(32, { nmax: 31, rmin: -0.5, rdelta: 0.1, steps: 15, absoluteError: false });

/**
 * q6_k: half n (128 values) takes ql bytes 64n.. and qh bytes 32n..; value 128n + 32k + l (k < 4, l < 32) has
 * its low 4 bits in ql[64n + 32·(k & 1) + l] (the high nibble for k ≥ 2) and its top 2 bits at bits 2k of
 * qh[32n + l]; scale 8n + 2k + ⌊l / 16⌋.
 */
export const q6_k: BlockCodec = {
  blockSize: 256,
  bytesPerBlock: 210,
  dequantize(data, out) {
    for (let block = 0, o = 0; o < out.length; block += 210, o += 256) {
      const d = halfAt(data, block + 208);
      for (let v = 0; v < 256; v++) {
        const n = v >> 7;
        const k = (v >> 5) & 3;
        const l = v & 31;
        const low = (data[block + 64 * n + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0x0f;
        const high = (data[block + 128 + 32 * n + l] >> (2 * k)) & 3;
        out[o + v] = d * int8(data[block + 192 + 8 * n + 2 * k + (l >> 4)]) * ((low | (high << 4)) - 32);
      }
    }
  },
  /**
   * ggml quantize_row_q6_K_ref: each sub-block of 16 gets a signed scale from fitSymmetricScale; the scales are
   * quantized to int8 against the one of largest magnitude (d = that scale / −128), and the values are rounded again
   * (−32..31) against the stored scales (a sub-block whose stored scale is 0 keeps its search levels). A super-block
   * whose scales are all below GROUP_MAX_EPS is all zero bytes.
   */
  quantize(x, data) {
    for (let i0 = 0, block = 0; i0 < x.length; i0 += 256, block += 210) {
      let maxScale = 0;
      let amax = 0;
      for (let j = 0; j < 16; j++) {
        subScales[j] = fitSymmetricScale(x, i0 + 16 * j, 16, 32, signedLevels, 16 * j);
        if (Math.abs(subScales[j]) > amax) {
          amax = Math.abs(subScales[j]);
          maxScale = subScales[j];
        }
      }
      if (amax < GROUP_MAX_EPS) {
        data.fill(0, block, block + 210);
        continue;
      }
      const iscale = f32(-128 / maxScale);
      const d = storeHalf(data, block + 208, f32(1 / iscale));
      // min(127, nearest_int) stored into an int8_t: C's truncation to 8 bits.
      for (let j = 0; j < 16; j++)
        data[block + 192 + j] = Math.min(127, nearestInt(f32(iscale * subScales[j]))) & 0xff;
      for (let j = 0; j < 16; j++) {
        const dj = f32(d * int8(data[block + 192 + j]));
        if (dj === 0) continue;
        for (let i = 16 * j; i < 16 * j + 16; i++)
          signedLevels[i] = Math.max(-32, Math.min(31, nearestInt(f32(x[i0 + i] / dj)))) + 32;
      }
      // Half n, quarter k, value l (as the dequantizer reads them): the low nibble goes to ql[64n + 32·(k & 1) + l]
      // (high nibble for k ≥ 2), the top 2 bits to bits 2k of qh[32n + l].
      for (let n = 0; n < 2; n++)
        for (let l = 0; l < 32; l++) {
          const v = 128 * n + l;
          const q0 = signedLevels[v];
          const q1 = signedLevels[v + 32];
          const q2 = signedLevels[v + 64];
          const q3 = signedLevels[v + 96];
          data[block + 64 * n + l] = (q0 & 0x0f) | ((q2 & 0x0f) << 4);
          data[block + 64 * n + 32 + l] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
          data[block + 128 + 32 * n + l] = (q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6);
        }
    }
  },
};
