import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { dequantize, quantize } from "../../src/model/dtype.js";
import { f16ToF32, f32ToF16 } from "../../src/model/float-formats.js";
import type { DType, Tensor } from "../../src/model/tensor.js";
import { xorshift } from "../helpers.js";

/** The types whose quantizers this file checks. */
const types: DType[] = ["q4_1", "q5_0", "q5_1", "iq4_nl", "iq4_xs"];

/** Little-endian f16 bytes of x. */
const f16Bytes = (x: number) => [f32ToF16(x) & 0xff, f32ToF16(x) >> 8];
/** x rounded to f16 and back. */
const round16 = (x: number) => f16ToF32(f32ToF16(x));
const block = (dtype: DType, bytes: number[]): Tensor => ({
  dtype,
  shape: [dtype === "iq4_xs" ? 256 : 32],
  data: Uint8Array.from(bytes),
});
/** ggml-common.h's kvalues_iq4nl, written out here as the independent expectation. */
const levels = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
/** Values 0..15 in the low nibbles and 15..0 in the high nibbles of 16 bytes. */
const nibbleRamp = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));

/** Gaussian rows of 256 with a scale per row from 1e-4 to 1e2 (weights of any size). */
function gaussianRows(rows: number, seed: number): Float32Array {
  const rand = xorshift(seed);
  const x = new Float32Array(rows * 256);
  for (let r = 0; r < rows; r++) {
    const scale = 10 ** (rand() * 6 - 4);
    for (let i = 0; i < 256; i++) {
      x[r * 256 + i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()) * scale;
    }
  }
  return x;
}

/**
 * llama.cpp's synthetic test data (tests/test-quantize-fns.cpp, generate_data with offset 0):
 * x[i] = 0.1 + 2·cosf(i), cosf and the product in float, the sum in double, stored as float.
 */
const llamaTestData = Float32Array.from({ length: 32 * 128 }, (_, i) =>
  Math.fround(0.1 + 2 * Math.fround(Math.cos(i))),
);

describe("dequantization of hand-built blocks (ggml-common.h's layouts)", () => {
  test("q4_1: value = q·d + m, element j in byte j's low nibble, j + 16 in its high one", () => {
    const v = dequantize(block("q4_1", [...f16Bytes(0.5), ...f16Bytes(-1), ...nibbleRamp]));
    expect([v[0], v[7], v[15], v[16], v[20], v[31]]).toEqual([-1, 2.5, 6.5, 6.5, 4.5, -1]);
  });

  // qh = 0xff008001 (little-endian): the fifth bit of elements 0, 15 and 24..31; qs as nibbleRamp.
  const qh = [0x01, 0x80, 0x00, 0xff];
  test("q5_0: value = (q − 16)·d, q's fifth bit from bit j of qh", () => {
    const v = dequantize(block("q5_0", [...f16Bytes(0.25), ...qh, ...nibbleRamp]));
    // element: low 4 bits, fifth bit → q
    // 0: 0, 1 → 16; 1: 1, 0 → 1; 15: 15, 1 → 31; 16: 15, 0 → 15; 23: 8, 0 → 8; 24: 7, 1 → 23; 31: 0, 1 → 16
    expect([v[0], v[1], v[15], v[16], v[23], v[24], v[31]]).toEqual([0, -3.75, 3.75, -0.25, -2, 1.75, 0]);
  });
  test("q5_0: code 16 with a negative d is −0, as ggml's (q − 16)·d gives it", () => {
    const v = dequantize(block("q5_0", [...f16Bytes(-0.25), ...qh, ...nibbleRamp]));
    expect(Object.is(v[0], -0)).toBe(true);
    expect(v[1]).toBe(3.75);
  });

  test("q5_1: value = q·d + m with the same bits", () => {
    const v = dequantize(block("q5_1", [...f16Bytes(2), ...f16Bytes(0.5), ...qh, ...nibbleRamp]));
    expect([v[0], v[1], v[15], v[16], v[23], v[24], v[31]]).toEqual([
      32.5, 2.5, 62.5, 30.5, 16.5, 46.5, 32.5,
    ]);
  });

  test("iq4_nl: value = d·level[q] with ggml's 16 levels", () => {
    const v = dequantize(block("iq4_nl", [...f16Bytes(0.5), ...nibbleRamp]));
    expect([...v]).toEqual([...levels, ...[...levels].reverse()].map((l) => l / 2));
  });

  test("iq4_xs: value = d·(ls − 32)·level[q], ls = 4 bits of scales_l + 2 bits of scales_h per sub-block", () => {
    // ls of sub-blocks 0..7 = 0, 1, 17, 31, 32, 33, 48, 63: low nibbles 0 1 1 15 0 1 0 15, high bits 0 0 1 1 2 2 3 3
    const scalesL = [0x10, 0xf1, 0x10, 0xf0];
    const scalesH = 0b11_11_10_10_01_01_00_00;
    const qs = Array.from({ length: 8 }, () => nibbleRamp).flat();
    const v = dequantize(
      block("iq4_xs", [...f16Bytes(0.25), scalesH & 0xff, scalesH >> 8, ...scalesL, ...qs]),
    );
    expect(v[0]).toBe(-8 * -127); // ls 0: −32·0.25
    expect(v[8]).toBe(-8 * 1);
    expect(v[32 + 15]).toBe(-7.75 * 113); // ls 1
    expect(v[64 + 16]).toBe(-3.75 * 113); // ls 17, high nibble of byte 0
    expect(v[96 + 3]).toBe(-0.25 * -65); // ls 31
    expect([...v.subarray(128, 160)].every((x) => x === 0)).toBe(true); // ls 32
    expect(v[160 + 31]).toBe(0.25 * -127); // ls 33, high nibble of byte 15
    expect(v[192 + 9]).toBe(4 * 13); // ls 48
    expect(v[224 + 14]).toBe(7.75 * 89); // ls 63
    expect(v[255]).toBe(7.75 * -127);
  });
});

