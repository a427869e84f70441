// Matmul tiles over quantized weights interleaved in 8-row groups: the copy interleaveRows (kernels-common.cc)
// makes at load for a kernel path whose Kernels::interleaves says so. One 32-byte load then holds 4 quants of
// each of 8 rows, so the 8 int32 lanes of a register accumulate 8 rows' dot products at once against a token's
// 4 activations broadcast to every lane, and one FMA scales all 8 rows. With AVX-512 (the VNNI paths) two
// adjacent groups fill a 512-bit register instead (tile16).
//
// Group g is rows 8g..8g+7. Its blocks (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl: 32 values; q4_k, q5_k, q6_k, iq4_xs:
// 256-value super-blocks) follow each other: block b of group g starts at (g · blocks per row + b) · B bytes,
// B = interleavedGroupBlockBytes.
//
// q8_0 ×8, B = 272 (8 × 34): chunk k = quants 4k..4k+3 of every row
//
//   byte 0        16                                      48                 240                    272
//        | d × 8 | r0 q0..3 | r1 q0..3 | … | r7 q0..3 | r0 q4..7 | … | r7 q4..7 | … | r0 q28..31 | … r7 |
//         f16 per  '-------------- chunk 0 -----------' '----- chunk 1 ------'     '---- chunk 7 ------'
//         row
//   On the VNNI paths (Kernels::unsignedQ8) each quant byte holds q + 128.
//
//   chunk k in a __m256i, against activations 4k..4k+3 of a token (xb, group4):
//
//     32-bit lane:  0           1                 7
//               [ r0 q4k..  | r1 q4k..  | … | r7 q4k..  ]
//             · [ x4k..4k+3 | x4k..4k+3 | … | x4k..4k+3 ]   → lane r += row r's 4 products (one vpdpbusd)
//
// q4_0 ×8, B = 144 (8 × 18): | d × 8 | 4 chunks of 32 bytes |; chunk c holds bytes 4c..4c+3 of each row's 16
//   nibble bytes: low nibbles are values 4c..4c+3, high nibbles values 16 + 4c..16 + 4c + 3.
// iq4_nl ×8, B = 144 (8 × 18): as q4_0's; the nibbles index the levels.
// q4_1 ×8, B = 160 (8 × 20): | d × 8 | m × 8 | 4 chunks as q4_0's |
// q5_0 ×8, B = 176 (8 × 22): | d × 8 | qh: 32 | 4 chunks as q4_0's |
// q5_1 ×8, B = 192 (8 × 24): | d × 8 | m × 8 | qh: 32 | 4 chunks as q4_0's |
//   qh: row r's 4 bytes at 4r, regrouped (GGUF's bit v is value v's fifth bit): byte i holds at bit 2c + h the
//   fifth bit of value 16h + 4c + i, the one beside nibble byte 4r + i of chunk c (h = 0: low nibble, 1: high)
//
//     chunk c, byte 4r + i:   [ hi nibble: value 16 + 4c + i | lo nibble: value 4c + i ]
//     qh byte 4r + i:         [ b7 … b(2c+1) b(2c) … b0 ]    q = nibble + 16 · bit 2c + h
//
// q4_k ×8, B = 1184 (8 × 144; the 6-bit scales unpacked to bytes):
//   0    d     8 × f16
//   16   dmin  8 × f16
//   32   sc    [8 sub-blocks][8 rows] u8
//   96   m     [8 sub-blocks][8 rows] u8
//   160  qs    4 pairs × 256 bytes; pair p = 8 chunks, chunk c holds qs bytes 32p + 4c..+3 of each row, whose
//              low nibbles are values 4c..4c+3 of sub-block 2p and high nibbles those of sub-block 2p + 1
//
// q5_k ×8, B = 1440 (8 × 176 + 32; the scales unpacked as q4_k's):
//   0    d     8 × f16
//   16   dmin  8 × f16
//   32   sc    [8 sub-blocks][8 rows] u8
//   96   m     [8 sub-blocks][8 rows] u8
//   160  qh    8 chunks: chunk c holds qh bytes 4c..4c+3 of each row; bit j of each is the fifth bit (16) of
//              value 4c..4c+3 of sub-block j
//   416  qs    4 pairs × 256 bytes, as q4_k's
//
//     sub-block j, values 4c..4c+3 of row r (byte 4r + i of a chunk's 32):
//       qs pair j / 2, chunk c:  [ lo nibble: sub-block 2p | hi nibble: 2p + 1 ]
//       qh chunk c:              [ b7 … bj … b0 ]      q = nibble + 16 · bit j
//
// q6_k ×8, B = 1680 (8 × 210):
//   0     d       8 × f16
//   16    scales  [16 sub-blocks][8 rows] int8
//   144   ql      4 runs × 256 bytes: run 2n + j = ql bytes 64n + 32j..+31 of each row, 4 bytes a row per chunk
//   1168  qh      2 runs × 256 bytes: run n = qh bytes 32n..+31 of each row, likewise
//
// iq4_xs ×8, B = 1104 (8 × 136 − 4 × 8; the 6-bit scales unpacked to int8 ls − 32, scales_h and scales_l dropped):
//   0    d      8 × f16
//   16   scale  [8 sub-blocks][8 rows] int8 (ls − 32)
//   80   qs     8 sub-blocks × 128 bytes: sub-block j = 4 chunks of 32, chunk c holds qs bytes 16j + 4c..+3 of each
//               row, as q4_0's: low nibbles index the levels of values 4c..4c+3, high nibbles of 16 + 4c..+3
//
//   byte 0        16                   80                          208               1104
//        | d × 8 | scale [j][r] × 64 | sub-block 0: chunks 0..3 | sub-block 1 | … | sub-block 7 |
//
// q2_k and q3_k stay row-wise (readsGroups).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels.h"
#include "simd-x86.h"

