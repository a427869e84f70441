// The attention loop, written once and compiled into each kernel path (kernels-scalar.cc, and the three that
// include kernels-x86.h) for each cache element type (Elem: float for f32, uint16_t for f16 bits) with that
// path's block primitives inlined; they widen the cache to f32 as they read it. See attention.h for the layout.
//
// The loop walks the cache a block at a time. Within a block one kv head's K (by dimension) and V (by row) are
// each contiguous, and the tile's queries meet them through two primitives, as many at once as see the same
// slots: the query heads of a GQA group, of every token of a prefill tile past the block. A path gives them, and
// its softmax, as the static members of a class Blocks:
//   Blocks::dotColumns(q, qStride, nq, k, B, first, n, hd, scale, s, sStride):
//       s[g · sStride + o] = scale · Σ_i q[g · qStride + i] · k[i · B + first + o],   g < nq, o < n
//   Blocks::axpyRows(out, outStride, nq, s, sStride, v, stride, n, hd):
//       out[g · outStride + c] += Σ_{o < n} s[g · sStride + o] · v[o · stride + c],     g < nq, c < hd
//   Blocks::softmax(s, n):                              s[0, n) ← softmax(s[0, n))
// (k: one block's K of one kv head, B = blockSize columns a dimension, first: the first slot read; v: the rows of
// the slots read.) The nq queries share each load and widening of K and V.
// The sliding window and soft-capping live in the loop itself, the same for every path.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "attention.h"

