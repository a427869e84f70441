// Matmul tiles over weights in GGUF's row layout (kernels.h), and the x86 matmul entry point, which sends
// weights interleaved in 8-row groups to matmul-groups-x86.h first.
//
// Micro-kernel: a tile of R weight rows × TT tokens keeps R·TT accumulators in registers. Each weight block is
// loaded (and for q4_0 unpacked) once per tile and used for TT tokens; the R rows of the tile stay in L1 while
// the kernel walks over every token of the batch, so DRAM sees each weight once a step. A tile's rows are
// adjacent in memory, so while it works the kernel prefetches the next tile's rows at the same offset: R streams
// a tile ahead, which the hardware prefetcher alone does not keep up with at batch 1.
//
//                    x[t]        x[t+1]      …  x[t+TT−1]       tokens (activations)
//   W row o        acc[0][0]   acc[0][1]   …                   y[t + u, o + r] = hsum(acc[r][u])
//   W row o+1      acc[1][0]   …
//   …  (R rows)
//   W rows o+R…    prefetched, same offset, while this tile works
//
// Quantized rows are read 32 values (a chunk) at a time, chunk c of a row being (loadChunk):
//
//   q8_0  block c (34 bytes)     | d | q0 … q31 |            q as stored, scale d
//   q4_0  block c (18 bytes)     | d | b0 … b15 |            value j: low nibble of b_j, value 16 + j: its high
//                                                            nibble; (q − 8)·d
//   q4_k  super-block c / 8      | d | dmin | sc,m: 12 | qs: 4 runs × 32 |
//         (144 bytes)            sub-block j = c % 8 is run j / 2's low (j even) or high nibbles;
//                                value = d·sc_j·q − dmin·m_j
//   q6_k  super-block c / 8      | ql: 2 halves × 64 | qh: 2 halves × 32 | scales: 16 | d |
//         (210 bytes)            c % 8 = 4n + k: low 4 bits from ql half n, bytes 32·(k & 1).. (high nibbles
//                                for k ≥ 2), top 2 bits from qh half n, bits 2k..2k+1; one scale per 16 values
#pragma once

#include <immintrin.h>

#include <cstring>

#include "kernels.h"
#include "matmul-groups-x86.h"
#include "simd-x86.h"

namespace vellum::backend {
namespace {

// ---- quantized weights: int8 · int8 dot products per 32-value chunk ----

// 32-value chunk c of a row: int8 values, a scale per lane of the 8 int32 partial sums (lanes 0–3 hold values
// 0–15, lanes 4–7 values 16–31, which is how q6_k's per-16 scales fit), and q4_k's min (value = q·scale − min).
struct Decoded {
  __m256i q;
  __m256 scale;
  float min;
};

template <DType T>
Decoded loadChunk(const uint8_t* row, int c) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  if constexpr (T == DType::Q8_0) {
    const uint8_t* p = row + c * sizeof(BlockQ8_0);
    return {load32(p + 2), _mm256_set1_ps(halfAt(p)), 0};
  } else if constexpr (T == DType::Q4_0) {
    const uint8_t* p = row + c * sizeof(BlockQ4_0);
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    // Low nibbles are values 0..15, high nibbles 16..31; q is the raw nibble (tileQuantized applies the − 8).
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return {_mm256_and_si256(both, low4), _mm256_set1_ps(halfAt(p)), 0};
  } else if constexpr (T == DType::Q4_K) {
    const uint8_t* p = row + c / 8 * sizeof(BlockQ4_K);
    const int j = c % 8;
    int sc, m;
    scaleMinK4(p + 4, j, &sc, &m);
    const __m256i bytes = load32(p + 16 + j / 2 * 32);
    const __m256i q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(bytes, 4) : bytes, low4);
    return {q, _mm256_set1_ps(halfAt(p) * sc), halfAt(p + 2) * m};
  } else {
    const uint8_t* p = row + c / 8 * sizeof(BlockQ6_K);
    const int n = c % 8 / 4;
    const int k = c % 4;
    const __m256i ql = load32(p + n * 64 + (k & 1) * 32);
    const __m256i low = _mm256_and_si256(k >= 2 ? _mm256_srli_epi16(ql, 4) : ql, low4);
    const __m256i qh = load32(p + 128 + n * 32);
    const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), _mm256_set1_epi8(3)), 4);
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low, high), _mm256_set1_epi8(32));
    const int8_t* scales = reinterpret_cast<const int8_t*>(p + 192 + n * 8 + 2 * k);
    const float d = halfAt(p + 208);
    return {q, _mm256_set_m128(_mm_set1_ps(d * scales[1]), _mm_set1_ps(d * scales[0])), 0};
  }
}

