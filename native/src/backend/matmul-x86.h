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
// Quantized rows are read 32 values (a chunk) at a time, chunk c of a row being (loadChunk; kernels.h draws the
// blocks):
//
//   q8_0  block c (34 bytes)     | d | q0 … q31 |            q as stored, scale d
//   q4_0  block c (18 bytes)     | d | b0 … b15 |            value j: low nibble of b_j, value 16 + j: its high
//                                                            nibble; (q − 8)·d
//   q4_1  block c (20 bytes)     | d | m | b0 … b15 |        nibbles as q4_0; q·d + m (min −m)
//   q5_0  block c (22 bytes)     | d | qh | b0 … b15 |       nibbles as q4_0, + 16 · bit j of qh; (q − 16)·d
//   q5_1  block c (24 bytes)     | d | m | qh | b0 … b15 |   likewise; q·d + m
//   iq4_nl block c (18 bytes)    | d | b0 … b15 |            nibbles as q4_0, looked up in kIq4Levels; level·d
//   q2_k  super-block c / 8      | scales: 16 | qs: 2 halves × 32 | d | dmin |
//         (84 bytes)             c % 8 = 4n + k: bits 2k of qs half n; scale bytes 2(c % 8), 2(c % 8) + 1 for
//                                the two 16-value halves, each a scale and a min
//   q3_k  super-block c / 8      | hmask: 32 | qs: 2 halves × 32 | scales: 12 | d |
//         (110 bytes)            c % 8 = 4n + k: bits 2k of qs half n, + 4 · bit 4n + k of hmask; (q − 4)·scale,
//                                a 6-bit scale − 32 per 16 values
//   q4_k  super-block c / 8      | d | dmin | sc,m: 12 | qs: 4 runs × 32 |
//         (144 bytes)            sub-block j = c % 8 is run j / 2's low (j even) or high nibbles;
//                                value = d·sc_j·q − dmin·m_j
//   q5_k  super-block c / 8      | d | dmin | sc,m: 12 | qh: 32 | qs: 4 runs × 32 |
//         (176 bytes)            as q4_k, + 16 · bit j of qh
//   q6_k  super-block c / 8      | ql: 2 halves × 64 | qh: 2 halves × 32 | scales: 16 | d |
//         (210 bytes)            c % 8 = 4n + k: low 4 bits from ql half n, bytes 32·(k & 1).. (high nibbles
//                                for k ≥ 2), top 2 bits from qh half n, bits 2k..2k+1; one scale per 16 values
//   iq4_xs super-block c / 8     | d | scales_h | scales_l: 4 | qs: 8 × 16 |
//         (136 bytes)            sub-block j = c % 8: qs bytes 16j.. as q4_0's nibbles, levels as iq4_nl's;
//                                scale d·(ls_j − 32)
//
// Every type can be read row-wise here; matmul-groups-x86.h has 8-row tiles for those readsGroups names.
#pragma once

#include <immintrin.h>

#include <cstring>

#include "kernels.h"
#include "matmul-groups-x86.h"
#include "simd-x86.h"

namespace vellum::backend {
namespace {

// ---- quantized weights: int8 · int8 dot products per 32-value chunk ----

// 32-value chunk c of a row: int8 values, a scale and a min per lane of the 8 int32 partial sums (lanes 0–3 hold
// values 0–15, lanes 4–7 values 16–31, which is how per-16 scales fit); value = q·scale − min.
struct Decoded {
  __m256i q;
  __m256 scale;
  __m256 min;
};

// The 16 bytes at p as 32 nibbles: low nibbles are values 0..15, high nibbles 16..31.
inline __m256i nibbles32(const uint8_t* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0f));
}

// Byte j = 16 · bit j of the little-endian u32 at p: q5_0's and q5_1's fifth bits.
inline __m256i fifthBits32(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  // Byte j gets byte j / 8 of the bits, then keeps bit j % 8 of it.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

// Nibbles (0..15) as iq4's levels.
inline __m256i iq4Levels(__m256i nibbles) {
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Levels)));
  return _mm256_shuffle_epi8(table, nibbles);
}

// Bytes 2j and 2j + 1 of `bytes` (int8) as floats: lanes 0–3 and 4–7, the two 16-value halves of chunk j.
inline __m256 pairOf16(__m128i bytes, int j) {
  const __m128i pick = _mm_set1_epi64x(0x0101010100000000ll + 0x0202020202020202ll * j);
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_shuffle_epi8(bytes, pick)));
}

// A q3_k block's 16 scales − 32, as int8 (scaleQ3K, 16 at once).
inline __m128i scalesQ3K(const uint8_t* p) {
  const __m128i low4 = _mm_set1_epi8(0x0f);
  const __m128i low = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i nibbles = _mm_unpacklo_epi64(_mm_and_si128(low, low4), _mm_and_si128(_mm_srli_epi16(low, 4), low4));
  uint32_t high;
  std::memcpy(&high, p + 8, 4);
  // Scale i's top bits: byte 8 + i % 4, bits 2·(i / 4); a 32-bit lane is i / 4.
  const __m128i shifted = _mm_srlv_epi32(_mm_set1_epi32(static_cast<int>(high)), _mm_setr_epi32(0, 2, 4, 6));
  const __m128i top = _mm_slli_epi16(_mm_and_si128(shifted, _mm_set1_epi8(3)), 4);
  return _mm_sub_epi8(_mm_or_si128(nibbles, top), _mm_set1_epi8(32));
}

