#include "probe.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iterator>

#include "cpu-features.h"
#include "thread-pool.h"

#pragma GCC target("avx2,fma")

// The AVX-512 functions below carry their own target attribute and run only where cpu-features says the CPU
// has those instructions.
#define VELLUM_AVX512 "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"
#define VELLUM_AVX512_BF16 VELLUM_AVX512 ",avx512bf16"
// GCC's own 512-bit intrinsics start from an undefined register, which -W(maybe-)uninitialized reports.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace vellum::backend {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Bytes each stream reads per loop round: two cache lines.
constexpr size_t kStep = 128;
constexpr int kStreamCounts[] = {1, 2, 4, 8};
constexpr int kReadReps = 7;
constexpr int kPeakReps = 5;
constexpr long kPeakIters = 10000000;

// Reads S regions of `regionBytes` each, back to back from p, in one loop: every region is its own stream for the
// prefetchers, and every stream has two accumulators (integer adds, one cycle), so no dependency chain limits
// the loads. Returns the sum so the loads cannot be dropped.
template <int S>
uint64_t readYmm(const char* p, size_t regionBytes) {
  __m256i acc[S][2];
  for (int s = 0; s < S; s++) acc[s][0] = acc[s][1] = _mm256_setzero_si256();
  for (size_t i = 0; i < regionBytes; i += kStep) {
#pragma GCC unroll 8
    for (int s = 0; s < S; s++) {
      const char* q = p + s * regionBytes + i;
      acc[s][0] = _mm256_add_epi64(acc[s][0], _mm256_load_si256(reinterpret_cast<const __m256i*>(q)));
      acc[s][1] = _mm256_add_epi64(acc[s][1], _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32)));
      acc[s][0] = _mm256_add_epi64(acc[s][0], _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 64)));
      acc[s][1] = _mm256_add_epi64(acc[s][1], _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 96)));
    }
  }
  __m256i sum = _mm256_setzero_si256();
  for (int s = 0; s < S; s++) sum = _mm256_add_epi64(sum, _mm256_add_epi64(acc[s][0], acc[s][1]));
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), sum);
  return out[0] + out[1] + out[2] + out[3];
}

// readYmm with 64-byte loads.
template <int S>
__attribute__((target(VELLUM_AVX512))) uint64_t readZmm(const char* p, size_t regionBytes) {
  __m512i acc[S][2];
  for (int s = 0; s < S; s++) acc[s][0] = acc[s][1] = _mm512_setzero_si512();
  for (size_t i = 0; i < regionBytes; i += kStep) {
#pragma GCC unroll 8
    for (int s = 0; s < S; s++) {
      const char* q = p + s * regionBytes + i;
      acc[s][0] = _mm512_add_epi64(acc[s][0], _mm512_load_si512(q));
      acc[s][1] = _mm512_add_epi64(acc[s][1], _mm512_load_si512(q + 64));
    }
  }
  __m512i sum = _mm512_setzero_si512();
  for (int s = 0; s < S; s++) sum = _mm512_add_epi64(sum, _mm512_add_epi64(acc[s][0], acc[s][1]));
  return _mm512_reduce_add_epi64(sum);
}

using ReadFn = uint64_t (*)(const char*, size_t);
constexpr ReadFn kReadsYmm[] = {readYmm<1>, readYmm<2>, readYmm<4>, readYmm<8>};
constexpr ReadFn kReadsZmm[] = {readZmm<1>, readZmm<2>, readZmm<4>, readZmm<8>};

// The peak loops: enough independent chains to cover latency × throughput on current cores (at most 6 × 2 in
// flight). Each returns a value of its chains so they cannot be dropped.

