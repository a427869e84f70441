// Causal attention for a flat varlen batch (prefill chunks and decodes mixed), reading K/V through
// per-sequence block tables, optionally within a sliding window and with soft-capped scores.
//
// KV cache, one layer, of kvDtype elements (f32, or f16 = IEEE binary16 bits, rounded to nearest-even when stored
// and widened to f32 when read). Within a block, each kv head's part lies together; V is row-major within it
// (a slot's headDim values side by side), K column-major (a dimension's blockSize values side by side):
//
//   V: [numBlocks, nKvHeads, blockSize, headDim]          K: [numBlocks, nKvHeads, headDim, blockSize]
//
//   | block 0                                     | block 1   | …
//   | kv head 0                   | kv head 1 | … | kv head 0 | …
//   V: | row 0 | row 1 | … | row B−1 |             row o: headDim values of the block's slot o
//   K: | dim 0 | dim 1 | … | dim D−1 |             dim i: element i of each of the block's B slots
//
//   slot s, kv head h, element i:  V at ((s / B · nKvHeads + h) · B + s % B) · D + i   (kvRowOffset)
//                                  K at ((s / B · nKvHeads + h) · D + i) · B + s % B   (keyOffset, + i · B)
//   (B = blockSize, D = headDim)
//
// Position j of a sequence is in slot table[j / blockSize] · blockSize + j % blockSize, as the engine's slot
// mapping numbers them. Attention takes one kv head at a time, so it reads blockSize · headDim contiguous elements
// of K and of V per block (the reference backend's layout interleaves the heads). With K by dimension, the scores
// of a block's slots come out side by side in a vector's lanes (q[i] times dimension i's row, summed over i),
// with no sum across lanes per slot; V's rows are what the weighted sum of rows reads.
// Token t (at position p) attends to 0..p of its sequence, whose K/V this step has already written, or with a
// window w to p − w + 1 … p only: keys before the window are never read (their blocks may have been freed).
// Scores are scale · q·k, soft-capped to softcap · tanh(s / softcap) when softcap > 0, then softmaxed.
// GQA: query head h reads kv head h / (nHeads / nKvHeads).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vellum::backend {

enum class KvDtype : int { F32 = 0, F16 = 1 };

inline size_t kvElementBytes(KvDtype t) { return t == KvDtype::F16 ? 2 : 4; }

// Element offset of kv head h's V row of `slot` in the layout above.
inline int64_t kvRowOffset(int64_t slot, int h, int nKvHeads, int blockSize, int headDim) {
  return ((slot / blockSize * nKvHeads + h) * blockSize + slot % blockSize) * headDim;
}

// Element offset of element 0 of kv head h's K at `slot`; element i lies blockSize elements further per i.
inline int64_t keyOffset(int64_t slot, int h, int nKvHeads, int blockSize, int headDim) {
  return (slot / blockSize * nKvHeads + h) * blockSize * headDim + slot % blockSize;
}

struct AttentionArgs {
  const float* q;  // [T, nHeads, headDim]
  const void* kCache;  // kvDtype elements, layout above
  const void* vCache;
  KvDtype kvDtype;
  float* out;  // [T, nHeads, headDim]
  const int32_t* positions;  // [T]
  const int32_t* tables;  // all block tables back to back
  const int32_t* tableStart;  // [numSeqs + 1] where each sequence's table starts in `tables`
  // Query tiles: runs of at most kQueryTile consecutive tokens of one sequence (see makeQueryTiles).
  const int32_t* tileFirst;  // [numTiles] first token
  const int32_t* tileSeq;  // [numTiles] its sequence
  int numTiles;
  int nHeads;
  int nKvHeads;
  int headDim;
  int blockSize;
  float scale;  // q·k is multiplied by this (1/√headDim, or the model's own)
  float softcap;  // 0: none
  int window;  // 0: full causal attention
};

// The first position a query at position p sees.
inline int firstSeen(const AttentionArgs& a, int p) {
  return a.window > 0 && p + 1 > a.window ? p + 1 - a.window : 0;
}

// Tokens of one sequence whose queries are computed together: each K/V row is loaded once for the whole tile
// (and for every query head of the GQA group), not once per token, which is what keeps long prefill chunks
// from rereading the cache from L3 for every token.
constexpr int kQueryTile = 16;

// Splits each sequence's tokens [queryStartLoc[s], queryStartLoc[s + 1]) into tiles.
template <class Vec>
void makeQueryTiles(const int32_t* queryStartLoc, int numSeqs, Vec* first, Vec* seq) {
  first->clear();
  seq->clear();
  for (int s = 0; s < numSeqs; s++)
    for (int32_t t = queryStartLoc[s]; t < queryStartLoc[s + 1]; t += kQueryTile) {
      first->push_back(t);
      seq->push_back(s);
    }
  first->push_back(queryStartLoc[numSeqs]);  // end of the last tile
}

// Work items are (query tile, kv head) pairs: item = tile · nKvHeads + kvHead.
inline int64_t attentionItems(const AttentionArgs& a) { return static_cast<int64_t>(a.numTiles) * a.nKvHeads; }

// Splits the items into at most maxChunks runs [ends[c − 1], ends[c]) of about equal cost, so that the pool's
// threads finish together. A tile costs its queries times the keys each sees, plus a block's worth for the
// visit itself. Runs of equal item counts left a step of one prefill chunk and many decodes waiting on the
// thread that drew the prefill tiles, each of which costs as much as dozens of decodes.
template <class Vec>
void attentionChunks(const AttentionArgs& a, int64_t maxChunks, Vec* ends) {
  auto tileCost = [&](int tile) {
    int64_t keys = a.blockSize;
    for (int t = a.tileFirst[tile]; t < a.tileFirst[tile + 1]; t++)
      keys += a.positions[t] + 1 - firstSeen(a, a.positions[t]);
    return keys;
  };
  int64_t total = 0;
  for (int tile = 0; tile < a.numTiles; tile++) total += tileCost(tile) * a.nKvHeads;
  ends->clear();
  int64_t done = 0;
  for (int tile = 0; tile < a.numTiles; tile++) {
    const int64_t cost = tileCost(tile);
    for (int h = 0; h < a.nKvHeads; h++) {
      done += cost;
      // Close a run each time the cost so far passes the next of maxChunks equal shares.
      if (done * maxChunks >= static_cast<int64_t>(ends->size() + 1) * total)
        ends->push_back(static_cast<int64_t>(tile) * a.nKvHeads + h + 1);
    }
  }
}

// Floats of one query tile's rows of a kv head's group (group = nHeads / nKvHeads query heads): kQueryTile tokens
// × group × headDim.
inline int64_t tileRowsScratch(int group, int headDim) { return static_cast<int64_t>(kQueryTile) * group * headDim; }

// Floats of scratch one thread needs for contexts up to maxCtx: a tile's queries and outputs, then its scores.
inline int64_t attentionScratch(int group, int headDim, int64_t maxCtx) {
  return 2 * tileRowsScratch(group, headDim) + maxCtx * kQueryTile * group;
}

}  // namespace vellum::backend
