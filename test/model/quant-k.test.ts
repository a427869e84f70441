import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { dequantize, dtypeLayout, dtypes, quantize } from "../../src/model/dtype.js";
import { f32ToF16 } from "../../src/model/float-formats.js";
import { halfAt } from "../../src/model/quant/block-codec.js";
import { nearestInt } from "../../src/model/quant/k-quant-scales.js";
import type { DType } from "../../src/model/tensor.js";
import { xorshift } from "../helpers.js";

const kQuants: DType[] = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"];

function setF16(data: Uint8Array, at: number, x: number) {
  const h = f32ToF16(x);
  data[at] = h & 0xff;
  data[at + 1] = h >>> 8;
}

describe("K-quant dequantization, hand-built blocks", () => {
  test("q2_k: value = d·sc·q − dmin·m, a scale byte sc | m << 4 per 16 values, q = 2 bits of qs", () => {
    const b = new Uint8Array(84);
    // Sub-block j: sc = (j + 1) & 15, m = j % 4 (sub-block 15: sc 0, m 3).
    for (let j = 0; j < 16; j++) b[j] = ((j + 1) & 15) | ((j % 4) << 4);
    // qs 0b11100100: quarter j of each half reads q = j; byte 32 + 5 is 0b00011011 (quarter 0 reads 3, quarter 3 0).
    b.fill(0b11100100, 16, 80);
    b[16 + 37] = 0b00011011;
    setF16(b, 80, 0.5); // d
    setF16(b, 82, 0.25); // dmin
    const v = dequantize({ dtype: "q2_k", shape: [256], data: b });
    expect(v[0]).toBe(0.5 * 1 * 0 - 0.25 * 0);
    expect(v[40]).toBe(0.5 * 3 * 1 - 0.25 * 2); // half 0, quarter 1 (q = 1), sub-block 2
    expect(v[100]).toBe(0.5 * 7 * 3 - 0.25 * 2); // half 0, quarter 3 (q = 3), sub-block 6
    expect(v[133]).toBe(0.5 * 9 * 3 - 0.25 * 0); // half 1, quarter 0, byte 37: q = 3, sub-block 8
    expect(v[170]).toBe(0.5 * 11 * 1 - 0.25 * 2); // half 1, quarter 1, sub-block 10
    expect(v[229]).toBe(0.5 * 15 * 0 - 0.25 * 2); // half 1, quarter 3, byte 37: q = 0, sub-block 14
    expect(v[255]).toBe(0.5 * 0 * 3 - 0.25 * 3); // sub-block 15: sc 0, only the min is left
  });

  test("q3_k: value = d·(scale − 32)·(q − 4 unless the hmask bit is set), 6-bit scales packed in 12 bytes", () => {
    const b = new Uint8Array(110);
    // hmask: bits 0..3 set (half 0 keeps q, half 1 subtracts 4), byte 20 also bit 4 (value 128 + 20).
    b.fill(0x0f, 0, 32);
    b[20] = 0x1f;
    // qs: quarter j reads q = j, except byte 2 (value 2: q = 3) and byte 32 + 20 (value 148: q = 1).
    b.fill(0b11100100, 32, 96);
    b[32 + 2] = 0b11100111;
    b[32 + 32 + 20] = 0b11100101;
    // Scales: s0 = 33, s5 = 30, s9 = 40, s15 = 63, every other 32. Low nibbles in bytes 0..7 (s8..s15 high nibbles),
    // high 2 bits of s(k + 4i) at bits 2i of byte 8 + k: 2 (0b10) for 32, 33 and 40, 1 for 30, 3 for 63.
    b.set([0x01, 0x80, 0, 0, 0, 0x0e, 0, 0xf0], 96);
    b.set([0xaa, 0b10100110, 0xaa, 0b11101010], 104);
    setF16(b, 108, 0.5);
    const v = dequantize({ dtype: "q3_k", shape: [256], data: b });
    expect(v[2]).toBe(0.5 * (33 - 32) * 3); // sub-block 0, hmask bit set
    expect(v[83]).toBe(0.5 * (30 - 32) * 2); // sub-block 5: half 0, quarter 2
    expect(v[150]).toBe(0.5 * (40 - 32) * (0 - 4)); // sub-block 9: half 1 (hmask bit 4 clear)
    expect(v[148]).toBe(0.5 * (40 - 32) * 1); // byte 20 has hmask bit 4 and q = 1
    expect(v[255]).toBe(0.5 * (63 - 32) * (3 - 4)); // sub-block 15: half 1, quarter 3
    expect(v[20]).toBe(0); // sub-block 1: scale 32 − 32 = 0
  });

  test("q5_k: q4_k's scales and nibbles plus a fifth bit, bit j of qh[l] for sub-block j", () => {
    const b = new Uint8Array(176);
    setF16(b, 0, 1); // d
    setF16(b, 2, 0.5); // dmin
    // As in the q4_k test: sc(0..7) = 1, 2, 3, 4, 1, 3, 5, 23 and m(0..7) = 5, 6, 7, 8, 2, 4, 6, 40.
    b.set([1, 2, 3, 0x44, 5, 6, 7, 0x88, 0x21, 0x43, 0x65, 0x87], 4);
    // qh[l] = 0b10100101 for l < 16 (fifth bit for sub-blocks 0, 2, 5, 7), 0 after.
    b.fill(0b10100101, 16, 32);
    // Pair p: byte l holds value 64p + l (low nibble: l & 15) and 64p + 32 + l ((l + p) & 15).
    for (let p = 0; p < 4; p++)
      for (let l = 0; l < 32; l++) b[48 + p * 32 + l] = (l & 15) | (((l + p) & 15) << 4);
    const v = dequantize({ dtype: "q5_k", shape: [256], data: b });
    expect(v[5]).toBe(1 * 1 * (5 + 16) - 0.5 * 5); // sub-block 0, fifth bit set
    expect(v[35]).toBe(1 * 2 * 3 - 0.5 * 6); // sub-block 1: bit 1 clear
    expect(v[74]).toBe(1 * 3 * (10 + 16) - 0.5 * 7); // sub-block 2, l = 10
    expect(v[162]).toBe(1 * 3 * (4 + 16) - 0.5 * 4); // sub-block 5, l = 2: high nibble (2 + 2) & 15
    expect(v[180]).toBe(1 * 3 * 6 - 0.5 * 4); // sub-block 5, l = 20: no fifth bit past l = 15
    expect(v[193]).toBe(1 * 5 * 1 - 0.5 * 6); // sub-block 6: bit 6 clear
    expect(v[231]).toBe(1 * 23 * (10 + 16) - 0.5 * 40); // sub-block 7, l = 7: (7 + 3) & 15 = 10
  });
});