namespace vellum::backend {
namespace {

// Tokens [0, tokens) as tiles of TT and one tile of the rest: tile(std::integral_constant<int, N>, t) does
// tokens t..t+N−1. Each tile reads its weights once, so 4n + k tokens (TT = 4, 0 < k < 4) read them n + 1 times,
// where tiles of 1 for the rest read them n + k times: tinyllama q4_0's steps of 3 and 7 decodes went from 29.7 to
// 25.6 and 43.1 to 38.3 ms on Zen 5 (2 threads); small-160m's, whose 32-row windows stay in L1, did not change.
template <int N, class Tile>
inline void restTile(int rest, int t, Tile& tile) {
  if constexpr (N > 0) {
    if (rest == N)
      tile(std::integral_constant<int, N>{}, t);
    else
      restTile<N - 1>(rest, t, tile);
  }
}
template <int TT, class Tile>
inline void tokenTiles(int tokens, Tile&& tile) {
  int t = 0;
  for (; t + TT <= tokens; t += TT) tile(std::integral_constant<int, TT>{}, t);
  restTile<TT - 1>(tokens - t, t, tile);
}

// The types read from 8-row groups (Kernels::interleaves): every quantized type but q2_k and q3_k, which stay
// row-wise (matmul-x86.h) because no 8-row tile was written for them: their 16-value sub-blocks with a scale
// (and min) each and quants split over several bit planes would each want a tile of their own, for the
// small-machine mixes (q3_k_m, q2_k) that the speed targets do not include. Measured against row-wise (1 thread,
// 4864x896 and 5632x2048), interleaving is faster for every other type at T = 1 and T = 64, but for iq4_nl on
// AVX2 without VNNI at T = 1, where it ties.
constexpr bool readsGroups(DType t) {
  return t != DType::Q2_K && t != DType::Q3_K && isQuantized(t);
}

// Activations 4k..4k+3 of a block, in every 32-bit lane.
inline __m256i group4(const BlockQ8Act& xb, int k) {
  int32_t v;
  std::memcpy(&v, xb.q + 4 * k, 4);
  return _mm256_set1_epi32(v);
}

// Lane r = Σ_{k < N} Σ_i byte 4r + i of q[k] (unsigned, at most kMax) · activation 4(g0 + k) + i of xb: 8
// interleaved rows' dots with 4N values. Without VNNI, G maddubs add up in int16 before a madd widens them, G as
// large as G · 2 · kMax · 127 ≤ 32,767 allows: 8 for 4-bit quants, 4 for 5-bit, 2 for 6-bit.
template <int N, int kMax>
inline __m256i unsignedDots(const __m256i* q, const BlockQ8Act& xb, int g0) {
#if VELLUM_VNNI
  // Two accumulators: vpdpbusd's latency would otherwise chain all N.
  __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
  for (int k = 0; k < N; k += 2) {
    even = _mm256_dpbusd_epi32(even, q[k], group4(xb, g0 + k));
    odd = _mm256_dpbusd_epi32(odd, q[k + 1], group4(xb, g0 + k + 1));
  }
  return _mm256_add_epi32(even, odd);
#else
  constexpr int G = 32767 / (2 * kMax * 127);
  static_assert(G >= 1 && N % G == 0, "maddubs sums must stay within int16");
  __m256i sum32{};
  for (int k0 = 0; k0 < N; k0 += G) {
    __m256i sum16 = _mm256_maddubs_epi16(q[k0], group4(xb, g0 + k0));
    for (int k = k0 + 1; k < k0 + G; k++)
      sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(q[k], group4(xb, g0 + k)));
    const __m256i widened = _mm256_madd_epi16(sum16, _mm256_set1_epi16(1));
    sum32 = k0 == 0 ? widened : _mm256_add_epi32(sum32, widened);
  }
  return sum32;
#endif
}

// Nibbles (0..15) against one 32-value block.
inline __m256i nibbleDots(const __m256i q[8], const BlockQ8Act& xb) { return unsignedDots<8, 15>(q, xb, 0); }

// ---- the 32-value types: q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl ----

// Quants of q5_k sub-block j, or of a q5_0 / q5_1 chunk half (j = 2c + h): the nibbles (0..15) plus 16 · bit j
// of each qh byte, moved to bit 4 (the 16-bit shifts, at most 4 places, move no other byte's bit there). With
// AVX-512 one vpternlogd ORs in the masked bit.
template <class V>
inline V withFifthBits(V nibbles, V qh, int j) {
  if constexpr (sizeof(V) == 64) {
    const __m512i at4 = j < 4 ? _mm512_slli_epi16(qh, 4 - j) : _mm512_srli_epi16(qh, j - 4);
    return _mm512_ternarylogic_epi32(nibbles, at4, _mm512_set1_epi8(0x10), 0xf8);  // a | (b & c)
  } else {
    const __m256i at4 = j < 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4);
#if VELLUM_VNNI
    return _mm256_ternarylogic_epi32(nibbles, at4, _mm256_set1_epi8(0x10), 0xf8);
#else
    return _mm256_or_si256(nibbles, _mm256_and_si256(at4, _mm256_set1_epi8(0x10)));
#endif
  }
}

// The iq4_nl / iq4_xs levels + `offset` as bytes, in every 128-bit lane of a V (vpshufb looks up within a lane).
template <class V>
inline V iq4LevelTable(int offset) {
  uint8_t bytes[sizeof(V)];
  for (size_t i = 0; i < sizeof(V); i++) bytes[i] = static_cast<uint8_t>(kIq4Levels[i % 16] + offset);
  V v;
  std::memcpy(&v, bytes, sizeof v);
  return v;
}

// Where a 32-value type's parts lie in its block of an 8-row group (interleaveRows): | d × 8 | m × 8 (q4_1,
// q5_1) | qh: 32 (q5_0, q5_1) | quants: 8 chunks (q8_0) or 4 chunks of nibbles |. A q5 row's 4 qh bytes are
// regrouped so that byte i holds, at bit 2c + h, the fifth bit of value 16h + 4c + i: the one beside nibble i of
// chunk c (h = 0: low nibble, 1: high), which withFifthBits moves into place with one shift.
template <DType T>
struct Legacy8 {
  static constexpr bool hasMin = T == DType::Q4_1 || T == DType::Q5_1;  // value = q·d + m
  static constexpr bool fifth = T == DType::Q5_0 || T == DType::Q5_1;
  static constexpr bool levels = T == DType::IQ4_NL;  // value = level[q]·d
  static constexpr int qh = hasMin ? 32 : 16;
  static constexpr int qs = qh + (fifth ? 32 : 0);
  static constexpr int bytes = qs + (T == DType::Q8_0 ? 256 : 128);
  // Signed quants meet the unsigned-operand dot as |q| · (x with q's sign); the others as unsigned bytes with an
  // offset taken off through Σx: value = (q − offset)·d. With VNNI, whose dot adds up in int32, q8_0's quants are
  // stored as q + 128 (Kernels::unsignedQ8) and iq4_nl takes its levels + 128 as iq4_xs does (tileIQ4_XSx8); without
  // it, maddubs' int16 pairs would overflow on those.
  static constexpr bool signedQ = (T == DType::Q8_0 || levels) && !VELLUM_VNNI;
  static constexpr int offset = T == DType::Q4_0 ? 8 : T == DType::Q5_0 ? 16 : (T == DType::Q8_0 || levels) && !signedQ ? 128 : 0;
  // The largest unsigned quant the dot meets.
  static constexpr int maxQ = fifth ? 31 : levels || T == DType::Q8_0 ? 255 : 15;
};

