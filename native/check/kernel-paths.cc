// Checks every SIMD kernel path this CPU runs against the scalar path, and times their matmuls: for machines
// whose instructions CI's lacks (AVX-512 VNNI), where Node and the test suite may be missing. The scalar path
// is itself tested against the TypeScript reference by test/native-kernels.test.ts.
//
//   npm run check:kernels -- [threads]     (native/check/run.mjs builds and runs it; exits 1 on a mismatch)
//
// It also measures read bandwidth the plainest way, as STREAM would, with none of the probe's code (bench probe,
// native/src/backend/probe.cc): the check of the probe's roof.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "attention.h"
#include "cpu-features.h"
#include "kernels.h"
#include "parallel-matmul.h"
#include "thread-pool.h"

using namespace vellum::backend;

namespace {

uint64_t rngState = 0x9e3779b97f4a7c15ull;
uint32_t nextU32() {
  rngState ^= rngState << 13;
  rngState ^= rngState >> 7;
  rngState ^= rngState << 17;
  return static_cast<uint32_t>(rngState >> 32);
}
float uniform() { return static_cast<float>(nextU32()) / 4294967296.0f * 2 - 1; }  // [-1, 1)

void putHalf(uint8_t* p, float x) {
  const uint16_t h = f32ToF16(x);
  std::memcpy(p, &h, 2);
}

// Random rows of `t`: values in [-1, 1) for float types; random quants with small f16 scales otherwise.
std::vector<uint8_t> randomWeight(DType t, int rows, int cols) {
  std::vector<uint8_t> data(rowBytes(t, cols) * rows);
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
    for (size_t i = 0; i < static_cast<size_t>(rows) * cols; i++) {
      const float v = uniform();
      if (t == DType::F32) std::memcpy(&data[4 * i], &v, 4);
      if (t == DType::F16) putHalf(&data[2 * i], v);
      if (t == DType::BF16) {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        const uint16_t h = static_cast<uint16_t>(bits >> 16);
        std::memcpy(&data[2 * i], &h, 2);
      }
    }
    return data;
  }
  for (auto& b : data) b = static_cast<uint8_t>(nextU32());
  const size_t blockBytes = rowBytes(t, blockValues(t));
  for (size_t at = 0; at < data.size(); at += blockBytes) {
    switch (t) {
      case DType::Q4_1:
      case DType::Q5_1:  // d, m
        putHalf(&data[at], 0.05f * uniform());
        putHalf(&data[at + 2], 0.05f * uniform());
        break;
      case DType::Q4_K:
      case DType::Q5_K:  // d, dmin
        putHalf(&data[at], 0.01f * uniform());
        putHalf(&data[at + 2], 0.01f * uniform());
        break;
      case DType::Q2_K:  // d, dmin at the end
        putHalf(&data[at + 80], 0.01f * uniform());
        putHalf(&data[at + 82], 0.01f * uniform());
        break;
      case DType::Q3_K:
        putHalf(&data[at + 108], 0.01f * uniform());
        break;
      case DType::Q6_K:
        putHalf(&data[at + 208], 0.01f * uniform());
        break;
      case DType::IQ4_XS:
        putHalf(&data[at], 0.001f * uniform());
        break;
      default:  // d first: q8_0, q4_0, q5_0, iq4_nl
        putHalf(&data[at], 0.05f * uniform());
    }
  }
  return data;
}

// y = x · wᵀ on path k (weights interleaved where the path reads them so).
std::vector<float> matmulOn(const Kernels& k, DType t, const std::vector<uint8_t>& data, int rows, int cols,
                            const std::vector<float>& x, int T, ThreadPool& pool) {
  Weight w{t, data.data(), rows, cols};
  const InterleavedRows interleaved = interleaveRows(k, &w, pool);
  std::vector<float> y(static_cast<size_t>(T) * rows);
  std::vector<BlockQ8Act> acts;
  const Weight* ws[] = {&w};
  float* ys[] = {y.data()};
  parallelMatmul(pool, k, x.data(), T, cols, ws, ys, 1, acts);
  return y;
}

int failures = 0;
void expect(bool ok, const std::string& what) {
  if (!ok && failures++ < 10) std::printf("MISMATCH %s\n", what.c_str());
}

