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
#pragma once

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
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  for (int64_t item = begin; item < end; item++) {
    const int tile = static_cast<int>(item / a.nKvHeads);
    const int kvHead = static_cast<int>(item % a.nKvHeads);
    const int t0 = a.tileFirst[tile];
    const int nt = a.tileFirst[tile + 1] - t0;
    const int32_t* table = a.tables + a.tableStart[a.tileSeq[tile]];
    int ctxMax = 0;  // the tile's longest context; query (i, g) uses scores row i · group + g, its first ctx_i
    for (int i = 0; i < nt; i++) ctxMax = a.positions[t0 + i] + 1 > ctxMax ? a.positions[t0 + i] + 1 : ctxMax;
    // The query heads of this kv head for token t0 + i: q + (i · nHeads + g) · hd, g < group.
    const float* q = a.q + (static_cast<int64_t>(t0) * a.nHeads + static_cast<int64_t>(kvHead) * group) * hd;
    float* out = a.out + (static_cast<int64_t>(t0) * a.nHeads + static_cast<int64_t>(kvHead) * group) * hd;
    // Visits positions 0..ctxMax−1 block by block, calling f(scores row, q offset, first position, rows, rows
    // seen) for each query (i, g) with the rows of the block it may see (causal: up to its own position). A
    // block's rows of this kv head are contiguous (attention.h); before a block it prefetches the next one,
    // which lies elsewhere in the cache, so decode does not wait on it.
    auto forEachBlock = [&](const void* cacheBytes, auto&& f) {
      const Elem* cache = static_cast<const Elem*>(cacheBytes);
      auto blockRows = [&](int blk) {
        return cache + (static_cast<int64_t>(table[blk]) * a.nKvHeads + kvHead) * a.blockSize * hd;
      };
      for (int j0 = 0, blk = 0; j0 < ctxMax; j0 += a.blockSize, blk++) {
        if (j0 + a.blockSize < ctxMax) {
          const int nextRows = ctxMax - j0 - a.blockSize < a.blockSize ? ctxMax - j0 - a.blockSize : a.blockSize;
          prefetchBytes(blockRows(blk + 1), nextRows * hd * static_cast<int>(sizeof(Elem)));
        }
        const Elem* rows = blockRows(blk);
        for (int i = 0; i < nt; i++) {
          const int seen = a.positions[t0 + i] + 1 - j0;
          if (seen <= 0) continue;
          const int n = seen < a.blockSize ? seen : a.blockSize;
          for (int g = 0; g < group; g++) f(i * group + g, (i * a.nHeads + g) * hd, j0, rows, n);
        }
      }
    };
    forEachBlock(a.kCache, [&](int row, int64_t head, int j0, const Elem* k, int n) {
      Blocks::dotRows(q + head, k, hd, n, hd, scale, scores + static_cast<int64_t>(row) * ctxMax + j0);
    });
    for (int i = 0; i < nt; i++)
      for (int g = 0; g < group; g++) {
        Blocks::softmax(scores + static_cast<int64_t>(i * group + g) * ctxMax, a.positions[t0 + i] + 1);
        std::memset(out + (i * a.nHeads + g) * hd, 0, sizeof(float) * hd);
      }
    forEachBlock(a.vCache, [&](int row, int64_t head, int j0, const Elem* v, int n) {
      Blocks::axpyRows(out + head, scores + static_cast<int64_t>(row) * ctxMax + j0, v, hd, n, hd);
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
