// Token sampling for a whole batch of logits rows, rows spread over the thread pool: the same picks as
// src/runner/sampler.ts (the reference) for the same uniform u, with the dense passes (scale, max, filter, exp,
// sums) vectorized. Per row, as there:
//   temperature 0: argmax, ties to the lowest id;
//   else scale by 1/temperature (in f64, rounded to f32), min-p, top-k, weights exp(x − max) (in f64, rounded to
//   f32), top-p, then a draw at u · total over the candidates in id order.
// Each filter keeps a set that is defined by ranks alone (higher value first, ties to the lower id), so the
// candidates stay in id order and the draw reads them in the same order as the reference. Log-probabilities:
// log Σ exp over the row, in f64, and its n largest entries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"
#include "thread-pool.h"

namespace vellum::backend {

// The dense passes, one table per instruction set (sampling-x86.h, sampling.cc for scalar).
struct SamplingKernels {
  // out[i] = f32(f64(x[i]) / temperature); returns the largest out[i] (−inf when none is larger).
  float (*scaleMax)(const float* x, int n, double temperature, float* out);
  // The values ≥ floor and > −inf, with their indices, packed in order into vals/ids; returns their count.
  // vals and ids hold n + 16 entries.
  int (*compact)(const float* x, int n, float floor, int32_t* ids, float* vals);
  // The largest value; −inf for an empty or all −inf row.
  float (*maxOf)(const float* x, int n);
  // The first index ≥ from whose value is > threshold, or n.
  int (*firstAbove)(const float* x, int from, int n, float threshold);
  // w[j] = f32(exp(f64(vals[j]) − max)); returns Σ w[j] in f64.
  double (*weights)(const float* vals, int n, float max, float* w);
  // Σ exp(f64(x[i]) − max) in f64: the sum under log-softmax.
  double (*sumExp)(const float* x, int n, float max);
  // The index of the draw at `point` ∈ [0, Σ w): the first j with w[j] > 0 whose cumulative sum (f64) exceeds
  // point, or the last j with w[j] > 0 when rounding leaves the sum at or below it.
  int (*drawIndex)(const float* w, int n, double point);
};

const SamplingKernels& scalarSampling();
const SamplingKernels& avx2Sampling();
const SamplingKernels& avx512Sampling();
// The sampling kernels that go with a matmul kernel path (AVX-512 with either AVX-512 path).
const SamplingKernels& samplingKernelsFor(const Kernels& k);

// One row's request: src/runner/sampler.ts's parameters, and the uniform in [0, 1) drawn from its Rng.
struct SampleParams {
  double temperature;
  int topK;  // ≤ 0: off
  double topP;  // 1: off
  double minP;  // 0: off
  double u;
  int logprobs;  // how many top log-probabilities; 0: none
};

// A batch: row r is drawn from rows[r], log-probabilities read raw[r] (the row before the request's own rules).
struct SampleBatch {
  std::vector<const float*> rows;
  std::vector<const float*> raw;
  std::vector<SampleParams> params;
  int vocabSize;
};

struct SampleResult {
  std::vector<int32_t> tokenIds;  // [rows]; −1 where a row had no finite value
  std::vector<double> logNormalizers;  // [rows]: log Σ exp(raw), where logprobs > 0
  std::vector<int32_t> topIds;  // each row's `logprobs` best raw ids, best first, rows back to back
};

// Top-p's histogram of weights (sampling.cc).
struct TopPBuckets {
  std::vector<double> sum;
  std::vector<int32_t> count;
};

// Samples every row of the batch on the pool; scratch grows to the vocabulary once per thread.
class BatchSampler {
 public:
  void run(const SamplingKernels& k, ThreadPool& pool, const SampleBatch& batch, SampleResult* out);

 private:
  struct Scratch {
    std::vector<float> scaled, vals, weights;
    std::vector<int32_t> ids, order;
    TopPBuckets buckets;
  };
  std::vector<Scratch> scratch_;
};

// The first problem of a batch's parameters ("" when none): every row must be valid as samplingParams makes it.
std::string validateSampleParams(const SampleParams& p);

}  // namespace vellum::backend