// 8 rows × TT tokens: acc[u] lane r = y[t + u, o + r]. A block's int32 dots for all 8 rows come out lane by
// lane against the token's broadcast 4-value groups, and one FMA scales all 8 rows:
// - nibbles (q4_0, q4_1; q5_0, q5_1 with their fifth bits; iq4_nl's levels + 128 with VNNI): unsignedDots,
//   ~2.5 vector ops per 32 MACs without VNNI;
// - q8_0 (and iq4_nl without VNNI): the dot wants an unsigned operand, so |w| (once per block, for all tokens)
//   meets x with w's sign, and without VNNI each maddubs is widened by a madd (two can overflow int16), ~4.5 ops
//   per 32 MACs;
// where a row at a time needs ~6 per row and token.
// Decode (one token) reads each block once and does a few instructions per cache line with it, so it waits on
// memory, and what bounds it is how many lines each core has in flight. Its tiles read several groups side by
// side, each stream fetched this many blocks ahead.
constexpr int kDecodeAhead = 8;

// Where a decode tile of `streams` groups (each nb blocks of blockBytes, the groups back to back) prefetches while
// it reads block b of each, relative to that block: kDecodeAhead blocks further on, and within its last
// kDecodeAhead blocks the same stream's start in the next tile (the groups `streams` further on), so the next
// tile's first blocks are in flight when it begins instead of each one missing in turn (past the matrix's end, a
// prefetch is a no-op). 768-wide rows are only 24 blocks, so those first misses were a large part of each tile.
inline size_t decodeAheadOffset(int b, int nb, size_t blockBytes, int streams) {
  const size_t ahead = kDecodeAhead * blockBytes;
  return b + kDecodeAhead < nb ? ahead : ahead + static_cast<size_t>(streams - 1) * nb * blockBytes;
}

template <DType T>
struct BlockX8 {
  using L = Legacy8<T>;
  const uint8_t* p;
  __m256 d, m;
  __m256i q[8];  // q[k]: quants 4k..4k+3 of every row (q8_0: their absolute values)
  // The signed types' |q| and signs: q8_0 rereads its signs from the block (L1) rather than hold 8 more
  // registers; iq4_nl keeps its levels in q and their magnitudes here.
  __m256i magnitude[L::levels && L::signedQ ? 8 : 1];

  // The block at p of an 8-row group.
  inline void load(const uint8_t* block) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    p = block;
    d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    if constexpr (L::hasMin) m = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    for (int c = 0; c < 4; c++) {
      if constexpr (T == DType::Q8_0 && L::signedQ) {
        q[c] = _mm256_abs_epi8(load32(p + L::qs + 32 * c));
        q[c + 4] = _mm256_abs_epi8(load32(p + L::qs + 32 * (c + 4)));
      } else if constexpr (T == DType::Q8_0) {
        q[c] = load32(p + L::qs + 32 * c);
        q[c + 4] = load32(p + L::qs + 32 * (c + 4));
      } else {
        const __m256i raw = load32(p + L::qs + 32 * c);
        q[c] = _mm256_and_si256(raw, low4);
        q[c + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        if constexpr (L::fifth) {
          const __m256i qh = load32(p + L::qh);
          q[c] = withFifthBits(q[c], qh, 2 * c);
          q[c + 4] = withFifthBits(q[c + 4], qh, 2 * c + 1);
        }
        if constexpr (L::levels) {
          const __m256i levels = iq4LevelTable<__m256i>(VELLUM_VNNI ? 128 : 0);
          q[c] = _mm256_shuffle_epi8(levels, q[c]);
          q[c + 4] = _mm256_shuffle_epi8(levels, q[c + 4]);
        }
      }
    }
    if constexpr (L::levels && L::signedQ)
      for (int k = 0; k < 8; k++) magnitude[k] = _mm256_abs_epi8(q[k]);
  }

  // acc lane r += row r's dot with the token's block xb.
  inline __m256 accumulate(const BlockQ8Act& xb, __m256 acc) const {
    __m256i dot;
    if constexpr (L::signedQ) {
      auto absQ = [&](int k) { return T == DType::Q8_0 ? q[k] : magnitude[k]; };
      auto signQ = [&](int k) { return T == DType::Q8_0 ? load32(p + L::qs + 32 * k) : q[k]; };
      __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains of dot4Add
      for (int k = 0; k < 8; k += 2) {
        even = dot4Add(even, absQ(k), _mm256_sign_epi8(group4(xb, k), signQ(k)));
        odd = dot4Add(odd, absQ(k + 1), _mm256_sign_epi8(group4(xb, k + 1), signQ(k + 1)));
      }
      dot = _mm256_add_epi32(even, odd);
    } else {
      dot = unsignedDots<8, L::maxQ>(q, xb, 0);
      // Σ (q − offset)·x = Σ q·x − offset · Σ x
      if constexpr (L::offset != 0) dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(L::offset * blockSum(xb)));
    }
    const __m256 xd = _mm256_set1_ps(xb.d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(d, xd), acc);
    if constexpr (L::hasMin)  // + m · Σx
      acc = _mm256_fmadd_ps(m, _mm256_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc);
    return acc;
  }
};

template <DType T, int TT>
void tileX8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  using L = Legacy8<T>;
  const int nb = w.cols / kBlock;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * nb * L::bytes;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * nb;
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  BlockX8<T> block;
  for (int b = 0; b < nb; b++) {
    block.load(group + static_cast<size_t>(b) * L::bytes);
    for (int u = 0; u < TT; u++) acc[u] = block.accumulate(xs[u][b], acc[u]);
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

// Decode's tile on 256-bit registers: one token, rows o..o + 8·G, G groups read side by side as G streams each
// fetched kDecodeAhead blocks ahead.
template <DType T, int G>
void decodeTile8(const Weight& w, const MatmulInput& x, float* y, int o) {
  using L = Legacy8<T>;
  const int nb = w.cols / kBlock;
  const size_t groupBytes = static_cast<size_t>(nb) * L::bytes;
  const uint8_t* first = w.interleaved + static_cast<size_t>(o / 8) * groupBytes;
  __m256 acc[G];
  for (int i = 0; i < G; i++) acc[i] = _mm256_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const uint8_t* at = first + static_cast<size_t>(b) * L::bytes;
    const uint8_t* next = at + decodeAheadOffset(b, nb, L::bytes, G);
    for (int i = 0; i < G; i++)
      for (int line = 0; line < L::bytes; line += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + i * groupBytes + line), _MM_HINT_T0);
    for (int i = 0; i < G; i++) {
      BlockX8<T> block;
      block.load(at + i * groupBytes);
      acc[i] = block.accumulate(x.q8[b], acc[i]);
    }
  }
  for (int i = 0; i < G; i++) _mm256_storeu_ps(y + o + 8 * i, acc[i]);
}