describe("quantization of hand-computed blocks (ggml-quants.c's rules)", () => {
  test("q4_1: d = (max − min)/15, m = min, q = trunc((x − min)/d + 0.5)", () => {
    const x = new Float32Array(32);
    for (let j = 0; j < 16; j++) {
      x[j] = 1 + j / 2;
      x[16 + j] = 1 + (15 - j) / 2;
    }
    x[4] = 3.25; // (3.25 − 1)/0.5 = 4.5: halves go up, q = 5
    const t = quantize(x, [32], "q4_1");
    const qs = [...nibbleRamp];
    qs[4] = 5 | (11 << 4);
    expect([...t.data]).toEqual([...f16Bytes(0.5), ...f16Bytes(1), ...qs]);
  });

  test("q5_0: d = max/−16 of the signed largest magnitude, q = min(31, trunc(x/d + 16.5))", () => {
    const x = new Float32Array(32);
    x.set([-16, 15, 0.5, -0.5, 15.6]); // d = 1: q = 0, 31, 17, 16, 31 (32.1 clamped)
    const t = quantize(x, [32], "q5_0");
    const q = new Array(32).fill(16);
    q.splice(0, 5, 0, 31, 17, 16, 31);
    const qhBits = q.reduce((acc, v, j) => acc | ((v >> 4) << j), 0) >>> 0;
    expect(qhBits).toBe(0xfffffffe); // only element 0's code is below 16
    const qs = Array.from({ length: 16 }, (_, j) => (q[j] & 15) | ((q[j + 16] & 15) << 4));
    expect([...t.data]).toEqual([...f16Bytes(1), 0xfe, 0xff, 0xff, 0xff, ...qs]);
    expect([...dequantize(t).slice(0, 5)]).toEqual([-16, 15, 1, 0, 15]);
    x[0] = 16; // positive max: d = −1, and −16 → trunc(32.5) = 32 is clamped to 31, (31 − 16)·−1 = −15
    x[5] = -16;
    expect([...dequantize(quantize(x, [32], "q5_0")).slice(0, 6)]).toEqual([16, 15, -0, -1, 16, -15]); // 0·(−1) = −0
  });

  test("q5_1: d = (max − min)/31, m = min, q = trunc((x − min)/d + 0.5) with the fifth bits in qh", () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => j - 1);
    x[3] = 1.5; // (1.5 + 1)/1 + 0.5 = 3: q = 3 (halves go up, not to even)
    const t = quantize(x, [32], "q5_1");
    const qs = Array.from({ length: 16 }, (_, j) => j | (j << 4)); // q = j and j + 16: low 4 bits j
    expect([...t.data]).toEqual([...f16Bytes(1), ...f16Bytes(-1), 0x00, 0x00, 0xff, 0xff, ...qs]);
  });

  test("iq4_nl: levels times a scale come back exactly (the scale search finds the least-squares fit)", () => {
    // x = 0.5·level[perm]; max = −63.5 (level −127); the search's candidate 127/63.5 = 2 maps every x onto its own
    // level, and the least-squares scale of exact codes, 0.5, fits better than any other codes can.
    const perm = Array.from({ length: 32 }, (_, j) => (j * 7 + 3) % 16);
    const x = Float32Array.from(perm, (q) => levels[q] / 2);
    const t = quantize(x, [32], "iq4_nl");
    const qs = Array.from({ length: 16 }, (_, j) => perm[j] | (perm[j + 16] << 4));
    expect([...t.data]).toEqual([...f16Bytes(0.5), ...qs]);
    expect(dequantize(t)).toEqual(x);
  });

  test("iq4_xs: sub-block scale s = (j + 1)/4 become d = −max s/32 = −1/16 and ls − 32 = s/d = −4(j + 1)", () => {
    const x = Float32Array.from({ length: 256 }, (_, i) => ((i >> 5) + 1) * 0.25 * levels[(i * 5) % 16]);
    const t = quantize(x, [256], "iq4_xs");
    const ls = Array.from({ length: 8 }, (_, j) => 32 - 4 * (j + 1)); // 28, 24, ..., 0: high bits 1 1 1 1 0 0 0 0
    expect([...t.data.subarray(0, 8)]).toEqual([
      ...f16Bytes(-1 / 16),
      0b01010101,
      0,
      ...[0, 2, 4, 6].map((j) => (ls[j] & 15) | ((ls[j + 1] & 15) << 4)),
    ]);
    expect(dequantize(t)).toEqual(x);
  });

  test("all-zero blocks read back as zeros; their bytes are ggml's (d = −0 where ggml divides 0 by −16 or −32)", () => {
    const zeros = (dtype: DType) => [...quantize(new Float32Array(256), [256], dtype).data];
    const repeat = (bytes: number[], n: number) => Array.from({ length: n }, () => bytes).flat();
    expect(zeros("q4_1")).toEqual(new Array(8 * 20).fill(0));
    // q = trunc(0 + 16.5) = 16: every fifth bit set, low nibbles 0
    expect(zeros("q5_0")).toEqual(repeat([0x00, 0x80, 0xff, 0xff, 0xff, 0xff, ...new Array(16).fill(0)], 8));
    expect(zeros("q5_1")).toEqual(new Array(8 * 24).fill(0));
    // level index 8 (value 1) is the nearest to 0
    expect(zeros("iq4_nl")).toEqual(repeat([0, 0, ...new Array(16).fill(0x88)], 8));
    // d = −0/32; every ls = 0 + 32: low nibbles 0, high bits 2
    expect(zeros("iq4_xs")).toEqual([0x00, 0x80, 0xaa, 0xaa, 0, 0, 0, 0, ...new Array(128).fill(0x88)]);
    for (const dtype of types) {
      expect(dequantize(quantize(new Float32Array(256), [256], dtype)).every((v) => v === 0)).toBe(true);
    }
  });

  test("a block of float32 subnormals, whose 1/d overflows, gets codes 0 as ggml's x86 build gives them", () => {
    const x = new Float32Array(32).fill(1e-40);
    x[3] = -2e-40;
    // q5_0: d = −2e−40/−16 is 0 in f16; q4_1: m = −2e−40 is −0 in f16
    expect([...quantize(x, [32], "q5_0").data]).toEqual(new Array(22).fill(0));
    expect([...quantize(x, [32], "q4_1").data]).toEqual([0, 0, 0x00, 0x80, ...new Array(16).fill(0)]);
  });
});

