import { describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { matmul } from "../../src/backend/reference/ops.js";
import { dequantize } from "../../src/model/dtype.js";
import type { DType, Tensor } from "../../src/model/tensor.js";
import { xorshift } from "../helpers.js";
import { randomBlocks } from "./random-blocks.js";

// The SIMD paths read quantized weights (all but q2_k and q3_k) whose rows come in multiples of 8 from 8-row
// groups (16 rows at a time on AVX-512, 32 for a batch of the 32-value types), a copy interleaved at load
// (native/src/backend/matmul-groups-x86.h); these tests hold those tiles to the reference: dequantize
// (src/model/dtype.ts), then matmul.

const interleavedTypes: DType[] = [
  "q8_0",
  "q4_0",
  "q4_1",
  "q5_0",
  "q5_1",
  "iq4_nl",
  "q4_k",
  "q5_k",
  "q6_k",
  "iq4_xs",
];

/**
 * x = q / 128 with integer q and |q| = 127 somewhere in every 32-block: the kernels' rounding of x to int8 per
 * block is then exact, and they must equal the reference up to f32 summation.
 */
function exactActivations(T: number, cols: number, seed: number): Float32Array {
  const rand = xorshift(seed);
  return Float32Array.from({ length: T * cols }, (_, i) =>
    i % 32 === 0 ? 127 / 128 : (Math.floor(rand() * 255) - 127) / 128,
  );
}

const addon = loadNativeAddon();
describe.skipIf(addon instanceof Error)("interleaved quantized kernels against the reference", () => {
  const a = addon instanceof Error ? undefined : addon;
  // The scalar path reads rows as stored; every other path this CPU runs reads these weights interleaved.
  const paths = (a?.kernelPaths() ?? []).filter((p) => p !== "scalar");

  /** Every path's y equals the reference within 1e-5 · Σ|w·x| (f32 summation) per output. */
  function expectReference(w: Tensor, x: Float32Array, T: number, threads: number) {
    const [rows, cols] = w.shape;
    const wRef = dequantize(w);
    const expected = matmul(x, wRef, T, cols, rows);
    for (const path of paths) {
      const got = a?.kernelMatmul(path, w.dtype, w.data, rows, cols, x, T, threads) ?? new Float32Array();
      for (let t = 0; t < T; t++)
        for (let o = 0; o < rows; o++) {
          let absSum = 0;
          for (let i = 0; i < cols; i++) absSum += Math.abs(wRef[o * cols + i] * x[t * cols + i]);
          const diff = Math.abs(got[t * rows + o] - expected[t * rows + o]);
          if (!(diff <= 1e-5 * absSum))
            throw new Error(
              `${path} ${w.dtype} ${rows}x${cols} T=${T} threads=${threads} t=${t} o=${o}: ` +
                `got ${got[t * rows + o]}, want ${expected[t * rows + o]}`,
            );
        }
    }
  }

  test("this CPU runs at least one interleaving path (AVX2)", () => {
    expect(paths.length).toBeGreaterThan(0);
  });

  for (const dtype of interleavedTypes) {
    // 896: Qwen2.5-0.5B's width, where the mixes fall back to 32-value types.
    const widths = dtype.endsWith("_k") || dtype === "iq4_xs" ? [256, 768] : [96, 896];
    test(`${dtype}: rows in 8-row groups (32-row tiles, 16-row pairs and lone groups), every T from 1 to 7, 1–2 threads`, () => {
      let seed = 1;
      // The matmul splits rows into 8 bands a thread, on multiples of 32 rows: 8 rows give one group (the 8-row
      // tile), 24 a 16-row pair (AVX-512) and a group; 56 a band of 32 rows (AVX-512's 32-row tile for the
      // 32-value types, two pairs for the others) and one of 24; 136 and 264 bands of 32 and a lone group.
      for (const rows of [8, 24, 56, 136, 264])
        for (const cols of widths)
          for (const T of [1, 2, 3, 4, 5, 6, 7]) {
            seed++;
            const threads = rows === 136 ? 1 : 2;
            const w = randomBlocks(dtype, rows, cols, xorshift(seed));
            expectReference(w, exactActivations(T, cols, seed), T, threads);
          }
    });

    test(`${dtype}: one token on bands of several 32-row windows and a ragged end (decode's tiles)`, () => {
      // One token's bands start on 32 rows: 600 rows give 1-thread bands of 64 and 96 rows (a 64-row tile and a
      // 32-row one where the type takes 64), 1,000 rows bands of 128 and a last one ending in a lone group.
      let seed = 200;
      for (const rows of [600, 1000])
        for (const threads of [1, 2]) {
          seed++;
          const w = randomBlocks(dtype, rows, widths[0], xorshift(seed));
          expectReference(w, exactActivations(1, widths[0], seed), 1, threads);
        }
    });

    test(`${dtype}: 70 tokens (past a 64-token chunk) on 136 rows`, () => {
      const cols = widths[1];
      expectReference(randomBlocks(dtype, 136, cols, xorshift(99)), exactActivations(70, cols, 99), 70, 1);
    });
  }

  // The largest dots the int8 instructions see: maddubs (AVX2) sums pairs in int16 and saturates, so these fail
  // if a path let its int16 sums grow past 32,767. Every quant byte is set to `fill`; x = ±127/128 throughout.
  const extremes: [DType, number, number][] = [
    ["q5_k", 0xff, 1], // every quant 31: nibble 15 and the fifth bit
    ["q5_0", 0xff, 1],
    ["q5_1", 0xff, 1],
    ["iq4_xs", 0x00, -1], // every level −127 (nibble 0)
    ["iq4_xs", 0xff, -1], // every level 113
    ["iq4_nl", 0x00, -1],
    // decode's q4_0 / q4_1 tile sums the high nibbles as 16 · q (nibbleBlock16): every nibble 15, both signs
    ["q4_0", 0xff, 1],
    ["q4_0", 0xff, -1],
    ["q4_1", 0xff, -1],
  ];
  /** Where the quant bytes (not scales or mins) start in a block, and the block's size. */
  const quantBytes: Partial<Record<DType, [number, number]>> = {
    q5_k: [16, 176],
    q5_0: [2, 22],
    q5_1: [4, 24],
    iq4_xs: [8, 136],
    iq4_nl: [2, 18],
    q4_0: [2, 18],
    q4_1: [4, 20],
  };
  for (const [dtype, fill, sign] of extremes)
    test(`${dtype}: every quant byte 0x${fill.toString(16)} against x = ${sign > 0 ? "" : "−"}127/128, 1 and 3 tokens`, () => {
      const cols = dtype.endsWith("_k") || dtype === "iq4_xs" ? 512 : 896;
      const w = randomBlocks(dtype, 136, cols, xorshift(7));
      const [from, size] = quantBytes[dtype] ?? [0, 0];
      for (let block = 0; block < w.data.length; block += size) w.data.fill(fill, block + from, block + size);
      for (const T of [1, 3]) expectReference(w, new Float32Array(T * cols).fill((sign * 127) / 128), T, 1);
    });
});
