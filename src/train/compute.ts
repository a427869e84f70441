import { nativeAddon } from "../backend/native/addon.js";

/** Training buffers: f32 for real training (native GEMM), f64 for gradient checks (plain JS GEMM). */
export type Vec = Float32Array | Float64Array;

/**
 * C = op(A) · op(B), or C += … with `accumulate`. Row-major with leading dimensions (elements between rows):
 * op(A) is M×K (A stored K×M when transA), op(B) is K×N (B stored N×K when transB), C is M×N.
 * A matrix that starts inside a buffer is passed as a subarray view.
 */
export type Gemm = (
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: Vec,
  lda: number,
  B: Vec,
  ldb: number,
  C: Vec,
  ldc: number,
  accumulate: boolean,
) => void;

/** Where training runs: how buffers are allocated and how matrices are multiplied. */
export interface Compute {
  alloc(n: number): Vec;
  gemm: Gemm;
}

/** Plain-loop GEMM on any buffer type, accumulating each dot product in float64. */
export const jsGemm: Gemm = (transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate) => {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * lda + i] : A[i * lda + k];
        const b = transB ? B[j * ldb + k] : B[k * ldb + j];
        sum += a * b;
      }
      C[i * ldc + j] = accumulate ? C[i * ldc + j] + sum : sum;
    }
  }
};

/** float64 everywhere, plain JS: exact enough for finite-difference gradient checks. */
export const float64Compute: Compute = { alloc: (n) => new Float64Array(n), gemm: jsGemm };

/** float32 buffers with the native addon's GEMM on `threads` threads: what `vellum train` uses. */
export function nativeCompute(threads: number): Compute {
  const { gemm } = nativeAddon();
  return {
    alloc: (n) => new Float32Array(n),
    gemm: (transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate) => {
      if (!(A instanceof Float32Array && B instanceof Float32Array && C instanceof Float32Array)) {
        throw new TypeError("native gemm needs Float32Array operands");
      }
      gemm(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, threads);
    },
  };
}
