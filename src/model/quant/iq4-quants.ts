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
import { type BlockCodec, halfAt } from "./block-codec.js";

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
};
