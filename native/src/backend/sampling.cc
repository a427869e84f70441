#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace vellum::backend {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---- the scalar kernels ----

float scaleMaxScalar(const float* x, int n, double temperature, float* out) {
  float max = kNegInf;
  for (int i = 0; i < n; i++) {
    out[i] = static_cast<float>(static_cast<double>(x[i]) / temperature);
    if (out[i] > max) max = out[i];
  }
  return max;
}

int compactScalar(const float* x, int n, float floor, int32_t* ids, float* vals) {
  int m = 0;
  for (int i = 0; i < n; i++) {
    ids[m] = i;
    vals[m] = x[i];
    m += x[i] >= floor && x[i] > kNegInf;
  }
  return m;
}

float maxOfScalar(const float* x, int n) {
  float max = kNegInf;
  for (int i = 0; i < n; i++)
    if (x[i] > max) max = x[i];
  return max;
}

int firstAboveScalar(const float* x, int from, int n, float threshold) {
  for (int i = from; i < n; i++)
    if (x[i] > threshold) return i;
  return n;
}

double weightsScalar(const float* vals, int n, float max, float* w) {
  double total = 0;
  for (int j = 0; j < n; j++) {
    w[j] = static_cast<float>(std::exp(static_cast<double>(vals[j]) - max));
    total += w[j];
  }
  return total;
}

double sumExpScalar(const float* x, int n, float max) {
  double sum = 0;
  for (int i = 0; i < n; i++) sum += std::exp(static_cast<double>(x[i]) - max);
  return sum;
}

int drawIndexScalar(const float* w, int n, double point) {
  double cumulative = 0;
  int chosen = 0;
  for (int j = 0; j < n; j++) {
    if (w[j] == 0) continue;
    cumulative += w[j];
    chosen = j;
    if (point < cumulative) break;
  }
  return chosen;
}

// ---- one row, as src/runner/sampler.ts ----

// Position a ranks above position b: a higher value, or the same value and a lower position (positions are in id
// order, so a lower position is a lower id).
inline bool ranksAbove(const float* v, int a, int b) { return v[a] > v[b] || (v[a] == v[b] && a < b); }

// Top-p's histograms have 10 bits: weights lie in [0, 1], so their bits shifted right by 20 are < 1024.
constexpr int kTopPBuckets = 1024;

// Restores the worst-at-root heap order of heap[0..size) below position i.
void siftDown(const float* v, int32_t* heap, int i, int size) {
  const int32_t item = heap[i];
  for (;;) {
    int child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && ranksAbove(v, heap[child], heap[child + 1])) child++;
    if (!ranksAbove(v, item, heap[child])) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = item;
}

// Keeps, in place and in order, the entries of ids/v[0..n) ranked at or above `worst`; returns their count.
int keepFrom(int32_t* ids, float* v, int n, int worst) {
  const float floor = v[worst];
  int m = 0;
  for (int j = 0; j < n; j++) {
    if (v[j] > floor || (v[j] == floor && j <= worst)) {
      ids[m] = ids[j];
      v[m++] = v[j];
    }
  }
  return m;
}

// The k best of n: a heap of the best k so far with the worst at its root, most entries rejected by one vector
// compare against the root (an entry equal to the root comes after it, so ranks below it).
int keepTopK(const SamplingKernels& kern, int32_t* ids, float* vals, int n, int k, int32_t* heap) {
  for (int j = 0; j < k; j++) heap[j] = j;
  for (int i = (k >> 1) - 1; i >= 0; i--) siftDown(vals, heap, i, k);
  for (int j = kern.firstAbove(vals, k, n, vals[heap[0]]); j < n; j = kern.firstAbove(vals, j + 1, n, vals[heap[0]])) {
    heap[0] = j;
    siftDown(vals, heap, 0, k);
  }
  return keepFrom(ids, vals, n, heap[0]);
}