// Bytes of weights the kernel reads per 32-value chunk `c` step (q4_k/q6_k: per 256-value block, over 8 chunks).
template <DType T>
constexpr int blockBytes() {
  if constexpr (T == DType::Q8_0) return sizeof(BlockQ8_0);
  if constexpr (T == DType::Q4_0) return sizeof(BlockQ4_0);
  if constexpr (T == DType::Q4_K) return sizeof(BlockQ4_K) / 8;
  return sizeof(BlockQ6_K) / 8;
}

// The same bytes of the next R-row tile (past the matrix's end, prefetch is a no-op: it never faults).
template <int R>
inline void prefetchNextTile(const uint8_t* row, size_t stride, int offset) {
  _mm_prefetch(reinterpret_cast<const char*>(row + R * stride + offset), _MM_HINT_T0);
}

// 8 int32 partial sums of w·x over one chunk. The dot wants an unsigned operand: |w| · (x with w's sign).
inline __m256i dotChunk(__m256i w, __m256i absW, __m256i x) {
  return dot4Add(_mm256_setzero_si256(), absW, _mm256_sign_epi8(x, w));
}

template <DType T, int R, int TT>
void tileQuantized(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  constexpr bool hasMin = T == DType::Q4_K;
  // 4-bit types arrive as unsigned nibbles, which maddubs takes as they are (no abs/sign per dot); q4_0's
  // value is (q − 8)·d, so 8 · Σx comes off each dot, lane by lane, in integers.
  constexpr bool nibbles = T == DType::Q4_0 || T == DType::Q4_K;
  constexpr bool offset8 = T == DType::Q4_0;
  const int nb = w.cols / kBlock;
  const size_t stride = rowBytes(T, w.cols);
  __m256 acc[R][TT];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) acc[r][u] = _mm256_setzero_ps();
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * nb;
  for (int b = 0; b < nb; b++) {
    __m256i xq[TT];
    __m256 xd[TT];
    __m256 xsum[hasMin ? TT : 1];
    __m256i xsum8[offset8 ? TT : 1];
    for (int u = 0; u < TT; u++) {
      xq[u] = load32(reinterpret_cast<const uint8_t*>(xs[u][b].q));
      xd[u] = _mm256_broadcast_ss(&xs[u][b].d);
      if constexpr (hasMin || offset8) {  // partial sums of x, lane by lane as the dots'
        const __m256i sums = dot4Add(_mm256_setzero_si256(), _mm256_set1_epi8(1), xq[u]);
        if constexpr (hasMin) xsum[u] = _mm256_cvtepi32_ps(sums);
        if constexpr (offset8) xsum8[u] = _mm256_slli_epi32(sums, 3);
      }
    }
    for (int r = 0; r < R; r++) {
      prefetchNextTile<R>(w.data + stride * (o + r), stride, b * blockBytes<T>());
      const Decoded wb = loadChunk<T>(w.data + stride * (o + r), b);
      __m256i absW{};
      if constexpr (!nibbles) absW = _mm256_abs_epi8(wb.q);
      for (int u = 0; u < TT; u++) {
        __m256i dot;
        if constexpr (nibbles)
          dot = dot4Add(_mm256_setzero_si256(), wb.q, xq[u]);
        else
          dot = dotChunk(wb.q, absW, xq[u]);
        if constexpr (offset8) dot = _mm256_sub_epi32(dot, xsum8[u]);
        const __m256 sum = _mm256_cvtepi32_ps(dot);
        acc[r][u] = _mm256_fmadd_ps(sum, _mm256_mul_ps(wb.scale, xd[u]), acc[r][u]);
        if constexpr (hasMin)
          acc[r][u] = _mm256_fnmadd_ps(xsum[u], _mm256_mul_ps(_mm256_set1_ps(wb.min), xd[u]), acc[r][u]);
      }
    }
  }
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) y[static_cast<size_t>(t + u) * ldy + o + r] = hsum(acc[r][u]);
}

// ---- float weights (f32, f16, bf16) against f32 activations ----

template <DType T>
__m256 load8(const uint8_t* row, int i) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (T == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  } else {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
}

