#include "parallel-matmul.h"

#include <algorithm>

namespace vellum::backend {
namespace {
constexpr int kTokenChunk = 64;
}  // namespace

void parallelMatmul(ThreadPool& pool, const Kernels& k, const float* x, int T, int n, const Weight* const* ws,
                    float* const* ys, int count, std::vector<BlockQ8Act>& acts) {
  bool quantized = false;
  for (int i = 0; i < count; i++) quantized = quantized || isQuantized(ws[i]->dtype);
  const int nb = n / kBlock;
  if (quantized) {
    if (acts.size() < static_cast<size_t>(T) * nb) acts.resize(static_cast<size_t>(T) * nb);
    BlockQ8Act* a = acts.data();
    auto quantize = [&](int t, int) {
      k.quantizeActs(x + static_cast<size_t>(t) * n, n, a + static_cast<size_t>(t) * nb);
    };
    pool.run(T, quantize);
  }
  const BlockQ8Act* a = quantized ? acts.data() : nullptr;
  // Chunks: token chunk (outermost, so each weight band is reread once per token chunk) × weight × row band.
  const int bandsPerWeight = 8 * pool.size();
  // Bands start on multiples of the kernels' widest row tiles, 32 rows (decode's decodeRows, the batches' tileX32
  // with VNNI), so no band ends in a ragged tile.
  const int rowAlign = 32;
  const int tokenChunks = (T + kTokenChunk - 1) / kTokenChunk;
  auto job = [&](int chunk, int) {
    const int t0 = chunk / (count * bandsPerWeight) * kTokenChunk;
    const int i = chunk / bandsPerWeight % count;
    const int band = chunk % bandsPerWeight;
    const int m = ws[i]->rows;
    const int tiles = (m + rowAlign - 1) / rowAlign;
    const int begin = tiles * band / bandsPerWeight * rowAlign;
    const int end = std::min(m, tiles * (band + 1) / bandsPerWeight * rowAlign);
    if (begin >= end) return;
    const MatmulInput in{x + static_cast<size_t>(t0) * n, a ? a + static_cast<size_t>(t0) * nb : nullptr,
                         std::min(kTokenChunk, T - t0)};
    k.matmul(*ws[i], in, ys[i] + static_cast<size_t>(t0) * m, m, begin, end);
  };
  pool.run(tokenChunks * count * bandsPerWeight, job);
}

}  // namespace vellum::backend
