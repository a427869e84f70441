import { expect, test } from "vitest";
import { nativeAddon } from "../../src/backend/native/addon.js";
import { jsGemm } from "../../src/train/compute.js";
import { Rng } from "../../src/util/rng.js";

const rng = new Rng(11);
const random = (n: number) => Float32Array.from({ length: n }, () => rng.nextUint32() / 2 ** 31 - 1);

// Odd shapes exercise the 4×16 AVX2 tiles' ragged edges, K beyond one 256-wide slice, and padded rows (ld > width).
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [5, 17, 3],
  [13, 33, 300],
  [67, 31, 257],
  [4, 16, 8],
];

test("native gemm equals plain matrix products for every transpose, accumulate, padding and thread count", () => {
  const { gemm } = nativeAddon();
  for (const [M, N, K] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const pad = 3;
        const lda = (transA ? M : K) + pad;
        const ldb = (transB ? K : N) + pad;
        const ldc = N + pad;
        const A = random((transA ? K : M) * lda);
        const B = random((transB ? N : K) * ldb);
        const C0 = random(M * ldc);
        for (const accumulate of [false, true]) {
          for (const threads of [1, 3]) {
            const expected = new Float64Array(C0);
            jsGemm(transA, transB, M, N, K, A, lda, B, ldb, expected, ldc, accumulate);
            const C = C0.slice();
            gemm(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, threads);
            for (let i = 0; i < M * ldc; i++) {
              const inRow = i % ldc < N;
              // f32 sums of K products of numbers in [-1, 1]: error well under 1e-6·K.
              const tol = inRow ? 1e-6 * (K + 1) : 0;
              const want = inRow ? expected[i] : C0[i]; // padding columns are never written
              const where = `M${M} N${N} K${K} tA${transA} tB${transB} acc${accumulate} th${threads} [${i}]`;
              expect(Math.abs(C[i] - want), where).toBeLessThanOrEqual(tol);
            }
          }
        }
      }
    }
  }
});

test("native gemm works on subarray views (a matrix that starts inside a buffer)", () => {
  const { gemm } = nativeAddon();
  const buf = random(100);
  const A = buf.subarray(10, 10 + 2 * 3);
  const B = buf.subarray(50, 50 + 3 * 2);
  const C = new Float32Array(4);
  gemm(false, false, 2, 2, 3, A, 3, B, 2, C, 2, false, 1);
  const expected = new Float64Array(4);
  jsGemm(false, false, 2, 2, 3, A, 3, B, 2, expected, 2, false);
  for (let i = 0; i < 4; i++) expect(C[i]).toBeCloseTo(expected[i], 6);
});

test("native gemm refuses a matrix that does not fit its array instead of reading past it", () => {
  const { gemm } = nativeAddon();
  const small = new Float32Array(5);
  const ok = new Float32Array(16);
  expect(() => gemm(false, false, 2, 2, 3, small, 3, ok, 2, ok, 2, false, 1)).toThrow(/A does not fit/);
  expect(() => gemm(false, false, 2, 2, 3, ok, 3, ok, 2, small.subarray(0, 3), 2, false, 1)).toThrow(
    /C does not fit/,
  );
  expect(() => gemm(false, false, 2, 2, 3, ok, 2, ok, 2, ok, 2, false, 1)).toThrow(/leading dimension/);
});