describe("ggml's bytes", () => {
  // Golden data from llama.cpp itself: ggml_quantize_chunk (libggml-base of the llama.cpp node-llama-cpp ships,
  // no importance matrix) on the first 256 values of llamaTestData as computed here, recorded once as hex.
  const ggmlBytes: Partial<Record<DType, string>> = {
    q4_1: "44349abf0f5cc4f0b33a0f4db6f1c1580e2e99e240348abf3ea7f1d1671d1f89e2e0842c0f6bd4f0443499bf7ad3f0942b0f5cc5f0b2490e3ea7f1d1413498bfb6f1c1580e2e98e2e0761d1f7ad3f094423496bfe2e0852c0f6bd4f0a33a0f4db6f0c158423494bff0b2490f3ea7f1d1670e1f89e2e0851c423497bfd0761d1f7ae3f0942b0f5cc5f0b2490f413490bfa33a0f4db6f0c2580e2e98f1d1761d1f",
    q5_0: "33b01c87e338e037560e998be174910d5c4fe2b1dd1b33b01cc7713893bf1c4d21d4c1fb292ed5b7e037560e33b08ee3711c19381eb7a9e056740e7a6de193a00c4d2eb087e3381e820d6c4fe2a2ce1b3e03d5d019381fc732b0c771388e2a2ee5b6e038560ea98ae074820d6c4e31b0e3711c870e8a7ce183a00d4d30e3b1ec2a2ee5c631b0e3381ec73e12d4d00a381ec6a8e046650e8a7ce132b071388ee3a89ae065830e6b5ee2a2ce1c3d12d4c0",
    q5_1: "21309abfe3781cc71fb8a9f065740e7b6df1a2b01d4e22e41d308abfe1388ec75c4fe2b1dd1b3e04d5d019381fb8a9f0213099bf711c8ee3e6c7e037560fa98bf174920e6c4ff2b21e3098bf781cc7e17df193a00d4d21e3c1fc2a2fe5c7e0381f3096bf388ec771d5d01a391fc7a8f056650f8b7cf193a01e3094bf1c8ee378f074830e6c5ef2a2ce1c3e13d5d01a391f3097bf1cc7e138c1ec2b2ff5c6e038470fa99af075830e1e3090bf8ec7711c56650f8a7cf183a10d5d30e3c1ed2b2f",
    iq4_nl:
      "24a4f0a32b0f4dd5f0c1390f2ea7f1e0660e25a4d1470e1f99f1e0751d0f6be2f0a32c0f24a4941d0f5cd3f0b22b0f3ec6f0d1480e1f17a4390f2eb7f1e0560e1f8af2f0841d0f5c40a41d1f6be2f0a32c0f4dd4f0c2390f2eb707a40f3ec5f0d1480f1fa8f1e0750e0f7be216a41f8af1f0841d0f5ce3f0b22b0f3ec5f004a44dd4f0c13a0f2eb6f0e0570e1f89f1f0",
    iq4_xs:
      "4010000011112021f0a32c0f4dd5f0c1390f2ea7f1e0660ed1470e1f99f1e0751d0f6be2f0a32c0f941d0f5cd3f0b22b0f3ec6f0d1480e1f390f2eb7f1e0560e1f8af2f0841d0f5c1d1f6be2f0a32c0f4dd4f0c2390f2eb70f3ec5f0d1480f1fa8f1e0650e0f7be21f8af1f0841d0f5ce3f0b22b0f3ec5f04dd4f0c13a0f2eb6f0e0570e1f89f1f0",
  };
  for (const dtype of types) {
    test(`${dtype}: the same bytes as ggml on llama.cpp's test data`, () => {
      const t = quantize(llamaTestData.subarray(0, 256), [256], dtype);
      expect(Buffer.from(t.data).toString("hex")).toBe(ggmlBytes[dtype]);
    });
  }
});