describe("ggml's nearest_int", () => {
  test("rounds half to even (not away from zero like roundf)", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999998].map(nearestInt)).toEqual([0, 2, 2, 0, -2, -2, 2]);
    expect(nearestInt(Math.fround(0.49999997))).toBe(0);
    expect(nearestInt(4194303)).toBe(4194303);
    expect(nearestInt(-4194303)).toBe(-4194303);
  });

  test("wraps around beyond ±(2^22 − 1) as ggml's mantissa trick does", () => {
    // 2^22 + 1.5·2^23 = 2^24: mantissa bits 0 → −2^22.
    expect(nearestInt(4194304)).toBe(-4194304);
    // −2^22 − 1 + 1.5·2^23 = 2^23 − 1, stored with a half ulp: mantissa 2^23 − 2 → 2^22 − 2.
    expect(nearestInt(-4194305)).toBe(4194302);
  });
});

/**
 * llama.cpp's own check of quantize → dequantize (tests/test-quantize-fns.cpp): generate_data(0, 4096) is
 * 0.1 + 2·cosf(i) in float32, the error is sqrt(Σ (x − y)²) / n (array_rmse: not an RMS), and the bounds are
 * MAX_QUANTIZATION_TOTAL_ERROR_2BITS (q2_k), _3BITS (q3_k) and MAX_QUANTIZATION_TOTAL_ERROR (the rest).
 * Math.cos and glibc's cosf differ by an ulp on 47 of the 4096 values; the bounds leave far more room than that.
 */