// 8 bytes as 8 floats, unsigned or signed.
inline __m256 bytesAsFloats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline __m256 signedBytesAsFloats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}


// q4_k and q5_k, 8 rows × TT tokens, a 32-value sub-block at a time (unsignedDots, as q4_0); each row's sub-block
// scale d·sc and min dmin·m come as vectors of the 8 rows, value = d·sc·q − dmin·m. q5_k's q is the nibble plus
// 16 · its qh bit, assembled once for all tokens.
template <DType T, int TT>
void tileKx8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  constexpr bool fifth = T == DType::Q5_K;
  constexpr size_t kGroupBlock = fifth ? kQ5_Kx8Bytes : kQ4_Kx8Bytes;
  constexpr int kQs = fifth ? 416 : 160;
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int superBlocks = w.cols / 256;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * superBlocks * kGroupBlock;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  for (int sb = 0; sb < superBlocks; sb++) {
    const uint8_t* p = group + static_cast<size_t>(sb) * kGroupBlock;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    for (int pair = 0; pair < 4; pair++) {
      __m256i q[2][8];  // q[h][k]: values 4k..4k+3 of sub-block 2·pair + h, every row, from one load of their bytes
      for (int k = 0; k < 8; k++) {
        const __m256i raw = load32(p + kQs + 256 * pair + 32 * k);
        q[0][k] = _mm256_and_si256(raw, low4);
        q[1][k] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        if constexpr (fifth) {
          const __m256i qh = load32(p + 160 + 32 * k);
          q[0][k] = withFifthBits(q[0][k], qh, 2 * pair);
          q[1][k] = withFifthBits(q[1][k], qh, 2 * pair + 1);
        }
      }
      for (int h = 0; h < 2; h++) {
        const int j = 2 * pair + h;
        const __m256 scale = _mm256_mul_ps(d, bytesAsFloats(p + 32 + 8 * j));
        const __m256 min = _mm256_mul_ps(dmin, bytesAsFloats(p + 96 + 8 * j));
        for (int u = 0; u < TT; u++) {
          const BlockQ8Act& xb = xs[u][sb * 8 + j];
          const __m256 dot = _mm256_cvtepi32_ps(unsignedDots<8, fifth ? 31 : 15>(q[h], xb, 0));
          const __m256 xd = _mm256_set1_ps(xb.d);
          acc[u] = _mm256_fmadd_ps(dot, _mm256_mul_ps(scale, xd), acc[u]);
          acc[u] = _mm256_fnmadd_ps(min, _mm256_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc[u]);
        }
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
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
        const __m256i low = _mm256_sub_epi32(unsignedDots<4, 63>(q, xb, 0), _mm256_set1_epi32(32 * xb.halfSums[0]));
        const __m256i high =
            _mm256_sub_epi32(unsignedDots<4, 63>(q + 4, xb, 4), _mm256_set1_epi32(32 * xb.halfSums[1]));
        acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(low), _mm256_mul_ps(scaleLow, xd), acc[u]);
        acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(high), _mm256_mul_ps(scaleHigh, xd), acc[u]);
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}


// iq4_xs, 8 rows × TT tokens, a 32-value sub-block at a time: each nibble indexes the 16 levels by one vpshufb per
// 32 nibbles, for all tokens; value = d · (ls − 32) · level. The dot instructions want one unsigned operand and
// the levels are signed (−127..113):
// - with VNNI, the levels + 128 (1..241) go in unsigned, and 128 · Σx comes off each dot: vpdpbusd sums in int32,
//   so this is exact, and costs one subtraction per dot instead of a vpsignb per 4 values and token;
// - without VNNI, maddubs would saturate on levels + 128 (its int16 pair sums reach 2 · 241 · 127 > 32,767), so
//   |level| (once per tile) meets x with the level's sign (|·| ≤ 127: pair sums ≤ 32,258), and each maddubs is
//   widened by a madd, as q8_0's tileX8.
template <int TT>
void tileIQ4_XSx8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i levels = iq4LevelTable<__m256i>(VELLUM_VNNI ? 128 : 0);
  const int superBlocks = w.cols / 256;
  const uint8_t* group = w.interleaved + static_cast<size_t>(o / 8) * superBlocks * kIQ4_XSx8Bytes;
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m256 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm256_setzero_ps();
  for (int sb = 0; sb < superBlocks; sb++) {
    const uint8_t* p = group + static_cast<size_t>(sb) * kIQ4_XSx8Bytes;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    for (int j = 0; j < 8; j++) {
      const __m256 scale = _mm256_mul_ps(d, signedBytesAsFloats(p + 16 + 8 * j));
      __m256i q[8];  // q[k]: the levels of values 4k..4k+3 of sub-block j, every row (with VNNI: + 128)
      for (int c = 0; c < 4; c++) {
        const __m256i raw = load32(p + 80 + 128 * j + 32 * c);
        q[c] = _mm256_shuffle_epi8(levels, _mm256_and_si256(raw, low4));
        q[c + 4] = _mm256_shuffle_epi8(levels, _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4));
      }
#if !VELLUM_VNNI
      __m256i magnitude[8];
      for (int k = 0; k < 8; k++) magnitude[k] = _mm256_abs_epi8(q[k]);
#endif
      for (int u = 0; u < TT; u++) {
        const BlockQ8Act& xb = xs[u][sb * 8 + j];
#if VELLUM_VNNI
        const __m256i dot = _mm256_sub_epi32(unsignedDots<8, 255>(q, xb, 0), _mm256_set1_epi32(128 * blockSum(xb)));
#else
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains of dot4Add
        for (int k = 0; k < 8; k += 2) {
          even = dot4Add(even, magnitude[k], _mm256_sign_epi8(group4(xb, k), q[k]));
          odd = dot4Add(odd, magnitude[k + 1], _mm256_sign_epi8(group4(xb, k + 1), q[k + 1]));
        }
        const __m256i dot = _mm256_add_epi32(even, odd);
#endif
        acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(scale, _mm256_set1_ps(xb.d)), acc[u]);
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm256_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

template <DType T, int TT>
void tile8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  if constexpr (T == DType::Q4_K || T == DType::Q5_K)
    tileKx8<T, TT>(w, x, y, ldy, o, t);
  else if constexpr (T == DType::IQ4_XS)
    tileIQ4_XSx8<TT>(w, x, y, ldy, o, t);
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
// 8 signed bytes at a and 8 at b as 16 floats.
inline __m512 signedBytes2x8(const uint8_t* a, const uint8_t* b) {
  const __m128i lo = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a));
  const __m128i hi = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b));
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_unpacklo_epi64(lo, hi)));
}
inline __m512i group4x16(const BlockQ8Act& xb, int k) {
  int32_t v;
  std::memcpy(&v, xb.q + 4 * k, 4);
  return _mm512_set1_epi32(v);
}
// Lane r = Σ_k Σ_i byte 4r + i of q[k] (unsigned) · activation 4k + i of xb, in two chains (vpdpbusd's latency).
inline __m512i unsignedDots16(const __m512i q[8], const BlockQ8Act& xb) {
  __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
  for (int k = 0; k < 8; k += 2) {
    even = _mm512_dpbusd_epi32(even, q[k], group4x16(xb, k));
    odd = _mm512_dpbusd_epi32(odd, q[k + 1], group4x16(xb, k + 1));
  }
  return _mm512_add_epi32(even, odd);
}

