import { describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { matmul } from "../../src/backend/reference/ops.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { dequantize, dtypeLayout } from "../../src/model/dtype.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { syntheticModelOf } from "../../src/model/synth/synth-model.js";
import { logitsAt, maxDiff, xorshift } from "../helpers.js";
import { quantizedTypes, randomBlocks } from "./random-blocks.js";

const addon = loadNativeAddon();

// Every quantized type's native kernels (scalar, and each SIMD path this CPU runs) against the reference
// backend's dequantization, the definition of each type (src/model/quant/).
describe.skipIf(addon instanceof Error)(
  "native kernels of every quantized type against the reference",
  () => {
    const a = addon instanceof Error ? undefined : addon;

    for (const dtype of quantizedTypes) {
      const block = dtypeLayout[dtype].blockSize;

      test(`${dtype}: embedding rows equal dequantize exactly`, () => {
        const cols = 3 * block;
        const w = randomBlocks(dtype, 5, cols, xorshift(1));
        const all = dequantize(w);
        const got =
          a?.kernelDequantizeRows(dtype, w.data, 5, cols, Int32Array.of(4, 0, 2)) ?? new Float32Array();
        [4, 0, 2].forEach((row, i) => {
          expect(got.subarray(i * cols, (i + 1) * cols)).toEqual(all.subarray(row * cols, (row + 1) * cols));
        });
      });

      test(`${dtype}: matmul equals dequantize-then-matmul within 1e-5 of Σ|w·x|, every kernel path`, () => {
        // Rows not multiples of 8 (the row-at-a-time tiles and their tails) and multiples of 8 (8-row groups,
        // where a path interleaves the type), one to five blocks per row, batch sizes around the token tiles.
        for (const [rows, blocks, T, seed] of [
          [1, 1, 1, 1],
          [7, 2, 3, 2],
          [13, 3, 5, 3],
          [8, 1, 1, 4],
          [16, 2, 4, 5],
          [24, 3, 7, 6],
          [37, 5, 2, 7],
        ]) {
          const cols = blocks * block;
          const w = randomBlocks(dtype, rows, cols, xorshift(seed));
          const wRef = dequantize(w);
          // x = q / 128 with integer q and |q| = 127 somewhere in every 32-block: rounding x to int8 blocks is then
          // exact, so the native result must equal the reference up to f32 summation alone.
          const rand = xorshift(seed + 100);
          const x = Float32Array.from({ length: T * cols }, (_, i) =>
            i % 32 === 0 ? 127 / 128 : (Math.floor(rand() * 255) - 127) / 128,
          );
          const expected = matmul(x, wRef, T, cols, rows);
          for (const path of a?.kernelPaths() ?? []) {
            const got = a?.kernelMatmul(path, dtype, w.data, rows, cols, x, T, 2) ?? new Float32Array();
            for (let t = 0; t < T; t++)
              for (let o = 0; o < rows; o++) {
                let absSum = 0;
                for (let i = 0; i < cols; i++) absSum += Math.abs(wRef[o * cols + i] * x[t * cols + i]);
                const diff = Math.abs(got[t * rows + o] - expected[t * rows + o]);
                expect(diff, `${path} ${rows}x${cols} t=${t} o=${o}`).toBeLessThanOrEqual(1e-5 * absSum);
              }
          }
        }
      });
    }

    // A whole forward pass: tiny-test widened to 256 so that every matrix is whole 256-value blocks, its weights
    // quantized to the type (src/model/quant/'s quantizers). Activations are rounded to int8 per 32-block on the native side (≈0.4% per
    // value), which moves logits by well under 2.5% of their largest magnitude, as for q4_0 in
    // native-backend.test.ts.
    describe("synthetic model over a 64-token sequence, native logits against the reference backend's", () => {
      const config = { ...shapeConfig("tiny-test"), dim: 256, hiddenDim: 512, headDim: 64, ropeDims: 64 };
      config.attentionScale = 1 / Math.sqrt(config.headDim);
      const sequence = Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % config.vocabSize);
      for (const dtype of quantizedTypes) {
        test(dtype, async () => {
          const model = syntheticModelOf(config, dtype, { seed: 3, name: "tiny-test-256" });
          expect(model.tensors.get("blk.0.ffn_down.weight")?.dtype).toBe(dtype);
          const want = await logitsAt(new ReferenceBackend(model), sequence, config.vocabSize);
          const native = await NativeBackend.load(model, { threads: 2 });
          const { diff, scale } = maxDiff(await logitsAt(native, sequence, config.vocabSize), want);
          expect(scale).toBeGreaterThan(0);
          expect(diff).toBeLessThanOrEqual(0.025 * scale);
        });
      }
    });
  },
);