describe("quantize → dequantize error on llama.cpp's test data, within its bounds", () => {
  const testSize = 32 * 128;
  const data = Float32Array.from({ length: testSize }, (_, i) =>
    Math.fround(0.1 + 2 * Math.fround(Math.cos(Math.fround(i)))),
  );
  const bounds: Record<string, number> = { q2_k: 0.0075, q3_k: 0.004, q4_k: 0.002, q5_k: 0.002, q6_k: 0.002 };

  for (const dtype of kQuants) {
    test(`${dtype}: total error below ${bounds[dtype]}`, () => {
      const y = dequantize(quantize(data, [testSize], dtype));
      let sum = 0;
      for (let i = 0; i < testSize; i++) sum += (data[i] - y[i]) ** 2;
      expect(Math.sqrt(sum) / testSize).toBeLessThan(bounds[dtype]);
    });
  }
});

/**
 * 64 super-blocks whose every value is exact in float32 (so C and JavaScript build the same input): 16-bit
 * xorshift32 draws in [−1, 1) times 2^(block % 16 − 12), an outlier ×16 in every eighth block, zero sub-blocks in
 * others.
 */
function goldenInput(): Float32Array {
  const next = xorshift(2024);
  const x = new Float32Array(64 * 256);
  for (let i = 0; i < x.length; i++) {
    const block = i >> 8;
    let v = ((((next() * 2 ** 32) >>> 16) - 32768) / 32768) * 2 ** ((block % 16) - 12);
    if (block % 8 === 3 && (i & 255) === 77) v *= 16;
    if (block % 8 === 5 && (i & 31) < 16) v = 0;
    x[i] = v;
  }
  return x;
}

/**
 * SHA-256 of what llama.cpp's ggml makes of goldenInput(): ggml_quantize_chunk(type, x, …, 64 rows of 256,
 * imatrix = NULL) from the libggml-base of the llama.cpp release node-llama-cpp ships (what llama-quantize runs
 * without an importance matrix), recorded once with a small C program outside the repository.
 */
const ggmlDigests: Record<string, string> = {
  q2_k: "4cc7e67408a46d1a0ef603babf72ea17c6f6fbbf94647bb0c9e0b0cf3de5f188",
  q3_k: "bf8892754b2e3c8692db4fceafb934c6175564aa52c26d98af70ff2efce4d85a",
  q4_k: "d1ea2d8268447a4df134d5767000571b0afefec60c8b84a5238fb4eeddfb8543",
  q5_k: "8aca9e9b7ce5939e17b431d158cd3109e4fd3f105667e12a4987209601af7a78",
  q6_k: "3a29d34c4fd226976c63d57f74bad16c37eedeeb0a65e34af7a6f142c627e637",
};

describe("byte-identical to ggml's reference quantizers", () => {
  const x = goldenInput();
  for (const dtype of kQuants) {
    test(`${dtype}: the bytes of 64 super-blocks hash as ggml's do`, () => {
      const bytes = quantize(x, [64, 256], dtype).data;
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(ggmlDigests[dtype]);
    });
  }
});

/** Gaussian float32 values (Box–Muller on xorshift), standard deviation `sigma`. */
function gaussian(n: number, seed: number, sigma: number): Float32Array {
  const rand = xorshift(seed);
  return Float32Array.from(
    { length: n },
    () => sigma * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()),
  );
}

/** Byte offsets of a block's f16 super-block scales (d, and dmin where the type has one). */
const halfFields: Record<string, number[]> = {
  q2_k: [80, 82],
  q3_k: [108],
  q4_k: [0, 2],
  q5_k: [0, 2],
  q6_k: [208],
};