describe("error on llama.cpp's test data", () => {
  // tests/test-quantize-fns.cpp: the "total quantization error" sqrt(Σ(x − y)²)/n of quantize → dequantize on 4096
  // values of generate_data must stay below MAX_QUANTIZATION_TOTAL_ERROR = 0.002 for each of these types.
  for (const dtype of types) {
    test(`${dtype}: below MAX_QUANTIZATION_TOTAL_ERROR`, () => {
      const x = llamaTestData;
      const y = dequantize(quantize(x, [x.length], dtype));
      let sum = 0;
      for (let i = 0; i < x.length; i++) sum += (x[i] - y[i]) ** 2;
      expect(Math.sqrt(sum) / x.length).toBeLessThan(0.002);
    });
  }
});

describe("quantizing dequantized values again", () => {
  const data = { gaussian: gaussianRows(64, 7), llama: llamaTestData };

  // The round-to-nearest types map their dequantized values onto the same codes: min and max (or the signed
  // largest magnitude) are values at codes 0 and 2^bits − 1 (or code 0), so the scale comes out as the stored f16
  // d and every value sits exactly on a code.
  for (const dtype of ["q4_1", "q5_0", "q5_1"] as DType[]) {
    test(`${dtype}: reproduces the same values`, () => {
      for (const x of Object.values(data)) {
        const y = dequantize(quantize(x, [x.length], dtype));
        expect(dequantize(quantize(y, [y.length], dtype))).toEqual(y);
      }
    });
  }

  // The IQ4 scale search tries the scale that maps the largest magnitude to level +127 (clipped to +113), then
  // those mapping it to −134..−120. A (sub-)block whose largest value sits at level +113 (no code 0) is found
  // again only by the first, and that scale (127/113 too large) moves a value at level −104 (code 1) onto −127. So
  // every block without that pattern comes back exactly; one with it comes back as a different block, which is
  // then a fixed point.
  for (const dtype of ["iq4_nl", "iq4_xs"] as DType[]) {
    test(`${dtype}: reproduces every block but those with code 1 and no code 0; the others settle after one more`, () => {
      const n = dtype === "iq4_xs" ? 256 : 32;
      const bytes = dtype === "iq4_xs" ? 136 : 18;
      const codesAt = dtype === "iq4_xs" ? 8 : 2;
      let moved = 0;
      for (const x of Object.values(data)) {
        const once = quantize(x, [x.length], dtype);
        const y = dequantize(once);
        const z = dequantize(quantize(y, [y.length], dtype));
        for (let b = 0; b < x.length / n; b++) {
          const same = y.subarray(b * n, (b + 1) * n).every((v, j) => v === z[b * n + j]);
          let pattern = false;
          for (let sub = 0; sub < n / 32; sub++) {
            const codes = new Set<number>();
            for (let l = 0; l < 16; l++) {
              const byte = once.data[b * bytes + codesAt + 16 * sub + l];
              codes.add(byte & 15).add(byte >> 4);
            }
            if (codes.has(1) && !codes.has(0)) pattern = true;
          }
          expect(same || pattern, `block ${b}`).toBe(true);
          if (!same) moved++;
        }
        expect(dequantize(quantize(z, [z.length], dtype))).toEqual(z);
      }
      expect(moved).toBeGreaterThan(0); // the data holds the pattern, so the explanation above is exercised
    });
  }
});

