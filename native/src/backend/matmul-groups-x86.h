// Matmul tiles over quantized weights interleaved in 8-row groups: the copy interleaveRows (kernels-common.cc)
// makes at load for a kernel path whose Kernels::interleaves says so. One 32-byte load then holds 4 quants of
// each of 8 rows, so the 8 int32 lanes of a register accumulate 8 rows' dot products at once against a token's
// 4 activations broadcast to every lane, and one FMA scales all 8 rows. With AVX-512 (the VNNI paths) two
// adjacent groups fill a 512-bit register instead (tile16).
//
// Group g is rows 8g..8g+7. Its blocks (q8_0, q4_0: 32 values; q4_k, q6_k: 256-value super-blocks) follow each
// other: block b of group g starts at (g · blocks per row + b) · B bytes, B = interleavedGroupBlockBytes.
//
// q8_0 ×8, B = 272 (8 × 34): chunk k = quants 4k..4k+3 of every row
//
//   byte 0        16                                      48                 240                    272
//        | d × 8 | r0 q0..3 | r1 q0..3 | … | r7 q0..3 | r0 q4..7 | … | r7 q4..7 | … | r0 q28..31 | … r7 |
//         f16 per  '-------------- chunk 0 -----------' '----- chunk 1 ------'     '---- chunk 7 ------'
//         row
//
//   chunk k in a __m256i, against activations 4k..4k+3 of a token (xb, group4):
//
//     32-bit lane:  0           1                 7
//               [ r0 q4k..  | r1 q4k..  | … | r7 q4k..  ]
//             · [ x4k..4k+3 | x4k..4k+3 | … | x4k..4k+3 ]   → lane r += row r's 4 products (one vpdpbusd)
//
// q4_0 ×8, B = 144 (8 × 18): | d × 8 | 4 chunks of 32 bytes |; chunk c holds bytes 4c..4c+3 of each row's 16
//   nibble bytes: low nibbles are values 4c..4c+3, high nibbles values 16 + 4c..16 + 4c + 3.
//
// q4_k ×8, B = 1184 (8 × 144; the 6-bit scales unpacked to bytes):
//   0    d     8 × f16
//   16   dmin  8 × f16
//   32   sc    [8 sub-blocks][8 rows] u8
//   96   m     [8 sub-blocks][8 rows] u8
//   160  qs    4 pairs × 256 bytes; pair p = 8 chunks, chunk c holds qs bytes 32p + 4c..+3 of each row, whose
//              low nibbles are values 4c..4c+3 of sub-block 2p and high nibbles those of sub-block 2p + 1
//
// q6_k ×8, B = 1680 (8 × 210):
//   0     d       8 × f16
//   16    scales  [16 sub-blocks][8 rows] int8
//   144   ql      4 runs × 256 bytes: run 2n + j = ql bytes 64n + 32j..+31 of each row, 4 bytes a row per chunk
//   1168  qh      2 runs × 256 bytes: run n = qh bytes 32n..+31 of each row, likewise
#pragma once

#include <immintrin.h>

#include <cstring>

#include "kernels.h"
#include "simd-x86.h"

