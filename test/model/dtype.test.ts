import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  allDTypes,
  dequantize,
  dtypeOfGgmlType,
  dtypes,
  ggmlTypeName,
  ggmlTypeOf,
  quantize,
  tensorBytes,
} from "../../src/model/dtype.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/model/float-formats.js";

/** The float32 whose bits are `bits`. */
const fromBits = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];

describe("layouts", () => {
  test("tensorBytes follows each block layout", () => {
    expect(tensorBytes("f32", [3, 4])).toBe(48);
    expect(tensorBytes("f16", [3, 4])).toBe(24);
    expect(tensorBytes("bf16", [5])).toBe(10);
    expect(tensorBytes("q8_0", [2, 64])).toBe(2 * 2 * 34);
    expect(tensorBytes("q4_0", [3, 32])).toBe(3 * 18);
    expect(tensorBytes("f32", [])).toBe(4);
  });

  test("a quantized row must be whole blocks", () => {
    expect(() => tensorBytes("q8_0", [2, 33])).toThrow(/row length 33/);
    expect(() => tensorBytes("q4_0", [16])).toThrow(/multiple of 32/);
  });

  test("GGUF type ids", () => {
    // ggml's names by id (ggml.h's enum ggml_type) agree with the ids vellum writes, type by type.
    for (const d of allDTypes) {
      expect(ggmlTypeName(ggmlTypeOf[d])).toBe(d.toUpperCase());
      expect(dtypeOfGgmlType(ggmlTypeOf[d])).toBe(d);
    }
    expect(dtypeOfGgmlType(12)).toBe("q4_k");
    expect(dtypeOfGgmlType(16)).toBeUndefined(); // IQ2_XXS
    expect(ggmlTypeName(12)).toBe("Q4_K");
    expect(ggmlTypeName(14)).toBe("Q6_K");
    expect(ggmlTypeName(1000)).toBeUndefined();
  });
});

describe("f16", () => {
  test("exact values, infinities, NaN and signed zero", () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(65504)).toBe(0x7bff); // largest finite
    expect(f32ToF16(0)).toBe(0x0000);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(f32ToF16(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
    expect(f32ToF16(1e10)).toBe(0x7c00);
    const nan = f32ToF16(Number.NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
    expect(f32ToF16(fromBits(0x7f800001)) & 0x3ff).not.toBe(0); // a NaN whose payload sits below the kept bits
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x3555)).toBe(0.333251953125);
  });

  test("round to nearest, ties to even", () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and 1 + 2^-10: even is 1
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway between mantissa 1 and 2: even is 2
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above halfway
    expect(f32ToF16(65519)).toBe(0x7bff); // below halfway to 65536
    expect(f32ToF16(65520)).toBe(0x7c00); // halfway between 65504 (odd) and 65536 (even): rounds to inf
  });

  test("subnormals", () => {
    expect(f32ToF16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16(1023 * 2 ** -24)).toBe(0x03ff); // largest subnormal
    expect(f32ToF16(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // half the smallest subnormal: tie to even 0
    expect(f32ToF16(-(2 ** -25) * 1.0001)).toBe(0x8001);
    expect(f32ToF16(1.5 * 2 ** -24)).toBe(0x0002); // tie between 1 and 2
    expect(f32ToF16(2.5 * 2 ** -24)).toBe(0x0002); // tie between 2 and 3
    expect(f32ToF16(1023.5 * 2 ** -24)).toBe(0x0400); // tie rounds up into the normals
    expect(f32ToF16(2 ** -30)).toBe(0x0000);
    expect(f32ToF16(fromBits(0x00000001))).toBe(0x0000); // f32 subnormal
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x83ff)).toBe(-1023 * 2 ** -24);
  });

  test("every f16 value survives f16 → f32 → f16", () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaNs
      if (f32ToF16(f16ToF32(h)) !== h) throw new Error(`0x${h.toString(16)} does not round trip`);
    }
  });

  test("f32 → f16 picks the nearest f16 (property)", () => {
    fc.assert(
      fc.property(fc.float({ min: -65000, max: 65000, noNaN: true }), (x) => {
        const h = f32ToF16(x);
        const r = f16ToF32(h);
        // The two neighbours of h along the number line (sign-magnitude bits).
        for (const n of [h + 1, h - 1]) {
          if ((n & 0x7fff) >= 0x7c00 || n < 0 || (n & 0x8000) !== (h & 0x8000)) continue;
          const other = f16ToF32(n);
          if (Math.abs(x - other) < Math.abs(x - r)) return false;
          if (Math.abs(x - other) === Math.abs(x - r) && (h & 1) === 1) return false; // ties go to the even mantissa
        }
        return true;
      }),
      { numRuns: 5000 },
    );
  });
});

