/**
 * ggml's non-linear 4-bit types: a nibble indexes a fixed table of 16 int8 levels (denser near zero, where weights
 * are), times a scale (ggml-common.h's block_iq4_nl and block_iq4_xs, byte for byte):
 *
 *   iq4_nl   32 values /  18 bytes  [d: f16][qs: 16]                              value = d·level[q]
 *   iq4_xs  256 values / 136 bytes  [d: f16][scales_h: u16][scales_l: 4][qs: 128]
 *            8 sub-blocks of 32 with 6-bit scales ls: the low 4 bits are nibble j of scales_l (low nibble first),
 *            the high 2 bits are bits 2j of scales_h; value = d·(ls − 32)·level[q]
 * In both, sub-block j's 16 qs bytes hold its value l in the low nibble of byte l and value l + 16 in the high one.
 */
import { type BlockCodec, halfAt, writeHalf } from "./block-codec.js";

/** ggml's kvalues_iq4nl. */
export const iq4Levels = Int8Array.of(
  -127,
  -104,
  -83,
  -65,
  -49,
  -35,
  -22,
  -10,
  1,
  13,
  25,
  38,
  53,
  69,
  89,
  113,
);

/** 32 values of scale `d` from the 16 nibble bytes at `at`. */
function levels32(data: Uint8Array, at: number, d: number, out: Float32Array, o: number): void {
  for (let l = 0; l < 16; l++) {
    out[o + l] = d * iq4Levels[data[at + l] & 0x0f];
    out[o + l + 16] = d * iq4Levels[data[at + l] >> 4];
  }
}

export const iq4_nl: BlockCodec = {
  blockSize: 32,
  bytesPerBlock: 18,
  dequantize(data, out) {
    for (let block = 0, o = 0; o < out.length; block += 18, o += 32)
      levels32(data, block + 2, halfAt(data, block), out, o);
  },
  /**
   * ggml quantize_iq4_nl without an importance matrix (what ggml_quantize_chunk runs): the block's scale from
   * searchScale; the codes are the nearest levels of x / scale (the float32 scale; the block stores it as f16).
   */
  quantize(x, data) {
    for (let i0 = 0, block = 0; i0 < x.length; i0 += 32, block += 18) {
      const d = searchScale(x, i0);
      writeHalf(data, block, d);
      packLevels(x, i0, d !== 0 ? Math.fround(1 / d) : 0, data, block + 2);
    }
  },
};

/** The 6-bit scale of sub-block j (0..7) of the iq4_xs block at `block`. */
export function scaleIq4Xs(data: Uint8Array, block: number, j: number): number {
  const scalesH = data[block + 2] | (data[block + 3] << 8);
  return ((data[block + 4 + (j >> 1)] >> (4 * (j & 1))) & 0x0f) | (((scalesH >> (2 * j)) & 3) << 4);
}

export const iq4_xs: BlockCodec = {
  blockSize: 256,
  bytesPerBlock: 136,
  dequantize(data, out) {
    for (let block = 0, o = 0; o < out.length; block += 136, o += 256) {
      const d = halfAt(data, block);
      for (let j = 0; j < 8; j++) {
        levels32(data, block + 8 + 16 * j, d * (scaleIq4Xs(data, block, j) - 32), out, o + 32 * j);
      }
    }
  },
  /**
   * ggml quantize_iq4_xs without an importance matrix: each sub-block's scale from searchScale; the sub-block scale
   * of largest magnitude (the first on ties) becomes −32 steps of the block scale d, so d = −that / 32; each
   * sub-block scale is rounded to ls − 32 = nearest_int(scale / d) clamped to −32..31, and its codes are the nearest
   * levels of x / (d·(ls − 32)), in float32 throughout (d as float32; the block stores it as f16). An all-zero
   * block has d = −0 (f16 0x8000) and every ls = 32, as in ggml.
   */
  quantize(x, data) {
    const scales = new Float32Array(8);
    for (let i0 = 0, block = 0; i0 < x.length; i0 += 256, block += 136) {
      let maxScale = 0;
      for (let j = 0; j < 8; j++) {
        scales[j] = searchScale(x, i0 + 32 * j);
        if (Math.abs(scales[j]) > Math.abs(maxScale)) maxScale = scales[j];
      }
      const d = Math.fround(-maxScale / 32);
      const id = d !== 0 ? Math.fround(1 / d) : 0;
      writeHalf(data, block, d);
      let scalesH = 0;
      for (let j = 0; j < 8; j++) {
        const l = Math.max(-32, Math.min(31, nearestInt(Math.fround(id * scales[j]))));
        const dl = Math.fround(d * l);
        packLevels(x, i0 + 32 * j, dl !== 0 ? Math.fround(1 / dl) : 0, data, block + 8 + 16 * j);
        const ls = l + 32;
        if (j % 2 === 0) data[block + 4 + (j >> 1)] = ls & 0x0f;
        else data[block + 4 + (j >> 1)] |= (ls & 0x0f) << 4;
        scalesH |= (ls >> 4) << (2 * j);
      }
      data[block + 2] = scalesH & 0xff;
      data[block + 3] = scalesH >>> 8;
    }
  },
};