namespace vellum::backend {
namespace {

// Activations 4k..4k+3 of a block, in every 32-bit lane.
inline __m256i group4(const BlockQ8Act& xb, int k) {
  int32_t v;
  std::memcpy(&v, xb.q + 4 * k, 4);
  return _mm256_set1_epi32(v);
}

// Lane r = Σ_k Σ_i byte 4r + i of q[k] (a nibble, 0..15) · activation 4k + i of xb: 8 interleaved rows' dots
// with one 32-value block. Without VNNI the 8 maddubs add up in int16 before one madd widens them (at most
// 8 · 2 · 15 · 127 = 30,480: no overflow).
inline __m256i nibbleDots(const __m256i q[8], const BlockQ8Act& xb) {
#if VELLUM_VNNI
  // Two accumulators: vpdpbusd's latency would otherwise chain all eight.
  __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
  for (int k = 0; k < 8; k += 2) {
    even = _mm256_dpbusd_epi32(even, q[k], group4(xb, k));
    odd = _mm256_dpbusd_epi32(odd, q[k + 1], group4(xb, k + 1));
  }
  return _mm256_add_epi32(even, odd);
#else
  __m256i sum16 = _mm256_maddubs_epi16(q[0], group4(xb, 0));
  for (int k = 1; k < 8; k++) sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(q[k], group4(xb, k)));
  return _mm256_madd_epi16(sum16, _mm256_set1_epi16(1));
#endif
}

// ---- q8_0 and q4_0 ----

// 8 rows × TT tokens: acc[u] lane r = y[t + u, o + r]. A block's int32 dots for all 8 rows come out lane by
// lane against the token's broadcast 4-value groups, and one FMA scales all 8 rows:
// - q4_0: nibbleDots, ~2.5 vector ops per 32 MACs without VNNI;
// - q8_0: the dot wants an unsigned operand, so |w| (once per block, for all tokens) meets x with w's sign,
//   and without VNNI each maddubs is widened by a madd (two can overflow int16), ~4.5 ops per 32 MACs;
// where a row at a time needs ~6 per row and token.
template <DType T, int TT>
void tileX8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  constexpr int kGroupBlock = 8 * (T == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0));  // 272, 144
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int nb = w.cols / kBlock;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * nb * kGroupBlock;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * nb;
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t* p = group + static_cast<size_t>(b) * kGroupBlock;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    __m256i q[8];  // q[k]: quants 4k..4k+3 of every row (q8_0: their absolute values)
    for (int c = 0; c < 4; c++) {
      if constexpr (T == DType::Q8_0) {
        q[c] = _mm256_abs_epi8(load32(p + 16 + 32 * c));
        q[c + 4] = _mm256_abs_epi8(load32(p + 16 + 32 * (c + 4)));
      } else {
        const __m256i raw = load32(p + 16 + 32 * c);
        q[c] = _mm256_and_si256(raw, low4);
        q[c + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
      }
    }
    for (int u = 0; u < TT; u++) {
      const BlockQ8Act& xb = xs[u][b];
      __m256i dot;
      if constexpr (T == DType::Q8_0) {
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains of dot4Add
        for (int k = 0; k < 8; k += 2) {
          even = dot4Add(even, q[k], _mm256_sign_epi8(group4(xb, k), load32(p + 16 + 32 * k)));
          odd = dot4Add(odd, q[k + 1], _mm256_sign_epi8(group4(xb, k + 1), load32(p + 16 + 32 * (k + 1))));
        }
        dot = _mm256_add_epi32(even, odd);
      } else {
        dot = nibbleDots(q, xb);
        dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(8 * blockSum(xb)));  // Σ (q − 8)·x = Σ q·x − 8 · Σ x
      }
      acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(d, _mm256_set1_ps(xb.d)), acc[u]);
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

// 8 bytes as 8 floats, unsigned or signed.
inline __m256 bytesAsFloats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline __m256 signedBytesAsFloats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// q4_k, 8 rows × TT tokens, a 32-value sub-block at a time (nibbleDots, as q4_0); each row's sub-block scale
// d·sc and min dmin·m come as vectors of the 8 rows, value = d·sc·q − dmin·m.
template <int TT>
void tileQ4_Kx8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int superBlocks = w.cols / 256;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * superBlocks * kQ4_Kx8Bytes;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  for (int sb = 0; sb < superBlocks; sb++) {
    const uint8_t* p = group + static_cast<size_t>(sb) * kQ4_Kx8Bytes;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    for (int j = 0; j < 8; j++) {
      const __m256 scale = _mm256_mul_ps(d, bytesAsFloats(p + 32 + 8 * j));
      const __m256 min = _mm256_mul_ps(dmin, bytesAsFloats(p + 96 + 8 * j));
      const uint8_t* pair = p + 160 + 256 * (j / 2);
      __m256i q[8];  // q[k]: values 4k..4k+3 of sub-block j, every row
      for (int k = 0; k < 8; k++) {
        const __m256i raw = load32(pair + 32 * k);
        q[k] = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(raw, 4) : raw, low4);
      }
      for (int u = 0; u < TT; u++) {
        const BlockQ8Act& xb = xs[u][sb * 8 + j];
        const __m256 dot = _mm256_cvtepi32_ps(nibbleDots(q, xb));
        const __m256 xd = _mm256_set1_ps(xb.d);
        acc[u] = _mm256_fmadd_ps(dot, _mm256_mul_ps(scale, xd), acc[u]);
        acc[u] = _mm256_fnmadd_ps(min, _mm256_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc[u]);
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

// Lane r = Σ_{k < 4} Σ_i byte 4r + i of q[k] (0..63) · activation 4(g0 + k) + i of xb: 8 interleaved rows' dots
// with 16 values. Without VNNI two maddubs add up in int16 (at most 2 · 2 · 63 · 127 = 32,004) per madd.
inline __m256i sixBitDots(const __m256i q[4], const BlockQ8Act& xb, int g0) {
#if VELLUM_VNNI
  const __m256i even = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q[0], group4(xb, g0)), q[2],
                                           group4(xb, g0 + 2));
  const __m256i odd = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q[1], group4(xb, g0 + 1)), q[3],
                                          group4(xb, g0 + 3));
  return _mm256_add_epi32(even, odd);
