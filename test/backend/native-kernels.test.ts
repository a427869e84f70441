import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { ForwardBatch } from "../../src/backend/backend.js";
import { type KernelPath, loadNativeAddon, type NativeAddon } from "../../src/backend/native/addon.js";
import { geglu, matmul, type RopeParams, rmsNorm, rope, swiglu } from "../../src/backend/reference/ops.js";
import { pagedAttention } from "../../src/backend/reference/paged-attention.js";
import type { RopeScaling, RopeStyle } from "../../src/model/config.js";
import { dequantize, quantize } from "../../src/model/dtype.js";
import { f16ToF32, f32ToF16 } from "../../src/model/float-formats.js";
import type { DType } from "../../src/model/tensor.js";
import { scatteredBlockTables, signedRandom } from "../helpers.js";

const loaded = loadNativeAddon();
if (loaded instanceof Error) console.warn(`[skip] native kernels: ${loaded.message}`);
const addon = loaded instanceof Error ? undefined : loaded;
const describeNative = (name: string, fn: (a: NativeAddon) => void) =>
  describe.skipIf(!addon)(name, () => {
    if (addon) fn(addon);
  });

const paths = (a: NativeAddon): KernelPath[] => a.kernelPaths();

describeNative("native matmul against the reference (f32 weights dequantized, float64 sums)", (a) => {
  const dtypes: DType[] = ["f32", "f16", "bf16", "q8_0", "q4_0"];
  for (const dtype of dtypes) {
    const quantized = dtype === "q8_0" || dtype === "q4_0";
    test(`${dtype}: random shapes with odd rows, tails and batch sizes`, () => {
      fc.assert(
        fc.property(
          fc.record({
            seed: fc.integer(),
            // Multiples of 8 half the time: the AVX2 path reads q4_0 from 8-row groups when the rows allow it.
            rows: fc.oneof(
              fc.integer({ min: 1, max: 37 }),
              fc.integer({ min: 1, max: 5 }).map((g) => 8 * g),
            ),
            // Quantized rows are whole 32-blocks; float rows take any length, so the 8-lane loops have tails.
            cols: quantized
              ? fc.integer({ min: 1, max: 9 }).map((b) => b * 32)
              : fc.integer({ min: 1, max: 150 }),
            T: fc.integer({ min: 1, max: 9 }),
            threads: fc.integer({ min: 1, max: 3 }),
          }),
          ({ seed, rows, cols, T, threads }) => {
            const rand = signedRandom(seed);
            const wValues = Float32Array.from({ length: rows * cols }, rand);
            const x = Float32Array.from({ length: T * cols }, rand);
            const w = quantize(wValues, [rows, cols], dtype);
            const wRef = dequantize(w);
            const expected = matmul(x, wRef, T, cols, rows);
            for (const path of paths(a)) {
              const got = a.kernelMatmul(path, dtype, w.data, rows, cols, x, T, threads);
              for (let t = 0; t < T; t++) {
                for (let o = 0; o < rows; o++) {
                  // Float weights: f32 accumulation, error ≤ 1e-5 · Σ|w·x|. Quantized weights also round x to
                  // int8 per 32-block (step amax/127, error ≤ amax/254 per value): that bound · Σ|w| per block.
                  let absSum = 0;
                  let quantBound = 0;
                  for (let b = 0; b < cols; b += 32) {
                    let amax = 0;
                    let wAbs = 0;
                    for (let i = b; i < Math.min(b + 32, cols); i++) {
                      amax = Math.max(amax, Math.abs(x[t * cols + i]));
                      wAbs += Math.abs(wRef[o * cols + i]);
                      absSum += Math.abs(wRef[o * cols + i] * x[t * cols + i]);
                    }
                    quantBound += (amax / 254) * wAbs;
                  }
                  // The avx512-bf16 path rounds x to bf16 for bf16 weights (relative 2⁻⁹ per value).
                  const xRounding = path === "avx512-bf16" && dtype === "bf16" ? 2 ** -8 * absSum : 0;
                  const tol = 1e-5 * absSum + (quantized ? 1.001 * quantBound : 0) + xRounding + 1e-7;
                  const diff = Math.abs(got[t * rows + o] - expected[t * rows + o]);
                  if (!(diff <= tol))
                    throw new Error(
                      `${path} t=${t} o=${o}: got ${got[t * rows + o]}, want ${expected[t * rows + o]}`,
                    );
                }
              }
            }
          },
        ),
        { numRuns: 40 },
      );
    });
  }

  test.each([45, 48])(
    "SIMD paths agree with scalar on a batch past one token chunk (70 tokens, %i rows)",
    (rows) => {
      const rand = signedRandom(11);
      const cols = 96;
      const T = 70;
      const x = Float32Array.from({ length: T * cols }, rand);
      for (const dtype of ["q8_0", "q4_0", "f16"] as DType[]) {
        const w = quantize(Float32Array.from({ length: rows * cols }, rand), [rows, cols], dtype);
        const s = a.kernelMatmul("scalar", dtype, w.data, rows, cols, x, T, 2);
        for (const path of paths(a).slice(1)) {
          const v = a.kernelMatmul(path, dtype, w.data, rows, cols, x, T, 3);
          for (let i = 0; i < s.length; i++)
            expect(Math.abs(s[i] - v[i]), `${path} ${dtype} ${i}`).toBeLessThan(1e-4);
        }
      }
    },
  );

  test("bad sizes throw instead of reading past the buffer", () => {
    const w = new Uint8Array(34);
    expect(() => a.kernelMatmul("scalar", "q8_0", w, 2, 32, new Float32Array(32), 1, 1)).toThrow(
      /w holds 34/,
    );
    expect(() => a.kernelMatmul("scalar", "q8_0", w, 1, 33, new Float32Array(33), 1, 1)).toThrow(
      /multiple of 32/,
    );
    expect(() => a.kernelMatmul("scalar", "iq2_xxs" as DType, w, 1, 32, new Float32Array(32), 1, 1)).toThrow(
      /no kernels for tensor type iq2_xxs/,
    );
  });
});