// The 8-row tiles' pointers for rows o..o+15 (groups o / 8 and o / 8 + 1) and TT tokens' activations.
struct Pair16 {
  const uint8_t* g0;
  const uint8_t* g1;
  size_t groupBlock;
  int blocks;  // per row (super-blocks for the K-quants and iq4_xs)
};
template <DType T>
Pair16 pair16(const Weight& w, int o) {
  const int nb = w.cols / blockValues(T);
  const size_t groupBlock = interleavedGroupBlockBytes(T);
  const uint8_t* g0 = w.interleaved + static_cast<size_t>(o / 8) * nb * groupBlock;
  return {g0, g0 + nb * groupBlock, groupBlock, nb};
}

// Decode streams the weights once: for one token, fetching two super-blocks ahead keeps both groups' streams in
// flight (the hardware prefetcher alone left ~7% of the bandwidth unused on q4_k). Prefill tiles reuse each block
// for many tokens.
inline void prefetchSuperBlocks(const uint8_t* p0, const uint8_t* p1, size_t groupBlock) {
  for (size_t at = 0; at < groupBlock; at += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(p0 + 2 * groupBlock + at), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p1 + 2 * groupBlock + at), _MM_HINT_T0);
  }
}

// tileKx8 (q4_k, q5_k) for rows o..o+15: acc[u] lane r = y[t + u, o + r].
template <DType T, int TT>
void tileKx16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  constexpr bool fifth = T == DType::Q5_K;
  constexpr int kQs = fifth ? 416 : 160;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const Pair16 g = pair16<T>(w, o);
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m512 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm512_setzero_ps();
  for (int b = 0; b < g.blocks; b++) {
    const uint8_t* p0 = g.g0 + static_cast<size_t>(b) * g.groupBlock;
    const uint8_t* p1 = g.g1 + static_cast<size_t>(b) * g.groupBlock;
    if (x.T == 1) prefetchSuperBlocks(p0, p1, g.groupBlock);
    const __m512 d = halves2x8(p0, p1);
    const __m512 dmin = halves2x8(p0 + 16, p1 + 16);
    __m512i qh[fifth ? 8 : 1];  // q5_k: the super-block's fifth bits, read once for its 8 sub-blocks
    if constexpr (fifth)
      for (int k = 0; k < 8; k++) qh[k] = load2x32(p0 + 160 + 32 * k, p1 + 160 + 32 * k);
    for (int pair = 0; pair < 4; pair++) {
      __m512i q[2][8];  // sub-blocks 2·pair (low nibbles) and 2·pair + 1 (high), from one load of their bytes
      for (int k = 0; k < 8; k++) {
        const int at = kQs + 256 * pair + 32 * k;
        const __m512i raw = load2x32(p0 + at, p1 + at);
        q[0][k] = _mm512_and_si512(raw, low4);
        q[1][k] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
        if constexpr (fifth) {
          q[0][k] = withFifthBits(q[0][k], qh[k], 2 * pair);
          q[1][k] = withFifthBits(q[1][k], qh[k], 2 * pair + 1);
        }
      }
      for (int h = 0; h < 2; h++) {
        const int j = 2 * pair + h;
        const __m512 scale = _mm512_mul_ps(d, bytes2x8(p0 + 32 + 8 * j, p1 + 32 + 8 * j));
        const __m512 min = _mm512_mul_ps(dmin, bytes2x8(p0 + 96 + 8 * j, p1 + 96 + 8 * j));
        for (int u = 0; u < TT; u++) {
          const BlockQ8Act& xb = xs[u][b * 8 + j];
          const __m512 xd = _mm512_set1_ps(xb.d);
          acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(unsignedDots16(q[h], xb)), _mm512_mul_ps(scale, xd), acc[u]);
          acc[u] = _mm512_fnmadd_ps(min, _mm512_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc[u]);
        }
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm512_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

// tileIQ4_XSx8 (its VNNI way: levels + 128, 128 · Σx off each dot) for rows o..o+15.
template <int TT>
void tileIQ4_XSx16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i levels = iq4LevelTable<__m512i>(128);
  const Pair16 g = pair16<DType::IQ4_XS>(w, o);
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m512 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm512_setzero_ps();
  for (int b = 0; b < g.blocks; b++) {
    const uint8_t* p0 = g.g0 + static_cast<size_t>(b) * g.groupBlock;
    const uint8_t* p1 = g.g1 + static_cast<size_t>(b) * g.groupBlock;
    if (x.T == 1) prefetchSuperBlocks(p0, p1, g.groupBlock);
    const __m512 d = halves2x8(p0, p1);
    for (int j = 0; j < 8; j++) {
      const __m512 scale = _mm512_mul_ps(d, signedBytes2x8(p0 + 16 + 8 * j, p1 + 16 + 8 * j));
      __m512i q[8];
      for (int c = 0; c < 4; c++) {
        const int at = 80 + 128 * j + 32 * c;
        const __m512i raw = load2x32(p0 + at, p1 + at);
        q[c] = _mm512_shuffle_epi8(levels, _mm512_and_si512(raw, low4));
        q[c + 4] = _mm512_shuffle_epi8(levels, _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4));
      }
      for (int u = 0; u < TT; u++) {
        const BlockQ8Act& xb = xs[u][b * 8 + j];
        const __m512i dot = _mm512_sub_epi32(unsignedDots16(q, xb), _mm512_set1_epi32(128 * blockSum(xb)));
        acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scale, _mm512_set1_ps(xb.d)), acc[u]);
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm512_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

// A q5_0 / q5_1 block's fifth bits (qh) of groups p0 and p1; the other types have none (zero).
template <DType T>
inline __m512i fifthBits16(const uint8_t* p0, const uint8_t* p1) {
  if constexpr (Legacy8<T>::fifth) return load2x32(p0 + Legacy8<T>::qh, p1 + Legacy8<T>::qh);
  return _mm512_setzero_si512();
}

// Quants 4c..4c+3 (lo) and 16 + 4c..16 + 4c + 3 (hi) of 16 rows, c < 4, as the unsigned bytes vpdpbusd takes:
// block b of groups p0 and p1 (pointers to the block), qh its fifthBits16. q8_0's chunks c and c + 4 are read
// as they are; the nibble types' chunk c holds both in one load.
template <DType T>
inline void chunkPair16(const uint8_t* p0, const uint8_t* p1, int c, __m512i qh, __m512i& lo, __m512i& hi) {
  using L = Legacy8<T>;
  if constexpr (T == DType::Q8_0) {
    lo = load2x32(p0 + L::qs + 32 * c, p1 + L::qs + 32 * c);
    hi = load2x32(p0 + L::qs + 32 * (c + 4), p1 + L::qs + 32 * (c + 4));
  } else {
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    const __m512i raw = load2x32(p0 + L::qs + 32 * c, p1 + L::qs + 32 * c);
    lo = _mm512_and_si512(raw, low4);
    hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
    if constexpr (L::fifth) {
      lo = withFifthBits(lo, qh, 2 * c);
      hi = withFifthBits(hi, qh, 2 * c + 1);
    }
    if constexpr (L::levels) {
      const __m512i levels = iq4LevelTable<__m512i>(128);
      lo = _mm512_shuffle_epi8(levels, lo);
      hi = _mm512_shuffle_epi8(levels, hi);
    }
  }
}

// tileX8 for rows o..o+15 (VNNI only, so every type's quants are unsigned bytes here).
template <DType T>
struct BlockX16 {
  using L = Legacy8<T>;
  static_assert(!L::signedQ, "VNNI reads unsigned quants");
  __m512 d, m;
  __m512i q[8];  // q[k]: quants 4k..4k+3 of every row

  // Block b of groups p0 and p1 (pointers to the block).
  inline void load(const uint8_t* p0, const uint8_t* p1) {
    d = halves2x8(p0, p1);
    if constexpr (L::hasMin) m = halves2x8(p0 + 16, p1 + 16);
    const __m512i qh = fifthBits16<T>(p0, p1);
    for (int c = 0; c < 4; c++) chunkPair16<T>(p0, p1, c, qh, q[c], q[c + 4]);
  }

  // acc lane r += row r's dot with the token's block xb.
  inline __m512 accumulate(const BlockQ8Act& xb, __m512 acc) const {
    __m512i chains[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // vpdpbusd's latency, halved
    for (int k = 0; k < 8; k++) {
      chains[k % 2] = _mm512_dpbusd_epi32(chains[k % 2], q[k], group4x16(xb, k));
    }
    __m512i dot = _mm512_add_epi32(chains[0], chains[1]);
    if constexpr (L::offset != 0) dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(L::offset * blockSum(xb)));
    const __m512 xd = _mm512_set1_ps(xb.d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(d, xd), acc);
    if constexpr (L::hasMin) acc = _mm512_fmadd_ps(m, _mm512_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc);
    return acc;
  }
};

template <DType T, int TT>
void tileX16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const Pair16 g = pair16<T>(w, o);
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * g.blocks;
  __m512 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm512_setzero_ps();
  BlockX16<T> block;
  for (int b = 0; b < g.blocks; b++) {
    block.load(g.g0 + static_cast<size_t>(b) * g.groupBlock, g.g1 + static_cast<size_t>(b) * g.groupBlock);
    for (int u = 0; u < TT; u++) acc[u] = block.accumulate(xs[u][b], acc[u]);
  }
  for (int u = 0; u < TT; u++) _mm512_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

// The groups of the next 32-row window that one pass of tileX32 over the current window prefetches (at most its 4
// groups, as pointers to their first block).
struct WindowAhead {
  const uint8_t* groups[4];
  int count = 0;
};

// What pass `pass` of `passes` (its token tiles, tokenTiles) over the window at rows o fetches of the next one, at
// o + 32: the 4 groups dealt out over the first passes, so that with 16 tokens each of 4 passes fetches one. The
// first pass over a window otherwise waits on DRAM, where the later passes find the window in cache: from DRAM,
// 16-token matmuls ran at 413 (q4_0) and 343 (q8_0) GMAC/s against 527 and 501 from L3 (65536 × 2048 against
// 2048 × 2048, 2 Zen 5 threads).
template <DType T>
WindowAhead windowAhead(const Weight& w, int o, int rowEnd, int pass, int passes) {
  WindowAhead ahead;
  const int dealt = std::min(passes, 4);
  if (o + 64 > rowEnd || pass >= dealt) return ahead;
  const Pair16 next[2] = {pair16<T>(w, o + 32), pair16<T>(w, o + 48)};
  const uint8_t* groups[4] = {next[0].g0, next[0].g1, next[1].g0, next[1].g1};
  for (int g = pass; g < 4; g += dealt) ahead.groups[ahead.count++] = groups[g];
  return ahead;
}

// The 32-value types, rows o..o+31 (two pairs of groups) × TT tokens, register-blocked: each block's quants come
// a chunk pair at a time (chunkPair16) for both pairs, and each token's broadcast 4 activations serve both, so
// a block costs per token and pair 8 vpdpbusd, ~4 broadcasts, and cvt + mul + fma to scale it. The weight offset
// (q4_0's 8, q5_0's 16, q8_0's and iq4_nl's 128 with VNNI) starts each dot as − offset · Σx, made once per token
// and block for both pairs by one vpmaddwd of the activations' halfSums: no scalar work per block. Along the way
// it prefetches `ahead`'s groups of the next window, a block of each per block.
template <DType T, int TT>
void tileX32(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t, const WindowAhead& ahead) {
  using L = Legacy8<T>;
  constexpr int P = 2;
  const Pair16 g[P] = {pair16<T>(w, o), pair16<T>(w, o + 16)};
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * g[0].blocks;
  const __m512i minusOffset = _mm512_set1_epi16(static_cast<int16_t>(-L::offset));
  __m512 acc[P][TT];
  for (int i = 0; i < P; i++)
    for (int u = 0; u < TT; u++) acc[i][u] = _mm512_setzero_ps();
  for (int b = 0; b < g[0].blocks; b++) {
    const size_t at = static_cast<size_t>(b) * g[0].groupBlock;
    for (int i = 0; i < ahead.count; i++)
      for (size_t line = 0; line < g[0].groupBlock; line += 64)
        _mm_prefetch(reinterpret_cast<const char*>(ahead.groups[i] + at + line), _MM_HINT_T0);
    __m512i dot[P][TT];
    for (int u = 0; u < TT; u++) {
      __m512i start = _mm512_setzero_si512();
      if constexpr (L::offset != 0) {
        int32_t sums;  // both halfSums, as two int16 lanes
        std::memcpy(&sums, xs[u][b].halfSums, 4);
        start = _mm512_madd_epi16(_mm512_set1_epi32(sums), minusOffset);
      }
      for (int i = 0; i < P; i++) dot[i][u] = start;
    }
    __m512i qh[P];
    for (int i = 0; i < P; i++) qh[i] = fifthBits16<T>(g[i].g0 + at, g[i].g1 + at);
    for (int c = 0; c < 4; c++) {
      __m512i lo[P], hi[P];
      for (int i = 0; i < P; i++) chunkPair16<T>(g[i].g0 + at, g[i].g1 + at, c, qh[i], lo[i], hi[i]);
      for (int u = 0; u < TT; u++) {
        const __m512i xlo = group4x16(xs[u][b], c);
        const __m512i xhi = group4x16(xs[u][b], c + 4);
        for (int i = 0; i < P; i++) {
          dot[i][u] = _mm512_dpbusd_epi32(dot[i][u], lo[i], xlo);
          dot[i][u] = _mm512_dpbusd_epi32(dot[i][u], hi[i], xhi);
        }
      }
    }
    __m512 d[P];
    for (int i = 0; i < P; i++) d[i] = halves2x8(g[i].g0 + at, g[i].g1 + at);
    for (int u = 0; u < TT; u++) {
      const __m512 xd = _mm512_set1_ps(xs[u][b].d);
      for (int i = 0; i < P; i++)
        acc[i][u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][u]), _mm512_mul_ps(d[i], xd), acc[i][u]);
    }
    if constexpr (L::hasMin) {  // + m · d·Σx
      for (int u = 0; u < TT; u++) {
        const __m512 sum = _mm512_set1_ps(static_cast<float>(blockSum(xs[u][b])) * xs[u][b].d);
        for (int i = 0; i < P; i++)
          acc[i][u] = _mm512_fmadd_ps(halves2x8(g[i].g0 + at + 16, g[i].g1 + at + 16), sum, acc[i][u]);
      }
    }
  }
  for (int i = 0; i < P; i++)
    for (int u = 0; u < TT; u++) _mm512_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o + 16 * i, acc[i][u]);
}