constexpr DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                               DType::Q4_K, DType::Q6_K, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                               DType::Q2_K, DType::Q3_K, DType::Q5_K, DType::IQ4_NL, DType::IQ4_XS};
constexpr int kTypeCount = sizeof kAllTypes / sizeof kAllTypes[0];

const char* dtypeName(DType t) {
  static const char* names[kTypeCount] = {"f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_k",   "q6_k",  "q4_1",
                                          "q5_0", "q5_1", "q2_k", "q3_k", "q5_k", "iq4_nl", "iq4_xs"};
  return names[static_cast<int>(t)];
}

void checkMatmul(const Kernels& path, ThreadPool& pool) {
  const Kernels& scalar = scalarKernels();
  int cases = 0;
  // parallelMatmul cuts rows into 8 bands a thread on multiples of 32 rows: 56 rows give a band of 32 (AVX-512's
  // 32-row tile, matmul-groups-x86.h) and one of 24 (a 16-row pair and a lone group); `wide` rows give every
  // band 32 rows or none, and a lone group at the end.
  const int wide = 8 * 16 * pool.size() + 8;
  for (DType t : kAllTypes)
    for (int rows : {1, 7, 8, 13, 16, 40, 56, wide})
      for (int T : {1, 3, 5, 70}) {
        const int cols = blockValues(t) == 256 ? 512 : isQuantized(t) ? 96 : 77;
        const std::vector<uint8_t> w = randomWeight(t, rows, cols);
        std::vector<float> x(static_cast<size_t>(T) * cols);
        for (auto& v : x) v = uniform();
        const std::vector<float> want = matmulOn(scalar, t, w, rows, cols, x, T, pool);
        const std::vector<float> got = matmulOn(path, t, w, rows, cols, x, T, pool);
        // Both paths quantize x identically; they differ in f32 summation order alone, except that a bf16
        // path rounds x to bf16 for bf16 weights (relative 2⁻⁹ per value).
        const double xRounding = t == DType::BF16 && std::strstr(path.name, "bf16") ? 1.0 / 256 : 0;
        std::vector<float> row(cols);
        for (int o = 0; o < rows; o++) {
          dequantizeRow(Weight{t, w.data(), rows, cols}, o, row.data());
          for (int u = 0; u < T; u++) {
            double absSum = 0;
            for (int i = 0; i < cols; i++) absSum += std::fabs(row[i] * x[static_cast<size_t>(u) * cols + i]);
            const size_t at = static_cast<size_t>(u) * rows + o;
            expect(std::fabs(got[at] - want[at]) <= (2e-5 + xRounding) * absSum + 1e-6,
                   std::string(path.name) + " matmul " + dtypeName(t) + " " + std::to_string(rows) + "x" +
                       std::to_string(cols) + " T=" + std::to_string(T) + ": " + std::to_string(got[at]) +
                       " vs " + std::to_string(want[at]));
          }
        }
        cases++;
      }
  std::printf("%s: matmul, %d cases (%d dtypes, interleaved and row-at-a-time), against scalar\n", path.name, cases,
              kTypeCount);
}

void checkActsAndKv(const Kernels& path) {
  for (int n : {32, 96, 4096}) {
    std::vector<float> x(n);
    for (int i = 0; i < n; i++) x[i] = uniform() * (i % 7 == 0 ? 100.0f : 1.0f);
    std::vector<BlockQ8Act> a(n / kBlock), b(n / kBlock);
    scalarKernels().quantizeActs(x.data(), n, a.data());
    path.quantizeActs(x.data(), n, b.data());
    for (size_t i = 0; i < a.size(); i++)
      expect(a[i].d == b[i].d && a[i].halfSums[0] == b[i].halfSums[0] && a[i].halfSums[1] == b[i].halfSums[1] &&
                 std::memcmp(a[i].q, b[i].q, kBlock) == 0,
             std::string(path.name) + " quantizeActs block " + std::to_string(i));
    std::vector<uint16_t> h1(n), h2(n);
    scalarKernels().storeKv(x.data(), n, KvDtype::F16, h1.data(), 1);
    path.storeKv(x.data(), n, KvDtype::F16, h2.data(), 1);
    expect(h1 == h2, std::string(path.name) + " storeKv f16");
    std::vector<uint16_t> s1(3 * n), s2(3 * n);
    scalarKernels().storeKv(x.data(), n, KvDtype::F16, s1.data(), 3);
    path.storeKv(x.data(), n, KvDtype::F16, s2.data(), 3);
    expect(s1 == s2, std::string(path.name) + " storeKv f16, stride 3");
  }
  std::printf("%s: quantizeActs and f16 storeKv (stride 1 and 3) bit for bit equal to scalar\n", path.name);
}