template <DType T>
float load1(const uint8_t* row, int i) {
  if constexpr (T == DType::F32) {
    float v;
    std::memcpy(&v, row + 4 * i, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    if constexpr (T == DType::F16) return halfToFloat(h);
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
}

template <DType T, int R, int TT>
void tileFloat(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const int n = w.cols;
  const size_t stride = rowBytes(T, n);
  __m256 acc[R][TT];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) acc[r][u] = _mm256_setzero_ps();
  const float* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.f32 + static_cast<size_t>(t + u) * n;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 xv[TT];
    for (int u = 0; u < TT; u++) xv[u] = _mm256_loadu_ps(xs[u] + i);
    for (int r = 0; r < R; r++) {
      prefetchNextTile<R>(w.data + stride * (o + r), stride, i * (T == DType::F32 ? 4 : 2));
      const __m256 wv = load8<T>(w.data + stride * (o + r), i);
      for (int u = 0; u < TT; u++) acc[r][u] = _mm256_fmadd_ps(wv, xv[u], acc[r][u]);
    }
  }
  for (int r = 0; r < R; r++) {
    const uint8_t* row = w.data + stride * (o + r);
    for (int u = 0; u < TT; u++) {
      float sum = hsum(acc[r][u]);
      for (int k = i; k < n; k++) sum += load1<T>(row, k) * xs[u][k];
      y[static_cast<size_t>(t + u) * ldy + o + r] = sum;
    }
  }
}

// Rows in tiles of kRowTile (then 1), tokens in tiles of kTokenTile (then 1): every row tile walks the batch.
// A single token (decode) is bandwidth-bound instead: tiles of kDecodeRowTile rows keep more of the weight
// stream in flight (registers allow it, with one accumulator per row).
constexpr int kRowTile = 4;
constexpr int kTokenTile = 3;
constexpr int kDecodeRowTile = 8;

#if VELLUM_BF16
// bf16 weights × activations rounded to bf16 (nearest-even): AVX512_BF16's vdpbf16ps does 32 products per
// instruction with f32 sums, where widening to f32 and FMA does 8. The activations' rounding (relative 2⁻⁹) is
// the price, as in llama.cpp.
template <int R, int TT>
void tileBf16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const int n = w.cols;
  const size_t stride = rowBytes(DType::BF16, n);
  __m512 acc[R][TT];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) acc[r][u] = _mm512_setzero_ps();
  const float* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.f32 + static_cast<size_t>(t + u) * n;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512bh xv[TT];
    for (int u = 0; u < TT; u++) xv[u] = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xs[u] + i + 16), _mm512_loadu_ps(xs[u] + i));
    for (int r = 0; r < R; r++) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(w.data + stride * (o + r) + 2 * i);
      for (int u = 0; u < TT; u++) acc[r][u] = _mm512_dpbf16_ps(acc[r][u], wv, xv[u]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) {
      float sum = _mm512_reduce_add_ps(acc[r][u]);
      for (int k = i; k < n; k++) sum += load1<DType::BF16>(w.data + stride * (o + r), k) * xs[u][k];
      y[static_cast<size_t>(t + u) * ldy + o + r] = sum;
    }
}
#endif

// R rows × TT tokens of a weight stored as T.
template <DType T, int R, int TT>
void tile(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  if constexpr (T >= DType::Q8_0)
    tileQuantized<T, R, TT>(w, x, y, ldy, o, t);
#if VELLUM_BF16
  else if constexpr (T == DType::BF16)
    tileBf16<R, TT>(w, x, y, ldy, o, t);
#endif
  else
    tileFloat<T, R, TT>(w, x, y, ldy, o, t);
}

template <DType T, int R>
void rowTile(const Weight& w, const MatmulInput& x, float* y, int ldy, int o) {
  int t = 0;
  for (; t + kTokenTile <= x.T; t += kTokenTile) tile<T, R, kTokenTile>(w, x, y, ldy, o, t);
  for (; t < x.T; t++) tile<T, R, 1>(w, x, y, ldy, o, t);
}

template <DType T>
void matmulTyped(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd) {
  int o = rowBegin;
  if constexpr (groupsOf8(T))
    if (w.interleaved && o % 8 == 0) o = matmulX8<T>(w, x, y, ldy, o, rowEnd);
  if (x.T == 1)
    for (; o + kDecodeRowTile <= rowEnd; o += kDecodeRowTile) rowTile<T, kDecodeRowTile>(w, x, y, ldy, o);
  for (; o + kRowTile <= rowEnd; o += kRowTile) rowTile<T, kRowTile>(w, x, y, ldy, o);
  for (; o < rowEnd; o++) rowTile<T, 1>(w, x, y, ldy, o);
}

void matmul(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd) {
  switch (w.dtype) {
    case DType::F32:
      return matmulTyped<DType::F32>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::F16:
      return matmulTyped<DType::F16>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::BF16:
      return matmulTyped<DType::BF16>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q8_0:
      return matmulTyped<DType::Q8_0>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q4_0:
      return matmulTyped<DType::Q4_0>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q4_K:
      return matmulTyped<DType::Q4_K>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q6_K:
      return matmulTyped<DType::Q6_K>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q5_K:
      return matmulTyped<DType::Q5_K>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::IQ4_XS:
      return matmulTyped<DType::IQ4_XS>(w, x, y, ldy, rowBegin, rowEnd);
  }
}

}  // namespace
}  // namespace vellum::backend