/** Blocks of 32 float32: random or all equal, each of its own magnitude from float32 subnormals to f16's range. */
const blocks = (count: number) =>
  fc
    .array(
      fc.record({
        exponent: fc.integer({ min: -45, max: 4 }),
        equal: fc.boolean(),
        values: fc.array(fc.float({ min: -6, max: 6, noNaN: true }), { minLength: 32, maxLength: 32 }),
      }),
      { minLength: count, maxLength: count },
    )
    .map((bs) =>
      Float32Array.from(
        bs.flatMap(({ exponent, equal, values }) =>
          values.map((v) => (equal ? values[0] : v) * 10 ** exponent),
        ),
      ),
    );

describe("properties", () => {
  test("no NaN or infinity for any finite input whose scale fits f16 (every type)", () => {
    fc.assert(
      fc.property(blocks(8), (x) => {
        for (const dtype of types) {
          if (!dequantize(quantize(x, [256], dtype)).every(Number.isFinite)) return false;
        }
        return true;
      }),
      { numRuns: 200 },
    );
  });

  test("q5_0: each value within |d|/2 (|d| where q is clamped), plus what storing d as f16 costs", () => {
    fc.assert(
      fc.property(blocks(2), (x) => {
        const y = dequantize(quantize(x, [64], "q5_0"));
        for (let b = 0; b < 2; b++) {
          const xb = x.subarray(b * 32, b * 32 + 32);
          let max = 0;
          for (const v of xb) if (Math.abs(v) > Math.abs(max)) max = v;
          const d = max / -16;
          for (let j = 0; j < 32; j++) {
            const step = xb[j] / d >= 15.5 ? Math.abs(d) : Math.abs(d) / 2;
            const bound = step * (1 + 1e-5) + 16 * Math.abs(d - round16(d)) + 1e-45;
            if (Math.abs(xb[j] - y[b * 32 + j]) > bound) return false;
          }
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  for (const [dtype, top] of [
    ["q4_1", 15],
    ["q5_1", 31],
  ] as const) {
    test(`${dtype}: each value within d/2, plus what storing d and min as f16 costs`, () => {
      fc.assert(
        fc.property(blocks(2), (x) => {
          const y = dequantize(quantize(x, [64], dtype));
          for (let b = 0; b < 2; b++) {
            const xb = x.subarray(b * 32, b * 32 + 32);
            const min = Math.min(...xb);
            const max = Math.max(...xb);
            const d = (max - min) / top;
            // float32 rounding of x − min, of the code's argument and of q·d + m: a few ulps of the block's values
            const ulps = 2 ** -21 * Math.max(Math.abs(min), Math.abs(max));
            const bound =
              (d / 2) * (1 + 1e-5) + top * Math.abs(d - round16(d)) + Math.abs(min - round16(min));
            for (let j = 0; j < 32; j++)
              if (Math.abs(xb[j] - y[b * 32 + j]) > bound + ulps + 1e-45) return false;
          }
          return true;
        }),
        { numRuns: 300 },
      );
    });
  }

  test("iq4_nl and iq4_xs: each value gets the level nearest it for its block's scale", () => {
    fc.assert(
      fc.property(blocks(8), (x) => {
        for (const dtype of ["iq4_nl", "iq4_xs"] as DType[]) {
          const t = quantize(x, [256], dtype);
          const y = dequantize(t);
          for (let sub = 0; sub < 8; sub++) {
            // The sub-block's scale: nonzero levels give it as y / level; level 1 makes it y itself.
            const lowNibble = t.data[dtype === "iq4_xs" ? 8 + 16 * sub : 18 * sub + 2] & 15;
            const scale = y[32 * sub] / levels[lowNibble];
            // The codes are the nearest for the float32 scale; the f16 one differs by at most 2^-11 of it (2^-25 of
            // the block scale, times |ls − 32| ≤ 32, where it is an f16 subnormal).
            const slack = 2 * 127 * (Math.abs(scale) * 2 ** -11 + 32 * 2 ** -25);
            for (let j = 0; j < 32; j++) {
              const v = x[32 * sub + j];
              const nearest = Math.min(...levels.map((l) => Math.abs(v - scale * l)));
              if (Math.abs(v - y[32 * sub + j]) > nearest + slack + 1e-45) return false;
            }
          }
        }
        return true;
      }),
      { numRuns: 100 },
    );
  });
});