#else
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], group4(xb, g0)),
                                     _mm256_maddubs_epi16(q[1], group4(xb, g0 + 1)));
  const __m256i b = _mm256_add_epi16(_mm256_maddubs_epi16(q[2], group4(xb, g0 + 2)),
                                     _mm256_maddubs_epi16(q[3], group4(xb, g0 + 3)));
  return _mm256_add_epi32(_mm256_madd_epi16(a, ones16), _mm256_madd_epi16(b, ones16));
#endif
}

// q6_k, 8 rows × TT tokens, a 32-value chunk c = 4n + k of each super-block at a time: its 6-bit quants (4 bits
// of ql, 2 of qh, as ggml's dequantize_row_q6_K places them) are assembled once for all tokens; each 16-value
// half has its own scale per row, value = d · scale · (q − 32).
template <int TT>
void tileQ6_Kx8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  constexpr int kGroupBlock = 8 * sizeof(BlockQ6_K);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i low2 = _mm256_set1_epi8(0x03);
  const int superBlocks = w.cols / 256;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * superBlocks * kGroupBlock;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  for (int sb = 0; sb < superBlocks; sb++) {
    const uint8_t* p = group + static_cast<size_t>(sb) * kGroupBlock;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    for (int c = 0; c < 8; c++) {
      const int n = c / 4, k = c % 4;
      // d · the 8 rows' int8 scales of the chunk's two sub-blocks
      const __m256 scaleLow = _mm256_mul_ps(d, signedBytesAsFloats(p + 16 + 8 * (8 * n + 2 * k)));
      const __m256 scaleHigh = _mm256_mul_ps(d, signedBytesAsFloats(p + 16 + 8 * (8 * n + 2 * k + 1)));
      const uint8_t* ql = p + 144 + 256 * (2 * n + k % 2);
      const uint8_t* qh = p + 1168 + 256 * n;
      __m256i q[8];  // q[g]: values 4g..4g+3 of the chunk, every row
      for (int g = 0; g < 8; g++) {
        const __m256i l = load32(ql + 32 * g);
        const __m256i low = _mm256_and_si256(k < 2 ? l : _mm256_srli_epi16(l, 4), low4);
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(load32(qh + 32 * g), 2 * k), low2);
        q[g] = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
      }
      for (int u = 0; u < TT; u++) {
        const BlockQ8Act& xb = xs[u][sb * 8 + c];
        const __m256 xd = _mm256_set1_ps(xb.d);
        // Σ (q − 32)·x = Σ q·x − 32 · Σ x, per 16-value half
        const __m256i low = _mm256_sub_epi32(sixBitDots(q, xb, 0), _mm256_set1_epi32(32 * xb.halfSums[0]));
        const __m256i high = _mm256_sub_epi32(sixBitDots(q + 4, xb, 4), _mm256_set1_epi32(32 * xb.halfSums[1]));
        acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(low), _mm256_mul_ps(scaleLow, xd), acc[u]);
        acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(high), _mm256_mul_ps(scaleHigh, xd), acc[u]);
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

template <DType T, int TT>
void tile8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  if constexpr (T == DType::Q4_K)
    tileQ4_Kx8<TT>(w, x, y, ldy, o, t);
  else if constexpr (T == DType::Q6_K)
    tileQ6_Kx8<TT>(w, x, y, ldy, o, t);
  else
    tileX8<T, TT>(w, x, y, ldy, o, t);
}

#if VELLUM_VNNI
// ---- with AVX-512: two adjacent 8-row groups at once on 512-bit registers ----
//
// The same chunk of groups g and g + 1 side by side, so one vpdpbusd serves 16 rows:
//
//   32-bit lane:  0          7   8            15
//             [ r0 … r7 of g   | r0 … r7 of g + 1 ]   (load2x32: 32 bytes of each group's block)

// 32 bytes at a (lanes' bytes 0–31) and b (32–63).
inline __m512i load2x32(const uint8_t* a, const uint8_t* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load32(a)), load32(b), 1);
}
// 8 f16 at a and 8 at b as 16 floats.
inline __m512 halves2x8(const uint8_t* a, const uint8_t* b) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
}
// 8 unsigned bytes at a and 8 at b as 16 floats.
inline __m512 bytes2x8(const uint8_t* a, const uint8_t* b) {
  const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a));
  const __m128i hi = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b));
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi64(lo, hi)));
}
inline __m512i group4x16(const BlockQ8Act& xb, int k) {
  int32_t v;
  std::memcpy(&v, xb.q + 4 * k, 4);
  return _mm512_set1_epi32(v);
}

