// The decoder forward pass of every architecture src/model/config.ts describes (Llama, Qwen2/3, Gemma 2/3, Phi-3:
// one block with switches) over a flat varlen batch with a paged f32 or f16 KV cache: the same maths as
// src/backend/reference/reference-backend.ts, with weights used in place and work split over a persistent thread
// pool (matmuls by output rows, per-token ops by tokens, attention by (query tile, kv head)).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attention.h"
#include "kernels.h"
#include "ops.h"
#include "thread-pool.h"
#include "zeroed-pages.h"

namespace vellum::backend {

struct ModelConfig {
  int dim;
  int hiddenDim;
  int nLayers;
  int nHeads;
  int nKvHeads;
  int headDim;
  int vocabSize;
  float normEps;
  double ropeTheta;
  bool ropeNeox;
  int ropeDims;  // rotated width of each head (partial rotary when < headDim)
  RopeScaling ropeScaling;
  double ropeThetaLocal;  // RoPE base of the windowed layers, which take no scaling; 0: they use the global one
  std::vector<int32_t> layerWindows;  // per layer: its attention window, 0 for full causal attention
  bool qkNorm;  // per-head RMSNorm of q and k before RoPE
  bool postNorms;  // RMSNorm of the attention and FFN outputs before the residual adds
  bool geluTanh;  // FFN activation gelu (tanh form), else silu
  float embeddingScale;
  float attentionScale;
  float attnSoftcap;  // 0: none
  float finalLogitSoftcap;  // 0: none
};

// Calls f(name, &field) for every field of c, and f(name, &field, least) for the integers (and integer lists)
// whose least allowed value is not 1. The names are the JS config's (src/backend/native/addon.ts NativeModelConfig):
// native-model.cc reads the config through this list and NativeModel.configFields gives it to JS, where a test
// holds it to the TypeScript side's.
template <class F>
void forEachConfigField(ModelConfig* c, F&& f) {
  f("dim", &c->dim);
  f("hiddenDim", &c->hiddenDim);
  f("nLayers", &c->nLayers);
  f("nHeads", &c->nHeads);
  f("nKvHeads", &c->nKvHeads);
  f("headDim", &c->headDim, 2);  // RoPE turns pairs
  f("vocabSize", &c->vocabSize);
  f("normEps", &c->normEps);
  f("ropeTheta", &c->ropeTheta);
  f("ropeNeox", &c->ropeNeox);
  f("ropeDims", &c->ropeDims, 2);
  f("ropeFreqScale", &c->ropeScaling.freqScale);
  f("ropeExtFactor", &c->ropeScaling.extFactor);
  f("ropeAttnFactor", &c->ropeScaling.attnFactor);
  f("ropeBetaFast", &c->ropeScaling.betaFast);
  f("ropeBetaSlow", &c->ropeScaling.betaSlow);
  f("ropeOriginalContext", &c->ropeScaling.originalContext);
  f("ropeThetaLocal", &c->ropeThetaLocal);
  f("layerWindows", &c->layerWindows, 0);
  f("qkNorm", &c->qkNorm);
  f("postNorms", &c->postNorms);
  f("geluTanh", &c->geluTanh);
  f("embeddingScale", &c->embeddingScale);
  f("attentionScale", &c->attentionScale);
  f("attnSoftcap", &c->attnSoftcap);
  f("finalLogitSoftcap", &c->finalLogitSoftcap);
}

struct LayerWeights {
  std::vector<float> attnNorm;
  std::vector<float> ffnNorm;
  std::vector<float> bq;  // biases are empty when the model has none
  std::vector<float> bk;
  std::vector<float> bv;
  std::vector<float> qNorm;  // [headDim], empty without qkNorm
  std::vector<float> kNorm;
  std::vector<float> postAttnNorm;  // [dim], empty without postNorms
  std::vector<float> postFfnNorm;
  Weight wq;
  Weight wk;
  Weight wv;
  Weight wo;
  Weight gate;
  Weight up;
  Weight down;
};

struct ModelWeights {
  Weight embedding;
  std::vector<float> outputNorm;
  Weight classifier;
  std::vector<float> ropeFactors;  // [ropeDims / 2] RoPE frequency divisors, empty when the model has none
  std::vector<LayerWeights> layers;
};

// One step's batch, as in src/backend/backend.ts (ForwardBatch), with one slot mapping and one block table per
// sequence for each KV cache group. Slot mappings and block tables are stored back to back, group by group.
struct Batch {
  std::vector<int32_t> tokenIds;
  std::vector<int32_t> positions;
  std::vector<int32_t> slotMappings;  // group g's [T] slots at slotMappingStart[g]
  std::vector<int32_t> slotMappingStart;  // [numGroups + 1]
  std::vector<int32_t> queryStartLoc;
  std::vector<int32_t> seqLens;
  std::vector<int32_t> tables;
  std::vector<int32_t> tableStart;  // [numGroups · numSeqs + 1]: group g's table of sequence s at g · numSeqs + s
  std::vector<int32_t> logitsIndices;
};

// Where the last forward pass spent its time (wall seconds on the calling thread), for the engine's step
// decomposition (vellum simulate --explain): the whole pass, its attention (K/V store and the attention kernel, every
// layer) and its classifier matmul.
struct ForwardTimes {
  double seconds = 0;
  double attentionSeconds = 0;
  double classifierSeconds = 0;
};

class Model {
 public:
  // Cheap: the weights are used where they lie until interleaveWeights lays them out for the kernels.
  Model(const ModelConfig& config, ModelWeights weights, const Kernels& kernels, int threads);