// acc lane r += row r's dot with xb over one q4_0 / q4_1 block of 16 rows (groups p0 and p1), for decode. Each
// chunk's high nibbles stay in place, as 16 · q (masked by 0xf0, not shifted): their dots sum in a chain of their
// own, which one arithmetic shift by 4 brings back (exact: every term is a multiple of 16). `start` is the low
// chain's start, − offset · Σx (q4_0's 8), made once per block for every pair. Against BlockX16 (shift and mask
// per chunk, the offset taken off per pair), tinyllama's q4_0 matvecs at -O3 on 2 Zen 5 threads: 63 → 69 GB/s
// from cache, 45 → 47 from DRAM.
//
//   byte of chunk c:  [ hi nibble: value 16 + 4c + i | lo nibble: value 4c + i ]
//   & 0x0f → q_lo ·  x[4c + i]        → low chain
//   & 0xf0 → 16 · q_hi · x[16 + 4c + i] → high chain, >> 4 at the end
template <DType T>
inline __m512 nibbleBlock16(const uint8_t* p0, const uint8_t* p1, const BlockQ8Act& xb, __m512i start, __m512 xd,
                            __m512 acc) {
  using L = Legacy8<T>;
  static_assert(T == DType::Q4_0 || T == DType::Q4_1, "plain 4-bit quants");
  __m512i low = start, high = _mm512_setzero_si512();
  for (int c = 0; c < 4; c++) {
    const __m512i raw = load2x32(p0 + L::qs + 32 * c, p1 + L::qs + 32 * c);
    low = _mm512_dpbusd_epi32(low, _mm512_and_si512(raw, _mm512_set1_epi8(0x0f)), group4x16(xb, c));
    high = _mm512_dpbusd_epi32(high, _mm512_and_si512(raw, _mm512_set1_epi8(static_cast<char>(0xf0))),
                               group4x16(xb, c + 4));
  }
  const __m512i dot = _mm512_add_epi32(low, _mm512_srai_epi32(high, 4));
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(halves2x8(p0, p1), xd), acc);
  if constexpr (L::hasMin)  // + m · d·Σx
    acc = _mm512_fmadd_ps(halves2x8(p0 + 16, p1 + 16), _mm512_set1_ps(static_cast<float>(blockSum(xb)) * xb.d), acc);
  return acc;
}