// tileX8 and tileQ4_Kx8 for rows o..o+15 (groups o / 8 and o / 8 + 1): acc[u] lane r = y[t + u, o + r].
// q8_0's sign trick has no 512-bit sign instruction: x is negated under a mask of w's negative bytes.
template <DType T, int TT>
void tile16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const int nb = w.cols / blockValues(T);  // blocks (q4_k: super-blocks) per row
  const size_t groupBlock = interleavedGroupBlockBytes(T);
  const uint8_t* g0 = w.interleaved + static_cast<size_t>(o / 8) * nb * groupBlock;
  const uint8_t* g1 = g0 + nb * groupBlock;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m512 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm512_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t* p0 = g0 + static_cast<size_t>(b) * groupBlock;
    const uint8_t* p1 = g1 + static_cast<size_t>(b) * groupBlock;
    const __m512 d = halves2x8(p0, p1);
    if constexpr (T == DType::Q4_K) {
      const __m512 dmin = halves2x8(p0 + 16, p1 + 16);
      for (int j = 0; j < 8; j++) {
        const __m512 scale = _mm512_mul_ps(d, bytes2x8(p0 + 32 + 8 * j, p1 + 32 + 8 * j));
        const __m512 min = _mm512_mul_ps(dmin, bytes2x8(p0 + 96 + 8 * j, p1 + 96 + 8 * j));
        const int pair = 160 + 256 * (j / 2);
        __m512i q[8];
        for (int k = 0; k < 8; k++) {
          const __m512i raw = load2x32(p0 + pair + 32 * k, p1 + pair + 32 * k);
          q[k] = _mm512_and_si512(j % 2 ? _mm512_srli_epi16(raw, 4) : raw, low4);
        }
        for (int u = 0; u < TT; u++) {
          const BlockQ8Act& xb = xs[u][b * 8 + j];
          __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
          for (int k = 0; k < 8; k += 2) {
            even = _mm512_dpbusd_epi32(even, q[k], group4x16(xb, k));
            odd = _mm512_dpbusd_epi32(odd, q[k + 1], group4x16(xb, k + 1));
          }
          const __m512i dot = _mm512_add_epi32(even, odd);
          const __m512 xd = _mm512_set1_ps(xb.d);
          acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scale, xd), acc[u]);
          acc[u] = _mm512_fnmadd_ps(min, _mm512_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc[u]);
        }
      }
      continue;
    }
    __m512i q[8];  // q[k]: quants 4k..4k+3 of every row (q8_0: their absolute values)
    __mmask64 negative[8];  // q8_0: w's negative bytes
    for (int c = 0; c < 4; c++) {
      if constexpr (T == DType::Q8_0) {
        for (int h = 0; h < 2; h++) {
          const __m512i raw = load2x32(p0 + 16 + 32 * (c + 4 * h), p1 + 16 + 32 * (c + 4 * h));
          q[c + 4 * h] = _mm512_abs_epi8(raw);
          negative[c + 4 * h] = _mm512_movepi8_mask(raw);
        }
      } else {
        const __m512i raw = load2x32(p0 + 16 + 32 * c, p1 + 16 + 32 * c);
        q[c] = _mm512_and_si512(raw, low4);
        q[c + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
      }
    }
    for (int u = 0; u < TT; u++) {
      const BlockQ8Act& xb = xs[u][b];
      __m512i chains[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // vpdpbusd's latency, halved
      for (int k = 0; k < 8; k++) {
        __m512i xk = group4x16(xb, k);
        if constexpr (T == DType::Q8_0) xk = _mm512_mask_sub_epi8(xk, negative[k], _mm512_setzero_si512(), xk);
        chains[k % 2] = _mm512_dpbusd_epi32(chains[k % 2], q[k], xk);
      }
      __m512i dot = _mm512_add_epi32(chains[0], chains[1]);
      if constexpr (T == DType::Q4_0) dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(8 * blockSum(xb)));
      acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(d, _mm512_set1_ps(xb.d)), acc[u]);
    }
  }
  for (int u = 0; u < TT; u++) _mm512_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}
#endif

// Rows [o, rowEnd) from 8-row groups, as far as whole groups go; returns the first row left. With AVX-512, pairs
// of groups (not q6_k's) go through tile16.
template <DType T>
int matmulX8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int rowEnd) {
  constexpr int kTokens = 3;
#if VELLUM_VNNI
  if constexpr (T != DType::Q6_K)
    for (; o + 16 <= rowEnd; o += 16) {
      constexpr int kWideTokens = 4;
      int t = 0;
      for (; t + kWideTokens <= x.T; t += kWideTokens) tile16<T, kWideTokens>(w, x, y, ldy, o, t);
      for (; t < x.T; t++) tile16<T, 1>(w, x, y, ldy, o, t);
    }
#endif
  for (; o + 8 <= rowEnd; o += 8) {
    int t = 0;
    for (; t + kTokens <= x.T; t += kTokens) tile8<T, kTokens>(w, x, y, ldy, o, t);
    for (; t < x.T; t++) tile8<T, 1>(w, x, y, ldy, o, t);
  }
  return o;
}

}  // namespace
}  // namespace vellum::backend
