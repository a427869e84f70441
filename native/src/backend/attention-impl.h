// The attention loop, written once and compiled into each kernel path (kernels-scalar.cc, and the three that
// include kernels-x86.h) for each cache element type (Elem: float for f32, uint16_t for f16 bits) with that
// path's block primitives inlined; they widen the cache rows to f32 as they read them. See attention.h for the
// layout.
//
// The loop walks the cache a block at a time. Within a block one head's rows are contiguous, and each query
// of the tile meets them through two primitives that keep its running values in registers. A path gives them,
// and its softmax, as the static members of a class Blocks:
//   Blocks::dotRows(q, rows, stride, n, hd, scale, s):  s[o] = scale · q · rows[o],    o < n
//   Blocks::axpyRows(out, s, rows, stride, n, hd):      out += Σ_{o < n} s[o] · rows[o]
//   Blocks::softmax(s, n):                              s[0, n) ← softmax(s[0, n))
// The sliding window and soft-capping live in the loop itself, the same for every path.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention.h"

namespace vellum::backend {

// Asks for n bytes ahead of their use, a cache line at a time.
inline void prefetchBytes(const void* p, int n) {
  for (int b = 0; b < n; b += 64) __builtin_prefetch(static_cast<const char*>(p) + b);
}

// Items [begin, end) (see attentionItems); `scores` holds attentionScratch(a, max position + 1) floats.
template <class Elem, class Blocks>
void attentionLoop(const AttentionArgs& a, int64_t begin, int64_t end, float* scores) {
  const int hd = a.headDim;
  const int group = a.nHeads / a.nKvHeads;
  for (int64_t item = begin; item < end; item++) {
    const int tile = static_cast<int>(item / a.nKvHeads);
    const int kvHead = static_cast<int>(item % a.nKvHeads);
    const int t0 = a.tileFirst[tile];
    const int nt = a.tileFirst[tile + 1] - t0;
    const int32_t* table = a.tables + a.tableStart[a.tileSeq[tile]];
    // The positions any query of the tile sees, [lo, hi); query (i, g) keeps its scores in row i · group + g,
    // at index j − lo for position j.
    int lo = a.positions[t0];
    int hi = 0;
    for (int i = 0; i < nt; i++) {
      lo = std::min(lo, firstSeen(a, a.positions[t0 + i]));
      hi = std::max(hi, a.positions[t0 + i] + 1);
    }
    const int span = hi - lo;
    // The query heads of this kv head for token t0 + i: q + (i · nHeads + g) · hd, g < group.
    const float* q = a.q + (static_cast<int64_t>(t0) * a.nHeads + static_cast<int64_t>(kvHead) * group) * hd;
    float* out = a.out + (static_cast<int64_t>(t0) * a.nHeads + static_cast<int64_t>(kvHead) * group) * hd;
    // Visits the blocks holding positions lo..hi−1 (blocks wholly before the window are never touched), calling
    // f(scores of the first row seen, q offset, rows, rows seen) for each query (i, g) with the rows of the block
    // it sees (causal: up to its own position; within its window). A block's rows of this kv head are contiguous
    // (attention.h); before a block it prefetches the next one, which lies elsewhere in the cache, so decode does
    // not wait on it.
    auto forEachBlock = [&](const void* cacheBytes, auto&& f) {
      const Elem* cache = static_cast<const Elem*>(cacheBytes);
      auto blockRows = [&](int blk) {
        return cache + (static_cast<int64_t>(table[blk]) * a.nKvHeads + kvHead) * a.blockSize * hd;
      };
      for (int blk = lo / a.blockSize; blk * a.blockSize < hi; blk++) {
        const int j0 = blk * a.blockSize;
        if (j0 + a.blockSize < hi) {
          const int nextRows = std::min(hi - j0 - a.blockSize, a.blockSize);
          prefetchBytes(blockRows(blk + 1), nextRows * hd * static_cast<int>(sizeof(Elem)));
        }
        const Elem* rows = blockRows(blk);
        for (int i = 0; i < nt; i++) {
          const int p = a.positions[t0 + i];
          const int from = std::max(firstSeen(a, p), j0);
          const int to = std::min(p + 1, j0 + a.blockSize);
          if (from >= to) continue;
          for (int g = 0; g < group; g++)
            f(scores + static_cast<int64_t>(i * group + g) * span + (from - lo), (i * a.nHeads + g) * hd,
              rows + static_cast<int64_t>(from - j0) * hd, to - from);
        }
      }
    };
    forEachBlock(a.kCache, [&](float* s, int64_t head, const Elem* k, int n) {
      Blocks::dotRows(q + head, k, hd, n, hd, a.scale, s);
    });
    for (int i = 0; i < nt; i++) {
      const int p = a.positions[t0 + i];
      const int first = firstSeen(a, p);
      for (int g = 0; g < group; g++) {
        float* s = scores + static_cast<int64_t>(i * group + g) * span + (first - lo);
        if (a.softcap > 0)
          for (int j = 0; j <= p - first; j++) s[j] = a.softcap * std::tanh(s[j] / a.softcap);
        Blocks::softmax(s, p + 1 - first);
        std::memset(out + (i * a.nHeads + g) * hd, 0, sizeof(float) * hd);
      }
    }
    forEachBlock(a.vCache, [&](float* s, int64_t head, const Elem* v, int n) {
      Blocks::axpyRows(out + head, s, v, hd, n, hd);
    });
  }
}

// Kernels::attention for a path's Blocks, over a cache of either element type.
template <class Blocks>
void attention(const AttentionArgs& a, int64_t begin, int64_t end, float* scores) {
  if (a.kvDtype == KvDtype::F16)
    attentionLoop<uint16_t, Blocks>(a, begin, end, scores);
  else
    attentionLoop<float, Blocks>(a, begin, end, scores);
}

}  // namespace vellum::backend
