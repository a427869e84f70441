// The compute kernels of the native backend, as one table per instruction set (scalar, AVX2+FMA, AVX-512 VNNI,
// AVX-512 VNNI + BF16), picked once at load by cpu-features.cc.
//
// Weight layouts are GGUF's, byte for byte, a matrix being [rows = outputs, cols = inputs] row-major:
//   f32   4 bytes / value            f16, bf16   2 bytes / value
//   q8_0  32 values / 34 bytes: [d: f16][q: 32 × int8]                value = q · d
//   q4_0  32 values / 18 bytes: [d: f16][16 bytes: element j in the low nibble of byte j,
//                                         element j + 16 in its high nibble]   value = (q − 8) · d
//   q4_k  256 values / 144 bytes: [d: f16][dmin: f16][scales: 12][qs: 128]; 8 sub-blocks of 32 with a 6-bit
//         scale sc and min m each (ggml get_scale_min_k4); qs holds 64 values per 32 bytes, low nibbles first;
//         value = d·sc·q − dmin·m
//   q6_k  256 values / 210 bytes: [ql: 128][qh: 64][scales: 16 × int8][d: f16]; q = 4 bits of ql + 2 of qh;
//         value = d·scale·(q − 32), one scale per 16 values
// Kernels see every quantized type as 32-value chunks: int8 values, a scale per 16-value half, and a min.
// Rows of GGUF blocks are only 2-byte aligned, so every load is unaligned.
//
// A kernel path may also want a quantized weight's rows interleaved in groups of 8 (Kernels::interleaves), a
// copy made at load (interleaveRows); matmul-groups-x86.h, which reads it, draws that layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "attention.h"
#include "thread-pool.h"

namespace vellum::backend {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, Q4_0 = 4, Q4_K = 5, Q6_K = 6 };

constexpr int kBlock = 32;

struct BlockQ8_0 {
  uint16_t d;
  int8_t q[kBlock];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t q[kBlock / 2];
};
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_K) == 144 &&
                  sizeof(BlockQ6_K) == 210,
              "GGUF block sizes");

// Sub-block j's 6-bit scale and min of a q4_k block's 12 scale bytes (ggml's get_scale_min_k4).
inline void scaleMinK4(const uint8_t* scales, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// 32 activations quantized for integer dot products with quantized weights: value = q · d. halfSums = Σ q over
// values 0..15 and 16..31 take a weight offset (q4_0's − 8, q6_k's − 32) off a whole dot at once.
struct BlockQ8Act {
  float d;
  int16_t halfSums[2];
  int8_t q[kBlock];
};
inline int32_t blockSum(const BlockQ8Act& b) { return b.halfSums[0] + b.halfSums[1]; }

inline bool isQuantized(DType t) { return t >= DType::Q8_0; }

// Values per block: a quantized row is a whole number of blocks.
inline int blockValues(DType t) { return t == DType::Q4_K || t == DType::Q6_K ? 256 : isQuantized(t) ? 32 : 1; }

// Bytes of one row of `cols` values (cols a multiple of blockValues).
inline size_t rowBytes(DType t, size_t cols) {
  switch (t) {
    case DType::F32:
      return cols * 4;
    case DType::F16:
    case DType::BF16:
      return cols * 2;
    case DType::Q8_0:
      return cols / kBlock * sizeof(BlockQ8_0);
    case DType::Q4_0:
      return cols / kBlock * sizeof(BlockQ4_0);
    case DType::Q4_K:
      return cols / 256 * sizeof(BlockQ4_K);
    case DType::Q6_K:
      return cols / 256 * sizeof(BlockQ6_K);
  }
  return 0;
}

// A weight matrix used in place: `data` points into the mapped GGUF file or a JS buffer.
struct Weight {
  DType dtype;
  const uint8_t* data;
  int rows;
  int cols;
  const uint8_t* interleaved = nullptr;  // the rows in 8-row groups (interleaveRows), when the kernel path uses them
};

// The activations of a matmul: f32 [T, n] always; q8 [T, n / 32] blocks when the weight is quantized.
struct MatmulInput {
  const float* f32;
  const BlockQ8Act* q8;
  int T;
};

struct Kernels {
  const char* name;
  // y[t · ldy + o] = Σ_i x[t, i] · W[o, i], for rows o in [rowBegin, rowEnd) and every token t.
  // Each tile of weight rows is loaded once and serves all T tokens.
  void (*matmul)(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd);
  // Attention items [begin, end) (attention.h) over a cache of a.kvDtype; `scores` is per-thread scratch of
  // attentionScratch floats.
  void (*attention)(const AttentionArgs& a, int64_t begin, int64_t end, float* scores);
  // One K or V row of n values into the cache as `dtype` elements: f32 copied, f16 rounded to nearest-even.
  void (*storeKv)(const float* x, int n, KvDtype dtype, void* out);
  // Activations for quantized matmuls: every path gives quantizeActs' integers and scales, bit for bit.
  void (*quantizeActs)(const float* x, int n, BlockQ8Act* out);
  // Whether matmul reads weights of this type from Weight::interleaved when it is set.
  bool (*interleaves)(DType t);
};

const Kernels& scalarKernels();
const Kernels& avx2Kernels();
const Kernels& avx512VnniKernels();
const Kernels& avx512Bf16Kernels();

// The reference activation quantizer (each path's Kernels::quantizeActs matches it bit for bit):
// q = round(x / d), d = max|x| / 127.
void quantizeActs(const float* x, int n, BlockQ8Act* out);

constexpr size_t kQ4_Kx8Bytes = 32 + 128 + 1024;
// Bytes of one interleaved block of 8 rows (q8_0, q4_0: a 32-value block; q4_k, q6_k: a 256-value super-block).
size_t interleavedGroupBlockBytes(DType t);

// A copy of w's rows in 8-row groups (drawn in matmul-groups-x86.h), made on the pool's threads, and
// w->interleaved pointing to it; null (w unchanged) when the path does not read w's type so or w->rows is not a
// multiple of 8.
using InterleavedRows = std::unique_ptr<uint8_t[]>;
InterleavedRows interleaveRows(const Kernels& k, Weight* w, ThreadPool& pool);

// 32-value chunk `c` of a quantized row: value j = q[j] · scale[j / 16] − min.
struct Chunk {
  int8_t q[kBlock];
  float scale[2];
  float min;
};
void decodeChunk(DType t, const uint8_t* row, int c, Chunk* out);

// Row `row` of a weight, as f32 (embedding lookup, norms and biases).
void dequantizeRow(const Weight& w, int row, float* out);

float f16ToF32(uint16_t h);
// Round-to-nearest-even, subnormals kept, overflow to ±inf, NaN stays NaN (quieted): F16C's vcvtps2ph and
// src/model/dtype.ts f32ToF16, bit for bit.
uint16_t f32ToF16(float x);

}  // namespace vellum::backend