void checkAttention(const Kernels& path) {
  int cases = 0;
  struct Shape {
    float softcap;
    int window;
  };
  for (KvDtype dtype : {KvDtype::F32, KvDtype::F16})
    for (int headDim : {8, 20, 64, 80, 128})
      for (int group : {1, 3, 4, 8, 10})
        for (int fresh : {1, 17})
          for (Shape shape : {Shape{0, 0}, Shape{2.5f, 0}, Shape{0, 7}, Shape{0, 20}}) {
          const int nKvHeads = 2, nHeads = nKvHeads * group, blockSize = 16, cached = 40;
          const int len = cached + fresh, numBlocks = (len + blockSize - 1) / blockSize;
          const size_t cacheValues = static_cast<size_t>(numBlocks) * blockSize * nKvHeads * headDim;
          std::vector<float> kf(cacheValues), vf(cacheValues);
          for (auto& v : kf) v = uniform();
          for (auto& v : vf) v = uniform();
          std::vector<uint16_t> kh(cacheValues), vh(cacheValues);
          for (size_t i = 0; i < cacheValues; i++) kh[i] = f32ToF16(kf[i]), vh[i] = f32ToF16(vf[i]);
          std::vector<int32_t> table(numBlocks), positions(fresh), tableStart = {0, numBlocks};
          for (int b = 0; b < numBlocks; b++) table[b] = numBlocks - 1 - b;  // scattered: reversed
          for (int i = 0; i < fresh; i++) positions[i] = cached + i;
          std::vector<float> q(static_cast<size_t>(fresh) * nHeads * headDim);
          for (auto& v : q) v = uniform() * 3;
          std::vector<int32_t> tileFirst, tileSeq;
          const int32_t queryStartLoc[] = {0, fresh};
          makeQueryTiles(queryStartLoc, 1, &tileFirst, &tileSeq);
          auto run = [&](const Kernels& k) {
            std::vector<float> out(q.size());
            const bool f16 = dtype == KvDtype::F16;
            AttentionArgs a{q.data(), f16 ? static_cast<const void*>(kh.data()) : kf.data(),
                            f16 ? static_cast<const void*>(vh.data()) : vf.data(), dtype, out.data(),
                            positions.data(), table.data(), tableStart.data(), tileFirst.data(), tileSeq.data(),
                            static_cast<int>(tileSeq.size()), nHeads, nKvHeads, headDim, blockSize,
                            static_cast<float>(1 / std::sqrt(headDim)), shape.softcap, shape.window};
            std::vector<float> scratch(attentionScratch(group, headDim, len));
            k.attention(a, 0, attentionItems(a), scratch.data());
            return out;
          };
          const std::vector<float> want = run(scalarKernels()), got = run(path);
          for (size_t i = 0; i < want.size(); i++)
            expect(std::fabs(got[i] - want[i]) < 2e-5, std::string(path.name) + " attention hd=" +
                                                           std::to_string(headDim) + " at " + std::to_string(i));
          cases++;
        }
  std::printf("%s: attention, %d cases (f32/f16 KV, GQA, head dims with tails, soft-capping, windows), "
              "against scalar\n",
              path.name, cases);
}