// Narrows the positions order[0..m) to those in the bucket (bits >> shift, 10 bits) where the running sum of
// weights, best bucket first, reaches target; adds the weight of the buckets above it to *kept. Returns the count.
int narrowToCrossing(const float* w, int32_t* order, int m, int shift, double target, double* kept, TopPBuckets& b) {
  // Four interleaved histograms, so that runs of one bucket do not chain every add on the one before.
  b.sum.assign(4 * kTopPBuckets, 0);
  b.count.assign(4 * kTopPBuckets, 0);
  auto bucketOf = [shift](float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return static_cast<int>((bits >> shift) & (kTopPBuckets - 1));
  };
  for (int j = 0; j < m; j++) {
    const int k = 4 * bucketOf(w[order[j]]) + (j & 3);
    b.sum[k] += w[order[j]];
    b.count[k]++;
  }
  for (int k = 0; k < kTopPBuckets; k++) {
    b.sum[k] = b.sum[4 * k] + b.sum[4 * k + 1] + b.sum[4 * k + 2] + b.sum[4 * k + 3];
    b.count[k] = b.count[4 * k] + b.count[4 * k + 1] + b.count[4 * k + 2] + b.count[4 * k + 3];
  }
  // The lowest non-empty bucket when rounding keeps the sum short of target.
  double sum = *kept, above = *kept;
  int crossing = 0;
  for (int k = kTopPBuckets - 1; k >= 0; k--) {
    if (b.count[k] == 0) continue;
    crossing = k;
    above = sum;
    if (sum + b.sum[k] >= target) break;
    sum += b.sum[k];
  }
  *kept = above;
  int n = 0;
  for (int j = 0; j < m; j++)
    if (bucketOf(w[order[j]]) == crossing) order[n++] = order[j];
  return n;
}

// Nucleus over weights w: a position stays iff the weight ranked above it is < target. Weights are positive
// floats in [0, 1], whose bit patterns order as their values: a histogram of bits 20..29 (exponent and 3 mantissa
// bits), then of bits 10..19 inside the bucket where the running sum reaches target, leave every bucket above it
// kept and every one below dropped, and a quickselect as the reference's (pivots, partition, sums) settles the
// entries of that last bucket alone. Then the kept set, in order, in place.
int keepTopP(int32_t* ids, float* w, int n, double target, int32_t* order, TopPBuckets& buckets) {
  for (int j = 0; j < n; j++) order[j] = j;
  double kept = 0;
  int m = narrowToCrossing(w, order, n, 20, target, &kept, buckets);
  m = narrowToCrossing(w, order, m, 10, target, &kept, buckets);
  int lo = 0, hi = m;
  while (lo < hi) {
    const int mid = lo + ((hi - lo) >> 1);
    const int32_t pivot = order[mid];
    order[mid] = order[hi - 1];
    int store = lo;
    double aboveWeight = 0;
    for (int j = lo; j < hi - 1; j++) {
      const int32_t id = order[j];
      if (!ranksAbove(w, id, pivot)) continue;
      order[j] = order[store];
      order[store++] = id;
      aboveWeight += w[id];
    }
    order[hi - 1] = order[store];
    order[store] = pivot;
    if (kept + aboveWeight >= target) {
      hi = store;
    } else {
      kept += aboveWeight + w[pivot];
      lo = store + 1;
      if (kept >= target) break;
    }
  }
  int worst = order[0];
  for (int j = 1; j < lo; j++)
    if (ranksAbove(w, worst, order[j])) worst = order[j];
  return keepFrom(ids, w, n, worst);
}

// The smallest float ≥ x.
float floatAtLeast(double x) {
  const float f = static_cast<float>(x);
  return static_cast<double>(f) < x ? std::nextafter(f, std::numeric_limits<float>::infinity()) : f;
}

int argmax(const SamplingKernels& k, const float* row, int n) {
  const float max = k.maxOf(row, n);
  for (int i = 0; i < n; i++)
    if (row[i] == max) return i;
  return 0;
}