describeNative("native paged attention against the reference", (a) => {
  test.each(["f32", "f16"] as const)(
    "%s cache: scattered blocks, GQA, mixed prefill chunks and decodes",
    (dtype) => {
      fc.assert(
        fc.property(
          fc.record({
            seed: fc.integer(),
            // K is read by slot, a vector's lanes at a time: 24 leaves a part vector; below 8 the AVX2 path's
            // slots go one at a time.
            blockSize: fc.constantFrom(1, 2, 4, 16, 24),
            // Query heads share each load of K and V, up to 8 at a time: 10 takes two runs.
            groups: fc.constantFrom(1, 2, 3, 4, 10),
            // Three: the binding splits the (tile, kv head) items into runs by cost, as the model does, so a
            // run may start and end inside a tile's heads.
            nKvHeads: fc.constantFrom(1, 2, 3),
            // 20 and 80: V's rows in runs of 4, 2 and 1 vectors, and part vectors (AVX-512) or single values (AVX2)
            // at their ends; fresh > 16: several query tiles.
            headDim: fc.constantFrom(2, 8, 12, 20, 64, 80),
            seqs: fc.array(
              fc.record({ cached: fc.integer({ min: 0, max: 40 }), fresh: fc.integer({ min: 1, max: 20 }) }),
              { minLength: 1, maxLength: 4 },
            ),
            threads: fc.integer({ min: 1, max: 3 }),
            // 300: scores hundreds apart, so most softmax weights underflow (the AVX2 exp clamps there).
            qScale: fc.constantFrom(1, 300),
            // The model's own score scale (Gemma's), soft-capping (Gemma 2) and sliding windows shorter and
            // longer than a block.
            scale: fc.constantFrom(undefined, 0.3),
            softcap: fc.constantFrom(0, 0, 2),
            window: fc.constantFrom(0, 0, 1, 3, 17),
          }),
          ({ seed, blockSize, groups, nKvHeads, headDim, seqs, threads, qScale, scale, softcap, window }) => {
            const rand = signedRandom(seed);
            const nHeads = nKvHeads * groups;
            const kvDim = nKvHeads * headDim;
            const { numBlocks, blockTables } = scatteredBlockTables(
              seqs.map((s) => s.cached + s.fresh),
              blockSize,
              rand,
            );
            // An f16 cache holds binary16 bits, as the engine's writes leave them.
            const cache = () => {
              const values = Float32Array.from({ length: numBlocks * blockSize * kvDim }, rand);
              return dtype === "f16" ? Uint16Array.from(values, f32ToF16) : values;
            };
            const kCache = cache();
            const vCache = cache();
            const positions: number[] = [];
            const queryStartLoc = [0];
            for (const s of seqs) {
              for (let j = 0; j < s.fresh; j++) positions.push(s.cached + j);
              queryStartLoc.push(positions.length);
            }
            const T = positions.length;
            const q = Float32Array.from({ length: T * nHeads * headDim }, () => rand() * qScale);
            const batch: ForwardBatch = {
              tokenIds: new Int32Array(T),
              positions: Int32Array.from(positions),
              slotMappings: [new Int32Array(T)],
              queryStartLoc: Int32Array.from(queryStartLoc),
              seqLens: Int32Array.from(seqs.map((s) => s.cached + s.fresh)),
              blockTables: [blockTables],
              logitsIndices: new Int32Array(0),
            };
            const expected = pagedAttention(q, kCache, vCache, batch, 0, {
              nHeads,
              nKvHeads,
              headDim,
              blockSize,
              scale,
              softcap,
              window,
            });
            for (const path of paths(a)) {
              const got = a.kernelAttention(
                path,
                q,
                kCache,
                vCache,
                batch.positions,
                batch.queryStartLoc,
                blockTables,
                nHeads,
                nKvHeads,
                headDim,
                blockSize,
                threads,
                { scale, softcap, window },
              );
              // Outputs are convex mixes of values in [-1, 1]: f32 sums stay within 2e-5 of float64, plus what
              // f32 rounding of a score (relative 1e-6 of Σ|q·k| / √headDim, |k| ≤ 1) moves a weight.
              for (let i = 0; i < expected.length; i++) {
                const row = Math.floor(i / headDim);
                let qAbs = 0;
                for (let d = 0; d < headDim; d++) qAbs += Math.abs(q[row * headDim + d]);
                const tol = 2e-5 + 2e-6 * qAbs * (scale ?? 1 / Math.sqrt(headDim));
                if (!(Math.abs(got[i] - expected[i]) < tol))
                  throw new Error(`${path} ${i}: ${got[i]} vs ${expected[i]} (tolerance ${tol})`);
              }
            }
          },
        ),
        { numRuns: 60 },
      );
    },
  );

  test.each(["f32", "f16"] as const)(
    "%s cache: a window never reads blocks before it (freed blocks, NaN here, point anywhere), every path",
    (dtype) => {
      const rand = signedRandom(3);
      const [nHeads, nKvHeads, headDim, blockSize, window, len] = [4, 2, 16, 4, 6, 40];
      const kvDim = nKvHeads * headDim;
      const numBlocks = 1 + len / blockSize;
      const cache = () => {
        const values = Float32Array.from({ length: numBlocks * blockSize * kvDim }, (_, i) =>
          i < blockSize * kvDim ? Number.NaN : rand(),
        );
        return dtype === "f16" ? Uint16Array.from(values, f32ToF16) : values;
      };
      const kCache = cache();
      const vCache = cache();
      const table = Int32Array.from({ length: numBlocks - 1 }, (_, b) => b + 1);
      // A prefill chunk of the last 9 positions: the earliest sees 26…31, so blocks 0–5 (positions 0–23) are free.
      const positions = Int32Array.from({ length: 9 }, (_, i) => len - 9 + i);
      const freed = Int32Array.from(table, (block, b) =>
        (b + 1) * blockSize <= positions[0] - window + 1 ? 0 : block,
      );
      expect(Array.from(freed.slice(0, 7))).toEqual([0, 0, 0, 0, 0, 0, 7]);
      const q = Float32Array.from({ length: positions.length * nHeads * headDim }, rand);
      const qsl = Int32Array.of(0, positions.length);
      const want = a.kernelAttention(
        "scalar",
        q,
        kCache,
        vCache,
        positions,
        qsl,
        [table],
        nHeads,
        nKvHeads,
        headDim,
        blockSize,
        1,
        { window },
      );
      expect(want.every(Number.isFinite)).toBe(true);
      for (const path of paths(a)) {
        const got = a.kernelAttention(
          path,
          q,
          kCache,
          vCache,
          positions,
          qsl,
          [freed],
          nHeads,
          nKvHeads,
          headDim,
          blockSize,
          2,
          { window },
        );
        for (let i = 0; i < want.length; i++)
          expect(Math.abs(got[i] - want[i]), `${path} ${i}`).toBeLessThan(1e-5);
      }
    },
  );

  test("kCache and vCache of different element types throw", () => {
    expect(() =>
      a.kernelAttention(
        "scalar",
        new Float32Array(4),
        new Float32Array(4),
        new Uint16Array(4),
        Int32Array.of(0),
        Int32Array.of(0, 1),
        [Int32Array.of(0)],
        1,
        1,
        4,
        1,
        1,
      ),
    ).toThrow(/same element type/);
  });

  test("a position past its block table, or a block past the cache, throws", () => {
    const f = new Float32Array(64);
    expect(() =>
      a.kernelAttention(
        "scalar",
        f,
        f,
        f,
        Int32Array.of(5),
        Int32Array.of(0, 1),
        [Int32Array.of(0)],
        1,
        1,
        4,
        4,
        1,
      ),
    ).toThrow(/block table/);
    expect(() =>
      a.kernelAttention(
        "scalar",
        f,
        f,
        f,
        Int32Array.of(0),
        Int32Array.of(0, 1),
        [Int32Array.of(4)],
        1,
        1,
        4,
        4,
        1,
      ),
    ).toThrow(/block id 4/);
  });
});