// Decode's tile on 512-bit registers: one token, rows o..o + 16·P, P pairs of groups read side by side as 2·P
// streams, each fetched kDecodeAhead blocks ahead.
template <DType T, int P>
void decodeTile16(const Weight& w, const MatmulInput& x, float* y, int o) {
  Pair16 g[P];
  for (int i = 0; i < P; i++) g[i] = pair16<T>(w, o + 16 * i);
  const size_t block = g[0].groupBlock;
  __m512 acc[P];
  for (int i = 0; i < P; i++) acc[i] = _mm512_setzero_ps();
  for (int b = 0; b < g[0].blocks; b++) {
    const size_t at = static_cast<size_t>(b) * block;
    const size_t next = at + decodeAheadOffset(b, g[0].blocks, block, 2 * P);
    for (size_t line = 0; line < block; line += 64)
      for (int i = 0; i < P; i++) {
        _mm_prefetch(reinterpret_cast<const char*>(g[i].g0 + next + line), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(g[i].g1 + next + line), _MM_HINT_T0);
      }
    if constexpr (T == DType::Q4_0 || T == DType::Q4_1) {
      const __m512i start = _mm512_set1_epi32(-Legacy8<T>::offset * blockSum(x.q8[b]));
      const __m512 xd = _mm512_set1_ps(x.q8[b].d);
      for (int i = 0; i < P; i++) acc[i] = nibbleBlock16<T>(g[i].g0 + at, g[i].g1 + at, x.q8[b], start, xd, acc[i]);
    } else {
      BlockX16<T> blocks[P];
      for (int i = 0; i < P; i++) blocks[i].load(g[i].g0 + at, g[i].g1 + at);
      for (int i = 0; i < P; i++) acc[i] = blocks[i].accumulate(x.q8[b], acc[i]);
    }
  }
  for (int i = 0; i < P; i++) _mm512_storeu_ps(y + o + 16 * i, acc[i]);
}

