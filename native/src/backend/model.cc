#include "model.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>

#include "ops.h"
#include "parallel-matmul.h"

namespace vellum::backend {
namespace {

template <class E>
void grow(std::vector<E>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// The matmul weights (the embedding is read by rows instead); W is ModelWeights or const ModelWeights.
template <class W>
auto matricesOf(W& w) {
  std::vector<decltype(&w.classifier)> out = {&w.classifier};
  for (auto& l : w.layers)
    for (auto* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) out.push_back(m);
  return out;
}

}  // namespace

Model::Model(const ModelConfig& config, ModelWeights weights, const Kernels& kernels, int threads)
    : c_(config), w_(std::move(weights)), k_(kernels), pool_(threads) {
  const float* factors = w_.ropeFactors.empty() ? nullptr : w_.ropeFactors.data();
  globalRope_ = makeRope(c_.ropeDims, c_.ropeNeox, c_.ropeTheta, factors, c_.ropeScaling);
  // Windowed layers with a base of their own take no scaling: freqScale 1 and no divisors (llama.cpp's
  // rope_freq_scale_train_swa; Gemma's local layers).
  RopeScaling local = c_.ropeScaling;
  local.freqScale = 1;
  if (c_.ropeThetaLocal > 0) localRope_ = makeRope(c_.ropeDims, c_.ropeNeox, c_.ropeThetaLocal, nullptr, local);
}

void Model::interleaveWeights(const std::function<void(size_t done, size_t total)>& progress) {
  size_t total = 0;
  for (const Weight* m : matricesOf(w_))
    if (interleavesRows(k_, *m)) total += rowBytes(m->dtype, m->cols) * m->rows;
  size_t done = 0;
  progress(done, total);
  for (Weight* m : matricesOf(w_)) {
    if (!interleavesRows(k_, *m)) continue;
    interleaved_.push_back(interleaveRows(k_, m, pool_));
    done += rowBytes(m->dtype, m->cols) * m->rows;
    progress(done, total);
  }
}

std::vector<const Weight*> Model::matrices() const { return matricesOf(w_); }

size_t Model::bytesReadIn(const uint8_t* begin, const uint8_t* end) const {
  std::vector<const Weight*> read = {&w_.embedding};
  for (const Weight* m : matrices())
    if (!m->interleaved) read.push_back(m);
  std::set<const uint8_t*> counted;
  size_t total = 0;
  for (const Weight* w : read)
    if (w->data >= begin && w->data < end && counted.insert(w->data).second) total += rowBytes(w->dtype, w->cols) * w->rows;
  return total;
}

template <class F>
void Model::parallelFor(int64_t n, F&& f, int64_t grain) {
  const int64_t chunks = std::clamp<int64_t>(n / grain, 1, 4 * pool_.size());
  auto job = [&](int chunk, int) { f(n * chunk / chunks, n * (chunk + 1) / chunks); };
  pool_.run(static_cast<int>(chunks), job);
}

void Model::initKvCache(int numBlocks, int blockSize, KvDtype dtype, const std::vector<std::vector<int32_t>>& groups) {
  std::vector<int> layerGroup(c_.nLayers, -1), layerSlot(c_.nLayers, -1);
  for (size_t g = 0; g < groups.size(); g++) {
    if (groups[g].size() != groups[0].size())
      throw std::invalid_argument("KV cache groups must have equal layer counts");
    for (size_t i = 0; i < groups[g].size(); i++) {
      const int32_t l = groups[g][i];
      if (l < 0 || l >= c_.nLayers || layerGroup[l] >= 0)
        throw std::invalid_argument("KV cache groups: layer " + std::to_string(l) +
                                    " is not a layer, or is in two groups");
      layerGroup[l] = static_cast<int>(g);
      layerSlot[l] = static_cast<int>(i);
    }
  }
  for (int l = 0; l < c_.nLayers; l++)
    if (layerGroup[l] < 0)
      throw std::invalid_argument("KV cache groups: layer " + std::to_string(l) + " is in no group");
  const size_t slotLayers = groups[0].size();
  const size_t bytes = static_cast<size_t>(numBlocks) * blockSize * c_.nKvHeads * c_.headDim * kvElementBytes(dtype);
  kvCache_ = ZeroedPages();  // the old cache is unmapped before the new one is mapped
  kvCache_ = ZeroedPages(2 * slotLayers * bytes);
  kvLayerBytes_ = bytes;
  numGroups_ = static_cast<int>(groups.size());
  layerGroup_ = std::move(layerGroup);
  layerSlot_ = std::move(layerSlot);
  numBlocks_ = numBlocks;
  blockSize_ = blockSize;
  kvDtype_ = dtype;
}

std::string Model::validate(const Batch& b) const {
  const size_t T = b.tokenIds.size();
  const size_t numSeqs = b.seqLens.size();
  if (blockSize_ == 0) return "initKvCache must be called before forward";
  if (b.slotMappingStart.size() != static_cast<size_t>(numGroups_) + 1)
    return "there must be one slot mapping per KV cache group (" + std::to_string(numGroups_) + ")";
  for (int g = 0; g < numGroups_; g++)
    if (b.positions.size() != T || static_cast<size_t>(b.slotMappingStart[g + 1] - b.slotMappingStart[g]) != T)
      return "tokenIds, positions and each slot mapping must have the same length";
  if (b.queryStartLoc.size() != numSeqs + 1 || b.tableStart.size() != numGroups_ * numSeqs + 1)
    return "queryStartLoc must have numSeqs + 1 entries and there must be one block table per sequence and KV "
           "cache group";
  if (b.queryStartLoc[0] != 0 || static_cast<size_t>(b.queryStartLoc[numSeqs]) != T)
    return "queryStartLoc must start at 0 and end at the number of tokens";
  for (size_t s = 0; s < numSeqs; s++)
    if (b.queryStartLoc[s + 1] < b.queryStartLoc[s]) return "queryStartLoc must not decrease";
  const int64_t numSlots = static_cast<int64_t>(numBlocks_) * blockSize_;
  for (size_t t = 0; t < T; t++)
    if (b.tokenIds[t] < 0 || b.tokenIds[t] >= c_.vocabSize)
      return "token id " + std::to_string(b.tokenIds[t]) + " is outside the vocabulary";
  for (int32_t slot : b.slotMappings)
    if (slot < 0 || slot >= numSlots) return "slot " + std::to_string(slot) + " is outside the KV cache";
  for (int32_t block : b.tables)
    if (block < 0 || block >= numBlocks_) return "block id " + std::to_string(block) + " is outside the KV cache";
  for (size_t s = 0; s < numSeqs; s++)
    for (int32_t t = b.queryStartLoc[s]; t < b.queryStartLoc[s + 1]; t++) {
      const int32_t p = b.positions[t];
      if (p < 0 || p >= b.seqLens[s])
        return "position " + std::to_string(p) + " of sequence " + std::to_string(s) + " is outside its length";
      for (int g = 0; g < numGroups_; g++) {
        const size_t table = g * numSeqs + s;
        if (p / blockSize_ >= b.tableStart[table + 1] - b.tableStart[table])
          return "the block table of sequence " + std::to_string(s) + " is too short for position " + std::to_string(p);
      }
    }
  for (int32_t i : b.logitsIndices)
    if (i < 0 || static_cast<size_t>(i) >= T) return "logits index " + std::to_string(i) + " is not a token of the batch";
  return "";
}

void Model::ensureScratch(int T, int nLogits, int maxCtx) {
  const int rows = std::max(T, nLogits);
  const size_t qDim = static_cast<size_t>(c_.nHeads) * c_.headDim;
  const size_t kvDim = static_cast<size_t>(c_.nKvHeads) * c_.headDim;
  grow(x_, static_cast<size_t>(T) * c_.dim);
  grow(xb_, rows * static_cast<size_t>(c_.dim));
  grow(q_, T * qDim);
  grow(k_buf_, T * kvDim);
  grow(v_, T * kvDim);
  grow(attn_, T * qDim);
  grow(gate_, static_cast<size_t>(T) * c_.hiddenDim);
  grow(up_, static_cast<size_t>(T) * c_.hiddenDim);
  grow(tmp_, rows * static_cast<size_t>(c_.dim));
  grow(globalTurns_, static_cast<size_t>(T) * c_.ropeDims);
  if (c_.ropeThetaLocal > 0) grow(localTurns_, static_cast<size_t>(T) * c_.ropeDims);
  const int64_t scratch = attentionScratch(c_.nHeads / c_.nKvHeads, c_.headDim, maxCtx);
  if (attentionScratchStride_ < scratch) {
    attentionScratchStride_ = scratch;
    attentionScratch_.assign(static_cast<size_t>(pool_.size()) * scratch, 0.0f);
  }
}

namespace {
double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void Model::forward(const Batch& b, float* logits) {
  const int T = static_cast<int>(b.tokenIds.size());
  const int nLogits = static_cast<int>(b.logitsIndices.size());
  times_ = ForwardTimes{};
  if (T == 0) return;
  const double started = nowSeconds();
  const int dim = c_.dim;
  const int hidden = c_.hiddenDim;
  const int qDim = c_.nHeads * c_.headDim;
  const int kvDim = c_.nKvHeads * c_.headDim;
  int maxCtx = 1;
  for (int32_t p : b.positions) maxCtx = std::max(maxCtx, p + 1);
  ensureScratch(T, nLogits, maxCtx);
  makeQueryTiles(b.queryStartLoc.data(), static_cast<int>(b.seqLens.size()), &tileFirst_, &tileSeq_);

  float* x = x_.data();
  float* xb = xb_.data();
  float* tmp = tmp_.data();
  parallelFor(T, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; t++) {
      dequantizeRow(w_.embedding, b.tokenIds[t], x + t * dim);
      if (c_.embeddingScale != 1)
        for (int i = 0; i < dim; i++) x[t * dim + i] *= c_.embeddingScale;
    }
  });
  // RoPE's turns at this batch's positions, for every layer (the windowed layers' own base, where they have one).
  parallelFor(T, [&](int64_t begin, int64_t end) {
    ropeTurns(globalRope_, b.positions.data(), globalTurns_.data(), static_cast<int>(begin), static_cast<int>(end));
    if (c_.ropeThetaLocal > 0)
      ropeTurns(localRope_, b.positions.data(), localTurns_.data(), static_cast<int>(begin), static_cast<int>(end));
  });
  auto addResidual = [&](const float* delta) {
    parallelFor(
        static_cast<int64_t>(T) * dim,
        [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; i++) x[i] += delta[i];
        },
        kCheapGrain);
  };
  // y ← RMSNorm(y) · weight, rows of `width`, in place; nothing when the weight is empty (the switch is off).
  auto normRows = [&](float* y, const std::vector<float>& weight, int64_t rows, int width) {
    if (weight.empty()) return;
    parallelFor(rows, [&](int64_t begin, int64_t end) {
      rmsNorm(y, weight.data(), y, width, c_.normEps, static_cast<int>(begin), static_cast<int>(end));
    });
  };
  auto addBias = [&](float* y, const std::vector<float>& bias, int width) {
    if (bias.empty()) return;
    for (int t = 0; t < T; t++)
      for (int i = 0; i < width; i++) y[static_cast<size_t>(t) * width + i] += bias[i];
  };