// Bit `bit` of each of the 32 bytes at p as 0 or 1 (bit < 8: a 16-bit shift brings no neighbour's bit to bit 0).
inline __m256i bitOf32(const uint8_t* p, int bit) {
  return _mm256_and_si256(_mm256_srli_epi16(load32(p), bit), _mm256_set1_epi8(1));
}

// Chunk j of the block at p (j = 0 for 32-value blocks; 0..7, a sub-block, for 256-value ones).
template <DType T>
Decoded loadChunk(const uint8_t* p, int j) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256 none = _mm256_setzero_ps();
  if constexpr (T == DType::Q8_0) {
    return {load32(p + 2), _mm256_set1_ps(halfAt(p)), none};
  } else if constexpr (T == DType::Q4_0) {
    return {nibbles32(p + 2), _mm256_set1_ps(halfAt(p)), none};  // tileQuantized applies the − 8
  } else if constexpr (T == DType::Q4_1) {
    return {nibbles32(p + 4), _mm256_set1_ps(halfAt(p)), _mm256_set1_ps(-halfAt(p + 2))};
  } else if constexpr (T == DType::Q5_0) {
    return {_mm256_or_si256(nibbles32(p + 6), fifthBits32(p + 2)), _mm256_set1_ps(halfAt(p)), none};
  } else if constexpr (T == DType::Q5_1) {
    return {_mm256_or_si256(nibbles32(p + 8), fifthBits32(p + 4)), _mm256_set1_ps(halfAt(p)),
            _mm256_set1_ps(-halfAt(p + 2))};
  } else if constexpr (T == DType::IQ4_NL) {
    return {iq4Levels(nibbles32(p + 2)), _mm256_set1_ps(halfAt(p)), none};
  } else if constexpr (T == DType::IQ4_XS) {
    return {iq4Levels(nibbles32(p + 8 + 16 * j)), _mm256_set1_ps(halfAt(p) * (scaleIQ4XS(p, j) - 32)), none};
  } else if constexpr (T == DType::Q2_K) {
    const int n = j / 4, k = j % 4;
    const __m256i q = _mm256_and_si256(_mm256_srli_epi16(load32(p + 16 + 32 * n), 2 * k), _mm256_set1_epi8(3));
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));  // sc | m << 4, 16 of them
    const __m256 sc = pairOf16(_mm_and_si128(bytes, _mm_set1_epi8(0x0f)), j);
    const __m256 m = pairOf16(_mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(0x0f)), j);
    return {q, _mm256_mul_ps(sc, _mm256_set1_ps(halfAt(p + 80))), _mm256_mul_ps(m, _mm256_set1_ps(halfAt(p + 82)))};
  } else if constexpr (T == DType::Q3_K) {
    const int n = j / 4, k = j % 4;
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(load32(p + 32 + 32 * n), 2 * k), _mm256_set1_epi8(3));
    const __m256i q = _mm256_or_si256(low, _mm256_slli_epi16(bitOf32(p, 4 * n + k), 2));  // tileQuantized: − 4
    return {q, _mm256_mul_ps(pairOf16(scalesQ3K(p + 96), j), _mm256_set1_ps(halfAt(p + 108))), none};
  } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    int sc, m;
    scaleMinK4(p + 4, j, &sc, &m);
    const __m256i bytes = load32(p + (T == DType::Q5_K ? 48 : 16) + j / 2 * 32);
    __m256i q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(bytes, 4) : bytes, low4);
    if constexpr (T == DType::Q5_K) q = _mm256_or_si256(q, _mm256_slli_epi16(bitOf32(p + 16, j), 4));
    return {q, _mm256_set1_ps(halfAt(p) * sc), _mm256_set1_ps(halfAt(p + 2) * m)};
  } else {
    static_assert(T == DType::Q6_K);
    const int n = j / 4, k = j % 4;
    const __m256i ql = load32(p + n * 64 + (k & 1) * 32);
    const __m256i low = _mm256_and_si256(k >= 2 ? _mm256_srli_epi16(ql, 4) : ql, low4);
    const __m256i qh = load32(p + 128 + n * 32);
    const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), _mm256_set1_epi8(3)), 4);
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low, high), _mm256_set1_epi8(32));
    const __m128i scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 192));  // int8, 2 per chunk
    return {q, _mm256_mul_ps(pairOf16(scales, j), _mm256_set1_ps(halfAt(p + 208))), none};
  }
}

