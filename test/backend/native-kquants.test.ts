import { describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { matmul } from "../../src/backend/reference/ops.js";
import { dequantize, dtypeOfGgmlType, tensorBytes } from "../../src/model/dtype.js";
import { f32ToF16 } from "../../src/model/float-formats.js";
import type { DType } from "../../src/model/tensor.js";
import { xorshift } from "../helpers.js";

function setF16(data: Uint8Array, at: number, x: number) {
  const h = f32ToF16(x);
  data[at] = h & 0xff;
  data[at + 1] = h >>> 8;
}

describe("K-quant dequantization (src/model/dtype.ts), hand-built blocks", () => {
  test("GGUF type ids 12 and 14 are q4_k and q6_k", () => {
    expect(dtypeOfGgmlType(12)).toBe("q4_k");
    expect(dtypeOfGgmlType(14)).toBe("q6_k");
    expect(tensorBytes("q4_k", [3, 512])).toBe(3 * 2 * 144);
    expect(tensorBytes("q6_k", [512])).toBe(2 * 210);
  });

  test("q4_k: value = d·sc·q − dmin·m with 6-bit scales and mins unpacked from 12 bytes", () => {
    const b = new Uint8Array(144);
    setF16(b, 0, 1); // d
    setF16(b, 2, 0.5); // dmin
    // sc(0..3) = 1, 2, 3, 4 and m(0..3) = 5, 6, 7, 8; the top 2 bits of bytes 3 and 7 extend sc(7) by 16, m(7) by 32;
    // bytes 8..11 hold sc(4..7) = 1, 3, 5, 7 (+16) in their low and m(4..7) = 2, 4, 6, 8 (+32) in their high nibbles.
    b.set([1, 2, 3, 0x44, 5, 6, 7, 0x88, 0x21, 0x43, 0x65, 0x87], 4);
    // Pair p (values 64p..64p+63): byte l holds value 64p + l (low nibble: l & 15) and 64p + 32 + l ((l + p) & 15).
    for (let p = 0; p < 4; p++)
      for (let l = 0; l < 32; l++) b[16 + p * 32 + l] = (l & 15) | (((l + p) & 15) << 4);
    const v = dequantize({ dtype: "q4_k", shape: [256], data: b });
    expect(v[0]).toBe(1 * 1 * 0 - 0.5 * 5);
    expect(v[5]).toBe(1 * 1 * 5 - 0.5 * 5);
    expect(v[35]).toBe(1 * 2 * 3 - 0.5 * 6); // sub-block 1, high nibble of byte 3
    expect(v[135]).toBe(1 * 1 * 7 - 0.5 * 2); // sub-block 4: sc(4) = 1, m(4) = 2
    expect(v[234]).toBe(1 * 23 * 13 - 0.5 * 40); // sub-block 7: sc(7) = 7 + 16, m(7) = 8 + 32
  });

  test("q6_k: value = d·scale·(q − 32), q = 4 bits of ql + 2 bits of qh, a signed scale per 16 values", () => {
    const b = new Uint8Array(210);
    for (let i = 0; i < 128; i++) b[i] = i; // ql
    b.fill(0b11100100, 128, 192); // qh: bits 2k..2k+1 = k for quarter k
    for (let i = 0; i < 16; i++) b[192 + i] = (i - 8) & 0xff; // scales −8..7
    setF16(b, 208, 0.5);
    const v = dequantize({ dtype: "q6_k", shape: [256], data: b });
    expect(v[0]).toBe(0.5 * -8 * (0 - 32)); // quarter 0: low nibble of ql[0]
    expect(v[40]).toBe(0.5 * -6 * (8 + 16 - 32)); // quarter 1, l = 8: low nibble of ql[40], qh bits 1
    expect(v[84]).toBe(0.5 * -3 * (1 + 32 - 32)); // quarter 2, l = 20: high nibble of ql[20], scale 5
    expect(v[255]).toBe(0.5 * 7 * (7 + 48 - 32)); // half 1, quarter 3, l = 31: high nibble of ql[127], scale 15
  });
});

const addon = loadNativeAddon();
describe.skipIf(addon instanceof Error)("native K-quant kernels against the reference", () => {
  const a = addon instanceof Error ? undefined : addon;

  /** Random blocks with sane f16 scales (random bytes elsewhere). */
  function randomTensor(dtype: DType, rows: number, cols: number, seed: number) {
    const rand = xorshift(seed);
    const data = new Uint8Array(tensorBytes(dtype, [rows, cols]));
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
    const bytes = dtype === "q4_k" ? 144 : 210;
    for (let block = 0; block < data.length; block += bytes) {
      if (dtype === "q4_k") {
        setF16(data, block, rand() * 0.01);
        setF16(data, block + 2, rand() * 0.01);
      } else {
        setF16(data, block + 208, (rand() - 0.5) * 0.01);
      }
    }
    return { dtype, shape: [rows, cols], data };
  }

  for (const dtype of ["q4_k", "q6_k"] as DType[]) {
    test(`${dtype}: embedding rows equal dequantize exactly`, () => {
      const t = randomTensor(dtype, 5, 512, 1);
      const all = dequantize(t);
      const got =
        a?.kernelDequantizeRows(dtype, t.data, 5, 512, Int32Array.of(4, 0, 2)) ?? new Float32Array();
      [4, 0, 2].forEach((row, i) => {
        expect(got.subarray(i * 512, (i + 1) * 512)).toEqual(all.subarray(row * 512, (row + 1) * 512));
      });
    });

    test(`${dtype}: matmul equals the reference, scalar and avx2, odd rows and batch sizes`, () => {
      // Rows in multiples of 8 take the AVX2 path's 8-row interleaved q4_k kernel.
      for (const [rows, cols, T, seed] of [
        [1, 256, 1, 1],
        [7, 512, 3, 2],
        [13, 768, 5, 3],
        [8, 256, 1, 4],
        [16, 512, 4, 5],
        [24, 768, 7, 6],
      ]) {
        const w = randomTensor(dtype, rows, cols, seed);
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
});
