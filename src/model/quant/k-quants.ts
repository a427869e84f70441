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
 */
import { type BlockCodec, halfAt, int8 } from "./block-codec.js";

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
};

/** q4_k and q5_k: `qhBytes` of fifth bits (0 or 32) between the scales and qs. */
function kQuant45(qhBytes: 0 | 32): BlockCodec {
  const bytesPerBlock = 144 + qhBytes;
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
  };
}

export const q4_k = kQuant45(0);
export const q5_k = kQuant45(32);

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
};