// How loadChunk's values meet the int8 activations, per type:
//  - signed values (q8_0; q6_k as q − 32; iq4_nl and iq4_xs levels, up to ±127): |w| · (x with w's sign), as the
//    dot wants an unsigned operand. An offset would not do for the iq4 levels: level + 128 reaches 241, and
//    maddubs' int16 pair sums would saturate (2 · 241 · 127 > 32767).
//  - unsigned values as they are (no abs/sign per dot), with the type's integer offset taken off each dot lane by
//    lane through x's sums (kOffsetShift: q4_0's 8, q5_0's 16, q3_k's 4: exact, one shift and subtract per
//    token, cheaper than abs/sign), or a float min per 16 values (q4_1, q5_1, q2_k, q4_k, q5_k).
template <DType T>
constexpr bool kSignedQuants = T == DType::Q8_0 || T == DType::Q6_K || T == DType::IQ4_NL || T == DType::IQ4_XS;
template <DType T>
constexpr int kOffsetShift = T == DType::Q4_0 ? 3 : T == DType::Q5_0 ? 4 : T == DType::Q3_K ? 2 : -1;  // log2
template <DType T>
constexpr bool kHasMin =
    T == DType::Q4_1 || T == DType::Q5_1 || T == DType::Q2_K || T == DType::Q4_K || T == DType::Q5_K;

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
  constexpr bool offset = kOffsetShift<T> >= 0;
  const int nb = w.cols / kBlock;
  const size_t stride = rowBytes(T, w.cols);
  __m256 acc[R][TT];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < TT; u++) acc[r][u] = _mm256_setzero_ps();
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * nb;
  // A block's chunks unrolled: j is then a constant in loadChunk, which folds its shifts and scale lookups.
  constexpr int chunks = blockValues(T) / kBlock;
  constexpr size_t blockBytes = rowBytes(T, blockValues(T));
  for (int block = 0; block < nb / chunks; block++)
#pragma GCC unroll 8
    for (int j = 0; j < chunks; j++) {
      const int b = block * chunks + j;
      __m256i xq[TT];
      __m256 xd[TT];
      __m256 xsumD[kHasMin<T> ? TT : 1];  // partial sums of x times its scale, for the min
      __m256i xsumOffset[offset ? TT : 1];
      for (int u = 0; u < TT; u++) {
        xq[u] = load32(reinterpret_cast<const uint8_t*>(xs[u][b].q));
        xd[u] = _mm256_broadcast_ss(&xs[u][b].d);
        if constexpr (kHasMin<T> || offset) {  // partial sums of x, lane by lane as the dots'
          const __m256i sums = dot4Add(_mm256_setzero_si256(), _mm256_set1_epi8(1), xq[u]);
          if constexpr (kHasMin<T>) xsumD[u] = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), xd[u]);
          if constexpr (offset) xsumOffset[u] = _mm256_slli_epi32(sums, kOffsetShift<T>);
        }
      }
      for (int r = 0; r < R; r++) {
        const uint8_t* p = w.data + stride * (o + r) + block * blockBytes;
        prefetchNextTile<R>(p, stride, static_cast<int>(j * blockBytes / chunks));
        const Decoded wb = loadChunk<T>(p, j);
        __m256i absW{};
        if constexpr (kSignedQuants<T>) absW = _mm256_abs_epi8(wb.q);
        for (int u = 0; u < TT; u++) {
          __m256i dot;
          if constexpr (kSignedQuants<T>)
            dot = dotChunk(wb.q, absW, xq[u]);
          else
            dot = dot4Add(_mm256_setzero_si256(), wb.q, xq[u]);
          if constexpr (offset) dot = _mm256_sub_epi32(dot, xsumOffset[u]);
          const __m256 sum = _mm256_cvtepi32_ps(dot);
          acc[r][u] = _mm256_fmadd_ps(sum, _mm256_mul_ps(wb.scale, xd[u]), acc[r][u]);
          if constexpr (kHasMin<T>) acc[r][u] = _mm256_fnmadd_ps(wb.min, xsumD[u], acc[r][u]);
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

// Rows in tiles of kRowTile (then 1), tokens in tiles of kTokenTile (then one of the rest): every row tile walks
// the batch.
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
  tokenTiles<kTokenTile>(x.T, [&](auto tt, int t) { tile<T, R, decltype(tt)::value>(w, x, y, ldy, o, t); });
}

template <DType T>
void matmulTyped(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd) {
  int o = rowBegin;
  if constexpr (readsGroups(T))
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
    case DType::Q4_1:
      return matmulTyped<DType::Q4_1>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q5_0:
      return matmulTyped<DType::Q5_0>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q5_1:
      return matmulTyped<DType::Q5_1>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q2_K:
      return matmulTyped<DType::Q2_K>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q3_K:
      return matmulTyped<DType::Q3_K>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::Q5_K:
      return matmulTyped<DType::Q5_K>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::IQ4_NL:
      return matmulTyped<DType::IQ4_NL>(w, x, y, ldy, rowBegin, rowEnd);
    case DType::IQ4_XS:
      return matmulTyped<DType::IQ4_XS>(w, x, y, ldy, rowBegin, rowEnd);
  }
}

}  // namespace
}  // namespace vellum::backend