/** ggml's nearest_int: round half to even (it adds 1.5·2^23 in float32 and reads the integer off the mantissa). */
function nearestInt(x: number): number {
  return Math.fround(x + 12582912) - 12582912;
}

/**
 * ggml best_index_int8 over the levels: the index of the level nearest x, the upper one on a tie, the distances
 * taken in float32.
 */
function nearestLevel(x: number): number {
  if (x <= iq4Levels[0]) return 0;
  if (x >= iq4Levels[15]) return 15;
  let upper = 1;
  while (x >= iq4Levels[upper]) upper++;
  return Math.fround(x - iq4Levels[upper - 1]) < Math.fround(iq4Levels[upper] - x) ? upper - 1 : upper;
}

/** The nearest-level codes of x[i0..i0+32)·id into 16 bytes at data[at] (value l low nibble, l + 16 high). */
function packLevels(x: Float32Array, i0: number, id: number, data: Uint8Array, at: number): void {
  for (let l = 0; l < 16; l++) {
    const low = nearestLevel(Math.fround(id * x[i0 + l]));
    const high = nearestLevel(Math.fround(id * x[i0 + 16 + l]));
    data[at + l] = low | (high << 4);
  }
}

/**
 * ggml quantize_row_iq4_nl_impl's scale search for the 32 values at x[i0] (ntry = 7, no importance matrix, so each
 * value's weight is x²), in float32 throughout: with `max` the signed value of largest magnitude (0 when below
 * ggml's GROUP_MAX_EPS), it fits the least-squares scale Σwqx / Σwq² to the nearest-level codes of x·127/max, then
 * of x·(t − 127)/max for t = −7..7, and keeps the scale whose fit explains most (largest (Σwqx)² / Σwq²).
 */
function searchScale(x: Float32Array, i0: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    if (Math.abs(x[i0 + j]) > amax) {
      amax = Math.abs(x[i0 + j]);
      max = x[i0 + j];
    }
  }
  if (amax < GROUP_MAX_EPS) return 0;
  const sums = (id: number) => {
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i0 + j];
      const q = iq4Levels[nearestLevel(Math.fround(id * v))];
      const wq = Math.fround(Math.fround(v * v) * q);
      sumqx = Math.fround(sumqx + Math.fround(wq * v));
      sumq2 = Math.fround(sumq2 + Math.fround(wq * q));
    }
    return { sumqx, sumq2 };
  };
  const first = sums(Math.fround(1 / Math.fround(max / 127)));
  let d = first.sumq2 > 0 ? Math.fround(first.sumqx / first.sumq2) : 0;
  let best = Math.fround(d * first.sumqx);
  for (let t = -7; t <= 7; t++) {
    const { sumqx, sumq2 } = sums(Math.fround((t + iq4Levels[0]) / max));
    if (sumq2 > 0 && Math.fround(sumqx * sumqx) > Math.fround(best * sumq2)) {
      d = Math.fround(sumqx / sumq2);
      best = Math.fround(d * sumqx);
    }
  }
  return d;
}

/** ggml's GROUP_MAX_EPS (1e-15f): a sub-block whose values are all smaller gets scale 0. */
const GROUP_MAX_EPS = Math.fround(1e-15);