// tileQ6_Kx8 for rows o..o+15: each chunk's 6-bit quants (0..63) of both groups side by side, 32 · Σx off each
// 16-value half's dot.
template <int TT>
void tileQ6_Kx16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i low2 = _mm512_set1_epi8(0x03);
  const Pair16 g = pair16<DType::Q6_K>(w, o);
  const BlockQ8Act* xs[TT];
  for (int u = 0; u < TT; u++) xs[u] = x.q8 + static_cast<size_t>(t + u) * (w.cols / kBlock);
  __m512 acc[TT];
  for (int u = 0; u < TT; u++) acc[u] = _mm512_setzero_ps();
  for (int b = 0; b < g.blocks; b++) {
    const uint8_t* p0 = g.g0 + static_cast<size_t>(b) * g.groupBlock;
    const uint8_t* p1 = g.g1 + static_cast<size_t>(b) * g.groupBlock;
    if (x.T == 1) prefetchSuperBlocks(p0, p1, g.groupBlock);
    const __m512 d = halves2x8(p0, p1);
    for (int c = 0; c < 8; c++) {
      const int n = c / 4, k = c % 4;
      const int lowScale = 16 + 8 * (8 * n + 2 * k);
      const __m512 scaleLow = _mm512_mul_ps(d, signedBytes2x8(p0 + lowScale, p1 + lowScale));
      const __m512 scaleHigh = _mm512_mul_ps(d, signedBytes2x8(p0 + lowScale + 8, p1 + lowScale + 8));
      const int ql = 144 + 256 * (2 * n + k % 2);
      const int qh = 1168 + 256 * n;
      __m512i q[8];  // q[g]: values 4g..4g+3 of the chunk, every row of both groups
      for (int v = 0; v < 8; v++) {
        const __m512i l = load2x32(p0 + ql + 32 * v, p1 + ql + 32 * v);
        const __m512i low = _mm512_and_si512(k < 2 ? l : _mm512_srli_epi16(l, 4), low4);
        const __m512i bits = load2x32(p0 + qh + 32 * v, p1 + qh + 32 * v);
        const __m512i high = _mm512_and_si512(_mm512_srli_epi16(bits, 2 * k), low2);
        q[v] = _mm512_or_si512(low, _mm512_slli_epi16(high, 4));
      }
      for (int u = 0; u < TT; u++) {
        const BlockQ8Act& xb = xs[u][b * 8 + c];
        __m512i lowDot = _mm512_setzero_si512(), highDot = _mm512_setzero_si512();
        for (int v = 0; v < 4; v++) {
          lowDot = _mm512_dpbusd_epi32(lowDot, q[v], group4x16(xb, v));
          highDot = _mm512_dpbusd_epi32(highDot, q[v + 4], group4x16(xb, v + 4));
        }
        lowDot = _mm512_sub_epi32(lowDot, _mm512_set1_epi32(32 * xb.halfSums[0]));
        highDot = _mm512_sub_epi32(highDot, _mm512_set1_epi32(32 * xb.halfSums[1]));
        const __m512 xd = _mm512_set1_ps(xb.d);
        acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lowDot), _mm512_mul_ps(scaleLow, xd), acc[u]);
        acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(highDot), _mm512_mul_ps(scaleHigh, xd), acc[u]);
      }
    }
  }
  for (int u = 0; u < TT; u++) _mm512_storeu_ps(y + static_cast<size_t>(t + u) * ldy + o, acc[u]);
}

template <DType T, int TT>
void tile16(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int t) {
  if constexpr (T == DType::Q4_K || T == DType::Q5_K)
    tileKx16<T, TT>(w, x, y, ldy, o, t);
  else if constexpr (T == DType::Q6_K)
    tileQ6_Kx16<TT>(w, x, y, ldy, o, t);
  else if constexpr (T == DType::IQ4_XS)
    tileIQ4_XSx16<TT>(w, x, y, ldy, o, t);
  else
    tileX16<T, TT>(w, x, y, ldy, o, t);
}
#endif

// Streams a decode tile reads side by side: enough for ~8 KiB in flight per thread (q8_0's blocks are twice the
// 4-bit types'). Measured on Zen 5 (2 threads, decode ms/step, against one stream pair without prefetch):
// small-160m q8_0 6.2 → 4.5, tinyllama q8_0 35.8 → 24.1 (4 streams), tinyllama q4_0 24.7 → 16.7 (8 streams; 4
// streams: 17.3; q8_0 at 8: 26.1).
template <DType T>
constexpr int decodeStreams() {
  return Legacy8<T>::bytes < 256 ? 8 : 4;
}

// Rows [o, rowEnd) of one token through the decode tiles, as far as whole 32-row windows go; returns the first row
// left.
template <DType T>
int decodeRows(const Weight& w, const MatmulInput& x, float* y, int o, int rowEnd) {
  constexpr int S = decodeStreams<T>();
#if VELLUM_VNNI
  for (; o + 8 * S <= rowEnd; o += 8 * S) decodeTile16<T, S / 2>(w, x, y, o);
  if constexpr (S > 4)
    for (; o + 32 <= rowEnd; o += 32) decodeTile16<T, 2>(w, x, y, o);
#else
  for (; o + 8 * S <= rowEnd; o += 8 * S) decodeTile8<T, S>(w, x, y, o);
  if constexpr (S > 4)
    for (; o + 32 <= rowEnd; o += 32) decodeTile8<T, 4>(w, x, y, o);
#endif
  return o;
}

// Rows [o, rowEnd) from 8-row groups, as far as whole groups go; returns the first row left. With AVX-512, pairs
// of groups go through tile16; one token's rows through the decode tiles.
template <DType T>
int matmulX8(const Weight& w, const MatmulInput& x, float* y, int ldy, int o, int rowEnd) {
  static_assert(readsGroups(T), "a type read from 8-row groups");
  constexpr int kTokens = 3;
  if constexpr (T == DType::Q8_0 || T == DType::Q4_0 || T == DType::Q4_1 || T == DType::Q5_0 || T == DType::Q5_1 ||
                T == DType::IQ4_NL)
    if (x.T == 1) o = decodeRows<T>(w, x, y, o, rowEnd);
#if VELLUM_VNNI
  constexpr int kWideTokens = 4;
  if constexpr (T == DType::Q8_0 || T == DType::Q4_0 || T == DType::Q4_1 || T == DType::Q5_0 || T == DType::Q5_1 ||
                T == DType::IQ4_NL)
    for (; o + 32 <= rowEnd; o += 32) {
      const int passes = (x.T + kWideTokens - 1) / kWideTokens;
      tokenTiles<kWideTokens>(x.T, [&](auto tt, int t) {
        const WindowAhead ahead = windowAhead<T>(w, o, rowEnd, t / kWideTokens, passes);
        tileX32<T, decltype(tt)::value>(w, x, y, ldy, o, t, ahead);
      });
    }
  constexpr int kTileTokens = T == DType::Q6_K ? 8 : kWideTokens;
  for (; o + 16 <= rowEnd; o += 16)
    tokenTiles<kTileTokens>(x.T, [&](auto tt, int t) { tile16<T, decltype(tt)::value>(w, x, y, ldy, o, t); });
#endif
  for (; o + 8 <= rowEnd; o += 8)
    tokenTiles<kTokens>(x.T, [&](auto tt, int t) { tile8<T, decltype(tt)::value>(w, x, y, ldy, o, t); });
  return o;
}

}  // namespace
}  // namespace vellum::backend
