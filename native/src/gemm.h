// f32 matrix products for training: C = op(A) · op(B), row-major, optional accumulate.
#pragma once

namespace vellum {

// One product. Row-major with leading dimensions (elements between consecutive rows):
//   op(A) is M×K: A itself is M×K (transA false) or K×M (transA true)
//   op(B) is K×N: B itself is K×N (transB false) or N×K (transB true)
//   C is M×N; with `accumulate` C += op(A)·op(B), else C = op(A)·op(B).
struct GemmArgs {
  bool transA;
  bool transB;
  int M;
  int N;
  int K;
  const float* A;
  int lda;
  const float* B;
  int ldb;
  float* C;
  int ldc;
  bool accumulate;
};

// Runs synchronously on `threads` threads (1 = the calling thread only), each taking a band of C's rows.
void gemm(const GemmArgs& args, int threads);

}  // namespace vellum