  // Copies every matrix the kernels read interleaved (interleaveRows) on the pool's threads, telling `progress`
  // the bytes of those matrices done of the total before the first and after each (total 0: nothing to copy).
  // Call it once, before the first forward pass; it throws std::bad_alloc when the copies do not fit in memory.
  void interleaveWeights(const std::function<void(size_t done, size_t total)>& progress);

  // The cache is mapped zeroed and returns at once; a thread of its own makes the pages resident (zeroed-pages.h).
  // groups: the layers of each KV cache group (src/backend/backend.ts KvCacheSpec), all of one size; layer
  // groups[g][i] is kept in slot layer i and addressed through group g's slot mapping and block tables.
  void initKvCache(int numBlocks, int blockSize, KvDtype dtype, const std::vector<std::vector<int32_t>>& groups);
  bool hasKvCache() const { return blockSize_ > 0; }
  // Whether that thread has finished: until then, steps writing new blocks may pay page faults.
  bool kvCacheResident() const { return kvCache_.resident(); }
  // Empty when the batch is consistent with itself, the vocabulary and the cache; else what is wrong.
  std::string validate(const Batch& b) const;
  // logits: [logitsIndices.size(), vocabSize]. The batch must have passed validate().
  void forward(const Batch& b, float* logits);
  const ForwardTimes& lastForwardTimes() const { return times_; }

  const ModelConfig& config() const { return c_; }
  // The matmul weights, with Weight::interleaved set where the kernels read a copy.
  std::vector<const Weight*> matrices() const;
  // Bytes of the weights the kernels read in place inside [begin, end): the embedding and every matrix without an
  // interleaved copy, each counted once (a tied classifier is the embedding).
  size_t bytesReadIn(const uint8_t* begin, const uint8_t* end) const;
  const Kernels& kernels() const { return k_; }
  int threads() const { return pool_.size(); }
  // The pool, for work between forward passes (sampling); never while forward runs.
  ThreadPool& pool() { return pool_; }

 private:
  // f(begin, end) over [0, n) in chunks spread over the pool, each of at least `grain` items: an op cheaper than
  // a hand-off to another thread (a decode token's residual add) runs on the calling thread.
  static constexpr int64_t kCheapGrain = 16384;
  template <class F>
  void parallelFor(int64_t n, F&& f, int64_t grain = 1);
  void ensureScratch(int T, int nLogits, int maxCtx);

  ModelConfig c_;
  ModelWeights w_;
  Rope globalRope_;
  Rope localRope_;  // windowed layers' RoPE when ropeThetaLocal is set
  const Kernels& k_;
  std::vector<InterleavedRows> interleaved_;  // copies of matrices in the layout the kernels prefer
  ThreadPool pool_;
  ForwardTimes times_;

  int numBlocks_ = 0;
  int blockSize_ = 0;
  KvDtype kvDtype_ = KvDtype::F32;
  int numGroups_ = 0;
  std::vector<int> layerGroup_;  // per layer: its KV cache group
  std::vector<int> layerSlot_;  // per layer: its slot layer
  // Every slot layer's K then V, each kvLayerBytes_ of kvDtype_ elements (attention.h): one mapping, so one
  // thread makes it resident.
  ZeroedPages kvCache_;
  size_t kvLayerBytes_ = 0;

  // Scratch, grown to the largest batch seen; the hot path allocates nothing once warm.
  std::vector<float> x_, xb_, q_, k_buf_, v_, attn_, gate_, up_, tmp_;
  std::vector<double> globalTurns_, localTurns_;  // ropeTurns of the batch's positions, [T, ropeDims]
  std::vector<BlockQ8Act> actsQ8_;
  std::vector<float> attentionScratch_;  // [threads, attentionScratchStride_]
  int64_t attentionScratchStride_ = 0;
  std::vector<int32_t> tileFirst_;  // attention query tiles (attention.h)
  std::vector<int32_t> tileSeq_;
  std::vector<int64_t> attentionChunkEnds_;  // attentionChunks' runs of items, one pool chunk each
};

}  // namespace vellum::backend
