// f32 GEMM, cache blocked. Every variant is reduced to C[M,N] += A[M,K] · B[K,N] with A and B row-major:
// a transposed operand is first copied into that layout (O(size) work against O(M·N·K) for the product).
//
// Blocking: K in slices of kBlockK and rows in bands of kBlockM, so a band of A (kBlockM × kBlockK) stays in
// L2 while a 4-row × 16-column tile of C is computed, its B strip (kBlockK × 16) sitting in L1.
// The AVX2+FMA micro-kernel is compiled for that target only and chosen at run time, so the binary
// stays portable (-O3, no -march=native); elsewhere the plain loops (which the compiler vectorizes) run.
#include "gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace vellum {
namespace {

constexpr int kBlockK = 256;
constexpr int kBlockM = 64;
constexpr int kTileRows = 4;
constexpr int kTileCols = 16;

// Row-major matrix view: element (r, c) at data[r * ld + c].
struct View {
  const float* data;
  int ld;
};

// C[i0..i1, j0..j1] += A[i0..i1, k0..k1] · B[k0..k1, j0..j1], plain loops: edges and non-AVX2 machines.
void block_plain(View a, View b, float* c, int ldc, int i0, int i1, int j0, int j1, int k0, int k1) {
  for (int i = i0; i < i1; i++) {
    float* crow = c + static_cast<long>(i) * ldc;
    for (int k = k0; k < k1; k++) {
      const float aik = a.data[static_cast<long>(i) * a.ld + k];
      const float* brow = b.data + static_cast<long>(k) * b.ld;
      for (int j = j0; j < j1; j++) crow[j] += aik * brow[j];
    }
  }
}

// One 4×16 tile of C accumulated over k0..k1 in 8 AVX registers: per k, two loads of B's row
// segment, four broadcasts of A's column, eight FMAs.
__attribute__((target("avx2,fma"))) void tile_avx2(View a, View b, float* c, int ldc, int i, int j, int k0,
                                                   int k1) {
  __m256 acc[kTileRows][2];
  for (int r = 0; r < kTileRows; r++) {
    acc[r][0] = _mm256_loadu_ps(c + static_cast<long>(i + r) * ldc + j);
    acc[r][1] = _mm256_loadu_ps(c + static_cast<long>(i + r) * ldc + j + 8);
  }
  const float* arow = a.data + static_cast<long>(i) * a.ld;
  for (int k = k0; k < k1; k++) {
    const float* brow = b.data + static_cast<long>(k) * b.ld + j;
    const __m256 b0 = _mm256_loadu_ps(brow);
    const __m256 b1 = _mm256_loadu_ps(brow + 8);
    for (int r = 0; r < kTileRows; r++) {
      const __m256 ar = _mm256_broadcast_ss(arow + static_cast<long>(r) * a.ld + k);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < kTileRows; r++) {
    _mm256_storeu_ps(c + static_cast<long>(i + r) * ldc + j, acc[r][0]);
    _mm256_storeu_ps(c + static_cast<long>(i + r) * ldc + j + 8, acc[r][1]);
  }
}

// C[i0..i1, 0..N] += A · B for K-slice k0..k1: full tiles on AVX2, the ragged right and bottom edges plain.
void block(View a, View b, float* c, int ldc, int N, int i0, int i1, int k0, int k1, bool avx2) {
  if (!avx2) {
    block_plain(a, b, c, ldc, i0, i1, 0, N, k0, k1);
    return;
  }
  const int iFull = i0 + (i1 - i0) / kTileRows * kTileRows;
  const int jFull = N / kTileCols * kTileCols;
  for (int j = 0; j < jFull; j += kTileCols)
    for (int i = i0; i < iFull; i += kTileRows) tile_avx2(a, b, c, ldc, i, j, k0, k1);
  block_plain(a, b, c, ldc, i0, iFull, jFull, N, k0, k1);
  block_plain(a, b, c, ldc, iFull, i1, 0, N, k0, k1);
}

// Rows r0..r1 of C += A · B (A, B row-major), blocked over rows and K.
void rows_nn(View a, View b, float* c, int ldc, int N, int K, int r0, int r1, bool avx2) {
  for (int k0 = 0; k0 < K; k0 += kBlockK) {
    const int k1 = std::min(K, k0 + kBlockK);
    for (int i0 = r0; i0 < r1; i0 += kBlockM) block(a, b, c, ldc, N, i0, std::min(r1, i0 + kBlockM), k0, k1, avx2);
  }
}

// Copies the rows×cols matrix src (leading dimension ld) transposed into a packed cols×rows buffer.
std::vector<float> transposed(const float* src, int rows, int cols, int ld) {
  std::vector<float> out(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) out[static_cast<size_t>(c) * rows + r] = src[static_cast<long>(r) * ld + c];
  return out;
}

}  // namespace

void gemm(const GemmArgs& g, int threads) {
  if (g.M <= 0 || g.N <= 0) return;
  if (!g.accumulate)
    for (int i = 0; i < g.M; i++) std::fill_n(g.C + static_cast<long>(i) * g.ldc, g.N, 0.0f);
  if (g.K <= 0) return;

  std::vector<float> packedA;
  std::vector<float> packedB;
  View a{g.A, g.lda};
  View b{g.B, g.ldb};
  if (g.transA) {  // A is K×M
    packedA = transposed(g.A, g.K, g.M, g.lda);
    a = {packedA.data(), g.K};
  }
  if (g.transB) {  // B is N×K
    packedB = transposed(g.B, g.N, g.K, g.ldb);
    b = {packedB.data(), g.N};
  }

  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  // Bands of whole tiles per thread, so threads never share a C row.
  const int bands = std::max(1, std::min(threads, (g.M + kTileRows - 1) / kTileRows));
  const int bandRows = ((g.M + bands - 1) / bands + kTileRows - 1) / kTileRows * kTileRows;
  std::vector<std::thread> workers;
  for (int t = 1; t < bands; t++) {
    const int r0 = t * bandRows;
    const int r1 = std::min(g.M, r0 + bandRows);
    if (r0 < r1) workers.emplace_back(rows_nn, a, b, g.C, g.ldc, g.N, g.K, r0, r1, avx2);
  }
  rows_nn(a, b, g.C, g.ldc, g.N, g.K, 0, std::min(g.M, bandRows), avx2);
  for (auto& w : workers) w.join();
}

}  // namespace vellum