  for (int l = 0; l < c_.nLayers; l++) {
    const LayerWeights& w = w_.layers[l];
    parallelFor(T, [&](int64_t begin, int64_t end) {
      rmsNorm(x, w.attnNorm.data(), xb, dim, c_.normEps, static_cast<int>(begin), static_cast<int>(end));
    });
    const Weight* qkv[] = {&w.wq, &w.wk, &w.wv};
    float* qkvOut[] = {q_.data(), k_buf_.data(), v_.data()};
    parallelMatmul(pool_, k_, xb, T, dim, qkv, qkvOut, 3, actsQ8_);
    addBias(q_.data(), w.bq, qDim);
    addBias(k_buf_.data(), w.bk, kvDim);
    addBias(v_.data(), w.bv, kvDim);
    normRows(q_.data(), w.qNorm, static_cast<int64_t>(T) * c_.nHeads, c_.headDim);
    normRows(k_buf_.data(), w.kNorm, static_cast<int64_t>(T) * c_.nKvHeads, c_.headDim);
    const int window = c_.layerWindows[l];
    const bool localRope = window > 0 && c_.ropeThetaLocal > 0;
    const Rope& ropeL = localRope ? localRope_ : globalRope_;
    const double* turns = (localRope ? localTurns_ : globalTurns_).data();
    parallelFor(T, [&](int64_t begin, int64_t end) {
      const int b0 = static_cast<int>(begin);
      const int b1 = static_cast<int>(end);
      rope(q_.data(), turns, c_.nHeads, c_.headDim, ropeL, b0, b1);
      rope(k_buf_.data(), turns, c_.nKvHeads, c_.headDim, ropeL, b0, b1);
    });
    const int hd = c_.headDim;
    // The layer's K/V live in its slot layer, addressed through its KV cache group's slots and tables.
    const int group = layerGroup_[l];
    uint8_t* kCache = kvCache_.data() + 2 * layerSlot_[l] * kvLayerBytes_;
    uint8_t* vCache = kCache + kvLayerBytes_;
    const int32_t* slotMapping = b.slotMappings.data() + b.slotMappingStart[group];
    const int32_t* tableStart = b.tableStart.data() + static_cast<size_t>(group) * b.seqLens.size();
    const double attentionStarted = nowSeconds();
    for (int t = 0; t < T; t++)
      for (int h = 0; h < c_.nKvHeads; h++) {
        const size_t src = static_cast<size_t>(t) * kvDim + static_cast<size_t>(h) * hd;
        const size_t kAt = keyOffset(slotMapping[t], h, c_.nKvHeads, blockSize_, hd) * kvElementBytes(kvDtype_);
        const size_t vAt = kvRowOffset(slotMapping[t], h, c_.nKvHeads, blockSize_, hd) * kvElementBytes(kvDtype_);
        k_.storeKv(k_buf_.data() + src, hd, kvDtype_, kCache + kAt, blockSize_);
        k_.storeKv(v_.data() + src, hd, kvDtype_, vCache + vAt, 1);
      }
    const AttentionArgs args{q_.data(),          kCache,             vCache,
                             kvDtype_,           attn_.data(),       b.positions.data(),
                             b.tables.data(),    tableStart,         tileFirst_.data(),
                             tileSeq_.data(),    static_cast<int>(tileSeq_.size()),
                             c_.nHeads,          c_.nKvHeads,
                             c_.headDim,         blockSize_,
                             c_.attentionScale,  c_.attnSoftcap,
                             window};
    attentionChunks(args, 8 * pool_.size(), &attentionChunkEnds_);
    auto attend = [&](int chunk, int thread) {
      k_.attention(args, chunk == 0 ? 0 : attentionChunkEnds_[chunk - 1], attentionChunkEnds_[chunk],
                   attentionScratch_.data() + static_cast<size_t>(thread) * attentionScratchStride_);
    };
    pool_.run(static_cast<int>(attentionChunkEnds_.size()), attend);
    times_.attentionSeconds += nowSeconds() - attentionStarted;
    const Weight* wo[] = {&w.wo};
    float* woOut[] = {tmp};
    parallelMatmul(pool_, k_, attn_.data(), T, qDim, wo, woOut, 1, actsQ8_);
    normRows(tmp, w.postAttnNorm, T, dim);
    addResidual(tmp);

    parallelFor(T, [&](int64_t begin, int64_t end) {
      rmsNorm(x, w.ffnNorm.data(), xb, dim, c_.normEps, static_cast<int>(begin), static_cast<int>(end));
    });
    const Weight* gateUp[] = {&w.gate, &w.up};
    float* gateUpOut[] = {gate_.data(), up_.data()};
    parallelMatmul(pool_, k_, xb, T, dim, gateUp, gateUpOut, 2, actsQ8_);
    parallelFor(static_cast<int64_t>(T) * hidden, [&](int64_t begin, int64_t end) {
      (c_.geluTanh ? k_.geglu : k_.swiglu)(gate_.data(), up_.data(), begin, end);
    });
    const Weight* down[] = {&w.down};
    float* downOut[] = {tmp};
    parallelMatmul(pool_, k_, gate_.data(), T, hidden, down, downOut, 1, actsQ8_);
    normRows(tmp, w.postFfnNorm, T, dim);
    addResidual(tmp);
  }

  // Logits only for the rows that will be sampled.
  for (int i = 0; i < nLogits; i++)
    std::memcpy(tmp + static_cast<size_t>(i) * dim, x + static_cast<size_t>(b.logitsIndices[i]) * dim,
                sizeof(float) * dim);
  parallelFor(nLogits, [&](int64_t begin, int64_t end) {
    rmsNorm(tmp, w_.outputNorm.data(), xb, dim, c_.normEps, static_cast<int>(begin), static_cast<int>(end));
  });
  const Weight* cls[] = {&w_.classifier};
  float* clsOut[] = {logits};
  const double classifierStarted = nowSeconds();
  parallelMatmul(pool_, k_, xb, nLogits, dim, cls, clsOut, 1, actsQ8_);
  times_.classifierSeconds = nowSeconds() - classifierStarted;
  if (c_.finalLogitSoftcap > 0)
    parallelFor(static_cast<int64_t>(nLogits) * c_.vocabSize,
                [&](int64_t begin, int64_t end) { softcap(logits, c_.finalLogitSoftcap, begin, end); });
  times_.seconds = nowSeconds() - started;
}

}  // namespace vellum::backend
