#include "parallel-matmul.h"

#include <algorithm>

namespace vellum::backend {
namespace {
constexpr int kTokenChunk = 64;
constexpr int kBandsPerPart = 8;
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
  // Each thread's run of the pool's chunks (thread-pool.h) covers its own part of every weight: part p holds
  // bands [p·kBandsPerPart, (p + 1)·kBandsPerPart) of each, in address order, so a thread reads each weight as one
  // stream and steps from a band straight into the next. Within a part: token chunk (outermost, so each weight band
  // is reread once per token chunk) × weight × band. Stolen chunks are what balances the threads.
  const int parts = pool.size();
  const int bandsPerWeight = kBandsPerPart * parts;
  // Bands start on multiples of the kernels' widest row tiles, 32 rows (decode's decodeRows, the batches' tileX32
  // with VNNI), so no band ends in a ragged tile.
  const int rowAlign = 32;
  const int tokenChunks = (T + kTokenChunk - 1) / kTokenChunk;
  const int chunksPerPart = tokenChunks * count * kBandsPerPart;
  auto job = [&](int chunk, int) {
    const int j = chunk % chunksPerPart;
    const int t0 = j / (count * kBandsPerPart) * kTokenChunk;
    const int i = j / kBandsPerPart % count;
    const int band = chunk / chunksPerPart * kBandsPerPart + j % kBandsPerPart;
    const int m = ws[i]->rows;
    const int tiles = (m + rowAlign - 1) / rowAlign;
    const int begin = tiles * band / bandsPerWeight * rowAlign;
    const int end = std::min(m, tiles * (band + 1) / bandsPerWeight * rowAlign);
    if (begin >= end) return;
    const MatmulInput in{x + static_cast<size_t>(t0) * n, a ? a + static_cast<size_t>(t0) * nb : nullptr,
                         std::min(kTokenChunk, T - t0)};
    k.matmul(*ws[i], in, ys[i] + static_cast<size_t>(t0) * m, m, begin, end);
  };
  pool.run(chunksPerPart * parts, job);
}

}  // namespace vellum::backend