namespace vellum::backend {

// Asks for n bytes ahead of their use, a cache line at a time.
inline void prefetchBytes(const void* p, int n) {
  for (int b = 0; b < n; b += 64) __builtin_prefetch(static_cast<const char*>(p) + b);
}

// Items [begin, end) (see attentionItems); `scratch` holds attentionScratch(group, headDim, max position + 1) floats.
template <class Elem, class Blocks>
void attentionLoop(const AttentionArgs& a, int64_t begin, int64_t end, float* scratch) {
  const int hd = a.headDim;
  const int group = a.nHeads / a.nKvHeads;
  const int blockBytes = a.blockSize * hd * static_cast<int>(sizeof(Elem));
  float* scores = scratch + 2 * tileRowsScratch(group, hd);
  // The positions any query of a tile sees, [lo, hi).
  auto seenBy = [&](int tile) {
    int lo = a.positions[a.tileFirst[tile]];
    int hi = 0;
    for (int t = a.tileFirst[tile]; t < a.tileFirst[tile + 1]; t++) {
      lo = std::min(lo, firstSeen(a, a.positions[t]));
      hi = std::max(hi, a.positions[t] + 1);
    }
    return std::pair{lo, hi};
  };
  // The elements of kv head h in block blk of a sequence's table, within one cache (attention.h).
  auto headBlock = [&](const void* cache, const int32_t* table, int h, int blk) {
    return static_cast<const Elem*>(cache) + (static_cast<int64_t>(table[blk]) * a.nKvHeads + h) * a.blockSize * hd;
  };
  auto tableOf = [&](int tile) { return a.tables + a.tableStart[a.tileSeq[tile]]; };
  for (int64_t item = begin; item < end; item++) {
    const int tile = static_cast<int>(item / a.nKvHeads);
    const int kvHead = static_cast<int>(item % a.nKvHeads);
    const int t0 = a.tileFirst[tile];
    const int nt = a.tileFirst[tile + 1] - t0;
    const int32_t* table = tableOf(tile);
    // Query row r = i · group + g (token t0 + i, the group's head g) keeps its scores in row r, at index j − lo for
    // position j.
    const auto [lo, hi] = seenBy(tile);
    const int span = hi - lo;
    // The query rows, and the output rows they sum into, r at r · hd: the group's heads of one token lie so in q
    // and out; a tile of several tokens gathers them into scratch, so that the tokens which see the same keys of a
    // block share its loads as the heads do.
    const int64_t rowsAt = (static_cast<int64_t>(t0) * a.nHeads + static_cast<int64_t>(kvHead) * group) * hd;
    const float* q = a.q + rowsAt;
    float* out = a.out + rowsAt;
    auto tokenRows = [&](int i) { return static_cast<int64_t>(i) * a.nHeads * hd; };  // of token i in q and out
    if (nt > 1) {
      float* gathered = scratch;
      for (int i = 0; i < nt; i++)
        std::memcpy(gathered + static_cast<int64_t>(i) * group * hd, q + tokenRows(i), sizeof(float) * group * hd);
      q = gathered;
      out = scratch + tileRowsScratch(group, hd);
    }
    // Visits the blocks holding positions lo..hi−1 (blocks wholly before the window are never touched), calling
    // f(block's elements, j0, i, m, from, to) for each run of tokens i..i+m−1 of the tile that see the same
    // positions [from, to) of the block (causal: up to its own position; within its window). Before a block it
    // prefetches the next one, which lies elsewhere in the cache, so decode does not wait on it; before the last,
    // `after`: the first block the next pass reads (null: none).
    auto forEachBlock = [&](const void* cacheBytes, const Elem* after, auto&& f) {
      auto blockOf = [&](int blk) { return headBlock(cacheBytes, table, kvHead, blk); };
      auto seen = [&](int i, int j0) {
        const int p = a.positions[t0 + i];
        return std::pair{std::max(firstSeen(a, p), j0), std::min(p + 1, j0 + a.blockSize)};
      };
      for (int blk = lo / a.blockSize; blk * a.blockSize < hi; blk++) {
        const int j0 = blk * a.blockSize;
        if (j0 + a.blockSize < hi)
          prefetchBytes(blockOf(blk + 1), blockBytes);
        else if (after != nullptr)
          prefetchBytes(after, blockBytes);
        for (int i = 0, m; i < nt; i += m) {
          const auto [from, to] = seen(i, j0);
          for (m = 1; i + m < nt && seen(i + m, j0) == std::pair{from, to};) m++;
          if (from < to) f(blockOf(blk), j0, i, m, from, to);
        }
      }
    };
    forEachBlock(a.kCache, headBlock(a.vCache, table, kvHead, lo / a.blockSize), [&](const Elem* k, int j0, int i, int m, int from, int to) {
      Blocks::dotColumns(q + static_cast<int64_t>(i) * group * hd, hd, m * group, k, a.blockSize, from - j0,
                         to - from, hd, a.scale, scores + static_cast<int64_t>(i * group) * span + (from - lo), span);
    });
    for (int i = 0; i < nt; i++) {
      const int p = a.positions[t0 + i];
      const int first = firstSeen(a, p);
      for (int g = 0; g < group; g++) {
        float* s = scores + static_cast<int64_t>(i * group + g) * span + (first - lo);
        if (a.softcap > 0)
          for (int j = 0; j <= p - first; j++) s[j] = a.softcap * std::tanh(s[j] / a.softcap);
        Blocks::softmax(s, p + 1 - first);
      }
    }
    std::memset(out, 0, sizeof(float) * nt * group * hd);
    const int nextTile = static_cast<int>((item + 1) / a.nKvHeads);
    const Elem* nextItemKeys =
        item + 1 < end ? headBlock(a.kCache, tableOf(nextTile), static_cast<int>((item + 1) % a.nKvHeads),
                                   seenBy(nextTile).first / a.blockSize)
                       : nullptr;
    forEachBlock(a.vCache, nextItemKeys, [&](const Elem* v, int j0, int i, int m, int from, int to) {
      Blocks::axpyRows(out + static_cast<int64_t>(i) * group * hd, hd, m * group,
                       scores + static_cast<int64_t>(i * group) * span + (from - lo), span,
                       v + static_cast<int64_t>(from - j0) * hd, hd, to - from, hd);
    });
    if (nt > 1)
      for (int i = 0; i < nt; i++)
        std::memcpy(a.out + rowsAt + tokenRows(i), out + static_cast<int64_t>(i) * group * hd,
                    sizeof(float) * group * hd);
  }
}

// Kernels::attention for a path's Blocks, over a cache of either element type.
template <class Blocks>
void attention(const AttentionArgs& a, int64_t begin, int64_t end, float* scratch) {
  if (a.kvDtype == KvDtype::F16)
    attentionLoop<uint16_t, Blocks>(a, begin, end, scratch);
  else
    attentionLoop<float, Blocks>(a, begin, end, scratch);
}

}  // namespace vellum::backend