describe("bf16", () => {
  test("rounding, ties to even, overflow", () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(-1)).toBe(0xbf80);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie: even
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie: even
    expect(f32ToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16(3.4028234663852886e38)).toBe(0x7f80); // largest f32 rounds up to inf
    expect(f32ToBf16(Number.NEGATIVE_INFINITY)).toBe(0xff80);
  });

  test("NaN stays a quiet NaN, subnormals are kept", () => {
    expect(f32ToBf16(fromBits(0x7f800001))).toBe(0x7fc0); // signalling NaN with low payload
    expect(bf16ToF32(f32ToBf16(Number.NaN))).toBeNaN();
    expect(f32ToBf16(2 ** -130)).toBe(0x0008);
    expect(bf16ToF32(0x0008)).toBe(2 ** -130);
    expect(bf16ToF32(0x8001)).toBe(-(2 ** -133));
  });
});

/** Little-endian f16 bytes of x. */
const f16Bytes = (x: number) => [f32ToF16(x) & 0xff, f32ToF16(x) >> 8];

describe("q8_0", () => {
  test("hand-computed block: d = amax / 127, q = round half away from zero", () => {
    const x = new Float32Array(32);
    x.set([127, -127, 0.5, -0.5, 1.5, -1.5, 2.5, 2.49, -3.51]);
    const t = quantize(x, [32], "q8_0");
    // d = 127 / 127 = 1 (f16 0x3c00); q = roundf(x)
    const q = [127, -127, 1, -1, 2, -2, 3, 2, -4].map((v) => v & 0xff);
    expect([...t.data]).toEqual([0x00, 0x3c, ...q, ...new Array(23).fill(0)]);
    expect([...dequantize(t).slice(0, 9)]).toEqual([127, -127, 1, -1, 2, -2, 3, 2, -4]);
  });

  test("an all-zero block has d = 0", () => {
    const t = quantize(new Float32Array(64), [2, 32], "q8_0");
    expect(t.data.every((b) => b === 0)).toBe(true);
    expect(dequantize(t).every((v) => v === 0)).toBe(true);
  });

  test("error per element is at most d/2, plus what storing d as f16 costs", () => {
    fc.assert(
      fc.property(
        fc.float32Array({
          minLength: 96,
          maxLength: 96,
          noNaN: true,
          noDefaultInfinity: true,
          min: -100,
          max: 100,
        }),
        (x) => {
          const y = dequantize(quantize(x, [3, 32], "q8_0"));
          for (let b = 0; b < 3; b++) {
            const block = x.subarray(b * 32, b * 32 + 32);
            const d = Math.max(...block.map(Math.abs)) / 127;
            const d16 = f16ToF32(f32ToF16(d));
            const bound = (d / 2) * (1 + 1e-6) + 127 * Math.abs(d - d16) + 1e-30;
            for (let j = 0; j < 32; j++) if (Math.abs(block[j] - y[b * 32 + j]) > bound) return false;
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("q4_0", () => {
  test("hand-computed block: low nibbles are elements 0..15, high nibbles 16..31", () => {
    const x = new Float32Array(32);
    // max = -8 (largest magnitude, signed) → d = -8 / -8 = 1, q = trunc(x + 8.5)
    x[0] = -8; // q 0
    x[16] = 7; // q 15
    x[1] = 0.5; // q 9
    x[17] = -0.5; // q 8
    x[2] = 7.4; // q 15
    x[18] = -7.6; // q 0
    const t = quantize(x, [32], "q4_0");
    const nibbles = new Array(16).fill(8 | (8 << 4)); // zeros: q 8
    nibbles[0] = 0 | (15 << 4);
    nibbles[1] = 9 | (8 << 4);
    nibbles[2] = 15 | (0 << 4);
    expect([...t.data]).toEqual([...f16Bytes(1), ...nibbles]);
    const y = dequantize(t);
    expect([y[0], y[16], y[1], y[17], y[2], y[18], y[3]]).toEqual([-8, 7, 1, 0, 7, -8, 0]);
  });

  test("positive max gives a negative d; the first of equal magnitudes wins; q is clamped to 15", () => {
    const x = new Float32Array(32);
    x.set([4, -8, 8, -3]);
    // max = -8 (seen before +8) → d = 1; +8 → trunc(16.5) = 16 → clamped to 15 → 7
    expect([...dequantize(quantize(x, [32], "q4_0")).slice(0, 4)]).toEqual([4, -8, 7, -3]);
    x.set([8, -8, 3, -3]);
    // max = +8 → d = -1: -8 → x/d + 8.5 = 16.5 → clamped to 15 → (15 - 8) × -1 = -7
    const t = quantize(x, [32], "q4_0");
    expect([t.data[0], t.data[1]]).toEqual(f16Bytes(-1));
    expect([...dequantize(t).slice(0, 4)]).toEqual([8, -7, 3, -3]);
  });

  test("error per element is at most |d|/2 (|d| where q is clamped), plus what storing d as f16 costs", () => {
    fc.assert(
      fc.property(
        fc.float32Array({
          minLength: 64,
          maxLength: 64,
          noNaN: true,
          noDefaultInfinity: true,
          min: -50,
          max: 50,
        }),
        (x) => {
          const y = dequantize(quantize(x, [64], "q4_0"));
          for (let b = 0; b < 2; b++) {
            const block = x.subarray(b * 32, b * 32 + 32);
            let max = 0;
            for (const v of block) if (Math.abs(v) > Math.abs(max)) max = v;
            const d = max / -8;
            const d16 = f16ToF32(f32ToF16(d));
            for (let j = 0; j < 32; j++) {
              const clamped = block[j] / d >= 7.5;
              const bound =
                (clamped ? Math.abs(d) : Math.abs(d) / 2) * (1 + 1e-6) + 8 * Math.abs(d - d16) + 1e-30;
              if (Math.abs(block[j] - y[b * 32 + j]) > bound) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("whole tensors", () => {
  test("f32, f16 and bf16 round trip values they can represent", () => {
    const x = Float32Array.from([0, -0, 1, -2.5, 65504, 2 ** -24, 0.333251953125, -1024]);
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      const representable = dtype === "bf16" ? x.map((v) => bf16ToF32(f32ToBf16(v))) : x;
      expect(dequantize(quantize(representable, [2, 4], dtype)), dtype).toEqual(representable);
    }
  });

  test("data need not be aligned in its buffer", () => {
    const x = Float32Array.from({ length: 512 }, (_, i) => i / 64 - 3);
    for (const dtype of dtypes) {
      const t = quantize(x, [2, 256], dtype); // 256: whole blocks of every type
      const shifted = new Uint8Array(t.data.length + 1);
      shifted.set(t.data, 1);
      expect(dequantize({ ...t, data: shifted.subarray(1) }), dtype).toEqual(dequantize(t));
    }
  });

  test("wrong sizes are rejected", () => {
    expect(() => quantize(new Float32Array(10), [2, 4], "f32")).toThrow(/10 values/);
    expect(() => dequantize({ dtype: "f16", shape: [4], data: new Uint8Array(6) })).toThrow(
      /6 bytes, expected 8/,
    );
  });
});