// The token of one row at temperature > 0; −1 when the row has no finite value.
template <class Scratch>
int draw(const SamplingKernels& k, const float* row, int n, const SampleParams& p, Scratch& s) {
  float* scaled = s.scaled.data();
  const float max = k.scaleMax(row, n, p.temperature, scaled);
  if (!(max > kNegInf)) return -1;
  // min-p: prob ≥ minP · prob_max ⇔ logit ≥ max + ln(minP); the compaction also drops −inf.
  const float floor = p.minP > 0 ? floatAtLeast(static_cast<double>(max) + std::log(p.minP)) : kNegInf;
  int32_t* ids = s.ids.data();
  float* vals = s.vals.data();
  int m = k.compact(scaled, n, floor, ids, vals);
  if (p.topK > 0 && p.topK < m) m = keepTopK(k, ids, vals, m, p.topK, s.order.data());
  float* w = s.weights.data();
  double total = k.weights(vals, m, max, w);
  if (p.topP < 1) {
    m = keepTopP(ids, w, m, p.topP * total, s.order.data(), s.buckets);
    total = 0;
    for (int j = 0; j < m; j++) total += w[j];
  }
  // A uniform point in [0, total) picks the candidate whose stretch of the cumulative sum holds it.
  return ids[k.drawIndex(w, m, p.u * total)];
}

// The n largest entries, best first, equal values lower id first (as the reference's bestIds).
void topN(const float* x, int size, int n, int32_t* out) {
  int have = 0;
  for (int i = 0; i < size; i++) {
    const float v = x[i];
    if (have == n && !(v > x[out[n - 1]])) continue;
    int at = have == n ? n - 1 : have;
    while (at > 0 && x[out[at - 1]] < v) {
      out[at] = out[at - 1];
      at--;
    }
    out[at] = i;
    if (have < n) have++;
  }
}

}  // namespace

const SamplingKernels& scalarSampling() {
  static const SamplingKernels k{scaleMaxScalar, compactScalar, maxOfScalar,    firstAboveScalar,
                                 weightsScalar,  sumExpScalar,  drawIndexScalar};
  return k;
}

const SamplingKernels& samplingKernelsFor(const Kernels& k) {
  if (&k == &avx512VnniKernels() || &k == &avx512Bf16Kernels()) return avx512Sampling();
  if (&k == &avx2Kernels()) return avx2Sampling();
  return scalarSampling();
}

std::string validateSampleParams(const SampleParams& p) {
  if (!(p.temperature >= 0 && std::isfinite(p.temperature))) return "temperature must be a finite number ≥ 0";
  if (!(p.topP > 0 && p.topP <= 1)) return "topP must be in (0, 1]";
  if (!(p.minP >= 0 && p.minP <= 1)) return "minP must be in [0, 1]";
  if (!(p.u >= 0 && p.u < 1)) return "u must be in [0, 1)";
  if (p.logprobs < 0) return "logprobs must be ≥ 0";
  return "";
}

void BatchSampler::run(const SamplingKernels& k, ThreadPool& pool, const SampleBatch& batch, SampleResult* out) {
  const int rows = static_cast<int>(batch.rows.size());
  const int V = batch.vocabSize;
  const size_t padded = static_cast<size_t>(V) + 16;
  scratch_.resize(pool.size());
  for (Scratch& s : scratch_) {
    if (s.scaled.size() >= padded) continue;
    s.scaled.resize(padded);
    s.vals.resize(padded);
    s.weights.resize(padded);
    s.ids.resize(padded);
    s.order.resize(padded);
  }
  std::vector<size_t> topStart(rows + 1, 0);
  for (int r = 0; r < rows; r++) topStart[r + 1] = topStart[r] + std::min(batch.params[r].logprobs, V);
  out->tokenIds.assign(rows, 0);
  out->logNormalizers.assign(rows, 0);
  out->topIds.assign(topStart[rows], 0);
  auto job = [&](int r, int thread) {
    const SampleParams& p = batch.params[r];
    const float* row = batch.rows[r];
    out->tokenIds[r] = p.temperature == 0 ? argmax(k, row, V) : draw(k, row, V, p, scratch_[thread]);
    if (p.logprobs == 0) return;
    const float* raw = batch.raw[r];
    const float max = k.maxOf(raw, V);
    out->logNormalizers[r] = max + std::log(k.sumExp(raw, V, max));
    topN(raw, V, std::min(p.logprobs, V), out->topIds.data() + topStart[r]);
  };
  pool.run(rows, job);
}

}  // namespace vellum::backend