// GMAC/s of one matmul shape on `path`, the median of 7 timed runs after a warm-up.
double matmulRate(const Kernels& path, DType t, int rows, int cols, int T, ThreadPool& pool) {
  const std::vector<uint8_t> data = randomWeight(t, rows, cols);
  Weight w{t, data.data(), rows, cols};
  const InterleavedRows interleaved = interleaveRows(path, &w, pool);
  std::vector<float> x(static_cast<size_t>(T) * cols), y(static_cast<size_t>(T) * rows);
  for (auto& v : x) v = uniform();
  std::vector<BlockQ8Act> acts;
  const Weight* ws[] = {&w};
  float* ys[] = {y.data()};
  std::vector<double> seconds;
  for (int run = 0; run < 8; run++) {
    const auto start = std::chrono::steady_clock::now();
    const int reps = T == 1 ? 40 : T == 16 ? 4 : 2;
    for (int r = 0; r < reps; r++) parallelMatmul(pool, path, x.data(), T, cols, ws, ys, 1, acts);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps);
  }
  std::sort(seconds.begin() + 1, seconds.end());  // run 0 warms up
  return static_cast<double>(rows) * cols * T / seconds[4] / 1e9;
}

// GB/s of a STREAM-style read, best of 5: `threads` plain std::threads each sum their contiguous share of a 1 GiB
// array of 64-bit words, split into `streams` regions read side by side in one simple loop (integer adds, which the
// compiler may vectorize; no intrinsics, no prefetch, none of vellum's kernels or its thread pool). One stream a
// thread (streams = 1) is STREAM's own pattern; 4 are what a core needs to keep enough cache lines in flight here.
double streamReadGBps(int threads, int streams) {
  const size_t words = (size_t{1} << 30) / sizeof(uint64_t);
  std::vector<uint64_t> a(words);
  for (size_t i = 0; i < words; i++) a[i] = i * 0x9e3779b97f4a7c15ull;
  std::vector<uint64_t> sums(threads);
  double best = 0;
  for (int run = 0; run < 5; run++) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++)
      pool.emplace_back([&, t] {
        const uint64_t* share = a.data() + words * t / threads;
        const size_t n = (words * (t + 1) / threads - words * t / threads) / streams;
        uint64_t s = 0;
        if (streams == 1) {
          for (size_t i = 0; i < n; i++) s += share[i];
        } else {
          const uint64_t *p0 = share, *p1 = share + n, *p2 = share + 2 * n, *p3 = share + 3 * n;
          for (size_t i = 0; i < n; i++) s += p0[i] + p1[i] + p2[i] + p3[i];
        }
        sums[t] = s;
      });
    for (auto& th : pool) th.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / seconds / 1e9);
  }
  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  if (total == 1) std::printf("\n");  // keeps the sums alive
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  // Default: every CPU the machine has (4 where it cannot tell), so that the STREAM-style read is not oversubscribed.
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = argc > 1 ? std::atoi(argv[1]) : cpus > 0 ? cpus : 4;
  ThreadPool pool(threads);
  std::printf("best path here: %s\n", selectKernels("auto")->name);
  std::vector<const Kernels*> paths;
  for (const char* name : {"avx2", "avx512-vnni", "avx512-bf16"})
    if (const Kernels* k = selectKernels(name)) paths.push_back(k);
  for (const Kernels* k : paths) {
    checkMatmul(*k, pool);
    checkActsAndKv(*k);
    checkAttention(*k);
  }
  if (failures) {
    std::printf("FAILED: %d mismatches\n", failures);
    return 1;
  }
  std::printf("all paths agree with scalar\n\nmatmul GMAC/s, %d threads (tinyllama-1.1b shapes, random weights)\n",
              threads);
  std::printf("%-6s %-12s %5s", "dtype", "shape", "T");
  for (const Kernels* k : paths) std::printf(" %12s", k->name);
  std::printf("\n");
  for (DType t : {DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL,
                  DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS})
    for (int T : {1, 16, 64}) {
      std::printf("%-6s %-12s %5d", dtypeName(t), "5632x2048", T);
      for (const Kernels* k : paths) std::printf(" %12.1f", matmulRate(*k, t, 5632, 2048, T, pool));
      std::printf("\n");
    }
  std::printf("\nSTREAM-style read, 1 GiB, plain loop, best of 5, %d threads: %.1f GB/s with 1 stream a thread, %.1f "
              "with 4\n",
              threads, streamReadGBps(threads, 1), streamReadGBps(threads, 4));
  return 0;
}
