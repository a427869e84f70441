import { describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { matmul } from "../../src/backend/reference/ops.js";
import { dequantize, tensorBytes } from "../../src/model/dtype.js";
import { f32ToF16 } from "../../src/model/float-formats.js";
import type { DType } from "../../src/model/tensor.js";
import { xorshift } from "../helpers.js";

// The SIMD paths read K-quant and iq4_xs weights whose rows come in multiples of 8 from 8-row groups (16 rows at
// a time on AVX-512, but for q6_k), a copy interleaved at load (native/src/backend/matmul-groups-x86.h); these
// tests hold those tiles to the reference: dequantize (src/model/dtype.ts), then matmul.

function setF16(data: Uint8Array, at: number, x: number) {
  const h = f32ToF16(x);
  data[at] = h & 0xff;
  data[at + 1] = h >>> 8;
}

const blockBytes: Record<string, number> = { q4_k: 144, q5_k: 176, q6_k: 210, iq4_xs: 136 };

/** Random blocks (every quant, scale and min byte random) with f16 super-block scales of a sane size. */
function randomTensor(dtype: DType, rows: number, cols: number, seed: number) {
  const rand = xorshift(seed);
  const data = new Uint8Array(tensorBytes(dtype, [rows, cols]));
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  for (let block = 0; block < data.length; block += blockBytes[dtype]) {
    setF16(data, block + (dtype === "q6_k" ? 208 : 0), (rand() - 0.5) * 0.01); // d
    if (dtype === "q4_k" || dtype === "q5_k") setF16(data, block + 2, rand() * 0.01); // dmin
  }
  return { dtype, shape: [rows, cols], data };
}

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
describe.skipIf(addon instanceof Error)(
  "interleaved K-quant and iq4_xs kernels against the reference",
  () => {
    const a = addon instanceof Error ? undefined : addon;
    // The scalar path reads rows as stored; every other path this CPU runs reads these weights interleaved.
    const paths = (a?.kernelPaths() ?? []).filter((p) => p !== "scalar");

    /** Every path's y equals the reference within 1e-5 · Σ|w·x| (f32 summation) per output. */
    function expectReference(
      w: ReturnType<typeof randomTensor>,
      x: Float32Array,
      T: number,
      threads: number,
    ) {
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

    for (const dtype of ["q4_k", "q5_k", "q6_k", "iq4_xs"] as DType[]) {
      test(`${dtype}: rows in 8-row groups (16-row pairs and lone groups), every T from 1 to 7, 1–2 threads`, () => {
        let seed = 1;
        // The matmul splits rows into 8 bands a thread, on whole groups: 8 and 24 rows give each band one group
        // (the 8-row tile); 136 and 264 rows give bands of 2 or 3 groups, a 16-row pair (AVX-512) and a lone group.
        for (const rows of [8, 24, 136, 264])
          for (const cols of [256, 768])
            for (const T of [1, 2, 3, 4, 5, 7]) {
              seed++;
              const threads = rows === 136 ? 1 : 2;
              expectReference(
                randomTensor(dtype, rows, cols, seed),
                exactActivations(T, cols, seed),
                T,
                threads,
              );
            }
      });

      test(`${dtype}: 70 tokens (past a 64-token chunk) on 136 rows`, () => {
        expectReference(randomTensor(dtype, 136, 512, 99), exactActivations(70, 512, 99), 70, 1);
      });
    }

    // The largest dots the int8 instructions see: maddubs (AVX2) sums pairs in int16 and saturates, so these fail
    // if a path let its int16 sums grow past 32,767.
    test("q5_k: every quant 31 (nibble 15 and the fifth bit) against x = 127/128", () => {
      const w = randomTensor("q5_k", 136, 512, 7);
      for (let block = 0; block < w.data.length; block += 176) w.data.fill(0xff, block + 16, block + 176);
      expectReference(w, new Float32Array(3 * 512).fill(127 / 128), 3, 1);
    });

    test("iq4_xs: every level −127 (nibble 0), and every level 113, against x = −127/128", () => {
      for (const nibbles of [0x00, 0xff]) {
        const w = randomTensor("iq4_xs", 136, 512, 8);
        for (let block = 0; block < w.data.length; block += 136) w.data.fill(nibbles, block + 8, block + 136);
        expectReference(w, new Float32Array(3 * 512).fill(-127 / 128), 3, 1);
      }
    });
  },
);
