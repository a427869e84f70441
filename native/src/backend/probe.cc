#include "probe.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "cpu-features.h"
#include "thread-pool.h"

#pragma GCC target("avx2,fma")

namespace vellum::backend {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Reads n floats with four independent chains of adds; returns the sum so the loads cannot be dropped.
float readAll(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return out[0] + out[7];
}

// 12 independent FMA chains (enough to cover latency × throughput on current cores) for `iters` rounds.
float fmaLoop(long iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f);
  const __m256 b = _mm256_set1_ps(0.001f);
  for (long k = 0; k < iters; k++)
    for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float out[8];
  __m256 s = acc[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(out, s);
  return out[0];
}

}  // namespace

ProbeResult probeMachine(int threads, double bufferBytes) {
  ProbeResult r{0, 0};
  if (!selectKernels("avx2")) return r;
  ThreadPool pool(threads);
  const size_t n = static_cast<size_t>(bufferBytes / 4) / 256 * 256;
  float* buf = static_cast<float*>(_mm_malloc(n * sizeof(float), 64));
  if (!buf) return r;
  volatile float sink = 0;
  const int nt = threads;
  auto touch = [&](int t, int) { std::memset(buf + n * t / nt, 1, (n * (t + 1) / nt - n * t / nt) * 4); };
  pool.run(nt, touch);
  double best = 1e30;
  for (int rep = 0; rep < 5; rep++) {
    const double start = now();
    auto read = [&](int t, int) {
      const size_t b = n * t / nt / 32 * 32;
      const size_t e = t + 1 == nt ? n : n * (t + 1) / nt / 32 * 32;
      sink = sink + readAll(buf + b, e - b);
    };
    pool.run(nt, read);
    best = std::min(best, now() - start);
  }
  r.readBytesPerSecond = n * 4.0 / best;
  _mm_free(buf);

  const long iters = 20000000;
  best = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    const double start = now();
    auto fma = [&](int, int) { sink = sink + fmaLoop(iters); };
    pool.run(nt, fma);
    best = std::min(best, now() - start);
  }
  r.fmaFlopsPerSecond = threads * static_cast<double>(iters) * 12 * 8 * 2 / best;
  return r;
}

}  // namespace vellum::backend
