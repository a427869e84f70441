// The attention loop, written once and compiled into each kernel path (kernels-scalar.cc, kernels-avx2.cc)
// for each cache element type (Elem: float for f32, uint16_t for f16 bits) with that path's dot product and axpy
// inlined: Dot and Axpy widen the cache row to f32 as they read it. See attention.h for the layout.
#pragma once

#include <cmath>
#include <cstring>

#include "attention.h"

namespace vellum::backend {

// Asks for one K or V row (hd values) ahead of its use, a cache line at a time.
template <class Elem>
inline void prefetchRow(const Elem* row, int hd) {
  const char* bytes = reinterpret_cast<const char*>(row);
  for (int b = 0; b < hd * static_cast<int>(sizeof(Elem)); b += 64) __builtin_prefetch(bytes + b);
}

// Items [begin, end) (see attentionItems); `scores` holds attentionScratch(a, max position + 1) floats.
template <class Elem, float (*Dot)(const float*, const Elem*, int), void (*Axpy)(float*, float, const Elem*, int)>
void attentionLoop(const AttentionArgs& a, int64_t begin, int64_t end, float* scores) {
  const int hd = a.headDim;
  const int64_t kvDim = static_cast<int64_t>(a.nKvHeads) * hd;
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
    // Visits positions 0..ctxMax−1 block by block: row of position j = cache + slot(j) · kvDim + kvHead · hd.
    // While it reads row o of a block it prefetches row o of the next one: rows kvDim apart in scattered blocks
    // are a pattern the hardware prefetcher does not follow, and decode attention would wait on each row.
    auto forEachRow = [&](const void* cacheBytes, auto&& f) {
      const Elem* cache = static_cast<const Elem*>(cacheBytes);
      auto blockRow = [&](int blk) {
        return cache + static_cast<int64_t>(table[blk]) * a.blockSize * kvDim + kvHead * hd;
      };
      for (int j0 = 0, blk = 0; j0 < ctxMax; j0 += a.blockSize, blk++) {
        const Elem* row = blockRow(blk);
        const Elem* next = j0 + a.blockSize < ctxMax ? blockRow(blk + 1) : nullptr;
        const int n = ctxMax - j0 < a.blockSize ? ctxMax - j0 : a.blockSize;
        for (int o = 0; o < n; o++, row += kvDim) {
          if (next) prefetchRow(next + o * kvDim, hd);
          f(j0 + o, row);
        }
      }
    };
    forEachRow(a.kCache, [&](int j, const Elem* k) {
      for (int i = 0; i < nt; i++) {
        if (a.positions[t0 + i] < j) continue;
        for (int g = 0; g < group; g++)
          scores[(i * group + g) * ctxMax + j] = Dot(q + (i * a.nHeads + g) * hd, k, hd) * scale;
      }
    });
    for (int i = 0; i < nt; i++) {
      const int ctxLen = a.positions[t0 + i] + 1;
      for (int g = 0; g < group; g++) {
        float* s = scores + (i * group + g) * ctxMax;
        float max = -INFINITY;
        for (int j = 0; j < ctxLen; j++) max = s[j] > max ? s[j] : max;
        double sum = 0;
        for (int j = 0; j < ctxLen; j++) {
          s[j] = std::exp(s[j] - max);
          sum += s[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int j = 0; j < ctxLen; j++) s[j] *= inv;
        std::memset(out + (i * a.nHeads + g) * hd, 0, sizeof(float) * hd);
      }
    }
    forEachRow(a.vCache, [&](int j, const Elem* v) {
      for (int i = 0; i < nt; i++) {
        if (a.positions[t0 + i] < j) continue;  // causal: token i sees positions up to its own
        for (int g = 0; g < group; g++)
          Axpy(out + (i * a.nHeads + g) * hd, scores[(i * group + g) * ctxMax + j], v, hd);
      }
    });
  }
}

}  // namespace vellum::backend