double fmaYmm(long iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
  for (long k = 0; k < iters; k++)
    for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  for (int i = 1; i < 12; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  return _mm256_cvtss_f32(acc[0]);
}

__attribute__((target(VELLUM_AVX512))) double fmaZmm(long iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
  for (long k = 0; k < iters; k++)
    for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  for (int i = 1; i < 16; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return _mm512_reduce_add_ps(acc[0]);
}

// The AVX2 path's int8 dot: vpmaddubsw (u8 × s8 pairs to i16), vpmaddwd with ones (to i32), vpaddd. Only the
// adds chain, and the empty asm makes `a` opaque before every product, so none can be shared or hoisted.
// 8 chains keep every accumulator in one of the 16 ymm registers.
double maddubsYmm(long iters) {
  __m256i acc[8];
  for (int i = 0; i < 8; i++) acc[i] = _mm256_set1_epi32(i);
  __m256i a = _mm256_set1_epi8(1);
  const __m256i b = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  for (long k = 0; k < iters; k++)
    for (int i = 0; i < 8; i++) {
      asm volatile("" : "+x"(a));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
    }
  for (int i = 1; i < 8; i++) acc[0] = _mm256_add_epi32(acc[0], acc[i]);
  return _mm256_extract_epi32(acc[0], 0);
}

__attribute__((target(VELLUM_AVX512))) double dpbusdZmm(long iters) {
  __m512i acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(3);
  for (long k = 0; k < iters; k++)
    for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  for (int i = 1; i < 16; i++) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
  return _mm512_reduce_add_epi32(acc[0]);
}

__attribute__((target(VELLUM_AVX512_BF16))) double dpbf16Zmm(long iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.001f);
  const __m512bh a = _mm512_cvtne2ps_pbh(x, x);
  for (long k = 0; k < iters; k++)
    for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, a);
  for (int i = 1; i < 16; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return _mm512_reduce_add_ps(acc[0]);
}

struct PeakLoop {
  const char* path;
  const char* instruction;
  double opsPerIter;  // per thread and round
  double (*run)(long iters);
  double ProbeResult::*best;  // the result's best figure of this kind
};

// The read-bandwidth curve. The stream counts take turns within every repetition, so a drift of the machine's
// bandwidth (other tenants) shifts all of them alike.
void measureRead(ThreadPool& pool, double bufferBytes, bool zmm, ProbeResult& r) {
  const int nt = pool.size();
  const size_t unit = kStep * 8 * nt;  // every thread's share splits into 8 regions of whole steps
  const size_t bytes = static_cast<size_t>(bufferBytes) / unit * unit;
  char* buf = bytes ? static_cast<char*>(_mm_malloc(bytes, 64)) : nullptr;
  if (!buf) return;
  const size_t share = bytes / nt;
  auto touch = [&](int t, int) { std::memset(buf + share * t, 1, share); };
  pool.run(nt, touch);
  const ReadFn* reads = zmm ? kReadsZmm : kReadsYmm;
  constexpr int nCounts = static_cast<int>(std::size(kStreamCounts));
  double seconds[nCounts][kReadReps];
  std::atomic<uint64_t> sink{0};
  for (int rep = 0; rep < kReadReps; rep++) {
    for (int c = 0; c < nCounts; c++) {
      auto read = [&](int t, int) {
        sink.fetch_add(reads[c](buf + share * t, share / kStreamCounts[c]), std::memory_order_relaxed);
      };
      const double start = now();
      pool.run(nt, read);
      seconds[c][rep] = now() - start;
    }
  }
  _mm_free(buf);
  for (int c = 0; c < nCounts; c++) {
    std::sort(seconds[c], seconds[c] + kReadReps);
    const ReadPoint p{kStreamCounts[c], bytes / seconds[c][kReadReps / 2], bytes / seconds[c][0]};
    r.readCurve.push_back(p);
    r.readBytesPerSecond = std::max(r.readBytesPerSecond, p.bestBytesPerSecond);
  }
}

void measurePeaks(ThreadPool& pool, bool avx512, bool bf16, ProbeResult& r) {
  std::vector<PeakLoop> loops = {
      {"avx2", "int8 vpmaddubsw+vpmaddwd ymm", 8 * 32 * 2, maddubsYmm, &ProbeResult::int8OpsPerSecond},
      {"avx2", "f32 vfmadd ymm", 12 * 8 * 2, fmaYmm, &ProbeResult::fmaFlopsPerSecond},
  };
  if (avx512) {
    loops.push_back({"avx512-vnni", "int8 vpdpbusd zmm", 16 * 64 * 2, dpbusdZmm, &ProbeResult::int8OpsPerSecond});
    loops.push_back({"avx512-vnni", "f32 vfmadd zmm", 16 * 16 * 2, fmaZmm, &ProbeResult::fmaFlopsPerSecond});
  }
  if (bf16)
    loops.push_back({"avx512-bf16", "bf16 vdpbf16ps zmm", 16 * 32 * 2, dpbf16Zmm, &ProbeResult::bf16FlopsPerSecond});
  const int nt = pool.size();
  std::atomic<double> sink{0};
  for (const PeakLoop& loop : loops) {
    double best = 1e30;
    for (int rep = 0; rep < kPeakReps; rep++) {
      auto run = [&](int, int) {
        const double v = loop.run(kPeakIters);
        sink.store(sink.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
      };
      const double start = now();
      pool.run(nt, run);
      best = std::min(best, now() - start);
    }
    const double ops = nt * kPeakIters * loop.opsPerIter / best;
    r.peaks.push_back({loop.path, loop.instruction, ops});
    r.*loop.best = std::max(r.*loop.best, ops);
  }
}

}  // namespace

ProbeResult probeMachine(int threads, double bufferBytes) {
  ProbeResult r{};
  if (!selectKernels("avx2")) return r;
  const bool avx512 = selectKernels("avx512-vnni") != nullptr;
  ThreadPool pool(threads);
  measureRead(pool, bufferBytes, avx512, r);
  measurePeaks(pool, avx512, selectKernels("avx512-bf16") != nullptr, r);
  return r;
}

}  // namespace vellum::backend