describeNative("native KV cache store", (a) => {
  // Values where rounding to f16 is delicate: exact ties between neighbouring f16 values (nearest-even decides),
  // f16 subnormals and values below half the smallest one, the largest finite f16 and overflow past it,
  // f32 subnormals, ±0, ±inf and NaN — mixed with arbitrary floats.
  const tie = fc
    .integer({ min: 0, max: 0x7bff })
    .chain((h) => fc.constantFrom(1, -1).map((sign) => (sign * (f16ToF32(h) + f16ToF32(h + 1))) / 2));
  const value = fc.oneof(
    fc.float(),
    tie,
    fc.float({ min: -(2 ** -14), max: 2 ** -14 }),
    fc.float({ min: 65000, max: 70000 }),
    fc.constantFrom(
      65504,
      65519.99,
      65520,
      -65520,
      2 ** -25,
      2 ** -149,
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ),
  );

  test("f16: bit for bit src/model/dtype.ts f32ToF16 (round-to-nearest-even), every kernel path", () => {
    fc.assert(
      // Lengths that are not a multiple of 8 exercise the vector loop's tail too.
      fc.property(fc.array(value, { maxLength: 37 }), (values) => {
        const x = Float32Array.from(values);
        const want = Array.from(x, f32ToF16);
        for (const path of paths(a)) expect(Array.from(a.kernelStoreKv(path, "f16", x)), path).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  test("f32 stores the values unchanged; an unknown dtype throws naming it", () => {
    const x = Float32Array.of(0.1, -3, 1e-40);
    for (const path of paths(a)) expect(a.kernelStoreKv(path, "f32", x)).toEqual(x);
    expect(() => a.kernelStoreKv("scalar", "bf16" as "f16", x)).toThrow(
      /dtype must be "f32" or "f16", got "bf16"/,
    );
  });
});

describeNative("activation quantization for integer matmuls", (a) => {
  /** Round half to even, as the default floating-point rounding mode does. */
  const roundHalfEven = (v: number) => {
    const r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };

  test("every path gives the f32 arithmetic's scales and integers, bit for bit", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -1e4, max: 1e4, noNaN: true }), { minLength: 32, maxLength: 32 * 5 }),
        (values) => {
          const x = Float32Array.from(values.slice(0, values.length - (values.length % 32)));
          const blocks = x.length / 32;
          const wantD = new Float32Array(blocks);
          const wantQ = new Int8Array(x.length);
          for (let b = 0; b < blocks; b++) {
            const block = x.subarray(b * 32, (b + 1) * 32);
            const d = Math.fround(Math.max(...Array.from(block, Math.abs)) / 127);
            const id = d !== 0 ? Math.fround(1 / d) : 0;
            wantD[b] = d;
            block.forEach((v, j) => {
              wantQ[b * 32 + j] = roundHalfEven(Math.fround(v * id));
            });
          }
          for (const path of paths(a)) {
            const got = a.kernelQuantizeActs(path, x);
            expect(got.d, path).toEqual(wantD);
            expect(got.q, path).toEqual(wantQ);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describeNative("native per-token ops against the reference", (a) => {
  const rand = signedRandom(5);
  test("RMSNorm (relative 1e-6)", () => {
    const T = 3;
    const n = 77;
    const x = Float32Array.from({ length: T * n }, rand);
    const w = Float32Array.from({ length: n }, rand);
    const expected = rmsNorm(x, w, T, n, 1e-5);
    const got = a.kernelRmsNorm(x, w, T, n, 1e-5);
    for (let i = 0; i < expected.length; i++) expect(got[i]).toBeCloseTo(expected[i], 6);
  });

  test("RoPE: partial rotary, frequency divisors, linear and YaRN scaling, both pair layouts (1e-5 · mscale up to position 4000)", () => {
    const scalings: (RopeScaling | undefined)[] = [
      undefined,
      { freqScale: 0.25, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 },
      { freqScale: 0.25, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096 },
      { freqScale: 1 / 40, extFactor: 1, attnFactor: 0.9, betaFast: 16, betaSlow: 2, originalContext: 256 },
      { freqScale: 1, extFactor: 0, attnFactor: 1.19, betaFast: 32, betaSlow: 1, originalContext: 4096 },
    ];
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer(),
          headDim: fc.integer({ min: 1, max: 12 }).map((h) => 2 * h),
          rotated: fc.double({ min: 0, max: 1, noNaN: true }),
          style: fc.constantFrom("interleaved", "neox"),
          theta: fc.constantFrom(10000, 500000, 1e6),
          factors: fc.boolean(),
          scaling: fc.constantFrom(...scalings),
        }),
        ({ seed, headDim, rotated, style, theta, factors, scaling }) => {
          const r = signedRandom(seed);
          const dims = 2 * Math.max(1, Math.round((rotated * headDim) / 2));
          const rope_: RopeParams = {
            dims,
            style: style as RopeStyle,
            theta,
            freqFactors: factors
              ? Float32Array.from({ length: dims / 2 }, () => 1 + 4 * Math.abs(r()))
              : undefined,
            scaling,
          };
          const nHeads = 3;
          const positions = Int32Array.of(0, 1, 17, 4000);
          const x = Float32Array.from({ length: positions.length * nHeads * headDim }, r);
          const expected = Float32Array.from(x);
          rope(expected, positions, nHeads, headDim, rope_);
          a.kernelRope(x, positions, nHeads, headDim, rope_);
          for (let i = 0; i < x.length; i++)
            if (!(Math.abs(x[i] - expected[i]) < 1e-5 * 1.5))
              throw new Error(`${i}: ${x[i]} vs ${expected[i]}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  test("RoPE rotates only the first dims of each head and leaves the rest as they were", () => {
    const x = Float32Array.from({ length: 2 * 8 }, rand);
    const before = Float32Array.from(x);
    a.kernelRope(x, Int32Array.of(5), 2, 8, { dims: 4, style: "neox", theta: 10000 });
    for (const head of [0, 8]) {
      expect(x.subarray(head + 4, head + 8)).toEqual(before.subarray(head + 4, head + 8));
      expect(x.subarray(head, head + 4)).not.toEqual(before.subarray(head, head + 4));
    }
  });

  // Every path, on both signs and past the exponential's range (|z| > 87), over a length that leaves a tail.
  const gateValues = () =>
    Float32Array.from({ length: 203 }, (_, i) => (i < 4 ? [-120, -90, 90, 120][i] : rand() * 16));
  test.each([
    ["SwiGLU", swiglu, "kernelSwiglu"],
    ["GeGLU with gelu's tanh form", geglu, "kernelGeglu"],
  ] as const)("%s (relative 1e-6), every path", (_, reference, kernel) => {
    const up = Float32Array.from({ length: 203 }, rand);
    const gate = gateValues();
    const expected = Float32Array.from(gate);
    reference(expected, up);
    for (const path of paths(a)) {
      const got = Float32Array.from(gate);
      a[kernel](path, got, up);
      for (let i = 0; i < got.length; i++)
        expect(Math.abs(got[i] - expected[i]), `${path} at ${i}`).toBeLessThan(
          1e-6 * (1 + Math.abs(expected[i])),
        );
    }
  });

  test("embedding lookup equals dequantize exactly, every dtype", () => {
    for (const dtype of ["f32", "f16", "bf16", "q8_0", "q4_0"] as DType[]) {
      const rows = 7;
      const cols = 64;
      const t = quantize(Float32Array.from({ length: rows * cols }, rand), [rows, cols], dtype);
      const all = dequantize(t);
      const ids = Int32Array.of(6, 0, 3, 3);
      const got = a.kernelDequantizeRows(dtype, t.data, rows, cols, ids);
      ids.forEach((id, i) => {
        expect(got.subarray(i * cols, (i + 1) * cols), dtype).toEqual(
          all.subarray(id * cols, (id + 1) * cols),
        );
      });
    }
  });
});