describe("K-quant quantizer invariants", () => {
  test("every K-quant is writable", () => {
    expect(dtypes).toEqual(expect.arrayContaining(kQuants));
  });

  for (const dtype of kQuants) {
    const { bytesPerBlock } = dtypeLayout[dtype];

    test(`${dtype}: an all-zero block is all zero bytes and dequantizes to zeros`, () => {
      const t = quantize(new Float32Array(512), [2, 256], dtype);
      expect(t.data.every((byte) => byte === 0)).toBe(true);
      expect(dequantize(t).every((v) => v === 0)).toBe(true);
    });

    test(`${dtype}: output is finite for any finite input up to 1e5, all-equal, huge and tiny blocks included`, () => {
      // 1e5 keeps the f16 super-block scales finite in every type (beyond ~1e6 q2_k's dmin overflows f16, as in ggml).
      const value = fc.oneof(
        fc.float({ min: -1e5, max: 1e5, noNaN: true }),
        fc.float({ min: Math.fround(-1e-30), max: Math.fround(1e-30), noNaN: true }),
        fc.constantFrom(0, -0, 1e5, -1e5, 1.4e-45),
      );
      const block = fc.oneof(
        fc.float32Array({ minLength: 256, maxLength: 256, min: -1e5, max: 1e5, noNaN: true }),
        value.map((v) => new Float32Array(256).fill(v)),
        fc.array(value, { minLength: 256, maxLength: 256 }).map((a) => Float32Array.from(a)),
      );
      fc.assert(
        fc.property(block, (x) => dequantize(quantize(x, [256], dtype)).every(Number.isFinite)),
        { numRuns: 150 },
      );
    });

    test(`${dtype}: an all-equal block c (1 ≤ |c| ≤ 1e4) comes back within the f16 rounding of its scale`, () => {
      // Every sub-block has the same scale, which is stored exactly as the largest: only d (or dmin) rounded to f16
      // (relative error 2^-11) stands between c and its value; 2^-10 leaves room for the float32 arithmetic.
      const magnitude = fc.float({ min: 1, max: 1e4, noNaN: true });
      fc.assert(
        fc.property(magnitude, fc.boolean(), (m, negative) => {
          const c = negative ? -m : m;
          const y = dequantize(quantize(new Float32Array(256).fill(c), [256], dtype));
          return y.every((v) => Math.abs(v - c) <= 2 ** -10 * Math.abs(c));
        }),
        { numRuns: 200 },
      );
    });

    test(`${dtype}: scaling the input by 2^k scales only the f16 super-block scales, by exactly 2^k`, () => {
      // Every float32 operation commutes with a power of two (while nothing over- or underflows), so the searches
      // pick the same levels and integer scales: a check that the arithmetic is float32 throughout.
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: -3, max: 3 }), (seed, k) => {
          const x = gaussian(1024, seed, 4);
          const a = quantize(x, [1024], dtype).data;
          const b = quantize(
            x.map((v) => v * 2 ** k),
            [1024],
            dtype,
          ).data;
          for (let block = 0; block < a.length; block += bytesPerBlock) {
            const fields = halfFields[dtype].map((at) => block + at);
            for (const at of fields) if (halfAt(b, at) !== halfAt(a, at) * 2 ** k) return false;
            for (let i = block; i < block + bytesPerBlock; i++)
              if (!fields.some((at) => i === at || i === at + 1) && a[i] !== b[i]) return false;
          }
          return true;
        }),
        { numRuns: 30 },
      );
    });

    test(`${dtype}: re-quantizing dequantized values loses less than quantizing the original did`, () => {
      // The dequantized values are exactly representable in the type, so a second pass should cost less.
      for (const seed of [1, 2, 3]) {
        const x = gaussian(4096, seed, 1);
        const y = dequantize(quantize(x, [16, 256], dtype));
        const y2 = dequantize(quantize(y, [16, 256], dtype));
        let first = 0;
        let second = 0;
        for (let i = 0; i < x.length; i++) {
          first += (y[i] - x[i]) ** 2;
          second += (y2[i] - y[i]) ** 2;
        }
        expect(second, `seed ${seed}`).toBeLessThan(first);
      }
    });
  }
});
